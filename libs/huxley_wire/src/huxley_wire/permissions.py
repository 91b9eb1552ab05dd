"""Who may publish and subscribe what: the one permission table of the bus.

Pure data built from `Subjects`, so no subject is spelled twice. `huxley_cli.auth`
turns a `Grant` into a user JWT; `huxley_wire.permissions_doc` renders it into
docs/security.md and docs/protocol.md, and tests/security checks the server
against it. Where an action belongs to one part, its subject carries who acts
(`focus.rpc.<holder>`, `audio.out.<owner>.<stream>`, `audio.mic.claim.<holder>`,
`focus.notify.<holder>`, `skills.host.<host>`), so these rules alone bind each
part to its own work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from huxley_wire.subjects import DEFAULT_SITE, Subjects, focus_kv_bucket, token


class Role(StrEnum):
    STORAGE = "storage"
    FOCUS = "focus"
    BRIDGE = "realtime-bridge"
    AUDIO_IO = "audio-io"
    SKILL = "skill-host"
    OBSERVER = "observer"
    ADMIN = "admin"
    SATELLITE = "satellite"  # a room device's leaf-node connection (its audio-io)
    # Tests and benches only: stands in for the peers they fake (never minted by `huxley init`).
    HARNESS = "harness"


# Roles one credential may hold at several sites (`Identity.also_sites`).
MULTI_SITE_ROLES = frozenset({Role.STORAGE, Role.OBSERVER, Role.ADMIN})

SERVICE_ROLES = (Role.STORAGE, Role.FOCUS, Role.BRIDGE, Role.AUDIO_IO, Role.SKILL)

# NATS' own subjects (not huxley's): micro discovery.
SRV_ANY = "$SRV.>"

# The holder name the bridge uses with focus today.
BRIDGE_HOLDER = "bridge"


def srv_subjects(service: str) -> tuple[str, ...]:
    """What a micro service named `huxley-<service>` subscribes: PING/INFO/STATS
    for all, for its name, and for its instance."""
    name = f"huxley-{token(service, 'service')}"
    return ("$SRV.*", f"$SRV.*.{name}", f"$SRV.*.{name}.*")


# Between an identity's name and its site in an inbox prefix: not a token
# character, so `_INBOX_<name>@<site>` can be split back unambiguously.
SITE_MARK = "@"


def inbox_prefix(identity: str, site: str = DEFAULT_SITE) -> str:
    """Each identity reads replies under its own prefix only (nats-py's
    `inbox_prefix`); a shared `_INBOX.>` would let any part read every reply.
    The same name at another site (every room has a `focus`) is another
    identity, so its prefix names the site: `_INBOX_<name>@<site>`; the default
    site keeps `_INBOX_<name>` (a one-room home's prefixes are unchanged)."""
    name = f"_INBOX_{token(identity, 'identity')}"
    return name if token(site, "site") == DEFAULT_SITE else f"{name}{SITE_MARK}{site}"


@dataclass(frozen=True, slots=True)
class Rule:
    subject: str
    why: str


@dataclass(frozen=True, slots=True)
class Identity:
    """One credential: a role at a site. `name` is the NATS user name, the
    inbox prefix and (for skills and the bridge) the focus holder."""

    role: Role
    site: str
    name: str
    persona: str | None = None  # None: any persona (the services serve all)
    skills: tuple[str, ...] = ()  # skill-host: the skills this container runs
    hear_mic: bool = False  # observer: may it see mic audio
    # Storage, the observer and the admin only: further sites it serves or
    # reads (one storage for the home; `huxley status` across rooms).
    also_sites: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        token(self.site, "site")
        token(self.name, "identity")
        if self.persona is not None:
            token(self.persona, "persona")
        for skill in self.skills:
            token(skill, "skill")
        if self.role is Role.SKILL and (not self.skills or self.persona is None):
            raise ValueError("a skill-host identity needs its persona and at least one skill")
        for other in self.also_sites:
            token(other, "site")
        if self.also_sites and self.role not in MULTI_SITE_ROLES:
            raise ValueError(f"a {self.role} identity serves one site: mint one per site")

    @property
    def sites(self) -> tuple[str, ...]:
        return (self.site, *(s for s in self.also_sites if s != self.site))

    @property
    def inbox_prefix(self) -> str:
        return inbox_prefix(self.name, self.site)


@dataclass(frozen=True, slots=True)
class Grant:
    identity: Identity
    publish: tuple[Rule, ...]
    subscribe: tuple[Rule, ...]
    deny_subscribe: tuple[Rule, ...] = ()
    allow_responses: bool = False  # may answer requests it received
    jetstream: bool = False

    @property
    def inbox_prefix(self) -> str:
        return self.identity.inbox_prefix

    def publish_subjects(self) -> list[str]:
        return _subjects(self.publish)

    def subscribe_subjects(self) -> list[str]:
        return _subjects(self.subscribe)

    def deny_subscribe_subjects(self) -> list[str]:
        return _subjects(self.deny_subscribe)


def _subjects(rules: tuple[Rule, ...]) -> list[str]:
    out: list[str] = []
    for rule in rules:
        if rule.subject not in out:
            out.append(rule.subject)
    return out


@dataclass
class _Builder:
    pub: list[Rule] = field(default_factory=list)
    sub: list[Rule] = field(default_factory=list)

    def p(self, subject: str, why: str) -> None:
        self.pub.append(Rule(subject, why))

    def s(self, subject: str, why: str) -> None:
        self.sub.append(Rule(subject, why))


def _service_basics(b: _Builder, s: Subjects, identity: Identity, service: str) -> None:
    b.s(identity.inbox_prefix + ".>", "its own replies")
    b.s(s.health(service), "answers health")
    b.p(s.health(service), "its container's health check (huxley ping)")
    for subject in srv_subjects(service):
        b.s(subject, "answers nats micro discovery")


def grant_for(identity: Identity) -> Grant:
    """The permissions of one identity: the table of record."""
    s = Subjects(identity.site)
    b = _Builder()
    persona = identity.persona
    sessions = s.storage_sessions(persona) if persona else s.storage_sessions_all()
    role = identity.role
    if role is Role.STORAGE:
        # One storage serves every room of the home (their data kept apart by
        # site, docs/scale.md); the same rules at each site it serves.
        for site in identity.sites:
            s = Subjects(site)
            _service_basics(b, s, identity, "storage")
            b.s(s.storage_kv_all(), "serves skill settings")
            b.s(s.storage_schema_all(), "serves schema versions")
            b.s(s.storage_sessions_all(), "serves sessions")
            b.s(s.storage_admin(), "serves export/import")
        return Grant(identity, tuple(b.pub), tuple(b.sub), allow_responses=True)
    if role is Role.FOCUS:
        _service_basics(b, s, identity, "focus")
        b.s(s.focus_rpc_all(), "serves focus requests, per holder")
        b.p(s.focus_notify_all(), "notifies holders")
        b.p(s.focus_events(), "publishes activity, queue and inject events")
        b.p(s.bridge_inject(), "hands an inject to the bridge (only focus)")
        # Its own site's bucket only: another room's focus state is out of reach.
        for subject, why in _focus_jetstream(s):
            b.p(subject, f"keeps its state in JetStream ({why})")
        return Grant(identity, tuple(b.pub), tuple(b.sub), allow_responses=True, jetstream=True)
    if role is Role.BRIDGE:
        _service_basics(b, s, identity, "realtime-bridge")
        b.s(s.bridge_rpc(), "serves completion, snapshot")
        b.s(s.bridge_inject(), "serves run_inject (focus's)")
        b.s(s.audio_mic_assistant(), "hears the user while PTT is held")
        b.s(s.audio_ptt(), "PTT presses")
        b.s(s.audio_played(), "playback reports")
        b.s(s.audio_event("control"), "web client controls")
        b.s(s.skills_manifest(), "learns the tools")
        b.s(s.focus_notify(BRIDGE_HOLDER), "its focus notices")
        b.s(s.focus_events(), "focus events")
        b.p(s.bridge_events(), "publishes its events")
        b.p(s.skill_tool_all(), "calls tools (only the bridge may)")
        b.p(s.skill_host_rpc_all(), "discards effects")
        b.p(s.skills_announce(), "asks hosts to announce")
        b.p(sessions, "records the conversation")
        b.p(
            s.storage_kv(persona, str(Role.BRIDGE)) if persona else s.storage_kv_of_skill(str(Role.BRIDGE)),
            "its own settings (the day's model cost)",
        )
        b.p(s.audio_rpc(), "clears and sets volume")
        b.p(s.focus_rpc_of(BRIDGE_HOLDER), "focus requests as holder bridge")
        b.p(s.audio_out_owned(BRIDGE_HOLDER), "dialog audio under its own name")
        return Grant(identity, tuple(b.pub), tuple(b.sub), allow_responses=True)
    if role in (Role.AUDIO_IO, Role.SATELLITE):
        # A satellite's leaf connection carries its audio-io and nothing else:
        # the same rules, at its site only (publish = exported to the hub,
        # subscribe = imported into the leaf).
        _service_basics(b, s, identity, "audio-io")
        _audio_io_rules(b, s, identity, sessions)
        if role is Role.SATELLITE:
            # allow_responses does not cross a leaf connection (nats-server
            # issue 2949): audio-io's answers go to its askers' inboxes by name.
            for asker in (str(Role.BRIDGE), "observer", "admin"):
                b.p(inbox_prefix(asker, identity.site) + ".>", f"answers {asker}'s requests across the leaf")
        return Grant(identity, tuple(b.pub), tuple(b.sub), allow_responses=True)
    if role is Role.SKILL:
        return _skill_grant(identity, s, b)
    if role is Role.OBSERVER:
        b.s(identity.inbox_prefix + ".>", "its own replies")
        deny: list[Rule] = []
        for site in identity.sites:
            s = Subjects(site)
            b.s(s.everything, "reads the whole site")
            b.p(s.health_all(), "asks for health (huxley status)")
            if not identity.hear_mic:
                deny.append(Rule(s.audio_mic_all(), "does not hear the user"))
        b.p(SRV_ANY, "nats micro ls / info / stats")
        return Grant(identity, tuple(b.pub), tuple(b.sub), deny_subscribe=tuple(deny))
    if role is Role.ADMIN:
        b.s(identity.inbox_prefix + ".>", "its own replies")
        for site in identity.sites:
            s = Subjects(site)
            b.p(s.storage_admin(), "huxley storage export / import")
            b.p(s.health_all(), "asks for health")
        b.p(SRV_ANY, "nats micro discovery")
        return Grant(identity, tuple(b.pub), tuple(b.sub))
    if role is Role.HARNESS:
        # The test suite's (and the benches') own connection: it plays
        # whichever peer they fake, at its site only. `huxley init` never mints it.
        b.s(identity.inbox_prefix + ".>", "its own replies")
        b.s(s.everything, "watches and serves anything at its site (tests)")
        b.p(s.everything, "publishes anything at its site (tests)")
        b.s(SRV_ANY, "nats micro discovery")
        b.p(SRV_ANY, "nats micro discovery")
        return Grant(identity, tuple(b.pub), tuple(b.sub), allow_responses=True)
    raise ValueError(f"unknown role {role!r}")


def _focus_jetstream(s: Subjects) -> list[tuple[str, str]]:
    bucket = focus_kv_bucket(s.site)
    stream = f"KV_{bucket}"
    return [
        (f"$JS.API.STREAM.*.{stream}", "info and create of its bucket"),
        (f"$JS.API.STREAM.MSG.GET.{stream}", "reads its bucket"),
        (f"$JS.API.DIRECT.GET.{stream}", "reads its bucket (direct get)"),
        (f"$JS.API.DIRECT.GET.{stream}.>", "reads its bucket (direct get by subject)"),
        (f"$KV.{bucket}.>", "writes its bucket"),
    ]


def _audio_io_rules(b: _Builder, s: Subjects, identity: Identity, sessions: str) -> None:
    b.s(s.audio_rpc(), "serves clear, set_volume, snapshot")
    b.s(s.audio_out_owned_all(), "plays output audio of every producer")
    b.s(s.focus_events(), "follows focus for the mixer and the UI")
    b.s(s.bridge_events(), "relays the bridge to the web client")
    b.s(s.server_event(), "relays skill events to the web client")
    b.p(s.audio_mic_assistant(), "mic audio while PTT is held (only audio-io)")
    b.p(s.audio_mic_claim_all(), "mic audio to the claim's holder")
    b.p(s.audio_ptt(), "PTT presses")
    b.p(s.audio_played(), "playback reports (only audio-io)")
    b.p(s.audio_events(), "client connection and control events")
    b.p(s.client_events(), "web client events for skills")
    b.p(s.focus_rpc_of(identity.name), "focus requests as itself")
    b.p(s.bridge_rpc(), "bridge snapshot")
    b.p(sessions, "lists sessions for the web client")
    b.s(s.skills_manifest(), "lists the skills for the web client's skills panel")
    b.p(s.skill_setup_all(), "the skills panel's enable, config and secret requests")
    b.p(s.skills_announce(), "asks hosts to announce for the skills panel")


def _skill_grant(identity: Identity, s: Subjects, b: _Builder) -> Grant:
    holder = identity.name
    persona = identity.persona
    assert persona is not None  # Identity checks it
    _service_basics(b, s, identity, "skill-host")
    for skill in identity.skills:
        b.p(s.storage_kv(persona, skill), f"its own settings ({skill})")
        b.p(s.storage_schema(persona, skill), f"its own schema version ({skill})")
        b.s(s.skill_tool(skill), f"serves its own tools ({skill})")
        b.s(s.skill_setup(holder, skill), f"the skills panel's writes to its own skill ({skill})")
    b.s(s.skill_host_rpc(holder), "discards its effects")
    b.s(s.focus_notify(holder), "its focus notices")
    b.s(s.focus_event("activity"), "focus activity events")
    b.s(s.focus_event("inject"), "inject outcomes")
    b.s(s.bridge_event("session"), "session connects")
    b.s(s.skills_announce(), "announce requests")
    b.s(s.audio_played(), "playback reports")
    b.s(s.client_events(), "web client events")
    b.s(s.audio_mic_claim(holder), "mic audio of its own claim only")
    b.p(s.focus_rpc_of(holder), "focus for its own activities and injects")
    b.p(s.bridge_rpc(), "completion prompts")
    b.p(s.skills_manifest(), "its manifest")
    b.p(s.audio_out_owned(holder), "its own output streams")
    b.p(s.server_event(), "events to the web client")
    return Grant(identity, tuple(b.pub), tuple(b.sub), allow_responses=True)


def service_identity(role: Role, site: str, persona: str | None = None) -> Identity:
    """The one identity of a core service (its name is its role)."""
    if role not in SERVICE_ROLES or role is Role.SKILL:
        raise ValueError(f"{role} is not a core service")
    return Identity(role=role, site=site, name=str(role), persona=persona)


def skill_identity(site: str, persona: str, skills: tuple[str, ...], name: str | None = None) -> Identity:
    """A skill container: named `skill-<skill>` unless it runs several skills
    (then `name`, e.g. its HUXLEY_INSTANCE, else `skill-host`); the identity
    covers every skill it runs."""
    if name is None:
        name = f"skill-{skills[0]}" if len(skills) == 1 else "skill-host"
    return Identity(role=Role.SKILL, site=site, name=name, persona=persona, skills=tuple(skills))


def satellite_identity(site: str, name: str = "satellite") -> Identity:
    """The leaf-node credential of a room device (`huxley satellite`)."""
    return Identity(role=Role.SATELLITE, site=site, name=name)


def harness_identity(site: str, name: str = "harness") -> Identity:
    """The test suite's and the benches' identity at a site (never `huxley init`'s)."""
    return Identity(role=Role.HARNESS, site=site, name=name)


def example_identities(site: str = "home") -> list[Identity]:
    """One identity per role, as docs/security.md shows them."""
    out = [service_identity(role, site) for role in SERVICE_ROLES if role is not Role.SKILL]
    out.append(skill_identity(site, "basic", ("timers",)))
    out.append(Identity(Role.OBSERVER, site, "observer"))
    out.append(Identity(Role.ADMIN, site, "admin"))
    out.append(satellite_identity(site))
    return out
