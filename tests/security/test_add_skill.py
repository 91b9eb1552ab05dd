"""`huxley auth add-skill`: one identity per skill container, and the compose
pieces it prints are what docker-compose.yml does for its own skill
containers (each loaded as YAML and compared), so the two cannot drift."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from huxley_cli.auth import AuthStore
from huxley_cli.auth_cmd import auth_app
from huxley_cli.compose_skill import container_spec, parse_container_spec
from huxley_wire.permissions import grant_for, skill_identity

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def compose_text() -> str:
    return COMPOSE.read_text()


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(compose_text())
    return loaded


def skill_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("command") == ["huxley-skill-host"]
    }


def add_skill(tmp_path: Path, *args: str) -> str:
    result = CliRunner().invoke(auth_app, ["add-skill", *args, "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    return result.output


def pieces(printed: str) -> dict[int, str]:
    """The numbered YAML pieces of the printed snippet (`# 1. ...` headers)."""
    found: dict[int, str] = {}
    current = 0
    for line in printed.splitlines(keepends=True):
        header = re.match(r"^# (\d)\. ", line)
        if header:
            current = int(header.group(1))
            found[current] = ""
        elif current:
            found[current] += line
    assert sorted(found) == [1, 2, 3, 4], printed
    return found


def load_service(piece: str) -> dict[str, Any]:
    """The printed service, loaded after docker-compose.yml's own anchors
    (x-huxley, x-health, x-after-core), as compose would merge it."""
    anchors = compose_text().split("\nservices:\n", 1)[0]
    services: dict[str, Any] = yaml.safe_load(f"{anchors}\nservices:\n{piece}")["services"]
    return services


@pytest.fixture(autouse=True)
def _site(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUXLEY_SITE", "home")
    monkeypatch.setenv("HUXLEY_PERSONA", "basic")


def test_compose_has_skill_containers_to_compare_with() -> None:
    assert len(skill_services()) >= 2


@pytest.mark.parametrize("name", sorted(skill_services()))
def test_the_printed_pieces_are_what_compose_does_for_its_skill_containers(tmp_path: Path, name: str) -> None:
    existing = skill_services()[name]
    skills = existing["environment"]["HUXLEY_SKILLS"]
    printed = pieces(add_skill(tmp_path, skills, "--instance", name))
    service = load_service(printed[3])
    assert service == {name: existing}
    init = compose()["services"]["init"]
    assert yaml.safe_load(printed[1]) == [f"--skill={skills}"]
    assert yaml.safe_load(printed[1])[0] in init["command"]
    assert yaml.safe_load(printed[2])[0] in init["volumes"]
    volumes = yaml.safe_load(printed[4])
    assert set(volumes) <= set(compose()["volumes"])


def test_a_new_skill_container_is_locked_down_like_the_others(tmp_path: Path) -> None:
    printed = pieces(add_skill(tmp_path, "weather"))
    service = load_service(printed[3])["skill-weather"]
    assert service["user"] == "10001:10001"
    assert service["cap_drop"] == ["ALL"]
    assert service["read_only"] is True
    assert service["security_opt"] == ["no-new-privileges:true"]
    # Its own creds (read-only) and its own data; no database, no other skill's volume.
    assert service["volumes"] == ["data-skill-weather:/data", "creds-skill-weather:/run/huxley:ro"]
    assert service["environment"]["HUXLEY_NATS_CREDS"] == "/run/huxley/nats.creds"
    assert service["environment"]["HUXLEY_SKILLS"] == "weather"
    assert yaml.safe_load(printed[1]) == ["--skill=weather"]
    assert yaml.safe_load(printed[2]) == ["creds-skill-weather:/creds/skill-weather"]
    assert set(yaml.safe_load(printed[4])) == {"creds-skill-weather", "data-skill-weather"}
    # The same shape as compose's own skill containers, names aside.
    timers = json.dumps(skill_services()["skill-timers"])
    expected = json.loads(timers.replace("skill-timers", "skill-weather").replace('"timers"', '"weather"'))
    assert service == expected


def test_one_identity_covers_every_skill_of_the_container(tmp_path: Path) -> None:
    output = add_skill(tmp_path, "timers,audiobooks", "--persona", "basic", "--instance", "skill-media")
    service = load_service(pieces(output)[3])["skill-media"]
    assert service["environment"]["HUXLEY_SKILLS"] == "timers,audiobooks"
    assert service["environment"]["HUXLEY_INSTANCE"] == "skill-media"
    assert yaml.safe_load(pieces(output)[1]) == ["--skill=skill-media=timers,audiobooks"]
    store = AuthStore.of(tmp_path)
    identity = store.identity("home", "skill-media")
    assert identity is not None and identity.skills == ("timers", "audiobooks")
    published = grant_for(identity).publish_subjects()
    assert "huxley.home.storage.kv.basic.timers" in published
    assert "huxley.home.storage.kv.basic.audiobooks" in published
    record = json.loads(store.creds_path("home", "skill-media").with_suffix(".json").read_text())
    assert record["skills"] == ["timers", "audiobooks"]


@pytest.mark.parametrize(
    "identity",
    [
        skill_identity("home", "basic", ("timers",)),
        skill_identity("home", "basic", ("timers",), "skill-kitchen"),
        skill_identity("home", "basic", ("timers", "audiobooks"), "skill-media"),
        skill_identity("home", "basic", ("timers", "audiobooks")),
    ],
)
def test_inits_skill_spec_names_the_same_identity(identity) -> None:
    assert parse_container_spec("home", "basic", container_spec(identity)) == identity


@pytest.mark.parametrize("spec", ["", "skill-x=", "bad.skill", "a=b=c"])
def test_a_bad_skill_spec_is_refused_with_a_clear_error(spec: str) -> None:
    with pytest.raises(ValueError, match=r"skill|identity"):
        parse_container_spec("home", "basic", spec)
