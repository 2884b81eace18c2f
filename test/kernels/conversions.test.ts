// The conversion kernels, on every ISA path against the generic twin, bit for bit, and
// against independent JS models:
// - the activation quantizers (float rows to BlockQ8A / BlockQ8KA for the integer
//   matmuls), modelled on ggml's Q8_0 / Q8_K activation rules;
// - f32 <-> f16 and the f16 round trip (the KV cache, the inputs of f16 products).
import { describe, expect, it } from 'vitest';
import { systemInfo } from '../../src/index.js';
import { k, quantizeActivations, rng, roundF16 } from './helpers.js';

const isas = systemInfo().supportedIsas;

/** Rows of awkward content: random magnitudes, exact ties, zeros, repeated extremes. */
function inputs(block: 32 | 256, blocks: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(block * blocks);
  for (let b = 0; b < blocks; b++) {
    const v = x.subarray(b * block, (b + 1) * block);
    const scale = 10 ** (r() * 8 - 4);
    for (let i = 0; i < block; i++) v[i] = (r() * 2 - 1) * scale;
    switch (b % 6) {
      case 1: // all zero: d = 0, q = 0
        v.fill(0);
        break;
      case 2: // largest magnitude twice with opposite signs: the first one sets the sign
        v[3] = -scale * 2;
        v[block - 2] = scale * 2;
        break;
      case 3: // amax 127 (the 32-block scale is then 1): values at exact .5 ties
        for (let i = 0; i < block; i++) v[i] = Math.round((r() * 2 - 1) * 100) + 0.5;
        v[0] = 127;
        break;
      case 4: // the maximum last, negative
        v[block - 1] = -scale * 3;
        break;
      case 5: // tiny values (the fp16 scale is subnormal)
        for (let i = 0; i < block; i++) v[i] = (r() * 2 - 1) * 1e-6;
        break;
    }
  }
  return x;
}

/** d * q per value, read back from the blocks. */
function decode(bytes: Uint8Array, block: 32 | 256, n: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = block === 32 ? 40 : 308;
  const qs = block === 32 ? 8 : 52;
  const out = new Float32Array(n);
  for (let b = 0; b < n / block; b++) {
    const d = view.getFloat32(b * size, true);
    let total = 0;
    const sums = new Array<number>(16).fill(0);
    for (let i = 0; i < block; i++) {
      const q = view.getInt8(b * size + qs + i);
      out[b * block + i] = d * q;
      total += q;
      sums[i >> 4]! += q;
    }
    if (block === 32) expect(view.getInt32(b * size + 4, true)).toBe(total);
    else
      for (let s = 0; s < 16; s++) {
        expect(view.getInt16(b * size + 4 + 2 * s, true)).toBe(sums[s]);
        if (s % 2 === 0) expect(view.getInt16(b * size + 36 + s, true)).toBe(sums[s]! + sums[s + 1]!);
      }
  }
  return out;
}

describe('activation quantizers: every path agrees with the generic twin, byte for byte', () => {
  for (const block of [32, 256] as const) {
    for (const isa of isas) {
      it(`${block === 32 ? 'Q8_0 (32)' : 'Q8_K (256)'} blocks on ${isa}`, () => {
        let seed = 11;
        for (const blocks of [1, 2, 3, 5, 7, 12, 25]) {
          const x = inputs(block, blocks, seed++);
          const ours = k()._quantizeActivations(isa, block, x);
          const twin = k()._quantizeActivations('generic', block, x);
          expect(Buffer.from(ours).equals(Buffer.from(twin)), `${isa} vs generic, ${blocks} blocks`).toBe(true);
          expect(decode(ours, block, x.length)).toEqual(quantizeActivations(x, block));
        }
      });
    }
  }

  it('refuses a block size other than 32 or 256, or a length it does not divide', () => {
    expect(() => k()._quantizeActivations('generic', 64 as never, new Float32Array(64))).toThrow(/block/);
    expect(() => k()._quantizeActivations('generic', 32, new Float32Array(33))).toThrow(/block/);
  });
});

describe('f16 conversions: every path agrees with the exact scalar twin, bit for bit', () => {
  /** Floats around every f16 regime: normal, ties at half an f16 ulp, subnormal, overflow. */
  function floats(n: number, seed: number): Float32Array {
    const r = rng(seed);
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const sign = r() < 0.5 ? -1 : 1;
      switch (i % 6) {
        case 0: x[i] = sign * 10 ** (r() * 10 - 5); break;
        case 1: x[i] = sign * (1 + (Math.floor(r() * 1024) + 0.5) / 1024) * 2 ** Math.floor(r() * 30 - 14); break; // ties
        case 2: x[i] = sign * r() * 2 ** -14; break; // f16 subnormal range
        case 3: x[i] = sign * (65504 + r() * 40); break; // the largest f16 and the overflow boundary (65520)
        case 4: x[i] = [0, -0, Infinity, -Infinity, 2 ** -25, 2 ** -24 * 1.5][Math.floor(r() * 6)]!; break;
        default: x[i] = sign * r() * 100;
      }
    }
    return x;
  }
  const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);

  for (const isa of isas) {
    it(`f32 -> f16, f16 -> f32 and the round trip on ${isa}`, () => {
      let seed = 5;
      for (const n of [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 100, 1000]) {
        const x = floats(n, seed++);
        const h = k()._convertF16(isa, 'to', x);
        expect(Array.from(h)).toEqual(Array.from(k()._convertF16('generic', 'to', x)));
        expect(Array.from(bits(k()._convertF16(isa, 'round', x)))).toEqual(Array.from(bits(k()._convertF16('generic', 'round', x))));
        // The independent JS model of the rounding.
        expect(Array.from(k()._convertF16(isa, 'round', x))).toEqual(Array.from(x, roundF16));
      }
      // Every f16 bit pattern but the NaNs, at an awkward length.
      const all = Uint16Array.from({ length: 65536 }, (_, i) => i).filter((h) => (h & 0x7c00) !== 0x7c00 || (h & 0x3ff) === 0);
      const wide = k()._convertF16(isa, 'from', all);
      expect(Array.from(bits(wide))).toEqual(Array.from(bits(k()._convertF16('generic', 'from', all))));
      expect(Array.from(k()._convertF16(isa, 'to', wide))).toEqual(Array.from(all)); // exact round trip
    });
  }
});
