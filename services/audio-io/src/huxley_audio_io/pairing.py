"""The gateway's pairing code: made once, kept under the data directory
(`web/pairing-code`, mode 0600 in a 0700 folder), shown by `huxley pair` and
in the `huxley up` banner, asked of every client that is not on this machine.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed by people
GROUPS, GROUP_LEN = 3, 4  # 12 symbols of 5 bits: 60 bits


def code_path(data_dir: Path) -> Path:
    return data_dir / "web" / "pairing-code"


def new_code() -> str:
    groups = ("".join(secrets.choice(ALPHABET) for _ in range(GROUP_LEN)) for _ in range(GROUPS))
    return "-".join(groups)


def read_code(data_dir: Path) -> str | None:
    """The current code, or None when none was made yet (or the file is unreadable)."""
    try:
        code = code_path(data_dir).read_text().strip()
    except OSError:
        return None
    return code or None


def ensure_code(data_dir: Path, *, renew: bool = False) -> str:
    """The current code, making one first if there is none (or `renew`)."""
    if not renew and (code := read_code(data_dir)):
        return code
    path = code_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    code = new_code()
    # Written to a new file created 0600 and renamed over: never readable by others, even briefly.
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(code + "\n")
    tmp.replace(path)
    return code


def gateway_lines(data_dir: Path) -> list[str]:
    """What `huxley up` says about the gateway, from the settings audio-io will
    read (the same environment and .env): the address it really binds, and the
    pairing code when it listens beyond loopback (made here if need be)."""
    from huxley_audio_io.access import is_loopback_host
    from huxley_audio_io.settings import AudioSettings

    settings = AudioSettings()
    if settings.audio_backend != "web":
        return [f"audio      : {settings.audio_backend} backend (no web client)"]
    scheme = "https" if settings.web_tls_cert else "http"
    host, port = settings.web_host, settings.web_port
    bound = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if is_loopback_host(host):
        return [f"web client : {scheme}://{bound}/  (this machine only)"]
    here = f"{scheme}://127.0.0.1:{port}/" if host in ("0.0.0.0", "::") else f"{scheme}://{bound}/"
    return [
        f"web client : {here}  (listening on {bound}, beyond this machine)",
        f"pairing    : {ensure_code(data_dir)}  (other devices need it; `huxley pair` shows it)",
    ]
