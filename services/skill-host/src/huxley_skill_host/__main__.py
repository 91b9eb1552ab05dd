"""Skill host: runs Huxley skills and serves their tools over the bus.

    python -m huxley_skill_host [--skills timers,system] [--persona basic]

Without --skills (or HUXLEY_SKILLS) it runs every skill the persona lists.
"""

from __future__ import annotations

import argparse
import os

from huxley_runtime.service import run_service
from huxley_skill_host.service import SkillHostService


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="huxley-skill-host", description=__doc__.splitlines()[0])
    parser.add_argument("--skills", help="comma-separated skill names (entry points of huxley.skills)")
    parser.add_argument("--persona", help="persona name or YAML path (default: HUXLEY_PERSONA)")
    args = parser.parse_args(argv)
    if args.skills:
        os.environ["HUXLEY_SKILLS"] = args.skills
    if args.persona:
        os.environ["HUXLEY_PERSONA"] = args.persona
    run_service(SkillHostService)


if __name__ == "__main__":
    main()
