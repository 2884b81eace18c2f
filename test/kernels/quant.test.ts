// The reference dequantizers against outside oracles: llama.cpp's own Q8_0 and F16
// conversions of stories260K (same weights as the F32 file), and blocks built by hand
// here, in JS, from the ggml format description (independently of quant/quant.cpp).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectGGUF } from '../../src/index.js';
import { dequantize } from '../../models/ggml-types.js';
import { randomTensorChunks } from '../../models/random-tensors.js';
import { k, rng, T } from './helpers.js';

const models = path.resolve(__dirname, '../../../shared/models');
const haveModels = fs.existsSync(path.join(models, 'stories260K-q8_0.gguf'));

function readTensor(file: string, name: string) {
  const info = inspectGGUF(file);
  const t = info.tensors.find((x) => x.name === name)!;
  const fd = fs.openSync(file, 'r');
  const buf = new Uint8Array(t.bytes);
  fs.readSync(fd, buf, 0, t.bytes, t.offset);
  fs.closeSync(fd);
  return { t, buf, n: t.shape.reduce((a, b) => a * b, 1) };
}

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

describe.skipIf(!haveModels)('dequantizers vs llama.cpp conversions of stories260K', () => {
  const f32File = path.join(models, 'stories260K-f32.gguf');
  const names = inspectGGUF(path.join(models, 'stories260K-q8_0.gguf')).tensors.filter((t) => t.type === 'Q8_0').map((t) => t.name);

  it('has Q8_0 tensors to check', () => expect(names.length).toBeGreaterThan(5));

  it('Q8_0: every value within half a step of the F32 original', () => {
    for (const name of names) {
      const q = readTensor(path.join(models, 'stories260K-q8_0.gguf'), name);
      const f = readTensor(f32File, name);
      expect(f.t.type).toBe('F32');
      const ref = new Float32Array(f.buf.buffer, f.buf.byteOffset, f.n);
      const deq = k()._dequantize(T.Q8_0, q.buf, q.n);
      for (let b = 0; b < q.n / 32; b++) {
        // llama.cpp: d = amax/127, q = round(x/d), d stored as fp16 (relative error <= 2^-11).
        // So |fp16(d) q - x| <= d/2 + 127 d 2^-11: half a step, plus the rounding of d.
        const d = Math.abs(f16ToF32(q.buf[34 * b] | (q.buf[34 * b + 1] << 8)));
        const bound = d * (0.5 + 127 * 2 ** -11) * (1 + 2 ** -10) + 1e-30;
        for (let i = 32 * b; i < 32 * b + 32; i++) if (!(Math.abs(deq[i] - ref[i]) <= bound)) throw new Error(`${name}[${i}]: ${deq[i]} vs ${ref[i]}`);
      }
    }
  });

  it('F16: every value is the F32 original rounded to half precision', () => {
    const f16File = path.join(models, 'stories260K-f16.gguf');
    const checked = inspectGGUF(f16File).tensors.filter((t) => t.type === 'F16');
    expect(checked.length).toBeGreaterThan(0);
    for (const { name } of checked) {
      const h = readTensor(f16File, name);
      const ref = new Float32Array(readTensor(f32File, name).buf.slice().buffer);
      const deq = k()._dequantize(T.F16, h.buf, h.n);
      for (let i = 0; i < h.n; i++)
        if (!(Math.abs(deq[i] - ref[i]) <= Math.abs(ref[i]) * 2 ** -11 + 2 ** -25)) throw new Error(`${name}[${i}]: ${deq[i]} vs ${ref[i]}`);
    }
  });
});

// ---- hand-built blocks (ggml layouts, little-endian) ----

const F16 = { 1: 0x3c00, 0.5: 0x3800, 0.25: 0x3400, 2: 0x4000 } as const;
const le16 = (buf: Uint8Array, at: number, v: number) => ((buf[at] = v & 255), (buf[at + 1] = (v >> 8) & 255));

