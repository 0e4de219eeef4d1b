// The web dashboard in headless Chromium (Debian's chromium, driven by playwright-core)
// against a real cluster started with `tandem run --http` on stories260K: it shows every
// node with its layer range, streams a chat answer, shows a node that joins, and shows a
// killed node's death within 2 s. The coordinator's /metrics passes `promtool check metrics`,
// and /v1/cluster answers 304 to the ETag of what the page shows. A second coordinator on a
// model big enough to take seconds to load (random weights, made once into the temp
// directory) shows a real node's loading progress as "joining N/M".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { tandem, SERVING, startProcess, stopProcess } from '../support/tandem_process.mjs';

const shared = process.env.TANDEM_SHARED_DIR;
const shots = process.env.TANDEM_SCREENSHOT_DIR;
const browserPath = process.env.TANDEM_CHROMIUM || '/usr/bin/chromium';
if (!tandem || !fs.existsSync(tandem)) throw new Error(`TANDEM_BIN is not a binary: ${tandem}`);
const modelPath = path.join(shared ?? '', 'models', 'stories260K-f32.gguf');
if (!fs.existsSync(modelPath)) throw new Error(`the shared test model is missing: ${modelPath}`);
if (!fs.existsSync(browserPath)) {
  throw new Error(`no Chromium at ${browserPath} (deploy/setup.sh installs Debian's chromium)`);
}

let cluster;  // tandem run --http, 3 nodes
let extra;    // a node that joins the running cluster
let loader;   // a coordinator and a node on the big model: { coordinator, node, page }
let browser;
let page;
let root;     // http://127.0.0.1:PORT

async function cluster_json() {
  const r = await fetch(`${root}/v1/cluster`);
  assert.equal(r.status, 200);
  return r.json();
}

// The text of node `id`'s state cell in the nodes table ('' when the row is missing).
function stateOf(id) {
  return page.evaluate((node) => {
    const row = document.querySelector(`#nodes tr[data-node="${node}"]`);
    return row ? row.children[2].textContent : '';
  }, id);
}

// The process listening on 127.0.0.1:`port` among `pids`, from /proc.
function pidListeningOn(port, pids) {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!fs.existsSync(table)) continue;
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1].endsWith(`:${hex}`) && f[3] === '0A') inodes.add(f[9]);
    }
  }
  for (const pid of pids) {
    let fds = [];
    try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { continue; }
    for (const fd of fds) {
      let link = '';
      try { link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; }
      const m = link.match(/^socket:\[(\d+)\]$/);
      if (m && inodes.has(m[1])) return pid;
    }
  }
  return 0;
}

function childrenOf(pid) {
  const out = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch { /* gone */ }
  }
  return out;
}

