// Every matmul path (generic twin and each SIMD path this CPU runs) against a plain
// reference: the weights dequantized by the reference dequantizer and multiplied in
// double, for every weight type and awkward sizes (rows not a multiple of the 16-row
// group, 1..64 tokens, odd numbers of blocks).
import { describe, expect, it } from 'vitest';
import { systemInfo } from '../../src/index.js';
import { ACT_BLOCK, BLOCK, activationsAsSeen, k, rng, T, type TypeName } from './helpers.js';

const isas = systemInfo().supportedIsas;
const TYPES: TypeName[] = [
  'F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q5_K', 'Q6_K',
  'Q4_1', 'Q5_0', 'Q5_1', 'IQ4_NL', 'MXFP4', 'Q2_K', 'Q3_K', 'IQ4_XS',
];

/** Random weights with rows of very different magnitudes, some all-zero blocks, quantized. */
function makeWeights(type: TypeName, rows: number, cols: number, seed: number) {
  const r = rng(seed);
  const f = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const scale = [1, 0.01, 30, 0.5][i % 4];
    for (let c = 0; c < cols; c++) f[i * cols + c] = (r() * 2 - 1) * scale + (i % 5 === 0 ? 0.3 * scale : 0);
  }
  if (rows > 2) f.fill(0, cols, cols + Math.min(cols, 256)); // a zero block in row 1
  const w = k()._quantize(T[type], f);
  return { w, deq: k()._dequantize(T[type], w, rows * cols) };
}

function makeInput(n: number, cols: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n * cols);
  for (let i = 0; i < x.length; i++) x[i] = (r() * 2 - 1) * (1 + 4 * (i % 7 === 0 ? r() : 0));
  return x;
}

/**
 * Checks y (n x rows) against the double-precision reference.
 * 1. Tight: against W times the activations *as quantized* (the int8 route computes
 *    exact integer dot products per block, then a few float32 operations per block and
 *    one float32 sum over at most ~25 blocks): the error is float rounding only, below
 *    (nb + 4) * 2^-24 relative to the sum of the magnitudes of the per-block terms. For
 *    the K-quants those terms are d*sc*q*x and dmin*m*x separately, each at most
 *    (|w| + 2 max|w|)|x|, hence tol = 1e-4 * sum|w||x| + 1e-5 * max|w| * sum|x|. A wrong
 *    layout or scale gives errors of the order of sum|w||x| itself, far above.
 *    F16 / BF16 weights take their activations rounded to f16 / bf16 (as ggml does).
 * 2. Loose, against the exact input: the 8-bit activations differ from x by at most
 *    half a step plus the rounding of the scale to fp16 (Q8_0-style blocks: 127 steps
 *    of a relative 2^-11), amax_block * (1/254 + 2^-11) for 32-blocks, amax_block / 254
 *    for 256-blocks, so |y - W x| <= sum_b that * sum_{i in b} |w_i|; f16 / bf16
 *    rounding moves each x by at most 2^-11 / 2^-8 of |x|, so |y - W x| <= that * sum|w||x|
 *    (plus the tolerance of 1).
 */
function check(type: TypeName, isa: string, rows: number, cols: number, n: number, seed: number, r0 = 0, r1 = rows) {
  const { w, deq } = makeWeights(type, rows, cols, seed);
  const x = makeInput(n, cols, seed + 1);
  const ab = ACT_BLOCK[type];
  const xq = activationsAsSeen(type, x);
  const y = k()._matmul(isa, T[type], w, rows, cols, x, n, r0, r1);
  const refQ = k()._matmulReference(T[type], w, rows, cols, xq, n);
  const refX = xq !== x ? k()._matmulReference(T[type], w, rows, cols, x, n) : refQ;
  const relRound = type === 'F16' ? 2 ** -11 : type === 'BF16' ? 2 ** -8 : 0;
  const stepBound = ab === 32 ? 1 / 254 + 2 ** -11 : 1 / 254;
  let worst = 0;
  for (let t = 0; t < n; t++)
    for (let r = 0; r < rows; r++) {
      const got = y[t * rows + r];
      if (r < r0 || r >= r1) {
        expect(got, `row ${r} outside [${r0}, ${r1}) was written`).toBe(0);
        continue;
      }
      let absWX = 0, maxW = 0, sumX = 0, actBound = 0;
      for (let c = 0; c < cols; c++) {
        const wv = Math.abs(deq[r * cols + c]);
        absWX += wv * Math.abs(xq[t * cols + c]);
        maxW = Math.max(maxW, wv);
        sumX += Math.abs(xq[t * cols + c]);
      }
      if (ab)
        for (let b = 0; b < cols; b += ab) {
          let amax = 0, sw = 0;
          for (let c = b; c < b + ab; c++) {
            amax = Math.max(amax, Math.abs(x[t * cols + c]));
            sw += Math.abs(deq[r * cols + c]);
          }
          actBound += amax * stepBound * sw * (1 + 1e-5);
        }
      else if (relRound)
        for (let c = 0; c < cols; c++) actBound += relRound * Math.abs(deq[r * cols + c] * x[t * cols + c]);
      // Q4_1 / Q5_1 take ggml's Q8_1 activations, whose s = fp16(sum q * amax / 127) stands
      // for d * sum q: both round amax / 127 (s once more, to fp16), so the min term m * s
      // moves by at most 2^-10 |d sum q| <= 2^-10 sum |xq| per block, |m| <= max |w| there.
      let q81 = 0;
      if (type === 'Q4_1' || type === 'Q5_1')
        for (let b = 0; b < cols; b += 32) {
          let mw = 0, sx = 0;
          for (let c = b; c < b + 32; c++) (mw = Math.max(mw, Math.abs(deq[r * cols + c]))), (sx += Math.abs(xq[t * cols + c]));
          q81 += 1.01 * 2 ** -10 * mw * sx;
        }
      // float weights: float32 accumulation over cols terms, at most cols * 2^-24 relative
      const tol = (ab ? 1e-4 * absWX + 1e-5 * maxW * sumX + 1e-30 : (cols + 4) * 2 ** -24 * absWX + 1e-30) + q81;
      const e1 = Math.abs(got - refQ[t * rows + r]);
      if (!(e1 <= tol))
        throw new Error(`${type}/${isa} ${rows}x${cols} n=${n}: y[${t}][${r}] = ${got}, reference ${refQ[t * rows + r]} (tol ${tol})`);
      expect(Math.abs(got - refX[t * rows + r])).toBeLessThanOrEqual(actBound + tol);
      worst = Math.max(worst, e1 / tol);
    }
  return worst;
}

