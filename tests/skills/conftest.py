"""Fixtures of the skill-host tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from huxley_focus.service import FocusService
from huxley_focus.settings import FocusSettings
from huxley_runtime.settings import HuxleySettings
from huxley_skill_host.settings import SkillHostSettings
from huxley_storage.service import StorageService
from huxley_storage.settings import StorageSettings
from skills.bus import BridgeStandIn
from skills.fixture_skills import install_skills
from support.services import running

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
def skills_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test skills installed (entry points in huxley.skills) for this test."""
    path = install_skills(tmp_path / "site")
    monkeypatch.syspath_prepend(str(path))
    return path


@pytest.fixture
def host_settings(settings: HuxleySettings, skills_path: Path) -> Callable[..., SkillHostSettings]:
    def make(skills: str, **overrides: Any) -> SkillHostSettings:
        values = {
            **dict(settings),
            "skills": skills,
            "schema_wait_s": 0.2,
            "drain_timeout_s": 0.2,
            "teardown_timeout_s": 2.0,
            **overrides,
        }
        return SkillHostSettings(**values, _env_file=None)  # type: ignore[call-arg]

    return make


@pytest.fixture
def host_env(base_env: dict[str, str], skills_path: Path) -> dict[str, str]:
    """Environment for a skill-host subprocess that can load the test skills."""
    return {
        **base_env,
        "PYTHONPATH": f"{skills_path}:{TESTS}",
        "HUXLEY_SCHEMA_WAIT_S": "0.2",
        "HUXLEY_DRAIN_TIMEOUT_S": "0.2",
    }


@pytest.fixture
async def focus(settings: HuxleySettings) -> AsyncIterator[FocusService]:
    """The real focus service, in this process."""
    async with running(FocusService, FocusSettings(**dict(settings), _env_file=None)) as service:  # type: ignore[call-arg]
        yield service


@pytest.fixture
async def storage(settings: HuxleySettings) -> AsyncIterator[StorageService]:
    """The real storage service (SQLite under the test's data dir), in this process."""
    async with running(StorageService, StorageSettings(**dict(settings), _env_file=None)) as service:  # type: ignore[call-arg]
        yield service


@pytest.fixture
async def bridge(nc, site: str, focus: FocusService) -> AsyncIterator[BridgeStandIn]:
    """The realtime bridge's part, played by the test."""
    stand_in = await BridgeStandIn(nc, site).start()
    yield stand_in
    await stand_in.stop()
