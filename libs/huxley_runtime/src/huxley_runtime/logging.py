"""Logging, configured once per process with structlog.

JSON lines when HUXLEY_LOG_JSON=1, a readable console format otherwise. Every
line carries `service` and `site`; `turn` and `skill` ride along when bound
with `bind_turn` / `bind_skill` (context variables, so they follow the task
that handles a request and nothing else).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# structlog imports `rich` (a third of a second and ~10 MiB in every service)
# only to pretty-print tracebacks on a console. Services log plain lines or
# JSON, so unless rich is already loaded (the CLI's typer loads it), structlog
# is told it is absent; a later `import rich` elsewhere still works.
if "rich" in sys.modules or "structlog" in sys.modules:
    import structlog
else:
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog
    finally:
        del sys.modules["rich"]

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_level = _LEVELS["info"]  # as configured; read by debug_enabled()


def configure_logging(
    service: str, site: str, *, json: bool = False, level: str = "info", stream: Any = None
) -> None:
    global _level
    out = stream or sys.stdout
    numeric = _level = _LEVELS.get(level.lower(), 20)

    def add_identity(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("service", service)
        event.setdefault("site", site)
        return event

    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_identity,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: Any
    if json:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False, pad_event_to=28)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries that use the standard logging module (nats, uvicorn, sqlalchemy)
    # go through the same stream at warning level and up.
    logging.basicConfig(stream=out, level=max(numeric, logging.WARNING), force=True)


def get_logger(**bound: Any) -> Any:
    """A logger that picks up the configuration when first used, so modules
    may create theirs at import time."""
    return structlog.get_logger(**bound)


def debug_enabled() -> bool:
    """Whether debug lines are written: a hot path checks this before it
    builds a line's values."""
    return _level <= _LEVELS["debug"]


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Bind context (turn, skill...) for the code inside the block."""
    tokens = structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v})
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
