/**
 * Small synthetic models for the parity tests, written once into .cache/ (ignored by
 * git) and reused. The shapes are tiny but cover what the forward pass must get right:
 * head dim 64 and 128, GQA ratios 1, 3, 4 and 8, widths that are not powers of two,
 * key_length != n_embd / n_head, tied and separate output matrices, both architectures.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeSyntheticModel, type MixName, type ModelShape } from '../../models/synthetic.js';

export const PARITY_SHAPES: Record<string, ModelShape> = {
  // llama, multi-head attention (GQA ratio 1), head dim 64, n_embd 192.
  'llama-mha-hd64': { arch: 'llama', nLayers: 2, nEmbd: 192, nFF: 320, nHead: 3, nHeadKv: 3, nVocab: 512 },
  // llama, GQA 8, head dim 128 with key_length (8 * 128) != n_embd (320), n_ff 608.
  'llama-gqa8-hd128': { arch: 'llama', nLayers: 2, nEmbd: 320, nFF: 608, nHead: 8, nHeadKv: 1, headDim: 128, nVocab: 700 },
  // qwen2 (Q/K/V biases, NeoX RoPE), GQA 3, head dim 64, n_embd 768 (K-quant rows),
  // n_ff 864 (not a multiple of 256: ffn_down falls back to a 32-block type), tied
  // output, GPT-2 vocabulary. (llama.cpp's qwen2 needs n_head * head_dim == n_embd.)
  'qwen2-gqa3-hd64': {
    arch: 'qwen2', nLayers: 2, nEmbd: 768, nFF: 864, nHead: 12, nHeadKv: 4, nVocab: 800,
    tiedEmbeddings: true, tokenizer: 'gpt2', rmsEps: 1e-6, ropeFreqBase: 1000000,
  },
  // qwen2, GQA 4, head dim 128, n_embd 512, n_ff 1280 = 5 * 256.
  'qwen2-gqa4-hd128': { arch: 'qwen2', nLayers: 2, nEmbd: 512, nFF: 1280, nHead: 4, nHeadKv: 1, nVocab: 640, tokenizer: 'gpt2' },
};

export const cacheDir = path.resolve('.cache', 'parity-models');

/** The path of a synthetic parity model, written on first use. */
export async function parityModel(shape: string, mix: MixName): Promise<string> {
  const s = PARITY_SHAPES[shape];
  if (!s) throw new Error(`unknown parity shape ${shape}`);
  mkdirSync(cacheDir, { recursive: true });
  // The name carries a hash of the shape (and of the writer's fallback policy, whose
  // default changed), so a changed shape never reuses an old file.
  const tag = createHash('sha256').update(JSON.stringify({ ...s, fallback: 'llama.cpp' })).digest('hex').slice(0, 8);
  const file = path.join(cacheDir, `${shape}-${mix}-${tag}.gguf`);
  if (!existsSync(file)) await writeSyntheticModel(file, { shape: s, mix, seed: 7, name: `${shape}-${mix}` });
  return file;
}

/** A deterministic token sequence: BOS, then pseudo-random ids past the special tokens. */
export function tokenSequence(vocab: number, seed: number, length: number): number[] {
  let s = seed >>> 0;
  const out = [1];
  while (out.length < length) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(3 + (s % (vocab - 3)));
  }
  return out;
}
