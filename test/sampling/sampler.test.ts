import { describe, expect, it } from 'vitest';
import { SparrowError } from '../../src/errors.js';
import { Sampler, type SamplerOptions } from '../../src/sampling/sampler.js';
import { Xoshiro128 } from '../../src/sampling/prng.js';
import { randomLogits, referenceDistribution, type RefOptions } from './reference.js';

/** Runs the real chain's `distribution` on a copy of the logits. */
function realDistribution(logits: Float32Array, history: number[], o: SamplerOptions): Map<number, number> {
  const s = new Sampler(logits.length, { seed: 1, ...o });
  const { ids, probs } = s.distribution(Float32Array.from(logits), history);
  return new Map(ids.map((id, i) => [id, probs[i]]));
}

function expectSameDistribution(real: Map<number, number>, ref: Map<number, number>): void {
  expect([...real.keys()].sort((a, b) => a - b)).toEqual([...ref.keys()].sort((a, b) => a - b));
  for (const [id, p] of ref) expect(real.get(id)!).toBeCloseTo(p, 9);
}

// Chains that exercise each sampler alone and together.
const chains: Array<[string, RefOptions]> = [
  ['temperature only (full vocabulary)', { temperature: 0.7, topK: 0, topP: 1 }],
  ['topK', { temperature: 1, topK: 10, topP: 1 }],
  ['topP', { temperature: 1, topK: 0, topP: 0.8 }],
  ['minP', { temperature: 1, topK: 0, topP: 1, minP: 0.1 }],
  ['typicalP', { temperature: 1, topK: 0, topP: 1, typicalP: 0.7 }],
  ['node-llama-cpp defaults (topK 40, topP 0.95)', { temperature: 0.8 }],
  ['all truncations', { temperature: 1.3, topK: 50, topP: 0.9, minP: 0.02, typicalP: 0.95 }],
  ['typical then topP without topK', { temperature: 0.9, topK: 0, topP: 0.7, typicalP: 0.8 }],
  ['penalties', { temperature: 1, topK: 0, topP: 1, repeatPenalty: 1.3, lastN: 8, frequencyPenalty: 0.2, presencePenalty: 0.5 }],
  ['logitBias', { temperature: 1, topK: 0, topP: 1, logitBias: { 3: 2.5, 7: -Infinity, 11: -1 } }],
  ['greedy with penalty and bias', { temperature: 0, repeatPenalty: 5, lastN: 3, logitBias: { 0: 0.25 } }],
];

describe('sampler chain vs the naive reference', () => {
  const history = [3, 5, 5, 7, 9, 3, 3, 12, 40, 41];
  for (const n of [64, 3000]) {
    for (const [name, o] of chains) {
      it(`${name}, vocabulary ${n}`, () => {
        for (const seed of [1, 2, 3]) {
          const logits = randomLogits(n, seed * 7919 + n, 2.5);
          expectSameDistribution(realDistribution(logits, history, o), referenceDistribution(logits, history, o));
        }
      });
    }
  }

  it('152k vocabulary: partial selection and the growing top-p search match full sorts', () => {
    const n = 152_064;
    for (const [scale, o] of [
      [4, { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 }],
      [6, { temperature: 1, topK: 0, topP: 0.9 }],  // peaked: top-p stops in the first selection
      [0.7, { temperature: 1, topK: 0, topP: 0.5 }],  // flat: top-p needs tens of thousands of tokens
      [3, { temperature: 1, topK: 0, topP: 1, minP: 0.2 }],
      [3, { temperature: 1, topK: 0, topP: 1, typicalP: 0.5 }],
    ] as Array<[number, RefOptions]>) {
      const logits = randomLogits(n, 99, scale);
      expectSameDistribution(realDistribution(logits, [], o), referenceDistribution(logits, [], o));
    }
  });

  it('ties: equal logits keep the smaller ids first, like a stable sort', () => {
    const logits = new Float32Array(100).fill(1);
    logits[50] = 2;
    const o: RefOptions = { temperature: 1, topK: 5, topP: 1 };
    expectSameDistribution(realDistribution(logits, [], o), referenceDistribution(logits, [], o));
    expect([...realDistribution(logits, [], o).keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 50]);
  });
});