function promtool(text) {
  return new Promise((resolve, reject) => {
    const p = spawn('promtool', ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    p.on('error', (e) => reject(new Error(`promtool: ${e.message} (deploy/setup.sh installs prometheus)`)));
    p.on('exit', (code) => resolve({ code, out }));
    p.stdin.end(text);
  });
}

before(async () => {
  cluster = await startProcess(['run', '-m', modelPath, '--nodes', '3', '-t', '1', '--http',
    '127.0.0.1:0'], SERVING);
  root = cluster.match[1].replace(/\/v1$/, '');
  browser = await chromium.launch({ executablePath: browserPath, headless: true,
    args: ['--no-sandbox'] });
  // A phone-sized page first would hide nothing the test reads; a laptop one reads best.
  page = await browser.newPage({ viewport: { width: 1100, height: 1400 } });
  await page.goto(`${root}/`);
});

after(async () => {
  if (browser) await browser.close();
  await Promise.all([stopProcess(extra), stopProcess(cluster), stopProcess(loader?.node),
    stopProcess(loader?.coordinator)]);
});

test('every node is shown in pipeline order with its layer range', async () => {
  await page.waitForFunction(() => document.querySelectorAll('#pipeline .stage').length === 3);
  await page.waitForFunction(() => document.getElementById('health').textContent === 'ready');
  const c = await cluster_json();
  assert.equal(c.stages.length, 3);
  let next = 0;
  for (const [i, s] of c.stages.entries()) {
    assert.equal(s.layer_first, next, 'stages cover the layers in order');
    next = s.layer_last;
    const stage = page.locator('#pipeline .stage').nth(i);
    assert.equal(await stage.getAttribute('data-node'), s.node_id);
    const text = await stage.textContent();
    const range = s.layer_last - s.layer_first === 1 ? `layer ${s.layer_first}`
      : `layers ${s.layer_first}–${s.layer_last - 1}`;
    assert.ok(text.includes(range), text);
    assert.ok(text.includes(s.address), text);
    // The bar spans the stage's share of the model's layers.
    const fill = await stage.locator('.track .fill').getAttribute('style');
    const share = (100 * (s.layer_last - s.layer_first)) / c.n_layers;
    assert.match(fill, new RegExp(`width: ?${share}%`));
    assert.equal(await stateOf(s.node_id), 'serving');
    const row = await page.locator(`#nodes tr[data-node="${s.node_id}"]`).textContent();
    assert.ok(row.includes(range), row);
  }
  assert.equal(next, c.n_layers);
});

test('a chat message streams its answer', async () => {
  // Every change of the answer's text, as the page shows it.
  await page.evaluate(() => {
    window.answerLengths = [];
    new MutationObserver(() => {
      const out = document.querySelector('#chat-log .msg.assistant:last-child');
      if (out) window.answerLengths.push(out.textContent.length);
    }).observe(document.getElementById('chat-log'),
      { childList: true, subtree: true, characterData: true });
  });
  // A slow link (16 KiB/s, as a phone far away): stories260K answers within a few ms, so on
  // loopback the whole stream could land in one read and show all at once anyway.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  const throttle = (bytesPerSecond) => cdp.send('Network.emulateNetworkConditions',
    { offline: false, latency: 0, downloadThroughput: bytesPerSecond, uploadThroughput: -1 });
  await throttle(16 * 1024);
  const response = page.waitForResponse((r) => r.url().endsWith('/v1/chat/completions'));
  await page.fill('#chat-input', 'Tell me a story about a cat');
  await page.click('#chat-send');
  const r = await response;
  assert.equal(r.status(), 200);
  assert.match(r.headers()['content-type'], /^text\/event-stream/);
  // While it streams the button stops the answer; then it sends again.
  await page.waitForFunction(() => document.getElementById('chat-send').textContent === 'Send',
    null, { timeout: 20000 });
  await throttle(-1);
  const shown = await page.locator('#chat-log .msg.assistant').last().textContent();
  // The page shows exactly what the API streamed.
  let streamed = '';
  for (const line of (await r.text()).split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    streamed += JSON.parse(line.slice(6)).choices[0]?.delta?.content ?? '';
  }
  assert.ok(shown.length > 0, 'an answer is shown');
  assert.equal(shown, streamed);
  const lengths = new Set(await page.evaluate(() => window.answerLengths.filter((n) => n > 0)));
  console.log(`the page showed the answer growing in ${lengths.size} steps`);
  assert.ok(lengths.size > 1, `the answer appeared piece by piece, not at once: ${[...lengths]}`);
  assert.equal(await page.locator('#chat-log .msg.user').last().textContent(),
    'Tell me a story about a cat');
  // The figures the answer moved.
  await page.waitForFunction(() => /^[1-9]/.test(
    [...document.querySelectorAll('#summary .card')]
      .find((c) => c.textContent.includes('tokens generated')).querySelector('.v').textContent));
  // Every stage's measured compute time arrives with the nodes' next heartbeats.
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#nodes tbody tr')];
    return rows.length === 3 && rows.every((r) => /^\d/.test(r.children[5].textContent));
  }, null, { timeout: 5000 });
  if (shots) await page.screenshot({ path: path.join(shots, 'dashboard.png'), fullPage: true });
});

test('/metrics passes promtool check metrics', async () => {
  const r = await fetch(`${root}/metrics`);
  assert.equal(r.status, 200);
  const text = await r.text();
  for (const family of ['tandem_tokens_generated_total', 'tandem_time_to_first_token_seconds',
    'tandem_time_per_token_seconds', 'tandem_sessions', 'tandem_nodes']) {
    assert.ok(text.includes(`# TYPE ${family} `), family);
  }
  assert.doesNotMatch(text, /^tandem_tokens_generated_total 0$/m);
  const check = await promtool(text);
  assert.equal(check.code, 0, check.out);
});

