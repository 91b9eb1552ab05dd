"""`ctx.secrets`: one JSON file per skill, readable only by the host's user.

<persona data dir>/secrets/<skill>.json, the directory 0700 and the file
0600, replaced atomically (write a temporary file, fsync, rename) so a crash
never leaves half a file. Secrets never travel on the bus.

The published skills (stocks, telegram) tell operators to put their keys in
`<persona>/data/secrets/<skill>/values.json`, the reference's layout. That
place is read too, in our data dir (`<data dir>/<persona>/secrets/<skill>/
values.json`) and next to the persona file (`<personas dir>/<persona>/data/
secrets/<skill>/values.json`), but only while our own file does not exist:
ours wins as a whole (a warning says a documented file is being ignored).
The first write copies the documented values into ours, so nothing an
operator put there is lost, and writes never touch the operator's file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
from pathlib import Path

from huxley_runtime.logging import get_logger
from huxley_runtime.persona import PersonaError, resolve_persona_path

log = get_logger(component="secrets")


class SecretsFileError(Exception):
    """The secrets file exists but can't be used."""


def documented_places(persona_data_dir: Path, skill: str, persona_home: Path | None = None) -> list[Path]:
    """Where the published skills' READMEs say the secrets go, in the order read."""
    places = [persona_data_dir / "secrets" / skill / "values.json"]
    if persona_home is not None:
        places.append(persona_home / "data" / "secrets" / skill / "values.json")
    return places


def persona_home(ref: str, personas_dir: Path) -> Path | None:
    """The persona's own folder (`<personas dir>/<name>`), where the reference
    kept `data/`; None when the persona can't be found."""
    try:
        path = resolve_persona_path(ref, personas_dir)
    except PersonaError:
        return None
    return path.parent if path.name == "persona.yaml" else path.parent / path.stem


class FileSecrets:
    def __init__(self, path: Path, documented: list[Path] | None = None) -> None:
        self.path = path
        self.documented = list(documented or [])
        self._lock = asyncio.Lock()
        self._warned = False

    @classmethod
    def for_skill(cls, persona_data_dir: Path, skill: str, persona_home: Path | None = None) -> FileSecrets:
        return cls(
            persona_data_dir / "secrets" / f"{skill}.json",
            documented_places(persona_data_dir, skill, persona_home),
        )

    def _read(self) -> dict[str, str]:
        ours = _load(self.path)
        documented = next((p for p in self.documented if p.is_file()), None)
        if ours is None:
            return (_load(documented) or {}) if documented is not None else {}
        if documented is not None and not self._warned:
            self._warned = True
            log.warning("secrets_documented_file_ignored", ignored=str(documented), used=str(self.path))
        return ours

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


def _load(path: Path) -> dict[str, str] | None:
    """A secrets file's values; None when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SecretsFileError(f"{path} can't be read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SecretsFileError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise SecretsFileError(f"{path} must hold a JSON object of strings")
    return data
