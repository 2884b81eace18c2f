/**
 * The lifetime parts of the model/session API, through the public API: load progress and
 * abort, abort during prompt evaluation, async dispose that waits for the job in flight,
 * save()/restore() and model.applyChatTemplate. Timing bounds are generous (a shared
 * 2-core machine runs other test files at the same time): they only catch an abort that
 * does not stop the work at all.
 */
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { applyChatTemplate, loadModel, SparrowError, type Model } from '../../src/index.js';
import { syntheticModel } from '../../models/cache.js';

const STORIES = path.resolve('..', 'shared', 'models', 'stories260K-f32.gguf');

async function caught(p: Promise<unknown>): Promise<SparrowError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SparrowError);
    return e as SparrowError;
  }
  throw new Error('expected a rejection');
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const rssMB = () => {
  gc();
  return process.memoryUsage().rss / 2 ** 20;
};

describe('loadModel: onProgress and signal', () => {
  test('progress goes up to exactly 1, before the promise resolves', async () => {
    const seen: number[] = [];
    const m = await loadModel(STORIES, { onProgress: (f) => seen.push(f) });
    // A 1 MB model loads in a few ms: the native steps may all come too late to count.
    expect(seen.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
    expect(seen[0]!).toBeGreaterThanOrEqual(0);
    expect(seen.at(-1)).toBe(1);
    m.dispose();
  });

  test('a 1B-class model reports many steps, increasing, ending at 1', async () => {
    const file = await syntheticModel('llama-3.2-1b', 'q4_0');
    const seen: number[] = [];
    const m = await loadModel(file, { onProgress: (f) => seen.push(f) });
    expect(seen.length).toBeGreaterThan(20);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThan(seen[i - 1]!);
    expect(seen.filter((f) => f < 0.9).length).toBeGreaterThan(10); // from the native load, tensor by tensor
    expect(seen.at(-1)).toBe(1);
    m.dispose();
  });

  test('bad options are named', async () => {
    const bad = await caught(loadModel(STORIES, { onProgress: 'yes' as never }));
    expect(bad.code).toBe('ERR_INVALID_ARG');
    expect(bad.message).toMatch(/onProgress must be a function/);
    const badSignal = await caught(loadModel(STORIES, { signal: {} as never }));
    expect(badSignal.code).toBe('ERR_INVALID_ARG');
    expect(badSignal.message).toMatch(/signal must be an AbortSignal/);
  });

  test('an already-aborted signal rejects at once', async () => {
    const t0 = performance.now();
    const e = await caught(loadModel(STORIES, { signal: AbortSignal.abort() }));
    expect(e.code).toBe('ERR_ABORTED');
    expect(performance.now() - t0).toBeLessThan(100);
  });

  test('a throwing onProgress fails the load with its error', async () => {
    await expect(
      loadModel(STORIES, {
        onProgress: () => {
          throw new Error('progress bar broke');
        },
      }),
    ).rejects.toThrow('progress bar broke');
  });

  test('abort during the weights stops the load, frees its memory and leaves the process healthy', async () => {
    const file = await syntheticModel('llama-3.2-1b', 'q4_0');
    // A full load, for the time and memory it takes.
    const base = rssMB();
    let t0 = performance.now();
    const full = await loadModel(file);
    const fullMs = performance.now() - t0;
    const loadedMB = rssMB() - base;
    full.dispose();

    for (let round = 0; round < 3; round++) {
      const ctl = new AbortController();
      let last = 0;
      t0 = performance.now();
      const e = await caught(
        loadModel(file, {
          signal: ctl.signal,
          onProgress: (f) => {
            last = f;
            if (f >= 0.2) ctl.abort();
          },
        }),
      );
      const abortedMs = performance.now() - t0;
      expect(e.code).toBe('ERR_ABORTED');
      expect(e.message).toMatch(/loadModel was aborted/);
      expect(last).toBeLessThan(0.9); // stopped in the weights
      await new Promise((r) => setTimeout(r, 20));
      const after = rssMB() - base;
      console.log(`abort at 20%: ${abortedMs.toFixed(0)} ms (full load ${fullMs.toFixed(0)} ms); RSS +${after.toFixed(0)} MB (loaded +${loadedMB.toFixed(0)} MB)`);
      expect(abortedMs).toBeLessThan(fullMs * 0.9 + 200);
      expect(after).toBeLessThan(Math.max(loadedMB / 3, 80));
    }
    // The process is healthy: the same file loads and runs.
    const m = await loadModel(file);
    const s = m.createSession({ contextSize: 64 });
    const r = await s.complete('Hello', { maxTokens: 2, temperature: 0 });
    expect(r.tokens.length).toBe(2);
    m.dispose();
  });

  test('abort while the tokenizer is being built rejects too, and frees the model', async () => {
    const file = await syntheticModel('llama-3.2-1b', 'q4_0');
    const ctl = new AbortController();
    let last = 0;
    const e = await caught(
      loadModel(file, {
        signal: ctl.signal,
        onProgress: (f) => {
          last = f;
          if (f >= 0.9) ctl.abort();
        },
      }),
    );
    expect(e.code).toBe('ERR_ABORTED');
    expect(last).toBeGreaterThanOrEqual(0.9);
    expect(last).toBeLessThan(1);
  });
});

describe('abort during prompt evaluation', () => {
  let model: Model;
  let prompt: number[];
  beforeAll(async () => {
    model = await loadModel(await syntheticModel('smollm-135m', 'q4_0'), { batchSize: 64 });
    prompt = Array.from({ length: 480 }, (_, i) => 100 + ((i * 7919) % 20000));
  });
  afterAll(() => model.dispose());

  test('evaluate({ signal }) stops early, rejects ERR_ABORTED and leaves the session unchanged', async () => {
    const ref = model.createSession({ contextSize: 512 });
    await ref.evaluate([1, 2, 3]);
    let t0 = performance.now();
    const expected = await ref.evaluate(prompt);
    const fullMs = performance.now() - t0;
    ref.dispose();

    const s = model.createSession({ contextSize: 512 });
    await s.evaluate([1, 2, 3]);
    const ctl = new AbortController();
    t0 = performance.now();
    setTimeout(() => ctl.abort(), fullMs / 10);
    const e = await caught(s.evaluate(prompt, { signal: ctl.signal }));
    const abortedMs = performance.now() - t0;
    console.log(`prompt of ${prompt.length} tokens: full ${fullMs.toFixed(0)} ms, aborted after ${abortedMs.toFixed(0)} ms`);
    expect(e.code).toBe('ERR_ABORTED');
    expect(abortedMs).toBeLessThan(fullMs * 0.7 + 50);
    expect(s.tokens).toEqual([1, 2, 3]);
    // The session is consistent: the same prompt now gives the same logits as on the reference.
    const again = await s.evaluate(prompt);
    expect(s.nTokens).toBe(3 + prompt.length);
    let diff = 0;
    for (let i = 0; i < again.length; i++) diff = Math.max(diff, Math.abs(again[i]! - expected[i]!));
    expect(diff).toBeLessThan(1e-3);
    // An already-aborted signal rejects before any work; a signal that fires after the end changes nothing.
    expect((await caught(s.evaluate([5], { signal: AbortSignal.abort() }))).code).toBe('ERR_ABORTED');
    const late = new AbortController();
    await s.evaluate([5], { signal: late.signal });
    late.abort();
    expect(s.nTokens).toBe(4 + prompt.length);
    expect((await caught(s.evaluate([5], { signal: 'x' as never }))).code).toBe('ERR_INVALID_ARG');
    s.dispose();
  });

  test("generate's signal stops a long prompt evaluation: stopReason 'abort', nothing of the prompt cached", async () => {
    const s = model.createSession({ contextSize: 512 });
    let t0 = performance.now();
    await s.complete(prompt, { maxTokens: 1, temperature: 0 });
    const fullMs = performance.now() - t0;
    s.reset();

    const ctl = new AbortController();
    t0 = performance.now();
    setTimeout(() => ctl.abort(), fullMs / 10);
    const r = await s.complete(prompt, { maxTokens: 1, temperature: 0, signal: ctl.signal });
    const abortedMs = performance.now() - t0;
    console.log(`generate: full ${fullMs.toFixed(0)} ms, aborted after ${abortedMs.toFixed(0)} ms`);
    expect(r.stopReason).toBe('abort');
    expect(r.tokens).toEqual([]);
    expect(abortedMs).toBeLessThan(fullMs * 0.7 + 50);
    expect(s.tokens).toEqual([]);
    // And it generates normally afterwards.
    const next = await s.complete(prompt.slice(0, 8), { maxTokens: 2, temperature: 0 });
    expect(next.stopReason).toBe('maxTokens');
    expect(s.nTokens).toBe(10);
    s.dispose();
  });
});

describe('async dispose', () => {
  test('session[Symbol.asyncDispose] waits for the evaluate in flight', async () => {
    const m = await loadModel(await syntheticModel('smollm-135m', 'q4_0'));
    const s = m.createSession({ contextSize: 512 });
    const evaluation = s.evaluate(Array.from({ length: 256 }, (_, i) => 10 + i));
    const job = evaluation.then(
      () => 'resolved',
      (e: SparrowError) => e.code,
    );
    await new Promise((r) => setTimeout(r, 5));
    await s[Symbol.asyncDispose]();
    // Settled already: its reaction runs before that of a promise made now.
    const PENDING = Symbol('pending');
    const state = await Promise.race([evaluation, Promise.resolve(PENDING)]).then(
      (v) => (v === PENDING ? 'pending' : 'settled'),
      () => 'settled',
    );
    expect(state).toBe('settled');
    expect(await job).toBe('ERR_DISPOSED');
    expect(s.disposed).toBe(true);
    await s[Symbol.asyncDispose](); // twice is fine
    m.dispose();
  });

  test('model[Symbol.asyncDispose] disposes its sessions and waits for their jobs', async () => {
    const m = await loadModel(await syntheticModel('smollm-135m', 'q4_0'));
    const a = m.createSession({ contextSize: 512 });
    const b = m.createSession({ contextSize: 512 });
    const states: string[] = [];
    const jobs = [a, b].map((s) =>
      s.evaluate(Array.from({ length: 200 }, (_, i) => 10 + i)).then(
        () => states.push('resolved'),
        (e: SparrowError) => states.push(e.code),
      ),
    );
    await new Promise((r) => setTimeout(r, 5));
    await m[Symbol.asyncDispose]();
    expect(states).toHaveLength(2);
    expect(states.every((x) => x === 'ERR_DISPOSED')).toBe(true);
    expect(m.disposed && a.disposed && b.disposed).toBe(true);
    await Promise.all(jobs);
    // Symbol.dispose and dispose() stay.
    const m2 = await loadModel(STORIES);
    m2[Symbol.dispose]();
    expect(m2.disposed).toBe(true);
  });
});

describe('save / restore and applyChatTemplate', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(STORIES);
  });
  afterAll(() => model.dispose());

  test('save() / restore(state) are the names (no saveState / restoreState)', async () => {
    const s = model.createSession();
    await s.evaluate([1, 403, 407]);
    const state = s.save();
    expect(state).toBeInstanceOf(Uint8Array);
    const t = model.createSession();
    t.restore(state);
    expect(t.tokens).toEqual([1, 403, 407]);
    expect('saveState' in s).toBe(false);
    expect('restoreState' in s).toBe(false);
    expect(() => t.restore('x' as never)).toThrow(/restore: state must be a Uint8Array/);
    s.dispose();
    t.dispose();
  });

  test('model.applyChatTemplate equals applyChatTemplate(model.tokenizer, ...)', () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello!' },
    ];
    for (const addGenerationPrompt of [true, false]) {
      expect(model.applyChatTemplate(messages, { addGenerationPrompt })).toBe(
        applyChatTemplate(model.tokenizer, messages, { addGenerationPrompt }),
      );
    }
    expect(model.applyChatTemplate(messages)).toBe(applyChatTemplate(model.tokenizer, messages));
    expect(model.applyChatTemplate(messages, { format: 'llama3' })).toBe(
      applyChatTemplate(model.tokenizer, messages, { format: 'llama3' }),
    );
    expect(() => model.applyChatTemplate(messages, { addGenerationPrompt: 'yes' as never })).toThrow(/addGenerationPrompt/);
  });
});
