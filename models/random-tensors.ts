/**
 * Deterministic pseudo-random tensor data, generated directly in ggml's storage formats.
 *
 * Quantized tensors are not made by quantizing floats (far too slow for 1 GB files in JS):
 * each block gets random quant indices straight from the PRNG and a scale chosen so that
 * the dequantized weights have roughly the requested standard deviation and zero mean.
 * Block layouts follow ggml-common.h exactly:
 *
 *   Q4_0  (18 B / 32):  f16 d, 16 B nibbles              w = d * (q - 8)
 *   Q4_1  (20 B / 32):  f16 d, f16 m, 16 B nibbles       w = d * q + m
 *   Q5_0  (22 B / 32):  f16 d, 4 B high bits, 16 B nibbles         w = d * (q - 16)
 *   Q5_1  (24 B / 32):  f16 d, f16 m, 4 B high bits, 16 B nibbles  w = d * q + m
 *   Q8_0  (34 B / 32):  f16 d, 32 int8                   w = d * q
 *   Q4_K (144 B / 256): f16 d, f16 dmin, 12 B packed 6-bit scales/mins, 128 B nibbles
 *                                                        w = d * sc_j * q - dmin * m_j
 *   Q5_K (176 B / 256): as Q4_K, then 32 B high bits before the 128 B of nibbles
 *   Q6_K (210 B / 256): 128 B low nibbles, 64 B high 2-bit pairs, 16 int8 scales, f16 d
 *                                                        w = d * sc_j * (q - 32)
 *   Q2_K  (84 B / 256):  16 B scales (low nibble sc, high nibble m), 64 B 2-bit values, f16 d, f16 dmin
 *                                                        w = d * sc_j * q - dmin * m_j (j = i / 16)
 *   Q3_K (110 B / 256):  32 B high bits, 64 B 2-bit values, 12 B packed 6-bit scales, f16 d
 *                                                        w = d * (s_j - 32) * (q - 4)
 *   IQ4_NL (18 B / 32):  f16 d, 16 B codebook indices    w = d * kIQ4NL[q]
 *   IQ4_XS (136 B / 256): f16 d, u16 + 4 B of 6-bit scales, 128 B indices   w = d * (ls_j - 32) * kIQ4NL[q]
 *   MXFP4  (17 B / 32):  E8M0 exponent e, 16 B E2M1 codes   w = 2^(e - 128) * kMXFP4[q]
 *   F16 / BF16 / F32: plain values (BF16 = the upper 16 bits of the f32, rounded to nearest even).
 *
 * Zero mean: Q4_0, Q5_0, Q8_0 have one more negative than positive level, so each block's
 * d gets a random sign; Q4_1/Q5_1/K-quants get a min that centres the levels; Q6_K's int8
 * sub-block scales get random signs, as do Q3_K's and IQ4_XS's; Q2_K gets mins that
 * centre its levels; IQ4_NL's d and MXFP4's codes are symmetric in sign.
 */
import { SparrowError } from '../src/errors.js';
import {
  GGML_TYPES,
  IQ4NL_VALUES,
  MXFP4_VALUES,
  f16BitsToF32,
  f32ToBF16Bits,
  f32ToF16Bits,
  type GGMLTypeName,
} from './ggml-types.js';

// ---------------------------------------------------------------------------------------
// PRNG: Marsaglia's xorshift128, seeded through splitmix32 from (seed, stream name).

