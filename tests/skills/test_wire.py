"""Skill-host messages: manifests and the cross-host duplicate-tool rule."""

from __future__ import annotations

from huxley_wire.codec import decode, encode
from huxley_wire.messages.skills import (
    AnnounceRequest,
    Manifest,
    SkillManifest,
    ToolManifest,
    duplicate_tools,
)


def manifest(host: str, *skills: tuple[str, list[str]], status: str = "ok", bye: bool = False) -> Manifest:
    return Manifest(
        host=host,
        persona="basic",
        skills=[
            SkillManifest(
                name=name,
                tools=[ToolManifest(name=t, description="d", parameters={"type": "object"}) for t in tools],
                status=status,  # type: ignore[arg-type]
            )
            for name, tools in skills
        ],
        bye=bye,
    )


def test_a_later_skill_with_a_taken_tool_is_refused_naming_both():
    refused = duplicate_tools(
        [manifest("h1", ("timers", ["set_timer"])), manifest("h2", ("kitchen", ["weigh", "set_timer"]))]
    )
    both = "tool 'set_timer' is declared by both skill 'timers' and skill 'kitchen'"
    assert refused == {"kitchen": f"{both}; 'kitchen' refused"}


def test_the_same_skill_scaled_out_is_not_a_conflict_and_failed_or_gone_hosts_do_not_count():
    assert duplicate_tools([manifest("h1", ("system", ["t"])), manifest("h2", ("system", ["t"]))]) == {}
    assert (
        duplicate_tools([manifest("h1", ("a", ["t"]), status="failed"), manifest("h2", ("b", ["t"]))]) == {}
    )
    assert duplicate_tools([manifest("h1", ("a", ["t"]), bye=True), manifest("h2", ("b", ["t"]))]) == {}


def test_announce_carries_an_optional_language():
    assert decode(encode(AnnounceRequest(reason="lang", language="es")), AnnounceRequest).language == "es"
    assert decode(b'{"v":1}', AnnounceRequest).language is None
