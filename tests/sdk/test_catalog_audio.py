"""Catalog search and prompt lines; loading a PCM palette."""

from __future__ import annotations

import wave
from pathlib import Path

from huxley_sdk import Catalog
from huxley_sdk.audio import load_pcm_palette


async def books() -> Catalog:
    catalog = Catalog()
    await catalog.upsert("a", {"title": "Cien años de soledad", "author": "García Márquez"}, {"path": "/a"})
    await catalog.upsert("b", {"title": "María", "author": "Jorge Isaacs"})
    await catalog.upsert("c", {"title": "El principito", "author": "Saint-Exupéry"})
    return catalog


async def test_search_is_fuzzy_accent_insensitive_and_ranked():
    catalog = await books()
    hits = await catalog.search("garcia marquez", limit=2)
    assert hits[0].id == "a" and hits[0].score > 0.9 and hits[0].payload == {"path": "/a"}
    assert len(hits) <= 2
    assert all(hits[i].score >= hits[i + 1].score for i in range(len(hits) - 1))
    assert await catalog.search("") == []
    assert (await catalog.search("principito"))[0].id == "c"


async def test_upsert_replaces_in_place_and_get_iter_len():
    catalog = await books()
    await catalog.upsert("a", {"title": "Cien años"})
    assert len(catalog) == 3
    assert [hit.id for hit in catalog] == ["a", "b", "c"]
    got = await catalog.get("a")
    assert got is not None and got.fields == {"title": "Cien años"} and got.payload == {}
    assert await catalog.get("zzz") is None


async def test_prompt_lines():
    catalog = await books()
    assert Catalog().as_prompt_lines() == ""
    text = catalog.as_prompt_lines(limit=2, header="Books", line=lambda h: f"* {h.fields['title']}")
    assert text.splitlines() == [
        "Books:",
        "* Cien años de soledad",
        "* María",
        "(and 1 more, find them by searching)",
    ]
    assert catalog.as_prompt_lines(limit=1, overflow="more").splitlines() == [
        "- Cien años de soledad",
        "more",
    ]


def write_wav(path: Path, rate: int, channels: int, frames: bytes) -> None:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(frames)


def test_load_pcm_palette_keeps_only_the_right_format(tmp_path: Path):
    write_wav(tmp_path / "start.wav", 24000, 1, b"\1\0" * 100)
    write_wav(tmp_path / "wrong_rate.wav", 16000, 1, b"\1\0" * 100)
    write_wav(tmp_path / "stereo.wav", 24000, 2, b"\1\0" * 100)
    (tmp_path / "broken.wav").write_bytes(b"RIFF nonsense")
    palette = load_pcm_palette(tmp_path, ["start", "wrong_rate", "stereo", "broken", "missing"])
    assert palette == {"start": b"\1\0" * 100}
    assert load_pcm_palette(tmp_path / "nowhere", ["start"]) == {}
