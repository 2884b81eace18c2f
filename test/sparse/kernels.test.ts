// The sparse (input-skipping) matmul through the channel-major SparseMatrix, on every ISA
// path this CPU runs: bit-identical to the dense matrix of the same ISA whatever is zero,
// close to the generic twin, and reading exactly the weight bytes of the channels whose
// quantized activation is nonzero in some token (counted by the kernel, checked here
// against a count made from the quantized activations).
import { describe, expect, it } from 'vitest';
import { systemInfo } from '../../src/index.js';
import { k, rng, T } from '../kernels/helpers.js';

interface SparseAddon {
  _sparseMatmul(isa: string, type: number, w: Uint8Array, rows: number, cols: number, x: Float32Array, n: number,
    r0?: number, r1?: number): { y: Float32Array; read: number; dense: number };
  _sparseInfo(): { types: number[]; kernelIsas: string[] };
  _sparseGetRow(type: number, w: Uint8Array, rows: number, cols: number, r: number): Float32Array;
}
const s = () => k() as unknown as SparseAddon & ReturnType<typeof k>;

const isas = systemInfo().supportedIsas;
const ROWS = 128; // rows per channel-major group
const CHANNEL_BYTES = {
  Q4_0: 64, Q8_0: 128, Q4_1: 64, Q5_0: 80, Q5_1: 80, IQ4_NL: 64, MXFP4: 64, Q4_K: 64, Q5_K: 80, Q6_K: 96,
} as const;
// bytes of scales (and mins) per group and block
const HEAD_BYTES = {
  Q4_0: 256, Q8_0: 256, Q4_1: 512, Q5_0: 256, Q5_1: 512, IQ4_NL: 256, MXFP4: 128, Q4_K: 2560, Q5_K: 2560, Q6_K: 2304,
} as const;
type SType = keyof typeof CHANNEL_BYTES;
const BLOCK_COLS = (type: SType) => (type.endsWith('_K') ? 256 : 32);
const TYPES: SType[] = ['Q8_0', 'Q4_0', 'Q4_K', 'Q6_K', 'Q5_K', 'Q5_0', 'Q4_1', 'Q5_1', 'IQ4_NL', 'MXFP4'];

function makeWeights(type: SType, rows: number, cols: number, seed: number): Uint8Array {
  const r = rng(seed);
  const f = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    const scale = [1, 0.01, 30, 0.5][i % 4]!;
    for (let c = 0; c < cols; c++) f[i * cols + c] = (r() * 2 - 1) * scale;
  }
  return k()._quantize(T[type], f);
}

/**
 * n tokens of activations where a fraction `zero` of the channels is zero in every token
 * (exact zeros, or values so small against their block's largest that they quantize to 0),
 * and, when mixed, some channels zero in some tokens only (they must still be read).
 */
function makeInput(n: number, cols: number, zero: number, mixed: boolean, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n * cols);
  const dead = Array.from({ length: cols }, () => r() < zero);
  for (let t = 0; t < n; t++)
    for (let c = 0; c < cols; c++) {
      let v = (r() * 2 - 1) * (1 + 3 * r());
      // tiny values quantize to 0 only beside a live value of their block
      if (dead[c]) v = zero === 1 || r() < 0.5 ? 0 : v * 1e-6;
      else if (mixed && r() < 0.5) v = 0;
      x[t * cols + c] = v;
    }
  return x;
}

/** The weight bytes a sparse pass reads over groups [g0, g1): scales, plus the channels nonzero in some token. */
function expectedBytes(type: SType, x: Float32Array, n: number, cols: number, g0: number, g1: number) {
  const bc = BLOCK_COLS(type), nb = cols / bc;
  // BlockQ8A: 40 bytes, qs at 8; BlockQ8KA: 308 bytes, qs at 52
  const [xb, qoff] = bc === 32 ? [40, 8] : [308, 52];
  let active = 0;
  const q: Uint8Array[] = [];
  for (let t = 0; t < n; t++) q.push(k()._quantizeActivations('generic', bc as 32 | 256, x.subarray(t * cols, (t + 1) * cols)));
  for (let b = 0; b < nb; b++)
    for (let c = 0; c < bc; c++) if (q.some((qt) => qt[xb * b + qoff + c] !== 0)) active++;
  const groups = g1 - g0;
  return {
    read: groups * (nb * HEAD_BYTES[type] + active * CHANNEL_BYTES[type]),
    dense: groups * nb * (HEAD_BYTES[type] + bc * CHANNEL_BYTES[type]),
  };
}

