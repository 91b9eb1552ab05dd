"""The offline demo's book: spoken into an empty library once, found by
"play the book", and never written over a household's own books."""

from __future__ import annotations

import json
import subprocess
import wave
from pathlib import Path

import pytest

from huxley_cli.demo_book import DEMO_BOOK, ensure_demo_book, has_books, library_of
from huxley_runtime.persona import load_persona
from huxley_sdk.catalog import Catalog
from huxley_skill_audiobooks.skill import _RESOLVE_THRESHOLD
from support.services import REPO


def test_an_empty_library_gets_a_spoken_book(tmp_path: Path) -> None:
    library = tmp_path / "audiobooks"
    made = ensure_demo_book(library)
    assert made.path == library / DEMO_BOOK
    with wave.open(str(made.path)) as book:
        seconds = book.getnframes() / book.getframerate()
    assert seconds > 10, "a few sentences, long enough to hear it play and to barge in"
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-of", "json", str(made.path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(json.loads(probe.stdout)["format"]["duration"]) == pytest.approx(seconds, rel=0.01)
    assert not list(library.rglob("*.partial"))
    # The second start finds a book and leaves it alone.
    before = made.path.stat().st_mtime_ns
    again = ensure_demo_book(library)
    assert again.path is None and again.lines == ()
    assert made.path.stat().st_mtime_ns == before


def test_a_household_library_is_never_touched(tmp_path: Path) -> None:
    library = tmp_path / "audiobooks"
    own = library / "Someone" / "Their Book.m4b"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"not really audio")
    assert ensure_demo_book(library).path is None
    assert sorted(p.name for p in library.rglob("*") if p.is_file()) == ["Their Book.m4b"]


def test_without_espeak_it_says_what_to_do(tmp_path: Path) -> None:
    made = ensure_demo_book(tmp_path / "audiobooks", espeak=str(tmp_path / "no-espeak-here"))
    assert made.path is None
    assert not has_books(tmp_path / "audiobooks")
    assert made.lines and "espeak" in made.lines[0]


def test_the_default_persona_library_and_the_book_the_simulator_asks_for(tmp_path: Path) -> None:
    persona = load_persona("basic", REPO / "personas")
    assert library_of(persona, tmp_path) == tmp_path / "basic" / "audiobooks"


async def test_play_the_book_finds_it_as_the_audiobooks_skill_would() -> None:
    # The skill resolves "book" (the simulator's title) by fuzzy match over
    # title and author, and plays only above its threshold.
    catalog = Catalog()
    await catalog.upsert(str(DEMO_BOOK), {"title": DEMO_BOOK.stem, "author": DEMO_BOOK.parent.name})
    hits = await catalog.search("book", limit=1)
    assert hits and hits[0].id == str(DEMO_BOOK) and hits[0].score > _RESOLVE_THRESHOLD
