/** `sparrow inspect` says whether sparrow can run a file, and exactly what is missing. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gguf, writeGGUF } from '../../models/gguf-writer.js';
import { syntheticMetadata, syntheticTensors, writeSyntheticModel, type ModelShape } from '../../models/synthetic.js';
import { inspectGGUF } from '../../src/index.js';
import { checkSupport, nativeSupport } from '../../src/cli/commands/inspect.js';

const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'bin/sparrow.mjs');
const sparrow = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: process.env });
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-inspect-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const shape: ModelShape = { arch: 'qwen2', nLayers: 2, nEmbd: 192, nFF: 320, nHead: 3, nHeadKv: 1, nVocab: 400 };

describe('the build reports what it computes with', () => {
  it('every weight type of the synthetic writer, and the llama family', () => {
    const s = nativeSupport();
    for (const t of ['F32', 'F16', 'BF16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'IQ4_NL', 'IQ4_XS', 'MXFP4'])
      expect(s.types).toContain(t);
    expect(s.types).not.toContain('IQ2_XXS');
    expect(s.architectures).toEqual(expect.arrayContaining(['llama', 'qwen2']));
  });
});

describe('checkSupport', () => {
  it('a q4_k_m file of rows that are not 256-multiples (Q5_0 / Q8_0 fallbacks) runs', async () => {
    const file = path.join(dir, 'ok.gguf');
    await writeSyntheticModel(file, { shape, mix: 'q4_k_m', seed: 1 });
    const g = inspectGGUF(file);
    expect(g.tensors.some((t) => t.type === 'Q5_0')).toBe(true);
    expect(checkSupport(g)).toEqual({ runnable: true, missing: [] });
    const r = sparrow('inspect', file);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^runs in sparrow yes$/m);
  });

  it('names the architecture, each missing type (with its first tensor) and each missing tensor', () => {
    const g = inspectGGUF(path.join(dir, 'ok.gguf'));
    // the same header as another family would have it, with tensors of a type sparrow lacks
    const other = { ...g, metadata: { ...g.metadata, 'general.architecture': 'gemma3' } };
    const a = checkSupport(other, { types: ['F32', 'Q8_0'], architectures: ['llama', 'qwen2'] });
    expect(a.runnable).toBe(false);
    expect(a.missing[0]).toMatchObject({ kind: 'architecture', name: 'gemma3' });
    expect(a.missing[0]!.detail).toContain('llama, qwen2');
    const types = a.missing.filter((m) => m.kind === 'type').map((m) => m.name);
    expect(new Set(types)).toEqual(new Set(g.tensors.filter((t) => t.shape.length > 1 && t.type !== 'Q8_0').map((t) => t.type)));
    const q5 = a.missing.find((m) => m.name === 'Q5_0')!;
    const firstQ5 = g.tensors.find((t) => t.type === 'Q5_0')!.name;
    expect(q5.detail).toContain(`first '${firstQ5}'`);
    expect(q5.detail).toContain(`${g.tensors.filter((t) => t.type === 'Q5_0').length} tensors`);
    // a qwen2 file without its biases and a layer's down projection
    const cut = { ...g, tensors: g.tensors.filter((t) => !t.name.endsWith('attn_k.bias') && t.name !== 'blk.1.ffn_down.weight') };
    const b = checkSupport(cut);
    expect(b.runnable).toBe(false);
    expect(b.missing.map((m) => `${m.kind} ${m.name}`).sort()).toEqual([
      'tensor blk.0.attn_k.bias',
      'tensor blk.1.attn_k.bias',
      'tensor blk.1.ffn_down.weight',
    ]);
    // a vector (norm) in a quantized type cannot be read either
    const vec = { ...g, tensors: g.tensors.map((t) => (t.name === 'output_norm.weight' ? { ...t, type: 'Q8_0' } : t)) };
    expect(checkSupport(vec).missing).toEqual([expect.objectContaining({ kind: 'type', name: 'Q8_0' })]);
  });

  it('the CLI prints the reasons (text and JSON) for a file of an unknown architecture', async () => {
    const file = path.join(dir, 'other.gguf');
    const md = syntheticMetadata({ shape, mix: 'q8_0' }).map(([k, v]) =>
      k === 'general.architecture' ? ([k, gguf.str('mamba')] as const) : ([k, v] as const),
    );
    await writeGGUF(file, { metadata: md as never, tensors: syntheticTensors({ shape, mix: 'q8_0' }) });
    const r = sparrow('inspect', file);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^runs in sparrow no, missing:$/m);
    expect(r.stdout).toMatch(/^ +- architecture 'mamba' \(sparrow runs: .*llama.*\)$/m);
    const j = JSON.parse(sparrow('inspect', file, '--json').stdout);
    expect(j.sparrow.runnable).toBe(false);
    expect(j.sparrow.missing).toEqual([expect.objectContaining({ kind: 'architecture', name: 'mamba' })]);
  });
});
