/**
 * Session choice and time limits, seen through the API: which conversation's KV cache a
 * request reuses (usage.prompt_tokens_details.cached_tokens), and the per-request limit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../src/model.js';
import { rawRequest, startServer, STORIES, waitFor } from './helpers.js';

let model: Model;

beforeAll(async () => {
  model = await loadModel(STORIES, { threads: 1 });
});

afterAll(() => model?.dispose());

type Msg = { role: string; content: string };

async function chat(port: number, messages: Msg[], extra: Record<string, unknown> = {}) {
  const r = await rawRequest(port, 'POST', '/v1/chat/completions', JSON.stringify({ messages, max_tokens: 8, temperature: 0, ...extra }));
  expect(r.status, r.body).toBe(200);
  const body = JSON.parse(r.body);
  return { text: body.choices[0].message.content as string, prompt: body.usage.prompt_tokens as number, completion: body.usage.completion_tokens as number, cached: body.usage.prompt_tokens_details.cached_tokens as number, finish: body.choices[0].finish_reason as string };
}

describe('session choice', () => {
  it('each conversation comes back to the session holding its cache; new ones take free sessions, then the one idle longest', async () => {
    const s = await startServer({ model, parallel: 3, contextSize: 256 });
    try {
      const convo = (topic: string): Msg[] => [{ role: 'user', content: `Tell me about ${topic}.` }];
      const next = (m: Msg[], answer: string): Msg[] => [...m, { role: 'assistant', content: answer }, { role: 'user', content: 'More.' }];
      const a1 = await chat(s.port, convo('a cat'));
      const b1 = await chat(s.port, convo('the sea'));
      const c1 = await chat(s.port, convo('a tree'));
      // Turn two of each: the whole first turn (prompt and answer) is in its session.
      const a2 = await chat(s.port, next(convo('a cat'), a1.text));
      const b2 = await chat(s.port, next(convo('the sea'), b1.text));
      const c2 = await chat(s.port, next(convo('a tree'), c1.text));
      expect(a2.cached).toBeGreaterThanOrEqual(a1.prompt);
      expect(b2.cached).toBeGreaterThanOrEqual(b1.prompt);
      expect(c2.cached).toBeGreaterThanOrEqual(c1.prompt);
      // A fourth conversation takes the session idle longest (a's); b and c keep theirs.
      await chat(s.port, convo('a boat'));
      const b3 = await chat(s.port, next(next(convo('the sea'), b1.text), b2.text));
      expect(b3.cached).toBeGreaterThanOrEqual(b2.prompt);
      const a3 = await chat(s.port, next(next(convo('a cat'), a1.text), a2.text));
      expect(a3.cached).toBeLessThan(a2.prompt);
      // Reuse changes nothing in the answer: the same request on a fresh server gives the same text.
      const fresh = await startServer({ model, parallel: 1, contextSize: 256 });
      try {
        const again = await chat(fresh.port, next(convo('the sea'), b1.text));
        expect(again.cached).toBe(0);
        expect(again.text).toBe(b2.text);
      } finally {
        await fresh.server.close();
      }
    } finally {
      await s.server.close();
    }
  });
});

describe('time limits', () => {
  // A sampler step that takes about 10 ms: 450 tokens take 4.5 s or more, far past the limits below.
  const slow = () => [() => {
    const t = performance.now();
    while (performance.now() - t < 10);
  }];

  it('a generation past the request time limit ends with finish_reason length', async () => {
    const s = await startServer({ model, parallel: 1, contextSize: 512, requestTimeoutMs: 300, logitProcessors: slow });
    try {
      const r = await chat(s.port, [{ role: 'user', content: 'Go on.' }], { max_tokens: 450, logit_bias: { '2': -100 } });
      expect(r.finish).toBe('length');
      expect(r.completion).toBeLessThan(450);
      const body = await rawRequest(s.port, 'GET', '/metrics');
      expect(body.status).toBe(200);
      expect(s.server.stats.busySessions).toBe(0);
    } finally {
      await s.server.close();
    }
  });

  it('a queued request whose client goes away leaves the queue', async () => {
    const s = await startServer({ model, parallel: 1, contextSize: 512, logitProcessors: slow });
    try {
      const first = chat(s.port, [{ role: 'user', content: 'Go on.' }], { max_tokens: 200, logit_bias: { '2': -100 } });
      await waitFor(() => s.server.stats.busySessions === 1, 2000);
      const http = await import('node:http');
      const req = http.request({ host: '127.0.0.1', port: s.port, method: 'POST', path: '/v1/completions', headers: { 'content-type': 'application/json' } });
      req.on('error', () => {});
      req.end(JSON.stringify({ prompt: 'x', max_tokens: 2 }));
      expect(await waitFor(() => s.server.stats.queueDepth === 1, 2000)).toBe(true);
      req.destroy();
      expect(await waitFor(() => s.server.stats.queueDepth === 0, 1000)).toBe(true);
      expect(s.server.stats.busySessions).toBe(1);
      expect((await first).finish).toBe('length');
      expect(s.server.stats).toMatchObject({ busySessions: 0, queueDepth: 0 });
    } finally {
      await s.server.close();
    }
  });

  it('close() cancels what is still running after the grace period', async () => {
    const s = await startServer({ model, parallel: 1, contextSize: 512, logitProcessors: slow });
    const running = rawRequest(s.port, 'POST', '/v1/completions', JSON.stringify({ prompt: 'Once', max_tokens: 450, logit_bias: { '2': -100 } }));
    await waitFor(() => s.server.stats.busySessions === 1, 2000);
    await s.server.close({ graceMs: 100 });
    const r = await running;
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).choices[0].finish_reason).toBe('length');
    expect(JSON.parse(r.body).usage.completion_tokens).toBeLessThan(450);
  });
});
