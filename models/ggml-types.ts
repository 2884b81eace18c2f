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
  | 'IQ4_NL' | 'IQ4_XS' | 'MXFP4'
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
  ['IQ4_NL', 20, 32, 18], // f16 d + 16 bytes of codebook indices (nibbles as Q4_0)
  ['IQ4_XS', 23, 256, 136], // f16 d, u16 scales_h, 4 bytes scales_l, 128 bytes of indices
  ['MXFP4', 39, 32, 17], // E8M0 exponent byte + 16 bytes of E2M1 codes
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

/** The IQ4_NL / IQ4_XS codebook (ggml's kvalues_iq4nl). */
export const IQ4NL_VALUES: readonly number[] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
/** MXFP4's E2M1 values times 2 (ggml's kvalues_mxfp4); the scale 2^(e-128) takes the 2 back. */
export const MXFP4_VALUES: readonly number[] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/** The 4-bit value of element i (0..31) of a 32-block whose nibbles start at byte o. */
const nib32 = (b: Uint8Array, o: number, i: number): number => (b[o + (i & 15)] >> (i < 16 ? 0 : 4)) & 15;

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
    case 'Q4_1':
    case 'Q5_0':
    case 'Q5_1': {
      // Q4_1: d, m, qs | Q5_0: d, qh, qs | Q5_1: d, m, qh, qs; the fifth bit of value i is bit i of qh
      const hasMin = type !== 'Q5_0';
      const five = type !== 'Q4_1';
      const qhOff = hasMin ? 4 : 2;
      const qsOff = (hasMin ? 4 : 2) + (five ? 4 : 0);
      for (let b = 0; b < nb; b++) {
        const o = b * t.typeSize;
        const d = halfAt(src, o);
        const m = hasMin ? halfAt(src, o + 2) : 0;
        const qh = five ? dv.getUint32(o + qhOff, true) : 0;
        for (let i = 0; i < 32; i++) {
          const q = nib32(src, o + qsOff, i) | (five ? ((qh >>> i) & 1) << 4 : 0);
          out[b * 32 + i] = hasMin ? d * q + m : d * (q - 16);
        }
      }
      break;
    }
    case 'IQ4_NL':
      for (let b = 0; b < nb; b++) {
        const d = halfAt(src, b * 18);
        for (let i = 0; i < 32; i++) out[b * 32 + i] = d * IQ4NL_VALUES[nib32(src, b * 18 + 2, i)];
      }
      break;
    case 'MXFP4':
      for (let b = 0; b < nb; b++) {
        const d = 2 ** (src[b * 17] - 128);
        for (let i = 0; i < 32; i++) out[b * 32 + i] = d * MXFP4_VALUES[nib32(src, b * 17 + 1, i)];
      }
      break;
    case 'Q2_K':
      // scales[16] (low nibble scale, high nibble min), qs[64], d, dmin; value i: 2 bits at
      // 2((i/32)%4) of qs[32(i/128) + i%32], sub-block i/16
      for (let b = 0; b < nb; b++) {
        const o = b * 84;
        const d = halfAt(src, o + 80);
        const dmin = halfAt(src, o + 82);
        for (let i = 0; i < 256; i++) {
          const sc = src[o + (i >> 4)];
          const q = (src[o + 16 + 32 * (i >> 7) + (i & 31)] >> (2 * ((i >> 5) & 3))) & 3;
          out[b * 256 + i] = d * (sc & 15) * q - dmin * (sc >> 4);
        }
      }
      break;
    case 'Q3_K':
      // hmask[32], qs[64], scales[12], d; value i = 2 bits as Q2_K | bit (i/32) of hmask[i%32] << 2,
      // minus 4; 6-bit scale j: low nibble j/8 of scales[j%8], high 2 bits 2(j/4) of scales[8 + j%4]
      for (let b = 0; b < nb; b++) {
        const o = b * 110;
        const d = halfAt(src, o + 108);
        for (let i = 0; i < 256; i++) {
          const j = i >> 4;
          const s6 = ((src[o + 96 + (j & 7)] >> (4 * (j >> 3))) & 15) | (((src[o + 104 + (j & 3)] >> (2 * (j >> 2))) & 3) << 4);
          const lo = (src[o + 32 + 32 * (i >> 7) + (i & 31)] >> (2 * ((i >> 5) & 3))) & 3;
          const hi = (src[o + (i & 31)] >> (i >> 5)) & 1;
          out[b * 256 + i] = d * (s6 - 32) * ((lo | (hi << 2)) - 4);
        }
      }
      break;
    case 'IQ4_XS':
      // d, scales_h (u16), scales_l[4], qs[128]; sub-block j of 32: ls = nibble j%2 of
      // scales_l[j/2] | 2 bits 2j of scales_h << 4; qs[16j + l] holds values 32j + l and 32j + 16 + l
      for (let b = 0; b < nb; b++) {
        const o = b * 136;
        const d = halfAt(src, o);
        const sh = dv.getUint16(o + 2, true);
        for (let j = 0; j < 8; j++) {
          const ls = ((src[o + 4 + (j >> 1)] >> (4 * (j & 1))) & 15) | (((sh >> (2 * j)) & 3) << 4);
          for (let i = 0; i < 32; i++) out[b * 256 + 32 * j + i] = d * (ls - 32) * IQ4NL_VALUES[nib32(src, o + 8 + 16 * j, i)];
        }
      }
      break;
    default:
      throw invalid(`dequantize: ${type} is not supported`);
  }
  return out;
}
