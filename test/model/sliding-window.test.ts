/**
 * Models with sliding-window (local) layers, through the public API: Gemma 3's context
 * shift, whose local layers turn their cached keys with their own RoPE base.
 *
 * The oracle of the shift is the rotation itself, computed here in double precision from
 * the cache bytes of save() (format documented in native/model/session.cpp): every moved
 * key of every layer must equal its old value turned back by `drop` positions with its
 * layer's base (10000 for the local layers of the synthetic gemma3, 1e6 for the global
 * one), then stored as f16 again.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { syntheticModel } from '../../models/cache.js';
import { loadModel, type Model } from '../../src/index.js';

function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1,
    e = (h >> 10) & 31,
    m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

interface CacheRows {
  nLayer: number;
  kvDim: number;
  tokens: number[];
  /** Per layer: its first stored position and the keys / values of [first, nTokens), per head. */
  layers: { first: number; k: Float32Array[]; v: Float32Array[] }[];
}

/** Reads an f16 session state (save()). headDim: the model's (the rows of one head). */
function parseState(state: Uint8Array, headDim: number): CacheRows {
  const dv = new DataView(state.buffer, state.byteOffset, state.byteLength);
  expect(String.fromCharCode(...state.subarray(0, 4))).toBe('SPKV');
  const version = dv.getUint32(4, true);
  const [nLayer, , kvDim, kvType, n] = [0, 1, 2, 3, 4].map((i) => dv.getUint32(16 + 4 * i, true)) as number[];
  expect(kvType).toBe(1); // f16
  let o = 36;
  const tokens = Array.from({ length: n! }, (_, i) => dv.getInt32(o + 4 * i, true));
  o += 4 * n!;
  const heads = kvDim! / headDim;
  const layers: CacheRows['layers'] = [];
  for (let l = 0; l < nLayer!; l++) {
    let first = 0;
    if (version >= 3) {
      first = dv.getUint32(o, true);
      o += 4;
    }
    const rows = (n! - first) * headDim;
    const k: Float32Array[] = [],
      v: Float32Array[] = [];
    for (let h = 0; h < heads; h++)
      for (const dest of [k, v]) {
        const out = new Float32Array(rows);
        for (let i = 0; i < rows; i++) out[i] = f16ToF32(dv.getUint16(o + 2 * i, true));
        dest.push(out);
        o += 2 * rows;
      }
    layers.push({ first, k, v });
  }
  expect(o).toBe(state.byteLength);
  return { nLayer: nLayer!, kvDim: kvDim!, tokens, layers };
}

/** A key (headDim values, NeoX pairs (i, i + headDim/2)) turned by delta positions, in double. */
function rotateNeox(key: Float32Array, base: number, delta: number): Float64Array {
  const d = key.length,
    half = d / 2;
  const out = Float64Array.from(key);
  for (let i = 0; i < half; i++) {
    const th = delta * Math.pow(base, (-2 * i) / d);
    const c = Math.cos(th),
      s = Math.sin(th);
    out[i] = key[i]! * c - key[i + half]! * s;
    out[i + half] = key[i]! * s + key[i + half]! * c;
  }
  return out;
}

const HEAD_DIM = 256; // tiny-gemma3 (catalogue): 6 layers, 5 local (window 16) + 1 global, MQA
const BASE_LOCAL = 10000,
  BASE_GLOBAL = 1000000;
const isLocal = (l: number) => l % 6 < 5;

let model: Model;
beforeAll(async () => {
  model = await loadModel(await syntheticModel('tiny-gemma3', 'f16'), { threads: 2 });
});
afterAll(() => model.dispose());

const PROMPT = Array.from({ length: 40 }, (_, i) => (i * 37 + 11) % 700);

