// Tandem dashboard: watches GET /v1/cluster/events (or polls GET /v1/cluster), draws the
// pipeline, and streams chat answers from POST /v1/chat/completions. Plain script, no
// build step.
"use strict";

// Without the event stream the page polls: a node's death shows within one poll of the
// coordinator noticing it. Also the wait before watching again after the stream broke.
const POLL_MS = 500;
let apiKey = localStorage.getItem("tandem-api-key") || "";
const history = [];

function headers() {
  const h = { "Content-Type": "application/json" };
  if (apiKey) h["Authorization"] = "Bearer " + apiKey;
  return h;
}

function askKey() {
  const k = prompt("This cluster needs an API key:");
  if (k) { apiKey = k.trim(); localStorage.setItem("tandem-api-key", apiKey); }
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "style") e.style.cssText = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

// Each poll changes only what changed: writing the same text or style again would still
// cost the browser a style and layout pass.
function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}
function setClass(e, name) {
  if (e.className !== name) e.className = name;
}
function setStyle(e, property, value) {
  if (e.style.getPropertyValue(property) !== value) e.style.setProperty(property, value);
}
function setTitle(e, title) {
  if (e.title !== title) e.title = title;
}

function bytes(n) {
  if (n === undefined || n === null || !Number.isFinite(Number(n))) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : Math.round(n)) + " " + u[i];
}

function num(v, digits) {
  return (v === undefined || v === null || Number.isNaN(v)) ? "–" : Number(v).toFixed(digits);
}

// A node's fetch of the layers it lacks, when the coordinator reports one in progress
// ({bytes_done, bytes_total}); null otherwise, and for figures that make no sense.
function fetchProgress(node) {
  const f = node.fetch;
  if (!f || typeof f !== "object") return null;
  const done = Number(f.bytes_done), total = Number(f.bytes_total);
  if (!Number.isFinite(done) || !Number.isFinite(total) || total <= 0 || done < 0 ||
      done >= total) {
    return null;
  }
  return { done, total };
}

// "joining 3/8" while a node checks and prepares its layers, as `tandem status` prints it;
// "· fetching 40% of 1.2 GiB" while it fetches the layers it lacks.
function stateText(node) {
  const state = node.state || "dead";
  let text = node.layers_to_load > 0 ? `${state} ${node.layers_loaded}/${node.layers_to_load}` : state;
  const f = fetchProgress(node);
  if (f) text += ` · fetching ${Math.floor((100 * f.done) / f.total)}% of ${bytes(f.total)}`;
  return text;
}

function stateTitle(node) {
  if (node.state === "standby") return "alive, but the plan in force gives it no layers";
  const f = fetchProgress(node);
  return f ? `fetched ${bytes(f.done)} of ${bytes(f.total)}` : "";
}

// "layer 3" or "layers 0–4" for the half-open range [first, last).
function layerRange(first, last) {
  return last - first === 1 ? `layer ${first}` : `layers ${first}–${last - 1}`;
}

// The summary cards, made once; each poll sets their values.
const cards = {};
function makeCards() {
  const box = document.getElementById("summary");
  for (const [key, label, title] of [
    ["tps", "tokens/s (measured)"],
    ["tps_plan", "tokens/s (planner)", "the planner's prediction for this plan"],
    ["mspt", "ms/token (measured)"],
    ["mspt_plan", "ms/token (planner)"],
    ["ttft", "time to first token"],
    ["sessions", "sessions in flight"],
    ["tokens", "tokens generated"],
  ]) {
    const v = el("div", { class: "v" }, "–");
    box.append(el("div", { class: "card", title: title || "" }, v, el("div", { class: "k" }, label)));
    cards[key] = v;
  }
}

