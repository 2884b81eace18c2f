/**
 * ggml tensor types as stored in GGUF files: type ids, block sizes, bytes per block
 * (ggml.h / ggml-common.h), half-precision conversions, and reference dequantizers
 * for the types the synthetic writer produces. Plain TypeScript, no addon.
 */

import { SparrowError } from '../src/errors.js';

/** Bad input: a SparrowError with code ERR_INVALID_ARG. */
const invalid = (message: string): SparrowError => new SparrowError(message, 'ERR_INVALID_ARG');

export type GGMLTypeName =
  | 'F32' | 'F16' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q8_1'
  | 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q8_K'
  | 'I8' | 'I16' | 'I32' | 'I64' | 'F64' | 'BF16';

export interface GGMLTypeInfo {
  name: GGMLTypeName;
  /** ggml type id as stored in the tensor table. */
  id: number;
  /** Elements per block (1 for plain types). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
}

const table: [GGMLTypeName, number, number, number][] = [
  ['F32', 0, 1, 4],
  ['F16', 1, 1, 2],
  ['Q4_0', 2, 32, 18], // f16 d + 16 bytes of nibbles
  ['Q4_1', 3, 32, 20],
  ['Q5_0', 6, 32, 22],
  ['Q5_1', 7, 32, 24],
  ['Q8_0', 8, 32, 34], // f16 d + 32 int8
  ['Q8_1', 9, 32, 36],
  ['Q2_K', 10, 256, 84],
  ['Q3_K', 11, 256, 110],
  ['Q4_K', 12, 256, 144], // f16 d, f16 dmin, 12 bytes scales/mins, 128 bytes nibbles
  ['Q5_K', 13, 256, 176], // as Q4_K + 32 bytes of high bits (before the nibbles)
  ['Q6_K', 14, 256, 210], // 128 ql, 64 qh, 16 int8 scales, f16 d
  ['Q8_K', 15, 256, 292],
  ['I8', 24, 1, 1],
  ['I16', 25, 1, 2],
  ['I32', 26, 1, 4],
  ['I64', 27, 1, 8],
  ['F64', 28, 1, 8],
  ['BF16', 30, 1, 2],
];

export const GGML_TYPES: Readonly<Record<GGMLTypeName, GGMLTypeInfo>> = Object.freeze(
  Object.fromEntries(table.map(([name, id, blockSize, typeSize]) => [name, { name, id, blockSize, typeSize }])) as Record<
    GGMLTypeName,
    GGMLTypeInfo
  >,
);

const byId = new Map<number, GGMLTypeInfo>(Object.values(GGML_TYPES).map((t) => [t.id, t]));

export function ggmlType(type: GGMLTypeName | number): GGMLTypeInfo {
  const info = typeof type === 'number' ? byId.get(type) : GGML_TYPES[type];
  if (!info) throw invalid(`unknown ggml type ${String(type)}`);
  return info;
}

/** Bytes of one row of `ne0` elements; throws when ne0 is not a multiple of the block size. */
export function rowBytes(type: GGMLTypeName, ne0: number): number {
  const t = GGML_TYPES[type];
  if (ne0 % t.blockSize !== 0)
    throw invalid(`${type} rows need a multiple of ${t.blockSize} elements, got ${ne0}`);
  return (ne0 / t.blockSize) * t.typeSize;
}

/** Bytes of a tensor of shape `shape` (GGUF order: shape[0] is the row length). */
export function tensorBytes(type: GGMLTypeName, shape: readonly number[]): number {
  let rows = 1;
  for (let i = 1; i < shape.length; i++) rows *= shape[i];
  return rowBytes(type, shape[0] ?? 1) * rows;
}

// ---------------------------------------------------------------------------------------
// Half precision

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bits of `v`, round to nearest even (subnormals, inf and NaN kept). */
export function f32ToF16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is correct
  return sign | h;
}

export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** bfloat16 bits of `v`: the upper half of the f32, rounded to nearest even. */
export function f32ToBF16Bits(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0];
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff; // quiet NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0];
}

// ---------------------------------------------------------------------------------------
// Reference dequantization (ggml-quants.c semantics), for tests and tools.

function halfAt(b: Uint8Array, o: number): number {
  return f16BitsToF32(b[o] | (b[o + 1] << 8));
}

