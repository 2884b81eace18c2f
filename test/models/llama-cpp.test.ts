// The outside oracle: llama.cpp (node-llama-cpp 3.21.1) must load every synthetic weight type
// and mix, for both architectures, tokenize with the written vocabulary, and produce a
// finite, non-degenerate next-token distribution and generated tokens.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogueEntry } from '../../models/catalogue.js';
import { MIXES, writeSyntheticModel, type MixName } from '../../models/synthetic.js';
import { gpt2Vocab, llamaVocab } from '../../models/vocab.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-lcpp-'));
let llama: Llama;
beforeAll(async () => {
  llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.error });
});
afterAll(async () => {
  await llama?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function write(name: string, mix: MixName): Promise<string> {
  const file = path.join(dir, `${name}-${mix}.gguf`);
  await writeSyntheticModel(file, { shape: catalogueEntry(name).shape, mix, seed: 42 });
  return file;
}

/** Loads the model, evaluates a prompt, checks the distribution, generates a few tokens. */
async function checkRuns(name: string, mix: MixName, prompt: string): Promise<void> {
  const nVocab = catalogueEntry(name).shape.nVocab;
  const file = await write(name, mix);
  const model = await llama.loadModel({ modelPath: file });
  try {
    const ctx = await model.createContext({ contextSize: 128, flashAttention: false, threads: 1 });
    try {
      const tokens = model.tokenize(prompt);
      expect(tokens.length).toBeGreaterThan(2);
      const seq = ctx.getSequence();
      const generated: number[] = [];
      let probs: Map<number, number> | undefined;
      for await (const item of seq.evaluateWithMetadata(tokens, { probabilities: true }, { temperature: 0 })) {
        probs ??= item.probabilities;
        generated.push(item.token);
        if (generated.length >= 4) break;
      }
      expect(probs).toBeDefined();
      const p = [...probs!.values()];
      expect(p.length).toBe(nVocab); // a probability for every token
      let sum = 0;
      let max = 0;
      let min = 1;
      let entropy = 0;
      let bad = 0;
      for (const x of p) {
        if (!Number.isFinite(x)) bad++;
        sum += x;
        if (x > max) max = x;
        if (x < min) min = x;
        if (x > 0) entropy -= x * Math.log(x);
      }
      expect(bad).toBe(0);
      expect(sum).toBeCloseTo(1, 3);
      // not flat (all logits equal) and not collapsed onto one token
      expect(max / Math.max(min, 1e-30)).toBeGreaterThan(10);
      expect(entropy).toBeLessThan(Math.log(p.length) - 0.05);
      expect(max).toBeLessThan(0.99);
      expect(generated.length).toBe(4);
      // greedy decoding picks the most probable token
      expect(probs!.get(generated[0]!)).toBe(max);
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

describe('llama.cpp runs synthetic llama models (SentencePiece vocab)', () => {
  it.each(MIXES)('tiny-mha %s', async (mix) => {
    await checkRuns('tiny-mha', mix, 'Once upon a time there was a little girl');
  });
});

describe('llama.cpp runs synthetic qwen2 models (BPE vocab, QKV biases, tied)', () => {
  it.each(MIXES)('tiny-qwen2 %s', async (mix) => {
    await checkRuns('tiny-qwen2', mix, 'Once upon a time there was a little girl');
  });
});

describe('llama.cpp runs the other test shapes', () => {
  it.each([
    ['tiny-gqa4-hd128', 'q4_k_m'],
    ['tiny-gqa3', 'q4_k_m'], // rows of 384: K-quant fallbacks
    ['tiny-gqa8-tied', 'q5_k_m'],
    ['tiny-qwen2-576', 'q6_k'],
    ['tiny-deep', 'q4_0'], // 22 layers: activations stay finite and varied
  ] as const)('%s %s', async (name, mix) => {
    await checkRuns(name, mix, 'The big dog ran to the park and saw a ball');
  });
});

describe('llama.cpp tokenizes with the written vocabularies', () => {
  let spm: LlamaModel;
  let bpe: LlamaModel;
  beforeAll(async () => {
    spm = await llama.loadModel({ modelPath: await write('tiny-mha', 'q8_0') });
    bpe = await llama.loadModel({ modelPath: await write('tiny-qwen2', 'q8_0') });
  });
  afterAll(async () => {
    await spm?.dispose();
    await bpe?.dispose();
  });

  it('SentencePiece: whole-word pieces, byte fallback, round trips', () => {
    const v = llamaVocab(catalogueEntry('tiny-mha').shape.nVocab);
    const id = (piece: string) => v.tokens.indexOf(piece);
    // (the 512-token vocabulary holds the most common words only)
    expect(spm.tokenize('that is not this')).toEqual([id('▁that'), id('▁is'), id('▁not'), id('▁this')]);
    expect(spm.tokens.bos).toBe(1);
    expect(spm.tokens.eos).toBe(2);
    // characters outside the vocabulary go through the <0xNN> byte tokens
    const t = spm.tokenize('é');
    expect(t).toEqual([id('▁'), id('<0xC3>'), id('<0xA9>')]);
    for (const s of ['Once upon a time, Lily saw 3 big dogs!', 'héllo wörld 🙂\nnew line'])
      expect(spm.detokenize(spm.tokenize(s))).toBe(s);
  });

  it('BPE: merged words with Ġ for spaces, special tokens, round trips', () => {
    const v = gpt2Vocab(catalogueEntry('tiny-qwen2').shape.nVocab);
    const id = (piece: string) => v.tokens.indexOf(piece);
    expect(bpe.tokenize('Hello world')).toEqual([id('Hello'), id('Ġworld')]);
    expect(bpe.tokens.eos).toBe(id('<|endoftext|>'));
    expect(bpe.tokenize('<|im_start|>', true)).toEqual([id('<|im_start|>')]);
    for (const s of ['Once upon a time, Lily saw 3 big dogs!', 'héllo wörld 🙂\nnew line'])
      expect(bpe.detokenize(bpe.tokenize(s))).toBe(s);
  });
});
