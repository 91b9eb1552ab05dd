"""Storage settings (environment variables with the HUXLEY_ prefix)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from huxley_runtime.settings import HuxleySettings
from huxley_wire.subjects import token

POSTGRES_SCHEMES = ("postgresql+asyncpg://", "postgresql://", "postgres://")


class StorageSettings(HuxleySettings):
    # Unset: one SQLite file per persona under <data_dir>/storage/<persona>/.
    # postgresql+asyncpg://user:password@host/db: every persona in one PostgreSQL database.
    storage_url: str | None = None
    # FULL fsyncs the WAL at every commit, so an acknowledged write survives a
    # power cut as well as a killed process (docs/decisions.md STORAGE-2).
    storage_sqlite_synchronous: Literal["NORMAL", "FULL", "EXTRA"] = "FULL"
    storage_backups: bool = True
    storage_backup_keep: int = Field(default=7, ge=1)
    storage_backup_check_s: float = Field(default=900.0, gt=0)
    # How long a request may wait for the database before it answers
    # `unavailable`: keep it well under the clients' 2 s request timeout.
    storage_connect_timeout_s: float = Field(default=1.0, gt=0)
    storage_command_timeout_s: float = Field(default=5.0, gt=0)
    storage_probe_interval_s: float = Field(default=1.0, gt=0)
    # The personas served (comma-separated); empty: every persona file in
    # HUXLEY_PERSONAS_DIR. Any other persona token answers `not_found`.
    storage_personas: str = ""
    # Further sites (rooms) served besides HUXLEY_SITE, comma-separated: one
    # storage for the whole home, each room's data kept apart (scope.py).
    storage_sites: str = ""
    # Per-skill settings quota (keys, and bytes of keys plus values).
    storage_quota_keys: int = Field(default=10_000, ge=1)
    storage_quota_bytes: int = Field(default=16 * 1024 * 1024, ge=1)

    def served_sites(self) -> list[str]:
        """HUXLEY_SITE first, then HUXLEY_STORAGE_SITES (each token-checked)."""
        listed = [name.strip() for name in self.storage_sites.split(",") if name.strip()]
        return list(dict.fromkeys(token(name, "site") for name in [self.site, *listed]))

    @field_validator("storage_url")
    @classmethod
    def _postgres_only(cls, url: str | None) -> str | None:
        if not url:
            return None
        for scheme in POSTGRES_SCHEMES:
            if url.startswith(scheme):
                return "postgresql+asyncpg://" + url[len(scheme) :]
        raise ValueError(
            "HUXLEY_STORAGE_URL must be a postgresql+asyncpg:// URL; "
            "leave it unset for SQLite files under HUXLEY_DATA_DIR"
        )