function scaleMinK4(j: number, q: Uint8Array, o: number): [number, number] {
  if (j < 4) return [q[o + j] & 63, q[o + j + 4] & 63];
  return [(q[o + j + 4] & 0xf) | ((q[o + j - 4] >> 6) << 4), (q[o + j + 4] >> 4) | ((q[o + j] >> 6) << 4)];
}

/** Dequantizes `n` elements of type `type` from `src` (which starts at a block boundary). */
export function dequantize(type: GGMLTypeName, src: Uint8Array, n: number): Float32Array {
  const t = GGML_TYPES[type];
  if (n % t.blockSize !== 0) throw invalid(`${type}: ${n} is not a multiple of ${t.blockSize}`);
  const nb = n / t.blockSize;
  if (src.length < nb * t.typeSize) throw invalid(`${type}: need ${nb * t.typeSize} bytes, got ${src.length}`);
  const out = new Float32Array(n);
  const dv = new DataView(src.buffer, src.byteOffset, src.byteLength);
  switch (type) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = f16BitsToF32(dv.getUint16(2 * i, true));
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) out[i] = bf16BitsToF32(dv.getUint16(2 * i, true));
      break;
    case 'Q8_0':
      for (let b = 0; b < nb; b++) {
        const o = b * 34;
        const d = halfAt(src, o);
        for (let i = 0; i < 32; i++) out[b * 32 + i] = d * dv.getInt8(o + 2 + i);
      }
      break;
    case 'Q4_0':
      for (let b = 0; b < nb; b++) {
        const o = b * 18;
        const d = halfAt(src, o);
        for (let i = 0; i < 16; i++) {
          const q = src[o + 2 + i];
          out[b * 32 + i] = d * ((q & 0xf) - 8);
          out[b * 32 + i + 16] = d * ((q >> 4) - 8);
        }
      }
      break;
    case 'Q4_K':
    case 'Q5_K': {
      const five = type === 'Q5_K';
      for (let b = 0; b < nb; b++) {
        const o = b * t.typeSize;
        const d = halfAt(src, o);
        const dmin = halfAt(src, o + 2);
        const sc = o + 4;
        const qh = o + 16;
        const qs = five ? o + 48 : o + 16;
        const y = b * 256;
        for (let j = 0; j < 4; j++) {
          // 64 elements: sub-blocks 2j (low nibbles) and 2j+1 (high nibbles)
          const [s1, m1] = scaleMinK4(2 * j, src, sc);
          const [s2, m2] = scaleMinK4(2 * j + 1, src, sc);
          for (let l = 0; l < 32; l++) {
            const q = src[qs + 32 * j + l];
            let lo = q & 0xf;
            let hi = q >> 4;
            if (five) {
              const h = src[qh + l];
              if (h & (1 << (2 * j))) lo += 16;
              if (h & (1 << (2 * j + 1))) hi += 16;
            }
            out[y + 64 * j + l] = d * s1 * lo - dmin * m1;
            out[y + 64 * j + 32 + l] = d * s2 * hi - dmin * m2;
          }
        }
      }
      break;
    }
    case 'Q6_K':
      for (let b = 0; b < nb; b++) {
        const o = b * 210;
        const d = halfAt(src, o + 208);
        const y0 = b * 256;
        for (let half = 0; half < 2; half++) {
          const ql = o + 64 * half;
          const qh = o + 128 + 32 * half;
          const sc = o + 192 + 8 * half;
          const y = y0 + 128 * half;
          for (let l = 0; l < 32; l++) {
            const is = l >> 4;
            const q1 = ((src[ql + l] & 0xf) | (((src[qh + l] >> 0) & 3) << 4)) - 32;
            const q2 = ((src[ql + l + 32] & 0xf) | (((src[qh + l] >> 2) & 3) << 4)) - 32;
            const q3 = ((src[ql + l] >> 4) | (((src[qh + l] >> 4) & 3) << 4)) - 32;
            const q4 = ((src[ql + l + 32] >> 4) | (((src[qh + l] >> 6) & 3) << 4)) - 32;
            out[y + l] = d * dv.getInt8(sc + is) * q1;
            out[y + l + 32] = d * dv.getInt8(sc + is + 2) * q2;
            out[y + l + 64] = d * dv.getInt8(sc + is + 4) * q3;
            out[y + l + 96] = d * dv.getInt8(sc + is + 6) * q4;
          }
        }
      }
      break;
    default:
      throw invalid(`dequantize: ${type} is not supported`);
  }
  return out;
}
