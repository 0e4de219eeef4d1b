// Tandem dashboard: polls GET /v1/cluster, draws the pipeline, and streams chat answers from
// POST /v1/chat/completions. Plain script, no build step.
"use strict";

const POLL_MS = 500;  // a node's death shows within one poll of the coordinator noticing it
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

function bytes(n) {
  if (n === undefined || n === null) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : Math.round(n)) + " " + u[i];
}

function num(v, digits) {
  return (v === undefined || v === null || Number.isNaN(v)) ? "–" : Number(v).toFixed(digits);
}

function card(label, value, title) {
  return el("div", { class: "card", title: title || "" }, el("div", { class: "v" }, value),
            el("div", { class: "k" }, label));
}

// "joining 3/8" while a node checks and prepares its layers, as `tandem status` prints it.
function stateText(node) {
  const state = node.state || "dead";
  return node.layers_to_load > 0 ? `${state} ${node.layers_loaded}/${node.layers_to_load}` : state;
}

// "layer 3" or "layers 0–4" for the half-open range [first, last).
function layerRange(first, last) {
  return last - first === 1 ? `layer ${first}` : `layers ${first}–${last - 1}`;
}

function renderSummary(c) {
  const m = c.measured || {}, p = c.predicted || {};
  const box = document.getElementById("summary");
  box.replaceChildren(
    card("tokens/s (measured)", num(m.tokens_per_s, 1)),
    card("tokens/s (planner)", num(p.tokens_per_s, 1), "the planner's prediction for this plan"),
    card("ms/token (measured)", num(m.ms_per_token, 1)),
    card("ms/token (planner)", num(p.ms_per_token, 1)),
    card("time to first token", m.ttft_ms === undefined ? "–" : num(m.ttft_ms, 0) + " ms"),
    card("sessions in flight", (m.sessions_active ?? "–") + (m.sessions_queued ? " (+" + m.sessions_queued + " queued)" : "")),
    card("tokens generated", m.tokens_generated ?? "–"));
}

function renderPipeline(c) {
  const n = c.n_layers || 1;
  const box = document.getElementById("pipeline");
  const stages = c.stages || [];
  const nodes = new Map((c.nodes || []).map((x) => [x.node_id, x]));
  document.getElementById("plan-line").textContent = stages.length
    ? `plan epoch ${c.plan_epoch} · ${c.planner} planner · ${n} layers · context ${c.n_ctx} · KV for ${c.sessions} sessions`
    : (c.reason || "no plan yet");
  const parts = [];
  stages.forEach((s, i) => {
    const node = nodes.get(s.node_id) || {};
    const state = node.state || "dead";
    const left = (100 * s.layer_first) / n, width = (100 * (s.layer_last - s.layer_first)) / n;
    const memPct = s.node_memory_bytes ? Math.min(100, (100 * s.memory_bytes) / s.node_memory_bytes) : 0;
    parts.push(el("div", { class: "stage " + state, "data-node": s.node_id },
      el("div", { class: "top" },
        el("strong", {}, `${i + 1}. ${s.node_id}`),
        el("span", { class: "muted" }, s.address),
        el("span", { class: "state-" + state }, stateText(node))),
      el("div", { class: "track", title: `layers ${s.layer_first}–${s.layer_last - 1} of ${n}` },
        el("div", { class: "fill", style: `left:${left}%;width:${width}%` })),
      el("div", { class: "top muted" },
        el("span", { class: "layers" }, layerRange(s.layer_first, s.layer_last)),
        el("span", {}, `compute ${num(s.compute_ms, 2)} ms/tok (planned ${num(s.predicted_compute_ms, 2)})`),
        el("span", {}, `memory ${bytes(s.memory_bytes)} of ${bytes(s.node_memory_bytes)}`)),
      el("div", { class: "mem" }, el("div", { class: "fill", style: `width:${memPct}%` }))));
    if (i + 1 < stages.length) {
      parts.push(el("div", { class: "hop" },
        `↓ ${num(s.hop_ms, 2)} ms · ${bytes(s.hop_bytes_per_token)}/token`));
    }
  });
  box.replaceChildren(...parts);
}

function renderNodes(c) {
  const stageOf = new Map((c.stages || []).map((s) => [s.node_id, s]));
  const rows = (c.nodes || []).map((x) => {
    const s = stageOf.get(x.node_id);
    return el("tr", { "data-node": x.node_id },
      el("td", {}, x.node_id), el("td", {}, x.address),
      el("td", { class: "state-" + x.state }, stateText(x)),
      el("td", {}, s ? layerRange(s.layer_first, s.layer_last)
        : x.state === "standby" ? "none in the plan" : "–"),
      el("td", {}, s ? `${bytes(s.memory_bytes)} / ${bytes(s.node_memory_bytes)}` : bytes(x.memory_bytes)),
      el("td", {}, num(s && s.compute_ms, 2)), el("td", {}, num(s && s.queue_ms, 2)),
      el("td", {}, num(s && s.hop_ms, 2)), el("td", {}, s ? bytes(s.hop_bytes_per_token) : "–"));
  });
  document.querySelector("#nodes tbody").replaceChildren(...rows);
}

function renderEvents(c) {
  const items = (c.events || []).slice().reverse().map((e) =>
    el("li", { class: "event-" + e.kind },
      el("span", { class: "muted" }, new Date(e.time_ms).toLocaleTimeString() + " "),
      `${e.kind}: ${e.message}`));
  document.getElementById("events").replaceChildren(...items);
}

async function poll() {
  const badge = document.getElementById("health");
  try {
    const r = await fetch("/v1/cluster", { headers: headers(), cache: "no-store" });
    if (r.status === 401) { askKey(); throw new Error("unauthorized"); }
    const c = await r.json();
    document.getElementById("model").textContent = c.model || "";
    badge.textContent = c.ready ? "ready" : (c.reason || "not ready");
    badge.className = "badge " + (c.ready ? "ok" : "bad");
    renderSummary(c);
    renderPipeline(c);
    renderNodes(c);
    renderEvents(c);
  } catch (err) {
    badge.textContent = "coordinator unreachable";
    badge.className = "badge bad";
  }
  setTimeout(poll, POLL_MS);
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
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "", text = "";
  for (;;) {
    let done, value;
    try {
      ({ done, value } = await reader.read());
    } catch (err) {
      if (signal.aborted) return text;  // stopped: keep what came
      throw err;
    }
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return text;
        const chunk = JSON.parse(data);
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) { text += delta.content; out.textContent = text; }
      }
    }
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

poll();
