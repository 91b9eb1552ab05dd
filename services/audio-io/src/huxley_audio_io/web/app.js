// The Huxley web client: reference protocol v2 over a WebSocket, a
// hold-to-talk button, and live panels fed by what the gateway relays.

import { AudioEngine } from "/static/audio.js";
import { renderSkills } from "/static/skills.js";

const $ = (selector) => document.querySelector(selector);
const CHANNELS = ["dialog", "comms", "alert", "content"];
const MAX_LINES = 200;

const ui = {
  conn: $("#conn"),
  state: $("#state"),
  persona: $("#persona"),
  offline: $("#offline"),
  ptt: $("#ptt"),
  status: $("#status"),
  nowPlaying: $("#now-playing"),
  inputMode: $("#input-mode"),
  volume: $("#volume"),
  micSent: $("#mic-sent"),
  played: $("#played"),
  soundHint: $("#sound-hint"),
  queueCurrent: $("#queue-current"),
  queueList: $("#queue-list"),
  injectLast: $("#inject-last"),
  turnId: $("#turn-id"),
  turnKind: $("#turn-kind"),
  turnPhase: $("#turn-phase"),
  transcript: $("#transcript-list"),
  events: $("#event-list"),
  micMeter: $("#mic-meter"),
  spkMeter: $("#spk-meter"),
  skills: $("#skills-list"),
};

const session = {
  ws: null,
  evicted: false,
  retryMs: 500,
  pressed: false, // the button is down
  talking: false, // mic frames go out for the press (stays on until the release flushed)
  releasing: false,
  inputMode: "assistant_ptt",
  framesSent: 0,
  micLevel: 0,
  activities: new Map(), // activity_id -> focus event
};

const engine = new AudioEngine({
  onMicFrame: (pcm) => {
    if (!(session.talking || session.inputMode === "skill_continuous")) return;
    if (send({ type: "audio", data: toBase64(pcm) })) {
      session.framesSent += 1;
      ui.micSent.dataset.frames = String(session.framesSent);
      ui.micSent.textContent = `${session.framesSent} frames`;
    }
  },
  onMicLevel: (level) => {
    session.micLevel = level;
  },
});

