from huxley_runtime.service import run_service
from huxley_storage.service import StorageService


def main() -> None:
    run_service(StorageService)


if __name__ == "__main__":
    main()
