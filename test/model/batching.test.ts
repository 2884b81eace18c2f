// Concurrent sessions of one model: evaluations queue (never rejected for a busy model),
// and decode steps of different sessions waiting together run as one batched forward
// pass. Every result must match evaluating the session alone.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticModel } from '../../models/cache.js';
import { loadModel, type Model } from '../../src/model.js';
import type { Session } from '../../src/session.js';

const MODELS = path.resolve('../shared/models');

/** Largest |a - b| relative to the largest |b| (GEMM and GEMV may round differently). */
function relDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let diff = 0;
  let scale = 1e-6;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / scale;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

const prompts = (vocab: number, k: number, len = 5): number[][] =>
  Array.from({ length: k }, (_, s) => Array.from({ length: len + s }, (_, i) => 1 + ((s * 131 + i * 37 + 7) % (vocab - 2))));

/** Logits of `prompt` followed by each of `steps`, one evaluate at a time on a fresh session (never batched). */
async function solo(model: Model, prompt: number[], steps: number[], kv: 'f16' | 'q8_0' = 'f16'): Promise<Float32Array[]> {
  const s = model.createSession({ contextSize: 128, kvCacheType: kv });
  try {
    const out = [await s.evaluate(prompt)];
    for (const t of steps) out.push(await s.evaluate([t]));
    return out;
  } finally {
    s.dispose();
  }
}

const TOL = 1e-5;  // in practice the batched logits are bit-identical today

