// Interop cases: the real npm client libraries `openai` and
// `zhipuai-sdk-nodejs-v4` against a running `glm serve`.
//
//   BASE_URL=http://127.0.0.1:8080/api/paas/v4 API_KEY=id.secret node run.mjs [case…]
//
// The Go driver (interop_test.go) starts glm serve in front of a scripted fake
// upstream (zhipuaitest) whose answers follow the contract below, then reads
// one JSON line per case from stdout: {"case", "ok", "detail"}.
//
// Contract with the fake upstream (mirrored in interop_test.go):
//   - every user prompt carries a marker "[interop:<case>]";
//   - a plain chat answers expectedText(case) with usage 11 prompt + 7
//     completion tokens; streams arrive in pieces of a few runes;
//   - a "…tools…" case first answers the tool call get_weather
//     {"location":"北京","unit":"c"}; once the request ends with a tool message
//     it answers toolResultText(tool_call_id, content);
//   - an "…async…" case answers after a delay, so the task is PROCESSING first;
//   - embeddings are the fake's deterministic vectors (embedding-2: 1024 dims).
import OpenAI from 'openai';
import { ZhipuAI } from 'zhipuai-sdk-nodejs-v4';

const BASE_URL = process.env.BASE_URL;
const API_KEY = process.env.API_KEY;
const MODEL = process.env.MODEL || 'glm-4';
const EMBED_MODEL = process.env.EMBED_MODEL || 'embedding-2';
const EMBED_DIMS = Number(process.env.EMBED_DIMS || 1024);
const CASE_TIMEOUT_MS = Number(process.env.CASE_TIMEOUT_MS || 60000);
// A well-formed key that glm serve does not know (no dots inside id or secret).
const BAD_KEY = 'ffffffffffffffffffffffffffffffff.NoSuchSecret0000';
// A valid key of an account with no credit left (no package, no cash).
const BROKE_KEY = process.env.BROKE_KEY;

export const EMBED_TEXT = 'interop embeddings 北京今天的天气';
export const USAGE = { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 };
export const WEATHER_ARGS = { location: '北京', unit: 'c' };
export const TOOL_OUTPUT = JSON.stringify({ temperature: 25, unit: 'c', weather: '晴' });

export function expectedText(c) {
  return `你好，interop ${c}：北京今天晴，25°C ☀️。`;
}
export function toolResultText(id, content) {
  return `工具结果 ${id}: ${content}`;
}
const prompt = (c, text = '北京今天天气怎么样？') => `[interop:${c}] ${text}`;

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: '获取指定城市的天气',
    parameters: {
      type: 'object',
      properties: {
        location: { type: 'string', description: '城市，例如 北京' },
        unit: { type: 'string', enum: ['c', 'f'] },
      },
      required: ['location'],
    },
  },
};

// ---- helpers -----------------------------------------------------------------

