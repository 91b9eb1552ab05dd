"""The pure half of `huxley skill add`: which packages it accepts, the names
`remove` finds again, the image's Dockerfile and the container's shape."""

from __future__ import annotations

import pytest

from huxley_cli.skill_image import (
    Names,
    container_spec,
    creds_job,
    dockerfile,
    inherited_env,
    parse_package,
    revoke_job,
)


def test_a_published_skill_name_optionally_pinned_is_accepted_and_normalized() -> None:
    assert parse_package("huxley-skill-stocks").spec == "huxley-skill-stocks"
    package = parse_package(" Huxley_Skill.Stocks==0.1.0 ")
    assert (package.name, package.version, package.short) == ("huxley-skill-stocks", "0.1.0", "stocks")
    assert package.spec == "huxley-skill-stocks==0.1.0"


@pytest.mark.parametrize(
    "text",
    [
        "requests",
        "huxley-skill-",
        "huxley-sdk==0.1.2",
        "huxley-skill-x>=1",
        "git+https://example.org/huxley-skill-x",
        "./huxley-skill-x",
        "huxley-skill-x; rm -rf /",
        "huxley-skill-x==1 --index-url http://evil",
    ],
)
def test_anything_else_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(ValueError, match=r"huxley-skill-|package name"):
        parse_package(text)


def test_names_are_per_project_and_per_package() -> None:
    names = Names("home2", parse_package("huxley-skill-stocks==0.1.0"))
    assert names.identity == "skill-stocks"
    assert names.image == "huxley-skill-stocks:home2"
    assert names.container == "home2-skill-stocks"
    assert (names.creds_volume, names.data_volume) == ("home2_creds-skill-stocks", "home2_data-skill-stocks")


def test_the_image_installs_the_pinned_package_into_our_venv_holding_what_is_there() -> None:
    text = dockerfile("huxley:test", parse_package("huxley-skill-stocks==0.1.0"))
    assert text.startswith("FROM huxley:test\nUSER root\n")
    assert "uv pip install --python /opt/huxley/bin/python --no-cache -c /tmp/held.txt" in text
    assert "'huxley-skill-stocks==0.1.0'" in text
    assert "\nUSER huxley\n" in text  # the container's user is never root


def test_the_container_is_locked_down_like_the_compose_skills() -> None:
    names = Names("p", parse_package("huxley-skill-stocks"))
    env = inherited_env(
        ["PATH=/x", "HUXLEY_SITE=home", "HUXLEY_NATS_URL=nats://nats:4222", "HUXLEY_NATS_CREDS=/a"]
    )
    spec = container_spec(names, ["stocks"], env, "p_default")
    assert env == {"HUXLEY_SITE": "home", "HUXLEY_NATS_URL": "nats://nats:4222"}
    assert (spec["user"], spec["cap_drop"], spec["read_only"]) == ("10001:10001", ["ALL"], True)
    assert "cap_add" not in spec and spec["security_opt"] == ["no-new-privileges:true"]
    assert spec["volumes"] == {
        "p_data-skill-stocks": {"bind": "/data", "mode": "rw"},
        "p_creds-skill-stocks": {"bind": "/run/huxley", "mode": "ro"},
    }
    assert spec["environment"]["HUXLEY_NATS_CREDS"] == "/run/huxley/nats.creds"
    assert (spec["environment"]["HUXLEY_SKILLS"], spec["environment"]["HUXLEY_INSTANCE"]) == (
        "stocks",
        "skill-stocks",
    )
    assert spec["labels"]["huxley.autoheal"] == "true" and spec["network"] == "p_default"


def test_the_one_shots_mount_the_keys_and_only_what_they_write() -> None:
    names = Names("p", parse_package("huxley-skill-stocks"))
    mint = creds_job(names, ["stocks"], "p_auth")
    assert mint["command"] == [
        "huxley",
        "auth",
        "compose-skill",
        "skill-stocks",
        "--out",
        "/creds",
        "--skill",
        "stocks",
    ]
    assert set(mint["volumes"]) == {"p_auth", "p_creds-skill-stocks"}
    assert (mint["cap_add"], mint["network_disabled"]) == (["CHOWN"], True)
    revoke = revoke_job(names, "p_auth", "p_nats-config")
    assert set(revoke["volumes"]) == {"p_auth", "p_nats-config"}
