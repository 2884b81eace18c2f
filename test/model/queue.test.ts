/**
 * The model's evaluation queue as the API shows it: the maxQueue limit (ERR_QUEUE_FULL,
 * decode steps never refused), the native session's own checks of token ids and context
 * (the second line of defence behind the TypeScript checks), and an addon surface that
 * keeps its test hooks on one internal object.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type GenerationResult, type Model } from '../../src/index.js';
import { addon } from '../../src/native.js';

const STORIES = path.resolve('..', 'shared', 'models', 'stories260K-f32.gguf');
const prompt = (n: number, salt = 0) => Array.from({ length: n }, (_, i) => 3 + ((i * 37 + salt * 11) % 500));

describe('loadModel({ maxQueue })', () => {
  it('is checked like the other options', async () => {
    for (const bad of [0, -1, 1.5, 2 ** 30 + 1, '2', Number.NaN])
      await expect(loadModel(STORIES, { maxQueue: bad as number })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG', message: /maxQueue/ });
  });

  describe('with maxQueue: 1', () => {
    let model: Model;
    beforeAll(async () => {
      model = await loadModel(STORIES, { threads: 1, batchSize: 16, maxQueue: 1 });
    });
    afterAll(() => model?.dispose());

    it('refuses a second waiting prompt with ERR_QUEUE_FULL and leaves its session unchanged', async () => {
      const [a, b, c] = [0, 1, 2].map(() => model.createSession({ contextSize: 128 }));
      await c.evaluate([1, 2]);
      const pa = a.evaluate(prompt(40));  // waits for the model until the next turn of the event loop
      const pb = b.evaluate(prompt(8, 1));
      const pc = c.evaluate([7]);  // a decode step: never refused
      await expect(pb).rejects.toMatchObject({ code: 'ERR_QUEUE_FULL', message: /maxQueue 1/ });
      expect(b.tokens).toEqual([]);
      const [la, lc] = await Promise.all([pa, pc]);
      expect(la.length).toBe(model.info.vocabSize);
      expect(lc.length).toBe(model.info.vocabSize);
      expect(c.tokens).toEqual([1, 2, 7]);
      // Once the queue has room, the refused session works normally.
      const lb = await b.evaluate(prompt(8, 1));
      const fresh = model.createSession({ contextSize: 128 });
      expect(Array.from(lb)).toEqual(Array.from(await fresh.evaluate(prompt(8, 1))));
      expect(model.stats.queued).toBe(0);
      for (const s of [a, b, c, fresh]) s.dispose();
    });

    it('a generation in progress is not cut off by the limit', async () => {
      const gens = [0, 1, 2].map((i) => model.createSession({ contextSize: 128 }));
      const settled = await Promise.allSettled(gens.map((s, i) => s.complete(prompt(3, i), { temperature: 0, maxTokens: 12 })));
      // Only the first prompt fits the queue at once; the others fail at their start.
      expect(settled[0]).toMatchObject({ status: 'fulfilled' });
      for (const r of settled.slice(1)) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'ERR_QUEUE_FULL' } });
      // Started one after the other, generations run concurrently to the end: their decode
      // steps are never refused while another prompt waits.
      const results: GenerationResult[] = [];
      const running = [];
      for (let i = 0; i < 3; i++) {
        const s = model.createSession({ contextSize: 128 });
        await s.evaluate(prompt(3, i));
        running.push(s.complete([5 + i], { temperature: 0, maxTokens: 10, contextShift: 'stop' }).then((r) => results.push(r)));
      }
      const newcomer = model.createSession({ contextSize: 128 });
      await newcomer.evaluate(prompt(20, 9));
      await Promise.all(running);
      expect(results).toHaveLength(3);
      for (const r of results) {
        expect(['maxTokens', 'eos']).toContain(r.stopReason);
        if (r.stopReason === 'maxTokens') expect(r.tokens).toHaveLength(10);
      }
      for (const s of [...gens, newcomer]) s.dispose();
    });
  });
});

describe('the native session checks what the TypeScript layer already checked', () => {
  interface Native {
    loadModel(path: string, o: object): Promise<[object, unknown]>;
    modelDispose(m: object): void;
    sessionCreate(m: object, o: object): object;
    sessionEvaluate(s: object, t: Int32Array, all: boolean): Promise<Float32Array>;
    sessionTokens(s: object): Int32Array;
    sessionDispose(s: object): void;
  }
  it('bad token ids and a full context reject with clear codes, alone or in a batch, and change nothing', async () => {
    const native = addon<Native>();
    const [model] = await native.loadModel(STORIES, { threads: 1 });
    const s = native.sessionCreate(model, { contextSize: 16 });
    const t = native.sessionCreate(model, { contextSize: 16 });
    try {
      await expect(native.sessionEvaluate(s, Int32Array.of(1, 512), false)).rejects.toMatchObject({
        code: 'ERR_INVALID_TOKEN',
        message: /tokens\[1\] = 512/,
      });
      await expect(native.sessionEvaluate(s, Int32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17), false)).rejects.toMatchObject({
        code: 'ERR_CONTEXT_FULL',
      });
      // A bad step batched with a good one: the good one runs, the bad one fails alone.
      const [bad, good] = await Promise.allSettled([native.sessionEvaluate(s, Int32Array.of(-3), false), native.sessionEvaluate(t, Int32Array.of(5), false)]);
      expect(bad).toMatchObject({ status: 'rejected', reason: { code: 'ERR_INVALID_TOKEN' } });
      expect(good).toMatchObject({ status: 'fulfilled' });
      expect(Array.from(native.sessionTokens(s))).toEqual([]);
      expect(Array.from(native.sessionTokens(t))).toEqual([5]);
      expect((await native.sessionEvaluate(s, Int32Array.of(1, 2), false)).length).toBe(512);
    } finally {
      native.sessionDispose(s);
      native.sessionDispose(t);
      native.modelDispose(model);
    }
  });
});

describe('the addon surface', () => {
  it('holds no test hooks: they sit on the one internal object', () => {
    const a = addon<Record<string, unknown>>();
    const names = Object.keys(a);
    expect(names.filter((n) => n.startsWith('_'))).toEqual([]);
    for (const n of ['loadModel', 'sessionEvaluate', 'systemInfo', 'setIsa', 'inspectGGUF']) expect(typeof a[n]).toBe('function');
    const internal = a.internal as Record<string, unknown>;
    for (const n of ['_matmul', '_matmulReference', '_benchMatmul', '_dotF32', '_quantize', 'backendOp', 'backends', 'pvF16'])
      expect(typeof internal[n], n).toBe('function');
    // Nothing on the public surface is a test hook under another name.
    for (const n of Object.keys(internal)) expect(names, n).not.toContain(n);
  });
});
