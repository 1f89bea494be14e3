// Interop cases: the real npm `@anthropic-ai/sdk` against a running
// `glm serve`'s Anthropic Messages endpoint.
//
//   BASE_URL=http://127.0.0.1:8080/api/anthropic API_KEY=id.secret BROKE_KEY=id.secret node anthropic.mjs [case…]
//
// The Go driver (anthropic_test.go) prints one JSON line per case, as
// run.mjs does: {"case", "ok", "detail"}. The detail carries the request
// ids and the usage the SDK reported, which the driver finds again in glm
// serve's usage rows and bill.
//
// Cases are "<world>/<name>": world "cloud" reaches the scripted Zhipu
// cloud through the out-of-the-box claude-* mapping (MODEL), world "vllm" a
// scripted vLLM-like engine of an `openai` backend (VLLM_MODEL). The scripts
// answer as run.mjs's contract says: expectedText(case) with usage 11 + 7,
// a get_weather call for "…tools…" cases, toolResultText(id, content) once a
// tool result comes back.
import Anthropic from '@anthropic-ai/sdk';

const BASE_URL = process.env.BASE_URL;
const API_KEY = process.env.API_KEY;
const BROKE_KEY = process.env.BROKE_KEY;
const MODELS = {
  cloud: process.env.MODEL || 'claude-sonnet-4-5',
  vllm: process.env.VLLM_MODEL || 'claude-haiku-4-5',
};
const VISION_MODEL = process.env.VISION_MODEL || 'claude-opus-4-1';
const CASE_TIMEOUT_MS = Number(process.env.CASE_TIMEOUT_MS || 60000);
const BAD_KEY = 'ffffffffffffffffffffffffffffffff.NoSuchSecret0000';
const USAGE = { input_tokens: 11, output_tokens: 7 };
const WEATHER_ARGS = { location: '北京', unit: 'c' };
const TOOL_OUTPUT = JSON.stringify({ temperature: 25, unit: 'c', weather: '晴' });
// A 1×1 PNG.
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

const expectedText = (c) => `你好，interop ${c}：北京今天晴，25°C ☀️。`;
const toolResultText = (id, content) => `工具结果 ${id}: ${content}`;
const prompt = (c, text = '北京今天天气怎么样？') => `[interop:${c}] ${text}`;

