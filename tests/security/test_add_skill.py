"""`huxley auth add-skill` for a container running several skills: one
identity, named after its instance, covering every one of them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from huxley_cli.auth import AuthStore
from huxley_cli.auth_cmd import auth_app
from huxley_wire.permissions import grant_for


def test_one_identity_covers_every_skill_of_the_container(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HUXLEY_SITE", "home")
    args = ["add-skill", "timers,audiobooks", "--persona", "basic", "--instance", "skill-media"]
    result = CliRunner().invoke(auth_app, [*args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "HUXLEY_SKILLS: timers,audiobooks" in result.output
    assert "HUXLEY_INSTANCE: skill-media" in result.output
    store = AuthStore.of(tmp_path)
    identity = store.identity("home", "skill-media")
    assert identity is not None and identity.skills == ("timers", "audiobooks")
    published = grant_for(identity).publish_subjects()
    assert "huxley.home.storage.kv.basic.timers" in published
    assert "huxley.home.storage.kv.basic.audiobooks" in published
    record = json.loads(store.creds_path("home", "skill-media").with_suffix(".json").read_text())
    assert record["skills"] == ["timers", "audiobooks"]
