"""Our SDK stands in for the published one outside the workspace: in a fresh
Python 3.13 venv, `uv pip install ./libs/huxley_sdk` and then the unmodified
PyPI `huxley-skill-timers==0.1.0`, whose `huxley-sdk>=0.1.1,<0.2` must be
satisfied by our build rather than pulled from PyPI. A script in that venv
loads the skill by its entry point, sets it up with the SDK's test context
and calls a tool. Needs PyPI (the skill, and hatchling to build ours)."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from support.services import REPO

pytestmark = pytest.mark.slow

UV = REPO / ".tools" / "bin" / "uv"
SDK = REPO / "libs" / "huxley_sdk"

# Runs inside the clean venv: only what was installed there is importable.
PROBE = """
import asyncio, json
from importlib.metadata import distribution, entry_points

from huxley_sdk.testing import RecordingInjector, make_test_context


async def main() -> dict:
    (entry,) = entry_points(group="huxley.skills", name="timers")
    skill = entry.load()()
    await skill.setup(make_test_context(name="timers", inject=RecordingInjector()))
    try:
        result = await skill.handle("set_timer", {"seconds": 600, "message": "tea"})
    finally:
        await skill.teardown()
    sdk = distribution("huxley-sdk")
    return {
        "skill": skill.name,
        "tools": [tool.name for tool in skill.tools],
        "output": json.loads(result.output),
        "sdk_version": sdk.version,
        "sdk_origin": json.loads(sdk.read_text("direct_url.json") or "{}").get("url", ""),
    }


print(json.dumps(asyncio.run(main())))
"""


def uv(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # No workspace venv may leak in: uv picks the target from --python only.
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}}
    done = subprocess.run([str(UV), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"uv {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def test_our_sdk_and_the_published_timers_skill_in_a_clean_venv(tmp_path):
    ours = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]["version"]
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    # From the repository, so 3.13 is found the way `make setup` finds it
    # (.python-version for pyenv; uv's own download otherwise).
    uv("venv", "--python", "3.13", "--no-project", str(venv), cwd=REPO)

    uv("pip", "install", "--python", str(python), str(SDK), cwd=tmp_path)
    installed = uv("pip", "install", "--python", str(python), "huxley-skill-timers==0.1.0", cwd=tmp_path)
    said = installed.stdout + installed.stderr  # uv lists what it added ("+ name==version")
    assert "+ huxley-skill-timers==0.1.0" in said and "huxley-sdk" not in said, said

    listed = {
        row["name"]: row["version"]
        for row in json.loads(
            uv("pip", "list", "--python", str(python), "--format", "json", cwd=tmp_path).stdout
        )
    }
    assert listed["huxley-sdk"] == ours and listed["huxley-skill-timers"] == "0.1.0", listed

    probe = subprocess.run(
        [str(python), "-I", "-c", PROBE], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert seen["skill"] == "timers" and "set_timer" in seen["tools"], seen
    assert seen["output"]["ok"] is True, seen
    assert seen["sdk_version"] == ours
    assert seen["sdk_origin"] == SDK.as_uri(), seen  # installed from our folder, not an index