describe('reference dequantizers decode hand-built blocks', () => {
  it('Q8_0 and Q4_0', () => {
    const q8 = new Uint8Array(34);
    le16(q8, 0, F16[0.5]);
    const v8 = Array.from({ length: 32 }, (_, i) => ((i * 9) % 256) - 128);
    for (let i = 0; i < 32; i++) q8[2 + i] = v8[i] & 255;
    expect(Array.from(k()._dequantize(T.Q8_0, q8, 32))).toEqual(v8.map((q) => 0.5 * q));
    const q4 = new Uint8Array(18);
    le16(q4, 0, F16[2]);
    const v = Array.from({ length: 32 }, (_, i) => (i * 7) % 16);
    for (let i = 0; i < 16; i++) q4[2 + i] = v[i] | (v[i + 16] << 4); // low nibble: value i, high: value i+16
    expect(Array.from(k()._dequantize(T.Q4_0, q4, 32))).toEqual(v.map((q) => 2 * (q - 8)));
  });

  // 6-bit scales and mins of Q4_K / Q5_K, 12 bytes: for j < 4 the low 6 bits of bytes j
  // (scale) and j+4 (min); for j >= 4 the scale is the low nibble of byte j+4 with the top
  // two bits of byte j-4 above it, and the min the high nibble of byte j+4 with the top
  // two bits of byte j above it.
  function packScales(sc: number[], m: number[]): number[] {
    const s = new Array(12).fill(0);
    for (let j = 0; j < 4; j++) {
      s[j] = sc[j] & 63;
      s[j + 4] = m[j] & 63;
    }
    for (let j = 4; j < 8; j++) {
      s[j + 4] = (sc[j] & 15) | ((m[j] & 15) << 4);
      s[j - 4] |= (sc[j] >> 4) << 6;
      s[j] |= (m[j] >> 4) << 6;
    }
    return s;
  }
  const sc = [1, 2, 3, 4, 17, 33, 50, 63];
  const mins = [0, 5, 10, 20, 31, 40, 47, 62];

  it('Q4_K', () => {
    const b = new Uint8Array(144);
    le16(b, 0, F16[0.5]);
    le16(b, 2, F16[0.25]);
    b.set(packScales(sc, mins), 4);
    const q = Array.from({ length: 256 }, (_, i) => (i * 5 + (i >> 4)) % 16);
    // 4 chunks of 64 values: byte 32c+l holds value 64c+l (low nibble) and 64c+32+l (high)
    for (let c = 0; c < 4; c++) for (let l = 0; l < 32; l++) b[16 + 32 * c + l] = q[64 * c + l] | (q[64 * c + 32 + l] << 4);
    const expected = q.map((v, i) => 0.5 * sc[i >> 5] * v - 0.25 * mins[i >> 5]);
    expect(Array.from(k()._dequantize(T.Q4_K, b, 256))).toEqual(expected);
  });

  it('Q5_K', () => {
    const b = new Uint8Array(176);
    le16(b, 0, F16[2]);
    le16(b, 2, F16[0.5]);
    b.set(packScales(sc, mins), 4);
    const q = Array.from({ length: 256 }, (_, i) => (i * 11 + (i >> 3)) % 32);
    // qh[32] at 16, qs[128] at 48; the fifth bit of value 32j+l is bit j of qh[l]
    for (let c = 0; c < 4; c++)
      for (let l = 0; l < 32; l++) {
        b[48 + 32 * c + l] = (q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4);
        b[16 + l] |= ((q[64 * c + l] >> 4) << (2 * c)) | ((q[64 * c + 32 + l] >> 4) << (2 * c + 1));
      }
    const expected = q.map((v, i) => 2 * sc[i >> 5] * v - 0.5 * mins[i >> 5]);
    expect(Array.from(k()._dequantize(T.Q5_K, b, 256))).toEqual(expected);
  });

  it('Q6_K', () => {
    const b = new Uint8Array(210);
    const scales = Array.from({ length: 16 }, (_, j) => (j % 2 ? -1 : 1) * (j * 8 + 1)); // int8, some negative
    const q = Array.from({ length: 256 }, (_, i) => (i * 13 + (i >> 5)) % 64);
    // ql[128] at 0, qh[64] at 128, scales[16] at 192, d at 208. Two halves of 128 values;
    // in half h, for l < 32: ql[64h+l] holds values 128h+l (low nibble) and 128h+64+l
    // (high), ql[64h+32+l] holds 128h+32+l and 128h+96+l; qh[32h+l] holds the top two
    // bits of 128h+l, +32, +64, +96 at bits 0, 2, 4, 6.
    for (let h = 0; h < 2; h++)
      for (let l = 0; l < 32; l++) {
        const v = [0, 32, 64, 96].map((o) => q[128 * h + o + l]);
        b[64 * h + l] = (v[0] & 15) | ((v[2] & 15) << 4);
        b[64 * h + 32 + l] = (v[1] & 15) | ((v[3] & 15) << 4);
        b[128 + 32 * h + l] = (v[0] >> 4) | ((v[1] >> 4) << 2) | ((v[2] >> 4) << 4) | ((v[3] >> 4) << 6);
      }
    scales.forEach((s, j) => (b[192 + j] = s & 255));
    le16(b, 208, F16[0.25]);
    const expected = q.map((v, i) => 0.25 * scales[i >> 4] * (v - 32));
    expect(Array.from(k()._dequantize(T.Q6_K, b, 256))).toEqual(expected);
  });

  // 32-value legacy blocks: the nibble of value i is the low one of qs[i] for i < 16,
  // the high one of qs[i - 16] otherwise; the fifth bit of value i is bit i of qh.
  const nibbles = (q: number[]) => Array.from({ length: 16 }, (_, i) => (q[i] & 15) | ((q[i + 16] & 15) << 4));
  const fifth = (q: number[]) => {
    let h = 0;
    q.forEach((v, i) => (h |= ((v >> 4) & 1) << i));
    return [h & 255, (h >>> 8) & 255, (h >>> 16) & 255, (h >>> 24) & 255];
  };

  it('Q4_1, Q5_0 and Q5_1', () => {
    const q4 = Array.from({ length: 32 }, (_, i) => (i * 7 + 3) % 16);
    const q5 = Array.from({ length: 32 }, (_, i) => (i * 13 + 5) % 32);
    const b41 = new Uint8Array(20); // d, m, qs[16]
    le16(b41, 0, F16[0.5]);
    le16(b41, 2, 0xc000); // m = -2
    b41.set(nibbles(q4), 4);
    expect(Array.from(k()._dequantize(T.Q4_1, b41, 32))).toEqual(q4.map((q) => 0.5 * q - 2));
    const b50 = new Uint8Array(22); // d, qh[4], qs[16]
    le16(b50, 0, F16[0.25]);
    b50.set(fifth(q5), 2);
    b50.set(nibbles(q5), 6);
    expect(Array.from(k()._dequantize(T.Q5_0, b50, 32))).toEqual(q5.map((q) => 0.25 * (q - 16)));
    const b51 = new Uint8Array(24); // d, m, qh[4], qs[16]
    le16(b51, 0, F16[2]);
    le16(b51, 2, F16[1]);
    b51.set(fifth(q5), 4);
    b51.set(nibbles(q5), 8);
    expect(Array.from(k()._dequantize(T.Q5_1, b51, 32))).toEqual(q5.map((q) => 2 * q + 1));
  });

  const IQ4NL = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
  it('IQ4_NL and MXFP4', () => {
    const q = Array.from({ length: 32 }, (_, i) => (i * 5 + 1) % 16);
    const nl = new Uint8Array(18);
    le16(nl, 0, F16[0.5]);
    nl.set(nibbles(q), 2);
    expect(Array.from(k()._dequantize(T.IQ4_NL, nl, 32))).toEqual(q.map((v) => 0.5 * IQ4NL[v]));
    // MXFP4: e (E8M0) then qs[16]; E2M1 codes 0..7 = 0, .5, 1, 1.5, 2, 3, 4, 6, bit 3 the sign
    const e2m1 = [0, 0.5, 1, 1.5, 2, 3, 4, 6];
    for (const e of [127, 130, 100, 1]) {
      const mx = new Uint8Array(17);
      mx[0] = e;
      mx.set(nibbles(q), 1);
      const expected = q.map((v) => (v & 8 ? -1 : 1) * e2m1[v & 7] * 2 ** (e - 127));
      expect(Array.from(k()._dequantize(T.MXFP4, mx, 32))).toEqual(expected.map((v) => (v === 0 ? 0 : v)));
    }
  });

  it('Q2_K', () => {
    const b = new Uint8Array(84); // scales[16] (low nibble scale, high nibble min), qs[64], d, dmin
    const sc = Array.from({ length: 16 }, (_, j) => (j * 3 + 1) % 16);
    const mn = Array.from({ length: 16 }, (_, j) => (j * 5 + 2) % 16);
    sc.forEach((s, j) => (b[j] = s | (mn[j] << 4)));
    const q = Array.from({ length: 256 }, (_, i) => (i * 3 + (i >> 5)) % 4);
    // value i: bits 2((i/32)%4) of qs[32(i/128) + i%32]
    q.forEach((v, i) => (b[16 + 32 * (i >> 7) + (i % 32)] |= v << (2 * ((i >> 5) % 4))));
    le16(b, 80, F16[0.5]);
    le16(b, 82, F16[0.25]);
    expect(Array.from(k()._dequantize(T.Q2_K, b, 256))).toEqual(q.map((v, i) => 0.5 * sc[i >> 4] * v - 0.25 * mn[i >> 4]));
  });

  it('Q3_K', () => {
    const b = new Uint8Array(110); // hmask[32], qs[64], scales[12], d
    const s6 = Array.from({ length: 16 }, (_, j) => (j * 11 + 7) % 64);
    // 6-bit scale j: low 4 bits in nibble j/8 of byte j%8, high 2 bits at bit 2(j/4) of byte 8 + j%4
    s6.forEach((s, j) => {
      b[96 + (j % 8)] |= (s & 15) << (4 * (j >> 3));
      b[96 + 8 + (j % 4)] |= (s >> 4) << (2 * (j >> 2));
    });
    const q = Array.from({ length: 256 }, (_, i) => (i * 5 + (i >> 4)) % 8);
    q.forEach((v, i) => {
      b[32 + 32 * (i >> 7) + (i % 32)] |= (v & 3) << (2 * ((i >> 5) % 4));
      b[i % 32] |= (v >> 2) << (i >> 5);
    });
    le16(b, 108, F16[0.25]);
    expect(Array.from(k()._dequantize(T.Q3_K, b, 256))).toEqual(q.map((v, i) => 0.25 * (s6[i >> 4] - 32) * (v - 4)));
  });

  it('IQ4_XS', () => {
    const b = new Uint8Array(136); // d, scales_h (u16), scales_l[4], qs[128]
    const ls = [0, 5, 17, 31, 32, 40, 63, 50];
    le16(b, 0, F16[0.5]);
    let h = 0;
    ls.forEach((l, j) => {
      b[4 + (j >> 1)] |= (l & 15) << (4 * (j & 1));
      h |= (l >> 4) << (2 * j);
    });
    le16(b, 2, h);
    const q = Array.from({ length: 256 }, (_, i) => (i * 7 + (i >> 6)) % 16);
    // sub-block j of 32: qs[16j + l] holds value 32j + l (low nibble) and 32j + 16 + l (high)
    q.forEach((v, i) => (b[8 + 16 * (i >> 5) + (i % 16)] |= v << (4 * ((i % 32) >> 4))));
    expect(Array.from(k()._dequantize(T.IQ4_XS, b, 256))).toEqual(q.map((v, i) => 0.5 * (ls[i >> 5] - 32) * IQ4NL[v]));
  });

  it('F16 and BF16', () => {
    const h = new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x3555, 0x0001, 0x7bff]).buffer);
    expect(Array.from(k()._dequantize(T.F16, h, 5))).toEqual([1, -2, 0.333251953125, 2 ** -24, 65504]);
    const bf = new Uint8Array(new Uint16Array([0x3f80, 0xc040, 0x4049]).buffer);
    expect(Array.from(k()._dequantize(T.BF16, bf, 3))).toEqual([1, -3, 3.140625]);
  });
});