describe('gemma3: context shift with per-layer RoPE', () => {
  test('every layer turns its moved keys with its own base; the values move as they are', async () => {
    const s = model.createSession({ contextSize: 64 });
    await s.evaluate(PROMPT);
    const before = parseState(s.save(), HEAD_DIM);
    const [keep, drop] = [4, 12];
    await s.shift(keep, drop);
    const after = parseState(s.save(), HEAD_DIM);
    expect(after.tokens).toEqual([...PROMPT.slice(0, keep), ...PROMPT.slice(keep + drop)]);
    const n = PROMPT.length;
    let checked = 0;
    for (let l = 0; l < before.nLayer; l++) {
      const base = isLocal(l) ? BASE_LOCAL : BASE_GLOBAL;
      const other = isLocal(l) ? BASE_GLOBAL : BASE_LOCAL;
      const B = before.layers[l]!,
        A = after.layers[l]!;
      let worst = 0,
        worstOther = 0;
      // The positions both states hold: new q = old q + drop, for q >= keep.
      for (let q = Math.max(keep, A.first); q < n - drop; q++) {
        const p = q + drop;
        if (p < B.first) continue;
        const oldK = B.k[0]!.subarray((p - B.first) * HEAD_DIM, (p - B.first + 1) * HEAD_DIM);
        const newK = A.k[0]!.subarray((q - A.first) * HEAD_DIM, (q - A.first + 1) * HEAD_DIM);
        const want = rotateNeox(oldK, base, -drop);
        const wrong = rotateNeox(oldK, other, -drop);
        let mag = 0;
        for (let i = 0; i < HEAD_DIM; i++) mag = Math.max(mag, Math.abs(want[i]!));
        for (let i = 0; i < HEAD_DIM; i++) {
          worst = Math.max(worst, Math.abs(newK[i]! - want[i]!) / mag);
          worstOther = Math.max(worstOther, Math.abs(newK[i]! - wrong[i]!) / mag);
        }
        // The values are not rotated: moved bit for bit.
        expect(Array.from(A.v[0]!.subarray((q - A.first) * HEAD_DIM, (q - A.first + 1) * HEAD_DIM))).toEqual(
          Array.from(B.v[0]!.subarray((p - B.first) * HEAD_DIM, (p - B.first + 1) * HEAD_DIM)),
        );
        checked++;
      }
      // f16 storage of the rotated key: half an f16 step of the largest element, and a bit.
      expect(worst, `layer ${l} (${isLocal(l) ? 'local' : 'global'}) vs its own base`).toBeLessThan(2e-3);
      // The other layer kind's base gives a clearly different key (the test can fail).
      expect(worstOther, `layer ${l} vs the other base`).toBeGreaterThan(0.05);
    }
    expect(checked).toBeGreaterThan(6 * 15);
    // The kept prefix is untouched.
    for (let l = 0; l < before.nLayer; l++) {
      const B = before.layers[l]!,
        A = after.layers[l]!;
      for (let q = Math.max(A.first, B.first); q < keep; q++)
        expect(Array.from(A.k[0]!.subarray((q - A.first) * HEAD_DIM, (q - A.first + 1) * HEAD_DIM))).toEqual(
          Array.from(B.k[0]!.subarray((q - B.first) * HEAD_DIM, (q - B.first + 1) * HEAD_DIM)),
        );
    }
    s.dispose();
  });

  test('generation with a native context shift runs past the context and keeps the first tokens', async () => {
    const s = model.createSession({ contextSize: 48 });
    const res = await s.complete(PROMPT.slice(0, 10), { maxTokens: 80, contextShift: { keep: 3 } });
    expect(res.stopReason).toBe('maxTokens');
    expect(res.tokens.length).toBe(80);
    const cache = s.tokens;
    expect(cache.length).toBeLessThanOrEqual(48);
    expect(cache.slice(0, 3)).toEqual(PROMPT.slice(0, 3));
    expect(cache.slice(3)).toEqual(res.tokens.slice(res.tokens.length - (cache.length - 3)));
    s.dispose();
  });

  test('a shift that drops the whole tail equals a fresh evaluation of what is kept', async () => {
    const s = model.createSession({ contextSize: 64 });
    await s.evaluate(PROMPT);
    await s.shift(20, 20);
    const a = await s.evaluate([5, 6]);
    const fresh = model.createSession({ contextSize: 64 });
    const b = await fresh.evaluate([...PROMPT.slice(0, 20), 5, 6]);
    expect(Array.from(a)).toEqual(Array.from(b));
    s.dispose();
    fresh.dispose();
  });
});

/**
 * The sliding-window KV cache: local layers keep a window of positions (window + batch + 3
 * slots) instead of the whole context. Its oracle is the whole-context cache
 * (fullWindowCache: true): every logit must have the same bits, through long prompts (the
 * window moves many times), decode steps, save/restore, truncate and context shift.
 */
