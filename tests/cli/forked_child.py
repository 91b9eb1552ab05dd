"""A child for the fork server tests: says who it is and what it found
loaded, then exits, raises or waits, as its arguments ask."""

from __future__ import annotations

import os
import subprocess
import sys
import time


def main() -> None:
    args = sys.argv[1:]
    preloaded = "huxley_wire.codec" in sys.modules  # imported by the fork server, not by us
    print(f"started pid={os.getpid()} who={os.environ.get('FORKED_WHO')} preloaded={preloaded}", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    if args[:1] == ["exit"]:
        sys.exit(int(args[1]))
    if args[:1] == ["orphan"]:  # leave a child of ours behind, running for a moment
        print(f"orphan={subprocess.Popen([sys.executable, '-c', 'pass']).pid}", flush=True)
        os._exit(0)
    if args[:1] == ["crash"]:
        raise RuntimeError("boom")
    while True:  # until a signal ends it
        time.sleep(60)


if __name__ == "__main__":
    main()
