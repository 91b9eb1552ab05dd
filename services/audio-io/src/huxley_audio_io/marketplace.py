"""The client's marketplace tab: the published `huxley-skill-*` packages we
know of, as the reference's `marketplace_state` carries them.

A static list shipped with us (no registry fetch: the deployment may have no
internet), each entry marked `installed` when a skill host of ours serves that skill. Pure.
"""

from __future__ import annotations

import re
from typing import Any

from huxley_audio_io import client_protocol as proto

REGISTRY_VERSION = "huxley-nats-static-1"
GENERATED_AT = "2026-12-07"
PREFIX = "huxley-skill-"
_PACKAGE = re.compile(r"huxley-skill-[a-z0-9][a-z0-9-]{0,60}(==[A-Za-z0-9.+!-]{1,40})?")

# (package, display name, tagline, categories, needs config)
PUBLISHED: tuple[tuple[str, str, str, tuple[str, ...], bool], ...] = (
    ("huxley-skill-audiobooks", "Audiobooks", "Listen to your audiobook library", ("media",), True),
    ("huxley-skill-news", "News", "Headlines read aloud", ("information",), True),
    ("huxley-skill-radio", "Radio", "Internet radio stations", ("media",), True),
    ("huxley-skill-reminders", "Reminders", "Reminders and medication prompts", ("productivity",), False),
    ("huxley-skill-search", "Search", "Answers from the web", ("information",), True),
    ("huxley-skill-stocks", "Stocks", "Stock quotes on request", ("information",), True),
    ("huxley-skill-system", "System", "Time, date and the speaker volume", ("system",), False),
    ("huxley-skill-telegram", "Telegram", "Messages and calls over Telegram", ("communication",), True),
    ("huxley-skill-timers", "Timers", "Kitchen timers that ring", ("productivity",), False),
)


def install_refused(package: str) -> str:
    """Why the client cannot install, and what to run instead. The gateway is
    the part of the house that faces the network: it never holds the Docker
    engine's socket (that is root on the host), so skills are added there."""
    # The client's text goes back into the command only if it is a package name.
    shown = package if _PACKAGE.fullmatch(package) else f"{PREFIX}<name>"
    return (
        "Installing skills from the client is not available: each skill runs in its own container, "
        "and the web gateway has no access to the Docker engine. On the host, run "
        f"`huxley skill add {shown}` (a compose deployment; `huxley skill remove` undoes it). "
        "Under `huxley up`, install the package into its environment and list it in the persona's skills."
    )


def entries(installed: set[str]) -> list[dict[str, Any]]:
    """The registry entries; `installed` names skills (without the prefix) served now."""
    return [
        {
            "namespace": "huxley",
            "name": package,
            "display_name": display,
            "tagline": tagline,
            "tier": "first-party",
            "categories": list(categories),
            "config_schema_present": configurable,
            "installed": package.removeprefix(PREFIX) in installed,
        }
        for package, display, tagline, categories, configurable in PUBLISHED
    ]


def state(installed: set[str], now_ms: int) -> proto.Out:
    return proto.marketplace_state(
        entries(installed),
        registry_version=REGISTRY_VERSION,
        generated_at=GENERATED_AT,
        fetched_at_ms=now_ms,
        stale=False,
        error=None,
    )


def refuse_install(package: str) -> list[proto.Out]:
    """`install_skill` here: a completed, failed install and a status saying why."""
    why = install_refused(package)
    return [
        proto.install_event("complete", package, ok=False, error_code="not_available", error_message=why),
        proto.status(why),
    ]
