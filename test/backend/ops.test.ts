// Every backend operation (native/backend/backend.h) against a plain reference written
// here, on awkward shapes (odd token counts, head dims 64/80/128, GQA ratios 1/4/6,
// positions near the end of the context), for every backend this build has and every
// kernel path this CPU runs, in the manner of llama.cpp's test-backend-ops. A second
// backend joins by appearing in internal.backends(). Attention is also checked for
// bit-identical results whatever the thread count, the chunking of the tokens and the
// other sequences of the batch. The NEON path runs the same operations under qemu
// (neon-qemu.test.ts, test/backend/native/ops_isa_test.cpp).
import { describe, expect, it } from 'vitest';
import { systemInfo } from '../../src/index.js';
import { addon } from '../../src/native.js';
import { activationsAsSeen, k, rng, roundF16, T, type TypeName } from '../kernels/helpers.js';

interface Seq {
  pos0?: number;
  n: number;
}
interface InternalAddon {
  internal: {
    backends(): string[];
    backendOp(op: string, spec: Record<string, unknown>): Float32Array | Float32Array[];
    pvF16(isa: string, w: Float32Array, v: Uint16Array, out: Float32Array, rows: number, np: number, hd: number): Float32Array;
  };
}
const internal = () => addon<InternalAddon>().internal;
const op = (name: string, spec: Record<string, unknown>) => internal().backendOp(name, spec) as Float32Array;

const isas = systemInfo().supportedIsas;
const ALL_ISAS = ['generic', 'avx2', 'avx512', 'neon'];
const f = Math.fround;

function random(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => f((r() * 2 - 1) * scale));
}

/** Largest |got - want| / (tol(i)) over all values; throws with the first bad index. */
function expectClose(got: Float32Array, want: ArrayLike<number>, tol: (i: number) => number, what: string) {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (!(d <= tol(i))) throw new Error(`${what}: value ${i} is ${got[i]}, reference ${want[i]} (tolerance ${tol(i)})`);
  }
}

function expectBits(a: Float32Array, b: Float32Array, what: string) {
  expect(a.length, what).toBe(b.length);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++)
    if (ua[i] !== ub[i]) throw new Error(`${what}: value ${i} differs in its bits (${a[i]} vs ${b[i]})`);
}

// ---------------------------------------------------------------------------------
// References.

/** Activation sparsity: in each row, the floor(frac * width) entries of smallest |x| (ordered by the bits of |x|, ties by index) become +0. */
function refSparsify(x: Float32Array, width: number, frac: Float32Array): Float32Array {
  const out = x.slice();
  const bits = new Uint32Array(out.buffer);
  for (let t = 0; t < frac.length; t++) {
    const k = Math.min(width, Math.max(0, Math.floor(frac[t]! * width)));
    const idx = Array.from({ length: width }, (_, i) => t * width + i);
    const key = (i: number) => bits[i]! & 0x7fffffff;
    idx.sort((a, b) => key(a) - key(b) || a - b);
    for (let j = 0; j < k; j++) out[idx[j]!] = 0;
  }
  return out;
}

/** Rows for sparsify: random values with many ties, zeros of both signs, denormals, huge values, NaN and infinities. */
function sparsifyInput(rows: number, width: number, seed: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(rows * width);
  for (let i = 0; i < x.length; i++) {
    const u = r();
    const sign = r() < 0.5 ? -1 : 1;
    x[i] =
      u < 0.3 ? sign * Math.round(r() * 6) / 4 // ties (and +-0)
      : u < 0.33 ? sign * 1e-40 * Math.round(r() * 4) // denormals
      : u < 0.335 ? [NaN, Infinity, -Infinity, 3e38][Math.floor(r() * 4)]!
      : sign * Math.exp((r() - 0.5) * 20);
  }
  return x;
}

function refRmsnorm(x: Float32Array, w: Float32Array, d: number, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let t = 0; t < x.length / d; t++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[t * d + i] ** 2;
    const s = 1 / Math.sqrt(ss / d + eps);
    for (let i = 0; i < d; i++) out[t * d + i] = x[t * d + i] * s * w[i];
  }
  return out;
}

interface RopeSpec {
  headDim: number;
  ropeDim: number;
  base: number;
  freqScale: number;
  style: 'normal' | 'neox';
  factors?: Float32Array;
}

/** Angles of position pos: theta_i = pos * base^(-2i/ropeDim) by llama.cpp's iterated float product. */
function angles(p: RopeSpec, pos: number): number[] {
  const scale = f(Math.pow(p.base, f(-2 / p.ropeDim)));
  let theta = f(pos);
  const out: number[] = [];
  for (let i = 0; i < p.ropeDim / 2; i++) {
    const ff = p.factors ? p.factors[i] : 1;
    out.push(f(p.freqScale * f(theta / ff)));
    theta = f(theta * scale);
  }
  return out;
}

/** Rotates one token's heads (in place, in double). */
function ropeToken(x: Float64Array | Float32Array, off: number, heads: number, p: RopeSpec, pos: number) {
  const th = angles(p, pos);
  const half = p.ropeDim / 2;
  for (let h = 0; h < heads; h++) {
    const b = off + h * p.headDim;
    for (let i = 0; i < half; i++) {
      const ia = p.style === 'normal' ? 2 * i : i;
      const ib = p.style === 'normal' ? 2 * i + 1 : i + half;
      const x0 = x[b + ia],
        x1 = x[b + ib];
      const c = Math.cos(th[i]),
        s = Math.sin(th[i]);
      x[b + ia] = x0 * c - x1 * s;
      x[b + ib] = x0 * s + x1 * c;
    }
  }
}

/** A row as the KV cache holds it: f16 values, or Q8_0 blocks (the reference quantizer). */
function asCached(row: Float32Array, kvType: 'f16' | 'q8_0'): Float32Array {
  if (kvType === 'f16') return Float32Array.from(row, roundF16);
  return k()._dequantize(T.Q8_0, k()._quantize(T.Q8_0, row), row.length);
}

interface AttnSpec {
  nHead: number;
  nHeadKv: number;
  headDim: number;
  kvType: 'f16' | 'q8_0';
  ctx: number;
  seqs: Seq[];
  /** Multiplies Q.K (default 1/sqrt(headDim)). */
  scale?: number;
  /** Logit soft-capping (Gemma 2): s -> softcap * tanh(s / softcap). */
  softcap?: number;
  /** Sliding window: a token at position p sees (p - window, p]. */
  window?: number;
  /** Attention sinks (gpt-oss): one logit per head, counted in the softmax, weighing no value. */
  sinks?: Float32Array;
}