test('a node that joins shows as joining, then serving', async () => {
  const known = new Set((await cluster_json()).nodes.map((n) => n.node_id));
  extra = await startProcess(['node', '--coordinator', cluster.match[2], '--model', modelPath,
    '--listen', '127.0.0.1:0', '-t', '1'], /tandem node: (node-\S+) serving at/);
  const id = extra.match[1];
  assert.ok(!known.has(id));
  // The even planner uses a joining node at once: it may be serving by the next poll.
  await page.waitForFunction((node) => {
    const row = document.querySelector(`#nodes tr[data-node="${node}"]`);
    return row && ['joining', 'serving'].includes(row.children[2].textContent);
  }, id, { timeout: 10000 });
  await page.waitForFunction((node) => {
    const row = document.querySelector(`#nodes tr[data-node="${node}"]`);
    return row && row.children[2].textContent === 'serving';
  }, id, { timeout: 20000 });
});

test('a fetch in progress shows beside the state, and its absence breaks nothing', async () => {
  // Nodes without the model file will report their fetch as `fetch: {bytes_done,
  // bytes_total}` in /v1/cluster; no node here fetches, so the page is handed the field
  // for one node (real JSON otherwise) and then nonsense for another.
  const c = await cluster_json();
  const [first, second] = c.nodes.filter((n) => n.state === 'serving').map((n) => n.node_id);
  for (const n of c.nodes) assert.equal(n.fetch, undefined, 'no node fetches in this cluster');
  // The page watches /v1/cluster/events: it is handed one event of the real cluster with
  // the field added (the stream then ends, and the page asks again).
  await page.route('**/v1/cluster/events', async (route) => {
    const j = await cluster_json();
    for (const n of j.nodes) {
      if (n.node_id === first) {
        Object.assign(n, { state: 'joining', fetch: { bytes_done: 3 << 20, bytes_total: 12 << 20 } });
      }
      if (n.node_id === second) n.fetch = { bytes_done: 'x', bytes_total: -1 };
    }
    await route.fulfill({ status: 200, contentType: 'text/event-stream',
      body: `data: ${JSON.stringify(j)}\n\n` });
  });
  await page.evaluate(() => watching && watching.abort());  // the open stream goes on unmocked
  try {
    await page.waitForFunction((node) => {
      const row = document.querySelector(`#nodes tr[data-node="${node}"]`);
      return row && row.children[2].textContent === 'joining · fetching 25% of 12.0 MiB';
    }, first, { timeout: 5000 });
    assert.equal(await stateOf(second), 'serving');
  } finally {
    await page.unroute('**/v1/cluster/events');
  }
  await page.waitForFunction((node) => {
    const row = document.querySelector(`#nodes tr[data-node="${node}"]`);
    return row && row.children[2].textContent === 'serving';
  }, first, { timeout: 5000 });
});

