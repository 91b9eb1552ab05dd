from huxley_focus.service import FocusService
from huxley_runtime.service import run_service


def main() -> None:
    run_service(FocusService)


if __name__ == "__main__":
    main()
