from huxley_bridge.service import BridgeService
from huxley_runtime.service import run_service


def main() -> None:
    run_service(BridgeService)


if __name__ == "__main__":
    main()