/** 32-bit FNV-1a of a string, for deriving per-tensor streams from names. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Rng {
  private x: number;
  private y: number;
  private z: number;
  private w: number;

  /** A stream determined by `seed` and `stream` (e.g. a tensor name). */
  constructor(seed: number, stream = '') {
    let s = (Math.imul(seed >>> 0, 0x9e3779b1) ^ hashString(stream)) >>> 0;
    const splitmix = (): number => {
      s = (s + 0x9e3779b9) | 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.x = splitmix();
    this.y = splitmix();
    this.z = splitmix();
    this.w = splitmix() | 1; // never all zero
  }

  /** The next uniform u32. */
  next(): number {
    const t = this.x ^ (this.x << 11);
    this.x = this.y;
    this.y = this.z;
    this.z = this.w;
    this.w = (this.w ^ (this.w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return this.w;
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** Fills `out` with uniform u32s (the hot loop: state kept in locals). */
  fill(out: Uint32Array): void {
    let { x, y, z, w } = this;
    for (let i = 0; i < out.length; i++) {
      const t = x ^ (x << 11);
      x = y;
      y = z;
      z = w;
      w = w ^ (w >>> 19) ^ (t ^ (t >>> 8));
      out[i] = w;
    }
    this.x = x;
    this.y = y;
    this.z = z;
    this.w = w >>> 0;
  }
}

// ---------------------------------------------------------------------------------------
// tensor generators

export interface RandomTensorParams {
  type: GGMLTypeName;
  /** Number of elements (a multiple of the type's block size). */
  count: number;
  /** Target standard deviation of the (dequantized) values. */
  std: number;
  /** Mean of the values: float types only (quantized weights are centred on 0). */
  mean?: number;
  /** Seed and stream name: the same pair always gives the same bytes. */
  seed: number;
  stream: string;
}

/** Bytes per chunk: large enough to amortise the file writes, small enough to stay in cache-ish memory. */
const CHUNK_BYTES = 4 << 20;

/** Standard deviation of the uniform distribution over n consecutive integers. */
const levelStd = (n: number): number => Math.sqrt((n * n - 1) / 12);

/**
 * 256 f16 scale candidates: magnitudes spread over [0.75, 1.25] x `base`, and (when
 * `signed`) the odd entries negative. Picking one per block by a random byte jitters scales.
 */
function scaleTable(base: number, signed: boolean): Uint16Array {
  const t = new Uint16Array(256);
  for (let k = 0; k < 256; k++) {
    const mag = base * (0.75 + (0.5 * (k >>> 1)) / 127);
    t[k] = f32ToF16Bits(signed && k & 1 ? -mag : mag);
  }
  return t;
}

/** Yields the tensor's bytes in chunks of whole blocks (each a fresh buffer). */
export function* randomTensorChunks(p: RandomTensorParams): Generator<Uint8Array> {
  const info = GGML_TYPES[p.type];
  if (!info) throw new SparrowError(`random tensor: unknown type '${String(p.type)}'`, 'ERR_INVALID_ARG');
  if (!Number.isSafeInteger(p.count) || p.count <= 0 || p.count % info.blockSize !== 0)
    throw new SparrowError(
      `random tensor ${p.stream}: count ${p.count} is not a positive multiple of ${p.type}'s block size ${info.blockSize}`,
      'ERR_INVALID_ARG',
    );
  if (!(p.std >= 0) || !Number.isFinite(p.std)) throw new SparrowError(`random tensor ${p.stream}: bad std ${p.std}`, 'ERR_INVALID_ARG');
  const mean = p.mean ?? 0;
  if (mean !== 0 && info.blockSize !== 1)
    throw new SparrowError(`random tensor ${p.stream}: a non-zero mean needs a float type, not ${p.type}`, 'ERR_INVALID_ARG');

  const rng = new Rng(p.seed, p.stream);
  const fill = FILLERS[p.type];
  if (!fill) throw new SparrowError(`random tensor: cannot generate type ${p.type}`, 'ERR_INVALID_ARG');
  const state = fill.init(p.std, mean);

  const nBlocks = p.count / info.blockSize;
  // An even number of blocks per chunk keeps every chunk but the last a multiple of 4 bytes.
  const perChunk = Math.max(2, Math.floor(CHUNK_BYTES / info.typeSize) & ~1);
  for (let b = 0; b < nBlocks; b += perChunk) {
    const blocks = Math.min(perChunk, nBlocks - b);
    const bytes = blocks * info.typeSize;
    const words = new Uint32Array(Math.ceil(bytes / 4));
    rng.fill(words);
    const buf = new Uint8Array(words.buffer, 0, bytes);
    fill.patch(buf, blocks, rng, state);
    yield buf;
  }
}

interface Filler<S> {
  init(std: number, mean: number): S;
  /** Turns a chunk of random bytes into valid blocks (sets scales, converts floats). */
  patch(buf: Uint8Array, blocks: number, rng: Rng, state: S): void;
}

/** Puts a little-endian u16 at an arbitrary (unaligned) offset. */
function put16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v & 0xff;
  buf[off + 1] = v >>> 8;
}

/** Uniform value tables indexed by 16 random bits: a value = mean ± std*sqrt(3). */
function uniformTable(std: number, mean: number): Float64Array {
  const t = new Float64Array(65536);
  const a = std * Math.sqrt(3);
  for (let k = 0; k < 65536; k++) t[k] = mean + a * ((k + 0.5) / 32768 - 1);
  return t;
}

const F32: Filler<Float32Array> = {
  init: (std, mean) => Float32Array.from(uniformTable(std, mean)),
  patch(buf, n, _rng, table) {
    // Every random u32 picks its own value through its low 16 bits.
    const u = new Uint32Array(buf.buffer, buf.byteOffset, n);
    const f = new Float32Array(buf.buffer, buf.byteOffset, n);
    for (let i = 0; i < n; i++) f[i] = table[u[i]! & 0xffff]!;
  },
};

function halfFiller(convert: (x: number) => number): Filler<Uint16Array> {
  return {
    init: (std, mean) => Uint16Array.from(uniformTable(std, mean), convert),
    patch(buf, n, _rng, table) {
      // Two 16-bit random indices per u32, each replaced by its table entry in place.
      const u = new Uint16Array(buf.buffer, buf.byteOffset, n);
      for (let i = 0; i < n; i++) u[i] = table[u[i]!]!;
    },
  };
}

/** Q4_0 / Q5_0 / Q8_0 (and IQ4_NL, whose values have RMS `valueRms`): one signed f16 scale at the block start. */
function symmetricFiller(typeSize: number, levels: number, valueRms = levelStd(levels)): Filler<Uint16Array> {
  return {
    init: (std) => scaleTable(std / valueRms, true),
    patch(buf, n, rng, table) {
      for (let b = 0; b < n; b += 2) {
        const r = rng.next();
        put16(buf, b * typeSize, table[r & 0xff]!);
        if (b + 1 < n) put16(buf, (b + 1) * typeSize, table[(r >>> 8) & 0xff]!);
      }
    },
  };
}

/** Q4_1 / Q5_1: f16 d then f16 m = -d * (levels - 1) / 2, centring the levels on zero. */
function affineFiller(typeSize: number, levels: number): Filler<{ d: Uint16Array; m: Uint16Array }> {
  return {
    init: (std) => {
      const d = scaleTable(std / levelStd(levels), false);
      const m = Uint16Array.from(d, (h) => f32ToF16Bits((-f16BitsToF32(h) * (levels - 1)) / 2));
      return { d, m };
    },
    patch(buf, n, rng, { d, m }) {
      for (let b = 0; b < n; b++) {
        const k = rng.next() & 0xff;
        put16(buf, b * typeSize, d[k]!);
        put16(buf, b * typeSize + 2, m[k]!);
      }
    },
  };
}

/**
 * Q4_K / Q5_K: super-block d and dmin = `minRatio` x d; 8 sub-blocks with 6-bit scales
 * sc in [24, 63] and 6-bit mins m = round(sc * centre / minRatio), so that
 * d*sc*q - dmin*m = d*sc*(q - centre) (to within rounding).
 */
function kFiller(typeSize: number, levels: number): Filler<{ d: Uint16Array; dmin: Uint16Array; mins: Uint8Array }> {
  const centre = (levels - 1) / 2;
  const minRatio = levels / 2; // 8 for Q4_K, 16 for Q5_K: keeps m <= 63
  return {
    init: (std) => {
      const avgSc = (24 + 63) / 2;
      const d = scaleTable(std / (avgSc * levelStd(levels)), false);
      const dmin = Uint16Array.from(d, (h) => f32ToF16Bits(f16BitsToF32(h) * minRatio));
      const mins = new Uint8Array(64);
      for (let sc = 0; sc < 64; sc++) mins[sc] = Math.min(63, Math.round((sc * centre) / minRatio));
      return { d, dmin, mins };
    },
    patch(buf, n, rng, { d, dmin, mins }) {
      const sc = new Uint8Array(8);
      const mn = new Uint8Array(8);
      for (let b = 0; b < n; b++) {
        const o = b * typeSize;
        const r0 = rng.next();
        const r1 = rng.next();
        const k = r1 >>> 24;
        put16(buf, o, d[k]!);
        put16(buf, o + 2, dmin[k]!);
        for (let j = 0; j < 8; j++) {
          // 40 random bits: 5 per scale, 24 + (0..31) capped at 63
          const bits = j < 6 ? (r0 >>> (j * 5)) & 31 : (r1 >>> ((j - 6) * 5)) & 31;
          const s = Math.min(63, 24 + bits + (bits >>> 2));
          sc[j] = s;
          mn[j] = mins[s]!;
        }
        // ggml's get_scale_min_k4 packing: bytes 0-3 hold sc[0..3] plus the top 2 bits of
        // sc[4..7]; bytes 4-7 the mins likewise; bytes 8-11 the low nibbles of sc/m[4..7].
        const q = o + 4;
        for (let j = 0; j < 4; j++) {
          buf[q + j] = sc[j]! | ((sc[j + 4]! >>> 4) << 6);
          buf[q + j + 4] = mn[j]! | ((mn[j + 4]! >>> 4) << 6);
          buf[q + j + 8] = (sc[j + 4]! & 0xf) | ((mn[j + 4]! & 0xf) << 4);
        }
      }
    },
  };
}

/** Q6_K: 16 int8 sub-block scales (|sc| in [24, 63], random sign) at byte 192, f16 d at 208. */
const Q6K: Filler<Uint16Array> = {
  init: (std) => scaleTable(std / (((24 + 63) / 2) * levelStd(64)), false),
  patch(buf, n, rng, table) {
    for (let b = 0; b < n; b++) {
      const o = b * 210;
      for (let j = 0; j < 16; j += 4) {
        const r = rng.next();
        for (let i = 0; i < 4; i++) {
          const byte = (r >>> (i * 8)) & 0xff;
          const mag = 24 + ((byte & 0x7f) % 40);
          buf[o + 192 + j + i] = (byte & 0x80 ? -mag : mag) & 0xff;
        }
      }
      put16(buf, o + 208, table[rng.next() & 0xff]!);
    }
  },
};

/** Root mean square of a codebook (its values taken with equal probability). */
const rms = (values: readonly number[]): number => Math.sqrt(values.reduce((a, v) => a + v * v, 0) / values.length);

/** IQ4_NL: a signed f16 d (the codebook is not symmetric, a random sign centres it). */
const IQ4NL = symmetricFiller(18, 0, rms(IQ4NL_VALUES));

/**
 * Q2_K: 4-bit scales sc in [8, 15] and mins m = round(0.75 sc) with dmin = 2 d, so that
 * d*sc*q - dmin*m = d*sc*(q - 1.5) (to within rounding).
 */
const Q2K: Filler<Uint16Array> = {
  init: (std) => scaleTable(std / (11.5 * levelStd(4)), false),
  patch(buf, n, rng, table) {
    for (let b = 0; b < n; b++) {
      const o = b * 84;
      for (let j = 0; j < 16; j += 8) {
        const r = rng.next();
        for (let i = 0; i < 8; i++) {
          const sc = 8 + ((r >>> (4 * i)) & 7);
          buf[o + j + i] = sc | (Math.round(0.75 * sc) << 4);
        }
      }
      const d = table[rng.next() & 0xff]!;
      put16(buf, o + 80, d);
      put16(buf, o + 82, f32ToF16Bits(2 * f16BitsToF32(d)));
    }
  },
};

/** Q3_K / IQ4_XS: signed 6-bit sub-block scales s - 32 with |s - 32| in [8, 31]. */
function signedScale6(bits: number): number {
  const mag = 8 + ((bits & 0x1f) % 24);
  return 32 + (bits & 0x20 ? -mag : mag);
}

const Q3K: Filler<Uint16Array> = {
  init: (std) => scaleTable(std / (19.5 * rms([-4, -3, -2, -1, 0, 1, 2, 3])), false),
  patch(buf, n, rng, table) {
    for (let b = 0; b < n; b++) {
      const o = b * 110;
      buf.fill(0, o + 96, o + 108);
      for (let j = 0; j < 16; j++) {
        const s = signedScale6(rng.next());
        buf[o + 96 + (j & 7)] |= (s & 15) << (4 * (j >> 3));
        buf[o + 104 + (j & 3)] |= (s >> 4) << (2 * (j >> 2));
      }
      put16(buf, o + 108, table[rng.next() & 0xff]!);
    }
  },
};

const IQ4XS: Filler<Uint16Array> = {
  init: (std) => scaleTable(std / (19.5 * rms(IQ4NL_VALUES)), false),
  patch(buf, n, rng, table) {
    for (let b = 0; b < n; b++) {
      const o = b * 136;
      put16(buf, o, table[rng.next() & 0xff]!);
      let h = 0;
      buf.fill(0, o + 4, o + 8);
      for (let j = 0; j < 8; j++) {
        const s = signedScale6(rng.next());
        buf[o + 4 + (j >> 1)] |= (s & 15) << (4 * (j & 1));
        h |= (s >> 4) << (2 * j);
      }
      put16(buf, o + 2, h);
    }
  },
};

/**
 * MXFP4: the scale 2^(e-128) is a power of two, so each block takes e0 or e0 + 1 (the
 * exponents around the wanted scale) with the probabilities that give the wanted mean square.
 */
const MXFP4: Filler<{ e0: number; p: number }> = {
  init: (std) => {
    if (!(std > 0)) return { e0: 0, p: 0 };
    const r = std / rms(MXFP4_VALUES);
    const e0 = Math.floor(Math.log2(r));
    const x = (r / 2 ** e0) ** 2; // in [1, 4)
    return { e0: Math.max(1, Math.min(253, e0 + 128)), p: (x - 1) / 3 };
  },
  patch(buf, n, rng, { e0, p }) {
    for (let b = 0; b < n; b++) buf[b * 17] = e0 === 0 ? 0 : e0 + (rng.float() < p ? 1 : 0);
  },
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const FILLERS: Partial<Record<GGMLTypeName, Filler<any>>> = {
  F32,
  F16: halfFiller(f32ToF16Bits),
  BF16: halfFiller(f32ToBF16Bits),
  Q4_0: symmetricFiller(18, 16),
  Q5_0: symmetricFiller(22, 32),
  Q8_0: symmetricFiller(34, 256),
  Q4_1: affineFiller(20, 16),
  Q5_1: affineFiller(24, 32),
  Q4_K: kFiller(144, 16),
  Q5_K: kFiller(176, 32),
  Q6_K: Q6K,
  Q2_K: Q2K,
  Q3_K: Q3K,
  IQ4_NL: IQ4NL,
  IQ4_XS: IQ4XS,
  MXFP4,
};

/** The types `randomTensorChunks` can generate. */
export const RANDOM_TENSOR_TYPES = Object.keys(FILLERS) as GGMLTypeName[];
