from huxley_audio_io.service import AudioService
from huxley_runtime.service import run_service


def main() -> None:
    run_service(AudioService)


if __name__ == "__main__":
    main()
