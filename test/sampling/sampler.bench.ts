// Cost of one sampling step on a 152k vocabulary (Qwen2.5's 151,936 entries).
// Run: npx vitest bench --run test/sampling
import { bench, describe } from 'vitest';
import { Sampler, type SamplerOptions } from '../../src/sampling/sampler.js';
import { randomLogits } from './reference.js';

const n = 151_936;
const logits = randomLogits(n, 7, 3);
const buf = new Float32Array(n);
const history = Array.from({ length: 256 }, (_, i) => (i * 7919) % n);

const cases: Array<[string, SamplerOptions]> = [
  ['greedy', { temperature: 0 }],
  ['node-llama-cpp defaults: temp 0.8, topK 40, topP 0.95', { temperature: 0.8 }],
  ['llama.cpp defaults: + minP 0.05, repeatPenalty 1.1', { temperature: 0.8, minP: 0.05, repeatPenalty: 1.1 }],
  ['temperature only (full vocabulary draw)', { temperature: 0.8, topK: 0, topP: 1 }],
  ['minP 0.05 without topK', { temperature: 0.8, topK: 0, topP: 1, minP: 0.05 }],
  ['topP 0.95 without topK', { temperature: 0.8, topK: 0, topP: 0.95 }],
  ['typicalP 0.9 without topK', { temperature: 0.8, topK: 0, topP: 1, typicalP: 0.9 }],
];

describe('sampling step, 152k vocabulary', () => {
  for (const [name, o] of cases) {
    const s = new Sampler(n, { seed: 1, ...o });
    bench(name, () => {
      buf.set(logits);
      s.sample(buf, history);
    });
  }
  // Trained models are far more peaked than N(0, 3) logits: top-p then stops in the first selection.
  const peaked = randomLogits(n, 7, 8);
  const sp = new Sampler(n, { seed: 1, temperature: 0.8, topK: 0, topP: 0.95 });
  bench('topP 0.95 without topK, peaked logits (N(0, 8))', () => {
    buf.set(peaked);
    sp.sample(buf, history);
  });
  bench('copy of the logits alone (baseline)', () => {
    buf.set(logits);
  });
});
