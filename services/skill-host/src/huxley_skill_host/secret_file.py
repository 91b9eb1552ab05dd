"""`ctx.secrets`: one JSON file per skill, readable only by the host's user.

<persona data dir>/secrets/<skill>.json, the directory 0700 and the file
0600, replaced atomically (write a temporary file, fsync, rename) so a crash
never leaves half a file. Secrets never travel on the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from pathlib import Path


class SecretsFileError(Exception):
    """The secrets file exists but can't be used."""


class FileSecrets:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = asyncio.Lock()

    @classmethod
    def for_skill(cls, persona_data_dir: Path, skill: str) -> FileSecrets:
        return cls(persona_data_dir / "secrets" / f"{skill}.json")

    def _read(self) -> dict[str, str]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SecretsFileError(f"{self.path} is not valid JSON ({exc}); fix or remove it") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise SecretsFileError(f"{self.path} must hold a JSON object of strings")
        return data

    def _write(self, data: dict[str, str]) -> None:
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp makes it 0600
                json.dump(data, out, indent=2, sort_keys=True)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        directory = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    async def get(self, key: str) -> str | None:
        async with self._lock:
            return self._read().get(key)

    async def set(self, key: str, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"secret values are strings, got {type(value).__name__}")
        async with self._lock:
            data = self._read()
            data[key] = value
            self._write(data)

    async def delete(self, key: str) -> None:
        async with self._lock:
            data = self._read()
            if data.pop(key, None) is not None:
                self._write(data)

    async def keys(self) -> list[str]:
        async with self._lock:
            return sorted(self._read())
