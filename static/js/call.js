// The live call page: WebSocket wire protocol v1 client with microphone capture,
// streamed playback, live transcript and per-turn latency.
//
// Observable state for people and tests lives on #call as data attributes:
// data-state (connecting | connected | reconnecting | ended | failed),
// data-audio-bytes / data-audio-chunks (agent audio received), data-mic
// (off | on | muted | denied | unavailable), data-transcripts, data-replies.

import { Microphone, TARGET_RATE } from "./microphone.js";
import { PcmPlayer } from "./player.js";

const root = document.getElementById("call");
const statusLine = document.getElementById("call-status");
const log = document.getElementById("conversation");
const latencyBody = document.getElementById("latency-rows");
const textForm = document.getElementById("text-form");
const textInput = document.getElementById("text-input");
const muteButton = document.getElementById("mute");
const interruptButton = document.getElementById("interrupt");
const hangupForm = document.getElementById("hangup-form");

// Closes that retrying cannot fix: wire protocol v1 close codes.
const FATAL_CLOSES = {
  4401: "You are signed out. Log in again to continue.",
  4403: "This call belongs to another account.",
  4404: "This call does not exist.",
  4429: "Your account already has as many live calls as it may have at once. End one, then reload this page.",
};
const RECONNECT_DELAYS_MS = [500, 1000, 2000, 4000, 8000];

const context = new AudioContext();
const player = new PcmPlayer(context);
const microphone = new Microphone(context, root.dataset.workletUrl, (frame) => {
  if (socket?.readyState === WebSocket.OPEN) socket.send(frame);
});

let socket = null;
let ended = false;
let attempts = 0;
let micStarted = false;
const turns = new Map(); // turn_id → {user, agent} bubble elements
const pendingTyped = []; // typed bubbles waiting for the turn id the server gives them

function setState(state, message, kind = "info") {
  root.dataset.state = state;
  statusLine.textContent = message;
  statusLine.className = `call-status ${kind}`;
}

function bump(name, by = 1) {
  root.dataset[name] = String(Number(root.dataset[name] || 0) + by);
}

function bubble(speaker, text = "") {
  const item = document.createElement("li");
  item.className = `bubble ${speaker}`;
  item.innerHTML = `<span class="who"></span><span class="text"></span><span class="meta"></span>`;
  item.querySelector(".who").textContent = speaker === "user" ? "You" : root.dataset.agentName;
  item.querySelector(".text").textContent = text;
  log.append(item);
  item.scrollIntoView({ block: "nearest" });
  return item;
}

function turn(turnId) {
  if (!turns.has(turnId)) {
    const entry = { user: pendingTyped.shift() ?? null, agent: null };
    if (entry.user) entry.user.dataset.turnId = turnId;
    turns.set(turnId, entry);
  }
  return turns.get(turnId);
}

function userBubble(turnId) {
  const entry = turn(turnId);
  if (!entry.user) {
    entry.user = bubble("user");
    entry.user.dataset.turnId = turnId;
  }
  return entry.user;
}

function agentBubble(turnId) {
  const entry = turn(turnId);
  if (!entry.agent) {
    entry.agent = bubble("agent");
    entry.agent.dataset.turnId = turnId;
  }
  return entry.agent;
}

function addLatencyRow(m) {
  const row = document.createElement("tr");
  const cells = [m.turn_id, m.stt_ms, m.classify_ms, m.first_token_ms, m.first_audio_ms, m.total_ms];
  row.innerHTML = cells.map(() => "<td></td>").join("");
  cells.forEach((value, i) => {
    row.children[i].textContent = value ?? "–";
  });
  latencyBody.append(row);
  document.getElementById("latency-empty")?.remove();
}

const handlers = {
  ready(event) {
    attempts = 0;
    player.sampleRate = event.output?.sample_rate ?? player.sampleRate;
    setState("connected", micStarted || root.dataset.mic === "denied"
      ? "Connected." : "Connected. Starting the microphone…", "ok");
    startMicrophone();
  },
  "speech.started"() {
    root.classList.add("caller-speaking");
  },
  "speech.stopped"() {
    root.classList.remove("caller-speaking");
  },
  transcript(event) {
    const item = userBubble(event.turn_id);
    item.querySelector(".text").textContent = event.text;
    item.classList.toggle("partial", !event.final);
    if (event.final) bump("transcripts");
  },
  intent(event) {
    const meta = userBubble(event.turn_id).querySelector(".meta");
    meta.textContent = event.intent;
    meta.className = "meta badge";
  },
  "response.delta"(event) {
    agentBubble(event.turn_id).querySelector(".text").textContent += event.text;
  },
  "response.done"(event) {
    const item = agentBubble(event.turn_id);
    if (event.text) item.querySelector(".text").textContent = event.text;
    item.classList.toggle("interrupted", Boolean(event.interrupted));
    if (event.interrupted) item.querySelector(".meta").textContent = "interrupted";
    bump("replies");
  },
  "audio.start"(event) {
    if (event.sample_rate) player.sampleRate = event.sample_rate;
    root.classList.add("agent-speaking");
  },
  "audio.end"() {
    root.classList.remove("agent-speaking");
  },
  interrupted() {
    player.flush();
    root.classList.remove("agent-speaking");
  },
  metrics(event) {
    addLatencyRow(event);
  },
  handoff(event) {
    // A transfer route: a browser cannot dial, so the caller is shown where to.
    agentBubble(event.turn_id).querySelector(".meta").textContent = `handed over to ${event.to}`;
  },
  error(event) {
    setState(root.dataset.state, `${event.message} (${event.code})`, "warning");
  },
  ended(event) {
    ended = true;
    finish(`The call has ended (${event.reason}).`);
  },
};

