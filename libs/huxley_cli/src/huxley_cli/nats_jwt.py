"""NATS JWTs (operator, account, user) signed with nkeys, and `.creds` files.

A NATS JWT is `base64url(header).base64url(claims).base64url(signature)`, no
padding, header `{"typ":"JWT","alg":"ed25519-nkey"}`, signed by the issuer's
nkey. `jti` is the base32 (no padding) SHA-512/256 of the claims with `jti`
left out, as nats' own tools compute it. Field names follow nats-io/jwt v2;
`nats.version` is 2. Written here rather than taken from the `nats-jwt`
package: that one pins old dependencies (pytz < 2025), has no types and calls
itself untested, while what we need is about a hundred lines on `nkeys`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

import nacl.exceptions
import nacl.signing
import nkeys

HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}
VERSION = 2
UNLIMITED = -1

PREFIXES = {
    "operator": nkeys.PREFIX_BYTE_OPERATOR,
    "account": nkeys.PREFIX_BYTE_ACCOUNT,
    "user": nkeys.PREFIX_BYTE_USER,
}


@dataclass(frozen=True, slots=True)
class Key:
    """An nkey: its seed (secret, `S...`) and public key (`O...`, `A...`, `U...`)."""

    seed: str
    public: str

    @classmethod
    def new(cls, kind: str) -> Key:
        seed = nkeys.encode_seed(os.urandom(32), PREFIXES[kind]).decode()
        return cls.from_seed(seed)

    @classmethod
    def from_seed(cls, seed: str) -> Key:
        pair = nkeys.from_seed(bytearray(seed.encode()))
        return cls(seed=seed, public=pair.public_key.decode())

    def sign(self, data: bytes) -> bytes:
        pair = nkeys.from_seed(bytearray(self.seed.encode()))
        return bytes(pair.sign(data))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def encode(claims: dict[str, Any], issuer: Key, now: int) -> str:
    """Sign `claims` (sub, name, nats) as `issuer` at unix time `now`."""
    body = {"iat": now, "iss": issuer.public, **claims}
    digest = hashlib.new("sha512_256", _json(body)).digest()
    body = {"jti": base64.b32encode(digest).rstrip(b"=").decode(), **body}
    signing_input = f"{_b64(_json(HEADER))}.{_b64(_json(body))}"
    return f"{signing_input}.{_b64(issuer.sign(signing_input.encode()))}"


def decode(token: str) -> dict[str, Any]:
    """The claims of a JWT, without checking the signature (`verify` does)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a JWT has three parts")
    claims = json.loads(_unb64(parts[1]))
    if not isinstance(claims, dict):
        raise ValueError("JWT claims are not an object")
    return claims


def verify(token: str, issuer_public: str) -> bool:
    """Whether `issuer_public` signed this JWT."""
    head, body, signature = token.split(".")
    raw = base64.b32decode(issuer_public + "=" * (-len(issuer_public) % 8))
    verify_key = nacl.signing.VerifyKey(raw[1:33])  # prefix byte, 32-byte key, crc16
    try:
        verify_key.verify(f"{head}.{body}".encode(), _unb64(signature))
    except nacl.exceptions.BadSignatureError:
        return False
    return True


def operator_jwt(operator: Key, name: str, system_account: str, now: int) -> str:
    nats = {"system_account": system_account, "type": "operator", "version": VERSION}
    return encode({"name": name, "sub": operator.public, "nats": nats}, operator, now)


def account_jwt(
    operator: Key,
    account_public: str,
    name: str,
    now: int,
    *,
    jetstream: bool,
    revocations: dict[str, int] | None = None,
) -> str:
    limits: dict[str, Any] = {
        "subs": UNLIMITED,
        "data": UNLIMITED,
        "payload": UNLIMITED,
        "imports": UNLIMITED,
        "exports": UNLIMITED,
        "wildcards": True,
        "conn": UNLIMITED,
        "leaf": UNLIMITED,
    }
    if jetstream:  # non-zero storage enables JetStream for the account
        limits |= {
            "mem_storage": UNLIMITED,
            "disk_storage": UNLIMITED,
            "streams": UNLIMITED,
            "consumer": UNLIMITED,
        }
    nats: dict[str, Any] = {"limits": limits, "default_permissions": {"pub": {}, "sub": {}}}
    if revocations:
        nats["revocations"] = dict(sorted(revocations.items()))
    nats |= {"type": "account", "version": VERSION}
    return encode({"name": name, "sub": account_public, "nats": nats}, operator, now)


def _permission(allow: list[str], deny: list[str]) -> dict[str, list[str]]:
    # An empty permission means "everything" to nats-server: deny all instead.
    if not allow and not deny:
        return {"deny": [">"]}
    out: dict[str, list[str]] = {}
    if allow:
        out["allow"] = allow
    if deny:
        out["deny"] = deny
    return out


def user_permissions(
    *, pub_allow: list[str], sub_allow: list[str], sub_deny: list[str], allow_responses: bool
) -> dict[str, Any]:
    """The permission fields of a user JWT's `nats` claims."""
    out: dict[str, Any] = {"pub": _permission(pub_allow, []), "sub": _permission(sub_allow, sub_deny)}
    if allow_responses:
        out["resp"] = {"max": 1, "ttl": 0}  # one reply per request, the server's default expiry
    return out


def user_jwt(account: Key, user_public: str, name: str, now: int, permissions: dict[str, Any]) -> str:
    nats = {**permissions, "subs": UNLIMITED, "data": UNLIMITED, "payload": UNLIMITED}
    nats |= {"type": "user", "version": VERSION}
    return encode({"name": name, "sub": user_public, "nats": nats}, account, now)


def creds(jwt: str, seed: str) -> str:
    """The `.creds` file nats-py (`user_credentials`) and the nats CLI read."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{seed}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


def jwt_of_creds(text: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if "BEGIN NATS USER JWT" in line and i + 1 < len(lines):
            return lines[i + 1].strip()
    raise ValueError("no user JWT in this creds file")
