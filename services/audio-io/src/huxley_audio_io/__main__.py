import os

# Before numpy loads: the mixer's gains x samples product crosses OpenBLAS's
# threading threshold at ~1,000 streams, and its worker threads then spin
# between blocks (a whole core, for a product one thread does in ~50 us).
# An operator's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from huxley_audio_io.service import AudioService
from huxley_runtime.service import run_service


def main() -> None:
    run_service(AudioService)


if __name__ == "__main__":
    main()
