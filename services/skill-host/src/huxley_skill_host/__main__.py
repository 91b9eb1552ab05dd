from huxley_runtime.service import run_service
from huxley_skill_host.service import SkillHostService


def main() -> None:
    run_service(SkillHostService)


if __name__ == "__main__":
    main()