describe('reference quantizers round-trip', () => {
  // Each quantizer's error bound follows from its step: Q8_0 d = amax/127 (error <= d/2 plus
  // the fp16 rounding of d); Q4_0 d = amax/8; the K-quants have per-sub-block steps after
  // 6-bit scale quantization, checked here against a relative RMS bound.
  const r = rng(77);
  const x = Float32Array.from({ length: 4096 }, () => (r() * 2 - 1) * (r() < 0.05 ? 8 : 1));
  const rms = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]) ** 2, 0) / a.length);
  const xr = Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
  for (const [name, maxRel] of [
    ['Q8_0', 0.01], ['Q4_0', 0.15], ['Q4_K', 0.15], ['Q5_K', 0.08], ['Q6_K', 0.04], ['F16', 0.001], ['BF16', 0.005],
    ['Q4_1', 0.12], ['Q5_0', 0.08], ['Q5_1', 0.06], ['IQ4_NL', 0.15], ['MXFP4', 0.25], ['Q2_K', 0.4], ['Q3_K', 0.3],
    ['IQ4_XS', 0.15],
  ] as const)
    it(`${name}: relative RMS error below ${maxRel}`, () => {
      const type = T[name];
      const y = k()._dequantize(type, k()._quantize(type, x), x.length);
      expect(rms(x, y) / xr).toBeLessThan(maxRel);
      expect(rms(x, y) / xr).toBeGreaterThan(0); // not a copy
    });
});

describe('the two reference dequantizers agree: native (quant/quant.cpp) and TypeScript (models/ggml-types.ts)', () => {
  // Written separately from the format description; random blocks from the synthetic
  // writer exercise every bit of every field.
  for (const type of ['Q4_0', 'Q8_0', 'Q4_K', 'Q5_K', 'Q6_K', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'IQ4_NL', 'IQ4_XS', 'MXFP4'] as const)
    it(type, () => {
      const count = 256 * 40;
      const bytes = [...randomTensorChunks({ type, count, std: 0.7, seed: 3, stream: type })][0]!;
      const native = k()._dequantize(T[type], bytes, count);
      const ts = dequantize(type, bytes, count);
      expect(native.length).toBe(count);
      let nonzero = 0;
      for (let i = 0; i < count; i++) {
        if (native[i] !== ts[i]) throw new Error(`${type}[${i}]: native ${native[i]}, TypeScript ${ts[i]}`);
        if (native[i] !== 0) nonzero++;
      }
      expect(nonzero).toBeGreaterThan(count / 2);
    });
});
