"""The bus credentials of a home: keys, user `.creds` files and the nats-server
config that trusts them (NATS decentralized auth, operator mode, MEMORY resolver).

Layout under `<data_dir>/auth/` (directory 0700, every file 0600):

    operator.nk account.nk system.nk   nkey seeds (`huxley` only)
    operator.jwt                       the operator, naming the system account
    revocations.json                   user public key -> revoked-before time
    nats-server.conf                   operator, system_account, resolver_preload
    <site>/<identity>.creds            one per identity: JWT (its permissions) + seed

A new identity (a skill container, a room, a test's site) is minted without
touching the server: the account key signs it and the server checks the
signature. Only revoking needs the config rewritten and the server reloaded.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huxley_cli import nats_jwt
from huxley_cli.nats_jwt import Key
from huxley_wire.permissions import Grant, Identity, Role, grant_for

OPERATOR_NAME = "huxley"
ACCOUNT_NAME = "HUXLEY"
SYSTEM_NAME = "SYS"


def write_secret(path: Path, text: str) -> None:
    """Write a file only its owner can read, never briefly readable by others."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def user_permissions(grant: Grant) -> dict[str, Any]:
    """The permission fields of the user JWT for a grant."""
    return nats_jwt.user_permissions(
        pub_allow=grant.publish_subjects(),
        sub_allow=grant.subscribe_subjects(),
        sub_deny=grant.deny_subscribe_subjects(),
        allow_responses=grant.allow_responses,
    )


MAX_CONTROL_LINE = 65536  # bytes: a storage credential for ~250 rooms


