"""The WebSocket gateway against a real client (websockets) and the real
service on a real nats-server: the reference protocol v2, eviction, bad
input, and the relays between the client and the bus."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime

import numpy as np
import pytest
import websockets
from structlog.testing import capture_logs

from audio.conftest import Bus, WebClient, client_url
from audio.signals import amplitude_at, tone
from huxley_audio_io.pcm import to_float, to_pcm
from huxley_audio_io.service import AudioService
from huxley_audio_io.settings import AudioSettings
from huxley_runtime.rpc import request
from huxley_wire.audio import FRAME_BYTES, decode_frame
from huxley_wire.codec import encode
from huxley_wire.errors import WireError
from huxley_wire.messages import audio as m
from huxley_wire.messages.bridge import ModelSpeakingEvent, StateEvent, StatusEvent, TranscriptEvent
from huxley_wire.messages.focus import Channel, ContentType, EndReason, FocusState
from huxley_wire.messages.skills import ServerEvent
from support.services import running


def audio_message(pcm: bytes) -> dict[str, str]:
    return {"type": "audio", "data": base64.b64encode(pcm).decode()}


async def test_handshake_is_hello_then_state_then_input_mode(gateway: AudioService, bus: Bus):
    connections = await bus.watch(bus.subjects.audio_event("client"))
    controls = await bus.watch(bus.subjects.audio_event("control"))
    async with websockets.connect(client_url(gateway, "?lang=es")) as ws:
        first = [json.loads(await ws.recv()) for _ in range(3)]
    assert [msg["type"] for msg in first] == ["hello", "state", "input_mode"]
    hello, state, mode = first
    assert hello["protocol"] == 2 and hello["language"] == "es"
    assert hello["current_persona"] == "basic" and hello["install_in_progress"] is False
    # The reference's persona objects (a client reads .name and .language).
    assert {"name": "basic", "display_name": "basic", "language": "en"} in hello["available_personas"]
    assert state == {"type": "state", "value": "IDLE"}
    assert mode == {"type": "input_mode", "mode": "assistant_ptt", "reason": "idle", "claim_id": None}
    connected = await connections.next_json()
    assert connected["connected"] is True
    # ?lang= asks the bridge for that language, like set_language.
    assert await controls.next_json() == {
        "v": 1,
        "action": "set_language",
        "language": "es",
        "persona": None,
        "client_id": connected["client_id"],
    }


async def test_a_new_client_evicts_the_older_one_with_1001(gateway: AudioService, bus: Bus):
    connections = await bus.watch(bus.subjects.audio_event("client"))
    async with websockets.connect(client_url(gateway)) as old:
        assert json.loads(await old.recv())["type"] == "hello"
        first = await connections.next_json()
        async with websockets.connect(client_url(gateway)) as new:
            assert json.loads(await new.recv())["type"] == "hello"
            with pytest.raises(websockets.ConnectionClosed):
                while True:
                    await asyncio.wait_for(old.recv(), 10)
            assert old.close_code == 1001
            assert old.close_reason == "Replaced by new client"
            gone = await connections.next_json(lambda o: not o["connected"])
            assert gone["client_id"] == first["client_id"] and gone["reason"] == "evicted"
            assert gateway.backend.client_connected
            # The new client is fully served.
            await new.send(json.dumps({"type": "ptt_start"}))
            await WebClient(new).next("audio_clear")


async def test_malformed_messages_are_logged_and_ignored(gateway: AudioService, bus: Bus):
    ptt = await bus.watch(bus.subjects.audio_ptt())
    async with websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")
        with capture_logs() as logs:
            for bad in [
                "{this is not json",
                "[1,2,3]",
                '"a string"',
                json.dumps({"type": "no_such_type"}),
                json.dumps({"no": "type"}),
                json.dumps({"type": "get_session", "id": "seven"}),
                json.dumps({"type": "client_event", "event": ""}),
                b"\x00\x01binary",
            ]:
                await client.send(bad)
            await client.send({"type": "ptt_start"})  # still served after all that
            start = await ptt.next_json()
        assert start["action"] == "start" and start["source"] == "web"
        malformed = [entry for entry in logs if entry["event"] == "client_message_malformed"]
        assert len(malformed) == 8, logs
        assert any("unknown type 'no_such_type'" in entry["reason"] for entry in malformed)
        assert gateway.backend.detail()["malformed"] == 8
        await client.send({"type": "ptt_stop"})
        await ptt.next_json(lambda o: o["action"] == "stop")


async def test_odd_length_and_oversize_audio_is_refused(gateway: AudioService, bus: Bus):
    mic = await bus.watch(bus.subjects.audio_mic_assistant())
    ptt = await bus.watch(bus.subjects.audio_ptt())
    good = to_pcm(tone(440, 40, amplitude=0.3))  # 1920 bytes
    async with websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")
        await client.send({"type": "ptt_start"})
        press = (await ptt.next_json())["press_id"]
        with capture_logs() as logs:
            await client.send(audio_message(good[:961]))  # odd length
            first = await client.next("dev_event", kind="refused")
            await client.send(audio_message(bytes(gateway.backend.max_audio_bytes + 2)))  # oversize
            second = await client.next("dev_event", kind="refused")
            await client.send({"type": "audio", "data": "%%% not base64 %%%"})
            third = await client.next("dev_event", kind="refused")
        assert "even" in first["payload"]["reason"]
        assert "limit" in second["payload"]["reason"] or "over" in second["payload"]["reason"]
        assert "base64" in third["payload"]["reason"]
        assert [e["event"] for e in logs].count("client_audio_refused") == 3
        await client.send(audio_message(good))
        await client.send({"type": "ptt_stop"})
        stop = await ptt.next_json(lambda o: o["action"] == "stop")
    frames = [decode_frame(msg.data) for msg in mic.seen]
    assert stop["frames"] == 2 == len(frames)
    assert {f.stream for f in frames} == {press} and [f.seq for f in frames] == [0, 1]
    assert b"".join(f.pcm for f in frames) == good  # only the good audio ever reached the bus


async def test_a_text_frame_over_the_limit_closes_the_connection_with_1009(gateway: AudioService):
    async with websockets.connect(client_url(gateway), max_size=None) as ws:
        await WebClient(ws).next("input_mode")
        await ws.send(json.dumps(audio_message(bytes(300_000))))
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1009


async def test_ptt_silences_content_at_once_then_publishes_start(gateway: AudioService, bus: Bus):
    ptt = await bus.watch(bus.subjects.audio_ptt())
    async with websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")
        await bus.focus("book-1", Channel.CONTENT, FocusState.FOREGROUND, label="A book")
        await client.next("stream_started", stream_id="book-1")
        producer = asyncio.create_task(bus.produce("book-1", 440))
        try:
            heard = await client.next("audio")
            assert amplitude_at(to_float(base64.b64decode(heard["data"])), 440) > 0.3
            await client.send({"type": "ptt_start"})
            # The gateway tells the client to drop what it queued, then the bus hears of the press.
            await client.next("audio_clear")
            start = await ptt.next_json()
            assert start["action"] == "start"
            snapshot = await request(bus.nc, bus.subjects.audio_rpc(), m.AudioSnapshotRequest())
            assert [s.state for s in snapshot.streams if s.stream_id == "book-1"] == ["muted"]
            # From here on no audio of the book reaches the client, though it keeps producing.
            with pytest.raises(TimeoutError):
                await client.next("audio", timeout=0.5)
        finally:
            producer.cancel()
        await client.send({"type": "ptt_stop"})
        stop = await ptt.next_json(lambda o: o["action"] == "stop")
        assert stop["press_id"] == start["press_id"] and stop["frames"] == 0


async def test_mic_goes_to_a_foreground_claim_and_a_ptt_just_after_its_start_is_ignored(
    audio_settings: AudioSettings, bus: Bus
):
    claim_mic = await bus.watch(bus.subjects.audio_mic_claim_all())
    assistant_mic = await bus.watch(bus.subjects.audio_mic_assistant())
    ptt = await bus.watch(bus.subjects.audio_ptt())
    chunk = to_pcm(tone(300, 20, amplitude=0.2))
    # A wide guard, so "just after the claim started" holds however loaded the machine is.
    settings = audio_settings.model_copy(update={"claim_ptt_guard_ms": 5_000})
    async with running(AudioService, settings) as gateway, websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")
        await bus.focus("call-1", Channel.COMMS, FocusState.FOREGROUND, skill="phone", title="Mario")
        assert await client.next("claim_started") == {
            "type": "claim_started",
            "claim_id": "call-1",
            "skill": "phone",
            "title": "Mario",
        }
        mode = await client.next("input_mode")
        assert mode["mode"] == "skill_continuous" and mode["claim_id"] == "call-1"
        await client.send({"type": "ptt_start"})  # right after the claim started: ignored
        await client.send(audio_message(chunk))
        frame = decode_frame((await claim_mic.next()).data)  # the mic stayed with the claim
        assert (frame.stream, frame.seq, frame.pcm) == ("call-1", 0, chunk)
        await client.send({"type": "ptt_stop"})

        # The claim ends (the user hung up with PTT): the mic is nobody's again.
        await bus.focus("call-1", Channel.COMMS, FocusState.NONE, reason=EndReason.USER_PTT)
        assert (await client.next("claim_ended"))["end_reason"] == "user_ptt"
        assert (await client.next("input_mode"))["mode"] == "assistant_ptt"
        await client.send(audio_message(chunk))  # nobody listens: dropped, not kept for a later press
        await client.send({"type": "ptt_start"})
        start = await ptt.next_json()
        await client.send(audio_message(chunk * 3))
        await client.send({"type": "ptt_stop"})
        stop = await ptt.next_json(lambda o: o["action"] == "stop")
    assert [json.loads(msg.data)["action"] for msg in ptt.seen] == [
        "start",
        "stop",
    ]  # nothing of the ignored press
    assert stop["frames"] == 3 and stop["press_id"] == start["press_id"]
    frames = [decode_frame(msg.data) for msg in assistant_mic.seen]
    assert [(f.stream, f.seq) for f in frames] == [(start["press_id"], n) for n in range(3)]
    assert len(claim_mic.seen) == 1


async def test_output_for_a_granted_stream_is_played_and_reported_until_drained(
    gateway: AudioService, bus: Bus
):
    played = await bus.watch(bus.subjects.audio_played())
    async with websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")
        await bus.focus("turn-1", Channel.DIALOG, FocusState.FOREGROUND)
        await client.next("dev_event", kind="focus")
        reply = to_pcm(tone(523, 300, amplitude=0.4))
        await bus.frames("turn-1", reply, eos=True)
        drained = await played.next_json(lambda o: o["drained"])
        assert drained == {
            "v": 1,
            "stream_id": "turn-1",
            "played_ms": 300.0,
            "drained": True,
            "cleared": False,
        }
        progress = [json.loads(msg.data) for msg in played.seen[:-1]]
        assert progress and all(not p["drained"] for p in progress)
        assert [p["played_ms"] for p in progress] == sorted(p["played_ms"] for p in progress)
        received = b""
        while len(received) < len(reply):
            received += base64.b64decode((await client.next("audio"))["data"])
    # Sample-exact: what the client got is what was produced (then silence padding of the last block).
    assert received[: len(reply)] == reply


async def test_frames_of_an_ungranted_or_ended_stream_never_reach_the_client(gateway: AudioService, bus: Bus):
    async with websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")
        await bus.frames("nobody", to_pcm(tone(440, 200)))  # no grant: waits unheard
        await bus.focus("gone", Channel.CONTENT, FocusState.FOREGROUND)
        await bus.focus("gone", Channel.CONTENT, FocusState.NONE, reason=EndReason.STOPPED)
        await client.next("stream_ended", stream_id="gone")
        await bus.frames("gone", to_pcm(tone(440, 200)))  # late frames of a stopped stream
        with pytest.raises(TimeoutError):
            await client.next("audio", timeout=0.6)


async def test_rpc_clear_set_volume_and_snapshot(gateway: AudioService, bus: Bus):
    played = await bus.watch(bus.subjects.audio_played())
    async with websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")
        await bus.focus("turn-2", Channel.DIALOG, FocusState.FOREGROUND)
        await client.next("dev_event", kind="focus")
        await bus.frames("turn-2", to_pcm(tone(440, 500)))
        await client.next("audio")
        cleared = await request(bus.nc, bus.subjects.audio_rpc(), m.Clear(stream_id="turn-2"))
        assert cleared.ok and 0 < cleared.played["turn-2"] < 500
        await client.next("audio_clear")
        final = await played.next_json(lambda o: o["cleared"])
        assert final == {
            "v": 1,
            "stream_id": "turn-2",
            "played_ms": cleared.played["turn-2"],
            "drained": True,
            "cleared": True,
        }

        assert await request(bus.nc, bus.subjects.audio_rpc(), m.SetVolume(level=35))
        assert await client.next("set_volume") == {"type": "set_volume", "level": 35}
        snap = await request(bus.nc, bus.subjects.audio_rpc(), m.AudioSnapshotRequest())
        assert snap.backend == "web" and snap.volume == 35 and snap.client_connected
        assert [s.stream_id for s in snap.streams] == ["turn-2"] and snap.streams[0].buffered_ms == 0
        with pytest.raises(WireError) as caught:
            await request(bus.nc, bus.subjects.audio_rpc(), m.SetVolume.model_construct(level=101))
        assert caught.value.code == "invalid"


async def test_bus_events_are_relayed_to_the_client(gateway: AudioService, bus: Bus):
    client_events = await bus.watch(bus.subjects.client_events())
    async with websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")
        s = bus.subjects
        await bus.nc.publish(s.bridge_event("state"), encode(StateEvent(value="CONVERSING")))
        assert await client.next("state") == {"type": "state", "value": "CONVERSING"}
        await bus.nc.publish(s.bridge_event("status"), encode(StatusEvent(message="Listening...")))
        assert await client.next("status") == {"type": "status", "message": "Listening..."}
        await bus.nc.publish(
            s.bridge_event("transcript"), encode(TranscriptEvent(role="assistant", text="Hi"))
        )
        assert await client.next("transcript") == {"type": "transcript", "role": "assistant", "text": "Hi"}
        await bus.nc.publish(s.bridge_event("model_speaking"), encode(ModelSpeakingEvent(value=True)))
        assert await client.next("model_speaking") == {"type": "model_speaking", "value": True}
        await bus.nc.publish(s.bridge_event("state"), b"{broken")  # logged, not relayed, nothing breaks
        await bus.nc.publish(
            s.server_event(), encode(ServerEvent(event="doorbell.rang", data={"door": "front"}))
        )
        assert await client.next("server_event") == {
            "type": "server_event",
            "event": "doorbell.rang",
            "data": {"door": "front"},
        }
        await bus.focus("radio", Channel.CONTENT, FocusState.FOREGROUND, content_type=ContentType.MIXABLE)
        focus = await client.next("dev_event", kind="focus")
        assert focus["payload"]["activity_id"] == "radio" and focus["payload"]["state"] == "foreground"

        await client.send({"type": "client_event", "event": "doorbell.answer", "data": {"by": "test"}})
        assert await client_events.next_json() == {"v": 1, "event": "doorbell.answer", "data": {"by": "test"}}

    # A client connecting now is told what is live before anything else happens.
    async with websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        assert (await client.next("state"))["value"] == "CONVERSING"
        snapshot = await client.next("dev_event", kind="focus_snapshot")
        assert [a["activity_id"] for a in snapshot["payload"]["activities"]] == ["radio"]


async def test_sessions_answer_with_an_error_status_when_storage_is_down(gateway: AudioService):
    async with websockets.connect(client_url(gateway)) as ws:
        client = WebClient(ws)
        await client.next("input_mode")
        await client.send({"type": "list_sessions"})
        status = await client.next("status")
        assert status["message"].startswith("sessions unavailable")
        await client.send({"type": "get_session", "id": 4})
        assert "unavailable" in (await client.next("status"))["message"]


async def test_sessions_are_relayed_to_the_storage_service(
    gateway: AudioService, bus: Bus, audio_settings: AudioSettings
):
    from huxley_runtime.storage_client import SessionsClient
    from huxley_storage.service import StorageService
    from huxley_storage.settings import StorageSettings

    storage_settings = StorageSettings(
        nats_url=audio_settings.nats_url,
        site=audio_settings.site,
        data_dir=audio_settings.data_dir,
        storage_backups=False,
        _env_file=None,  # type: ignore[call-arg]
    )
    async with running(StorageService, storage_settings):
        sessions = SessionsClient(bus.nc, bus.subjects, "basic")
        started = await sessions.start()
        await sessions.record_turn(started.session_id, "user", "hello there")
        long = "x" * 60_000  # storage pages turns by size: this takes several pages
        for n in range(12):
            await sessions.record_turn(started.session_id, "assistant", f"{n}{long}")
        async with websockets.connect(client_url(gateway)) as ws:
            client = WebClient(ws)
            await client.next("input_mode")
            await client.send({"type": "list_sessions"})
            listed = await client.next("sessions_list")
            assert [s["id"] for s in listed["sessions"]] == [started.session_id]
            row = listed["sessions"][0]
            # The reference's row: ISO-8601 dates (a client parses them as strings),
            # turn_count and the first user line as the preview.
            assert set(row) == {
                "id",
                "started_at",
                "ended_at",
                "last_turn_at",
                "turn_count",
                "preview",
                "summary",
            }
            assert row["turn_count"] == 13 and row["preview"] == "hello there"
            started_at = datetime.fromisoformat(row["started_at"])
            assert started_at.tzinfo is not None and row["started_at"].endswith("Z")
            assert datetime.fromisoformat(row["last_turn_at"]) >= started_at
            assert row["ended_at"] is None
            await client.send({"type": "get_session", "id": started.session_id})
            detail = await client.next("session_detail")
            assert detail["id"] == started.session_id
            assert detail["turns"][0] == {"idx": 0, "role": "user", "text": "hello there"}
            assert [t["text"][:2].rstrip("x") for t in detail["turns"][1:]] == [str(n) for n in range(12)]
            await client.send({"type": "get_session", "id": 999})
            assert "not found" in (await client.next("status"))["message"]
            await client.send({"type": "delete_session", "id": started.session_id})
            assert await client.next("session_deleted") == {
                "type": "session_deleted",
                "id": started.session_id,
            }
        assert await sessions.list() == []


async def test_health_reports_degraded_while_focus_is_unreachable(gateway: AudioService):
    async with asyncio.timeout(10):
        while "focus unavailable" not in gateway.health()[1]["focus"]:  # noqa: ASYNC110 - a state, no event
            await asyncio.sleep(0.05)
    status, detail = gateway.health()
    assert status == "degraded" and detail["problems"] == [detail["focus"]]
    assert detail["backend"] == "web" and detail["port"] == gateway.backend.port


def test_sample_conversion_round_trip():
    pcm = to_pcm(tone(440, 20))
    assert len(pcm) == FRAME_BYTES and np.array_equal(to_pcm(to_float(pcm)), pcm)