function bits(a: Float32Array) {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

// [rows, blocks]
const SHAPES: [number, number][] = [[1, 1], [127, 2], [128, 1], [200, 3], [300, 5]];

describe('sparse matmul (channel-major layout)', () => {
  it('reports the types and kernel paths it has', () => {
    const info = s()._sparseInfo();
    expect([...info.types].sort()).toEqual(TYPES.map((t) => T[t]).sort());
    // every x86 path has its sparse kernels (NEON: test/sparse/neon-qemu.test.ts)
    for (const isa of isas) if (isa !== 'neon') expect(info.kernelIsas).toContain(isa);
  });

  it('refuses a type without a sparse layout, with a code', () => {
    const w = k()._quantize(T.Q3_K, new Float32Array(256 * 16));
    expect(() => s()._sparseMatmul('generic', T.Q3_K, w, 16, 256, new Float32Array(256), 1)).toThrow(
      expect.objectContaining({ code: 'ERR_UNSUPPORTED_TYPE' }),
    );
  });

  for (const type of TYPES)
    for (const isa of isas)
      it(`${type} ${isa}: bit-identical to the dense kernel, bytes read as counted, close to the generic twin`, () => {
        const sparseKernel = s()._sparseInfo().kernelIsas.includes(isa);
        let seed = 1;
        let checked = 0;
        for (const [rows, blocks] of SHAPES)
          for (const zero of [0, 0.5, 0.9, 1])
            for (const n of [1, 2, 3, 5, 8, 9, 20]) {
              if (n > 3 && n !== 8 && n !== 9 && (rows !== 200 || zero === 0)) continue;
              const cols = blocks * BLOCK_COLS(type);
              seed++;
              const w = makeWeights(type, rows, cols, seed);
              const x = makeInput(n, cols, zero, n > 1 && seed % 2 === 0, seed + 7);
              const dense = k()._matmul(isa, T[type], w, rows, cols, x, n);
              const sp = s()._sparseMatmul(isa, T[type], w, rows, cols, x, n);
              expect(bits(sp.y), `${rows}x${cols} n=${n} zero=${zero}`).toEqual(bits(dense));
              const groups = Math.ceil(rows / ROWS);
              const exp = expectedBytes(type, x, n, cols, 0, groups);
              expect(sp.dense).toBe(exp.dense);
              expect(sp.read, `${rows}x${cols} n=${n} zero=${zero}`).toBe(sparseKernel && n <= 8 ? exp.read : exp.dense);
              if (zero === 1 && sparseKernel && n <= 8) expect(sp.read).toBe(groups * (cols / BLOCK_COLS(type)) * HEAD_BYTES[type]);
              if (isa !== 'generic') {
                const twin = s()._sparseMatmul('generic', T[type], w, rows, cols, x, n);
                let max = 1;
                for (const v of twin.y) max = Math.max(max, Math.abs(v));
                for (let i = 0; i < twin.y.length; i++)
                  expect(Math.abs(sp.y[i]! - twin.y[i]!)).toBeLessThanOrEqual(1e-5 * max * (blocks + 4));
              }
              checked++;
            }
        expect(checked).toBeGreaterThan(50);
      });

  for (const type of TYPES)
    it(`${type}: get_row reads back the file's values exactly (the layout loses nothing)`, () => {
      const rows = 300, cols = 3 * BLOCK_COLS(type);
      const w = makeWeights(type, rows, cols, 5);
      const ref = k()._dequantize(T[type], w, rows * cols);
      for (const r of [0, 1, 63, 64, 127, 128, 200, 255, 256, 299]) {
        const got = s()._sparseGetRow(T[type], w, rows, cols, r);
        expect(bits(got), `row ${r}`).toEqual(bits(ref.slice(r * cols, (r + 1) * cols)));
      }
    });

  for (const type of TYPES)
    it(`${type}: a row range starting at a later group computes only its rows`, () => {
      const rows = 300, cols = 2 * BLOCK_COLS(type), n = 2;
      const w = makeWeights(type, rows, cols, 99);
      const x = makeInput(n, cols, 0.5, true, 100);
      for (const isa of isas) {
        const full = s()._sparseMatmul(isa, T[type], w, rows, cols, x, n);
        const part = s()._sparseMatmul(isa, T[type], w, rows, cols, x, n, 128, 256);
        for (let t = 0; t < n; t++)
          for (let r = 0; r < rows; r++)
            expect(part.y[t * rows + r]).toBe(r >= 128 && r < 256 ? full.y[t * rows + r] : 0);
        expect(part.dense).toBe(2 * (HEAD_BYTES[type] + BLOCK_COLS(type) * CHANNEL_BYTES[type]));
        expect(() => s()._sparseMatmul(isa, T[type], w, rows, cols, x, n, 16, 256)).toThrow(
          expect.objectContaining({ code: 'ERR_INTERNAL' }),
        );
      }
    });
});
