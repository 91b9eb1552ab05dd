"""A short spoken book for the offline demo.

On a fresh install the audiobooks library is empty, so the demo's "play the
book" would only hear "I can't find that book". In offline mode `huxley up`
speaks a few sentences into the library with espeak-ng, once, and only when
the library holds no book at all (a household's own books are never touched).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from huxley_runtime.persona import Persona

# What the published audiobooks skill scans for (its library is any of these).
BOOK_SUFFIXES = frozenset({".mp3", ".m4a", ".m4b", ".ogg", ".opus", ".flac", ".wav"})
# <author>/<title>: the skill takes the folder as the author; "The Book" is
# what the simulator's "play the book" finds by fuzzy match.
DEMO_BOOK = Path("Huxley") / "The Book.wav"
DEMO_TEXT = (
    "Chapter one. The house was quiet in the early morning. "
    "The kettle waited on the stove, the clock in the hall ticked, "
    "and somewhere upstairs a cat stretched in a patch of sun. "
    "Nobody had spoken yet, but the house was listening, as it always was, "
    "ready to help with the small things of the day: the time, a timer for the eggs, "
    "a reminder to water the plants, and a story for the evening. "
    "This is the end of the demo book. Add your own books to the library folder."
)


@dataclass(frozen=True)
class DemoBook:
    """What happened, as lines for the start-up banner."""

    path: Path | None
    lines: tuple[str, ...]


def library_of(persona: Persona, data: Path) -> Path | None:
    """The persona's audiobooks library, as the skill resolves it (relative to
    the persona's data folder), or None when the persona has no audiobooks."""
    config = persona.skills.get("audiobooks")
    if config is None:
        return None
    library = Path(str(config.get("library", "audiobooks")))
    return library if library.is_absolute() else data / persona.name / library


def has_books(library: Path) -> bool:
    return library.is_dir() and any(p.suffix.lower() in BOOK_SUFFIXES for p in library.rglob("*"))


def ensure_demo_book(library: Path, espeak: str | None = None) -> DemoBook:
    """Write the demo book into an empty library; never overwrite anything."""
    if has_books(library):
        return DemoBook(None, ())
    binary = shutil.which(espeak or "espeak-ng")
    if binary is None:
        missing = f"!! The audiobooks library {library} is empty and espeak-ng is missing: add a book there."
        return DemoBook(None, (missing,))
    target = library / DEMO_BOOK
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")  # not a book suffix: never scanned half-written
    result = subprocess.run(
        [binary, "-v", "en", "-s", "150", "-w", str(partial), DEMO_TEXT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        reason = (result.stderr.strip() or f"exit {result.returncode}").splitlines()[-1]
        return DemoBook(None, (f"!! Could not speak the demo book with espeak-ng ({reason}).",))
    partial.replace(target)
    return DemoBook(target, (f"!! The library was empty: a short demo book is in {target}.",))
