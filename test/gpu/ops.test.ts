// Every backend operation on the Vulkan backend, on awkward shapes, against the CPU
// backend (itself checked against plain references in test/backend/ops.test.ts) and, for
// the matrix products of every weight type, against the reference product. The Vulkan
// backend sums in another order than the CPU kernels and multiplies f32 activations where
// the CPU quantizes them to 8 bits, so the comparisons take a tolerance; a token's result
// must still not depend on the tokens batched with it (bit-identical).
// Runs where a Vulkan device exists (Mesa's lavapipe in CI: apt-get install
// mesa-vulkan-drivers libvulkan-dev glslc, then npm run build:vulkan); skips, saying why,
// elsewhere.
import { afterEach, describe, expect, it } from 'vitest';
import { systemInfo } from '../../src/index.js';
import { addon } from '../../src/native.js';
import { activationsAsSeen, k, rng, T, type TypeName } from '../kernels/helpers.js';

interface InternalAddon {
  internal: { backendOp(op: string, spec: Record<string, unknown>): Float32Array | Float32Array[] };
}
const backendOp = (name: string, spec: Record<string, unknown>) => addon<InternalAddon>().internal.backendOp(name, spec);
const op = (name: string, spec: Record<string, unknown>) => backendOp(name, spec) as Float32Array;

const info = systemInfo();
const skipReason =
  info.gpus.length === 0 ? `no Vulkan device: ${info.gpuUnavailableReason ?? 'unknown reason'}` : undefined;
if (skipReason) console.log(`test/gpu/ops.test.ts skipped: ${skipReason}`);

