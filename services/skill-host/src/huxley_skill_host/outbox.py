"""The inject outbox: every inject a skill asks for, on disk until focus has it.

One JSON file per inject (`<inject_id>.json`) in the host's outbox folder,
written to a temporary file, fsynced and renamed into place (then the folder
fsynced), so a SIGKILL leaves either the whole entry or none. The sender
(injector.py) removes the file once focus acknowledged the inject; at start
the host replays what is left, with the same inject_id, so focus answers
`duplicate` to one it had already accepted. See docs/decisions.md.

`OutboxEntry` and its TTL arithmetic are pure (they take `now`, wall-clock
seconds, because an entry outlives the process); `InjectOutbox` is the
folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from huxley_wire.messages import focus as f

SUFFIX = ".json"


class OutboxEntry(BaseModel):
    """One inject as recorded before `inject_turn` returns."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    inject_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    prompt: str
    priority: f.InjectPriority = f.InjectPriority.NORMAL
    dedup_key: str | None = None
    skill: str
    wait: bool = False
    created_at: float  # wall clock (time.time()): entries outlive the process
    ttl_s: float = Field(gt=0)

    def remaining_s(self, now: float) -> float:
        """Seconds of its TTL left at `now` (never more than the TTL, even if
        the clock went back)."""
        return min(self.ttl_s, self.created_at + self.ttl_s - now)

    def expired(self, now: float) -> bool:
        return self.remaining_s(now) <= 0

    def message(self, now: float) -> f.Inject:
        """The focus request, carrying what is left of the TTL so focus drops
        it from its queue when it is too late to speak."""
        return f.Inject(
            inject_id=self.inject_id,
            prompt=self.prompt,
            priority=self.priority,
            dedup_key=self.dedup_key,
            ttl_s=max(self.remaining_s(now), 0.001),
            wait=self.wait,
            skill=self.skill,
        )


class OutboxError(Exception):
    """The outbox folder or an entry in it can't be used."""


class InjectOutbox:
    """The folder of entries. Blocking file I/O: call it from a thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, inject_id: str) -> Path:
        return self.folder / f"{inject_id}{SUFFIX}"

    def record(self, entry: OutboxEntry) -> None:
        """Durably write one entry (atomic: all of it or nothing)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=f".{entry.inject_id}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(entry.model_dump_json())
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self._path(entry.inject_id))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        self._sync_folder()

    def remove(self, inject_id: str) -> None:
        """Forget an entry focus has (or one that is too late); a missing one is fine."""
        try:
            os.unlink(self._path(inject_id))
        except FileNotFoundError:
            return
        self._sync_folder()

    def load(self) -> tuple[list[OutboxEntry], list[tuple[Path, str]]]:
        """Every readable entry, oldest first, and the unreadable files with
        the reason (left in place for an operator; they are never sent)."""
        entries: list[OutboxEntry] = []
        bad: list[tuple[Path, str]] = []
        if not self.folder.is_dir():
            return entries, bad
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            try:
                raw: Any = json.loads(path.read_text(encoding="utf-8"))
                entry = OutboxEntry.model_validate(raw)
            except (OSError, ValueError, ValidationError) as exc:
                bad.append((path, f"{type(exc).__name__}: {str(exc)[:200]}"))
                continue
            if path.name != f"{entry.inject_id}{SUFFIX}":
                bad.append((path, f"holds inject {entry.inject_id!r}, not its file name"))
                continue
            entries.append(entry)
        entries.sort(key=lambda e: (e.created_at, e.inject_id))
        return entries, bad

    def _sync_folder(self) -> None:
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