/** Empirical frequencies of `draws` samples vs the reference probabilities, within 5 binomial sigmas. */
function checkFrequencies(logits: Float32Array, history: number[], o: RefOptions, seed: number, draws: number): void {
  const ref = referenceDistribution(logits, history, o);
  const s = new Sampler(logits.length, { ...o, seed });
  const counts = new Map<number, number>();
  const buf = new Float32Array(logits.length);
  for (let i = 0; i < draws; i++) {
    buf.set(logits);
    const t = s.sample(buf, history);
    counts.set(t, (counts.get(t) ?? 0) + 1);
  }
  for (const id of counts.keys()) expect(ref.has(id), `token ${id} is outside the reference support`).toBe(true);
  let chi2 = 0;
  let dof = -1;
  for (const [id, p] of ref) {
    const c = counts.get(id) ?? 0;
    if (p === 0) {
      expect(c, `banned token ${id} was drawn`).toBe(0);
      continue;
    }
    dof++;
    const sd = Math.sqrt(draws * p * (1 - p));
    expect(Math.abs(c - draws * p), `token ${id}: ${c} draws, expected ${(draws * p).toFixed(1)}`).toBeLessThanOrEqual(5 * sd + 1);
    chi2 += (c - draws * p) ** 2 / (draws * p);
  }
  // Chi-square with k-1 degrees of freedom: mean k-1, sd sqrt(2(k-1)); allow 6 sd.
  expect(chi2).toBeLessThan(dof + 6 * Math.sqrt(2 * dof) + 10);
}

describe('sampled frequencies follow the distribution (fixed seeds)', () => {
  const logits = randomLogits(30, 5, 1.5);
  const history = [1, 2, 2, 4];
  for (const [name, o] of chains.filter(([, c]) => c.temperature > 0)) {
    it(name, () => checkFrequencies(logits, history, o, 12345, 20_000));
  }
});

describe('seeds', () => {
  const logits = randomLogits(500, 17, 1);
  const run = (seed: number) => {
    const s = new Sampler(500, { temperature: 1, topK: 0, topP: 1, seed });
    return Array.from({ length: 200 }, () => s.sample(Float32Array.from(logits)));
  };
  it('the same seed gives the same tokens; another seed gives others', () => {
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
  });
  it('xoshiro128** is uniform: 16 buckets, chi-square', () => {
    const g = new Xoshiro128(2024);
    const b = new Array(16).fill(0);
    const N = 160_000;
    for (let i = 0; i < N; i++) {
      const u = g.next();
      expect(u >= 0 && u < 1).toBe(true);
      b[Math.floor(u * 16)]++;
    }
    const chi2 = b.reduce((a, c) => a + (c - N / 16) ** 2 / (N / 16), 0);
    expect(chi2).toBeLessThan(50);  // 15 dof: p < 1e-5 above 50
  });
  it('large seeds are distinct from their low 32 bits', () => {
    const a = new Xoshiro128(2 ** 40 + 5).nextU32();
    const b = new Xoshiro128(5).nextU32();
    expect(a).not.toBe(b);
  });
});

describe('logit processors', () => {
  it('run first, see the history, and can ban tokens', () => {
    const seen: number[][] = [];
    const ban = (l: Float32Array, h: readonly number[]) => {
      seen.push([...h]);
      l[0] = -Infinity;
    };
    const logits = new Float32Array(10);
    logits[0] = 100;
    const s = new Sampler(10, { temperature: 0, logitProcessors: [ban] });
    expect(s.sample(Float32Array.from(logits), [4, 5])).not.toBe(0);
    expect(seen).toEqual([[4, 5]]);
  });
  it('every token banned is a clear error', () => {
    const s = new Sampler(4, { temperature: 1, logitBias: { 0: -Infinity, 1: -Infinity, 2: -Infinity, 3: -Infinity } });
    expect(() => s.sample(new Float32Array(4))).toThrow(/every token is excluded/);
  });
});

describe('option validation names the option', () => {
  const bad: Array<[SamplerOptions, string]> = [
    [{ temperature: -1 }, 'temperature'],
    [{ temperature: NaN }, 'temperature'],
    [{ topK: 1.5 }, 'topK'],
    [{ topK: -1 }, 'topK'],
    [{ topP: 1.5 }, 'topP'],
    [{ minP: -0.1 }, 'minP'],
    [{ typicalP: 2 }, 'typicalP'],
    [{ repeatPenalty: 0 }, 'repeatPenalty'],
    [{ lastN: -3 }, 'lastN'],
    [{ frequencyPenalty: Infinity }, 'frequencyPenalty'],
    [{ presencePenalty: 'x' as unknown as number }, 'presencePenalty'],
    [{ logitBias: { 1000: 1 } }, 'logitBias'],
    [{ logitBias: { 1: NaN } }, 'logitBias'],
    [{ logitBias: [1, 2] as unknown as Record<number, number> }, 'logitBias'],
    [{ seed: -1 }, 'seed'],
    [{ seed: 1.5 }, 'seed'],
    [{ logitProcessors: [1] as unknown as [] }, 'logitProcessors'],
  ];
  for (const [o, name] of bad) {
    it(`${name}: ${JSON.stringify(o)}`, () => {
      let err: unknown;
      try {
        new Sampler(100, o);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SparrowError);
      expect((err as SparrowError).code).toBe('ERR_INVALID_ARG');
      expect((err as Error).message).toContain(name);
    });
  }
  it('logits of the wrong size', () => {
    expect(() => new Sampler(10).sample(new Float32Array(5))).toThrow(/logits/);
  });
});
