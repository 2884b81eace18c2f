// The synthetic model cache: location, names, reuse, concurrent writers, progress.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WRITER_VERSION, modelCacheDir, syntheticModel, syntheticModelFileName } from '../../models/cache.js';
import { catalogueEntry } from '../../models/catalogue.js';
import { writeSyntheticModel } from '../../models/synthetic.js';
import { inspectGGUF } from '../../src/gguf.js';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-cache-'));
const saved = process.env.SPARROW_CACHE;
beforeEach(() => {
  process.env.SPARROW_CACHE = root;
});
afterEach(() => {
  if (saved === undefined) delete process.env.SPARROW_CACHE;
  else process.env.SPARROW_CACHE = saved;
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('syntheticModel', () => {
  it('uses $SPARROW_CACHE/models, else the OS cache folder', () => {
    expect(modelCacheDir()).toBe(path.join(root, 'models'));
    delete process.env.SPARROW_CACHE;
    const xdg = process.env.XDG_CACHE_HOME;
    process.env.XDG_CACHE_HOME = '/some/where';
    try {
      if (process.platform === 'linux') expect(modelCacheDir()).toBe(path.join('/some/where', 'sparrow-llm', 'models'));
      else expect(modelCacheDir()).toMatch(/sparrow-llm[\\/]models$/);
    } finally {
      if (xdg === undefined) delete process.env.XDG_CACHE_HOME;
      else process.env.XDG_CACHE_HOME = xdg;
    }
  });

  it('names files by model, mix, seed, writer version and a hash of the shape', () => {
    const name = syntheticModelFileName('tiny-mha', 'q4_0', { seed: 9 });
    expect(name).toMatch(new RegExp(`^tiny-mha-q4_0-s9-w${WRITER_VERSION}-[0-9a-f]{10}\\.gguf$`));
    expect(syntheticModelFileName('tiny-mha', 'q4_0', { seed: 9, pure: true })).toContain('-pure-');
    // a different shape under the same name gets a different file
    const shape = { ...catalogueEntry('tiny-mha').shape, nLayers: 3 };
    expect(syntheticModelFileName({ name: 'tiny-mha', shape }, 'q4_0', { seed: 9 })).not.toBe(name);
    expect(() => syntheticModelFileName('tiny-mha', 'q9' as never)).toThrow(/mix/);
    expect(() => syntheticModelFileName('no-such-model', 'q4_0')).toThrow(/unknown catalogue model/);
    expect(() => syntheticModelFileName({ name: '../x', shape }, 'q4_0')).toThrow(/name/);
    expect(() => syntheticModelFileName('tiny-mha', 'q4_0', { seed: -1 })).toThrow(/seed/);
  });

  it('writes once, reports progress, and reuses the file', async () => {
    const progress: [number, number][] = [];
    const file = await syntheticModel('tiny-mha', 'q8_0', { seed: 3, onProgress: (w, t) => progress.push([w, t]) });
    expect(path.dirname(file)).toBe(path.join(root, 'models'));
    const size = fs.statSync(file).size;
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toEqual([size, size]);
    expect(inspectGGUF(file).tensors.find((t) => t.name === 'blk.0.attn_q.weight')?.type).toBe('Q8_0');
    const mtime = fs.statSync(file).mtimeMs;
    const hits: [number, number][] = [];
    expect(await syntheticModel('tiny-mha', 'q8_0', { seed: 3, onProgress: (w, t) => hits.push([w, t]) })).toBe(file);
    expect(fs.statSync(file).mtimeMs).toBe(mtime);
    expect(hits).toEqual([[size, size]]);
    // the cached file is exactly what writeSyntheticModel writes
    const direct = path.join(root, 'direct.gguf');
    await writeSyntheticModel(direct, { shape: catalogueEntry('tiny-mha').shape, mix: 'q8_0', seed: 3, name: 'synthetic tiny-mha' });
    expect(sha(direct)).toBe(sha(file));
  });

  it('concurrent callers get one complete file and leave no temporary files', async () => {
    // In one process the callers share the write; separate writers to the same final
    // path (other processes) each write their own temp file and rename it atomically.
    const [a, b] = await Promise.all([
      syntheticModel('tiny-gqa3', 'q4_k_m', { seed: 5 }),
      syntheticModel('tiny-gqa3', 'q4_k_m', { seed: 5 }),
    ]);
    expect(a).toBe(b);
    const target = path.join(root, 'race.gguf');
    const shape = catalogueEntry('tiny-gqa3').shape;
    await Promise.all([1, 2, 3].map(() => writeSyntheticModel(target, { shape, mix: 'q4_k_m', seed: 5, name: 'synthetic tiny-gqa3' })));
    expect(sha(target)).toBe(sha(a));
    const leftovers = [root, path.join(root, 'models')].flatMap((d) => fs.readdirSync(d).filter((n) => n.endsWith('.tmp')));
    expect(leftovers).toEqual([]);
  });

  it('a failed write leaves nothing under the final name', async () => {
    const shape = { ...catalogueEntry('tiny-mha').shape, nHeadKv: 3 }; // 4 heads, 3 kv heads: invalid
    await expect(syntheticModel({ name: 'broken', shape }, 'f16')).rejects.toThrow(/nHeadKv/);
    expect(fs.readdirSync(path.join(root, 'models')).filter((n) => n.startsWith('broken') || n.includes('.broken'))).toEqual([]);
  });
});
