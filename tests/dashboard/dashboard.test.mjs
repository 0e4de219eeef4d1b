// The web dashboard in headless Chromium (Debian's chromium, driven by playwright-core)
// against a real cluster started with `tandem run --http` on stories260K: it shows every
// node with its layer range, streams a chat answer, shows a node that joins, and shows a
// killed node's death within 2 s. The coordinator's /metrics passes `promtool check metrics`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
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
  await Promise.all([stopProcess(extra), stopProcess(cluster)]);
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

test('a node that joins shows as joining, with its loading progress', async () => {
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
  // While a node checks and prepares its layers the coordinator sends its progress (see
  // coordinator/telemetry_test.cc); here the page is handed that state for this node.
  await page.route('**/v1/cluster', async (route) => {
    const real = await route.fetch();
    const c = await real.json();
    for (const n of c.nodes) {
      if (n.node_id === id) {
        Object.assign(n, { state: 'joining', layers_loaded: 2, layers_to_load: 5 });
      }
    }
    await route.fulfill({ response: real, json: c });
  });
  await page.waitForFunction((node) => {
    const row = document.querySelector(`#nodes tr[data-node="${node}"]`);
    return row && row.children[2].textContent === 'joining 2/5';
  }, id, { timeout: 5000 });
  await page.unroute('**/v1/cluster');
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