function renderSummary(c) {
  const m = c.measured || {}, p = c.predicted || {};
  setText(cards.tps, num(m.tokens_per_s, 1));
  setText(cards.tps_plan, num(p.tokens_per_s, 1));
  setText(cards.mspt, num(m.ms_per_token, 1));
  setText(cards.mspt_plan, num(p.ms_per_token, 1));
  setText(cards.ttft, m.ttft_ms === undefined || m.ttft_ms === null ? "–" : num(m.ttft_ms, 0) + " ms");
  setText(cards.sessions, (m.sessions_active ?? "–") +
    (m.sessions_queued ? " (+" + m.sessions_queued + " queued)" : ""));
  setText(cards.tokens, String(m.tokens_generated ?? "–"));
}

// The pipeline's elements, made again only when the stages' nodes change.
let pipelineKey = null;
let stageViews = [];

function makeStage(s, i, last) {
  const v = {
    root: el("div", { "data-node": s.node_id }),
    state: el("span"),
    fill: el("div", { class: "fill" }),
    track: el("div", { class: "track" }),
    layers: el("span", { class: "layers" }),
    compute: el("span"),
    memory: el("span"),
    mem: el("div", { class: "fill" }),
    hop: last ? null : el("div", { class: "hop" }),
  };
  v.track.append(v.fill);
  v.root.append(
    el("div", { class: "top" }, el("strong", {}, `${i + 1}. ${s.node_id}`),
      el("span", { class: "muted" }, s.address), v.state),
    v.track,
    el("div", { class: "top muted" }, v.layers, v.compute, v.memory),
    el("div", { class: "mem" }, v.mem));
  return v;
}

function renderPipeline(c) {
  const n = c.n_layers || 1;
  const stages = c.stages || [];
  const nodes = new Map((c.nodes || []).map((x) => [x.node_id, x]));
  setText(document.getElementById("plan-line"), stages.length
    ? `plan epoch ${c.plan_epoch} · ${c.planner} planner · ${n} layers · context ${c.n_ctx} · KV for ${c.sessions} sessions`
    : (c.reason || "no plan yet"));
  const key = stages.map((s) => `${s.node_id} ${s.address}`).join("|");
  if (key !== pipelineKey) {
    pipelineKey = key;
    stageViews = stages.map((s, i) => makeStage(s, i, i + 1 === stages.length));
    const parts = [];
    for (const v of stageViews) { parts.push(v.root); if (v.hop) parts.push(v.hop); }
    document.getElementById("pipeline").replaceChildren(...parts);
  }
  stages.forEach((s, i) => {
    const v = stageViews[i];
    const node = nodes.get(s.node_id) || {};
    const state = node.state || "dead";
    setClass(v.root, "stage " + state);
    setClass(v.state, "state-" + state);
    setText(v.state, stateText(node));
    setTitle(v.state, stateTitle(node));
    setStyle(v.fill, "left", `${(100 * s.layer_first) / n}%`);
    setStyle(v.fill, "width", `${(100 * (s.layer_last - s.layer_first)) / n}%`);
    setTitle(v.track, `layers ${s.layer_first}–${s.layer_last - 1} of ${n}`);
    setText(v.layers, layerRange(s.layer_first, s.layer_last));
    setText(v.compute, `compute ${num(s.compute_ms, 2)} ms/tok (planned ${num(s.predicted_compute_ms, 2)})`);
    setText(v.memory, `memory ${bytes(s.memory_bytes)} of ${bytes(s.node_memory_bytes)}`);
    const memPct = s.node_memory_bytes ? Math.min(100, (100 * s.memory_bytes) / s.node_memory_bytes) : 0;
    setStyle(v.mem, "width", `${memPct}%`);
    if (v.hop) setText(v.hop, `↓ ${num(s.hop_ms, 2)} ms · ${bytes(s.hop_bytes_per_token)}/token`);
  });
}

// The nodes table's rows, made again only when the nodes change.
let nodesKey = null;
let rowViews = [];

