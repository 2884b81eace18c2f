// Activation sparsity end to end through the public API (loadModel({ sparsity }),
// createSession({ sparsity })): the channel-major matrices skip the weight bytes of the
// input channels the forward pass zeroed, and the kernels' own byte counts show the
// skipped fraction following the level; at level 0 a session on the channel-major model
// computes the dense model's logits bit for bit.
import { describe, expect, it } from 'vitest';
import { syntheticModel } from '../../models/cache.js';
import type { MixName } from '../../models/synthetic.js';
import { loadModel, type Model } from '../../src/index.js';
import { rng } from '../kernels/helpers.js';

// Bytes of scales (and mins) per 128-row group and block against the whole group block
// (sparse/layout.h): always read, so a level L skips at most L x (1 - this).
const HEAD_SHARE = {
  q8_0: 256 / 4352, q4_0: 256 / 2304, q5_0: 256 / 2816, q4_1: 512 / 2560, q4_k_m: 2560 / 18944, q5_k_m: 2560 / 23040,
} as const;

function bits(a: Float32Array) {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

async function decode(model: Model, sparsity: number, prompt: number[], steps: number[]) {
  const s = model.createSession({ contextSize: 128, sparsity });
  try {
    const out: Float32Array[] = [await s.evaluate(prompt)];
    const before = model.stats;
    for (const t of steps) out.push(await s.evaluate([t]));
    const after = model.stats;
    const read = (after.sparseBytesRead ?? 0) - (before.sparseBytesRead ?? 0);
    const dense = (after.sparseBytesDense ?? 0) - (before.sparseBytesDense ?? 0);
    return { out, skipped: dense > 0 ? 1 - read / dense : NaN, dense };
  } finally {
    s.dispose();
  }
}

describe('activation sparsity end to end', () => {
  for (const [shape, mix] of [
    ['tiny-qwen2', 'q4_0'],
    ['tiny-qwen2', 'q5_0'],
    ['tiny-qwen2', 'q4_1'], // Q8A1 activations
    ['tiny-gqa4-hd128', 'q8_0'],
    ['tiny-gqa4-hd128', 'q4_k_m'], // Q4_K and Q6_K
    ['tiny-gqa4-hd128', 'q5_k_m'], // Q5_K and Q6_K
  ] as [string, MixName & keyof typeof HEAD_SHARE][])
    it(`${shape} ${mix}: the skipped byte fraction follows the level; level 0 is the dense model`, async () => {
      const file = await syntheticModel(shape, mix);
      const dense = await loadModel(file, { threads: 2 });
      const sparse = await loadModel(file, { threads: 2, sparsity: 0.5 });
      try {
        expect(dense.stats.sparseBytesDense).toBeUndefined();
        const r = rng(3);
        const vocab = dense.info.vocabSize;
        const prompt = Array.from({ length: 12 }, () => Math.floor(r() * vocab));
        const steps = Array.from({ length: 6 }, () => Math.floor(r() * vocab));
        const d0 = await decode(dense, 0, prompt, steps);
        const s0 = await decode(sparse, 0, prompt, steps);
        for (let i = 0; i < d0.out.length; i++) expect(bits(s0.out[i]!), `step ${i}`).toEqual(bits(d0.out[i]!));
        expect(s0.dense).toBeGreaterThan(0);
        const natural = s0.skipped; // channels whose activations quantize to 0 by themselves
        expect(natural).toBeGreaterThanOrEqual(0);
        expect(natural).toBeLessThan(0.1);
        let last = natural;
        for (const level of [0.25, 0.5, 0.75]) {
          const { skipped } = await decode(sparse, level, prompt, steps);
          // the zeroed channels' bytes (all but the scales), plus at most the natural zeros
          expect(skipped, `level ${level}`).toBeGreaterThanOrEqual(level * (1 - HEAD_SHARE[mix]) - 0.02);
          expect(skipped, `level ${level}`).toBeLessThanOrEqual(level + natural + 0.02);
          expect(skipped).toBeGreaterThan(last);
          last = skipped;
        }
      } finally {
        dense.dispose();
        sparse.dispose();
      }
    }, 120_000);
});
