// Shared helpers for the kernel tests: the addon's test hooks (on addon.internal), ggml type ids, a seeded
// random source, and a JS model of the activation quantizer (quant/quant.cpp).
import { internal } from '../../src/native.js';

export interface KernelsAddon {
  _quantize(type: number, x: Float32Array): Uint8Array;
  _dequantize(type: number, bytes: Uint8Array, n: number): Float32Array;
  _matmul(isa: string, type: number, w: Uint8Array, rows: number, cols: number, x: Float32Array, n: number, r0?: number, r1?: number): Float32Array;
  _matmulReference(type: number, w: Uint8Array, rows: number, cols: number, x: Float32Array, n: number): Float64Array;
  _dotF16(isa: string, a: Uint16Array, b: Float32Array): number;
  _axpyF16(isa: string, a: number, x: Uint16Array, y: Float32Array): Float32Array;
  _quantizeActivations(isa: string, block: 32 | 256, x: Float32Array): Uint8Array;
  _convertF16(isa: string, op: 'to', x: Float32Array): Uint16Array;
  _convertF16(isa: string, op: 'round', x: Float32Array): Float32Array;
  _convertF16(isa: string, op: 'from', x: Uint16Array): Float32Array;
  _getRow(type: number, w: Uint8Array, rows: number, cols: number, r: number): Float32Array;
  _makeMatrix(type: number, rows: number, cols: number, name: string): { rowAlign: number; inputBytesPerToken: number };
}
export const k = (): KernelsAddon => internal<KernelsAddon>();

export const T = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q5_0: 6, Q5_1: 7, Q8_0: 8, Q2_K: 10, Q3_K: 11, Q4_K: 12, Q5_K: 13, Q6_K: 14,
  IQ4_NL: 20, IQ4_XS: 23, BF16: 30, MXFP4: 39,
} as const;
export type TypeName = keyof typeof T;
export const BLOCK: Record<TypeName, number> = {
  F32: 1, F16: 1, BF16: 1, Q4_0: 32, Q4_1: 32, Q5_0: 32, Q5_1: 32, Q8_0: 32, IQ4_NL: 32, MXFP4: 32,
  Q2_K: 256, Q3_K: 256, Q4_K: 256, Q5_K: 256, Q6_K: 256, IQ4_XS: 256,
};
/** Values per activation block for the int8 route (0: float activations): ggml's vec_dot_type (Q8_0 / Q8_1: 32, Q8_K: 256). */
export const ACT_BLOCK: Record<TypeName, number> = { ...BLOCK, F32: 0, F16: 0, BF16: 0 };

export function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    // xorshift32
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** Round half to even, as lrintf does in the default rounding mode. */
function rintEven(v: number): number {
  const f = Math.floor(v);
  const diff = v - f;
  if (diff > 0.5) return f + 1;
  if (diff < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The nearest f16 value of a float32 (ties to even, overflow to infinity, subnormals). */
export function roundF16(v: number): number {
  f32[0] = v;
  const a = u32[0]! & 0x7fffffff;
  if (a >= 0x7f800000) return f32[0]!; // inf / nan
  const sign = u32[0]! - a;
  if (a < 0x38800000) {
    // f16 subnormal range: a multiple of 2^-24 (exact in float64, then ties to even)
    const m = Math.abs(f32[0]!) * 2 ** 24;
    return (sign ? -1 : 1) * rintEven(m) * 2 ** -24;
  }
  let r = ((a + 0xfff + ((a >>> 13) & 1)) & ~0x1fff) >>> 0;
  if (r > 0x477fe000) r = 0x7f800000;
  u32[0] = (sign | r) >>> 0;
  return f32[0]!;
}

/** The nearest bf16 value of a float32 (ties to even). */
export function roundBF16(v: number): number {
  f32[0] = v;
  const b = u32[0]!;
  if ((b & 0x7fffffff) > 0x7f800000) return f32[0]!;
  u32[0] = ((b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000) >>> 0;
  return f32[0]!;
}

/**
 * The activations as the int8 route sees them, per block, as ggml's Q8_0 / Q8_K
 * activations (and quantize_row_q8a / q8ka):
 * - 32-blocks: q = rint(x * (127/amax)), d = amax/127 rounded to fp16;
 * - 256-blocks: max = the element of largest magnitude (sign kept, first on ties),
 *   iscale = -127/max, q = rint(iscale * x), d = 1/iscale;
 * all in float32 arithmetic. Returns d*q per value.
 */
export function quantizeActivations(x: Float32Array, block: number): Float32Array {
  const out = new Float32Array(x.length);
  const f = Math.fround;
  for (let b = 0; b < x.length; b += block) {
    let amax = 0;
    let mx = 0;
    for (let i = b; i < b + block; i++)
      if (Math.abs(x[i]!) > amax) (amax = Math.abs(x[i]!)), (mx = x[i]!);
    let id: number, d: number;
    if (block === 32) {
      id = amax > 0 ? f(127 / amax) : 0;
      d = roundF16(f(amax / 127));
    } else {
      id = amax > 0 ? f(-127 / mx) : 0;
      d = amax > 0 ? f(1 / id) : 0;
    }
    for (let i = b; i < b + block; i++) {
      const q = Math.max(-127, Math.min(127, rintEven(f(x[i]! * id))));
      out[i] = d * q;
    }
  }
  return out;
}

/** The activations as a matrix of `type` multiplies them (quantize_input). */
export function activationsAsSeen(type: TypeName, x: Float32Array): Float32Array {
  const ab = ACT_BLOCK[type];
  if (ab) return quantizeActivations(x, ab);
  if (type === 'F16') return Float32Array.from(x, roundF16);
  if (type === 'BF16') return Float32Array.from(x, roundBF16);
  return x;
}