function renderNodes(c) {
  const list = c.nodes || [];
  const key = list.map((x) => `${x.node_id} ${x.address}`).join("|");
  if (key !== nodesKey) {
    nodesKey = key;
    rowViews = list.map((x) => {
      const cells = Array.from({ length: 9 }, () => el("td"));
      cells[0].textContent = x.node_id;
      cells[1].textContent = x.address;
      return { row: el("tr", { "data-node": x.node_id }, ...cells), cells };
    });
    document.querySelector("#nodes tbody").replaceChildren(...rowViews.map((v) => v.row));
  }
  const stageOf = new Map((c.stages || []).map((s) => [s.node_id, s]));
  list.forEach((x, i) => {
    const cells = rowViews[i].cells;
    const s = stageOf.get(x.node_id);
    setClass(cells[2], "state-" + x.state);
    setText(cells[2], stateText(x));
    setTitle(cells[2], stateTitle(x));
    setText(cells[3], s ? layerRange(s.layer_first, s.layer_last)
      : x.state === "standby" ? "none in the plan" : "–");
    setText(cells[4], s ? `${bytes(s.memory_bytes)} / ${bytes(s.node_memory_bytes)}` : bytes(x.memory_bytes));
    setText(cells[5], num(s && s.compute_ms, 2));
    setText(cells[6], num(s && s.queue_ms, 2));
    setText(cells[7], num(s && s.hop_ms, 2));
    setText(cells[8], s ? bytes(s.hop_bytes_per_token) : "–");
  });
}

// Events come oldest first and end with the newest; the list shows them newest first,
// and each poll adds only the ones it has not shown.
let shownEvents = [];  // their keys, oldest first

function renderEvents(c) {
  const events = c.events || [];
  const keys = events.map((e) => `${e.time_ms} ${e.kind} ${e.message}`);
  const box = document.getElementById("events");
  const item = (e) => el("li", { class: "event-" + e.kind },
    el("span", { class: "muted" }, new Date(e.time_ms).toLocaleTimeString() + " "),
    `${e.kind}: ${e.message}`);
  // The coordinator keeps the latest few hundred: how many of those shown it dropped.
  const continues = (dropped) => {
    const kept = shownEvents.length - dropped;
    if (kept > keys.length) return false;
    for (let i = 0; i < kept; i++) if (keys[i] !== shownEvents[i + dropped]) return false;
    return true;
  };
  let dropped = 0;
  while (dropped < shownEvents.length && !continues(dropped)) dropped++;
  if (dropped < shownEvents.length) {
    for (let i = shownEvents.length - dropped; i < events.length; i++) box.prepend(item(events[i]));
    for (let i = 0; i < dropped; i++) box.lastElementChild.remove();
  } else {
    box.replaceChildren(...events.slice().reverse().map(item));
  }
  shownEvents = keys;
}

let lastBody = null;  // the last /v1/cluster answer drawn
let lastTag = null;   // and its ETag
let stale = false;    // the page says the coordinator is unreachable

function render(c) {
  setText(document.getElementById("model"), c.model || "");
  const badge = document.getElementById("health");
  setText(badge, c.ready ? "ready" : (c.reason || "not ready"));
  setClass(badge, "badge " + (c.ready ? "ok" : "bad"));
  renderSummary(c);
  renderPipeline(c);
  renderNodes(c);
  renderEvents(c);
  stale = false;
}

// A body from the coordinator: drawn unless it is what the page shows already.
function show(body) {
  if (body === lastBody && !stale) return;
  const c = JSON.parse(body);
  lastBody = body;
  render(c);
}

function unreachable() {
  stale = true;
  const badge = document.getElementById("health");
  setText(badge, "coordinator unreachable");
  setClass(badge, "badge bad");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
// Resolves when the page is visible: a hidden page (another tab, a locked phone) neither
// watches nor polls, and catches up when shown.
function visible() {
  if (document.visibilityState !== "hidden") return Promise.resolve();
  return new Promise((resolve) => {
    const seen = () => {
      if (document.visibilityState === "hidden") return;
      document.removeEventListener("visibilitychange", seen);
      resolve();
    };
    document.addEventListener("visibilitychange", seen);
  });
}

// Reads a server-sent event stream: onData(data) for each event (its data: lines joined),
// until the stream ends or onData returns true.
async function readEvents(body, onData) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = event.split("\n").filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6)).join("\n");
      if (data && onData(data)) return;
    }
  }
}