test('GET /v1/cluster answers 304 to the ETag of an unchanged cluster', async () => {
  // The figures move (rates decay after the chat): ask until two answers in a row agree.
  let notModified = null;
  for (let i = 0; i < 50 && !notModified; i++) {
    const r = await fetch(`${root}/v1/cluster`);
    const tag = r.headers.get('etag');
    assert.match(tag ?? '', /^"[^"]+"$/);
    await r.text();
    const again = await fetch(`${root}/v1/cluster`, { headers: { 'If-None-Match': tag } });
    const body = await again.text();
    if (again.status === 304) {
      assert.equal(body, '');
      assert.equal(again.headers.get('etag'), tag);
      notModified = again;
    } else {
      assert.equal(again.status, 200);
      assert.notEqual(again.headers.get('etag'), tag, 'a changed body has another tag');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  assert.ok(notModified, 'no two answers in a row were the same');
  const other = await fetch(`${root}/v1/cluster`, { headers: { 'If-None-Match': '"stale"' } });
  assert.equal(other.status, 200);
  assert.ok((await other.json()).nodes.length > 0);
});

test('GET /v1/cluster/events sends the cluster as it changes, to a few watchers at once', async () => {
  // The page holds one stream; scripts may open a few more, then get 503. A stream the page
  // closed a moment ago (the test before aborted one) holds its place until the server's
  // next tick: the count is taken again while it is short, a few times.
  let open = [];
  let refused = null;
  for (let attempt = 0; attempt < 8; attempt++) {
    for (const { controller } of open) controller.abort();
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, 300));
    open = [];
    refused = null;
    for (let i = 0; i < 8 && !refused; i++) {
      const controller = new AbortController();
      const r = await fetch(`${root}/v1/cluster/events`, { signal: controller.signal });
      if (r.status === 503) {
        refused = r;
      } else {
        assert.equal(r.status, 200);
        assert.match(r.headers.get('content-type'), /^text\/event-stream/);
        open.push({ r, controller });
      }
    }
    if (!refused || open.length + 1 >= 4) break;
  }
  try {
    assert.ok(refused, 'every stream was accepted');
    assert.equal(open.length + 1, 4, 'the page and three more');  // kMaxClusterStreams
    assert.match((await refused.json()).error.message, /poll GET \/v1\/cluster/);
    // The first event is the cluster as GET /v1/cluster shows it.
    const reader = open[0].r.body.getReader();
    let text = '';
    while (!text.includes('\n\n')) text += new TextDecoder().decode((await reader.read()).value);
    assert.match(text, /^data: \{/);
    const first = JSON.parse(text.slice(6, text.indexOf('\n\n')));
    assert.deepEqual(first.stages.map((s) => s.node_id),
      (await cluster_json()).stages.map((s) => s.node_id));
  } finally {
    for (const { controller } of open) controller.abort();
  }
  // A closed stream frees its place (noticed at the server's next tick, 250 ms).
  let again = null;
  for (let i = 0; i < 60 && again?.status !== 200; i++) {
    if (again) await new Promise((resolve) => setTimeout(resolve, 250));
    const controller = new AbortController();
    again = await fetch(`${root}/v1/cluster/events`, { signal: controller.signal });
    controller.abort();
  }
  assert.equal(again.status, 200);
});

test('a hidden page stops watching and catches up when shown', async () => {
  const requests = [];
  const seen = (r) => { if (/\/v1\/cluster/.test(r.url())) requests.push(Date.now()); };
  page.on('request', seen);
  const setVisibility = (state) => page.evaluate((v) => {
    Object.defineProperty(document, 'visibilityState', { value: v, configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  }, state);
  try {
    await setVisibility('hidden');
    await page.waitForFunction(() => watching === null, null, { timeout: 2000 });  // closed
    const hiddenAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.deepEqual(requests.filter((t) => t > hiddenAt + 100), [], 'no request while hidden');
    await setVisibility('visible');
    await page.waitForFunction(() => watching !== null, null, { timeout: 5000 });
    assert.ok(requests.length > 0, 'watching again once shown');
  } finally {
    page.off('request', seen);
  }
  await page.waitForFunction(() => document.getElementById('health').textContent === 'ready');
});

test('a killed node shows as dead within 2 s', async () => {
  const c = await cluster_json();
  const victim = c.stages[1];
  const port = Number(victim.address.split(':').pop());
  const pid = pidListeningOn(port, childrenOf(cluster.child.pid));
  assert.ok(pid > 0, `no process of the cluster listens on ${victim.address}`);
  const t0 = Date.now();
  process.kill(pid, 'SIGKILL');
  await page.waitForFunction((node) => {
    const row = document.querySelector(`#nodes tr[data-node="${node}"]`);
    return row && row.children[2].textContent === 'dead';
  }, victim.node_id, { timeout: 10000, polling: 20 });
  const seen = Date.now() - t0;
  console.log(`the dashboard showed ${victim.node_id} dead ${seen} ms after it was killed`);
  assert.ok(seen <= 2000, `the death showed after ${seen} ms`);
  const events = await page.locator('#events').textContent();
  assert.ok(events.includes(`died`), events);
  // The cluster re-plans on the nodes left (the joined one among them) and serves again.
  try {
    await page.waitForFunction((node) => {
      const stages = [...document.querySelectorAll('#pipeline .stage')];
      return document.getElementById('health').textContent === 'ready' && stages.length > 0 &&
        stages.every((s) => s.dataset.node !== node);
    }, victim.node_id, { timeout: 30000 });
  } catch (e) {
    throw new Error(`no new plan: ${JSON.stringify(await cluster_json())}\n${cluster.log()}`);
  }
  if (shots) {
    await page.screenshot({ path: path.join(shots, 'dashboard-after-death.png'), fullPage: true });
  }
});

// About 1.3 GB of random q8_0 weights in 24 layers: checking and preparing them takes a
// node seconds (2 to 8 on the 2-core test machine), several heartbeats. Made once and kept
// in the temp directory (the name says what it is), written under another name first.
async function loadingModel() {
  const file = path.join(os.tmpdir(), 'tandem-test-loading-llama-2048x24-q8_0.gguf');
  if (fs.existsSync(file)) return file;
  const partial = `${file}.${process.pid}.partial`;
  await new Promise((resolve, reject) => {
    const p = spawn(tandem, ['make-model', '--n-embd', '2048', '--n-layer', '24', '--n-head', '16',
      '--n-head-kv', '16', '--n-ff', '5632', '--n-ctx', '256', '--type', 'q8_0', '--vocab-from',
      modelPath, '-o', partial], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve()
      : reject(new Error(`tandem make-model exited ${code}: ${err.slice(-2000)}`))));
  });
  fs.renameSync(partial, file);
  return file;
}

test('a node loading its layers shows as joining N/M, then serving', async () => {
  const model = await loadingModel();
  loader = {};
  loader.coordinator = await startProcess(['coordinator', '--model', model, '--listen',
    '127.0.0.1:0', '--http', '127.0.0.1:0', '--min-nodes', '1', '--sessions', '1'],
  /dashboard on (http:\/\/127\.0\.0\.1:\d+)\/[\s\S]*serving \S+ on port (\d+)/);
  loader.page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await loader.page.goto(`${loader.coordinator.match[1]}/`);
  await loader.page.waitForFunction(() => document.getElementById('health').textContent !== 'connecting…');
  // Every text the node's state cell shows, in order, as the page draws it.
  await loader.page.evaluate(() => {
    window.stateTexts = [];
    window.badges = [];  // the cluster's badge beside each
    const record = () => {
      const cell = document.querySelector('#nodes tbody tr td:nth-child(3)');
      const text = cell ? cell.textContent : '';
      if (text && window.stateTexts.at(-1) !== text) {
        window.stateTexts.push(text);
        window.badges.push(document.getElementById('health').textContent);
      }
    };
    new MutationObserver(record).observe(document.querySelector('#nodes tbody'),
      { childList: true, subtree: true, characterData: true });
  });
  const t0 = Date.now();
  loader.node = await startProcess(['node', '--coordinator',
    `127.0.0.1:${loader.coordinator.match[2]}`, '--model', model, '--listen', '127.0.0.1:0',
    '-t', '1'], /tandem node: (node-\S+) serving at/);
  // A screenshot of the page while the node loads.
  await loader.page.waitForFunction(
    () => window.stateTexts.some((t) => /^joining \d+\/\d+$/.test(t)), null, { timeout: 120000 });
  if (shots) await loader.page.screenshot({ path: path.join(shots, 'dashboard-loading.png'), fullPage: true });
  try {
    await loader.page.waitForFunction(() => window.stateTexts.at(-1) === 'serving', null,
      { timeout: 120000 });
  } catch (e) {
    throw new Error(`${e.message}\n${await loader.page.evaluate(() => window.stateTexts)}\n${loader.node.log()}`);
  }
  const texts = await loader.page.evaluate(() => window.stateTexts);
  console.log(`the loading node's state as the page showed it over ${Date.now() - t0} ms: ` +
    texts.join(' → '));
  const progress = texts.map((t) => t.match(/^joining (\d+)\/(\d+)$/)).filter(Boolean)
    .map((m) => [Number(m[1]), Number(m[2])]);
  assert.ok(progress.some(([done, total]) => total === 24 && done < total),
    `no "joining N/24" with N < 24 among ${texts.join(', ')}`);
  // It only goes forward, and the page ends on serving.
  const done = progress.map(([d]) => d);
  assert.deepEqual(done, [...done].sort((a, b) => a - b));
  assert.equal(texts.at(-1), 'serving');
  // Meanwhile the cluster says what it waits for (not "waiting for nodes: 0 of 1").
  const badges = await loader.page.evaluate(() => window.badges);
  const during = badges.filter((b, i) => /^joining \d+\//.test(texts[i]));
  assert.ok(during.some((b) => /the nodes load their layers/.test(b)), during.join(', '));
  assert.ok(!during.some((b) => /waiting for nodes/.test(b)), during.join(', '));
  assert.match(await loader.page.locator('#pipeline .stage').first().textContent(), /layers 0–23/);
});
