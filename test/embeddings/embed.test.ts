/**
 * model.embed() against llama.cpp (node-llama-cpp 3.21.1): its embedding context returns,
 * for a model without a pooling type (stories260K), the last token's final hidden state
 * after the output norm; ours with pooling 'last' and no normalization must be the same
 * vector (its embedding contexts compute attention with flash-attention numerics, so ours
 * does too here). Mean and CLS pooling and normalization are checked against the per-token rows.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getLlama, type Llama } from 'node-llama-cpp';
import { loadModel, type Model } from '../../src/index.js';

const shared = path.resolve(__dirname, '../../../shared');
const F32 = path.join(shared, 'models/stories260K-f32.gguf');
const TEXTS = ['Once upon a time, there was a little girl named Lily.', 'The cat sat on the mat.', 'Tom and Sue went to the park to play.'];

let llama: Llama;
let model: Model;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, logLevel: 'error' as never });
  model = await loadModel(F32, { threads: 2 });
});
afterAll(async () => {
  model?.dispose();
  await Promise.race([llama?.dispose(), new Promise((r) => setTimeout(r, 10_000))]);
});

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

describe('model.embed', () => {
  it("'last' pooling without normalization equals llama.cpp's embedding of the text", async () => {
    const m = await llama.loadModel({ modelPath: F32 });
    try {
      const ctx = await m.createEmbeddingContext({ contextSize: 128, threads: 2 });
      const ours = await model.embed(TEXTS, { pooling: 'last', normalize: false, flashAttention: true });
      for (let i = 0; i < TEXTS.length; i++) {
        const ref = (await ctx.getEmbeddingFor(TEXTS[i]!)).vector;
        expect(ours[i]!.length).toBe(model.info.embeddingLength);
        expect(ref.length).toBe(model.info.embeddingLength);
        let diff = 0;
        for (let j = 0; j < ref.length; j++) diff = Math.max(diff, Math.abs(ours[i]![j]! - ref[j]!));
        console.log(`text ${i}: max |ours - llama.cpp| = ${diff.toExponential(2)} (norm ${norm(ref).toFixed(3)})`);
        // F32 weights: the two differ by float summation order only (measured ~7e-6 of the norm).
        expect(diff).toBeLessThan(5e-5 * norm(ref));
      }
      await ctx.dispose();
    } finally {
      await m.dispose();
    }
  });

  it('mean and cls pooling and normalization follow the per-token hidden states', async () => {
    const text = TEXTS[0]!;
    const ids = model.tokenizer.tokenize(text);
    const session = model.createSession({ contextSize: 64, embeddings: true });
    const rows = await session.evaluate(ids, { allLogits: true });
    session.dispose();
    const D = model.info.embeddingLength;
    expect(rows.length).toBe(ids.length * D);
    const [mean] = await model.embed([text], { pooling: 'mean', normalize: false });
    const [cls] = await model.embed([text], { pooling: 'cls', normalize: false });
    const [unit] = await model.embed([text]);
    for (let j = 0; j < D; j++) {
      let s = 0;
      for (let t = 0; t < ids.length; t++) s += rows[t * D + j]!;
      expect(mean![j]).toBeCloseTo(s / ids.length, 5);
      expect(cls![j]).toBe(rows[j]);
      expect(unit![j]).toBeCloseTo(mean![j]! / norm(mean!), 6);
    }
    expect(norm(unit!)).toBeCloseTo(1, 6);
  });

  it('is the same alone, in a batch of texts, and beside a generating session', async () => {
    const alone = await Promise.all(TEXTS.map(async (t) => (await model.embed([t]))[0]!));
    const gen = model.createSession({ contextSize: 128 });
    const [together] = await Promise.all([model.embed(TEXTS), gen.complete('Once upon a time', { maxTokens: 16 })]);
    gen.dispose();
    for (let i = 0; i < TEXTS.length; i++) expect(Array.from(together[i]!)).toEqual(Array.from(alone[i]!));
  });

  it('decode steps of an embeddings session batched with a generating one give its rows', async () => {
    const ids = model.tokenizer.tokenize(TEXTS[1]!);
    const a = model.createSession({ contextSize: 64, embeddings: true });
    const b = model.createSession({ contextSize: 64 });
    await a.evaluate(ids.slice(0, -1));
    await b.evaluate(ids.slice(0, -1));
    const before = model.stats.batchedSteps;
    const [ea, lb] = await Promise.all([a.evaluate([ids.at(-1)!]), b.evaluate([ids.at(-1)!])]);
    expect(model.stats.batchedSteps).toBe(before + 1);
    expect(ea.length).toBe(model.info.embeddingLength);
    expect(lb.length).toBe(model.info.vocabSize);
    const ref = await model.embed([TEXTS[1]!], { pooling: 'last', normalize: false });
    expect(Array.from(ea)).toEqual(Array.from(ref[0]!));
    a.dispose();
    b.dispose();
  });

  it('refuses bad input with clear errors', async () => {
    await expect(model.embed('text' as never)).rejects.toThrow(/texts must be an array/);
    await expect(model.embed([42 as never])).rejects.toThrow(/texts\[0\] must be a string/);
    await expect(model.embed(['x'], { pooling: 'max' as never })).rejects.toThrow(/pooling must be/);
    await expect(model.embed(['x'], { normalize: 'yes' as never })).rejects.toThrow(/normalize must be a boolean/);
    await expect(model.embed(['x'.repeat(5000)])).rejects.toThrow(/context length/);
    await expect(model.embed(['x'], { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(() => model.createSession({ embeddings: 'yes' as never })).toThrow(/embeddings must be a boolean/);
    const s = model.createSession({ embeddings: true });
    expect(() => s.generate('hi')).toThrow(/cannot generate/);
    s.dispose();
    expect(await model.embed([])).toEqual([]);
  });
});