describe('sliding-window KV cache', () => {
  const models = new Map<string, Model>();
  const get = async (name: string, mix: 'f16' | 'q8_0', batchSize: number) => {
    const key = `${name}/${mix}/${batchSize}`;
    if (!models.has(key)) models.set(key, await loadModel(await syntheticModel(name, mix), { threads: 2, batchSize }));
    return models.get(key)!;
  };
  afterAll(() => {
    for (const m of models.values()) m.dispose();
  });
  const promptOf = (m: Model, n: number) => Array.from({ length: n }, (_, i) => 1 + ((i * 37 + 11) % (m.info.vocabSize - 2)));
  const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
  const sameBits = (a: Float32Array, b: Float32Array) => {
    expect(a.length).toBe(b.length);
    const ua = bits(a),
      ub = bits(b);
    for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
    return true;
  };

  test('memory: the local layers take window + batch + 3 positions, the global ones the whole context', async () => {
    const m = await get('tiny-gemma3', 'f16', 7);
    const row = 256 * 2; // head dim 256, f16, one KV head
    const windowed = m.createSession({ contextSize: 256 });
    const full = m.createSession({ contextSize: 256, fullWindowCache: true });
    expect(full.cacheBytes).toBe(6 * 2 * 256 * row);
    expect(windowed.cacheBytes).toBe(1 * 2 * 256 * row + 5 * 2 * (16 + 3 + 7) * row);
    // A window as large as the context is no window.
    const small = m.createSession({ contextSize: 20 });
    expect(small.cacheBytes).toBe(6 * 2 * 20 * row);
    for (const s of [windowed, full, small]) s.dispose();
  });

  const CASES = [
    { name: 'tiny-gemma3', mix: 'f16', flash: false, kv: 'f16' },
    { name: 'tiny-gemma3', mix: 'f16', flash: true, kv: 'f16' },
    { name: 'tiny-gemma2', mix: 'q8_0', flash: false, kv: 'q8_0' },
    { name: 'tiny-gemma2', mix: 'q8_0', flash: true, kv: 'f16' },
  ] as const;
  for (const c of CASES)
    for (const [batchSize, ctx, n] of [
      [7, 256, 150],
      [64, 512, 300],
    ] as const)
      test(`${c.name} ${c.mix}, ${c.flash ? 'flash' : 'default'} attention, ${c.kv} cache, batchSize ${batchSize}: the same bits as the whole cache`, async () => {
        const m = await get(c.name, c.mix, batchSize);
        const o = { contextSize: ctx, flashAttention: c.flash, kvCacheType: c.kv };
        const w = m.createSession(o),
          f = m.createSession({ ...o, fullWindowCache: true });
        expect(w.cacheBytes).toBeLessThan(f.cacheBytes);
        const prompt = promptOf(m, n);
        expect(sameBits(await w.evaluate(prompt, { allLogits: true }), await f.evaluate(prompt, { allLogits: true }))).toBe(true);
        for (const t of [3, 5, 7, 9, 11, 13, 15, 17, 19, 21]) expect(sameBits(await w.evaluate([t]), await f.evaluate([t]))).toBe(true);
        w.dispose();
        f.dispose();
      });

  test('decode steps of windowed sessions batched together give the bits of whole-cache sessions', async () => {
    const m = await get('tiny-gemma2', 'q8_0', 7);
    const prompt = promptOf(m, 60);
    const make = (full: boolean) => [0, 1].map(() => m.createSession({ contextSize: 128, fullWindowCache: full }));
    const [w, f] = [make(false), make(true)];
    for (const s of [...w, ...f]) await s.evaluate(prompt.slice(0, 40 + (w.includes(s) ? w.indexOf(s) : f.indexOf(s)) * 7));
    const before = m.stats.batchedSteps;
    for (const t of [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24]) {
      const a = await Promise.all(w.map((s) => s.evaluate([t])));
      const b = await Promise.all(f.map((s) => s.evaluate([t])));
      for (let i = 0; i < 2; i++) expect(sameBits(a[i]!, b[i]!)).toBe(true);
    }
    expect(m.stats.batchedSteps).toBeGreaterThan(before); // they did run together
    for (const s of [...w, ...f]) s.dispose();
  });

  test('save / restore: a windowed state is smaller, restores and continues with the same bits; it is refused by a whole-cache session', async () => {
    const m = await get('tiny-gemma3', 'f16', 7);
    const prompt = promptOf(m, 120);
    const w = m.createSession({ contextSize: 256 }),
      f = m.createSession({ contextSize: 256, fullWindowCache: true });
    await w.evaluate(prompt);
    await f.evaluate(prompt);
    const ws = w.save(),
      fs = f.save();
    expect(ws.length).toBeLessThan(fs.length / 2);
    const want = await f.evaluate([42]);
    expect(sameBits(await w.evaluate([42]), want)).toBe(true);
    // The windowed state into a fresh windowed session; the whole-cache state too.
    for (const state of [ws, fs]) {
      const r = m.createSession({ contextSize: 256 });
      r.restore(state);
      expect(Array.from(r.tokens)).toEqual(prompt);
      expect(sameBits(await r.evaluate([42]), want)).toBe(true);
      r.dispose();
    }
    const rf = m.createSession({ contextSize: 256, fullWindowCache: true });
    expect(() => rf.restore(ws)).toThrow(expect.objectContaining({ code: 'ERR_STATE_MISMATCH' }));
    rf.restore(fs);
    expect(sameBits(await rf.evaluate([42]), want)).toBe(true);
    // Damaged: a layer's first position past the end.
    const bad = Uint8Array.from(ws);
    new DataView(bad.buffer).setUint32(36 + 4 * 120, 1000, true);
    expect(() => m.createSession({ contextSize: 256 }).restore(bad)).toThrow(expect.objectContaining({ code: 'ERR_BAD_STATE' }));
    for (const s of [w, f, rf]) s.dispose();
  });

  test('truncate within the window keeps the tokens (same bits as the whole cache); further back it empties the session', async () => {
    const m = await get('tiny-gemma3', 'f16', 7);
    const prompt = promptOf(m, 100);
    const w = m.createSession({ contextSize: 256 }),
      f = m.createSession({ contextSize: 256, fullWindowCache: true });
    await w.evaluate(prompt);
    await f.evaluate(prompt);
    w.truncate(97);
    f.truncate(97);
    expect(w.nTokens).toBe(97);
    expect(sameBits(await w.evaluate([8, 9]), await f.evaluate([8, 9]))).toBe(true);
    w.truncate(20);
    expect(w.nTokens).toBe(0);
    // Generation syncs a session to its prompt: a prompt sharing the first 20 tokens
    // evaluates everything again on the windowed session, and gives the same tokens.
    const p2 = [...prompt.slice(0, 20), 4, 5, 6];
    await w.evaluate(prompt);
    const a = await w.complete(p2, { maxTokens: 12 });
    const b = await f.complete(p2, { maxTokens: 12 });
    expect(a.tokens).toEqual(b.tokens);
    w.dispose();
    f.dispose();
  });

  test('context shift: the same bits as the whole cache; when the windows would reach kept tokens they no longer hold, it evaluates again', async () => {
    const m = await get('tiny-gemma3', 'f16', 7);
    const prompt = promptOf(m, 90);
    const w = m.createSession({ contextSize: 128 }),
      f = m.createSession({ contextSize: 128, fullWindowCache: true });
    await w.evaluate(prompt);
    await f.evaluate(prompt);
    await w.shift(4, 30);
    await f.shift(4, 30);
    expect(Array.from(w.tokens)).toEqual(Array.from(f.tokens));
    expect(sameBits(await w.evaluate([8, 9, 10]), await f.evaluate([8, 9, 10]))).toBe(true);
    // keep 40 of 63: the next token's window starts at 48 - 15 = 33, among the kept tokens
    // the local layers no longer hold: the session starts again.
    await w.shift(40, 23);
    expect(w.nTokens).toBe(0);
    w.dispose();
    f.dispose();
    // Generation with such shifts evaluates the kept tokens again: the tokens of a
    // whole-cache session that always evaluates again.
    const g = m.createSession({ contextSize: 48 }),
      h = m.createSession({ contextSize: 48, fullWindowCache: true });
    const start = prompt.slice(0, 40);
    const a = await g.complete(start, { maxTokens: 30, contextShift: { keep: 30 } });
    const b = await h.complete(start, { maxTokens: 30, contextShift: { keep: 30, reevaluate: true } });
    expect(a.tokens).toEqual(b.tokens);
    expect(Array.from(g.tokens)).toEqual(Array.from(h.tokens));
    g.dispose();
    h.dispose();
  });
});
