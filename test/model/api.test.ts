/**
 * The model/session API: info, option and token validation, errors that name what is
 * wrong, context-full, busy sessions, dispose in the middle of an evaluate, and the
 * invariants later layers rely on (batching, truncate, state save/restore, KV cache
 * types, thread counts). Numbers come from the real stories260K files or the synthetic
 * models of the parity suite; the oracle for "same result" is the engine's own plain
 * token-by-token path, which the parity suite ties to llama.cpp.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadModel, SparrowError, type Model } from '../../src/index.js';
import { gguf, writeGGUF } from '../../models/gguf-writer.js';
import { syntheticMetadata, syntheticTensors } from '../../models/synthetic.js';
import { PARITY_SHAPES, parityModel } from '../parity/synthetic-models.js';

const STORIES = path.resolve('..', 'shared', 'models', 'stories260K-f32.gguf');
const STORIES_Q8 = path.resolve('..', 'shared', 'models', 'stories260K-q8_0.gguf');
const PROMPT = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426];

async function rejects(p: Promise<unknown> | (() => unknown), code: string, message?: RegExp): Promise<void> {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(SparrowError);
  expect((err as SparrowError).code).toBe(code);
  if (message) expect((err as Error).message).toMatch(message);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

let model: Model;
let tmp: string;
beforeAll(async () => {
  model = await loadModel(STORIES, { threads: 2 });
  tmp = mkdtempSync(path.join(os.tmpdir(), 'sparrow-model-test-'));
});
afterAll(() => {
  model.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

describe('loadModel', () => {
  test('info describes the model', () => {
    expect(model.info).toMatchObject({
      architecture: 'llama',
      name: 'stories260K',
      fileType: 'F32',
      fileTypeId: 0,
      contextLength: 512,
      vocabSize: 512,
      embeddingLength: 64,
      layerCount: 5,
      headCount: 8,
      headCountKv: 4,
      headDim: 8,
      feedForwardLength: 172,
      ropeFreqBase: 10000,
      tiedOutput: false,
      threads: 2,
      batchSize: 512,
    });
    // 48 tensors: embedding + output (2 x 512 x 64), 5 layers, norms.
    const perLayer = 64 * 64 * 2 + 64 * 32 * 2 + 64 * 172 * 3 + 64 * 2;
    expect(model.info.parameterCount).toBe(2 * 512 * 64 + 5 * perLayer + 64);
  });

  test('threads default to the physical cores this process may use', async () => {
    const m = await loadModel(STORIES);
    expect(m.info.threads).toBeGreaterThanOrEqual(1);
    expect(m.info.threads).toBeLessThanOrEqual(os.availableParallelism());
    m.dispose();
  });

  test('bad options are rejected with the option named', async () => {
    await rejects(loadModel(STORIES, { threads: 0 }), 'ERR_INVALID_ARG', /threads/);
    await rejects(loadModel(STORIES, { threads: 1.5 }), 'ERR_INVALID_ARG', /threads/);
    await rejects(loadModel(STORIES, { threads: 257 }), 'ERR_INVALID_ARG', /threads/);
    await rejects(loadModel(STORIES, { threads: '2' as never }), 'ERR_INVALID_ARG', /threads/);
    await rejects(loadModel(STORIES, { batchSize: 0 }), 'ERR_INVALID_ARG', /batchSize/);
    await rejects(loadModel('' as string), 'ERR_INVALID_ARG', /path/);
    await rejects(loadModel(path.join(tmp, 'missing.gguf')), 'ERR_GGUF_IO', /missing\.gguf/);
  });

  test('an unknown architecture is named', async () => {
    const file = path.join(tmp, 'mamba.gguf');
    await writeGGUF(file, { metadata: [['general.architecture', gguf.str('mamba')]], tensors: [] });
    await rejects(loadModel(file), 'ERR_UNSUPPORTED_ARCH', /'mamba'.*llama, qwen2/);
  });

  test('a missing tensor or metadata key is named', async () => {
    const options = { shape: PARITY_SHAPES['llama-mha-hd64']!, mix: 'f32' as const };
    const file = path.join(tmp, 'no-ffn-up.gguf');
    await writeGGUF(file, {
      metadata: syntheticMetadata(options),
      tensors: syntheticTensors(options).filter((t) => t.name !== 'blk.1.ffn_up.weight'),
    });
    await rejects(loadModel(file), 'ERR_MISSING_TENSOR', /blk\.1\.ffn_up\.weight/);

    const file2 = path.join(tmp, 'no-heads.gguf');
    await writeGGUF(file2, {
      metadata: syntheticMetadata(options).filter(([k]) => k !== 'llama.attention.head_count'),
      tensors: syntheticTensors(options),
    });
    await rejects(loadModel(file2), 'ERR_BAD_MODEL', /llama\.attention\.head_count/);
  });
});

describe('sessions', () => {
  test('createSession validates its options', () => {
    expect(() => model.createSession({ contextSize: 0 })).toThrow(/contextSize/);
    expect(() => model.createSession({ contextSize: 513 })).toThrow(/contextSize/);
    expect(() => model.createSession({ kvCacheType: 'q4' as never })).toThrow(/kvCacheType/);
    const s = model.createSession();
    expect(s.contextSize).toBe(512);
    s.dispose();
  });

  test('tokens are validated', async () => {
    const s = model.createSession();
    await rejects(s.evaluate([]), 'ERR_INVALID_ARG', /empty/);
    await rejects(s.evaluate([1, 512]), 'ERR_INVALID_TOKEN', /tokens\[1\] = 512/);
    await rejects(s.evaluate([-1]), 'ERR_INVALID_TOKEN', /tokens\[0\]/);
    await rejects(s.evaluate([1.5]), 'ERR_INVALID_TOKEN', /tokens\[0\]/);
    await rejects(s.evaluate('abc' as never), 'ERR_INVALID_ARG', /tokens/);
    expect(s.nTokens).toBe(0);
    const logits = await s.evaluate(new Uint32Array([1, 403]));
    expect(logits).toBeInstanceOf(Float32Array);
    expect(logits.length).toBe(512);
    expect(s.tokens).toEqual([1, 403]);
    s.dispose();
  });

  test('evaluating past contextSize is ERR_CONTEXT_FULL and changes nothing', async () => {
    const s = model.createSession({ contextSize: 8 });
    await s.evaluate(PROMPT.slice(0, 6));
    await rejects(s.evaluate(PROMPT.slice(6, 9)), 'ERR_CONTEXT_FULL', /contextSize 8/);
    expect(s.tokens).toEqual(PROMPT.slice(0, 6));
    const a = await s.evaluate(PROMPT.slice(6, 8));
    const fresh = model.createSession({ contextSize: 8 });
    const b = await fresh.evaluate(PROMPT.slice(0, 8));
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-2);
    s.dispose();
    fresh.dispose();
  });

  test('allLogits returns every position, equal to token-by-token evaluation', async () => {
    const batch = model.createSession();
    const all = await batch.evaluate(PROMPT, { allLogits: true });
    expect(all.length).toBe(PROMPT.length * 512);
    const step = model.createSession();
    for (let i = 0; i < PROMPT.length; i++) {
      const one = await step.evaluate([PROMPT[i]!]);
      // Batches run attention as GEMMs, single tokens as dot products: only the summation
      // order differs (then amplified a little by the f16 rounding of probabilities).
      expect(maxAbsDiff(one, all.subarray(i * 512, (i + 1) * 512)), `position ${i}`).toBeLessThan(1e-2);
    }
    batch.dispose();
    step.dispose();
  });

  test('truncate keeps a prefix; reset empties', async () => {
    const s = model.createSession();
    await s.evaluate(PROMPT.slice(0, 10));
    s.truncate(4);
    expect(s.tokens).toEqual(PROMPT.slice(0, 4));
    const a = await s.evaluate([432, 383]);
    const fresh = model.createSession();
    const b = await fresh.evaluate([...PROMPT.slice(0, 4), 432, 383]);
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-2);
    expect(() => s.truncate(7)).toThrow(/truncate/);
    s.reset();
    expect(s.nTokens).toBe(0);
    s.dispose();
    fresh.dispose();
  });

  test('shift drops a range and moves the rest down; its arguments are checked', async () => {
    const s = model.createSession();
    await s.evaluate(PROMPT);
    await s.shift(2, 5);
    expect(s.tokens).toEqual([...PROMPT.slice(0, 2), ...PROMPT.slice(7)]);
    expect(s.nTokens).toBe(11);
    for (const [keep, drop] of [[0, 0], [5, 10], [1.5, 1], [-1, 2], [2, Number.NaN]] as const)
      await rejects(s.shift(keep, drop), 'ERR_INVALID_ARG', /shift/);
    await rejects(s.shift('1' as never, 1), 'ERR_INVALID_ARG', /keep/);
    expect(s.nTokens).toBe(11);
    // Dropping the whole tail moves nothing: the same as truncate.
    await s.shift(2, 9);
    expect(s.tokens).toEqual(PROMPT.slice(0, 2));
    const a = await s.evaluate([432, 383]);
    const fresh = model.createSession();
    expect(maxAbsDiff(a, await fresh.evaluate([...PROMPT.slice(0, 2), 432, 383]))).toBeLessThan(1e-2);
    s.dispose();
    fresh.dispose();
    await rejects(s.shift(0, 1), 'ERR_DISPOSED');
  });

  test('save / restore round-trip and are checked against the model', async () => {
    const s = model.createSession();
    await s.evaluate(PROMPT.slice(0, 10));
    const state = s.save();
    const expected = await s.evaluate(PROMPT.slice(10, 12));

    const t = model.createSession({ contextSize: 64 });
    t.restore(state);
    expect(t.tokens).toEqual(PROMPT.slice(0, 10));
    expect(maxAbsDiff(await t.evaluate(PROMPT.slice(10, 12)), expected)).toBe(0);

    const other = await loadModel(STORIES_Q8, { threads: 1 });
    const u = other.createSession();
    expect(() => u.restore(state)).toThrow(expect.objectContaining({ code: 'ERR_STATE_MISMATCH' }));
    expect(() => t.restore(state.subarray(0, state.length - 1))).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_STATE' }),
    );
    expect(() => t.restore(new Uint8Array(10))).toThrow(expect.objectContaining({ code: 'ERR_BAD_STATE' }));
    expect(() => model.createSession({ contextSize: 4 }).restore(state)).toThrow(
      expect.objectContaining({ code: 'ERR_CONTEXT_FULL' }),
    );
    other.dispose();
    s.dispose();
    t.dispose();
  });

  test('a Q8_0 KV cache stays close to F16', async () => {
    const m = await loadModel(await parityModel('llama-mha-hd64', 'f32'), { threads: 2 });
    const tokens = Array.from({ length: 40 }, (_, i) => 3 + ((i * 37) % 500));
    const f16 = m.createSession({ contextSize: 64 });
    const q8 = m.createSession({ contextSize: 64, kvCacheType: 'q8_0' });
    const a = await f16.evaluate(tokens, { allLogits: true });
    const b = await q8.evaluate(tokens, { allLogits: true });
    let sq = 0;
    let ref = 0;
    for (let i = 0; i < a.length; i++) (sq += (a[i]! - b[i]!) ** 2), (ref += a[i]! ** 2);
    expect(Math.sqrt(sq / ref)).toBeLessThan(0.02); // 8-bit keys/values: ~0.4% per element
    expect(Math.sqrt(sq / ref)).toBeGreaterThan(0); // really a different cache
    // Decode steps on the Q8_0 cache agree with its batched result.
    const step = m.createSession({ contextSize: 64, kvCacheType: 'q8_0' });
    await step.evaluate(tokens.slice(0, 39));
    const last = await step.evaluate(tokens.slice(39));
    expect(maxAbsDiff(last, b.subarray(39 * 512, 40 * 512))).toBeLessThan(1e-2);
    // A context shift re-rotates Q8_0 keys too (dequantized, rotated, quantized again):
    // after the same shift the two caches still agree as closely.
    await f16.shift(3, 17);
    await q8.shift(3, 17);
    const after = tokens.slice(0, 8);
    const c = await f16.evaluate(after, { allLogits: true });
    const d = await q8.evaluate(after, { allLogits: true });
    let sq2 = 0;
    let ref2 = 0;
    for (let i = 0; i < c.length; i++) (sq2 += (c[i]! - d[i]!) ** 2), (ref2 += c[i]! ** 2);
    expect(Math.sqrt(sq2 / ref2)).toBeLessThan(0.02);
    // State save/restore carries the cache type.
    const t = m.createSession({ contextSize: 64, kvCacheType: 'q8_0' });
    t.restore(step.save());
    expect(t.tokens).toEqual(tokens);
    expect(() => f16.restore(step.save())).toThrow(expect.objectContaining({ code: 'ERR_STATE_MISMATCH' }));
    m.dispose();
  });

  test('Q8_0 KV rows must split in blocks of 32 (the error names the option); default contextSize', async () => {
    const options = {
      shape: { arch: 'llama' as const, nLayers: 1, nEmbd: 96, nFF: 64, nHead: 2, nHeadKv: 1, nVocab: 400, contextLength: 8192 },
      mix: 'f32' as const,
    };
    const file = path.join(tmp, 'kv48.gguf');
    await writeGGUF(file, { metadata: syntheticMetadata(options), tensors: syntheticTensors(options) });
    const m = await loadModel(file, { threads: 1 });
    expect(() => m.createSession({ kvCacheType: 'q8_0' })).toThrow(/kvCacheType 'q8_0'.*48/);
    expect((await m.createSession().evaluate([1, 2])).length).toBe(400);
    // The default context is the model's own, capped at 4096; more can be asked for.
    expect(m.info.contextLength).toBe(8192);
    expect(m.createSession().contextSize).toBe(4096);
    expect(m.createSession({ contextSize: 8192 }).contextSize).toBe(8192);
    m.dispose();
  });

  test('thread count and batch size do not change the result', async () => {
    const results: Float32Array[] = [];
    for (const [threads, batchSize] of [
      [1, 512],
      [2, 512],
      [2, 3],
    ] as const) {
      const m = await loadModel(STORIES, { threads, batchSize });
      const s = m.createSession();
      results.push(await s.evaluate(PROMPT, { allLogits: true }));
      m.dispose();
    }
    expect(maxAbsDiff(results[0]!, results[1]!)).toBe(0); // same work split differently
    expect(maxAbsDiff(results[0]!, results[2]!)).toBeLessThan(1e-2); // other batches: other summation orders
  });

  test('quantized weights load the same on 1 and 2 threads (the repacking is split by row groups)', async () => {
    // Every repacked type: Q4_0, Q8_0, Q4_K and Q6_K (q4_k_m), Q5_K (q5_k_m), Q6_K; the
    // qwen2 shape has a 768-wide embedding with 800 rows (not a multiple of 16 rows).
    for (const mix of ['q4_0', 'q8_0', 'q4_k_m', 'q5_k_m', 'q6_k'] as const) {
      const file = await parityModel('qwen2-gqa3-hd64', mix);
      const results: Float32Array[] = [];
      for (const threads of [1, 2]) {
        const m = await loadModel(file, { threads });
        results.push(await m.createSession().evaluate([1, 2, 3, 4, 5], { allLogits: true }));
        m.dispose();
      }
      expect(maxAbsDiff(results[0]!, results[1]!), mix).toBe(0);
    }
  });

  test('use after dispose is ERR_DISPOSED; dispose twice is fine', async () => {
    const m = await loadModel(STORIES, { threads: 1 });
    const s = m.createSession();
    {
      using t = m.createSession();
      await t.evaluate([1]);
    }
    s.dispose();
    s.dispose();
    await rejects(s.evaluate([1]), 'ERR_DISPOSED');
    expect(() => s.nTokens).toThrow(/disposed/);
    const s2 = m.createSession();
    m.dispose();
    expect(s2.disposed).toBe(true); // the model disposes its sessions
    expect(() => m.createSession()).toThrow(/disposed/);
  });
});

describe('concurrency', () => {
  let big: Model;
  beforeAll(async () => {
    big = await loadModel(await parityModel('llama-gqa8-hd128', 'f32'), { threads: 2 });
  });
  afterAll(() => big.dispose());
  const long = Array.from({ length: 1500 }, (_, i) => 3 + ((i * 7919) % 690));

  test('a second evaluate on a busy session is ERR_SESSION_BUSY', async () => {
    const s = big.createSession();
    const first = s.evaluate(long.slice(0, 600));
    await rejects(s.evaluate([1]), 'ERR_SESSION_BUSY');
    expect(() => s.reset()).toThrow(expect.objectContaining({ code: 'ERR_SESSION_BUSY' }));
    expect(() => s.truncate(0)).toThrow(expect.objectContaining({ code: 'ERR_SESSION_BUSY' }));
    expect(() => s.save()).toThrow(expect.objectContaining({ code: 'ERR_SESSION_BUSY' }));
    await rejects(s.shift(0, 1), 'ERR_SESSION_BUSY');
    expect(s.nTokens).toBe(0); // not yet appended
    await first;
    expect(s.nTokens).toBe(600);
    s.dispose();
  });

  test('two sessions of one model evaluate concurrently and correctly', async () => {
    const a = big.createSession();
    const b = big.createSession();
    const [la, lb] = await Promise.all([a.evaluate(long.slice(0, 40)), b.evaluate(long.slice(0, 40))]);
    expect(maxAbsDiff(la, lb)).toBe(0);
    a.dispose();
    b.dispose();
  });

  test('disposing a session or its model mid-evaluate rejects with ERR_DISPOSED, safely', async () => {
    const s = big.createSession();
    const p = s.evaluate(long); // queued on a worker thread: certainly still running
    s.dispose();
    await rejects(p, 'ERR_DISPOSED');

    const m = await loadModel(await parityModel('llama-gqa8-hd128', 'f32'), { threads: 2 });
    const t = m.createSession();
    const q = t.evaluate(long);
    m.dispose();
    await rejects(q, 'ERR_DISPOSED');
    // The shared model still works after all that.
    const u = big.createSession();
    expect((await u.evaluate([1, 2, 3])).length).toBe(700);
    u.dispose();
  });
});