class CaseError extends Error {
  constructor(message, detail) {
    super(message);
    this.detail = detail;
  }
}
function check(cond, message, detail) {
  if (!cond) throw new CaseError(message, detail);
}
function checkEq(got, want, what) {
  check(got === want, `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}
function checkUsage(u, what) {
  check(u && typeof u === 'object', `${what}: usage missing`);
  checkEq(u.prompt_tokens, USAGE.prompt_tokens, `${what}: usage.prompt_tokens`);
  checkEq(u.completion_tokens, USAGE.completion_tokens, `${what}: usage.completion_tokens`);
  checkEq(u.total_tokens, USAGE.total_tokens, `${what}: usage.total_tokens`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function decodeBase64Floats(s) {
  const buf = Buffer.from(s, 'base64');
  check(buf.length % 4 === 0, `base64 embedding has ${buf.length} bytes, not a multiple of 4`);
  const out = new Array(buf.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = buf.readFloatLE(i * 4);
  return out;
}

function checkVector(v, what) {
  check(Array.isArray(v), `${what}: embedding is not an array (${typeof v})`);
  checkEq(v.length, EMBED_DIMS, `${what}: dimensions`);
  check(v.every((x) => typeof x === 'number' && Number.isFinite(x)), `${what}: non-numeric values`);
  const norm = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  check(norm > 0.5, `${what}: vector norm ${norm} (all zeros or garbage?)`);
}
// A fingerprint of a vector for the Go driver, which compares it with the
// upstream's own: the first nonzero entries and how many there are.
function fingerprint(v) {
  const sample = [];
  let nonzero = 0;
  v.forEach((x, i) => {
    if (x !== 0) {
      nonzero++;
      if (sample.length < 6) sample.push([i, x]);
    }
  });
  return { dims: v.length, nonzero, sample, text: EMBED_TEXT };
}
function checkSameVector(a, b, what) {
  checkEq(a.length, b.length, `${what}: lengths`);
  for (let i = 0; i < a.length; i++) {
    // float32 transport: equal after rounding to float32.
    if (Math.fround(a[i]) !== Math.fround(b[i])) {
      throw new CaseError(`${what}: value ${i} differs: ${a[i]} vs ${b[i]}`);
    }
  }
}

// Reads an SSE body (a Node stream of Buffers) the way a careful client does:
// UTF-8 decoded across chunk boundaries, events split on blank lines, only
// `data:` lines. Returns the parsed chunks; checks [DONE] and that the server
// ends the body after it.
async function readSSE(body) {
  const dec = new TextDecoder('utf-8');
  let buf = '';
  const chunks = [];
  let done = false;
  let afterDone = '';
  const handle = (event) => {
    const lines = event.split(/\r?\n/);
    for (const line of lines) {
      if (line === '') continue;
      check(line.startsWith('data:'), `unexpected SSE line ${JSON.stringify(line)} (only data: lines allowed)`);
      const data = line.slice(5).trimStart();
      if (data === '[DONE]') {
        done = true;
        continue;
      }
      check(!done, 'data after [DONE]');
      let obj;
      try {
        obj = JSON.parse(data);
      } catch (e) {
        throw new CaseError(`SSE data is not JSON: ${data.slice(0, 200)}`);
      }
      check(!obj.error, `in-band error: ${JSON.stringify(obj.error)}`);
      chunks.push(obj);
    }
  };
  for await (const piece of body) {
    const text = dec.decode(piece, { stream: true });
    if (done) {
      afterDone += text;
      continue;
    }
    buf += text;
    let i;
    while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
      const m = buf.slice(i).match(/^\r?\n\r?\n/);
      handle(buf.slice(0, i));
      buf = buf.slice(i + m[0].length);
    }
  }
  buf += dec.decode();
  if (buf.trim() !== '') handle(buf);
  check(done, 'stream ended without data: [DONE]');
  check(afterDone.trim() === '', `bytes after [DONE]: ${afterDone.slice(0, 100)}`);
  return chunks;
}

// Folds V4/OpenAI stream chunks into {content, pieces, toolCalls, finish, usage}.
function foldChunks(chunks, what) {
  let content = '';
  let pieces = 0;
  let finish = null;
  let finishCount = 0;
  let usage = null;
  const calls = [];
  for (const c of chunks) {
    check(Array.isArray(c.choices) && c.choices.length > 0, `${what}: chunk without choices: ${JSON.stringify(c)}`);
    const ch = c.choices[0];
    check(ch.delta && typeof ch.delta === 'object', `${what}: chunk without delta`);
    if (typeof ch.delta.content === 'string' && ch.delta.content !== '') {
      content += ch.delta.content;
      pieces++;
    }
    for (const tc of ch.delta.tool_calls || []) {
      const idx = tc.index ?? calls.length;
      calls[idx] ??= { id: '', name: '', arguments: '' };
      if (tc.id) calls[idx].id = tc.id;
      if (tc.function?.name) calls[idx].name += tc.function.name;
      if (tc.function?.arguments) calls[idx].arguments += tc.function.arguments;
    }
    if (ch.finish_reason) {
      finish = ch.finish_reason;
      finishCount++;
      usage = c.usage;
    }
  }
  checkEq(finishCount, 1, `${what}: chunks carrying finish_reason`);
  return { content, pieces, toolCalls: calls.filter(Boolean), finish, usage };
}

function checkWeatherCall(calls, what) {
  check(Array.isArray(calls) && calls.length === 1, `${what}: want 1 tool call, got ${JSON.stringify(calls)}`);
  const c = calls[0];
  const name = c.function?.name ?? c.name;
  const args = c.function?.arguments ?? c.arguments;
  checkEq(name, 'get_weather', `${what}: tool name`);
  check(typeof args === 'string', `${what}: arguments must be a JSON string, got ${typeof args}`);
  let parsed;
  try {
    parsed = JSON.parse(args);
  } catch {
    throw new CaseError(`${what}: arguments are not JSON: ${args}`);
  }
  checkEq(JSON.stringify(parsed), JSON.stringify(WEATHER_ARGS), `${what}: arguments`);
  check(typeof c.id === 'string' && c.id !== '', `${what}: tool call id missing`);
  return c.id;
}

// ---- clients -----------------------------------------------------------------

const openai = (apiKey = API_KEY) => new OpenAI({ apiKey, baseURL: BASE_URL, timeout: 30000 });
const zhipu = (apiKey = API_KEY) => new ZhipuAI({ apiKey, baseUrl: BASE_URL, timeout: 30000 });

// ---- openai cases ------------------------------------------------------------

async function openaiChat(c) {
  const r = await openai().chat.completions.create({
    model: MODEL,
    messages: [{ role: 'system', content: '你是一个乐于解答各种问题的助手。' }, { role: 'user', content: prompt(c) }],
  });
  checkEq(r.choices?.[0]?.message?.content, expectedText(c), 'content');
  checkEq(r.choices[0].message.role, 'assistant', 'role');
  checkEq(r.choices[0].finish_reason, 'stop', 'finish_reason');
  checkUsage(r.usage, 'usage');
  return { id: r.id, model: r.model };
}

async function openaiStream(c) {
  const stream = await openai().chat.completions.create({
    model: MODEL,
    messages: [{ role: 'user', content: prompt(c) }],
    stream: true,
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const f = foldChunks(chunks, 'stream');
  checkEq(f.content, expectedText(c), 'streamed content');
  check(f.pieces > 1, `want several content pieces, got ${f.pieces}`);
  checkEq(f.finish, 'stop', 'finish_reason');
  checkUsage(f.usage, 'final chunk usage');
  return { chunks: chunks.length, pieces: f.pieces };
}

// The SDK's stream helper is stricter: it needs `index` on every choice and
// `role` in deltas (docs/v4.md §10).
async function openaiStreamHelper(c) {
  const runner = openai().chat.completions.stream({
    model: MODEL,
    messages: [{ role: 'user', content: prompt(c) }],
  });
  const deltas = [];
  runner.on('content', (d) => deltas.push(d));
  const final = await runner.finalChatCompletion();
  checkEq(final.choices[0].message.content, expectedText(c), 'final content');
  checkEq(deltas.join(''), expectedText(c), 'content events');
  return { pieces: deltas.length };
}

async function openaiTools(c) {
  const client = openai();
  const messages = [{ role: 'user', content: prompt(c) }];
  const r1 = await client.chat.completions.create({ model: MODEL, messages, tools: [weatherTool], tool_choice: 'auto' });
  checkEq(r1.choices[0].finish_reason, 'tool_calls', 'finish_reason');
  const msg = r1.choices[0].message;
  const id = checkWeatherCall(msg.tool_calls, 'tool call');
  // Send the assistant message back exactly as received (docs/v4.md §10), then the result.
  messages.push(msg);
  messages.push({ role: 'tool', tool_call_id: id, content: TOOL_OUTPUT });
  const r2 = await client.chat.completions.create({ model: MODEL, messages, tools: [weatherTool] });
  checkEq(r2.choices[0].message.content, toolResultText(id, TOOL_OUTPUT), 'answer after tool result');
  checkEq(r2.choices[0].finish_reason, 'stop', 'final finish_reason');
  return { tool_call_id: id };
}

async function openaiToolsStream(c) {
  const client = openai();
  const messages = [{ role: 'user', content: prompt(c) }];
  const stream = await client.chat.completions.create({ model: MODEL, messages, tools: [weatherTool], stream: true });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const f = foldChunks(chunks, 'stream');
  checkEq(f.finish, 'tool_calls', 'finish_reason');
  const id = checkWeatherCall(f.toolCalls, 'streamed tool call');
  messages.push({
    role: 'assistant',
    content: null,
    tool_calls: [{ id, type: 'function', function: { name: 'get_weather', arguments: f.toolCalls[0].arguments } }],
  });
  messages.push({ role: 'tool', tool_call_id: id, content: TOOL_OUTPUT });
  const s2 = await client.chat.completions.create({ model: MODEL, messages, stream: true });
  const chunks2 = [];
  for await (const chunk of s2) chunks2.push(chunk);
  const f2 = foldChunks(chunks2, 'second stream');
  checkEq(f2.content, toolResultText(id, TOOL_OUTPUT), 'streamed answer after tool result');
  return { tool_call_id: id };
}

async function openaiEmbeddings() {
  const client = openai();
  const fl = await client.embeddings.create({ model: EMBED_MODEL, input: EMBED_TEXT, encoding_format: 'float' });
  const vf = fl.data[0].embedding;
  checkVector(vf, 'float');
  // No encoding_format: the SDK asks for base64 and decodes it itself.
  const def = await client.embeddings.create({ model: EMBED_MODEL, input: EMBED_TEXT });
  checkVector(def.data[0].embedding, 'default (base64, decoded by the SDK)');
  checkSameVector(def.data[0].embedding, vf, 'default vs float');
  // Explicit base64: the SDK returns the string as is.
  const b64 = await client.embeddings.create({ model: EMBED_MODEL, input: EMBED_TEXT, encoding_format: 'base64' });
  check(typeof b64.data[0].embedding === 'string', 'explicit base64: embedding is not a string');
  const vb = decodeBase64Floats(b64.data[0].embedding);
  checkSameVector(vb, vf, 'base64 vs float');
  // A list input keeps the order.
  const list = await client.embeddings.create({ model: EMBED_MODEL, input: [EMBED_TEXT, '另一段文本'], encoding_format: 'float' });
  checkEq(list.data.length, 2, 'list input: data length');
  checkSameVector(list.data[0].embedding, vf, 'list input item 0');
  check(fl.usage && fl.usage.prompt_tokens > 0, 'usage.prompt_tokens missing');
  return fingerprint(vf);
}

async function pollOpenAI(client, id) {
  const seen = [];
  const deadline = Date.now() + 30000;
  for (;;) {
    const r = await client.get(`/async-result/${id}`);
    seen.push(r.task_status);
    if (r.task_status !== 'PROCESSING') return { r, seen };
    check(Date.now() < deadline, `task still PROCESSING after 30s (${seen.length} polls)`);
    await sleep(150);
  }
}

async function openaiAsync(c) {
  const client = openai();
  const sub = await client.post('/async/chat/completions', {
    body: { model: MODEL, messages: [{ role: 'user', content: prompt(c) }] },
  });
  checkEq(sub.task_status, 'PROCESSING', 'submit task_status');
  check(typeof sub.id === 'string' && /^[A-Za-z0-9_-]+$/.test(sub.id), `task id must be URL-safe: ${sub.id}`);
  const { r, seen } = await pollOpenAI(client, sub.id);
  checkEq(r.task_status, 'SUCCESS', 'final task_status');
  checkEq(r.choices?.[0]?.message?.content, expectedText(c), 'result content');
  checkUsage(r.usage, 'result usage');
  return { id: sub.id, polls: seen };
}

async function openaiBadKey() {
  try {
    await openai(BAD_KEY).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] }, { maxRetries: 0 });
  } catch (e) {
    check(e instanceof OpenAI.APIError, `want APIError, got ${e?.constructor?.name}: ${e?.message}`);
    checkEq(e.status, 401, 'status');
    checkEq(e.code, '1002', 'error.code');
    check(e instanceof OpenAI.AuthenticationError, 'want AuthenticationError');
    return { status: e.status, code: e.code, message: e.error?.message };
  }
  throw new CaseError('request with an unknown key succeeded');
}

// An account with nothing left to pay with: 1113 with HTTP 429 (docs/v4.md §6).
async function openaiArrears() {
  check(BROKE_KEY, 'BROKE_KEY not set');
  const t0 = Date.now();
  try {
    await openai(BROKE_KEY).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] });
  } catch (e) {
    check(e instanceof OpenAI.APIError, `want APIError, got ${e?.constructor?.name}: ${e?.message}`);
    checkEq(e.status, 429, 'status');
    checkEq(e.code, '1113', 'error.code');
    return { status: e.status, code: e.code, message: e.error?.message, ms: Date.now() - t0 };
  }
  throw new CaseError('a request of an account without credit succeeded');
}

// ---- zhipuai-sdk-nodejs-v4 cases -----------------------------------------------
// The package signs a JWT with exp/timestamp in microseconds (ms×1000) and sends
// it as a bare Authorization header; createCompletions returns a raw
// IncomingMessage when streaming (it parses no SSE itself); errors reject with
// the parsed response body.

async function zhipuChat(c) {
  const r = await zhipu().createCompletions({
    model: MODEL,
    messages: [{ role: 'system', content: '你是一个乐于解答各种问题的助手。' }, { role: 'user', content: prompt(c) }],
    stream: false,
  });
  checkEq(r.choices?.[0]?.message?.content, expectedText(c), 'content');
  checkEq(r.choices[0].finish_reason, 'stop', 'finish_reason');
  checkUsage(r.usage, 'usage');
  return { id: r.id, request_id: r.request_id };
}

async function zhipuStream(c) {
  const body = await zhipu().createCompletions({
    model: MODEL,
    messages: [{ role: 'user', content: prompt(c) }],
    stream: true,
  });
  const chunks = await readSSE(body);
  const f = foldChunks(chunks, 'stream');
  checkEq(f.content, expectedText(c), 'streamed content');
  check(f.pieces > 1, `want several content pieces, got ${f.pieces}`);
  checkEq(f.finish, 'stop', 'finish_reason');
  checkUsage(f.usage, 'final chunk usage');
  return { chunks: chunks.length, pieces: f.pieces };
}

async function zhipuTools(c) {
  const ai = zhipu();
  const messages = [{ role: 'user', content: prompt(c) }];
  const r1 = await ai.createCompletions({ model: MODEL, messages, tools: [weatherTool], toolChoice: 'auto', stream: false });
  checkEq(r1.choices[0].finish_reason, 'tool_calls', 'finish_reason');
  const msg = r1.choices[0].message;
  const id = checkWeatherCall(msg.tool_calls, 'tool call');
  messages.push(msg);
  messages.push({ role: 'tool', tool_call_id: id, content: TOOL_OUTPUT });
  const r2 = await ai.createCompletions({ model: MODEL, messages, tools: [weatherTool], stream: false });
  checkEq(r2.choices[0].message.content, toolResultText(id, TOOL_OUTPUT), 'answer after tool result');
  return { tool_call_id: id };
}

async function zhipuEmbeddings() {
  const ai = zhipu();
  const fl = await ai.createEmbeddings({ model: EMBED_MODEL, input: EMBED_TEXT, encodingFormat: 'float' });
  const vf = fl.data[0].embedding;
  checkVector(vf, 'float');
  const b64 = await ai.createEmbeddings({ model: EMBED_MODEL, input: EMBED_TEXT, encodingFormat: 'base64' });
  check(typeof b64.data[0].embedding === 'string', 'base64: embedding is not a string');
  const vb = decodeBase64Floats(b64.data[0].embedding);
  checkVector(vb, 'base64');
  checkSameVector(vb, vf, 'base64 vs float');
  // Without encoding_format the platform answers floats (the tutorial's call).
  const def = await ai.createEmbeddings({ model: EMBED_MODEL, input: EMBED_TEXT });
  checkSameVector(def.data[0].embedding, vf, 'default vs float');
  return fingerprint(vf);
}

// The package caches its JWT for 150 s, and its exp is only 180000 past a
// timestamp in microseconds (docs/v4.md §10): a server that reads those 180000 as
// microseconds expires the cached token after 0.18 s. Call, wait, call again.
async function zhipuCachedToken(c) {
  const ai = zhipu();
  const ask = () => ai.createCompletions({ model: MODEL, messages: [{ role: 'user', content: prompt(c) }], stream: false });
  const r1 = await ask();
  checkEq(r1.choices?.[0]?.message?.content, expectedText(c), 'first call');
  await sleep(1500);
  const r2 = await ask();
  checkEq(r2.choices?.[0]?.message?.content, expectedText(c), 'second call, same cached token 1.5 s later');
  return { waited_ms: 1500 };
}

// 0.1.12 has no async API; its own authenticated HTTP client (`ai.request`,
// axios with the package's JWT) calls the async routes.
async function zhipuAsync(c) {
  const ai = zhipu();
  const sub = await ai.request.post('/async/chat/completions', {
    model: MODEL,
    messages: [{ role: 'user', content: prompt(c) }],
  });
  checkEq(sub.task_status, 'PROCESSING', 'submit task_status');
  const seen = [];
  const deadline = Date.now() + 30000;
  let r;
  for (;;) {
    r = await ai.request.get(`/async-result/${sub.id}`);
    seen.push(r.task_status);
    if (r.task_status !== 'PROCESSING') break;
    check(Date.now() < deadline, 'task still PROCESSING after 30s');
    await sleep(150);
  }
  checkEq(r.task_status, 'SUCCESS', 'final task_status');
  checkEq(r.choices?.[0]?.message?.content, expectedText(c), 'result content');
  checkUsage(r.usage, 'result usage');
  return { id: sub.id, polls: seen };
}

// zhipuRejected sends a chat with key and checks the package's rejection:
// the parsed body must be the V4 envelope with wantCode, and the status (read
// through the package's own HTTP client) wantStatus.
async function zhipuRejected(key, wantCode, wantStatus, what) {
  const ai = zhipu(key);
  const body = { model: MODEL, messages: [{ role: 'user', content: 'hi' }] };
  let rejected;
  try {
    await ai.createCompletions({ ...body, stream: false });
  } catch (e) {
    rejected = e;
  }
  check(rejected !== undefined, `${what} succeeded`);
  checkEq(rejected?.error?.code, wantCode, 'rejected body error.code');
  let status;
  try {
    await ai.request.request.post('/chat/completions', body);
  } catch (e) {
    status = e?.response?.status;
  }
  checkEq(status, wantStatus, 'status');
  return { status, code: rejected.error.code, message: rejected.error.message };
}

async function zhipuBadKey() {
  return zhipuRejected(BAD_KEY, '1002', 401, 'request with an unknown key');
}

async function zhipuArrears() {
  check(BROKE_KEY, 'BROKE_KEY not set');
  return zhipuRejected(BROKE_KEY, '1113', 429, 'a request of an account without credit');
}

// ---- runner ------------------------------------------------------------------

export const CASES = {
  'openai/chat': openaiChat,
  'openai/stream': openaiStream,
  'openai/stream-helper': openaiStreamHelper,
  'openai/tools': openaiTools,
  'openai/tools-stream': openaiToolsStream,
  'openai/embeddings': openaiEmbeddings,
  'openai/async': openaiAsync,
  'openai/bad-key': openaiBadKey,
  'openai/arrears': openaiArrears,
  'zhipuai/chat': zhipuChat,
  'zhipuai/stream': zhipuStream,
  'zhipuai/tools': zhipuTools,
  'zhipuai/embeddings': zhipuEmbeddings,
  'zhipuai/async': zhipuAsync,
  'zhipuai/cached-token': zhipuCachedToken,
  'zhipuai/bad-key': zhipuBadKey,
  'zhipuai/arrears': zhipuArrears,
};

function describe(e) {
  if (e instanceof CaseError) return { error: e.message, ...(e.detail ? { detail: e.detail } : {}) };
  // axios / openai errors: keep what helps (status, body), not the request config.
  const out = {
    error: typeof e?.message === 'string' ? e.message : e?.error ? 'rejected with an error body' : String(e),
  };
  if (e?.status) out.status = e.status;
  if (e?.error) out.body = e.error;
  if (e?.response) out.status = e.response.status;
  if (e?.response?.data && typeof e.response.data === 'object' && !e.response.data.pipe) out.body = e.response.data;
  if (e && typeof e === 'object' && e.error && !e.message) out.body = e; // zhipuai-sdk rejects with the body
  return out;
}

async function main() {
  if (!BASE_URL || !API_KEY) {
    console.error('run.mjs: set BASE_URL (…/api/paas/v4) and API_KEY (id.secret)');
    process.exit(2);
  }
  const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(CASES);
  let failed = 0;
  for (const name of names) {
    const fn = CASES[name];
    let line;
    if (!fn) {
      line = { case: name, ok: false, detail: { error: 'unknown case' } };
    } else {
      const t0 = Date.now();
      let timer;
      try {
        const detail = await Promise.race([
          fn(name),
          new Promise((_, rej) => {
            timer = setTimeout(() => rej(new CaseError(`timed out after ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
          }),
        ]);
        line = { case: name, ok: true, ms: Date.now() - t0, detail };
      } catch (e) {
        line = { case: name, ok: false, ms: Date.now() - t0, detail: describe(e) };
      } finally {
        clearTimeout(timer);
      }
    }
    if (!line.ok) failed++;
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  process.exitCode = failed ? 1 : 0;
}

await main();
