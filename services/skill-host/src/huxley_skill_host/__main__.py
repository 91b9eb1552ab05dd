"""Skill host: runs Huxley skills and serves their tools over the bus.

    huxley-skill-host [--skills timers,system] [--persona basic]

Without --skills (or HUXLEY_SKILLS) it runs every skill the persona lists;
an option given wins over its HUXLEY_ variable.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from huxley_runtime.logging import configure_logging
from huxley_skill_host.service import SkillHostService
from huxley_skill_host.settings import SkillHostSettings

app = typer.Typer(add_completion=False, help=(__doc__ or "").splitlines()[0])


@app.command()
def serve(
    skills: Annotated[
        str | None, typer.Option(help="comma-separated skill names (entry points of huxley.skills)")
    ] = None,
    persona: Annotated[
        str | None, typer.Option(help="persona name or YAML path (default: HUXLEY_PERSONA)")
    ] = None,
) -> None:
    """Run the skill host until SIGTERM or Ctrl-C."""
    # Options go to the settings as init values (they beat the environment),
    # not into os.environ.
    overrides: dict[str, Any] = {
        name: value for name, value in (("skills", skills), ("persona", persona)) if value
    }
    settings = SkillHostSettings(**overrides)
    configure_logging(SkillHostService.name, settings.site, json=settings.log_json, level=settings.log_level)
    try:
        asyncio.run(SkillHostService(settings).run())
    except KeyboardInterrupt:
        pass


def main() -> None:
    app()


if __name__ == "__main__":
    main()