// -- the socket ----------------------------------------------------------------------
function connect() {
  const params = new URLSearchParams(location.search);
  const query = new URLSearchParams();
  for (const key of ["lang", "persona"]) if (params.get(key)) query.set(key, params.get(key));
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws${query.size ? `?${query}` : ""}`);
  session.ws = ws;
  setConn("connecting");
  ws.onopen = () => {
    session.retryMs = 500;
    setConn("connected");
  };
  ws.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    handle(message);
  };
  ws.onclose = (event) => {
    if (session.ws !== ws) return;
    session.ws = null;
    if (session.pressed) release();
    if (event.code === 1001 && event.reason.startsWith("Replaced")) {
      session.evicted = true; // another tab or device took over: don't fight it
      setConn("replaced");
      ui.status.textContent = "Another client connected. Reload to take over again.";
      return;
    }
    setConn("disconnected");
    setTimeout(connect, session.retryMs);
    session.retryMs = Math.min(session.retryMs * 2, 5000);
  };
}

function send(message) {
  const ws = session.ws;
  if (ws === null || ws.readyState !== WebSocket.OPEN) return false;
  ws.send(JSON.stringify(message));
  return true;
}

function setConn(value) {
  document.body.dataset.conn = value;
  ui.conn.textContent = value;
}

// -- messages from the server ----------------------------------------------------------
function handle(message) {
  switch (message.type) {
    case "hello":
      ui.persona.textContent = `${message.current_persona} · ${message.language ?? ""}`;
      send({ type: "get_skills_state" });
      break;
    case "skills_state":
      renderSkills(ui.skills, message, send);
      break;
    case "audio":
      engine.play(fromBase64(message.data));
      break;
    case "audio_clear":
      engine.clear();
      break;
    case "state":
      ui.state.textContent = message.value;
      document.body.dataset.state = message.value;
      break;
    case "status":
      ui.status.textContent = message.message;
      break;
    case "transcript":
      finalLine(message);
      break;
    case "transcript_delta":
      liveLine(message);
      break;
    case "model_speaking":
      document.body.dataset.speaking = String(Boolean(message.value));
      break;
    case "set_volume":
      engine.setVolume(message.level);
      ui.volume.textContent = String(message.level);
      break;
    case "input_mode":
      session.inputMode = message.mode;
      ui.inputMode.textContent = message.mode;
      document.body.dataset.inputMode = message.mode;
      if (message.mode === "skill_continuous") engine.enableMic().catch(showError);
      break;
    case "claim_started":
      ui.status.textContent = `In a call${message.title ? ` with ${message.title}` : ""} (${message.skill ?? "skill"})`;
      break;
    case "claim_ended":
      ui.status.textContent = `Call ended (${message.end_reason})`;
      break;
    case "stream_started":
      ui.nowPlaying.textContent = `Playing: ${message.label ?? message.stream_id}`;
      break;
    case "stream_ended":
      ui.nowPlaying.textContent = "";
      break;
    case "dev_event":
      devEvent(message.kind, message.payload ?? {});
      break;
    case "server_event":
      addLine(ui.events, "server", `${message.event} ${JSON.stringify(message.data ?? {})}`);
      break;
    case "sessions_list":
    case "session_detail":
    case "session_deleted":
      addLine(ui.events, "sessions", JSON.stringify(message).slice(0, 300));
      break;
    default:
      break;
  }
}

$("#skills-refresh").addEventListener("click", () => send({ type: "get_skills_state" }));

function devEvent(kind, payload) {
  if (kind === "focus") {
    if (payload.state === "none") session.activities.delete(payload.activity_id);
    else session.activities.set(payload.activity_id, payload);
    renderFocus();
  } else if (kind === "focus_snapshot") {
    session.activities = new Map((payload.activities ?? []).map((a) => [a.activity_id, a]));
    renderFocus();
  } else if (kind === "queue") {
    renderQueue(payload);
  } else if (kind === "inject") {
    ui.injectLast.textContent = `inject ${payload.inject_id}: ${payload.status}`;
  } else if (kind === "session") {
    showOffline(payload);
    addLine(ui.events, kind, JSON.stringify(payload).slice(0, 300));
  } else if (kind === "turn") {
    ui.turnId.textContent = payload.turn_id;
    ui.turnKind.textContent = payload.kind;
    ui.turnPhase.textContent = payload.phase;
    document.body.dataset.turnPhase = payload.phase;
  } else {
    addLine(ui.events, kind, JSON.stringify(payload).slice(0, 300));
  }
}

function renderFocus() {
  for (const channel of CHANNELS) {
    const list = document.querySelector(`.channel[data-channel="${channel}"] ul`);
    list.replaceChildren();
    for (const activity of session.activities.values()) {
      if (activity.channel !== channel) continue;
      const item = document.createElement("li");
      item.className = "activity";
      item.dataset.state = activity.state;
      item.dataset.activity = activity.activity_id;
      const label = activity.meta?.label ?? activity.meta?.title ?? activity.interface;
      item.textContent = `${label} · ${activity.state}${activity.state === "background" ? ` (${activity.behavior})` : ""}`;
      list.append(item);
    }
  }
}

function renderQueue(payload) {
  const current = payload.current;
  ui.queueCurrent.textContent = current ? `now: ${current.prompt}` : "nothing playing";
  ui.queueList.replaceChildren(
    ...(payload.queue ?? []).map((entry) => {
      const item = document.createElement("li");
      item.textContent = `[${entry.priority}] ${entry.skill ?? "?"}: ${entry.prompt}`;
      return item;
    }),
  );
}

// Offline mode (no OpenAI key): say so where nobody can miss it.
function showOffline(payload) {
  const offline = Boolean(payload.offline);
  ui.offline.hidden = !offline;
  ui.offline.textContent = payload.simulated ? "offline mode (simulator)" : "offline mode (no voice)";
  document.body.dataset.offline = String(offline);
}

// The assistant's live text: one line per model item, grown by each delta,
// replaced by the whole line once it was heard (`transcript` with its item_id).
function liveLine(message) {
  const id = message.item_id ?? `turn-${message.turn_id ?? ""}`;
  let item = ui.transcript.querySelector(`li[data-item="${CSS.escape(id)}"]`);
  if (item === null) {
    addLine(ui.transcript, message.role, "");
    item = ui.transcript.lastElementChild;
    item.dataset.item = id;
    item.dataset.live = "true";
  }
  item.lastChild.textContent += message.delta;
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
}

function finalLine(message) {
  const live = message.item_id
    ? ui.transcript.querySelector(`li[data-item="${CSS.escape(message.item_id)}"]`)
    : null;
  if (live === null) {
    addLine(ui.transcript, message.role, message.text);
    return;
  }
  live.lastChild.textContent = message.text; // what was heard (cut if interrupted)
  live.dataset.live = "false";
}

function addLine(list, who, text) {
  const item = document.createElement("li");
  const role = document.createElement("b");
  role.textContent = `${who}: `;
  item.append(role, document.createTextNode(text));
  list.append(item);
  while (list.children.length > MAX_LINES) list.firstElementChild.remove();
  list.scrollTop = list.scrollHeight;
}

function showError(error) {
  ui.status.textContent = `Microphone: ${error.message ?? error}`;
}

// -- push to talk -------------------------------------------------------------------------
function press() {
  if (session.pressed || session.releasing) return;
  session.pressed = true;
  session.talking = true;
  ui.ptt.setAttribute("aria-pressed", "true");
  engine.clear(); // silence at once, before the server even hears of it
  send({ type: "ptt_start" });
  engine.unlock().then(() => engine.enableMic()).catch(showError);
}

async function release() {
  if (!session.pressed) return;
  session.pressed = false;
  session.releasing = true;
  ui.ptt.setAttribute("aria-pressed", "false");
  await engine.flushMic(); // the last words reach the server before ptt_stop
  session.talking = false;
  session.releasing = false;
  send({ type: "ptt_stop" });
}

ui.ptt.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  ui.ptt.setPointerCapture(event.pointerId);
  press();
});
for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
  ui.ptt.addEventListener(name, () => release());
}
ui.ptt.addEventListener("contextmenu", (event) => event.preventDefault());
window.addEventListener("keydown", (event) => {
  if (event.code !== "Space" || event.repeat || event.target.closest?.("input, textarea")) return;
  event.preventDefault();
  press();
});
window.addEventListener("keyup", (event) => {
  if (event.code !== "Space") return;
  event.preventDefault();
  release();
});
window.addEventListener("blur", () => release());

// The first gesture anywhere turns the sound on.
document.addEventListener(
  "pointerdown",
  () => engine.unlock().then(updateSoundHint).catch(showError),
  { capture: true },
);
function updateSoundHint() {
  ui.soundHint.hidden = engine.running;
}

// -- meters ---------------------------------------------------------------------------------
function drawMeter(canvas, level) {
  const g = canvas.getContext("2d");
  const width = Math.min(1, level * 4) * canvas.width;
  g.fillStyle = "#20242c";
  g.fillRect(0, 0, canvas.width, canvas.height);
  g.fillStyle = "#3ccf7a";
  g.fillRect(0, 0, width, canvas.height);
}

function frame() {
  drawMeter(ui.micMeter, session.talking || session.inputMode === "skill_continuous" ? session.micLevel : 0);
  drawMeter(ui.spkMeter, engine.speakerLevel());
  const playedMs = Math.round(engine.playedSamples / 24);
  ui.played.dataset.ms = String(playedMs);
  ui.played.textContent = `${playedMs} ms`;
  requestAnimationFrame(frame);
}

// -- base64 <-> PCM16 ---------------------------------------------------------------------
function toBase64(pcm) {
  const bytes = new Uint8Array(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

function fromBase64(data) {
  const text = atob(data);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return new Int16Array(bytes.buffer, 0, bytes.length >> 1);
}

ui.soundHint.hidden = false;
renderFocus();
connect();
requestAnimationFrame(frame);
