"""Audio-io bus adapter: the mixer, the edge and the client relay on NATS.

In:  audio.out.<owner>.<stream> (frames), focus.event.* (grants, queue, injects),
     bridge.event.* and client.server_event (relayed to the client),
     skills.manifest (the skills panel), audio.rpc (clear, set_volume, snapshot).
Out: audio.mic.assistant / audio.mic.claim.<holder> (frames), audio.ptt, audio.played,
     audio.event.client / audio.event.control, client.event,
     skills.host.<host> (the skills panel's writes), skills.announce.

Everything published goes through one outbox, in the order it was decided,
so a press's `ptt start` always precedes its mic frames and `ptt stop`
follows the last one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, cast

from nats.aio.msg import Msg

from huxley_audio_io import bench_tap, marketplace, personas, sessions
from huxley_audio_io import client_protocol as proto
from huxley_audio_io.backends import Backend, make_backend
from huxley_audio_io.clock import BlockClock
from huxley_audio_io.edge import MicFramer, PttEdge, Route, mic_route
from huxley_audio_io.focus_view import FocusView, is_claim
from huxley_audio_io.mixer import PUSH_WARNINGS, Block, Grant, Mixer, Played, PushResult
from huxley_audio_io.outbox import Outbox, Throttle
from huxley_audio_io.relay import ClientRelay
from huxley_audio_io.reports import played_messages
from huxley_audio_io.settings import AudioSettings
from huxley_audio_io.skills_panel import SkillsPanel
from huxley_runtime.bus import identity_name, settle
from huxley_runtime.focus_client import ActivityStatus, FocusFollower
from huxley_runtime.inline_sub import subscribe_inline
from huxley_runtime.persona import Persona
from huxley_runtime.retry import ANY_ERROR, FOREVER, Backoff, retrying
from huxley_runtime.rpc import request_with_retry
from huxley_runtime.service import Endpoint, Service
from huxley_wire.audio import FRAME_MS, AudioFrame, decode_frame, encode_frame, now_us
from huxley_wire.codec import Ok, decode, decode_object
from huxley_wire.errors import ErrorCode, WireError
from huxley_wire.messages import audio as m
from huxley_wire.messages import bridge, skills
from huxley_wire.messages.focus import FocusState, InjectEvent, QueueEvent
from huxley_wire.subjects import InvalidToken, token

TICK_S = FRAME_MS / 1000
MAX_CLOCK_LAG_TICKS = 5  # further behind than this, the clock skips instead of catching up
YIELD_EVERY_FRAMES = 32  # a backlog of frames lets the block clock in this often
# Snapshots at start (focus's, the bridge's): reads, asked until answered; the
# peers start beside us, so ask again soon.
SYNC = FOREVER.but(retry_on=ANY_ERROR, backoff=Backoff(first_s=0.05, max_s=5.0))


class AudioService(Service):
    name = "audio-io"
    description = "Microphone, speaker, web client gateway and mixer"
    settings_class = AudioSettings

    def __init__(self, settings: AudioSettings | None = None, backend: Backend | None = None) -> None:
        super().__init__(settings)
        self.cfg = cast(AudioSettings, self.settings)
        self.backend = backend or make_backend(self.cfg)
        self.mixer = Mixer(
            prebuffer_ms=self.cfg.prebuffer_ms,
            max_buffer_ms=self.cfg.max_buffer_ms,
            applies_volume=self.backend.applies_volume,
        )
        self.focus = FocusView()
        self.holder = identity_name(self.settings) or "audio-io"  # our focus.rpc.<holder>
        self.follower: FocusFollower | None = None
        self._catching_up = False  # applying a snapshot of the past, not live events
        self.relay = ClientRelay()
        self.ptt = PttEdge(guard_ms=self.cfg.claim_ptt_guard_ms)
        # Observers of every rendered block (tests and the benchmark listen here).
        self.taps: list[Callable[[Block], None]] = []
        # ...of every output frame once in the mixer, of every mic chunk at the edge (bench_tap).
        self.intake_taps: list[Callable[[AudioFrame], None]] = []
        self.mic_taps: list[Callable[[bytes], None]] = []
        bench_tap.install_from_env(self)
        self._mic: tuple[Route, str] | None = None
        self._mic_holder = "nobody"  # the holder of the claim the mic goes to (its subject)
        self._framers: dict[str, MicFramer] = {}
        self._unmute: asyncio.TimerHandle | None = None
        self.clock = BlockClock(TICK_S, self._render, max_lag=MAX_CLOCK_LAG_TICKS, on_slip=self._slipped)
        self._throttle = Throttle()
        self.outbox = Outbox(self._throttle)
        self._focus_status = "waiting for focus"
        self.language: str | None = None
        self.personas: dict[str, Persona] = {}
        self.persona: Persona | None = None
        self.persona_name = self._persona()
        self._language_changed()
        self._panel: SkillsPanel | None = None

    # -- lifecycle -------------------------------------------------------------------
    async def on_start(self) -> None:
        nc, s = self.nc, self.subjects
        await subscribe_inline(nc, s.audio_out_owned_all(), self._on_frame, yield_every=YIELD_EVERY_FRAMES)
        await nc.subscribe(s.focus_event("queue"), cb=self._on_queue)
        await nc.subscribe(s.focus_event("inject"), cb=self._on_inject)
        await nc.subscribe(s.bridge_events(), cb=self._on_bridge)
        await nc.subscribe(s.server_event(), cb=self._on_server_event)
        self._panel = SkillsPanel(nc, s, time.monotonic)
        await nc.subscribe(s.skills_manifest(), cb=self._on_manifest)
        await settle(nc)
        self.spawn(self.outbox.run(nc), name="outbox")
        self.outbox.emit(s.skills_announce(), skills.AnnounceRequest(reason="audio-io skills panel"))
        # The follower keeps up with focus (snapshot at start, after a gap in
        # the event sequence, after a reconnect or a focus restart).
        self.follower = FocusFollower(nc, s, holder=self.holder, on_change=self._on_focus_change)
        self._catching_up = True
        try:
            await self.follower.start()
        finally:
            self._catching_up = False
        await self.backend.start(self)
        self.clock.start()
        self.spawn(self._until_focus_answers(), name="focus-sync")
        self.spawn(self._sync_bridge_state(), name="bridge-sync")
        self.log.info("audio_io_ready", backend=self.backend.name, persona=self.persona_name)

    async def on_stop(self) -> None:
        self.clock.stop()
        if self._unmute is not None:
            self._unmute.cancel()
        if self.follower is not None:
            await self.follower.stop()
        await self.backend.stop()
        await self.outbox.drain(self.nc)

    def endpoints(self) -> list[Endpoint]:
        handlers: dict[Any, Any] = {m.Clear: self._clear, m.SetVolume: self._set_volume}
        handlers[m.AudioSnapshotRequest] = self._snapshot
        return [Endpoint("rpc", self.subjects.audio_rpc(), handlers)]

    def health(self) -> tuple[str, dict[str, Any]]:
        synced = self.follower is not None and self.follower.synced.is_set()
        problems = [p for p in (self.backend.problem, None if synced else self._focus_status) if p]
        detail = {
            "backend": self.backend.name,
            "client_connected": self.backend.client_connected,
            "streams": len(self.mixer.stream_ids()),
            "volume": self.mixer.volume,
            "focus": "following" if synced else self._focus_status,
            **self.backend.detail(),
        }
        if problems:
            detail["problems"] = problems
        return ("degraded" if problems else "ok"), detail

    # -- output: frames in, blocks out -------------------------------------------------
    def _on_frame(self, subject: str, data: bytes) -> None:
        # Inline in the bus reader (huxley_runtime.inline_sub): no awaits here.
        try:
            frame = decode_frame(data)
            if frame.stream != subject.rsplit(".", 1)[-1]:
                raise WireError(ErrorCode.INVALID, f"frame of stream {frame.stream!r} on {subject}")
        except WireError as exc:
            if (n := self._throttle("bad_frame", subject)) is not None:
                self.log.warning("audio_frame_refused", subject=subject, error=exc.message, count=n)
            return
        result = self.mixer.push(frame, owner=subject.rsplit(".", 2)[-2])
        for tap in self.intake_taps:
            tap(frame)
        if result is not PushResult.QUEUED and (n := self._throttle(result, frame.stream)) is not None:
            self.log.warning(PUSH_WARNINGS[result], stream=frame.stream, subject=subject, count=n)

    def _slipped(self, behind_s: float) -> None:
        self.log.warning("clock_slip", behind_ms=round(behind_s * 1000))

    def _render(self) -> None:
        try:
            block = self.mixer.render()
            self.backend.play(block)
            for tap in self.taps:
                tap(block)
        except Exception:  # the clock must keep ticking
            if self._throttle("render_failed", "") is not None:
                self.log.exception("render_failed")
            return
        self._report(block.played)
        for stream_id in block.expired:
            self.log.warning("stream_never_granted", stream=stream_id)

    def _report(self, played: list[Played]) -> None:
        subject = self.subjects.audio_played()
        for payload in played_messages(played):
            self.outbox.emit_raw(subject, payload)

    # -- focus --------------------------------------------------------------------------
    def _on_focus_change(self, status: ActivityStatus) -> None:
        change = self.focus.apply(status, time.monotonic(), fresh=not self._catching_up)
        if status.replaces:
            self._report(self.mixer.silence(status.replaces))
        self._report(self.mixer.apply_grant(status.activity_id, Grant.of(status)))
        if status.state is FocusState.NONE and is_claim(status):
            self._framers.pop(status.activity_id, None)
        for message in self.relay.focus(change):
            self.backend.send(message)

    async def _on_queue(self, msg: Msg) -> None:
        try:
            event = decode(msg.data, QueueEvent)
        except WireError as exc:
            self.log.warning("queue_event_refused", error=exc.message)
            return
        for message in self.relay.queue_event(event):
            self.backend.send(message)

    async def _on_inject(self, msg: Msg) -> None:
        try:
            event = decode(msg.data, InjectEvent)
        except WireError as exc:
            self.log.warning("inject_event_refused", error=exc.message)
            return
        self.backend.send(proto.dev_event("inject", event.model_dump(mode="json", exclude={"v"})))

    async def _until_focus_answers(self) -> None:
        """The follower resyncs when it sees focus move on; until focus has
        answered once, ask it ourselves (and say so in the health)."""
        follower = self.follower
        assert follower is not None

        async def attempt() -> None:
            if follower.synced.is_set():
                return  # it synced on its own meanwhile
            self._catching_up = True
            try:
                await follower.resync()
            finally:
                self._catching_up = False

        def unavailable(retry: int, exc: BaseException, pause_s: float) -> None:
            self._focus_status = f"focus unavailable ({exc}); retrying"
            if retry == 1:
                self.log.warning("focus_unavailable", error=str(exc))

        await retrying(SYNC, attempt, retry_if=SYNC.retries, on_retry=unavailable)
        self._focus_status = "following"
        self.log.info("focus_synced", activities=len(self.focus.live()), seq=follower.seq)

    # -- bridge and skills -> client ------------------------------------------------------
    async def _on_bridge(self, msg: Msg) -> None:
        kind = msg.subject.rsplit(".", 1)[-1]
        try:
            messages = self.relay.bridge_event(kind, decode_object(msg.data))
        except WireError as exc:
            self.log.warning("bridge_event_refused", kind=kind, error=exc.message)
            return
        for message in messages:
            self.backend.send(message)

    async def _sync_bridge_state(self) -> None:
        snap = await request_with_retry(
            self.nc, self.subjects.bridge_rpc(), bridge.BridgeSnapshotRequest(), policy=SYNC
        )
        for message in self.relay.snapshot(snap):
            self.backend.send(message)

    async def _on_server_event(self, msg: Msg) -> None:
        try:
            event = decode(msg.data, skills.ServerEvent)
        except WireError as exc:
            self.log.warning("server_event_refused", error=exc.message)
            return
        self.backend.send(proto.server_event(event.event, event.data))

    async def _on_manifest(self, msg: Msg) -> None:
        try:
            manifest = decode(msg.data, skills.Manifest)
        except WireError as exc:
            self.log.warning("manifest_refused", error=exc.message)
            return
        if self._panel is not None:
            self._panel.directory.apply(manifest, time.monotonic())

    # -- the edge (called by the backend) ----------------------------------------------
    def ptt_down(self, source: str) -> None:
        age = self.focus.claim_age_ms(time.monotonic())
        press = self.ptt.press(source, age)
        if press is None:
            why = "already_held" if self.ptt.held is not None else "claim_just_started"
            self.log.info("ptt_ignored", source=source, reason=why, claim_age_ms=age and round(age))
            return
        # Silence first, at once and locally; the authoritative interrupt follows.
        if self._unmute is not None:
            self._unmute.cancel()
            self._unmute = None
        press.muted = self.mixer.edge_mute()
        self.backend.send(proto.audio_clear())
        # What is queued toward the speaker is gone: the next block (silent
        # for what we hold) goes out now, and the block clock restarts here.
        self.clock.tick_now()
        self.outbox.emit(
            self.subjects.audio_ptt(),
            m.PttEvent(action="start", press_id=press.press_id, ts_us=now_us(), source=cast(Any, source)),
        )
        self.log.info("ptt_start", press=press.press_id, source=source, muted=len(press.muted))

    def ptt_up(self, source: str) -> None:
        press = self.ptt.release(source)
        if press is None:
            return
        framer = self._framers.pop(press.press_id, None)
        if framer is not None:
            self._publish_mic(Route.ASSISTANT, framer.flush(now_us()))
        if self._mic is not None and self._mic[1] == press.press_id:
            self._mic = None
        self.outbox.emit(
            self.subjects.audio_ptt(),
            m.PttEvent(
                action="stop",
                press_id=press.press_id,
                ts_us=now_us(),
                source=cast(Any, source),
                frames=framer.seq if framer else 0,
            ),
        )
        self.log.info("ptt_stop", press=press.press_id, frames=framer.seq if framer else 0)
        if press.muted:
            # Focus decides the fate of what we held; if it never does (focus
            # or the bridge is down), let it go again after a grace period.
            loop = asyncio.get_running_loop()
            self._unmute = loop.call_later(self.cfg.ptt_mute_grace_s, self.mixer.edge_unmute, press.muted)

    def mic(self, pcm: bytes, arrived_us: int) -> None:
        for tap in self.mic_taps:
            tap(pcm)
        claim = self.focus.foreground_claim()
        target = mic_route(self.ptt.held, claim.activity_id if claim else None)
        if target != self._mic:
            self._leave_mic_route(arrived_us)
            self._mic = target
        if target is None:
            return
        route, stream_id = target
        self._mic_holder = claim.holder if claim else self._mic_holder
        framer = self._framers.get(stream_id)
        if framer is None:
            framer = self._framers[stream_id] = MicFramer(stream_id)
        self._publish_mic(route, framer.feed(pcm, arrived_us))

    def _leave_mic_route(self, at_us: int) -> None:
        if self._mic is None:
            return
        route, stream_id = self._mic
        framer = self._framers.get(stream_id)
        if route is Route.CLAIM and framer is not None:
            self._publish_mic(route, framer.flush(at_us))  # the claim keeps its framer (seq goes on)

    def _publish_mic(self, route: Route, frames: list[AudioFrame]) -> None:
        s = self.subjects  # a claim's frames go to its holder alone (only it may subscribe there)
        subject = s.audio_mic_claim(self._mic_holder) if route is Route.CLAIM else s.audio_mic_assistant()
        for frame in frames:
            self.outbox.emit_raw(subject, encode_frame(frame))

    def client_connected(self, client_id: str, language: str | None, persona: str | None) -> list[proto.Out]:
        # ?persona= first (as the reference swaps before hello): a persona we
        # know becomes ours and the bridge is asked to serve it.
        refused = self._switch_persona(persona, language, client_id) if persona else None
        if language:
            self.language = language
        self._language_changed()
        messages = self.relay.handshake(
            language or self.language, self.persona_name, personas.entries(self.personas), self.focus
        )
        if refused:
            messages.append(proto.status(refused))
        self.outbox.emit(
            self.subjects.audio_event("client"), m.ClientConnection(connected=True, client_id=client_id)
        )
        if language:
            self.outbox.emit(
                self.subjects.audio_event("control"),
                m.ClientControl(action="set_language", language=language, client_id=client_id),
            )
        return messages

    def client_gone(self, client_id: str, reason: str) -> None:
        if self.ptt.held is not None and self.ptt.held.source == "web":
            self.ptt_up("web")  # a client that vanished mid-press must not leave the model listening
        self.outbox.emit(
            self.subjects.audio_event("client"),
            m.ClientConnection(connected=False, client_id=client_id, reason=reason),
        )

    async def client_message(self, message: proto.ClientMessage) -> None:
        if isinstance(message, proto.WakeWord | proto.Reset | proto.SetLanguage):
            language = message.language if isinstance(message, proto.SetLanguage) else None
            if isinstance(message, proto.SetLanguage):
                self.language = language
                self._language_changed()
            control = m.ClientControl(action=message.type, language=language)
            self.outbox.emit(self.subjects.audio_event("control"), control)
        elif isinstance(message, proto.ClientEvent):
            self.log.info("client_event", name=message.event, data=message.data)
            self.outbox.emit(
                self.subjects.client_events(), skills.ClientEvent(event=message.event, data=message.data)
            )
        elif isinstance(message, proto.ListSessions | proto.GetSession | proto.DeleteSession):
            self.spawn(self._sessions(message), name="sessions")
        elif isinstance(message, proto.SkillsPanelMessage):
            self.spawn(self._skills_panel(message), name="skills-panel")
        elif isinstance(message, proto.GetMarketplace):
            serving = self._panel.directory.serving(time.monotonic()) if self._panel else set()
            self.backend.send(marketplace.state(serving, int(time.time() * 1000)))
        elif isinstance(message, proto.InstallSkill):
            self.log.info("install_skill_refused", package=message.package)
            for out in marketplace.refuse_install(message.package):
                self.backend.send(out)
        elif isinstance(message, proto.RestartServer):
            # Each service restarts on its own under its supervisor; a client
            # may not restart the house. A fresh model session is `reset`.
            self.log.info("restart_server_refused")
            self.backend.send(proto.status(proto.RESTART_REFUSED))

    async def _skills_panel(self, message: proto.SkillsPanelMessage) -> None:
        if self._panel is None:
            return
        for out in await self._panel.answer(message, self.persona_name):
            self.backend.send(out)

    async def _sessions(self, message: sessions.SessionRequest) -> None:
        subject = self.subjects.storage_sessions(self.persona_name)
        self.backend.send(await sessions.answer(self.nc, subject, message))

    # -- audio.rpc ---------------------------------------------------------------------
    async def _clear(self, request_: m.Clear, subject: str) -> m.Cleared:
        played = self.mixer.clear(request_.stream_id)
        self._report(played)
        self.backend.send(proto.audio_clear())
        await self.outbox.published()  # the last `played` of each stream goes out before the reply
        return m.Cleared(played={p.stream_id: p.played_ms for p in played})

    async def _set_volume(self, request_: m.SetVolume, subject: str) -> Ok:
        self.mixer.set_volume(request_.level)
        self.relay.volume = request_.level
        self.backend.send(proto.set_volume(request_.level))
        return Ok()

    async def _snapshot(self, request_: m.AudioSnapshotRequest, subject: str) -> m.AudioSnapshot:
        return m.AudioSnapshot(
            backend=self.backend.name,
            volume=self.mixer.volume,
            streams=[
                m.StreamView(
                    stream_id=s.stream_id,
                    gain=s.gain,
                    buffered_ms=s.buffered_ms,
                    played_ms=s.played_ms,
                    state=s.state,
                )
                for s in self.mixer.streams()
            ],
            client_connected=self.backend.client_connected,
        )

    # -- plumbing ---------------------------------------------------------------------
    def _persona(self) -> str:
        self.personas = personas.available(self.cfg.personas_dir)
        self.persona = personas.pick(self.personas, self.cfg.persona, self.cfg.personas_dir)
        if self.persona is None:
            try:
                return token(self.cfg.persona, "persona")
            except InvalidToken:
                return "basic"
        self.language = self.persona.language_code
        return self.persona.name

    def _switch_persona(self, wanted: str, language: str | None, client_id: str) -> str | None:
        """Adopt a persona the client asked for and ask the bridge to serve
        it; the reason when it is refused (unknown here)."""
        if wanted == self.persona_name:
            return None
        self.personas = personas.available(self.cfg.personas_dir)  # one added since start shows up
        persona = self.personas.get(wanted)
        if persona is None:
            self.log.info("persona_switch_refused", persona=wanted)
            return f"persona {wanted!r} is not available here; staying on {self.persona_name!r}"
        self.log.info("persona_switch", persona=wanted, previous=self.persona_name)
        self.persona, self.persona_name = persona, persona.name
        self.language = language or persona.language_code
        control = m.ClientControl(
            action="set_persona", persona=persona.name, language=language, client_id=client_id
        )
        self.outbox.emit(self.subjects.audio_event("control"), control)
        return None

    def _language_changed(self) -> None:
        self.relay.language = self.language or (self.persona.language_code if self.persona else "en")
        self.relay.ui_strings = personas.progress_strings(self.persona, self.relay.language)
