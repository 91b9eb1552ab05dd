"""`python -m bench.cpu [module...]`: the same benchmarks, every duration in
CPU seconds of the bench's own process instead of wall time.

Every service a bench starts runs in the bench's process, so the CPU time
spent in a measured window is the path's own work. It moves far less with
the machine's load than wall time does: use it to tell a path that does
more from a machine that is busier (docs/performance.md). Results go to a
temporary directory, not bench/results: their "ms" are CPU milliseconds.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import bench.__main__ as runner


def main() -> int:
    time.perf_counter = time.process_time  # every bench times with time.perf_counter()
    runner.RESULTS = Path(tempfile.gettempdir()) / "huxley-bench-cpu"
    return asyncio.run(runner.main(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