for (const which of ['stories260K-f32', 'tiny-qwen2 q4_0', 'tiny-gqa4-hd128 q8_0'] as const) {
  describe(`batched decoding: ${which}`, () => {
    let model: Model;
    let vocab: number;
    beforeAll(async () => {
      const file =
        which === 'stories260K-f32'
          ? path.join(MODELS, 'stories260K-f32.gguf')
          : await syntheticModel(which.split(' ')[0], which.split(' ')[1] as 'q4_0' | 'q8_0');
      model = await loadModel(file, { threads: 2 });
      vocab = model.info.vocabSize;
    }, 120_000);
    afterAll(() => model?.dispose());

    it('concurrent single-token evaluations are batched and give the logits of solo evaluation', async () => {
      const k = 5;
      const ps = prompts(vocab, k);
      const steps = Array.from({ length: k }, (_, s) => Array.from({ length: 6 }, (_, i) => 3 + ((s * 17 + i * 29) % (vocab - 4))));
      // Mixed cache types: a batch holds sessions with f16 and q8_0 caches.
      const q8 = model.info.headDim % 32 === 0;  // q8_0 caches need whole blocks of 32
      const kvOf = (s: number) => (s % 2 === 1 && q8 ? 'q8_0' : 'f16') as 'f16' | 'q8_0';
      const want = await Promise.all(ps.map(async (p, s) => solo(model, p, steps[s], kvOf(s))));

      const before = model.stats;
      const sessions = ps.map((_, s) => model.createSession({ contextSize: 128, kvCacheType: kvOf(s) }));
      const got: Float32Array[][] = await Promise.all(sessions.map(async (s, i) => [await s.evaluate(ps[i])]));
      for (let step = 0; step < 6; step++) {
        const out = await Promise.all(sessions.map((s, i) => s.evaluate([steps[i][step]])));
        out.forEach((l, i) => got[i].push(l));
      }
      const after = model.stats;
      expect(after.batchedSteps - before.batchedSteps).toBeGreaterThanOrEqual(6);
      expect(after.batchedTokens - before.batchedTokens).toBeGreaterThan(after.batchedSteps - before.batchedSteps);
      expect(after.maxBatch).toBe(k);
      let worst = 0;
      for (let s = 0; s < k; s++) {
        expect(sessions[s].tokens).toEqual([...ps[s], ...steps[s]]);
        for (let i = 0; i < want[s].length; i++) {
          worst = Math.max(worst, relDiff(got[s][i], want[s][i]));
          expect(argmax(got[s][i])).toBe(argmax(want[s][i]));
        }
      }
      if (process.env.SPARROW_BATCH_DEBUG) console.log(`${which}: largest relative logit difference ${worst}`);
      expect(worst).toBeLessThan(TOL);
      for (const s of sessions) s.dispose();
    });

    it('concurrent greedy generations give the tokens of each generation alone', async () => {
      const k = 4;
      const ps = prompts(vocab, k, 3);
      const lengths = [12, 20, 7, 16];
      const alone = [];
      for (let i = 0; i < k; i++) {
        const s = model.createSession({ contextSize: 128 });
        alone.push((await s.complete(ps[i], { temperature: 0, maxTokens: lengths[i] })).tokens);
        s.dispose();
      }
      const before = model.stats.batchedSteps;
      const sessions = ps.map(() => model.createSession({ contextSize: 128 }));
      const together = await Promise.all(sessions.map((s, i) => s.complete(ps[i], { temperature: 0, maxTokens: lengths[i] })));
      expect(together.map((r) => r.tokens)).toEqual(alone);
      expect(model.stats.batchedSteps).toBeGreaterThan(before);
      // A second generate on a busy session is a clear error; the first goes on.
      const g = sessions[0].generate([1], { temperature: 0, maxTokens: 3 });
      expect(() => sessions[0].generate([1], { maxTokens: 1 })).toThrow(expect.objectContaining({ code: 'ERR_SESSION_BUSY' }));
      expect((await g.result).tokens.length).toBeLessThanOrEqual(3);
      for (const s of sessions) s.dispose();
    });

    it('a prompt evaluation arriving among decode steps runs on its own and all results match', async () => {
      const ps = prompts(vocab, 3, 6);
      const long = Array.from({ length: 40 }, (_, i) => 2 + ((i * 53) % (vocab - 3)));
      const want0 = await solo(model, ps[0], [5]);
      const want1 = await solo(model, ps[1], [6]);
      const wantLong = await solo(model, long, []);
      const [a, b, c] = [0, 1, 2].map(() => model.createSession({ contextSize: 128 }));
      await a.evaluate(ps[0]);
      await b.evaluate(ps[1]);
      const [la, lc, lb] = await Promise.all([a.evaluate([5]), c.evaluate(long), b.evaluate([6])]);
      expect(relDiff(la, want0[1])).toBeLessThan(TOL);
      expect(relDiff(lb, want1[1])).toBeLessThan(TOL);
      expect(relDiff(lc, wantLong[0])).toBeLessThan(TOL);
      for (const s of [a, b, c]) s.dispose();
    });

    it('more requests than one batch holds are queued, not rejected; a queued session is busy', async () => {
      const k = 20;
      const ps = prompts(vocab, k, 2);
      const sessions = ps.map(() => model.createSession({ contextSize: 64 }));
      await Promise.all(sessions.map((s, i) => s.evaluate(ps[i])));
      const pending = sessions.map((s) => s.evaluate([9]));
      // Evaluate, truncate and reset of a session whose evaluation waits in the queue are refused.
      await expect(sessions[0].evaluate([9])).rejects.toMatchObject({ code: 'ERR_SESSION_BUSY' });
      expect(() => sessions[0].truncate(0)).toThrow(expect.objectContaining({ code: 'ERR_SESSION_BUSY' }));
      const out = await Promise.all(pending);
      expect(model.stats.maxBatch).toBeLessThanOrEqual(16);
      const want = await solo(model, ps[3], [9]);
      expect(relDiff(out[3], want[1])).toBeLessThan(TOL);
      expect(model.stats.queued).toBe(0);
      for (const s of sessions) s.dispose();
    });

    it('disposing one session while its step is queued or in a running batch leaves the others correct', async () => {
      const k = 4;
      const ps = prompts(vocab, k, 4);
      const steps = [11, 12, 13, 14];
      const want = await Promise.all(ps.map((p, i) => solo(model, p, [steps[i], 21])));
      const sessions = ps.map(() => model.createSession({ contextSize: 64 }));
      await Promise.all(sessions.map((s, i) => s.evaluate(ps[i])));

      // Disposed while queued: its promise rejects, the batch runs without it.
      let ps1 = sessions.map((s, i) => s.evaluate([steps[i]]));
      sessions[1].dispose();
      let res = await Promise.allSettled(ps1);
      expect(res[1]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_DISPOSED' } });
      for (const i of [0, 2, 3]) {
        expect(res[i].status).toBe('fulfilled');
        expect(relDiff((res[i] as PromiseFulfilledResult<Float32Array>).value, want[i][1])).toBeLessThan(TOL);
      }

      // Disposed while its batch runs (the job starts from setImmediate).
      ps1 = [0, 2, 3].map((i) => sessions[i].evaluate([21]));
      await new Promise((r) => setImmediate(r));
      sessions[2].dispose();
      res = await Promise.allSettled(ps1);
      expect(res[1]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_DISPOSED' } });
      for (const [j, i] of [[0, 0], [2, 3]]) {
        expect(res[j].status).toBe('fulfilled');
        expect(relDiff((res[j] as PromiseFulfilledResult<Float32Array>).value, want[i][2])).toBeLessThan(TOL);
      }
      expect(sessions[3].tokens).toEqual([...ps[3], steps[3], 21]);
      for (const s of sessions) s.dispose();
    });

    it('a bad request (bad token, full context) fails alone and does not poison the batch', async () => {
      const ps = prompts(vocab, 3, 4);
      const want = await Promise.all(ps.map((p) => solo(model, p, [8])));
      const sessions = ps.map((p, i) => model.createSession({ contextSize: i === 1 ? p.length : 64 }));
      await Promise.all(sessions.map((s, i) => s.evaluate(ps[i])));
      const bad = model.createSession({ contextSize: 64 });
      await bad.evaluate([1]);
      const res = await Promise.allSettled([
        sessions[0].evaluate([8]),
        sessions[1].evaluate([8]),  // its context is full
        bad.evaluate([vocab + 3]),
        sessions[2].evaluate([8]),
      ]);
      expect(res[1]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_CONTEXT_FULL' } });
      expect(res[2]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_INVALID_TOKEN' } });
      for (const [j, i] of [[0, 0], [3, 2]]) {
        expect(res[j].status).toBe('fulfilled');
        expect(relDiff((res[j] as PromiseFulfilledResult<Float32Array>).value, want[i][1])).toBeLessThan(TOL);
      }
      // The failed sessions are unchanged and usable.
      expect(sessions[1].tokens).toEqual(ps[1]);
      expect(bad.tokens).toEqual([1]);
      expect((await bad.evaluate([2])).length).toBe(vocab);
      for (const s of [...sessions, bad]) s.dispose();
    });
  });
}

describe('batched decoding: the model', () => {
  it('statistics stay readable after dispose; sessions of a disposed model reject queued work cleanly', async () => {
    const model = await loadModel(path.join(MODELS, 'stories260K-f32.gguf'), { threads: 1 });
    const s: Session[] = [0, 1, 2].map(() => model.createSession({ contextSize: 32 }));
    await Promise.all(s.map((x) => x.evaluate([1, 2])));
    const pending = s.map((x) => x.evaluate([3]));
    model.dispose();
    const res = await Promise.allSettled(pending);
    for (const r of res) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'ERR_DISPOSED' } });
    expect(model.stats.queued).toBe(0);
    expect(model.stats.evaluations).toBeGreaterThan(0);
  });
});

describe('a long prompt yields to decode steps between its batches', () => {
  let model: Model;
  beforeAll(async () => {
    // A batch size of 16: a 200-token prompt runs in 13 parts.
    model = await loadModel(path.join(MODELS, 'stories260K-f32.gguf'), { threads: 2, batchSize: 16 });
  });
  afterAll(() => model?.dispose());
  const long = Array.from({ length: 200 }, (_, i) => 3 + ((i * 37) % 500));

  it('decode steps of other sessions finish while the prompt is still running; its logits are unchanged', async () => {
    const ref = model.createSession({ contextSize: 256 });
    const want = await ref.evaluate(long, { allLogits: true });
    ref.dispose();

    const chat = model.createSession({ contextSize: 256 });
    await chat.evaluate([1, 403, 407]);
    const reader = model.createSession({ contextSize: 256 });
    const order: string[] = [];
    const prompt = reader.evaluate(long, { allLogits: true }).then((l) => (order.push('prompt'), l));
    // Three decode steps of the other session, each queued once the previous one is done.
    const steps = (async () => {
      for (let i = 0; i < 3; i++) {
        await chat.evaluate([300 + i]);
        order.push(`step ${i}`);
      }
    })();
    const [got] = await Promise.all([prompt, steps]);
    expect(order.indexOf('step 2')).toBeLessThan(order.indexOf('prompt'));
    expect(relDiff(got, want)).toBe(0); // the same batches, in the same order: bit for bit
    expect(reader.tokens).toEqual(long);
    expect(chat.tokens).toEqual([1, 403, 407, 300, 301, 302]);
    chat.dispose();
    reader.dispose();
  });

  it('aborting or disposing between its parts leaves the session as it was', async () => {
    const s = model.createSession({ contextSize: 256 });
    await s.evaluate([1, 2, 3]);
    const ac = new AbortController();
    const other = model.createSession({ contextSize: 256 });
    await other.evaluate([1]);
    const p = s.evaluate(long, { signal: ac.signal });
    await other.evaluate([5]); // runs after the first part
    ac.abort();
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(s.tokens).toEqual([1, 2, 3]);
    // The session goes on normally.
    const after = await s.evaluate([4]);
    const fresh = model.createSession({ contextSize: 256 });
    expect(relDiff(after, await fresh.evaluate([1, 2, 3, 4]))).toBeLessThan(1e-4);
    const q = s.evaluate(long);
    await other.evaluate([6]);
    s.dispose();
    await expect(q).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
    other.dispose();
    fresh.dispose();
  });
});
