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
      expect(m.info.sparsity.level).toBeCloseTo(0.4, 6);
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
    // The prior: down and o take more than qkv, which takes more than gate/up.
    const a = model.sparsityAllocation(0.3);
    expect(a[3]).toBeGreaterThan(a[0]!);
    expect(a[1]).toBeGreaterThan(a[0]!);
    expect(a[0]).toBeGreaterThan(a[2]!);
  });
});
