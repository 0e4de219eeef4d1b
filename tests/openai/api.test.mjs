// Tandem's OpenAI-compatible API, driven by the official `openai` client against real
// clusters started with `tandem run --http` on stories260K. Answers are checked against
// `tandem generate --coordinator` on the same cluster, never against stored text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { tandem, SERVING, startProcess, stopProcess } from '../support/tandem_process.mjs';

const execFileP = promisify(execFile);
const shared = process.env.TANDEM_SHARED_DIR;
if (!tandem || !fs.existsSync(tandem)) throw new Error(`TANDEM_BIN is not a binary: ${tandem}`);
const modelPath = path.join(shared ?? '', 'models', 'stories260K-f32.gguf');
if (!fs.existsSync(modelPath)) throw new Error(`the shared test model is missing: ${modelPath}`);
const MODEL = 'stories260K-f32';

function client(baseURL, apiKey = 'none') {
  return new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 120000 });
}

async function health(baseURL) {
  const r = await fetch(baseURL.replace(/\/v1$/, '/health'));
  return r.json();
}

// `tandem generate --coordinator` on the same cluster: the reference answer.
async function generate(coordinator, prompt, n, args) {
  const { stdout } = await execFileP(tandem, ['generate', '--coordinator', coordinator, '-p',
    prompt, '-n', String(n), '--stop-at-eos', '--json', ...args]);
  return JSON.parse(stdout.trim().split('\n').pop());
}

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}
const chatText = (chunks) => chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
const completionText = (chunks) => chunks.map((c) => c.choices[0]?.text ?? '').join('');

let main;        // 2 nodes, 8 sessions
let guarded;     // 1 node, an API key and one generation at a time
let lonely;      // a coordinator without nodes
let slow;        // 2 nodes of a random model slow enough that an answer is caught mid-way
let api;         // a client of `main`
let tmp;
const KEY = 'sk-tandem-test-key';

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tandem-openai-'));
  const keyFile = path.join(tmp, 'keys');
  fs.writeFileSync(keyFile, `\n  other-key\n${KEY}\n`);
  // A few ms a token and a long context: a disconnect lands while the answer still runs.
  const slowModel = path.join(tmp, 'slow.gguf');
  await execFileP(tandem, ['make-model', '--n-embd', '512', '--n-layer', '4', '--n-head', '8',
    '--n-head-kv', '8', '--n-ff', '1536', '--n-ctx', '4096', '--type', 'q8_0', '--vocab-from',
    modelPath, '-o', slowModel]);
  [main, guarded, lonely, slow] = await Promise.all([
    startProcess(['run', '-m', modelPath, '--nodes', '2', '-t', '1', '--sessions', '8',
      '--http', '127.0.0.1:0'], SERVING),
    startProcess(['run', '-m', modelPath, '--nodes', '1', '-t', '1', '--http', '127.0.0.1:0',
      '--api-key-file', keyFile, '--http-max-sessions', '1'], SERVING),
    startProcess(['coordinator', '-m', modelPath, '--listen', '127.0.0.1:0', '--min-nodes', '1',
      '--http', '127.0.0.1:0'], /OpenAI API on (http:\/\/127\.0\.0\.1:\d+\/v1)/),
    startProcess(['run', '-m', slowModel, '--nodes', '2', '-t', '1', '--http', '127.0.0.1:0'],
      SERVING),
  ]);
  api = client(main.match[1]);
});

