/**
 * Parity with llama.cpp (node-llama-cpp 3.21.1) for the architectures beyond llama and
 * qwen2, on synthetic files of each (models/synthetic.ts writes their metadata keys and
 * tensor names as llama.cpp's converter does). Same measure and criteria as
 * llamacpp.test.ts: per position of a 64-token sequence, the RMS over the vocabulary of the
 * difference of the two log-softmax vectors over the standard deviation of llama.cpp's;
 * bounded per weight type; every decisive argmax (llama.cpp's top two further apart than
 * twice the bound) agrees, and decisive positions are most of them. Our side evaluates the
 * prompt in batches of 24 (3 passes), llama.cpp in one, both without flash attention.
 *
 * qwen3: per-head RMSNorm of Q and K (attn_q_norm / attn_k_norm), NeoX RoPE, no biases,
 * key_length != n_embd / n_head in one shape, tied and separate output matrices.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getLlama, type Llama } from 'node-llama-cpp';
import { loadModel } from '../../src/index.js';
import { writeSyntheticModel, type MixName, type ModelShape } from '../../models/synthetic.js';
import { cacheDir, tokenSequence } from './synthetic-models.js';

const SEQ_LEN = 64;

// The bounds of llamacpp.test.ts for these types (see its header for what they measure).
const BOUND: Partial<Record<MixName, number>> = { f32: 5e-4, q8_0: 4e-2, q4_k_m: 4e-2 };

const SHAPES: Record<string, ModelShape> = {
  // Qwen3-0.6B's proportions, small: head dim 128 with n_head * head_dim (1024) twice
  // n_embd (512), GQA 4, tied output, GPT-2 vocabulary, rope base 1e6, eps 1e-6.
  'qwen3-gqa4-hd128': {
    arch: 'qwen3', nLayers: 2, nEmbd: 512, nFF: 768, nHead: 8, nHeadKv: 2, headDim: 128, nVocab: 600,
    tiedEmbeddings: true, tokenizer: 'gpt2', rmsEps: 1e-6, ropeFreqBase: 1000000,
  },
  // Multi-head attention, head dim 64, width 192 (32-block rows), separate output.
  'qwen3-mha-hd64': { arch: 'qwen3', nLayers: 2, nEmbd: 192, nFF: 320, nHead: 3, nHeadKv: 3, nVocab: 512, tokenizer: 'gpt2' },
};

async function modelFile(shape: string, mix: MixName): Promise<string> {
  const s = SHAPES[shape]!;
  mkdirSync(cacheDir, { recursive: true });
  const tag = createHash('sha256').update(JSON.stringify(s)).digest('hex').slice(0, 8);
  const file = path.join(cacheDir, `${shape}-${mix}-${tag}.gguf`);
  if (!existsSync(file)) await writeSyntheticModel(file, { shape: s, mix, seed: 7, name: `${shape}-${mix}` });
  return file;
}

function logSoftmax(x: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp(x[i]! - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x as ArrayLike<number>, (v) => v - lse);
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

let llama: Llama;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, logLevel: 'error' as never });
});
afterAll(async () => {
  await Promise.race([llama?.dispose(), new Promise((r) => setTimeout(r, 10_000))]);
});

async function reference(file: string, tokens: number[], vocab: number): Promise<Float64Array[]> {
  const model = await llama.loadModel({ modelPath: file });
  try {
    const ctx = await model.createContext({ contextSize: 128, flashAttention: false, threads: 2, batchSize: 128 });
    try {
      const out = await ctx.getSequence().controlledEvaluate(
        tokens.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 0 } } }] as const) as never,
      );
      return tokens.map((_, i) => {
        const probs = (out[i] as { next?: { probabilities?: Map<number, number> } } | undefined)?.next?.probabilities;
        if (!probs) throw new Error(`node-llama-cpp gave no probabilities at position ${i}`);
        const lp = new Float64Array(vocab).fill(-Infinity);
        for (const [tok, p] of probs) lp[tok] = Math.log(p);
        return lp;
      });
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

async function compare(shape: string, mix: MixName) {
  const file = await modelFile(shape, mix);
  const vocab = SHAPES[shape]!.nVocab;
  const bound = BOUND[mix]!;
  const tokens = tokenSequence(vocab, shape.length * 31 + mix.length, SEQ_LEN);
  const ref = await reference(file, tokens, vocab);
  const model = await loadModel(file, { threads: 2, batchSize: 24 });
  expect(model.info.architecture).toBe(SHAPES[shape]!.arch);
  const all = await model.createSession({ contextSize: 128 }).evaluate(tokens, { allLogits: true });
  model.dispose();
  let maxErr = 0, agree = 0, decisive = 0, decisiveAgree = 0;
  for (let p = 0; p < SEQ_LEN; p++) {
    const ours = logSoftmax(all.subarray(p * vocab, (p + 1) * vocab));
    const theirs = ref[p]!;
    let mean = 0, n = 0;
    for (const v of theirs) if (Number.isFinite(v)) (mean += v), n++;
    mean /= n;
    let varRef = 0, sq = 0;
    for (let i = 0; i < vocab; i++) {
      if (!Number.isFinite(theirs[i]!)) continue;
      varRef += (theirs[i]! - mean) ** 2;
      sq += (ours[i]! - theirs[i]!) ** 2;
    }
    maxErr = Math.max(maxErr, Math.sqrt(sq / varRef));
    const same = argmax(ours) === argmax(theirs);
    if (same) agree++;
    const sorted = Float64Array.from(theirs).sort().reverse();
    if (sorted[0]! - sorted[1]! > 2 * bound * Math.sqrt(varRef / n)) {
      decisive++;
      if (same) decisiveAgree++;
    }
  }
  console.log(
    `${shape} ${mix}: max normalized error ${maxErr.toExponential(2)}, argmax ${agree}/${SEQ_LEN}` +
      ` (decisive positions ${decisiveAgree}/${decisive})`,
  );
  expect(maxErr).toBeLessThan(bound);
  expect(decisiveAgree).toBe(decisive);
  expect(decisive / SEQ_LEN).toBeGreaterThanOrEqual(0.6);
  expect(agree / SEQ_LEN).toBeGreaterThanOrEqual(mix === 'f32' ? 0.99 : 0.9);
}

describe('new architectures agree with llama.cpp on synthetic models', () => {
  for (const shape of Object.keys(SHAPES))
    for (const mix of Object.keys(BOUND) as MixName[]) test(`${shape} ${mix}`, () => compare(shape, mix));
});