def server_config(operator_jwt_path: Path, system_public: str, preload: dict[str, str]) -> str:
    lines = [
        "# Written by `huxley init`; do not edit (huxley rewrites it).",
        f"operator: {json.dumps(str(operator_jwt_path))}",
        f"system_account: {system_public}",
        "resolver: MEMORY",
        # A client's JWT travels in its CONNECT line; the home's storage JWT
        # lists every room (~250 bytes each), past the 4 KB default at ~12.
        f"max_control_line: {MAX_CONTROL_LINE}",
        "resolver_preload: {",
        *(f"  {public}: {json.dumps(jwt)}" for public, jwt in preload.items()),
        "}",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class AuthStore:
    """The keys and credentials of one data directory."""

    root: Path  # <data_dir>/auth

    @classmethod
    def of(cls, data_dir: Path) -> AuthStore:
        return cls(data_dir.resolve() / "auth")

    # -- paths ---------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / "nats-server.conf"

    @property
    def operator_jwt_path(self) -> Path:
        return self.root / "operator.jwt"

    def creds_path(self, site: str, name: str) -> Path:
        return self.root / site / f"{name}.creds"

    def creds_for(self, identity: Identity) -> Path:
        return self.creds_path(identity.site, identity.name)

    # -- keys ----------------------------------------------------------------------------------
    def _key(self, kind: str, filename: str) -> Key:
        path = self.root / filename
        if path.is_file():
            return Key.from_seed(path.read_text().strip())
        key = Key.new(kind)
        write_secret(path, key.seed + "\n")
        return key

    def operator(self) -> Key:
        return self._key("operator", "operator.nk")

    def account(self) -> Key:
        return self._key("account", "account.nk")

    def system(self) -> Key:
        return self._key("account", "system.nk")

    def revocations(self) -> dict[str, int]:
        path = self.root / "revocations.json"
        if not path.is_file():
            return {}
        data = json.loads(path.read_text())
        return {str(k): int(v) for k, v in data.items()}

    # -- the server's side ---------------------------------------------------------------------
    def init(self, now: int) -> Path:
        """Keys and the server config; idempotent. Returns the config path."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        return self.write_server_config(now)

    def write_server_config(self, now: int) -> Path:
        operator, account, system = self.operator(), self.account(), self.system()
        # Signed once: nats-server refuses a config reload that changes the operator.
        if not self.operator_jwt_path.is_file():
            jwt = nats_jwt.operator_jwt(operator, OPERATOR_NAME, system.public, now)
            write_secret(self.operator_jwt_path, jwt + "\n")
        preload = {
            system.public: nats_jwt.account_jwt(operator, system.public, SYSTEM_NAME, now, jetstream=False),
            account.public: nats_jwt.account_jwt(
                operator, account.public, ACCOUNT_NAME, now, jetstream=True, revocations=self.revocations()
            ),
        }
        write_secret(self.config_path, server_config(self.operator_jwt_path, system.public, preload))
        return self.config_path

    # -- identities ----------------------------------------------------------------------------
    def mint(self, identity: Identity, now: int) -> Path:
        """A fresh key and JWT for the identity (rotation: the old key is revoked).
        Returns the creds path; call `write_server_config` if it reported a revocation."""
        path = self.creds_for(identity)
        old = self.user_public(path)
        if old is not None:
            self._revoke_key(old, now)
        user = Key.new("user")
        permissions = user_permissions(grant_for(identity))
        jwt = nats_jwt.user_jwt(self.account(), user.public, identity.name, now, permissions)
        write_secret(path, nats_jwt.creds(jwt, user.seed))
        write_secret(path.with_suffix(".json"), json.dumps(_identity_record(identity), indent=1) + "\n")
        if old is not None:
            self.write_server_config(now)
        return path

    def ensure(self, identity: Identity, now: int) -> Path:
        """The identity's creds, minted if missing or if its permissions changed."""
        path = self.creds_for(identity)
        if path.is_file():
            nats = nats_jwt.decode(nats_jwt.jwt_of_creds(path.read_text())).get("nats", {})
            wanted = user_permissions(grant_for(identity))
            if {k: nats.get(k) for k in ("pub", "sub", "resp")} == {
                k: wanted.get(k) for k in ("pub", "sub", "resp")
            }:
                return path
        return self.mint(identity, now)

    def revoke(self, site: str, name: str, now: int) -> bool:
        """Refuse this identity's current creds from now on (after a server reload)."""
        path = self.creds_path(site, name)
        public = self.user_public(path)
        if public is None:
            return False
        self._revoke_key(public, now)
        path.unlink()
        path.with_suffix(".json").unlink(missing_ok=True)
        self.write_server_config(now)
        return True

    def _revoke_key(self, public: str, now: int) -> None:
        revoked = self.revocations()
        revoked[public] = now
        write_secret(self.root / "revocations.json", json.dumps(revoked, indent=1, sort_keys=True) + "\n")

    def identity(self, site: str, name: str) -> Identity | None:
        """The identity minted under this name (for rotation), or None."""
        path = self.creds_path(site, name).with_suffix(".json")
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        return Identity(
            role=Role(data["role"]),
            site=data["site"],
            name=data["name"],
            persona=data.get("persona"),
            skills=tuple(data.get("skills", ())),
            hear_mic=bool(data.get("hear_mic", False)),
            also_sites=tuple(data.get("also_sites", ())),
        )

    @staticmethod
    def user_public(path: Path) -> str | None:
        if not path.is_file():
            return None
        return str(nats_jwt.decode(nats_jwt.jwt_of_creds(path.read_text()))["sub"])


def _identity_record(identity: Identity) -> dict[str, Any]:
    return {
        "role": str(identity.role),
        "site": identity.site,
        "name": identity.name,
        "persona": identity.persona,
        "skills": list(identity.skills),
        "hear_mic": identity.hear_mic,
        "also_sites": list(identity.also_sites),
    }


def nats_context(url: str, creds: Path, inbox_prefix: str) -> dict[str, str]:
    """A nats CLI context (`~/.config/nats/context/<name>.json`)."""
    return {
        "description": "huxley observer (read-only)",
        "url": url,
        "creds": str(creds.resolve()),
        "inbox_prefix": inbox_prefix,
    }
