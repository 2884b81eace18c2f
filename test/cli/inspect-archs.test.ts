// `sparrow inspect` names the tensors a file lacks for every architecture the loader runs:
// the required list comes from the native architecture table (architectureTable()), and
// the loader itself is the oracle: a file without one tensor is reported as missing exactly
// the tensor(s) inspect names, and loadModel rejects it with ERR_MISSING_TENSOR naming
// the first of them. A complete file of each architecture is runnable (no false reports,
// e.g. Gemma's untied output or Phi-3's absent ffn_gate).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeGGUF } from '../../models/gguf-writer.js';
import { syntheticMetadata, syntheticTensors, type ModelShape } from '../../models/synthetic.js';
import { inspectGGUF, loadModel, systemInfo } from '../../src/index.js';
import { checkSupport, nativeSupport } from '../../src/cli/commands/inspect.js';
import { architectureTable } from '../../src/system.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-inspect-archs-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const SHAPES: Record<string, ModelShape> = {
  llama: { arch: 'llama', nLayers: 2, nEmbd: 64, nFF: 96, nHead: 2, nHeadKv: 1, nVocab: 400 },
  qwen2: { arch: 'qwen2', nLayers: 2, nEmbd: 64, nFF: 96, nHead: 2, nHeadKv: 1, nVocab: 400 },
  qwen3: { arch: 'qwen3', nLayers: 2, nEmbd: 64, nFF: 96, nHead: 2, nHeadKv: 1, headDim: 64, nVocab: 400, tokenizer: 'gpt2' },
  gemma2: { arch: 'gemma2', nLayers: 2, nEmbd: 64, nFF: 96, nHead: 2, nHeadKv: 1, nVocab: 400, slidingWindow: 16 },
  gemma3: { arch: 'gemma3', nLayers: 2, nEmbd: 64, nFF: 96, nHead: 2, nHeadKv: 1, nVocab: 400, slidingWindow: 16 },
  phi3: { arch: 'phi3', nLayers: 2, nEmbd: 64, nFF: 96, nHead: 2, nHeadKv: 2, nVocab: 400, ropeFactors: true, originalContextLength: 64, contextLength: 4096 },
  qwen3moe: { arch: 'qwen3moe', nLayers: 2, nEmbd: 64, nFF: 96, nHead: 2, nHeadKv: 1, nVocab: 400, tokenizer: 'gpt2', nExpert: 4, nExpertUsed: 2, nFFExp: 32 },
  'gpt-oss': { arch: 'gpt-oss', nLayers: 2, nEmbd: 64, nFF: 96, nHead: 2, nHeadKv: 1, headDim: 64, nVocab: 400, tokenizer: 'gpt2', nExpert: 4, nExpertUsed: 2, nFFExp: 32 },
  'llama-moe': { arch: 'llama', nLayers: 2, nEmbd: 64, nFF: 96, nHead: 2, nHeadKv: 1, nVocab: 400, nExpert: 4, nExpertUsed: 2 },
};

/** Per shape: a tensor to leave out, and what inspect must then report missing (in order). */
const CUTS: [shape: string, drop: string, missing: string[]][] = [
  ['llama', 'blk.1.ffn_gate.weight', ['blk.1.ffn_gate.weight']],
  ['qwen2', 'blk.0.attn_v.bias', ['blk.0.attn_v.bias']],
  ['qwen3', 'blk.1.attn_k_norm.weight', ['blk.1.attn_k_norm.weight']],
  ['gemma2', 'blk.0.post_ffw_norm.weight', ['blk.0.post_ffw_norm.weight']],
  ['gemma3', 'blk.1.attn_q_norm.weight', ['blk.1.attn_q_norm.weight']],
  ['gemma3', 'blk.0.post_attention_norm.weight', ['blk.0.post_attention_norm.weight']],
  // Without the stacked matrix the loader reads separate Q, K and V.
  ['phi3', 'blk.1.attn_qkv.weight', ['blk.1.attn_q.weight', 'blk.1.attn_k.weight', 'blk.1.attn_v.weight']],
  ['phi3', 'blk.0.ffn_up.weight', ['blk.0.ffn_up.weight']],
  ['qwen3moe', 'blk.1.ffn_down_exps.weight', ['blk.1.ffn_down_exps.weight']],
  ['qwen3moe', 'blk.0.attn_q_norm.weight', ['blk.0.attn_q_norm.weight']],
  ['gpt-oss', 'blk.1.attn_sinks.weight', ['blk.1.attn_sinks.weight']],
  ['gpt-oss', 'blk.0.post_attention_norm.weight', ['blk.0.post_attention_norm.weight']],
  ['gpt-oss', 'blk.0.attn_output.bias', ['blk.0.attn_output.bias']],
  ['gpt-oss', 'blk.1.ffn_down_exps.bias', ['blk.1.ffn_down_exps.bias']],
  ['gpt-oss', 'blk.0.ffn_gate_inp.bias', ['blk.0.ffn_gate_inp.bias']],
  ['llama-moe', 'blk.0.ffn_gate_inp.weight', ['blk.0.ffn_gate_inp.weight']],
  ['llama-moe', 'blk.1.ffn_up_exps.weight', ['blk.1.ffn_up_exps.weight']],
];

async function write(shape: string, drop?: string): Promise<string> {
  const options = { shape: SHAPES[shape]!, mix: 'f32' as const, seed: 3 };
  const tensors = syntheticTensors(options);
  if (drop) expect(tensors.map((t) => t.name)).toContain(drop);
  const file = path.join(dir, `${shape}${drop ? `-no-${drop}` : ''}.gguf`);
  await writeGGUF(file, { metadata: syntheticMetadata(options), tensors: tensors.filter((t) => t.name !== drop) });
  return file;
}

describe('inspect: required tensors per architecture, from the native table', () => {
  it('the table has a row for every architecture the build runs', () => {
    const rows = architectureTable();
    expect(rows.map((r) => r.name).sort()).toEqual([...systemInfo().architectures].sort());
    expect(nativeSupport().architectureTable).toEqual(rows);
    const qwen2 = rows.find((r) => r.name === 'qwen2')!;
    expect(qwen2.qkvBias).toBe('required');
    expect(rows.find((r) => r.name === 'phi3')!.ffnUpGate).toBe(true);
  });

  for (const shape of Object.keys(SHAPES)) {
    it(`${shape}: a complete file runs, and loads`, async () => {
      const file = await write(shape);
      expect(checkSupport(inspectGGUF(file))).toEqual({ runnable: true, missing: [] });
      const model = await loadModel(file, { threads: 1 });
      model.dispose();
    });
  }

  for (const [shape, drop, missing] of CUTS) {
    it(`${shape} without ${drop}: inspect names ${missing.join(', ')}, as the loader does`, async () => {
      const file = await write(shape, drop);
      const check = checkSupport(inspectGGUF(file));
      expect(check.runnable).toBe(false);
      expect(check.missing.map((m) => `${m.kind} ${m.name}`)).toEqual(missing.map((n) => `tensor ${n}`));
      expect(check.missing[0]!.detail).toContain(`required by ${SHAPES[shape]!.arch}`);
      await expect(loadModel(file, { threads: 1 })).rejects.toMatchObject({
        code: 'ERR_MISSING_TENSOR',
        message: expect.stringContaining(`'${missing[0]}'`),
      });
    });
  }
});
