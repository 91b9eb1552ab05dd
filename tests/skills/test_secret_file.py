"""ctx.secrets also reads where the published skills tell operators to put
their keys, `<persona>/data/secrets/<skill>/values.json` (issue 14); our own
`<skill>.json` wins when both exist."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from huxley_skill_host.secret_file import FileSecrets, SecretsFileError, persona_home
from huxley_skill_host.service import SkillHostService
from skills.bus import call_tool
from skills.test_host import until_status
from support.services import running


def put(path: Path, values: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values))
    return path


async def test_the_documented_file_is_read_when_ours_does_not_exist(tmp_path: Path) -> None:
    put(tmp_path / "data" / "secrets" / "stocks" / "values.json", {"api_key": "from-docs"})
    secrets = FileSecrets.for_skill(tmp_path / "data", "stocks")
    assert await secrets.get("api_key") == "from-docs" and await secrets.keys() == ["api_key"]


async def test_the_persona_folder_is_read_too(tmp_path: Path) -> None:
    personas = tmp_path / "personas"
    put(personas / "abuelos" / "persona.yaml", {})
    put(personas / "abuelos" / "data" / "secrets" / "telegram" / "values.json", {"bot_token": "t"})
    home = persona_home("abuelos", personas)
    assert home == personas / "abuelos"
    secrets = FileSecrets.for_skill(tmp_path / "data" / "abuelos", "telegram", home)
    assert await secrets.get("bot_token") == "t"
    assert persona_home("nobody", personas) is None


async def test_ours_wins_as_a_whole_when_both_exist(tmp_path: Path) -> None:
    put(tmp_path / "secrets" / "stocks" / "values.json", {"api_key": "old", "extra": "x"})
    put(tmp_path / "secrets" / "stocks.json", {"api_key": "new"})
    secrets = FileSecrets.for_skill(tmp_path, "stocks")
    assert await secrets.get("api_key") == "new"
    assert await secrets.get("extra") is None


async def test_a_write_keeps_the_documented_values_and_leaves_that_file_alone(tmp_path: Path) -> None:
    documented = put(tmp_path / "secrets" / "stocks" / "values.json", {"api_key": "k", "old": "o"})
    secrets = FileSecrets.for_skill(tmp_path, "stocks")
    await secrets.set("session", "s")
    await secrets.delete("old")
    assert json.loads((tmp_path / "secrets" / "stocks.json").read_text()) == {"api_key": "k", "session": "s"}
    assert json.loads(documented.read_text()) == {"api_key": "k", "old": "o"}


async def test_a_broken_documented_file_is_a_clear_error(tmp_path: Path) -> None:
    put(tmp_path / "secrets" / "stocks" / "values.json", {}).write_text("[1, 2]")
    with pytest.raises(SecretsFileError, match=r"values\.json must hold a JSON object of strings"):
        await FileSecrets.for_skill(tmp_path, "stocks").get("api_key")


async def test_a_skill_in_the_host_sees_the_documented_keys(nc, site, host_settings, tmp_path: Path) -> None:
    put(tmp_path / "data" / "basic" / "secrets" / "echo" / "values.json", {"api_key": "k"})
    async with running(SkillHostService, host_settings("echo")):
        await until_status(nc, site, "echo", {"ok"})
        reply = await call_tool(nc, site, "echo", "secret", {"value": "abc"})
        assert json.loads(reply["output"]) == {"keys": ["api_key", "token"]}
