// A model loaded with ModelOptions::sparsity > 0 stores its layer projections channel-major
// (SparseMatrix) where the type allows: with no activation masked, its logits must be
// bit-identical to the dense model's, for a prompt (the n > 8 route through the dense
// kernel), for decode steps alone (n = 1) and batched (n = 2), on 1 and 2 threads; the
// model counts the weight bytes its sparse matrices read.
import { describe, expect, it } from 'vitest';
import { syntheticModel } from '../../models/cache.js';
import type { MixName } from '../../models/synthetic.js';
import { k, rng } from '../kernels/helpers.js';

interface Run {
  logits: Float32Array;
  batched: Float32Array;
  promptRead: number;
  promptDense: number;
  decodeRead: number;
  decodeDense: number;
}
interface Hooks {
  _sparseModelRun(path: string, sparsity: number, threads: number, prompt: Int32Array, decode: Int32Array): Run;
}
const h = () => k() as unknown as Hooks;

function bits(a: Float32Array) {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

// [shape, mix, whether its layer projections have a sparse layout]
const CASES: [string, MixName, boolean][] = [
  ['tiny-gqa4-hd128', 'q8_0', true],
  ['tiny-qwen2', 'q4_0', true],
  ['tiny-phi3', 'q4_0', true], // fused QKV and gate/up tensors, split into row ranges
  ['tiny-gqa3', 'q4_k_m', true], // dims not multiples of 256: mostly Q5_0 beside Q8_0/Q4_K/Q6_K
  ['tiny-qwen2', 'q5_0', true],
  ['tiny-qwen2', 'q4_1', true], // Q8A1 activations
  ['tiny-qwen2', 'q5_1', true],
  ['tiny-qwen2', 'iq4_nl', true],
  ['tiny-qwen2', 'mxfp4', true],
  ['tiny-gqa4-hd128', 'q4_k_m', true], // Q4_K and Q6_K
  ['tiny-gqa4-hd128', 'q5_k_m', true], // Q5_K and Q6_K
  ['tiny-qwen2-576', 'q6_k', true],
  ['tiny-mixtral', 'q4_k_m', true], // experts stay dense; attention is channel-major
];

describe('a model with channel-major layer matrices', () => {
  for (const [shape, mix, sparse] of CASES)
    it(`${shape} ${mix}: logits bit-identical to the dense model, prompt and decode, alone and batched`, async () => {
      const file = await syntheticModel(shape, mix);
      const r = rng(7);
      const dense0 = h()._sparseModelRun(file, 0, 2, new Int32Array([1]), new Int32Array(0));
      const vocab = dense0.logits.length;
      const prompt = Int32Array.from({ length: 20 }, () => Math.floor(r() * vocab));
      const decode = Int32Array.from({ length: 4 }, () => Math.floor(r() * vocab));
      const dense = h()._sparseModelRun(file, 0, 2, prompt, decode);
      expect(dense.promptDense).toBe(0);
      for (const threads of [2, 1]) {
        const sp = h()._sparseModelRun(file, 0.5, threads, prompt, decode);
        expect(bits(sp.logits), `threads=${threads}`).toEqual(bits(dense.logits));
        expect(bits(sp.batched), `threads=${threads}`).toEqual(bits(dense.batched));
        if (sparse) expect(sp.promptDense * sp.decodeDense).toBeGreaterThan(0);
        expect(sp.promptRead).toBe(sp.promptDense); // prompts take the dense route
        expect(sp.decodeRead).toBeLessThanOrEqual(sp.decodeDense);
      }
      // the batched steps decode the same tokens as the lone ones
      for (let i = 0; i < decode.length; i++) {
        const one = dense.logits.subarray(vocab * (i + 1), vocab * (i + 2));
        expect(bits(dense.batched.subarray(2 * vocab * i, 2 * vocab * i + vocab))).toEqual(bits(one));
      }
    }, 120_000);
});
