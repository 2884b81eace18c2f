// Shared helpers for the kernel tests: the addon's test hooks, ggml type ids, a seeded
// random source, and a JS model of the activation quantizer (quant/quant.cpp).
import { addon } from '../../src/native.js';

export interface KernelsAddon {
  _quantize(type: number, x: Float32Array): Uint8Array;
  _dequantize(type: number, bytes: Uint8Array, n: number): Float32Array;
  _matmul(isa: string, type: number, w: Uint8Array, rows: number, cols: number, x: Float32Array, n: number, r0?: number, r1?: number): Float32Array;
  _matmulReference(type: number, w: Uint8Array, rows: number, cols: number, x: Float32Array, n: number): Float64Array;
  _dotF16(isa: string, a: Uint16Array, b: Float32Array): number;
  _axpyF16(isa: string, a: number, x: Uint16Array, y: Float32Array): Float32Array;
  _getRow(type: number, w: Uint8Array, rows: number, cols: number, r: number): Float32Array;
  _makeMatrix(type: number, rows: number, cols: number, name: string): { rowAlign: number; inputBytesPerToken: number };
}
export const k = (): KernelsAddon => addon<KernelsAddon>();

export const T = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 } as const;
export type TypeName = keyof typeof T;
export const BLOCK: Record<TypeName, number> = { F32: 1, F16: 1, BF16: 1, Q4_0: 32, Q8_0: 32, Q4_K: 256, Q5_K: 256, Q6_K: 256 };
/** Values per activation block for the int8 route (0: float activations). */
export const ACT_BLOCK: Record<TypeName, number> = { F32: 0, F16: 0, BF16: 0, Q4_0: 32, Q8_0: 32, Q4_K: 256, Q5_K: 256, Q6_K: 256 };

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

/**
 * The activations as the int8 route sees them: per block, d = amax/127 and
 * q = rint(x * (127/amax)) in float32 arithmetic, exactly as quantize_row_q8a/q8ka;
 * returns d*q per value.
 */
export function quantizeActivations(x: Float32Array, block: number): Float32Array {
  const out = new Float32Array(x.length);
  const f = Math.fround;
  for (let b = 0; b < x.length; b += block) {
    let amax = 0;
    for (let i = b; i < b + block; i++) amax = Math.max(amax, Math.abs(x[i]));
    const id = amax > 0 ? f(127 / amax) : 0;
    const d = f(amax / 127);
    for (let i = b; i < b + block; i++) {
      const q = Math.max(-127, Math.min(127, rintEven(f(x[i] * id))));
      out[i] = d * q;
    }
  }
  return out;
}