const f = Math.fround;
function random(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => f((r() * 2 - 1) * scale));
}
function weights(type: TypeName, rows: number, cols: number, seed: number) {
  const w = k()._quantize(T[type], random(rows * cols, seed));
  return { w, deq: k()._dequantize(T[type], w, rows * cols) };
}
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
function expectClose(got: Float32Array, want: ArrayLike<number>, tol: (i: number) => number, what: string) {
  expect(got.length, what).toBe(want.length);
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
/** The op on both backends; the Vulkan result is checked against the CPU's within rel * max|cpu| + abs. */
function both(name: string, spec: Record<string, unknown>, rel: number, abs = 0) {
  const cpu = op(name, { ...spec, backend: 'cpu' });
  const gpu = op(name, { ...spec, backend: 'vulkan' });
  let scale = 0;
  for (const v of cpu) scale = Math.max(scale, Math.abs(v));
  expectClose(gpu, cpu, () => rel * scale + abs, `${name} vulkan vs cpu`);
  return { cpu, gpu };
}

// Every weight type the Vulkan backend computes with, with a width its block divides.
const TYPES: [TypeName, number][] = [
  ['F32', 100], ['F16', 72], ['BF16', 72], ['Q8_0', 96], ['Q4_0', 160], ['Q4_1', 96], ['Q5_0', 96], ['Q5_1', 96],
  ['Q4_K', 256], ['Q5_K', 512], ['Q6_K', 256], ['Q2_K', 256], ['Q3_K', 512], ['IQ4_NL', 64], ['IQ4_XS', 256], ['MXFP4', 96],
];

describe.skipIf(skipReason !== undefined)('Vulkan backend operations', () => {
  afterEach(() => {
    delete process.env.SPARROW_VULKAN_MAX_BUFFER;
    delete process.env.SPARROW_VULKAN_MATMUL;
  });

  // Both forms of the matrix shader (matmul.comp): a thread per row (CPU-type devices) and
  // a workgroup per row (GPUs), whichever this device uses by default.
  for (const [type, cols] of TYPES) {
    it(`matmul ${type}: decode (n = 1) and a prompt (n = 13) against the reference product, both shader forms; a token's result independent of its batch`, () => {
      for (const [rows, n, form] of [[53, 1, 'rows'], [37, 13, 'rows'], [53, 1, 'reduce'], [37, 13, 'reduce']] as [number, number, string][]) {
        process.env.SPARROW_VULKAN_MATMUL = form;
        const { w, deq } = weights(type, rows, cols, rows + cols);
        const x = random(n * cols, 7 + n, 2);
        const [y] = backendOp('matmul', {
          backend: 'vulkan',
          inputs: [x],
          mats: [{ type: T[type], w, rows, cols, input: 0 }],
        }) as Float32Array[];
        // F16 / BF16: the activations rounded to the weights' precision, as the CPU (and ggml) do.
        const xs = type === 'F16' || type === 'BF16' ? activationsAsSeen(type, x) : x;
        const want = k()._matmulReference(T[type], w, rows, cols, xs, n);
        const mag = absProduct(deq, rows, cols, xs, n);
        expectClose(y, want, (i) => 2e-6 * mag[i] + 1e-6, `matmul ${type} ${rows}x${cols} n=${n}`);
        if (n > 1) {
          // Token 5 alone gives the same bits as inside the batch.
          const [alone] = backendOp('matmul', {
            backend: 'vulkan',
            inputs: [x.slice(5 * cols, 6 * cols)],
            mats: [{ type: T[type], w, rows, cols, input: 0 }],
          }) as Float32Array[];
          expectBits(alone, y.slice(5 * rows, 6 * rows), `matmul ${type} (${form}): token 5 alone vs in the batch`);
        }
      }
    });
  }

  it('matmul: a matrix larger than one storage-buffer binding is split in row chunks (the limit lowered to 4 KiB)', () => {
    const rows = 301,
      cols = 256,
      n = 3;
    for (const [type, form] of [['Q4_0', 'rows'], ['Q6_K', 'reduce'], ['F32', 'rows'], ['F32', 'reduce']] as [TypeName, string][]) {
      process.env.SPARROW_VULKAN_MATMUL = form;
      const { w } = weights(type, rows, cols, 99);
      const x = random(n * cols, 5);
      const spec = { backend: 'vulkan', inputs: [x], mats: [{ type: T[type], w, rows, cols, input: 0 }] };
      const [whole] = backendOp('matmul', spec) as Float32Array[];
      process.env.SPARROW_VULKAN_MAX_BUFFER = '4096';
      const [split] = backendOp('matmul', spec) as Float32Array[];
      delete process.env.SPARROW_VULKAN_MAX_BUFFER;
      expectBits(split, whole, `matmul ${type} split vs whole`);
    }
  });

  it('matmul group: several products with shared and separate inputs', () => {
    const n = 5;
    const x0 = random(n * 256, 21, 2),
      x1 = random(n * 512, 22);
    const mats = [
      { type: 'Q4_0' as TypeName, rows: 53, cols: 256, input: 0 },
      { type: 'Q8_0' as TypeName, rows: 40, cols: 256, input: 0 },
      { type: 'Q4_K' as TypeName, rows: 33, cols: 512, input: 1 },
      { type: 'F16' as TypeName, rows: 9, cols: 256, input: 0 },
    ].map((m, i) => ({ ...m, ...weights(m.type, m.rows, m.cols, 30 + i) }));
    const spec = { inputs: [x0, x1], mats: mats.map((m) => ({ type: T[m.type], w: m.w, rows: m.rows, cols: m.cols, input: m.input })) };
    const cpu = backendOp('matmul', { ...spec, backend: 'cpu' }) as Float32Array[];
    const gpu = backendOp('matmul', { ...spec, backend: 'vulkan' }) as Float32Array[];
    mats.forEach((m, i) => {
      const mag = absProduct(m.deq, m.rows, m.cols, m.input === 0 ? x0 : x1, n);
      // The CPU multiplies 8-bit activations for the quantized types: about 1/127 of |W||x|.
      expectClose(gpu[i], cpu[i], (j) => 0.02 * mag[j] + 1e-5, `group product ${i} (${m.type})`);
    });
  });

  it('embed: rows of every type, as the CPU backend gives them (bit-identical: both dequantize on the host)', () => {
    for (const [type, cols] of TYPES) {
      const rows = 37;
      const { w } = weights(type, rows, cols, 11);
      const tokens = Int32Array.from([36, 0, 5, 5, 17, 1, 30]);
      const spec = { type: T[type], w, rows, cols, tokens };
      expectBits(op('embed', { ...spec, backend: 'vulkan' }), op('embed', { ...spec, backend: 'cpu' }), `embed ${type}`);
    }
  });

  it('rmsnorm and rmsnormHeads: odd widths and token counts', () => {
    for (const [d, n] of [[64, 1], [576, 7], [100, 13]]) {
      both('rmsnorm', { x: random(n * d, d + n, 3), width: d, w: random(d, 5), eps: 1e-5 }, 2e-6);
    }
    for (const [hd, heads, n] of [[64, 3, 5], [80, 1, 9], [128, 6, 2]]) {
      both('rmsnormHeads', { x: random(n * hd * heads, hd + n, 4), width: hd * heads, headDim: hd, w: random(hd, 9, 1.5), eps: 1e-6 }, 2e-6);
    }
  });

  it('rope: normal and NeoX, partial rotation, frequency factors, attention factor, two sequences at their positions', () => {
    const cases = [
      { nHeads: 4, headDim: 64, ropeDim: 64, style: 'normal', n: 5 },
      { nHeads: 3, headDim: 80, ropeDim: 32, style: 'neox', n: 9 },
      { nHeads: 2, headDim: 128, ropeDim: 128, style: 'neox', n: 3, factors: random(64, 3, 1).map((v) => 1 + Math.abs(v) * 4), attnFactor: 1.2 },
    ];
    for (const c of cases) {
      const width = c.nHeads * c.headDim + 16;
      both('rope', { ...c, x: random(c.n * width, c.n, 2), width, base: 10000, freqScale: 0.5, seqs: [{ pos0: 1000, n: c.n - 2 }, { pos0: 3, n: 2 }] }, 1e-5);
    }
  });

  it('glu (SwiGLU, GeGLU through f16, clamped SwiGLU with both clamps reached), add, scale, addBias', () => {
    const n = 7,
      width = 173;
    for (const kind of ['swiglu', 'geglu', 'swiglu_oai']) both('glu', { kind, gate: random(n * width, 1, 12), up: random(n * width, 2, 3), width }, 1e-5);
    both('add', { x: random(n * width, 3), y: random(n * width, 4), width }, 0);
    both('scale', { x: random(n * width, 5), width, s: 0.37 }, 0);
    both('addBias', { y: random(n * width, 6), width, b: random(width, 7) }, 0);
  });

  const ATTN = [
    { name: 'hd64 MHA, 1 token at position 0', nHead: 4, nHeadKv: 4, headDim: 64, kvType: 'f16', ctx: 64, seqs: [{ n: 1 }] },
    { name: 'hd64 GQA 4, 13 tokens after 20 cached', nHead: 8, nHeadKv: 2, headDim: 64, kvType: 'f16', ctx: 64, seqs: [{ pos0: 20, n: 13 }] },
    { name: 'hd80 GQA 6, 7 tokens at the end of the context', nHead: 6, nHeadKv: 1, headDim: 80, kvType: 'f16', ctx: 203, seqs: [{ pos0: 196, n: 7 }] },
    { name: 'hd128 GQA 4, q8_0 cache, two sequences', nHead: 8, nHeadKv: 2, headDim: 128, kvType: 'q8_0', ctx: 160, seqs: [{ pos0: 150, n: 10 }, { pos0: 3, n: 5 }] },
    { name: 'hd128, soft cap 2, window 10, 70 tokens (Gemma 2)', nHead: 4, nHeadKv: 2, headDim: 128, kvType: 'f16', ctx: 96, seqs: [{ pos0: 5, n: 70 }], scale: 1, softcap: 2, window: 10 },
    // gpt-oss: attention sinks above and below the logits, with and without a window.
    { name: 'hd64 GQA 4, sinks, window 9, 13 tokens after 20 (gpt-oss)', nHead: 8, nHeadKv: 2, headDim: 64, kvType: 'f16', ctx: 40, seqs: [{ pos0: 20, n: 13 }], window: 9, sinks: Float32Array.from({ length: 8 }, (_, h) => -3 + h) },
    { name: 'hd64 GQA 2, sinks, q8_0 cache, two sequences (gpt-oss)', nHead: 4, nHeadKv: 2, headDim: 64, kvType: 'q8_0', ctx: 80, seqs: [{ pos0: 30, n: 1 }, { pos0: 2, n: 70 }], sinks: Float32Array.from([2.5, -1, 0.5, 4]) },
    { name: 'hd256 MQA, window 16, two sequences (Gemma 3)', nHead: 2, nHeadKv: 1, headDim: 256, kvType: 'f16', ctx: 64, seqs: [{ pos0: 30, n: 9 }, { pos0: 0, n: 5 }], scale: 1 / 16, window: 16 },
  ];
  for (const a of ATTN) {
    it(`attention (default and flash routes): ${a.name}`, () => {
      const kvd = a.nHeadKv * a.headDim;
      const tokens = a.seqs.reduce((s, q) => s + q.n, 0);
      const kvRows = a.seqs.reduce((s, q) => s + (q.pos0 ?? 0) + q.n, 0);
      const spec = {
        ...a,
        scale: a.scale ?? 1 / Math.sqrt(a.headDim),
        q: random(tokens * a.nHead * a.headDim, 1, 2),
        k: random(kvRows * kvd, 2, 2),
        v: random(kvRows * kvd, 3),
      };
      // The CPU rounds the probabilities to f16 before P V; the device keeps them f32.
      for (const route of ['default', 'flash']) if (route === 'default' || a.kvType === 'f16') both('attention', { ...spec, route }, 5e-3, 1e-4);
    });
  }

  it('logits: selected rows (scattered), soft cap, an output matrix split over several bindings', () => {
    const width = 96,
      vocab = 515,
      n = 6;
    // F16: both backends round the activations to f16, so the results agree closely.
    const { w } = weights('F16', vocab, width, 4);
    const spec = { x: random(n * width, 8, 3), width, norm: random(width, 9), eps: 1e-5, type: T.F16, w, rows: vocab, cols: width, select: Int32Array.from([5, 0, 3]), scatter: true };
    both('logits', spec, 1e-5);
    both('logits', { ...spec, softcap: 2.5 }, 1e-5);
    const whole = op('logits', { ...spec, backend: 'vulkan' });
    process.env.SPARROW_VULKAN_MAX_BUFFER = '8192';
    expectBits(op('logits', { ...spec, backend: 'vulkan' }), whole, 'logits with the output split in chunks');
  });

  it('ropeCache (context shift) re-rotates the cached keys as the CPU backend does', () => {
    const nHeadKv = 2,
      headDim = 64,
      len = 11;
    const spec = { k: random(len * nHeadKv * headDim, 3, 2), nLayer: 2, nHeadKv, headDim, ropeDim: 64, base: 10000, style: 'normal', kvType: 'f16', ctx: 32, p0: 4, p1: 11, delta: -3 };
    const cpu = op('ropeCache', { ...spec, backend: 'cpu' });
    expectBits(op('ropeCache', { ...spec, backend: 'vulkan' }), cpu, 'ropeCache');
    // Each layer its own base (Gemma 3's local layers).
    const layered = { ...spec, layerBases: Float32Array.from([10000, 1e6]) };
    const cpuL = op('ropeCache', { ...layered, backend: 'cpu' });
    expectBits(op('ropeCache', { ...layered, backend: 'vulkan' }), cpuL, 'ropeCache with a base per layer');
    let differs = false;
    for (let i = 0; i < cpu.length; i++) differs = differs || cpu[i] !== cpuL[i];
    expect(differs, 'the per-layer bases change the result').toBe(true);
  });

  it('sparsify: exactly the CPU selection (count, magnitude order, ties by index, NaN and infinities), rows left alone at 0', () => {
    const width = 77,
      rows = 6;
    const r = rng(5);
    const x = Float32Array.from({ length: rows * width }, () => {
      const u = r();
      const sign = r() < 0.5 ? -1 : 1;
      return u < 0.3 ? sign * Math.round(r() * 6) / 4 : u < 0.33 ? [NaN, Infinity, -Infinity, 1e-40][Math.floor(r() * 4)]! : sign * Math.exp((r() - 0.5) * 10);
    });
    const frac = Float32Array.from([0, 0.1, 0.5, 0.9, 1, 0.33]);
    const want = op('sparsify', { x, width, frac, reference: true, backend: 'cpu' });
    const got = op('sparsify', { x, width, frac, backend: 'vulkan' });
    expectBits(got, want, 'sparsify vulkan vs the reference');
    expectBits(got.subarray(0, width), x.subarray(0, width), 'a row with fraction 0');
    let zeros = 0;
    for (let i = width * 3; i < width * 4; i++) zeros += Object.is(got[i], 0) ? 1 : 0;
    expect(zeros).toBeGreaterThanOrEqual(Math.floor(0.9 * width));
  });

  it('moe: routing, the chosen experts over their tokens, weighted sums (SwiGLU and GeGLU, with and without renormalization)', () => {
    const width = 64,
      E = 6,
      F = 96,
      n = 11;
    for (const [type, act, norm] of [['F32', 'swiglu', true], ['Q8_0', 'geglu', false], ['Q4_0', 'swiglu', true]] as [TypeName, string, boolean][]) {
      const g = weights(type, E * F, width, 1).w,
        u = weights(type, E * F, width, 2).w,
        d = weights(type, E * width, F, 3).w;
      const spec = { x: random(n * width, 1, 2), width, nExpert: E, nUsed: 2, ff: F, norm, act, router: random(E * width, 3), type: T[type], gate: g, up: u, down: d };
      both('moe', spec, type === 'F32' ? 1e-4 : 0.05);
    }
  });

  it('moe, gpt-oss style: router bias, top-k weighed by their own softmax, expert biases, clamped SwiGLU', () => {
    const D = 64,
      E = 5,
      F = 64,
      n = 9;
    for (const type of ['F32', 'MXFP4'] as TypeName[]) {
      const spec = {
        x: random(n * D, 91, 2), width: D, nExpert: E, nUsed: 2, ff: F, router: random(E * D, 92, 0.5), type: T[type],
        gate: weights(type, E * F, D, 97).w, up: weights(type, E * F, D, 98).w, down: weights(type, E * D, F, 99).w,
        act: 'swiglu_oai', weightSoftmax: true, routerBias: random(E, 93, 1), gateBias: random(E * F, 94, 1), upBias: random(E * F, 95, 1),
        downBias: random(E * D, 96, 1),
      };
      const tol = type === 'F32' ? 1e-4 : 0.05;
      const full = both('moe', spec, tol).gpu;
      // Each part matters: without it the result moves away from the full one (top-k then
      // softmax equals softmax then renormalized top-k, so that drop also drops norm).
      for (const drop of [{ routerBias: undefined }, { gateBias: undefined }, { downBias: undefined }, { weightSoftmax: false, norm: false }]) {
        const part = both('moe', { ...spec, ...drop }, tol).gpu;
        let diff = 0;
        for (let i = 0; i < full.length; i++) diff = Math.max(diff, Math.abs(full[i] - part[i]));
        expect(diff, JSON.stringify(drop)).toBeGreaterThan(1e-3);
      }
    }
  });
});

if (skipReason) it.skip(`Vulkan backend operations: skipped (${skipReason})`, () => {});