/** Inputs: q for the new tokens, k and v for every sequence's positions [0, pos0 + n). */
function attnInputs(s: AttnSpec, seed: number) {
  const QD = s.nHead * s.headDim,
    KVD = s.nHeadKv * s.headDim;
  const N = s.seqs.reduce((a, q) => a + q.n, 0);
  const P = s.seqs.reduce((a, q) => a + (q.pos0 ?? 0) + q.n, 0);
  return { q: random(N * QD, seed, 2), k: random(P * KVD, seed + 1, 2), v: random(P * KVD, seed + 2) };
}

/** Exact attention in double over the cached k and v (q optionally rounded to f16). */
function refAttention(s: AttnSpec, q: Float32Array, k: Float32Array, v: Float32Array, roundQ: boolean): Float64Array {
  const HD = s.headDim,
    QD = s.nHead * HD,
    KVD = s.nHeadKv * HD,
    G = s.nHead / s.nHeadKv;
  const out = new Float64Array(q.length);
  const scale = s.scale ?? f(1 / Math.sqrt(HD));
  const cap = s.softcap ?? 0;
  let tok = 0,
    kvOff = 0;
  for (const sq of s.seqs) {
    const pos0 = sq.pos0 ?? 0,
      len = pos0 + sq.n;
    const kc: Float32Array[] = [],
      vc: Float32Array[] = [];
    for (let p = 0; p < len; p++)
      for (let h = 0; h < s.nHeadKv; h++) {
        const o = (kvOff + p) * KVD + h * HD;
        kc.push(asCached(k.subarray(o, o + HD), s.kvType));
        vc.push(asCached(v.subarray(o, o + HD), s.kvType));
      }
    for (let t = 0; t < sq.n; t++, tok++) {
      const vis = pos0 + t + 1;
      for (let h = 0; h < s.nHead; h++) {
        const kh = Math.floor(h / G);
        const qr = Array.from(q.subarray(tok * QD + h * HD, tok * QD + (h + 1) * HD), (x) => (roundQ ? roundF16(x) : x));
        const sc: number[] = [];
        const lo = s.window ? Math.max(0, vis - s.window) : 0;
        for (let p = 0; p < vis; p++) {
          const kr = kc[p * s.nHeadKv + kh];
          let d = 0;
          for (let i = 0; i < HD; i++) d += qr[i] * kr[i];
          if (cap) d = cap * Math.tanh(d / cap);
          sc.push(p < lo ? -Infinity : d * scale);
        }
        const sink = s.sinks ? s.sinks[h]! : -Infinity;
        const mx = Math.max(...sc, sink);
        const e = sc.map((x) => Math.exp(x - mx));
        const sum = e.reduce((a, b) => a + b, 0) + Math.exp(sink - mx);
        for (let p = 0; p < vis; p++) {
          const vr = vc[p * s.nHeadKv + kh];
          for (let i = 0; i < HD; i++) out[tok * QD + h * HD + i] += (e[p] / sum) * vr[i];
        }
      }
    }
    kvOff += len;
  }
  return out;
}

/** Quantized weights of rows x cols and their dequantized values. */
function weights(type: TypeName, rows: number, cols: number, seed: number) {
  const w = k()._quantize(T[type], random(rows * cols, seed));
  return { w, deq: k()._dequantize(T[type], w, rows * cols) };
}

/** |W| |x| per output (y = W x), for error bounds. */
function absProduct(deq: Float32Array, rows: number, cols: number, x: Float32Array, n: number): Float64Array {
  const out = new Float64Array(n * rows);
  for (let t = 0; t < n; t++)
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += Math.abs(deq[r * cols + c] * x[t * cols + c]);
      out[t * rows + r] = s;
    }
  return out;
}

const ATTN_SHAPES: (AttnSpec & { name: string })[] = [
  { name: 'hd64 MHA, 1 token (decode) at position 0', nHead: 4, nHeadKv: 4, headDim: 64, kvType: 'f16', ctx: 64, seqs: [{ n: 1 }] },
  { name: 'hd64 GQA 4, 13 tokens after 20 cached', nHead: 8, nHeadKv: 2, headDim: 64, kvType: 'f16', ctx: 64, seqs: [{ pos0: 20, n: 13 }] },
  { name: 'hd80 GQA 6, 7 tokens at the end of the context', nHead: 6, nHeadKv: 1, headDim: 80, kvType: 'f16', ctx: 203, seqs: [{ pos0: 196, n: 7 }] },
  { name: 'hd128 GQA 4, q8_0 cache, two sequences', nHead: 8, nHeadKv: 2, headDim: 128, kvType: 'q8_0', ctx: 160, seqs: [{ pos0: 150, n: 10 }, { pos0: 3, n: 5 }] },
  { name: 'hd128 GQA 2, 70 tokens (long prompt chunk)', nHead: 4, nHeadKv: 2, headDim: 128, kvType: 'f16', ctx: 96, seqs: [{ pos0: 5, n: 70 }] },
  // Gemma: Q comes pre-scaled (scale 1), logits soft-capped, sliding windows.
  {
    name: 'hd128 GQA 2, soft cap 2 and window 10, 70 tokens (Gemma 2)', nHead: 4, nHeadKv: 2, headDim: 128, kvType: 'f16', ctx: 96,
    seqs: [{ pos0: 5, n: 70 }], scale: 1, softcap: 2, window: 10,
  },
  {
    name: 'hd256 MQA, window 16, 9 tokens after 30 cached, two sequences (Gemma 3)', nHead: 2, nHeadKv: 1, headDim: 256, kvType: 'f16',
    ctx: 64, seqs: [{ pos0: 30, n: 9 }, { pos0: 0, n: 5 }], scale: 1 / 16, window: 16,
  },
  {
    name: 'hd64 GQA 4, q8_0 cache, soft cap 1.5, window 7, 13 tokens after 20', nHead: 8, nHeadKv: 2, headDim: 64, kvType: 'q8_0', ctx: 40,
    seqs: [{ pos0: 20, n: 13 }], scale: 1, softcap: 1.5, window: 7,
  },
  // gpt-oss: attention sinks (some above every logit, some below), windows of 128 on half
  // the layers. Sinks from -3 to 4.
  {
    name: 'hd64 GQA 4, sinks, window 9, 13 tokens after 20 (gpt-oss)', nHead: 8, nHeadKv: 2, headDim: 64, kvType: 'f16', ctx: 40,
    seqs: [{ pos0: 20, n: 13 }], window: 9, sinks: Float32Array.from({ length: 8 }, (_, h) => -3 + h),
  },
  {
    name: 'hd64 GQA 2, sinks, 1 token after 30 and 70 tokens (gpt-oss)', nHead: 4, nHeadKv: 2, headDim: 64, kvType: 'f16', ctx: 80,
    seqs: [{ pos0: 30, n: 1 }, { pos0: 2, n: 70 }], sinks: Float32Array.from([2.5, -1, 0.5, 4]),
  },
  {
    name: 'hd64 GQA 2, q8_0 cache, sinks, 70 tokens (gpt-oss)', nHead: 4, nHeadKv: 2, headDim: 64, kvType: 'q8_0', ctx: 80,
    seqs: [{ pos0: 3, n: 70 }], sinks: Float32Array.from([1, -2, 3, 0]),
  },
  {
    name: 'hd64 GQA 2, sinks, window 20, 70 tokens (gpt-oss; the tiled flash route)', nHead: 4, nHeadKv: 2, headDim: 64, kvType: 'f16', ctx: 80,
    seqs: [{ pos0: 3, n: 70 }], window: 20, sinks: Float32Array.from([1, -2, 3, 0]),
  },
];

