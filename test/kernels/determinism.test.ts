// The matmul half of the determinism guarantee: every output element y[token][row] has
// one summation order whatever the number of tokens n in the call (the GEMV for n = 1,
// the GEMM tiles and their remainders for larger n) and whatever row slice a thread is
// given. So the bits of each (token, row) must equal those of a call with that token
// alone (n = 1) over all rows, on every weight type and every ISA path this CPU runs.
import { describe, expect, it } from 'vitest';
import { systemInfo } from '../../src/index.js';
import { BLOCK, k, rng, T, type TypeName } from './helpers.js';

const isas = systemInfo().supportedIsas;
const TYPES: TypeName[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q5_K', 'Q6_K', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'IQ4_NL', 'IQ4_XS', 'MXFP4'];
const NS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 33, 64];
// Row slices (starts on the 16-row alignment of the quantized layouts; the last ends at rows).
const SLICES: Array<[number, number]> = [[0, 16], [16, 48], [32, 53], [48, 53], [0, 53]];

if (!isas.includes('avx512'))
  console.warn('determinism.test: this CPU has no AVX-512; the avx512 path is not checked here');

function weights(type: TypeName, rows: number, cols: number, seed: number): Uint8Array {
  const r = rng(seed);
  const f = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const scale = [1, 0.02, 40, 0.5][i % 4]!;
    for (let c = 0; c < cols; c++) f[i * cols + c] = (r() * 2 - 1) * scale;
  }
  return k()._quantize(T[type], f);
}

function input(n: number, cols: number, seed: number): Float32Array {
  const r = rng(seed);
  // A wide spread of magnitudes, so that float sums in another order would round differently.
  return Float32Array.from({ length: n * cols }, (_, i) => (r() * 2 - 1) * (i % 5 === 0 ? 1000 * r() : 1));
}

const bits = (y: Float32Array) => new Uint32Array(y.buffer, y.byteOffset, y.length);

describe('matmul determinism: bits of y[t][r] do not depend on n or on the row slice', () => {
  for (const type of TYPES)
    for (const isa of isas)
      it(`${type} on ${isa}`, () => {
        const rows = 53;
        // several blocks per row (float types: a column count with a tail after the vector width)
        const cols = BLOCK[type] === 256 ? 768 : BLOCK[type] === 32 ? 320 : 77;
        const w = weights(type, rows, cols, 17 + T[type]);
        const nmax = NS[NS.length - 1]!;
        const x = input(nmax, cols, 99);
        // token t alone, all rows: the bits every other call must reproduce
        const single = Array.from({ length: nmax }, (_, t) =>
          bits(k()._matmul(isa, T[type], w, rows, cols, x.subarray(t * cols, (t + 1) * cols), 1)),
        );
        for (const n of NS) {
          const xs = x.subarray(0, n * cols);
          for (const [r0, r1] of n === 1 || n === 7 || n === 17 || n === 64 ? SLICES : [[0, rows] as [number, number]]) {
            const y = bits(k()._matmul(isa, T[type], w, rows, cols, xs, n, r0, r1));
            for (let t = 0; t < n; t++)
              for (let r = r0; r < r1; r++)
                if (y[t * rows + r] !== single[t]![r])
                  expect.fail(`${type}/${isa} n=${n} rows [${r0}, ${r1}): y[${t}][${r}] bits ${y[t * rows + r]!.toString(16)} != n=1 ${single[t]![r]!.toString(16)}`);
          }
        }
      });
});
