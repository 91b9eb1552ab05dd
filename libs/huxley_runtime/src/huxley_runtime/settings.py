"""Settings shared by every service: environment variables with the HUXLEY_
prefix, or a `.env` file in the working directory. Each service extends
`HuxleySettings` with its own fields."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from huxley_wire.subjects import DEFAULT_SITE


def new_instance_id(service: str) -> str:
    return f"{service}-{secrets.token_hex(3)}"


class HuxleySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUXLEY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    site: str = DEFAULT_SITE
    nats_url: str = "nats://127.0.0.1:4222"
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    nats_token: SecretStr | None = None
    nats_creds: Path | None = None  # a NATS .creds file (JWT + nkey seed)
    # Replies come back under this prefix; an identity may read only its own
    # (`_INBOX_<identity>`). Unset with creds: derived from the JWT's name.
    nats_inbox_prefix: str | None = None

    persona: str = "basic"  # a name under personas_dir, or a path to a YAML file
    personas_dir: Path = Path("personas")
    data_dir: Path = Path("data")

    log_json: bool = False
    log_level: str = "info"

    # A stop answers the requests it took within this (compose: 10 s to SIGKILL).
    stop_grace_s: float = Field(default=2.0, ge=0)

    # Unique per process; a fixed value lets a restarted holder reclaim its lease.
    instance: str = Field(default="")

    def instance_id(self, service: str) -> str:
        return self.instance or new_instance_id(service)