describe('matmul: every type x every path agrees with the dequantize-and-multiply reference', () => {
  for (const type of TYPES) {
    const bs = BLOCK[type] === 1 ? 32 : BLOCK[type];
    // columns: odd multiples of the block (a float type gets odd numbers of columns too)
    const colsList = BLOCK[type] === 1 ? [1, 7, 33, 257] : bs === 32 ? [32, 96, 160, 736] : [256, 768, 1280];
    for (const isa of isas) {
      it(`${type} on ${isa}`, () => {
        let seed = 1000;
        for (const cols of colsList)
          for (const rows of [1, 15, 17, 50])
            for (const n of [1, 2, 3, 5, 17, 64]) {
              if (rows * cols * n > 3_000_000) continue;
              check(type, isa, rows, cols, n, seed++);
            }
      });
    }
  }
});

describe('matmul: row slices', () => {
  for (const type of TYPES)
    it(`${type}: mul(r0, r1) writes exactly rows [r0, r1) on every path`, () => {
      const cols = BLOCK[type] === 256 ? 512 : 64;
      for (const isa of isas) {
        check(type, isa, 53, cols, 3, 7, 16, 48);
        check(type, isa, 53, cols, 5, 8, 32, 53);
        check(type, isa, 53, cols, 1, 9, 0, 16);
      }
    });

  it('refuses a row range that does not start on the row alignment', () => {
    const { w } = makeWeights('Q4_0', 40, 64, 3);
    const x = makeInput(1, 64, 4);
    expect(() => k()._matmul('generic', T.Q4_0, w, 40, 64, x, 1, 8, 40)).toThrow(/aligned/);
  });
});

describe('make_matrix', () => {
  it('reports the row alignment and the input size', () => {
    expect(k()._makeMatrix(T.Q4_0, 40, 64, 'a').rowAlign).toBe(16);
    expect(k()._makeMatrix(T.Q4_0, 40, 64, 'a').inputBytesPerToken).toBe(2 * 40);
    expect(k()._makeMatrix(T.Q6_K, 40, 512, 'a').inputBytesPerToken).toBe(2 * 308);
    expect(k()._makeMatrix(T.F16, 3, 5, 'a').inputBytesPerToken).toBe(20);
  });

  it('names the tensor and the type it cannot compute with', () => {
    for (const [id, name] of [[16, 'IQ2_XXS'], [21, 'IQ3_S'], [29, 'IQ1_M'], [35, 'TQ2_0']] as const) {
      let err: unknown;
      try {
        k()._makeMatrix(id, 4, 256, 'blk.3.ffn_down.weight');
      } catch (e) {
        err = e;
      }
      expect((err as { code?: string }).code).toBe('ERR_UNSUPPORTED_TYPE');
      expect(String(err)).toContain('blk.3.ffn_down.weight');
      expect(String(err)).toContain(name);
    }
  });

  it('get_row reads the repacked weights back exactly', () => {
    for (const type of TYPES) {
      const cols = BLOCK[type] === 256 ? 512 : 64;
      const { w, deq } = makeWeights(type, 37, cols, 11);
      for (const r of [0, 5, 16, 36]) expect(k()._getRow(T[type], w, 37, cols, r)).toEqual(deq.subarray(r * cols, (r + 1) * cols));
    }
  });
});

describe('F16 helpers for attention (dot of f16 with f32, y += a * f16)', () => {
  const toF16 = (x: Float32Array) => {
    // exact conversion through the F16 quantizer of the addon (round to nearest even)
    const b = k()._quantize(T.F16, x);
    return new Uint16Array(b.buffer, b.byteOffset, x.length);
  };
  for (const isa of isas)
    it(isa, () => {
      const r = rng(5);
      for (const n of [0, 1, 7, 8, 15, 16, 17, 33, 64, 100, 257]) {
        const a = Float32Array.from({ length: n }, () => r() * 2 - 1);
        const b = Float32Array.from({ length: n }, () => r() * 2 - 1);
        const h = toF16(a);
        const ah = k()._dequantize(T.F16, new Uint8Array(h.buffer, h.byteOffset, 2 * n), n);
        let ref = 0, mag = 0;
        for (let i = 0; i < n; i++) (ref += ah[i] * b[i]), (mag += Math.abs(ah[i] * b[i]));
        // float32 sums of n terms: error <= n * 2^-24 * sum |terms|
        expect(Math.abs(k()._dotF16(isa, h, b) - ref)).toBeLessThanOrEqual((n + 2) * 2 ** -24 * mag + 1e-30);
        const y = k()._axpyF16(isa, 0.75, h, b);
        for (let i = 0; i < n; i++) expect(Math.abs(y[i] - (b[i] + 0.75 * ah[i]))).toBeLessThanOrEqual(2 ** -23 * (Math.abs(b[i]) + 1));
      }
    });
});