const weatherTool = {
  name: 'get_weather',
  description: '获取指定城市的天气',
  input_schema: {
    type: 'object',
    properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['c', 'f'] } },
    required: ['location'],
  },
};

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
  check(JSON.stringify(got) === JSON.stringify(want), `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}
function checkUsage(u, what) {
  check(u && typeof u === 'object', `${what}: usage missing`);
  checkEq(u.input_tokens, USAGE.input_tokens, `${what}: usage.input_tokens`);
  checkEq(u.output_tokens, USAGE.output_tokens, `${what}: usage.output_tokens`);
}
const textOf = (msg) => msg.content.filter((b) => b.type === 'text').map((b) => b.text).join('');

// The current SDK's way: the key as Authorization: Bearer, with its own
// (2026) anthropic-version.
function client(key = API_KEY, opts = {}) {
  return new Anthropic({ baseURL: BASE_URL, apiKey: key, authToken: null, maxRetries: 0, ...opts });
}
// The older clients' way: x-api-key with anthropic-version 2023-06-01.
function legacyClient() {
  return new Anthropic({
    baseURL: BASE_URL,
    apiKey: null,
    authToken: null,
    maxRetries: 0,
    defaultHeaders: { 'x-api-key': API_KEY, 'anthropic-version': '2023-06-01' },
  });
}
const world = (c) => c.split('/')[0];
// One billed request: its server id and the usage the SDK reported.
const billed = (id, usage, model) => ({ id, model, input_tokens: usage.input_tokens, output_tokens: usage.output_tokens,
  cache_read_input_tokens: usage.cache_read_input_tokens ?? 0 });

async function message(c, cl = client()) {
  const msg = await cl.messages.create({ model: MODELS[world(c)], max_tokens: 4096, messages: [{ role: 'user', content: prompt(c) }] });
  checkEq(msg.type, 'message', 'type');
  checkEq(msg.role, 'assistant', 'role');
  checkEq(msg.model, MODELS[world(c)], 'model echoed');
  checkEq(textOf(msg), expectedText(c), 'text');
  checkEq(msg.stop_reason, 'end_turn', 'stop_reason');
  checkUsage(msg.usage, 'usage');
  check(msg._request_id, 'request id missing');
  return { billed: [billed(msg._request_id, msg.usage)], blocks: msg.content.map((b) => b.type) };
}

async function legacyMessage(c) {
  return message(c, legacyClient());
}

async function stream(c) {
  // Agents ask for more output than GLM models write; glm serve fits it.
  const st = client().messages.stream({ model: MODELS[world(c)], max_tokens: 64000, messages: [{ role: 'user', content: prompt(c) }] });
  let streamed = '';
  st.on('text', (t) => {
    streamed += t;
  });
  const msg = await st.finalMessage();
  checkEq(streamed, expectedText(c), 'text events');
  checkEq(textOf(msg), expectedText(c), 'final message text');
  checkEq(msg.stop_reason, 'end_turn', 'stop_reason');
  checkUsage(msg.usage, 'final message usage');
  check(st.request_id, 'request id missing');
  return { billed: [billed(st.request_id, msg.usage)], blocks: msg.content.map((b) => b.type) };
}

// A tool-use round trip: tool_use → tool_result → final text, streamed or not.
async function tools(c, streamed = false) {
  const cl = client();
  const model = MODELS[world(c)];
  const ask = async (messages) => {
    const params = { model, max_tokens: 1024, tools: [weatherTool], messages };
    if (!streamed) {
      const m = await cl.messages.create(params);
      return [m, m._request_id];
    }
    const st = cl.messages.stream(params);
    const m = await st.finalMessage();
    return [m, st.request_id];
  };
  const user = { role: 'user', content: prompt(c) };
  const [first, id1] = await ask([user]);
  checkEq(first.stop_reason, 'tool_use', 'first stop_reason');
  const use = first.content.find((b) => b.type === 'tool_use');
  check(use, 'no tool_use block', first.content);
  checkEq(use.name, 'get_weather', 'tool name');
  checkEq(use.input, WEATHER_ARGS, 'tool input');
  checkUsage(first.usage, 'first usage');
  const [second, id2] = await ask([
    user,
    { role: 'assistant', content: first.content },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: TOOL_OUTPUT }] },
  ]);
  checkEq(textOf(second), toolResultText(use.id, TOOL_OUTPUT), 'final text');
  checkEq(second.stop_reason, 'end_turn', 'final stop_reason');
  checkUsage(second.usage, 'final usage');
  return { billed: [billed(id1, first.usage), billed(id2, second.usage)], tool_use_id: use.id };
}

async function countTokens(c) {
  const r = await client().messages.countTokens({
    model: MODELS[world(c)],
    system: 'You are a weather assistant.',
    tools: [weatherTool],
    messages: [{ role: 'user', content: prompt(c) }],
  });
  check(Number.isInteger(r.input_tokens) && r.input_tokens > 0, `input_tokens ${r.input_tokens}`);
  return { input_tokens: r.input_tokens };
}

async function image(c) {
  const msg = await client().messages.create({
    model: VISION_MODEL,
    max_tokens: 512,
    messages: [{
      role: 'user',
      content: [
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG } },
        { type: 'text', text: prompt(c, '图里是什么？') },
      ],
    }],
  });
  checkEq(textOf(msg), expectedText(c), 'text');
  checkUsage(msg.usage, 'usage');
  return { billed: [billed(msg._request_id, msg.usage)] };
}

async function badKey() {
  try {
    await client(BAD_KEY).messages.create({ model: MODELS.cloud, max_tokens: 16, messages: [{ role: 'user', content: 'x' }] });
  } catch (e) {
    check(e instanceof Anthropic.AuthenticationError, `got ${e?.constructor?.name}: ${e?.message}`);
    checkEq(e.status, 401, 'status');
    checkEq(e.error?.error?.type, 'authentication_error', 'error.type');
    return { status: e.status, message: e.error?.error?.message };
  }
  throw new CaseError('a bad key was accepted');
}

async function arrears(c) {
  check(BROKE_KEY, 'BROKE_KEY not set');
  try {
    await client(BROKE_KEY).messages.create({ model: MODELS[world(c)], max_tokens: 16, messages: [{ role: 'user', content: prompt(c) }] });
  } catch (e) {
    check(e instanceof Anthropic.RateLimitError, `got ${e?.constructor?.name}: ${e?.message}`);
    checkEq(e.status, 429, 'status');
    checkEq(e.error?.error?.type, 'rate_limit_error', 'error.type');
    check(String(e.error?.error?.message).includes('1113'), `message lacks 1113: ${e.error?.error?.message}`);
    return { status: e.status, message: e.error?.error?.message };
  }
  throw new CaseError('an account without credit was served');
}

const CASES = {
  'cloud/message': message,
  'cloud/legacy-key': legacyMessage,
  'cloud/stream': stream,
  'cloud/tools': (c) => tools(c, false),
  'cloud/tools-stream': (c) => tools(c, true),
  'cloud/count-tokens': countTokens,
  'cloud/image': image,
  'cloud/bad-key': badKey,
  'cloud/arrears': arrears,
  'vllm/message': message,
  'vllm/stream': stream,
  'vllm/tools': (c) => tools(c, false),
  'vllm/tools-stream': (c) => tools(c, true),
  'vllm/count-tokens': countTokens,
};

function describe(e) {
  if (e instanceof CaseError) return { error: e.message, ...(e.detail ? { detail: e.detail } : {}) };
  const out = { error: typeof e?.message === 'string' ? e.message : String(e), class: e?.constructor?.name };
  if (e?.status) out.status = e.status;
  if (e?.error) out.body = e.error;
  return out;
}

async function main() {
  if (!BASE_URL || !API_KEY) {
    console.error('anthropic.mjs: set BASE_URL (…/api/anthropic) and API_KEY (id.secret)');
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
