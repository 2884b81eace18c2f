/**
 * The server through the official `openai` client (6.x), on stories260K, on 127.0.0.1 only:
 * completions and chat, streamed and not, stop strings, log-probabilities, prefix reuse,
 * tool calls, errors as the client's error classes, auth, CORS, health while loading, metrics.
 */
import OpenAI, { AuthenticationError, BadRequestError, NotFoundError, RateLimitError, APIError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../src/model.js';
import type { SparrowServer } from '../../src/server/index.js';
import { forceOutput, rawRequest, startServer, STORIES } from './helpers.js';

let model: Model;
let main: { server: SparrowServer; base: string; port: number };
let tools: { server: SparrowServer; base: string; port: number };
let client: OpenAI;
let toolClient: OpenAI;
/** What the tool server forces the model to write (undefined: the model's own output). */
let forced: string | undefined;

// A compact Hermes-style template (the tiny model's context is 512 tokens).
const HERMES_MINI =
  "{% if tools %}<tools>{% for t in tools %}{{ t.function.name }} {% endfor %}</tools> Call as <tool_call>{json}</tool_call>\n{% endif %}" +
  "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}";

const WEATHER_TOOL = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'Weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

beforeAll(async () => {
  model = await loadModel(STORIES, { threads: 1 });
  main = await startServer({ model, parallel: 4, maxQueue: 16 });
  tools = await startServer({
    model,
    parallel: 1,
    chatTemplate: HERMES_MINI,
    logitProcessors: () => (forced !== undefined ? [forceOutput(model, forced)] : undefined),
  });
  client = new OpenAI({ baseURL: `${main.base}/v1`, apiKey: 'unused', maxRetries: 0 });
  toolClient = new OpenAI({ baseURL: `${tools.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await main?.server.close();
  await tools?.server.close();
  model?.dispose();
});

/** The same greedy continuation, straight from the library. */
async function direct(prompt: string, maxTokens: number): Promise<string> {
  const session = model.createSession({ contextSize: 512 });
  try {
    return (await session.complete(prompt, { maxTokens, temperature: 0 })).text;
  } finally {
    session.dispose();
  }
}

describe('completions', () => {
  it('answers with the library\'s greedy continuation, and usage', async () => {
    const r = await client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 24, temperature: 0 });
    expect(r.object).toBe('text_completion');
    expect(r.choices).toHaveLength(1);
    expect(r.choices[0]!.text).toBe(await direct('Once upon a time', 24));
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(r.usage).toMatchObject({ completion_tokens: 24, prompt_tokens: model.tokenizer.tokenize('Once upon a time', { addSpecial: true }).length });
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + 24);
  });

  it('streams the same text, then usage, then [DONE]', async () => {
    const whole = await client.completions.create({ model: 'm', prompt: 'The dog', max_tokens: 30, temperature: 0 });
    const stream = await client.completions.create({ model: 'm', prompt: 'The dog', max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined | null;
    for await (const chunk of stream) {
      if (chunk.choices.length > 0) {
        text += chunk.choices[0]!.text;
        finish = chunk.choices[0]!.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0]!.text);
    expect(finish).toBe('length');
    expect(usage?.completion_tokens).toBe(30);
  });

  it('stops at a stop string, which is not part of the text', async () => {
    const free = await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 40, temperature: 0 });
    expect(free.choices[0]!.text).toContain('Lily');
    const r = await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 40, temperature: 0, stop: ['Lily'] });
    expect(r.choices[0]!.finish_reason).toBe('stop');
    expect(r.choices[0]!.text).toBe(free.choices[0]!.text.slice(0, free.choices[0]!.text.indexOf('Lily')));
  });

  it('is reproducible with a seed at temperature 1', async () => {
    const a = await client.completions.create({ model: 'm', prompt: 'Tom', max_tokens: 20, temperature: 1, seed: 42 });
    const b = await client.completions.create({ model: 'm', prompt: 'Tom', max_tokens: 20, temperature: 1, seed: 42 });
    expect(a.choices[0]!.text).toBe(b.choices[0]!.text);
  });

  it('caps max_tokens by the context', async () => {
    const r = await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 1e9, temperature: 0, logit_bias: { '2': -100 } });
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(r.usage!.prompt_tokens + r.usage!.completion_tokens).toBe(512);
  });
});

describe('chat completions', () => {
  const messages = [{ role: 'user' as const, content: 'Tell me a story.' }];

  it('answers as an assistant message, the same streamed and not', async () => {
    const r = await client.chat.completions.create({ model: 'm', messages, max_tokens: 20, temperature: 0 });
    expect(r.object).toBe('chat.completion');
    expect(r.choices[0]!.message.role).toBe('assistant');
    expect(r.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(r.usage!.completion_tokens).toBe(20);
    // The prompt is the model's chat format (Llama 2 for this vocabulary).
    expect(r.usage!.prompt_tokens).toBe(model.tokenizer.tokenize(model.applyChatTemplate(messages), { addSpecial: false, parseSpecial: true }).length);

    const stream = await client.chat.completions.create({ model: 'm', messages, max_tokens: 20, temperature: 0, stream: true });
    let text = '';
    let role: string | undefined;
    let finish: string | null = null;
    for await (const chunk of stream) {
      role ??= chunk.choices[0]?.delta.role;
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(role).toBe('assistant');
    expect(text).toBe(r.choices[0]!.message.content);
    expect(finish).toBe('length');
  });

  it('reuses the KV cache of a conversation sent again with one more turn', async () => {
    const first = await client.chat.completions.create({ model: 'm', messages, max_tokens: 16, temperature: 0 });
    const turn2 = [...messages, { role: 'assistant' as const, content: first.choices[0]!.message.content! }, { role: 'user' as const, content: 'And then?' }];
    const second = await client.chat.completions.create({ model: 'm', messages: turn2, max_tokens: 16, temperature: 0 });
    const cached = second.usage!.prompt_tokens_details!.cached_tokens!;
    expect(cached).toBeGreaterThanOrEqual(first.usage!.prompt_tokens);
    // The answer is the one a fresh session gives.
    const prompt = model.applyChatTemplate(turn2);
    const session = model.createSession({ contextSize: 512 });
    const ids = model.tokenizer.tokenize(prompt, { addSpecial: false, parseSpecial: true });
    const fresh = await session.complete(ids[0] === 1 ? ids : [1, ...ids], { maxTokens: 16, temperature: 0 });
    session.dispose();
    expect(second.choices[0]!.message.content).toBe(fresh.text);
  });

  it('gives log-probabilities of the chosen tokens and the top alternatives', async () => {
    const r = await client.chat.completions.create({ model: 'm', messages, max_tokens: 10, temperature: 0, logprobs: true, top_logprobs: 3 });
    const lp = r.choices[0]!.logprobs!.content!;
    expect(lp).toHaveLength(10);
    expect(lp.map((t) => t.token).join('')).toBe(r.choices[0]!.message.content);
    for (const t of lp) {
      expect(t.logprob).toBeLessThanOrEqual(0);
      expect(t.top_logprobs).toHaveLength(3);
      // Greedy: the chosen token is the most likely one.
      expect(t.top_logprobs[0]!.logprob).toBeCloseTo(t.logprob, 5);
      expect(t.top_logprobs[0]!.logprob).toBeGreaterThanOrEqual(t.top_logprobs[1]!.logprob);
      expect(t.top_logprobs.reduce((s, x) => s + Math.exp(x.logprob), 0)).toBeLessThanOrEqual(1 + 1e-6);
      expect(Buffer.from(t.bytes!).toString('utf8')).toBe(t.token);
    }
  });

  it('streams log-probabilities with the content, and gives the legacy shape on completions', async () => {
    const stream = await client.chat.completions.create({ model: 'm', messages, max_tokens: 12, temperature: 0, logprobs: true, top_logprobs: 2, stream: true });
    let content = '';
    const tokens: string[] = [];
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? '';
      for (const t of chunk.choices[0]?.logprobs?.content ?? []) {
        tokens.push(t.token);
        expect(t.top_logprobs).toHaveLength(2);
      }
    }
    expect(tokens).toHaveLength(12);
    expect(tokens.join('')).toBe(content);
    const r = await client.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 8, temperature: 0, logprobs: 2 });
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens).toHaveLength(8);
    expect(lp.tokens!.join('')).toBe(r.choices[0]!.text);
    expect(lp.token_logprobs!.every((x) => x <= 0)).toBe(true);
    expect(lp.top_logprobs!.every((m) => Object.keys(m).length <= 2 && Object.keys(m).length >= 1)).toBe(true);
    expect(lp.text_offset).toEqual(lp.tokens!.map((_, i) => lp.tokens!.slice(0, i).join('').length));
  });

  it('accepts response_format (unconstrained until the library has jsonSchema)', async () => {
    const r = await client.chat.completions.create({
      model: 'm', messages, max_tokens: 5, temperature: 0,
      response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { type: 'integer' } } } } },
    });
    expect(r.choices[0]!.message.content).toBeTypeOf('string');
  });

  it('response_format json_schema output parses and validates', async () => {
    const schema = { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer' } }, required: ['name', 'age'], additionalProperties: false };
    const r = await client.chat.completions.create({ model: 'm', messages, max_tokens: 100, temperature: 0, response_format: { type: 'json_schema', json_schema: { name: 'p', schema } } });
    const value = JSON.parse(r.choices[0]!.message.content!);
    expect(typeof value.name).toBe('string');
    expect(Number.isInteger(value.age)).toBe(true);
  });
});

describe('tool calls', () => {
  const messages = [{ role: 'user' as const, content: 'Weather in Paris?' }];
  const call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>';

  it('returns the calls the model writes as tool_calls', async () => {
    forced = call;
    try {
      const r = await toolClient.chat.completions.create({ model: 'm', messages, tools: [WEATHER_TOOL], max_tokens: 300, temperature: 0 });
      const c = r.choices[0]!;
      expect(c.finish_reason).toBe('tool_calls');
      expect(c.message.content).toBeNull();
      expect(c.message.tool_calls).toHaveLength(1);
      const tc = c.message.tool_calls![0]!;
      expect(tc.type).toBe('function');
      expect(tc.id).toMatch(/^call_/);
      if (tc.type !== 'function') throw new Error('not a function call');
      expect(tc.function.name).toBe('get_weather');
      expect(JSON.parse(tc.function.arguments)).toEqual({ city: 'Paris' });
    } finally {
      forced = undefined;
    }
  });

  it('streams tool calls as tool_calls deltas, never as content', async () => {
    forced = `Let me look.${call}`;
    try {
      const stream = await toolClient.chat.completions.create({ model: 'm', messages, tools: [WEATHER_TOOL], max_tokens: 300, temperature: 0, stream: true });
      let content = '';
      const calls: Array<{ name?: string; arguments?: string }> = [];
      let finish: string | null = null;
      for await (const chunk of stream) {
        const d = chunk.choices[0]?.delta;
        content += d?.content ?? '';
        for (const tc of d?.tool_calls ?? []) calls[tc.index] = { name: tc.function?.name, arguments: tc.function?.arguments };
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      expect(content.trim()).toBe('Let me look.');
      expect(calls).toEqual([{ name: 'get_weather', arguments: '{"city":"Paris"}' }]);
      expect(finish).toBe('tool_calls');
    } finally {
      forced = undefined;
    }
  });

  it('starts the answer as a call when tool_choice names a tool (streamed and not)', async () => {
    // The prompt ends with the format's opening ("<tool_call>\n"), so the model writes the JSON only.
    // With the schema constraint, the answer ends where the call's JSON ends.
    forced = '{"name": "get_weather", "arguments": {"city": "Oslo"}}';
    try {
      const choice = { type: 'function' as const, function: { name: 'get_weather' } };
      const r = await toolClient.chat.completions.create({ model: 'm', messages, tools: [WEATHER_TOOL], tool_choice: choice, max_tokens: 300, temperature: 0 });
      expect(r.choices[0]!.finish_reason).toBe('tool_calls');
      const tc = r.choices[0]!.message.tool_calls![0]!;
      if (tc.type !== 'function') throw new Error('not a function call');
      expect(JSON.parse(tc.function.arguments)).toEqual({ city: 'Oslo' });
      const stream = await toolClient.chat.completions.create({ model: 'm', messages, tools: [WEATHER_TOOL], tool_choice: choice, max_tokens: 300, temperature: 0, stream: true });
      let content = '';
      const names: string[] = [];
      for await (const chunk of stream) {
        content += chunk.choices[0]?.delta.content ?? '';
        for (const t of chunk.choices[0]?.delta.tool_calls ?? []) names.push(t.function!.name!);
      }
      expect(content).toBe('');
      expect(names).toEqual(['get_weather']);
    } finally {
      forced = undefined;
    }
  });

  it('sends plain answers as content, and takes tool results back in the history', async () => {
    forced = 'It is sunny.';
    try {
      const r = await toolClient.chat.completions.create({
        model: 'm',
        tools: [WEATHER_TOOL],
        messages: [
          ...messages,
          { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
          { role: 'tool', tool_call_id: 'call_1', content: '{"sky":"clear"}' },
        ],
        max_tokens: 30,
        temperature: 0,
      });
      expect(r.choices[0]!.finish_reason).toBe('stop');
      expect(r.choices[0]!.message.content!.trim()).toBe('It is sunny.');
      expect(r.choices[0]!.message.tool_calls).toBeUndefined();
    } finally {
      forced = undefined;
    }
  });
});

describe('errors, as the client\'s error classes', () => {
  it('400 names the field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ n: 2 }, 'n'],
      [{ temperature: 5 }, 'temperature'],
      [{ max_tokens: -1 }, 'max_tokens'],
      [{ top_logprobs: 3 }, 'top_logprobs'],
      [{ logit_bias: { '99999': 1 } }, 'logit_bias'],
      [{ stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ frobnicate: true }, 'frobnicate'],
    ];
    for (const [extra, param] of cases) {
      const e = await client.chat.completions
        .create({ model: 'm', messages: [{ role: 'user', content: 'x' }], max_tokens: 2, ...extra } as never)
        .then(() => undefined, (err: unknown) => err);
      expect(e, param).toBeInstanceOf(BadRequestError);
      expect((e as BadRequestError).param, JSON.stringify(extra)).toBe(param);
    }
    await expect(client.chat.completions.create({ model: 'm', messages: [] })).rejects.toBeInstanceOf(BadRequestError);
  });

  it('404 for an unknown model id or path', async () => {
    await expect(client.models.retrieve('no-such-model')).rejects.toBeInstanceOf(NotFoundError);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['stories260K']);
    expect((await client.models.retrieve('stories260K')).id).toBe('stories260K');
  });

  it('400 for a prompt longer than the context', async () => {
    const e = await client.completions.create({ model: 'm', prompt: 'word '.repeat(2000), max_tokens: 1 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BadRequestError);
    expect((e as BadRequestError).code).toBe('context_length_exceeded');
  });

  it('401 without the API key, on every endpoint but /health; 429 when the queue is full', async () => {
    const s = await startServer({ model, apiKey: 'sekret-key', parallel: 1, maxQueue: 0 });
    try {
      const bad = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'wrong', maxRetries: 0 });
      const good = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'sekret-key', maxRetries: 0 });
      await expect(bad.models.list()).rejects.toBeInstanceOf(AuthenticationError);
      await expect(bad.completions.create({ model: 'm', prompt: 'x', max_tokens: 1 })).rejects.toBeInstanceOf(AuthenticationError);
      expect((await rawRequest(s.port, 'GET', '/metrics')).status).toBe(401);
      expect((await rawRequest(s.port, 'GET', '/metrics', undefined, { authorization: 'Bearer sekret-key' })).status).toBe(200);
      expect((await rawRequest(s.port, 'GET', '/health')).status).toBe(200);
      expect((await good.models.list()).data).toHaveLength(1);
      // One session, no queue: of two requests at once, one runs and the other is a 429.
      const long = () => good.completions.create({ model: 'm', prompt: 'Once', max_tokens: 400, temperature: 0, logit_bias: { '2': -100 } });
      const both = await Promise.allSettled([long(), long()]);
      expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      const refused = both.find((r) => r.status === 'rejected') as PromiseRejectedResult;
      expect(refused.reason).toBeInstanceOf(RateLimitError);
      expect((refused.reason as RateLimitError).headers.get('retry-after')).toBe('1');
    } finally {
      await s.server.close();
    }
  });

  it('501 for embeddings while the model cannot embed', async () => {
    const m2 = await loadModel(STORIES, { threads: 1 });
    Object.assign(m2, { embed: undefined });
    const s = await startServer({ model: m2, parallel: 1 });
    try {
      const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
      const e = await c.embeddings.create({ model: 'm', input: 'hello' }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(APIError);
      expect((e as APIError).status).toBe(501);
      expect((e as APIError).code).toBe('not_implemented');
    } finally {
      await s.server.close();
      m2.dispose();
    }
  });

  it('embeddings of the real model through the client equal model.embed()', async () => {
    const texts = ['Once upon a time', 'The cat sat on the mat.'];
    const r = await client.embeddings.create({ model: 'm', input: texts, encoding_format: 'float' });
    const ref = await model.embed(texts);
    expect(r.data).toHaveLength(2);
    for (let i = 0; i < texts.length; i++) {
      expect(r.data[i]!.embedding).toHaveLength(model.info.embeddingLength);
      expect(r.data[i]!.embedding).toEqual(Array.from(ref[i]!));
    }
    expect(r.usage.prompt_tokens).toBe(texts.reduce((n, t) => n + model.tokenizer.tokenize(t).length, 0));
  });

  it('the embeddings route: inputs, usage, float and base64 (over a stand-in embed())', async () => {
    const m2 = await loadModel(STORIES, { threads: 1 });
    const calls: unknown[] = [];
    // A stand-in with the declared signature: [length, 1, 0.5] per text.
    Object.assign(m2, {
      embed: async (texts: string[], o: unknown) => {
        calls.push(o);
        return texts.map((t) => Float32Array.of(t.length, 1, 0.5));
      },
    });
    const s = await startServer({ model: m2, parallel: 1 });
    try {
      const c = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'x', maxRetries: 0 });
      const r = await c.embeddings.create({ model: 'm', input: ['hello', 'hi'], encoding_format: 'float' });
      expect(r.data.map((d) => d.embedding)).toEqual([[5, 1, 0.5], [2, 1, 0.5]]);
      expect(r.data.map((d) => d.index)).toEqual([0, 1]);
      expect(r.usage.prompt_tokens).toBe(m2.tokenizer.tokenize('hello').length + m2.tokenizer.tokenize('hi').length);
      expect(calls[0]).toEqual({ pooling: 'mean', normalize: true });
      // The client's default asks for base64 and decodes it back to numbers.
      const b = await c.embeddings.create({ model: 'm', input: 'abc' });
      expect(b.data[0]!.embedding).toEqual([3, 1, 0.5]);
      await expect(c.embeddings.create({ model: 'm', input: [] })).rejects.toBeInstanceOf(BadRequestError);
    } finally {
      await s.server.close();
      m2.dispose();
    }
  });
});

describe('health, metrics, CORS', () => {
  it('/health is 503 while the model loads, then 200', async () => {
    let resolveModel!: (m: Model) => void;
    const s = await startServer({ model: new Promise<Model>((r) => (resolveModel = r)), parallel: 1 });
    try {
      const h = await rawRequest(s.port, 'GET', '/health');
      expect(h.status).toBe(503);
      expect(JSON.parse(h.body)).toEqual({ status: 'loading' });
      const c = await rawRequest(s.port, 'POST', '/v1/completions', JSON.stringify({ prompt: 'x', max_tokens: 1 }));
      expect(c.status).toBe(503);
      expect(JSON.parse(c.body).error.code).toBe('model_loading');
      resolveModel(model);
      await s.server.ready;
      expect((await rawRequest(s.port, 'GET', '/health')).status).toBe(200);
    } finally {
      await s.server.close();
    }
  });

  it('/metrics counts requests and tokens in Prometheus text', async () => {
    await client.completions.create({ model: 'm', prompt: 'Hi', max_tokens: 3, temperature: 0 });
    const m = await rawRequest(main.port, 'GET', '/metrics');
    expect(m.status).toBe(200);
    expect(m.headers['content-type']).toMatch(/^text\/plain/);
    expect(m.body).toMatch(/^sparrow_requests_total\{endpoint="completion",status="200"\} [1-9]/m);
    expect(m.body).toMatch(/^sparrow_generated_tokens_total [1-9]/m);
    expect(m.body).toMatch(/^sparrow_time_to_first_token_seconds_bucket\{le="\+Inf"\} [1-9]/m);
    expect(m.body).toMatch(/^sparrow_request_duration_seconds_count [1-9]/m);
    expect(m.body).toMatch(/^sparrow_queue_depth 0$/m);
    expect(m.body).toMatch(/^sparrow_sessions_busy 0$/m);
    expect(m.body).toMatch(/^sparrow_sessions 4$/m);
  });

  it('sends CORS headers only with the cors option', async () => {
    const none = await rawRequest(main.port, 'GET', '/v1/models');
    expect(none.headers['access-control-allow-origin']).toBeUndefined();
    expect((await rawRequest(main.port, 'OPTIONS', '/v1/models')).status).toBe(405);
    const s = await startServer({ model, parallel: 1, cors: 'https://app.example' });
    try {
      const pre = await rawRequest(s.port, 'OPTIONS', '/v1/chat/completions', undefined, { origin: 'https://app.example', 'access-control-request-method': 'POST' });
      expect(pre.status).toBe(204);
      expect(pre.headers['access-control-allow-origin']).toBe('https://app.example');
      expect(pre.headers['access-control-allow-headers']).toMatch(/Authorization/);
      expect((await rawRequest(s.port, 'GET', '/v1/models')).headers['access-control-allow-origin']).toBe('https://app.example');
    } finally {
      await s.server.close();
    }
  });
});
