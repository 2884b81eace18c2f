/**
 * The server under load, on 127.0.0.1 only, every loop bounded in count and time:
 * 32 concurrent streaming clients get each the greedy output of their request run alone;
 * memory stays flat over 1000 requests; clients that disconnect mid-stream free their
 * sessions at once; a fuzz of malformed requests gets only 4xx and the server stays up;
 * `sparrow serve` exits 0 on SIGTERM after finishing the request in flight.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../src/model.js';
import type { SparrowServer } from '../../src/server/index.js';
import { rawRequest, startServer, STORIES, waitFor } from './helpers.js';

let model: Model;
let s: { server: SparrowServer; base: string; port: number };
let client: OpenAI;

beforeAll(async () => {
  model = await loadModel(STORIES, { threads: 1 });
  s = await startServer({ model, parallel: 8, maxQueue: 64, contextSize: 256, bodyLimit: 256 * 1024 });
  client = new OpenAI({ baseURL: `${s.base}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await s?.server.close();
  model?.dispose();
});

const PROMPTS = ['Once upon a time', 'The little dog', 'Lily and Tom', 'One day, a bird', 'The sun was', 'Ben had a red ball', 'In the park', 'Mom said'];

async function streamChat(i: number): Promise<string> {
  const stream = await client.chat.completions.create({
    model: 'm',
    messages: [{ role: 'user', content: `${PROMPTS[i % PROMPTS.length]} (${i % 5})` }],
    max_tokens: 24 + (i % 7) * 4,
    temperature: 0,
    stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  return text;
}

describe('load', () => {
  it('32 concurrent streaming clients each get the output of their request run alone', async () => {
    const N = 32;
    const alone: string[] = [];
    for (let i = 0; i < N; i++) alone.push(await streamChat(i));
    const batchedBefore = model.stats.batchedSteps;
    const together = await Promise.all(Array.from({ length: N }, (_, i) => streamChat(i)));
    expect(together).toEqual(alone);
    expect(model.stats.batchedSteps).toBeGreaterThan(batchedBefore);  // decode steps did run batched
    expect(s.server.stats).toMatchObject({ busySessions: 0, queueDepth: 0 });
  });

  it('memory stays flat over 1000 small requests', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const one = (i: number) =>
      new Promise<number>((resolve, reject) => {
        const body = JSON.stringify({ prompt: PROMPTS[i % PROMPTS.length], max_tokens: 2, temperature: 0.5, seed: i });
        const req = http.request({ host: '127.0.0.1', port: s.port, method: 'POST', path: '/v1/completions', agent, headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end(body);
      });
    const run = async (count: number, deadline: number) => {
      let next = 0;
      let done = 0;
      const worker = async () => {
        while (next < count && performance.now() < deadline) {
          const status = await one(next++);
          expect(status).toBe(200);
          done++;
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      return done;
    };
    const deadline = performance.now() + 90_000;
    await run(200, deadline);  // warm-up: caches, JIT, pools
    global.gc?.();
    const before = process.memoryUsage().rss;
    const done = await run(1000, deadline);
    global.gc?.();
    const after = process.memoryUsage().rss;
    agent.destroy();
    expect(done).toBe(1000);
    // Leaking even 50 KB per request would be 50 MB here.
    expect(after - before).toBeLessThan(40 * 1024 * 1024);
  }, 120_000);

  it('clients that disconnect mid-stream free their sessions within moments', async () => {
    const N = 8;
    const generatedBefore = Number(/^sparrow_generated_tokens_total (\d+)/m.exec((await rawRequest(s.port, 'GET', '/metrics')).body)![1]);
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        new Promise<void>((resolve, reject) => {
          const body = JSON.stringify({ prompt: PROMPTS[i], max_tokens: 200, temperature: 0, stream: true, logit_bias: { '2': -100 } });
          const req = http.request({ host: '127.0.0.1', port: s.port, method: 'POST', path: '/v1/completions', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
            res.once('data', () => {
              req.destroy();  // gone after the first chunk
              resolve();
            });
          });
          req.on('error', (e) => ((e as NodeJS.ErrnoException).code === 'ECONNRESET' ? resolve() : reject(e)));
          req.end(body);
        }),
      ),
    );
    // Every session is free again long before 200 tokens could have been generated for all eight.
    expect(await waitFor(() => s.server.stats.busySessions === 0 && s.server.stats.inFlight === 0, 5000)).toBe(true);
    // Each generation stopped within a token or two of its client leaving (not after 200).
    const generatedAfter = Number(/^sparrow_generated_tokens_total (\d+)/m.exec((await rawRequest(s.port, 'GET', '/metrics')).body)![1]);
    expect(generatedAfter - generatedBefore).toBeLessThanOrEqual(N * 5);
    // The freed sessions serve new requests.
    const r = await client.completions.create({ model: 'm', prompt: 'Hello', max_tokens: 3, temperature: 0 });
    expect(r.usage!.completion_tokens).toBe(3);
  });
});

describe('fuzz: malformed requests get 4xx and the server stays up', () => {
  const chat = (extra: Record<string, unknown>) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ...extra });

  it('refuses each listed malformed request with a 4xx in OpenAI error shape', async () => {
    const bad: Array<[string, string, string | Buffer | undefined]> = [
      ['POST', '/v1/chat/completions', '{"model": "m", "messages": ['],
      ['POST', '/v1/chat/completions', ''],
      ['POST', '/v1/chat/completions', 'null'],
      ['POST', '/v1/chat/completions', '[]'],
      ['POST', '/v1/chat/completions', '"text"'],
      ['POST', '/v1/chat/completions', Buffer.from([0xff, 0xfe, 0x7b, 0x00])],
      ['POST', '/v1/chat/completions', '['.repeat(100_000)],
      ['POST', '/v1/chat/completions', 'x'.repeat(300 * 1024)],
      ['POST', '/v1/chat/completions', chat({ max_tokens: -1 })],
      ['POST', '/v1/chat/completions', chat({ max_tokens: 0 })],
      ['POST', '/v1/chat/completions', chat({ max_tokens: 1e308 })],
      ['POST', '/v1/chat/completions', chat({ max_tokens: -2147483648 })],
      ['POST', '/v1/chat/completions', chat({ max_tokens: 2.5 })],
      ['POST', '/v1/chat/completions', chat({ max_tokens: '10' })],
      ['POST', '/v1/chat/completions', chat({ temperature: -0.1 })],
      ['POST', '/v1/chat/completions', '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "temperature": 1e309}'],
      ['POST', '/v1/chat/completions', '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1e400}'],
      ['POST', '/v1/chat/completions', chat({ top_p: 2 })],
      ['POST', '/v1/chat/completions', chat({ top_k: -5 })],
      ['POST', '/v1/chat/completions', chat({ top_k: 1e12 })],
      ['POST', '/v1/chat/completions', chat({ min_p: 'x' })],
      ['POST', '/v1/chat/completions', chat({ seed: -1 })],
      ['POST', '/v1/chat/completions', chat({ seed: 1e300 })],
      ['POST', '/v1/chat/completions', chat({ presence_penalty: 3 })],
      ['POST', '/v1/chat/completions', chat({ frequency_penalty: [] })],
      ['POST', '/v1/chat/completions', chat({ logit_bias: { '-1': 5 } })],
      ['POST', '/v1/chat/completions', chat({ logit_bias: { '1': 1e9 } })],
      ['POST', '/v1/chat/completions', chat({ logit_bias: { abc: 1 } })],
      ['POST', '/v1/chat/completions', chat({ logit_bias: Object.fromEntries(Array.from({ length: 512 }, (_, i) => [String(i), -100])) })],
      ['POST', '/v1/chat/completions', chat({ logit_bias: [1, 2] })],
      ['POST', '/v1/chat/completions', chat({ stop: 5 })],
      ['POST', '/v1/chat/completions', chat({ stop: [''] })],
      ['POST', '/v1/chat/completions', chat({ stop: ['x'.repeat(10_000)] })],
      ['POST', '/v1/chat/completions', chat({ n: 0 })],
      ['POST', '/v1/chat/completions', chat({ n: 3 })],
      ['POST', '/v1/chat/completions', chat({ stream: 'yes' })],
      ['POST', '/v1/chat/completions', chat({ stream_options: { include_usage: true } })],
      ['POST', '/v1/chat/completions', chat({ logprobs: 1 })],
      ['POST', '/v1/chat/completions', chat({ logprobs: true, top_logprobs: 21 })],
      ['POST', '/v1/chat/completions', chat({ response_format: { type: 'yaml' } })],
      ['POST', '/v1/chat/completions', chat({ response_format: { type: 'json_schema', json_schema: { schema: 'x' } } })],
      ['POST', '/v1/chat/completions', chat({ tools: {} })],
      ['POST', '/v1/chat/completions', chat({ tools: [{ type: 'function', function: { name: 'bad name!' } }] })],
      ['POST', '/v1/chat/completions', chat({ tool_choice: 'required' })],
      ['POST', '/v1/chat/completions', chat({ unknown_field: 1 })],
      // 100k levels of nesting where the chat template prints the value (tojson): a clear 400, no stack overflow crash.
      ['POST', '/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: '', tool_calls: [{ type: 'function', id: 'c', function: { name: 'f', arguments: 'DEEP' } }] }] }).replace('"DEEP"', JSON.stringify('{"a":' + '['.repeat(100_000) + ']'.repeat(100_000) + '}'))],
      ['POST', '/v1/chat/completions', chat({ __proto__: { polluted: true }, constructor: 1 })],
      ['POST', '/v1/chat/completions', chat({ messages: 'hi' })],
      ['POST', '/v1/chat/completions', chat({ messages: [{ role: 'wizard', content: 'x' }] })],
      ['POST', '/v1/chat/completions', chat({ messages: [{ role: 'user', content: 5 }] })],
      ['POST', '/v1/chat/completions', chat({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] })],
      ['POST', '/v1/chat/completions', chat({ messages: [{ role: 'user', content: 'x '.repeat(2000) }] })],
      ['POST', '/v1/chat/completions', chat({ messages: [{ role: 'tool', content: 'x' }] })],
      ['POST', '/v1/completions', JSON.stringify({ prompt: [1, 2, 99999], max_tokens: 1 })],
      ['POST', '/v1/completions', JSON.stringify({ prompt: [-1], max_tokens: 1 })],
      ['POST', '/v1/completions', JSON.stringify({ prompt: ['a', 'b'], max_tokens: 1 })],
      ['POST', '/v1/completions', JSON.stringify({ prompt: '', max_tokens: 1 })],
      ['POST', '/v1/completions', JSON.stringify({ prompt: 'x', logprobs: 6 })],
      ['POST', '/v1/completions', JSON.stringify({ prompt: 'x', echo: true })],
      ['POST', '/v1/completions', JSON.stringify({ max_tokens: 1 })],
      ['POST', '/v1/embeddings', JSON.stringify({ input: 5 })],
      ['GET', '/v1/chat/completions', undefined],
      ['POST', '/v1/models', '{}'],
      ['GET', '/v2/everything', undefined],
      ['GET', '/%E0%A4%A', undefined],
      ['GET', '/v1/models/%E0%A4%A', undefined],
      ['GET', '//v1//models', undefined],
      ['GET', 'http://[bad', undefined],
      ['GET', '/v1/models/' + 'x'.repeat(5000), undefined],
      ['DELETE', '/health', undefined],
    ];
    for (const [method, p, body] of bad) {
      const r = await rawRequest(s.port, method, p, body);
      const label = `${method} ${p} ${String(body).slice(0, 80)}`;
      expect(r.status, label).toBeGreaterThanOrEqual(400);
      expect(r.status, label).toBeLessThan(500);
      if (r.status !== 501) expect(JSON.parse(r.body).error.message, label).toBeTypeOf('string');
    }
    expect(s.server.stats).toMatchObject({ busySessions: 0, queueDepth: 0 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('survives clients that reset mid-request, and raw protocol garbage', async () => {
    const net = await import('node:net');
    const raw = (payload: string, resetAfterMs: number) =>
      new Promise<void>((resolve) => {
        const sock = net.connect(s.port, '127.0.0.1', () => {
          sock.write(payload);
          setTimeout(() => {
            sock.resetAndDestroy();
            resolve();
          }, resetAfterMs);
        });
        sock.on('error', () => resolve());
        sock.on('data', () => {});
      });
    const partial = (p: string, len: number, part: string) => `POST ${p} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${len}\r\n\r\n${part}`;
    await Promise.all([
      raw(partial('/v1/chat/completions', 1000, '{"messages": [{"role": "us'), 20),
      raw(partial('/v1/completions', 50, '{"prompt": "Once upon a time", "max_tokens": 300, "stream": true}'.slice(0, 50)), 20),
      raw(partial('/metrics', 10_000, 'x'.repeat(100)), 20),
      raw(partial('/v1/chat/completions', 300 * 1024, 'x'.repeat(1000)), 20),
      raw('GARBAGE / HTTP/9.9\r\n\r\n', 20),
      raw('GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n', 20),
      raw('\x00\x01\x02\xff'.repeat(100), 20),
      raw(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 62\r\n\r\n{"prompt": "Once upon a time", "max_tokens": 200, "stream": true}`, 30),
    ]);
    expect(await waitFor(() => s.server.stats.busySessions === 0 && s.server.stats.queueDepth === 0, 5000)).toBe(true);
    expect((await rawRequest(s.port, 'GET', '/health')).status).toBe(200);
  });

  it('survives random field mutations of valid requests (no 5xx, no stuck session)', async () => {
    // A small deterministic generator, so a failure can be replayed.
    let state = 12345;
    const rand = (n: number) => {
      state = (state * 1103515245 + 12345) & 0x7fffffff;
      return state % n;
    };
    const values: unknown[] = [
      -1, 0, 1, 2, -0.5, 0.5, 1e308, -1e308, 2 ** 53, -(2 ** 63), 1e-300, 65536, 'x', '', '1', 'null', null, true, false,
      [], [1], ['a'], {}, { a: 1 }, { type: 'text' }, [{ role: 'user', content: 'x' }], 'a'.repeat(5000),
    ];
    const fields = [
      'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'seed', 'presence_penalty', 'frequency_penalty',
      'logit_bias', 'stop', 'n', 'stream', 'stream_options', 'logprobs', 'top_logprobs', 'response_format', 'tools', 'tool_choice',
      'messages', 'model', 'user',
    ];
    const deadline = performance.now() + 60_000;
    let sent = 0;
    for (let i = 0; i < 300 && performance.now() < deadline; i++) {
      const body: Record<string, unknown> = { model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 2 };
      for (let k = 0, n = 1 + rand(3); k < n; k++) body[fields[rand(fields.length)]!] = values[rand(values.length)];
      if (typeof body.max_tokens !== 'number' || body.max_tokens > 4) body.max_tokens = 2;  // keep each request short
      delete body.max_completion_tokens;
      const r = await rawRequest(s.port, 'POST', '/v1/chat/completions', JSON.stringify(body));
      expect(r.status, JSON.stringify(body).slice(0, 300)).toBeLessThan(500);
      sent++;
    }
    expect(sent).toBeGreaterThan(50);
    expect(await waitFor(() => s.server.stats.busySessions === 0, 2000)).toBe(true);
    expect((await rawRequest(s.port, 'GET', '/health')).status).toBe(200);
    const r = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, temperature: 0 });
    expect(r.choices[0]!.finish_reason).toBe('length');
  }, 90_000);
});

describe('sparrow serve', () => {
  it('finishes the request in flight on SIGTERM and exits 0', async () => {
    const bin = path.resolve(import.meta.dirname, '../../bin/sparrow.mjs');
    const child = spawn(process.execPath, [bin, 'serve', STORIES, '--port', '0', '--parallel', '2', '--threads', '1'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      let log = '';
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no 'listening' line in 30 s: ${log}`)), 30_000);
        child.stderr!.on('data', (d: Buffer) => {
          log += d.toString();
          const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
          if (m) {
            clearTimeout(timer);
            resolve(Number(m[1]));
          }
        });
      });
      expect(await waitFor(() => /model ready/.test(log), 30_000)).toBe(true);
      // A streamed request; SIGTERM once its first chunk is here.
      const answer = new Promise<string>((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/completions', headers: { 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.on('data', (d: Buffer) => {
            if (text === '') child.kill('SIGTERM');
            text += d.toString();
          });
          res.on('end', () => resolve(text));
        });
        req.on('error', reject);
        req.end(JSON.stringify({ prompt: 'Once upon a time', max_tokens: 100, temperature: 0, stream: true }));
      });
      const text = await answer;
      expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 90_000);
});