function onMessage(message) {
  if (typeof message.data !== "string") {
    bump("audioBytes", message.data.byteLength);
    bump("audioChunks");
    player.enqueue(message.data);
    return;
  }
  const event = JSON.parse(message.data);
  handlers[event.type]?.(event);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
  socket.binaryType = "arraybuffer";
  socket.onopen = () => socket.send(JSON.stringify({ type: "start", sample_rate: TARGET_RATE }));
  socket.onmessage = onMessage;
  socket.onclose = (event) => {
    player.flush();
    if (ended) return;
    if (FATAL_CLOSES[event.code]) return finish(FATAL_CLOSES[event.code], "error");
    // 4409 right after a drop can mean the server has not yet let go of the
    // old socket; it also means "ended", which the retries then confirm.
    if (attempts >= RECONNECT_DELAYS_MS.length) {
      return finish("The connection was lost and could not be restored. Reload the page to try again.", "error");
    }
    const delay = RECONNECT_DELAYS_MS[attempts++];
    setState("reconnecting", `Connection lost. Reconnecting in ${Math.round(delay / 100) / 10} s…`, "warning");
    setTimeout(connect, delay);
  };
}

// The microphone opens asynchronously; if the socket dropped meanwhile, the
// connection's state ("reconnecting") must not be overwritten by "connected".
function micStatus(message, kind) {
  if (root.dataset.state === "connected") setState("connected", message, kind);
}

async function startMicrophone() {
  if (micStarted) return;
  micStarted = true;
  if (!navigator.mediaDevices) {
    // Browsers expose the microphone only to secure pages (https:// or localhost).
    root.dataset.mic = "unavailable";
    micStatus("The microphone needs a secure (https://) page. You can still type.", "warning");
    return;
  }
  try {
    await microphone.start();
    root.dataset.mic = "on";
    muteButton.disabled = false;
    micStatus("Connected. Speak, or type below.", "ok");
  } catch (error) {
    const denied = error.name === "NotAllowedError" || error.name === "SecurityError";
    root.dataset.mic = denied ? "denied" : "unavailable";
    micStatus(
      denied
        ? "Microphone access was denied. You can still type; allow the microphone in your browser's site settings and reload to talk."
        : `No microphone could be opened (${error.message || error.name}). You can still type.`,
      "warning",
    );
  }
}

function finish(message, kind = "info") {
  ended = true;
  microphone.stop();
  player.flush();
  root.classList.remove("agent-speaking", "caller-speaking");
  setState(kind === "error" ? "failed" : "ended", message, kind);
  for (const control of root.querySelectorAll("button, input")) control.disabled = true;
  document.getElementById("after-call").hidden = false;
  if (socket?.readyState === WebSocket.OPEN) socket.close(1000);
}

function send(message) {
  if (socket?.readyState !== WebSocket.OPEN) {
    setState(root.dataset.state, "Not connected right now; try again in a moment.", "warning");
    return false;
  }
  socket.send(JSON.stringify(message));
  return true;
}

textForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  if (!text || !send({ type: "text", text })) return;
  player.flush();
  pendingTyped.push(bubble("user", text));
  textInput.value = "";
});

muteButton.addEventListener("click", () => {
  const muted = muteButton.getAttribute("aria-pressed") !== "true";
  microphone.setMuted(muted);
  muteButton.setAttribute("aria-pressed", String(muted));
  muteButton.textContent = muted ? "Unmute" : "Mute";
  root.dataset.mic = muted ? "muted" : "on";
});

interruptButton.addEventListener("click", () => {
  player.flush();
  send({ type: "interrupt" });
});

hangupForm.addEventListener("submit", (event) => {
  // Over the socket the server ends the call and answers `ended`; without one
  // the form posts to the end view instead.
  if (send({ type: "end" })) event.preventDefault();
});

// Browsers start an AudioContext suspended until the page gets a gesture.
const resume = () => context.state === "suspended" && context.resume();
document.addEventListener("pointerdown", resume);
document.addEventListener("keydown", resume);
context.onstatechange = () => {
  document.getElementById("audio-blocked").hidden = context.state !== "suspended";
};
document.getElementById("audio-blocked").hidden = context.state !== "suspended";

setState("connecting", "Connecting…");
connect();
