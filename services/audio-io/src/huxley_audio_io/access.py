"""Who may open the gateway's WebSocket (pure: no sockets, no files).

Two questions, asked of every upgrade before it is accepted:

1. The Origin. A browser always sends one, and it is the only thing that
   tells the gateway which web page is connecting: a page of another site,
   opened in the household's browser, must not list sessions, listen or
   speak. Allowed: the page this gateway served (Origin names the same host
   and port as the Host header) and the origins listed in
   HUXLEY_WEB_ALLOWED_ORIGINS. Devices (an ESP32, a script) send none.
2. The caller. A connection from this machine to a loopback name needs
   nothing more; anything else needs the pairing code (the page's cookie or
   `?token=`). The Host header has to be a loopback name too, so a foreign
   page whose name an attacker points at 127.0.0.1 (DNS rebinding) counts as
   a stranger although its Origin matches its Host.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

COOKIE = "huxley_pairing"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


@dataclass(frozen=True, slots=True)
class Caller:
    peer: str  # the TCP peer's address
    host_header: str | None
    origin: str | None
    token: str | None  # from ?token= or the cookie
    scheme: str = "http"  # how the gateway is served (http or https)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str  # why, for the log line (never the token)


def is_loopback_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def is_loopback_host(host: str) -> bool:
    """A bind address or host name that only this machine can reach."""
    name = host.strip().lower()
    return name in LOOPBACK_NAMES or is_loopback_address(name)


def split_host(host_header: str, scheme: str) -> tuple[str, int] | None:
    """`name:port` (or `[v6]:port`, or no port) as (lower-case name, port)."""
    try:
        parts = urlsplit(f"//{host_header.strip()}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.lower(), port if port is not None else DEFAULT_PORTS.get(scheme, 80)


def normalize_origin(origin: str) -> str | None:
    """`scheme://host:port` with the default port spelled out, or None when it is no origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/"):
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host.lower()}:{port if port is not None else DEFAULT_PORTS[parts.scheme]}"


def normalize_origins(origins: list[str]) -> frozenset[str]:
    """The allowed list, normalized; an entry that is no origin raises ValueError."""
    out = set()
    for origin in origins:
        normal = normalize_origin(origin)
        if normal is None:
            raise ValueError(f"{origin!r} is not an origin (scheme://host[:port])")
        out.add(normal)
    return frozenset(out)


def token_matches(given: str | None, code: str | None) -> bool:
    if not given or not code:
        return False
    return secrets.compare_digest(_canonical(given).encode(), _canonical(code).encode())


def _canonical(code: str) -> str:
    """Pairing codes are typed by people: case, dashes and spaces do not count."""
    return "".join(c for c in code.upper() if c.isalnum())


def origin_verdict(caller: Caller, allowed_origins: frozenset[str]) -> Verdict | None:
    """A refusal for the Origin, or None when the Origin (or its absence) is fine."""
    if caller.origin is None:
        return None
    origin = normalize_origin(caller.origin)
    if origin is None:
        return Verdict(False, "origin_malformed")
    if origin in allowed_origins:
        return None
    served = split_host(caller.host_header or "", caller.scheme)
    if served is not None and _origin_host(origin) == served:
        return None
    return Verdict(False, "origin_not_allowed")


def _origin_host(origin: str) -> tuple[str, int]:
    parts = urlsplit(origin)
    assert parts.hostname is not None and parts.port is not None  # normalized above
    return parts.hostname, parts.port


def is_local(caller: Caller) -> bool:
    """From this machine, to this machine by a loopback name."""
    served = split_host(caller.host_header or "", caller.scheme)
    return is_loopback_address(caller.peer) and served is not None and is_loopback_host(served[0])


def judge(caller: Caller, allowed_origins: frozenset[str], code: str | None) -> Verdict:
    """May this caller open the WebSocket? `code` is the pairing code (None: none made)."""
    refused = origin_verdict(caller, allowed_origins)
    if refused is not None:
        return refused
    if is_local(caller):
        return Verdict(True, "loopback")
    if token_matches(caller.token, code):
        return Verdict(True, "token")
    return Verdict(False, "token_wrong" if caller.token else "token_required")
