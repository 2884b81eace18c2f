/**
 * Activation sparsity through the public API: option validation (loadModel and
 * createSession), model.info, the allocation's byte fraction, and the contracts of the
 * forward pass: level 0 is the exact dense path, prompts stay dense, a decode step with
 * sparsity > 0 changes the logits, and results do not depend on batching. Model: the real
 * stories260K files.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadModel, SparrowError, type Model } from '../../src/index.js';
import { byteFraction, MAX_SITE_FRACTION } from '../../src/sparsity/allocation.js';

const STORIES = path.resolve('..', 'shared', 'models', 'stories260K-f32.gguf');
const PROMPT = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426];

async function code(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(SparrowError);
    return (e as SparrowError).code;
  }
  return undefined;
}

describe('sparsity options', () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(STORIES, { threads: 1 });
  });
  afterAll(() => model?.dispose());

  test('loadModel refuses a sparsity outside [0, 0.9]', async () => {
    for (const bad of [-0.1, 0.95, 1, Number.NaN, Infinity, '0.4', null, true])
      expect(await code(loadModel(STORIES, { sparsity: bad as unknown as number })), String(bad)).toBe('ERR_INVALID_ARG');
  });

  test('model.info says what is in effect', async () => {
    expect(model.info.sparsity).toEqual({ level: 0, allocation: 'default', file: null });
    const m = await loadModel(STORIES, { threads: 1, sparsity: 0.4 });
    try {
      expect(m.info.sparsity.level).toBe(0.4);
      expect(m.info.sparsity.allocation).toBe('default');
    } finally {
      m.dispose();
    }
  });

  test('createSession refuses bad sparsity options', async () => {
    for (const bad of [-1, 0.91, Number.NaN, '0.2'])
      expect(await code(() => model.createSession({ sparsity: bad as unknown as number })), String(bad)).toBe('ERR_INVALID_ARG');
    expect(await code(() => model.createSession({ sparsePrompt: 1 as unknown as boolean }))).toBe('ERR_INVALID_ARG');
  });

  test('the default allocation skips the requested byte fraction, within the site cap', () => {
    const bytes = model.sparsitySiteBytes;
    expect(bytes.length).toBe(model.info.layerCount * 4);
    for (const level of [0, 0.05, 0.1, 0.25, 0.4, 0.5, 0.73, 0.9]) {
      const alloc = model.sparsityAllocation(level);
      expect(byteFraction(bytes, alloc)).toBeCloseTo(level, 5);
      for (const f of alloc) expect(f >= 0 && f <= MAX_SITE_FRACTION).toBe(true);
    }
    // The prior: down takes the most, then o, gate/up, and Q/K/V the least.
    const a = model.sparsityAllocation(0.3);
    expect(a[3]).toBeGreaterThan(a[1]!);
    expect(a[1]).toBeGreaterThan(a[2]!);
    expect(a[2]).toBeGreaterThan(a[0]!);
  });
});

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/** Logits of PROMPT's last token evaluated token by token (every one a decode step), each row kept. */
async function stepwise(model: Model, options: { sparsity?: number }, tokens = PROMPT): Promise<Float32Array[]> {
  const s = model.createSession({ contextSize: 64, ...options });
  try {
    const rows: Float32Array[] = [];
    for (const t of tokens) rows.push(await s.evaluate([t]));
    return rows;
  } finally {
    s.dispose();
  }
}

describe('sparsity in the forward pass', () => {
  let dense: Model;
  let sparse: Model;
  beforeAll(async () => {
    dense = await loadModel(STORIES, { threads: 1 });
    sparse = await loadModel(STORIES, { threads: 2, sparsity: 0.4 });
  });
  afterAll(() => {
    dense?.dispose();
    sparse?.dispose();
  });

  test('level 0 is the exact dense path; prompts stay dense at any level', async () => {
    const want = await stepwise(dense, {});
    const zero = await stepwise(sparse, { sparsity: 0 });
    for (let i = 0; i < want.length; i++) expect(sameBits(zero[i]!, want[i]!), `token ${i}`).toBe(true);
    const a = dense.createSession({ contextSize: 64 });
    const b = sparse.createSession({ contextSize: 64 });
    try {
      const la = await a.evaluate(PROMPT, { allLogits: true });
      const lb = await b.evaluate(PROMPT, { allLogits: true });
      expect(sameBits(la, lb)).toBe(true);
    } finally {
      a.dispose();
      b.dispose();
    }
  });

  test('a decode step with sparsity changes the logits, more at higher levels, and keeps them close to dense', async () => {
    const want = await stepwise(dense, {});
    const err = (rows: Float32Array[]) => {
      let sum = 0;
      for (let i = 1; i < rows.length; i++) {
        let d = 0;
        for (let j = 0; j < rows[i]!.length; j++) d += (rows[i]![j]! - want[i]![j]!) ** 2;
        sum += Math.sqrt(d);
      }
      return sum;
    };
    const e1 = err(await stepwise(dense, { sparsity: 0.1 }));
    const e5 = err(await stepwise(dense, { sparsity: 0.5 }));
    const e9 = err(await stepwise(dense, { sparsity: 0.9 }));
    expect(e1).toBeGreaterThan(0);
    expect(e5).toBeGreaterThan(e1);
    expect(e9).toBeGreaterThan(e5);
    // The session's level, from the model's (0.4), or overridden.
    const m4 = err(await stepwise(sparse, {}));
    expect(m4).toBeGreaterThan(e1);
    expect(m4).toBeLessThan(e9);
  });

  test('sparsePrompt: the rows of a prompt are the token-by-token sparse decode, bit for bit', async () => {
    const want = await stepwise(dense, { sparsity: 0.3 });
    const s = dense.createSession({ contextSize: 64, sparsity: 0.3, sparsePrompt: true });
    try {
      const all = await s.evaluate(PROMPT, { allLogits: true });
      const v = dense.info.vocabSize;
      for (let i = 0; i < PROMPT.length; i++) expect(sameBits(all.subarray(i * v, (i + 1) * v), want[i]!), `row ${i}`).toBe(true);
    } finally {
      s.dispose();
    }
  });

  test('batched decode steps of sessions at different levels give what each gives alone', async () => {
    const levels = [0, 0.2, 0.5, 0.8];
    const alone = await Promise.all(levels.map(async (l) => (await stepwise(dense, { sparsity: l }, PROMPT.slice(0, 6)))[5]!));
    const sessions = levels.map((l) => dense.createSession({ contextSize: 64, sparsity: l }));
    try {
      // The same history as stepwise() (every token a decode step), the steps batched.
      for (let i = 0; i < 5; i++) await Promise.all(sessions.map((s) => s.evaluate([PROMPT[i]!])));
      const before = dense.stats.batchedSteps;
      const last = await Promise.all(sessions.map((s) => s.evaluate([PROMPT[5]!])));
      expect(dense.stats.batchedSteps).toBeGreaterThan(before);
      for (let i = 0; i < levels.length; i++) expect(sameBits(last[i]!, alone[i]!), `level ${levels[i]}`).toBe(true);
    } finally {
      for (const s of sessions) s.dispose();
    }
  });
});