after(async () => {
  await Promise.all([stopProcess(main), stopProcess(guarded), stopProcess(lonely),
    stopProcess(slow)]);
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

test('GET /v1/models lists the served model; /health is ok', async () => {
  const ids = [];
  for await (const m of api.models.list()) ids.push(m.id);
  assert.deepEqual(ids, [MODEL]);
  const h = await health(main.match[1]);
  assert.equal(h.ready, true);
  assert.equal(h.nodes.length, 2);
});

test('greedy completion equals tandem generate', async () => {
  const prompt = 'Once upon a time';
  const ref = await generate(main.match[2], prompt, 40, ['--temp', '0']);
  const r = await api.completions.create({ model: MODEL, prompt, max_tokens: 40, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices[0].text, ref.text);
  assert.equal(r.usage.prompt_tokens, ref.prompt_ids.length);
  assert.equal(r.usage.completion_tokens, ref.ids.length);
  assert.equal(r.usage.total_tokens, ref.prompt_ids.length + ref.ids.length);
  assert.equal(r.choices[0].finish_reason, ref.ids.length < 40 ? 'stop' : 'length');
});

test('seeded sampling equals tandem generate and repeats', async () => {
  const prompt = 'The little dog';
  const ref = await generate(main.match[2], prompt, 48, ['--temp', '0.9', '--top-p', '0.95',
    '--top-k', '0', '--min-p', '0', '--seed', '1234']);
  const ask = () => api.completions.create({ model: MODEL, prompt, max_tokens: 48,
    temperature: 0.9, top_p: 0.95, seed: 1234 });
  const [a, b] = [await ask(), await ask()];
  assert.equal(a.choices[0].text, ref.text);
  assert.equal(b.choices[0].text, ref.text);
});

test('streamed completion equals the whole answer; usage comes last', async () => {
  const req = { model: MODEL, prompt: 'Lily wanted', max_tokens: 30, temperature: 0.7, seed: 9 };
  const whole = await api.completions.create(req);
  const chunks = await collect(await api.completions.create({ ...req, stream: true,
    stream_options: { include_usage: true } }));
  assert.equal(completionText(chunks), whole.choices[0].text);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.deepEqual(last.usage, whole.usage);
  assert.equal(chunks.at(-2).choices[0].finish_reason, whole.choices[0].finish_reason);
  for (const c of chunks.slice(0, -2)) assert.equal(c.choices[0].finish_reason, null);
});

test('chat renders the default ChatML template and streams the same answer', async () => {
  const messages = [{ role: 'system', content: 'You tell stories.' },
    { role: 'user', content: 'Tell me about a cat' }];
  const r = await api.chat.completions.create({ model: MODEL, messages, max_tokens: 30,
    temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0].message.role, 'assistant');
  // The model has no template: the documented ChatML default, stopping at <|im_end|>.
  const rendered = '<|im_start|>system\nYou tell stories.<|im_end|>\n' +
    '<|im_start|>user\nTell me about a cat<|im_end|>\n<|im_start|>assistant\n';
  const same = await api.completions.create({ model: MODEL, prompt: rendered, max_tokens: 30,
    temperature: 0, stop: ['<|im_end|>'] });
  assert.equal(r.choices[0].message.content, same.choices[0].text);
  assert.equal(r.choices[0].finish_reason, same.choices[0].finish_reason);
  assert.deepEqual(r.usage, same.usage);
  const chunks = await collect(await api.chat.completions.create({ model: MODEL, messages,
    max_tokens: 30, temperature: 0, stream: true }));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
  assert.equal(chatText(chunks), r.choices[0].message.content);
  assert.equal(chunks.at(-1).choices[0].finish_reason, r.choices[0].finish_reason);
  for (const c of chunks) assert.equal(c.object, 'chat.completion.chunk');
});

test('stop strings end the answer and are never emitted', async () => {
  const req = { model: MODEL, prompt: 'One day, a girl', max_tokens: 60, temperature: 0 };
  const full = (await api.completions.create(req)).choices[0].text;
  // A stop string from the middle of the answer the model gives anyway.
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 3);
  assert.ok(stop.length === 3, `answer too short to cut: ${JSON.stringify(full)}`);
  const expected = full.slice(0, full.indexOf(stop));
  const r = await api.completions.create({ ...req, stop: ['never-in-a-story', stop] });
  assert.equal(r.choices[0].text, expected);
  assert.equal(r.choices[0].finish_reason, 'stop');
  const chunks = await collect(await api.completions.create({ ...req, stop, stream: true }));
  assert.equal(completionText(chunks), expected);
  assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
});

test('8 concurrent requests give the answers they give one at a time', async () => {
  const requests = Array.from({ length: 8 }, (_, i) => ({ model: MODEL,
    messages: [{ role: 'user', content: `Story number ${i} about a ${['bird', 'boat'][i % 2]}` }],
    max_tokens: 24 + i, temperature: 0.8, seed: 100 + i, stream: i % 2 === 1 }));
  const ask = async (req) => {
    const r = await api.chat.completions.create(req);
    return req.stream ? chatText(await collect(r)) : r.choices[0].message.content;
  };
  const one_at_a_time = [];
  for (const req of requests) one_at_a_time.push(await ask(req));
  const together = await Promise.all(requests.map(ask));
  assert.deepEqual(together, one_at_a_time);
});

test('logprobs come from the last stage, best first', async () => {
  const r = await api.chat.completions.create({ model: MODEL, max_tokens: 8, temperature: 0,
    messages: [{ role: 'user', content: 'Hi' }], logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.equal(t.top_logprobs[0].token, t.token);
    assert.ok(Math.abs(t.top_logprobs[0].logprob - t.logprob) < 1e-6);
    for (let i = 1; i < 3; ++i) assert.ok(t.top_logprobs[i].logprob <= t.top_logprobs[i - 1].logprob);
  }
  const c = await api.completions.create({ model: MODEL, prompt: 'A frog', max_tokens: 6,
    temperature: 0, logprobs: 2 });
  assert.equal(c.choices[0].logprobs.tokens.length, c.usage.completion_tokens);
  assert.equal(c.choices[0].logprobs.top_logprobs[0] && Object.keys(c.choices[0].logprobs.top_logprobs[0]).length, 2);
});

test('presence and frequency penalties change the answer, reproducibly', async () => {
  const req = { model: MODEL, prompt: 'The sun', max_tokens: 60, temperature: 0 };
  const plain = (await api.completions.create(req)).choices[0].text;
  const penalized = { ...req, frequency_penalty: 2, presence_penalty: 1 };
  const a = (await api.completions.create(penalized)).choices[0].text;
  const b = (await api.completions.create(penalized)).choices[0].text;
  assert.equal(a, b);
  assert.notEqual(a, plain);
});

test('a keep-alive connection keeps working after a streamed answer', async () => {
  const base = new URL(main.match[1]);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const request = (method, p, body) => new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, method, path: p, agent,
      headers: { 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { data += d; });
      res.on('end', () => resolve({ status: res.statusCode, data, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    if (body) req.write(JSON.stringify(body));
    req.end();
  });
  const streamed = await request('POST', '/v1/completions', { prompt: 'A boat', max_tokens: 10,
    stream: true });
  assert.equal(streamed.status, 200);
  assert.ok(streamed.data.trimEnd().endsWith('data: [DONE]'), streamed.data);
  const models = await request('GET', '/v1/models');
  assert.equal(models.status, 200);
  assert.equal(models.reused, true);
  assert.equal(JSON.parse(models.data).data[0].id, MODEL);
  agent.destroy();
});

// Waits until the cluster behind `baseURL` shows one more cancelled session than `before`,
// and holds no session anywhere (the coordinator, every node's KV cache, the admission).
async function waitFreed(baseURL, before) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const h = await health(baseURL);
    const freed = h.sessions === 0 && h.in_flight === 0 && h.nodes.every((n) => n.sessions === 0);
    if (h.cancelled_sessions === before.cancelled_sessions + 1 && freed) return;
    assert.ok(Date.now() < deadline, `not freed: ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Until the session of the one request in flight holds KV cache on every node.
async function waitRunning(baseURL) {
  const deadline = Date.now() + 15000;
  for (;;) {
    const h = await health(baseURL);
    if (h.in_flight === 1 && h.nodes.every((n) => n.sessions === 1)) return;
    assert.ok(Date.now() < deadline, `the request never ran: ${JSON.stringify(h)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a client that disconnects from a stream cancels its session and frees it on every node', async () => {
  const api = client(slow.match[1]);
  const before = await health(slow.match[1]);
  const stream = await api.completions.create({ model: 'slow', prompt: 'Once upon a time',
    temperature: 0, stream: true });  // to the end of the 4096-token context
  for await (const chunk of stream) {
    if (chunk.choices[0]?.text) break;  // leaving the loop aborts the request
  }
  await waitFreed(slow.match[1], before);
});

test('a client that leaves before a whole answer cancels its session too', async () => {
  // Nothing is written until a non-streamed answer is done: the server watches the socket.
  const api = client(slow.match[1]);
  const before = await health(slow.match[1]);
  const controller = new AbortController();
  const answer = api.completions.create({ model: 'slow', prompt: 'Once upon a time',
    temperature: 0 }, { signal: controller.signal });
  await waitRunning(slow.match[1]);
  controller.abort();
  await assert.rejects(answer, (e) => e instanceof OpenAI.APIUserAbortError);
  await waitFreed(slow.match[1], before);
  // The cluster serves the next request as before.
  const r = await api.completions.create({ model: 'slow', prompt: 'A cat', max_tokens: 3 });
  assert.equal(r.usage.completion_tokens, 3);
});

test('400: malformed JSON, wrong-typed fields and prompts past the context', async () => {
  const r = await fetch(`${main.match[1]}/chat/completions`, { method: 'POST',
    headers: { 'content-type': 'application/json' }, body: '{"messages": [' });
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(body.error.type, 'invalid_request_error');

  await assert.rejects(api.chat.completions.create({ model: MODEL, max_tokens: 'ten',
    messages: [{ role: 'user', content: 'Hi' }] }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError, String(e));
    assert.equal(e.status, 400);
    assert.equal(e.param, 'max_tokens');
    return true;
  });
  await assert.rejects(api.completions.create({ model: MODEL, prompt: 'Hi', temperature: 'hot' }),
    (e) => e.status === 400 && e.param === 'temperature');
  await assert.rejects(api.completions.create({ model: MODEL, prompt: 'Hi', n: 2 }),
    (e) => e.status === 400 && e.param === 'n');
  await assert.rejects(api.completions.create({ model: MODEL,
    prompt: 'Once upon a time there was a dog. '.repeat(200) }), (e) => {
    assert.equal(e.status, 400);
    assert.equal(e.code, 'context_length_exceeded');
    return true;
  });
});

test('401 without a valid API key', async () => {
  const url = guarded.match[1];
  for (const key of ['wrong-key', undefined]) {
    const r = await fetch(`${url}/models`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error.type, 'authentication_error');
  }
  await assert.rejects(client(url, 'wrong-key').models.list(),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  const ids = [];
  for await (const m of client(url, KEY).models.list()) ids.push(m.id);
  assert.deepEqual(ids, [MODEL]);
  assert.equal((await fetch(url.replace(/\/v1$/, '/health'))).status, 200);  // open
});

test('429 with Retry-After past the admission limit', async () => {
  const c = client(guarded.match[1], KEY);
  const req = { model: MODEL, prompt: 'Once upon a time', max_tokens: 120, temperature: 0 };
  const first = await c.completions.create({ ...req, stream: true });  // holds the one place
  await assert.rejects(c.completions.create(req), (e) => {
    assert.ok(e instanceof OpenAI.RateLimitError, String(e));
    assert.equal(e.status, 429);
    assert.ok(Number(e.headers.get('retry-after')) > 0);
    return true;
  });
  first.controller.abort();
  // The place comes back once the aborted stream is cancelled.
  const deadline = Date.now() + 15000;
  while ((await health(guarded.match[1])).in_flight !== 0) {
    assert.ok(Date.now() < deadline, 'the aborted stream kept its place');
    await new Promise((r) => setTimeout(r, 100));
  }
  const again = await c.completions.create({ ...req, max_tokens: 5 });
  assert.equal(again.usage.completion_tokens, 5);
});

test('503 with Retry-After while the cluster is not ready', async () => {
  const c = client(lonely.match[1]);
  await assert.rejects(c.chat.completions.create({ model: MODEL,
    messages: [{ role: 'user', content: 'Hi' }] }), (e) => {
    assert.ok(e instanceof OpenAI.InternalServerError, String(e));
    assert.equal(e.status, 503);
    assert.ok(Number(e.headers.get('retry-after')) > 0);
    return true;
  });
  const h = await fetch(lonely.match[1].replace(/\/v1$/, '/health'));
  assert.equal(h.status, 503);
  assert.match((await h.json()).reason, /waiting for nodes/);
});
