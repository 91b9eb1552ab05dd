"""The credential store: files and modes, idempotent init, JWTs that verify,
and a service connecting with nothing but its creds file."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import time
from dataclasses import replace

from huxley_cli import nats_jwt
from huxley_cli.auth import AuthStore
from huxley_cli.auth_cmd import init_home
from huxley_runtime.bus import connect, connect_options, identity_name, settle
from huxley_runtime.settings import HuxleySettings
from huxley_wire.permissions import Identity, Role, service_identity, skill_identity
from huxley_wire.subjects import Subjects
from security.conftest import Bus


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_secrets_only_the_owner_reads_and_is_idempotent(tmp_path):
    store = AuthStore.of(tmp_path)
    paths = init_home(store, "home", now=1_763_784_000)
    assert mode(store.root) == 0o700 and mode(store.root / "home") == 0o700
    for path in [*paths, store.config_path, store.root / "account.nk", store.root / "operator.nk"]:
        assert mode(path) == 0o600, path
    before = {p: p.read_text() for p in paths}
    again = init_home(store, "home", now=1_763_784_999)
    assert again == paths and {p: p.read_text() for p in again} == before  # nothing re-minted


def test_a_user_jwt_is_signed_by_the_account_and_carries_its_permissions(tmp_path):
    store = AuthStore.of(tmp_path)
    store.init(now=1_763_784_000)
    path = store.mint(skill_identity("home", "basic", ("timers",)), now=1_763_784_000)
    jwt = nats_jwt.jwt_of_creds(path.read_text())
    claims = nats_jwt.decode(jwt)
    assert nats_jwt.verify(jwt, store.account().public)
    assert not nats_jwt.verify(jwt, store.operator().public)
    assert claims["iss"] == store.account().public and claims["name"] == "skill-timers"
    assert "huxley.home.storage.kv.basic.timers" in claims["nats"]["pub"]["allow"]
    assert claims["nats"]["resp"] == {"max": 1, "ttl": 0}
    # jti: base32 SHA-512/256 of the claims without it, as nats' tools compute it
    body = {k: v for k, v in claims.items() if k != "jti"}
    digest = hashlib.new("sha512_256", json.dumps(body, separators=(",", ":")).encode()).digest()
    assert claims["jti"] == base64.b32encode(digest).rstrip(b"=").decode()


def test_an_identity_without_publishes_is_denied_all_not_allowed_all(tmp_path):
    store = AuthStore.of(tmp_path)
    store.init(now=1)
    path = store.mint(Identity(Role.OBSERVER, "home", "observer"), now=1)
    nats = nats_jwt.decode(nats_jwt.jwt_of_creds(path.read_text()))["nats"]
    assert "resp" not in nats  # an observer cannot answer
    assert nats["sub"]["deny"] == ["huxley.home.audio.mic.>"]


def test_ensure_re_mints_when_the_table_changed(tmp_path):
    store = AuthStore.of(tmp_path)
    store.init(now=1)
    identity = skill_identity("home", "basic", ("timers",))
    first = store.ensure(identity, now=1).read_text()
    assert store.ensure(identity, now=2).read_text() == first
    wider = replace(identity, skills=("timers", "reminders"))
    assert store.ensure(wider, now=3).read_text() != first
    assert store.identity("home", "skill-timers") == wider


def test_the_inbox_prefix_comes_from_the_creds(tmp_path):
    store = AuthStore.of(tmp_path)
    store.init(now=1)
    creds = store.mint(service_identity(Role.FOCUS, "home"), now=1)
    settings = HuxleySettings(nats_creds=creds, _env_file=None)  # type: ignore[call-arg]
    assert connect_options(settings, "focus")["inbox_prefix"] == "_INBOX_focus"
    explicit = settings.model_copy(update={"nats_inbox_prefix": "_INBOX_other"})
    assert connect_options(explicit, "focus")["inbox_prefix"] == "_INBOX_other"
    # The same name in another room is another identity: its prefix names the site.
    kitchen = settings.model_copy(update={"site": "kitchen"})
    assert connect_options(kitchen, "focus")["inbox_prefix"] == "_INBOX_focus@kitchen"
    assert identity_name(kitchen.model_copy(update={"nats_inbox_prefix": "_INBOX_focus@kitchen"})) == "focus"


async def test_a_service_connects_and_requests_with_only_its_creds(bus: Bus, sec_site: str):
    bridge = await bus.connect(service_identity(Role.BRIDGE, sec_site))
    subject = Subjects(sec_site).bridge_inject()

    async def answer(msg):
        await msg.respond(b"ok")

    await bridge.nc.subscribe(subject, cb=answer)
    await settle(bridge.nc)
    creds = bus.store.ensure(service_identity(Role.FOCUS, sec_site), int(time.time()))
    settings = HuxleySettings(nats_url=bus.server.url, site=sec_site, nats_creds=creds, _env_file=None)  # type: ignore[call-arg]
    nc = await connect(settings, "focus-test", give_up_after_s=5)
    try:
        reply = await nc.request(subject, b"", timeout=5)
        assert reply.data == b"ok" and reply.subject.startswith(f"_INBOX_focus@{sec_site}.")
    finally:
        await nc.close()