// The cluster as server-sent events (GET /v1/cluster/events): the coordinator sends it when
// it changes, so the page makes no request per look. Read with fetch (EventSource cannot
// send an API key). Returns when the coordinator offers no stream (an older one, or too
// many watchers): the page then polls.
let watching = null;  // the AbortController of the stream in progress

async function watch() {
  for (;;) {
    await visible();
    watching = new AbortController();
    try {
      const r = await fetch("/v1/cluster/events", { headers: headers(), cache: "no-store",
        signal: watching.signal });
      if (r.status === 401) { askKey(); throw new Error("unauthorized"); }
      if (!r.ok || !r.body) { watching = null; return; }
      await readEvents(r.body, (data) => { show(data); return false; });
      unreachable();  // the coordinator ended the stream: it is stopping
    } catch (err) {
      if (!watching.signal.aborted) unreachable();
    }
    watching = null;
    await sleep(POLL_MS);
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden" && watching) watching.abort();
});

// Polling GET /v1/cluster, when there is no stream: nothing is parsed or drawn when the
// cluster did not change (the coordinator answers 304 to the ETag of what the page shows).
async function poll() {
  for (;;) {
    await visible();
    try {
      const h = headers();
      if (lastTag) h["If-None-Match"] = lastTag;
      const r = await fetch("/v1/cluster", { headers: h, cache: "no-store" });
      if (r.status === 401) { askKey(); throw new Error("unauthorized"); }
      if (r.status === 304) {
        if (stale) render(JSON.parse(lastBody));  // back after a failed poll
      } else {
        if (!r.ok) throw new Error(r.statusText);
        const body = await r.text();
        lastTag = r.headers.get("ETag");
        show(body);
      }
    } catch (err) {
      unreachable();
    }
    await sleep(POLL_MS);
  }
}

// One server-sent event stream from the chat API, appended to `out` as it arrives. The
// answer runs to its end of turn or the context's end (the API's default) unless stopped.
let answering = null;  // the AbortController of the answer in progress

async function streamChat(out, signal) {
  const r = await fetch("/v1/chat/completions", {
    method: "POST", headers: headers(), signal,
    body: JSON.stringify({ model: "tandem", messages: history, stream: true }),
  });
  if (r.status === 401) askKey();
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error.message; } catch (e) { /* keep the status text */ }
    throw new Error(`${r.status}: ${msg}`);
  }
  let text = "";
  try {
    await readEvents(r.body, (data) => {
      if (data === "[DONE]") return true;
      const chunk = JSON.parse(data);
      const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
      if (delta && delta.content) { text += delta.content; out.textContent = text; }
      return false;
    });
  } catch (err) {
    if (!signal.aborted) throw err;  // stopped: keep what came
  }
  return text;
}

document.getElementById("chat-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (answering) { answering.abort(); return; }  // the button says Stop
  const input = document.getElementById("chat-input");
  const content = input.value.trim();
  if (!content) return;
  input.value = "";
  const log = document.getElementById("chat-log");
  log.append(el("div", { class: "msg user" }, content));
  const out = el("div", { class: "msg assistant" });
  log.append(out);
  history.push({ role: "user", content });
  const send = document.getElementById("chat-send");
  answering = new AbortController();
  send.textContent = "Stop";
  try {
    const text = await streamChat(out, answering.signal);
    history.push({ role: "assistant", content: text });
  } catch (err) {
    history.pop();
    out.className = "msg error";
    out.textContent = answering.signal.aborted ? "(stopped)" : String(err.message || err);
  } finally {
    answering = null;
    send.textContent = "Send";
    log.scrollTop = log.scrollHeight;
  }
});

makeCards();
watch().then(poll);