for (const backend of internal().backends()) {
  for (const isa of ALL_ISAS) {
    if (!isas.includes(isa)) {
      it.skip(`${backend}/${isa}: this CPU or build does not run the ${isa} path`, () => {});
      continue;
    }
    describe(`backend ${backend}, ${isa} kernels`, () => {
      const base = { backend, isa };

      it('embed: rows of F32 / F16 / Q8_0 / Q4_0 / Q4_K tables, as the reference dequantizer gives them', () => {
        for (const [type, cols] of [['F32', 40], ['F16', 72], ['Q8_0', 96], ['Q4_0', 160], ['Q4_K', 256]] as [TypeName, number][]) {
          const rows = 37;
          const { w, deq } = weights(type, rows, cols, 11);
          const tokens = Int32Array.from([36, 0, 5, 5, 17, 1, 30]);
          const got = op('embed', { ...base, type: T[type], w, rows, cols, tokens, threads: 2 });
          const want = new Float32Array(tokens.length * cols);
          tokens.forEach((t, i) => want.set(deq.subarray(t * cols, (t + 1) * cols), i * cols));
          expectBits(got, want, `embed ${type}`);
        }
      });

      it('rmsnorm: odd widths and token counts', () => {
        for (const [d, n] of [[64, 1], [576, 7], [100, 13]]) {
          const x = random(n * d, d + n, 3);
          const w = random(d, 5);
          const got = op('rmsnorm', { ...base, x, width: d, w, eps: 1e-5, threads: 3 });
          const want = refRmsnorm(x, w, d, 1e-5);
          expectClose(got, want, (i) => 1e-6 * Math.abs(want[i]) + 1e-7, `rmsnorm d=${d} n=${n}`);
        }
      });

      it('rmsnormHeads: each head of each row normed alone (Qwen3 Q/K norms), head dims 64/80/128', () => {
        for (const [hd, heads, n] of [[64, 3, 5], [80, 1, 9], [128, 6, 2]]) {
          const d = hd * heads;
          const x = random(n * d, hd + n, 4);
          const w = random(hd, 9, 1.5);
          const got = op('rmsnormHeads', { ...base, x, width: d, headDim: hd, w, eps: 1e-6, threads: 3 });
          // A head is a row of width hd for the plain reference.
          const want = refRmsnorm(x, w, hd, 1e-6);
          expectClose(got, want, (i) => 1e-6 * Math.abs(want[i]) + 1e-7, `rmsnormHeads hd=${hd} heads=${heads} n=${n}`);
        }
        expect(() => op('rmsnormHeads', { ...base, x: new Float32Array(12), width: 12, headDim: 5, w: new Float32Array(5), eps: 0 })).toThrow(
          expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
        );
      });

      it('matmul: a group of four products (shared and separate inputs, mixed types) equals each product alone and the reference', () => {
        const n = 5,
          cols = 256;
        const x0 = random(n * cols, 21, 2),
          x1 = random(n * 512, 22);
        const mats = [
          { type: 'Q4_0' as TypeName, rows: 53, cols, input: 0 },
          { type: 'Q4_0' as TypeName, rows: 16, cols, input: 0 },
          { type: 'Q8_0' as TypeName, rows: 40, cols, input: 0 },
          { type: 'Q4_K' as TypeName, rows: 33, cols: 512, input: 1 },
          { type: 'F16' as TypeName, rows: 9, cols, input: 0 },
        ].map((m, i) => ({ ...m, ...weights(m.type, m.rows, m.cols, 30 + i) }));
        const ys = internal().backendOp('matmul', {
          ...base,
          threads: 2,
          inputs: [x0, x1],
          mats: mats.map((m) => ({ type: T[m.type], w: m.w, rows: m.rows, cols: m.cols, input: m.input })),
        }) as Float32Array[];
        expect(ys.length).toBe(mats.length);
        mats.forEach((m, i) => {
          const x = m.input === 0 ? x0 : x1;
          // The same bits as the product alone through the kernels' test hook.
          expectBits(ys[i], k()._matmul(isa, T[m.type], m.w, m.rows, m.cols, x, n), `matmul ${i} (${m.type}) alone`);
          // And the reference: W times the activations as the weights' input format sees them.
          const want = k()._matmulReference(T[m.type], m.w, m.rows, m.cols, activationsAsSeen(m.type, x), n);
          const mag = absProduct(m.deq, m.rows, m.cols, x, n);
          const got = Float32Array.from({ length: n * m.rows }, (_, j) => ys[i][j]);
          expectClose(got, want, (j) => 1e-4 * mag[j] + 1e-6, `matmul ${i} (${m.type})`);
        });
      });

      it('matmul: a group of the later weight types (Q4_1 .. Q3_K, three input formats) equals each product alone and the reference', () => {
        // 9 tokens: a full 8-token tile and a remainder on the paths that tile by 8
        const n = 9;
        const xs = [random(n * 256, 23, 2), random(n * 160, 24), random(n * 512, 25, 3)];
        const mats = [
          { type: 'Q4_1' as TypeName, rows: 53, cols: 256, input: 0 },
          { type: 'Q5_1' as TypeName, rows: 20, cols: 256, input: 0 },
          { type: 'Q5_0' as TypeName, rows: 37, cols: 160, input: 1 },
          { type: 'IQ4_NL' as TypeName, rows: 16, cols: 160, input: 1 },
          { type: 'MXFP4' as TypeName, rows: 33, cols: 160, input: 1 },
          { type: 'Q2_K' as TypeName, rows: 35, cols: 512, input: 2 },
          { type: 'Q3_K' as TypeName, rows: 17, cols: 512, input: 2 },
          { type: 'IQ4_XS' as TypeName, rows: 48, cols: 512, input: 2 },
        ].map((m, i) => ({ ...m, ...weights(m.type, m.rows, m.cols, 60 + i) }));
        const ys = internal().backendOp('matmul', {
          ...base,
          threads: 3,
          inputs: xs,
          mats: mats.map((m) => ({ type: T[m.type], w: m.w, rows: m.rows, cols: m.cols, input: m.input })),
        }) as Float32Array[];
        expect(ys.length).toBe(mats.length);
        mats.forEach((m, i) => {
          const x = xs[m.input];
          expectBits(ys[i], k()._matmul(isa, T[m.type], m.w, m.rows, m.cols, x, n), `matmul ${i} (${m.type}) alone`);
          const want = k()._matmulReference(T[m.type], m.w, m.rows, m.cols, activationsAsSeen(m.type, x), n);
          const mag = absProduct(m.deq, m.rows, m.cols, x, n);
          const got = Float32Array.from({ length: n * m.rows }, (_, j) => ys[i][j]);
          // Q4_1 / Q5_1: the Q8_1 float s moves the min term by up to 2^-10 of it (see matmul.test.ts)
          const rel = m.type === 'Q4_1' || m.type === 'Q5_1' ? 2e-3 : 1e-4;
          expectClose(got, want, (j) => rel * mag[j] + 1e-6, `matmul ${i} (${m.type})`);
        });
      });

      it('addBias and add: element by element in float', () => {
        const d = 37,
          n = 9;
        const y = random(n * d, 41),
          b = random(d, 42),
          z = random(n * d, 43);
        const got = op('addBias', { ...base, y, width: d, b, threads: 2 });
        expectBits(got, Float32Array.from(y, (v, i) => f(v + b[i % d])), 'addBias');
        expectBits(op('addBias', { ...base, y, width: d, b: new Float32Array(0) }), y, 'addBias without a bias');
        expectBits(op('add', { ...base, x: y, y: z, width: d, threads: 2 }), Float32Array.from(y, (v, i) => f(v + z[i])), 'add');
      });

      it('rope: normal and NeoX, partial rotation, frequency factors, linear scaling, positions near the context end', () => {
        const cases: (RopeSpec & { nHeads: number; seqs: Seq[] })[] = [
          { headDim: 64, ropeDim: 64, base: 10000, freqScale: 1, style: 'normal', nHeads: 4, seqs: [{ n: 7 }] },
          { headDim: 128, ropeDim: 128, base: 1e6, freqScale: 1, style: 'neox', nHeads: 3, seqs: [{ pos0: 4085, n: 11 }] },
          { headDim: 80, ropeDim: 32, base: 10000, freqScale: 0.25, style: 'neox', nHeads: 2, seqs: [{ pos0: 2040, n: 3 }, { pos0: 1, n: 4 }] },
          {
            headDim: 64, ropeDim: 64, base: 500000, freqScale: 1, style: 'normal', nHeads: 2, seqs: [{ pos0: 8000, n: 5 }],
            factors: Float32Array.from({ length: 32 }, (_, i) => (i < 10 ? 1 : i < 20 ? 1 + (i - 10) * 0.7 : 8)),
          },
        ];
        for (const c of cases) {
          const n = c.seqs.reduce((a, q) => a + q.n, 0);
          const width = c.nHeads * c.headDim + 16; // extra columns the op must leave alone
          const x = random(n * width, c.headDim + n, 1);
          const got = op('rope', { ...base, ...c, x, width, threads: 2 });
          const want = Float64Array.from(x);
          let t = 0;
          for (const sq of c.seqs) for (let j = 0; j < sq.n; j++, t++) ropeToken(want, t * width, c.nHeads, c, (sq.pos0 ?? 0) + j);
          expectClose(got, want, () => 5e-4, `rope ${c.style} hd${c.headDim}`);
        }
      });

      it('glu (SwiGLU): silu(gate) * up', () => {
        const d = 96,
          n = 7;
        const g = random(n * d, 51, 6),
          u = random(n * d, 52);
        const got = op('glu', { ...base, kind: 'swiglu', gate: g, up: u, width: d, threads: 2 });
        const want = Float64Array.from(g, (x, i) => (x / (1 + Math.exp(-x))) * u[i]);
        expectClose(got, want, (i) => 1e-6 * Math.abs(want[i]) + 1e-7, 'swiglu');
      });

      it('glu (GeGLU): ggml\'s f16-table gelu(gate) * up, and 0 / gate outside (-10, 10)', () => {
        const d = 200,
          n = 5;
        const g = random(n * d, 53, 12),
          u = random(n * d, 54);
        const got = op('glu', { ...base, kind: 'geglu', gate: g, up: u, width: d, threads: 2 });
        const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * x * (1 + 0.044715 * x * x)));
        const act = Float64Array.from(g, (x) => (x <= -10 ? 0 : x >= 10 ? x : roundF16(gelu(roundF16(x)))));
        const want = Float64Array.from(act, (a, i) => a * u[i]);
        // The table holds the f16 rounding of a float evaluation: one f16 step at most.
        expectClose(got, want, (i) => 2 ** -10 * Math.abs(act[i] * u[i]) + 1e-7, 'geglu');
        // Not SwiGLU: the two activations differ by far more than that.
        const swi = op('glu', { ...base, kind: 'swiglu', gate: g, up: u, width: d, threads: 2 });
        expect(Math.max(...Array.from(swi, (x, i) => Math.abs(x - got[i])))).toBeGreaterThan(0.1);
      });

      it('glu (gpt-oss clamped SwiGLU): min(gate, 7) sigmoid(1.702 min(gate, 7)) (clamp(up, -7, 7) + 1)', () => {
        const d = 130,
          n = 3;
        // Gates and ups of up to +-12: both clamps are reached.
        const g = random(n * d, 56, 12),
          u = random(n * d, 57, 12);
        const got = op('glu', { ...base, kind: 'swiglu_oai', gate: g, up: u, width: d, threads: 2 });
        const want = Float64Array.from(g, (gv, i) => {
          const x = Math.min(gv, 7),
            y = Math.min(Math.max(u[i]!, -7), 7);
          return (x / (1 + Math.exp(-1.702 * x))) * (y + 1);
        });
        expectClose(got, want, (i) => 1e-6 * Math.abs(want[i]!) + 1e-6, 'swiglu_oai');
        expect(g.some((x) => x > 7) && u.some((x) => Math.abs(x) > 7)).toBe(true);
        // Not plain SwiGLU.
        const swi = op('glu', { ...base, kind: 'swiglu', gate: g, up: u, width: d, threads: 2 });
        expect(Math.max(...Array.from(swi, (x, i) => Math.abs(x - got[i]!)))).toBeGreaterThan(1);
      });

      it('scale: x * s in place', () => {
        const x = random(9 * 50, 55, 3);
        const got = op('scale', { ...base, x, width: 50, s: 47.98, threads: 2 });
        expectBits(got, Float32Array.from(x, (v) => f(v * f(47.98))), 'scale');
      });

      it('moe: softmax routing, top-k, renormalized weights, the experts of each token summed in decreasing probability', () => {
        const D = 64, E = 6, K = 2, F = 96, n = 11;
        const x = random(n * D, 81, 2);
        const router = random(E * D, 82, 0.5);
        for (const type of ['F32', 'Q8_0'] as TypeName[]) {
          const g = weights(type, E * F, D, 83), u = weights(type, E * F, D, 84), dn = weights(type, E * D, F, 85);
          const spec = { ...base, x, width: D, nExpert: E, nUsed: K, ff: F, router, type: T[type], gate: g.w, up: u.w, down: dn.w };
          const got = op('moe', { ...spec, threads: 3 });
          if (type === 'F32') {
            const want = new Float64Array(n * D);
            for (let t = 0; t < n; t++) {
              const xt = x.subarray(t * D, (t + 1) * D);
              const logits = Array.from({ length: E }, (_, e) => xt.reduce((a, v, i) => a + v * router[e * D + i], 0));
              const mx = Math.max(...logits);
              const ex = logits.map((l) => Math.exp(l - mx));
              const sum = ex.reduce((a, b) => a + b, 0);
              const probs = ex.map((v) => v / sum);
              const order = probs.map((p, e) => [p, e]).sort((a, b) => b[0] - a[0]).slice(0, K);
              const wsum = order.reduce((a, [p]) => a + p, 0);
              for (const [p, e] of order) {
                const act = new Float64Array(F);
                for (let j = 0; j < F; j++) {
                  let gg = 0, uu = 0;
                  for (let i = 0; i < D; i++) (gg += g.deq[(e * F + j) * D + i] * xt[i]), (uu += u.deq[(e * F + j) * D + i] * xt[i]);
                  act[j] = (gg / (1 + Math.exp(-gg))) * uu;
                }
                for (let o = 0; o < D; o++) {
                  let y = 0;
                  for (let j = 0; j < F; j++) y += dn.deq[(e * D + o) * F + j] * act[j];
                  want[t * D + o] += (p / wsum) * y;
                }
              }
            }
            const mag = Math.max(...Array.from(want, Math.abs));
            expectClose(got, want, () => 2e-5 * mag + 1e-6, 'moe (F32 experts)');
          }
          // The tokens are grouped per expert: any batch gives each token the same bits.
          for (const t of [0, 7, 10]) {
            const one = op('moe', { ...spec, x: x.slice(t * D, (t + 1) * D), threads: 1 });
            expectBits(one, got.subarray(t * D, (t + 1) * D), `moe ${type}: token ${t} alone vs in a batch of ${n}`);
          }
          // Without renormalization the weights are the raw probabilities (smaller outputs).
          const raw = op('moe', { ...spec, norm: false, threads: 2 });
          let ratioMax = 0;
          for (let i = 0; i < raw.length; i++) if (Math.abs(got[i]) > 1e-3) ratioMax = Math.max(ratioMax, Math.abs(raw[i] / got[i]));
          expect(ratioMax).toBeLessThan(1 + 1e-5);
        }
      });

      it('moe, gpt-oss style: router bias, top-k of the logits weighed by their own softmax, expert biases, clamped SwiGLU', () => {
        const D = 48, E = 5, K = 2, F = 64, n = 9;
        const x = random(n * D, 91, 2);
        const router = random(E * D, 92, 0.5);
        const routerBias = random(E, 93, 1);
        const gateBias = random(E * F, 94, 1), upBias = random(E * F, 95, 1), downBias = random(E * D, 96, 1);
        const g = weights('F32', E * F, D, 97), u = weights('F32', E * F, D, 98), dn = weights('F32', E * D, F, 99);
        const spec = {
          ...base, x, width: D, nExpert: E, nUsed: K, ff: F, router, type: T.F32, gate: g.w, up: u.w, down: dn.w,
          act: 'swiglu_oai', weightSoftmax: true, routerBias, gateBias, upBias, downBias,
        };
        const got = op('moe', { ...spec, threads: 3 });
        const want = new Float64Array(n * D);
        for (let t = 0; t < n; t++) {
          const xt = x.subarray(t * D, (t + 1) * D);
          const logits = Array.from({ length: E }, (_, e) => xt.reduce((a, v, i) => a + v * router[e * D + i]!, 0) + routerBias[e]!);
          const top = logits.map((l, e) => [l, e] as [number, number]).sort((a, b) => b[0] - a[0]).slice(0, K);
          const mx = top[0]![0];
          const ex = top.map(([l]) => Math.exp(l - mx));
          const sum = ex.reduce((a, b) => a + b, 0);
          top.forEach(([, e], c) => {
            const act = new Float64Array(F);
            for (let j = 0; j < F; j++) {
              let gg = gateBias[e * F + j]!, uu = upBias[e * F + j]!;
              for (let i = 0; i < D; i++) (gg += g.deq[(e * F + j) * D + i] * xt[i]!), (uu += u.deq[(e * F + j) * D + i] * xt[i]!);
              const xc = Math.min(gg, 7), yc = Math.min(Math.max(uu, -7), 7);
              act[j] = (xc / (1 + Math.exp(-1.702 * xc))) * (yc + 1);
            }
            for (let o = 0; o < D; o++) {
              let y = downBias[e * D + o]!;
              for (let j = 0; j < F; j++) y += dn.deq[(e * D + o) * F + j] * act[j]!;
              want[t * D + o] += (ex[c]! / sum) * y;
            }
          });
        }
        const mag = Math.max(...Array.from(want, Math.abs));
        expectClose(got, want, () => 2e-5 * mag + 1e-6, 'moe (gpt-oss)');
        for (const t of [0, 8]) {
          const one = op('moe', { ...spec, x: x.slice(t * D, (t + 1) * D), threads: 1 });
          expectBits(one, got.subarray(t * D, (t + 1) * D), `moe gpt-oss: token ${t} alone vs in a batch of ${n}`);
        }
        // Each part matters: without a bias, or weighed by the softmax over all experts (not
        // renormalized: softmax, top-k, renormalize would equal the softmax of the top k).
        for (const drop of [{ routerBias: undefined }, { gateBias: undefined }, { downBias: undefined }, { weightSoftmax: false, norm: false }]) {
          const other = op('moe', { ...spec, ...drop, threads: 2 });
          expect(Math.max(...Array.from(other, (v, i) => Math.abs(v - got[i]!))), JSON.stringify(Object.keys(drop))).toBeGreaterThan(1e-3 * mag);
        }
      });

      it('read_logits with soft-capping: cap * tanh(logit / cap)', () => {
        const d = 64,
          n = 3,
          vocab = 45,
          cap = 1.5;
        const x = random(n * d, 64, 2),
          norm = random(d, 65);
        const { w, deq } = weights('F32', vocab, d, 66);
        const normed = Float32Array.from(refRmsnorm(x, norm, d, 1e-6));
        const select = Int32Array.from([0, 1, 2]);
        const plain = k()._matmulReference(T.F32, w, vocab, d, normed, n);
        const want = Float64Array.from(plain, (l) => cap * Math.tanh(l / cap));
        const got = op('logits', { ...base, x, width: d, norm, eps: 1e-6, type: T.F32, w, rows: vocab, cols: d, select, softcap: cap, threads: 2 });
        const mag = absProduct(deq, vocab, d, normed, n);
        expectClose(got, want, (i) => 1e-5 * mag[i] + 1e-6, 'soft-capped logits');
        expect(Math.max(...Array.from(got, Math.abs))).toBeLessThanOrEqual(cap);
      });

      it('read_logits: final norm and output rows of the selected tokens, in place and scattered', () => {
        const d = 64,
          n = 7,
          vocab = 45;
        const x = random(n * d, 61, 2),
          norm = random(d, 62);
        const { w, deq } = weights('F32', vocab, d, 63);
        const normed = Float32Array.from(refRmsnorm(x, norm, d, 1e-6));
        for (const [select, scatter] of [[[6], false], [[0, 1, 2, 3, 4, 5, 6], false], [[5, 2, 3], true]] as [number[], boolean][]) {
          const got = op('logits', { ...base, x, width: d, norm, eps: 1e-6, type: T.F32, w, rows: vocab, cols: d, select: Int32Array.from(select), scatter, threads: 2 });
          const order = scatter ? [...select].reverse() : select;
          const rowsX = new Float32Array(order.length * d);
          order.forEach((r, i) => rowsX.set(normed.subarray(r * d, (r + 1) * d), i * d));
          const want = k()._matmulReference(T.F32, w, vocab, d, rowsX, order.length);
          const mag = absProduct(deq, vocab, d, rowsX, order.length);
          expectClose(got, want, (i) => 1e-5 * mag[i] + 1e-6, `logits of rows ${select}${scatter ? ' (scattered)' : ''}`);
        }
      });

      it('rope: attn_factor scales cos and sin (rope.scaling.attn_factor)', () => {
        const c: RopeSpec = { headDim: 96, ropeDim: 96, base: 10000, freqScale: 1, style: 'neox' };
        const n = 5, width = 2 * 96;
        const x = random(n * width, 77, 1);
        const seqs = [{ pos0: 40, n }];
        const got = op('rope', { ...base, ...c, nHeads: 2, x, width, seqs, attnFactor: 1.19, threads: 2 });
        const want = Float64Array.from(x);
        for (let t = 0; t < n; t++) ropeToken(want, t * width, 2, c, 40 + t);
        expectClose(got, Float64Array.from(want, (v) => v * 1.19), () => 5e-4, 'rope with attn_factor');
      });

      it('rope: YaRN (ext_factor 1) blends scaled and unscaled angles over the correction dims, and scales cos and sin', () => {
        // The reference, in double from the YaRN formulas (ggml's rope_yarn): pair i's angle
        // is the interpolated one (freqScale * theta) below the ramp and the extrapolated one
        // (theta) above it, the ramp running linearly between the correction dims of
        // betaFast and betaSlow rotations in yarnOrigCtx positions; cos and sin are
        // multiplied by attnFactor * (1 + 0.1 ln(1 / freqScale)).
        const c: RopeSpec = { headDim: 64, ropeDim: 64, base: 150000, freqScale: 1 / 32, style: 'neox' };
        const origCtx = 4096, n = 4, width = 3 * 64, pos0 = 300;
        const corr = (rot: number) => (c.ropeDim * Math.log(origCtx / (rot * 2 * Math.PI))) / (2 * Math.log(c.base));
        const low = Math.max(0, Math.floor(corr(32))), high = Math.min(c.ropeDim - 1, Math.ceil(corr(1)));
        expect(low).toBeGreaterThan(0); // the ramp lies inside the pairs: both ends are exercised
        expect(high).toBeLessThan(c.ropeDim / 2);
        const x = random(n * width, 79, 1);
        const got = op('rope', { ...base, ...c, nHeads: 3, x, width, seqs: [{ pos0, n }], attnFactor: 0.9, extFactor: 1, yarnOrigCtx: origCtx, threads: 2 });
        const want = Float64Array.from(x);
        const mscale = 0.9 * (1 + 0.1 * Math.log(32));
        for (let t = 0; t < n; t++)
          for (let h = 0; h < 3; h++)
            for (let i = 0; i < 32; i++) {
              const extrap = (pos0 + t) * Math.pow(c.base, (-2 * i) / c.ropeDim);
              const ramp = 1 - Math.min(1, Math.max(0, (i - low) / Math.max(0.001, high - low)));
              const th = extrap * c.freqScale * (1 - ramp) + extrap * ramp;
              const a = t * width + h * 64 + i, b = a + 32;
              const x0 = x[a]!, x1 = x[b]!;
              want[a] = (x0 * Math.cos(th) - x1 * Math.sin(th)) * mscale;
              want[b] = (x0 * Math.sin(th) + x1 * Math.cos(th)) * mscale;
            }
        expectClose(got, want, () => 5e-4, 'rope with YaRN');
        // and it is not plain linear scaling
        const linear = op('rope', { ...base, ...c, nHeads: 3, x, width, seqs: [{ pos0, n }], attnFactor: 0.9, threads: 2 });
        let diff = 0;
        for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i]! - linear[i]!));
        expect(diff).toBeGreaterThan(0.1);
      });

      it('rope_cache: LongRoPE picks the long factors for a cache longer than longAbove, else the short ones', () => {
        const half = 24;
        const short = Float32Array.from({ length: half }, (_, i) => 1 + i / 40);
        const long = Float32Array.from({ length: half }, (_, i) => 1 + i / 2);
        const p: RopeSpec = { headDim: 48, ropeDim: 48, base: 10000, freqScale: 1, style: 'neox' };
        const kIn = random(9 * 48, 78, 2);
        for (const [longAbove, factors] of [[16, long], [32, short]] as [number, Float32Array][]) {
          const got = op('ropeCache', {
            ...base, ...p, k: kIn, nLayer: 1, nHeadKv: 1, kvType: 'f16', ctx: 32, p0: 0, p1: 9, delta: 7,
            factors: short, factorsLong: long, longAbove, threads: 1,
          });
          for (let q = 0; q < 9; q++) {
            const want = Float64Array.from(asCached(kIn.subarray(q * 48, (q + 1) * 48), 'f16'));
            ropeToken(want, 0, 1, { ...p, factors }, 7);
            expectClose(got.subarray(q * 48, (q + 1) * 48), want, () => 2e-3, `rope_cache longAbove=${longAbove} pos ${q}`);
          }
        }
      });

      it('rope_cache (context shift): the keys of [p0, p1) are rotated by delta in every layer and head, the others stay', () => {
        for (const kvType of ['f16', 'q8_0'] as const) {
          const p: RopeSpec = { headDim: 64, ropeDim: 64, base: 10000, freqScale: 1, style: 'neox' };
          const nHeadKv = 2,
            nLayer = 2,
            len = 21,
            KVD = nHeadKv * p.headDim;
          const kIn = random(len * KVD, 71, 2);
          const [p0, p1, delta] = [5, 17, -4];
          const got = op('ropeCache', { ...base, ...p, k: kIn, nLayer, nHeadKv, kvType, ctx: 32, p0, p1, delta, threads: 2 });
          for (let l = 0; l < nLayer; l++)
            for (let h = 0; h < nHeadKv; h++)
              for (let q = 0; q < len; q++) {
                const row = asCached(kIn.subarray(q * KVD + h * p.headDim, q * KVD + (h + 1) * p.headDim), kvType);
                const want = Float64Array.from(row);
                if (q >= p0 && q < p1) ropeToken(want, 0, 1, p, delta);
                const o = ((l * nHeadKv + h) * len + q) * p.headDim;
                const tol = kvType === 'f16' ? 2e-3 : 4e-2; // the rotated row is stored again (f16 / Q8_0)
                expectClose(got.subarray(o, o + p.headDim), want, () => tol, `rope_cache ${kvType} layer ${l} head ${h} pos ${q}`);
              }
        }
      });

      it('rope_cache with per-layer RoPE: each layer turns with its own base (Gemma 3 local/global layers)', () => {
        const p: RopeSpec = { headDim: 32, ropeDim: 32, base: 10000, freqScale: 1, style: 'neox' };
        const nLayer = 3,
          len = 11,
          bases = [10000, 1000000, 10000];
        const kIn = random(len * p.headDim, 72, 2);
        const [p0, p1, delta] = [2, 11, -2];
        const got = op('ropeCache', {
          ...base, ...p, k: kIn, nLayer, nHeadKv: 1, kvType: 'f16', ctx: 16, p0, p1, delta,
          layerBases: Float32Array.from(bases), threads: 2,
        });
        for (let l = 0; l < nLayer; l++)
          for (let q = 0; q < len; q++) {
            const want = Float64Array.from(asCached(kIn.subarray(q * p.headDim, (q + 1) * p.headDim), 'f16'));
            if (q >= p0 && q < p1) ropeToken(want, 0, 1, { ...p, base: bases[l]! }, delta);
            const o = (l * len + q) * p.headDim;
            expectClose(got.subarray(o, o + p.headDim), want, () => 2e-3, `rope_cache layer ${l} (base ${bases[l]}) pos ${q}`);
          }
        expect(() => op('ropeCache', { ...base, ...p, k: kIn, nLayer, nHeadKv: 1, kvType: 'f16', ctx: 16, p0, p1, delta, layerBases: new Float32Array(2) })).toThrow(/layerBases/);
      });

      for (const s of ATTN_SHAPES) {
        it(`attention, default route: ${s.name}`, () => {
          const { q, k: kk, v } = attnInputs(s, 100 + s.headDim);
          const spec = { ...base, ...s, route: 'default', scale: s.scale ?? f(1 / Math.sqrt(s.headDim)), q, k: kk, v };
          const got = op('attention', { ...spec, threads: 1 });
          const want = refAttention(s, q, kk, v, true);
          // The probabilities are rounded to f16 before they weigh V: 2^-11 relative each.
          expectClose(got, want, () => 1.5e-3, 'attention');
          // Bit-identical on more threads (other tilings).
          expectBits(op('attention', { ...spec, threads: 3 }), got, 'attention on 3 threads vs 1');
        });
        if (s.kvType === 'f16')
          it(`attention, flash route: ${s.name}`, () => {
            const { q, k: kk, v } = attnInputs(s, 200 + s.headDim);
            const spec = { ...base, ...s, route: 'flash', scale: s.scale ?? f(1 / Math.sqrt(s.headDim)), q, k: kk, v };
            const got = op('attention', { ...spec, threads: 2 });
            // llama.cpp's tiled f32 route for >= 64 queries of a sequence (head dims that are
            // multiples of 16); else the query is rounded to f16 and the values are summed in f16.
            const tiled = s.seqs.every((x) => x.n >= 64) && s.headDim % 16 === 0;
            const want = refAttention(s, q, kk, v, !tiled);
            expectClose(got, want, () => (tiled ? 1e-5 : 1e-2), 'flash attention');
            expectBits(op('attention', { ...spec, threads: 1 }), got, 'flash attention on 1 thread vs 2');
          });
      }

      it('attention (default route) has the same bits whatever the chunking of the tokens and the other sequences of the batch', () => {
        const s: AttnSpec = { nHead: 8, nHeadKv: 2, headDim: 64, kvType: 'f16', ctx: 80, seqs: [{ pos0: 0, n: 40 }] };
        const { q, k: kk, v } = attnInputs(s, 300);
        const QD = s.nHead * s.headDim;
        const spec = { ...base, ...s, route: 'default', scale: f(1 / Math.sqrt(s.headDim)), threads: 2 };
        const whole = op('attention', { ...spec, q, k: kk, v });
        // Tokens [33, 40) as a chunk of their own after 33 cached positions.
        const tail = op('attention', { ...spec, seqs: [{ pos0: 33, n: 7 }], q: q.subarray(33 * QD), k: kk, v });
        expectBits(tail, whole.subarray(33 * QD), 'a chunk of 7 vs the whole prompt');
        // One token (decode) at position 39.
        const one = op('attention', { ...spec, seqs: [{ pos0: 39, n: 1 }], q: q.subarray(39 * QD), k: kk, v });
        expectBits(one, whole.subarray(39 * QD), 'one token vs the whole prompt');
        // The same chunk batched after another sequence of 12 tokens.
        const other = attnInputs({ ...s, seqs: [{ pos0: 3, n: 12 }] }, 301);
        const both = op('attention', {
          ...spec,
          seqs: [{ pos0: 3, n: 12 }, { pos0: 33, n: 7 }],
          q: Float32Array.from([...other.q, ...q.subarray(33 * QD)]),
          k: Float32Array.from([...other.k, ...kk]),
          v: Float32Array.from([...other.v, ...v]),
        });
        expectBits(both.subarray(12 * QD), whole.subarray(33 * QD), 'batched with another sequence vs alone');
      });

      it('pv_f16 kernel (attention P V): the reference sum, and the same bits whatever the number of rows', () => {
        for (const [rows, np, hd] of [[1, 1, 64], [5, 37, 72], [9, 64, 13], [4, 3, 36], [7, 20, 80]]) {
          const w = Float32Array.from(random(rows * np, rows + np), Math.abs);
          w[0] = 0; // a zero probability (an underflowed exp)
          const vf = random(np * hd, hd, 3);
          const v = k()._convertF16(isa, 'to', vf);
          const vr = Float32Array.from(vf, roundF16);
          const out0 = random(rows * hd, 7);
          const got = internal().pvF16(isa, w, v, out0, rows, np, hd);
          const want = new Float64Array(rows * hd);
          let mag = 0;
          for (let r = 0; r < rows; r++)
            for (let i = 0; i < hd; i++) {
              let a = out0[r * hd + i];
              let m = Math.abs(a);
              for (let p = 0; p < np; p++) (a += w[r * np + p] * vr[p * hd + i]), (m += Math.abs(w[r * np + p] * vr[p * hd + i]));
              want[r * hd + i] = a;
              mag = Math.max(mag, m);
            }
          expectClose(got, want, () => (np + 2) * 2 ** -23 * mag, `pv_f16 rows=${rows} np=${np} hd=${hd}`);
          // Each row alone: the same bits as within the block of rows.
          for (let r = 0; r < rows; r++) {
            const one = internal().pvF16(isa, w.slice(r * np, (r + 1) * np), v, out0.slice(r * hd, (r + 1) * hd), 1, np, hd);
            expectBits(one, got.subarray(r * hd, (r + 1) * hd), `pv_f16 row ${r} alone vs among ${rows}`);
          }
        }
      });

      it('sparsify: exact counts of the smallest magnitudes zeroed, ties by index, against both references, any thread count', () => {
        const fracs = [0, 0.01, 0.1, 0.25, 1 / 3, 0.5, 0.77, 0.95, 0.999, 1];
        for (const [width, rows] of [[1, 3], [7, 5], [64, 10], [100, 7], [172, 10], [1000, 4], [2049, 3], [5000, 2]]) {
          const x = sparsifyInput(rows, width, width * 31 + rows);
          const frac = Float32Array.from({ length: rows }, (_, t) => fracs[(t * 7 + width) % fracs.length]!);
          const want = refSparsify(x, width, frac);
          const got = op('sparsify', { ...base, x, width, frac, threads: 1 });
          expectBits(got, want, `sparsify width=${width}`);
          expectBits(op('sparsify', { ...base, x, width, frac, reference: true }), want, `sparsify reference twin width=${width}`);
          expectBits(op('sparsify', { ...base, x, width, frac, threads: 3 }), got, `sparsify width=${width}, 3 threads`);
          // Each row alone: the same bits as within the batch.
          for (let t = 0; t < rows; t++) {
            const one = op('sparsify', { ...base, x: x.slice(t * width, (t + 1) * width), width, frac: frac.slice(t, t + 1) });
            expectBits(one, got.subarray(t * width, (t + 1) * width), `sparsify row ${t} alone`);
          }
          // The count is exact: rows keep their zeros plus exactly floor(frac * width) more at most.
          for (let t = 0; t < rows; t++) {
            const k = Math.floor(frac[t]! * width);
            let zeros = 0;
            for (let i = 0; i < width; i++) if (got[t * width + i] === 0 && Object.is(got[t * width + i], 0)) zeros++;
            expect(zeros).toBeGreaterThanOrEqual(k);
          }
        }
        expect(() => op('sparsify', { ...base, x: new Float32Array(8), width: 4, frac: new Float32Array(3) })).toThrow(
          expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
        );
      });

      it('bad input is a clear SparrowError and leaves the addon usable', () => {
        expect(() => op('rmsnorm', { ...base, x: new Float32Array(10), width: 3, w: new Float32Array(3), eps: 0 })).toThrow(
          expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
        );
        expect(() => op('nope', { ...base })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
        const s = { ...base, nHead: 2, nHeadKv: 2, headDim: 80, kvType: 'q8_0', ctx: 8, seqs: [{ n: 1 }], route: 'default', scale: 1 };
        expect(() => op('attention', { ...s, q: new Float32Array(160), k: new Float32Array(160), v: new Float32Array(160) })).toThrow(
          expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
        );
        expect(op('add', { ...base, x: new Float32Array([1]), y: new Float32Array([2]), width: 1 })[0]).toBe(3);
      });
    });
  }
}
