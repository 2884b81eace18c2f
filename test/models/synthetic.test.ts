// Synthetic models: structure (read back with inspectGGUF), the llama-quantize type rules,
// weight statistics (through a plain reference dequantizer), determinism and the catalogue.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CATALOGUE, REAL_MODELS, TEST_MODELS, catalogueEntry } from '../../models/catalogue.js';
import { dequantize, type GGMLTypeName } from '../../models/ggml-types.js';
import { MIXES, tensorTypes, writeSyntheticModel, type ModelShape } from '../../models/synthetic.js';
import { gpt2Vocab, llamaVocab } from '../../models/vocab.js';
import { inspectGGUF } from '../../src/gguf.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-synth-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const sha = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe('writeSyntheticModel', () => {
  const shape: ModelShape = {
    arch: 'qwen2',
    nLayers: 2,
    nEmbd: 256,
    nFF: 512,
    nHead: 4,
    nHeadKv: 2,
    nVocab: 700,
    ropeFreqBase: 1e6,
    rmsEps: 1e-6,
  };

  it('writes every tensor and hyper-parameter llama.cpp expects', async () => {
    const file = path.join(dir, 'qwen2.gguf');
    await writeSyntheticModel(file, { shape, mix: 'q4_k_m', seed: 3 });
    const info = inspectGGUF(file);
    const m = info.metadata;
    expect(m['general.architecture']).toBe('qwen2');
    expect(m['general.file_type']).toBe(15);
    expect(m['qwen2.block_count']).toBe(2);
    expect(m['qwen2.embedding_length']).toBe(256);
    expect(m['qwen2.feed_forward_length']).toBe(512);
    expect(m['qwen2.attention.head_count']).toBe(4);
    expect(m['qwen2.attention.head_count_kv']).toBe(2);
    expect(m['qwen2.rope.dimension_count']).toBe(64);
    expect(m['qwen2.rope.freq_base']).toBe(1e6);
    expect(m['qwen2.attention.layer_norm_rms_epsilon']).toBeCloseTo(1e-6, 12);
    expect(m['qwen2.vocab_size']).toBe(700);
    expect(m['tokenizer.ggml.model']).toBe('llama');
    expect((m['tokenizer.ggml.tokens'] as string[]).length).toBe(700);
    const byName = new Map(info.tensors.map((t) => [t.name, t]));
    const want: [string, number[]][] = [
      ['token_embd.weight', [256, 700]],
      ['output_norm.weight', [256]],
      ['output.weight', [256, 700]],
    ];
    for (let i = 0; i < 2; i++)
      want.push(
        [`blk.${i}.attn_norm.weight`, [256]],
        [`blk.${i}.attn_q.weight`, [256, 256]],
        [`blk.${i}.attn_k.weight`, [256, 128]],
        [`blk.${i}.attn_v.weight`, [256, 128]],
        [`blk.${i}.attn_q.bias`, [256]],
        [`blk.${i}.attn_k.bias`, [128]],
        [`blk.${i}.attn_v.bias`, [128]],
        [`blk.${i}.attn_output.weight`, [256, 256]],
        [`blk.${i}.ffn_norm.weight`, [256]],
        [`blk.${i}.ffn_gate.weight`, [256, 512]],
        [`blk.${i}.ffn_up.weight`, [256, 512]],
        [`blk.${i}.ffn_down.weight`, [512, 256]],
      );
    expect(info.tensors.length).toBe(want.length);
    for (const [name, dims] of want) expect(byName.get(name)?.shape, name).toEqual(dims);
    for (const t of info.tensors) {
      if (t.shape.length === 1) expect(t.type, t.name).toBe('F32');
      expect(t.offset % 32).toBe(0);
    }
    expect(byName.get('output.weight')?.type).toBe('Q6_K');
    expect(byName.get('token_embd.weight')?.type).toBe('Q4_K');
  });

  it('gives the same bytes for the same seed, and different weights for another', async () => {
    const a = path.join(dir, 'a.gguf');
    const b = path.join(dir, 'b.gguf');
    const c = path.join(dir, 'c.gguf');
    await writeSyntheticModel(a, { shape, mix: 'q4_0', seed: 11 });
    await writeSyntheticModel(b, { shape, mix: 'q4_0', seed: 11 });
    await writeSyntheticModel(c, { shape, mix: 'q4_0', seed: 12 });
    expect(sha(a)).toBe(sha(b));
    expect(sha(a)).not.toBe(sha(c));
    expect(fs.statSync(a).size).toBe(fs.statSync(c).size);
  });

  // Every weight type: dequantized through the reference dequantizer, the weights must have
  // zero mean and the intended spread (1/sqrt(fan_in) for projections), norms near 1.
  const types: [string, GGMLTypeName][] = [
    ['f32', 'F32'],
    ['f16', 'F16'],
    ['bf16', 'BF16'],
    ['q8_0', 'Q8_0'],
    ['q4_0', 'Q4_0'],
    ['q4_k_m', 'Q4_K'],
    ['q5_k_m', 'Q5_K'],
    ['q6_k', 'Q6_K'],
    ['q4_1', 'Q4_1'],
    ['q5_0', 'Q5_0'],
    ['q5_1', 'Q5_1'],
    ['q2_k', 'Q2_K'],
    ['q3_k_m', 'Q3_K'],
    ['iq4_nl', 'IQ4_NL'],
    ['iq4_xs', 'IQ4_XS'],
    ['mxfp4', 'MXFP4'],
  ];
  it.each(types)('%s weights have sane statistics', async (mix, type) => {
    const file = path.join(dir, `stats-${mix}.gguf`);
    const s: ModelShape = { arch: 'llama', nLayers: 1, nEmbd: 512, nFF: 1024, nHead: 8, nHeadKv: 2, nVocab: 400 };
    await writeSyntheticModel(file, { shape: s, mix: mix as never, seed: 5 });
    const info = inspectGGUF(file);
    const raw = fs.readFileSync(file);
    const stats = (name: string) => {
      const t = info.tensors.find((x) => x.name === name)!;
      const n = t.shape.reduce((a, b) => a * b, 1);
      const v = dequantize(t.type as GGMLTypeName, raw.subarray(t.offset, t.offset + t.bytes), n);
      let sum = 0;
      let sq = 0;
      let bad = 0;
      for (const x of v) {
        if (!Number.isFinite(x)) bad++;
        sum += x;
        sq += x * x;
      }
      expect(bad, `${name}: non-finite values`).toBe(0);
      const mean = sum / n;
      return { type: t.type, mean, std: Math.sqrt(sq / n - mean * mean) };
    };
    const q = stats('blk.0.attn_q.weight');
    expect(q.type).toBe(type);
    const target = 1 / Math.sqrt(512);
    expect(q.std).toBeGreaterThan(target * 0.8);
    expect(q.std).toBeLessThan(target * 1.25);
    expect(Math.abs(q.mean)).toBeLessThan(target * 0.05);
    const down = stats('blk.0.ffn_down.weight');
    expect(down.std).toBeGreaterThan((0.8 * 1) / Math.sqrt(1024));
    expect(down.std).toBeLessThan((1.25 * 1) / Math.sqrt(1024));
    const norm = stats('blk.0.attn_norm.weight');
    expect(norm.type).toBe('F32');
    expect(Math.abs(norm.mean - 1)).toBeLessThan(0.02);
  });
});

describe('tensorTypes (llama-quantize rules)', () => {
  const tiny = catalogueEntry('tinyllama-1.1b').shape;

  it('q4_k_m: Q6_K output, and Q6_K attn_v / ffn_down in the layers use_more_bits picks', () => {
    const plan = tensorTypes(tiny, 'q4_k_m');
    const type = (n: string) => plan.find((t) => t.name === n)!.type;
    expect(type('output.weight')).toBe('Q6_K');
    expect(type('token_embd.weight')).toBe('Q4_K');
    // use_more_bits(i, 22): i < 2, i >= 19, or (i - 2) % 3 == 2
    const six = [0, 1, 4, 7, 10, 13, 16, 19, 20, 21];
    for (let i = 0; i < 22; i++) {
      const want = six.includes(i) ? 'Q6_K' : 'Q4_K';
      expect(type(`blk.${i}.attn_v.weight`), `layer ${i}`).toBe(want);
      expect(type(`blk.${i}.ffn_down.weight`), `layer ${i}`).toBe(want);
      expect(type(`blk.${i}.attn_q.weight`)).toBe('Q4_K');
      expect(type(`blk.${i}.ffn_norm.weight`)).toBe('F32');
    }
  });

  it('tied embeddings are typed as the output; q8_0 keeps Q8_0; pure keeps the base type', () => {
    const llama32 = catalogueEntry('llama-3.2-1b').shape;
    expect(tensorTypes(llama32, 'q4_0').find((t) => t.name === 'token_embd.weight')!.type).toBe('Q6_K');
    expect(tensorTypes(llama32, 'q4_0').some((t) => t.name === 'output.weight')).toBe(false);
    expect(tensorTypes(tiny, 'q4_0').find((t) => t.name === 'output.weight')!.type).toBe('Q6_K');
    expect(tensorTypes(tiny, 'q4_0').find((t) => t.name === 'token_embd.weight')!.type).toBe('Q4_0');
    expect(tensorTypes(tiny, 'q8_0').find((t) => t.name === 'output.weight')!.type).toBe('Q8_0');
    expect(tensorTypes(tiny, 'f16').find((t) => t.name === 'output.weight')!.type).toBe('F16');
    const pure = tensorTypes(tiny, 'q4_k_m', { pure: true });
    expect(new Set(pure.filter((t) => t.shape.length === 2).map((t) => t.type))).toEqual(new Set(['Q4_K']));
  });

  it('rows that a 256-block type cannot take fall back (896 = Qwen2.5-0.5B)', () => {
    const qwen = catalogueEntry('qwen2.5-0.5b').shape;
    // the default is llama.cpp's policy: what a Q4_K_M file of Qwen2.5-0.5B holds
    const plan = tensorTypes(qwen, 'q4_k_m');
    const type = (n: string) => plan.find((t) => t.name === n)!.type;
    expect(type('token_embd.weight')).toBe('Q8_0'); // tied output with 896-long rows
    expect(type('blk.5.attn_q.weight')).toBe('Q5_0');
    expect(type('blk.0.attn_v.weight')).toBe('Q8_0'); // Q6_K falls back to Q8_0
    // rows of 4864 = 19 * 256 take K-quants; use_more_bits(i, 24) picks layer 5 but not 4
    expect(type('blk.4.ffn_down.weight')).toBe('Q4_K');
    expect(type('blk.5.ffn_down.weight')).toBe('Q6_K');
    const sup = tensorTypes(qwen, 'q4_k_m', { fallback: 'supported' });
    expect(sup.find((t) => t.name === 'blk.5.attn_q.weight')!.type).toBe('Q4_0');
    const q5 = tensorTypes(qwen, 'q5_k_m');
    expect(q5.find((t) => t.name === 'blk.5.attn_q.weight')!.type).toBe('Q5_1');
    // 256-block types of the low-bit mixes fall back to IQ4_NL
    for (const mix of ['q2_k', 'q3_k_m', 'iq4_xs'] as const)
      expect(tensorTypes(qwen, mix).find((t) => t.name === 'blk.3.ffn_gate.weight')!.type, mix).toBe('IQ4_NL');
  });

  it('the low-bit and legacy mixes follow llama-quantize (tinyllama: 22 layers, GQA 8)', () => {
    const type = (mix: Parameters<typeof tensorTypes>[1], n: string) => tensorTypes(tiny, mix).find((t) => t.name === n)!.type;
    for (const [mix, base] of [['q4_1', 'Q4_1'], ['q5_0', 'Q5_0'], ['q5_1', 'Q5_1']] as const) {
      expect(type(mix, 'blk.3.attn_v.weight')).toBe(base);
      expect(type(mix, 'blk.0.ffn_down.weight')).toBe(base);
      expect(type(mix, 'output.weight')).toBe('Q6_K');
    }
    expect(type('q2_k', 'blk.3.attn_q.weight')).toBe('Q2_K');
    expect(type('q2_k', 'blk.3.attn_v.weight')).toBe('Q4_K'); // GQA 8 >= 4
    expect(type('q2_k', 'blk.3.ffn_down.weight')).toBe('Q3_K');
    expect(type('q2_k', 'blk.3.attn_output.weight')).toBe('Q3_K');
    expect(type('q3_k_m', 'blk.1.attn_v.weight')).toBe('Q5_K');
    expect(type('q3_k_m', 'blk.2.attn_v.weight')).toBe('Q4_K');
    expect(type('q3_k_m', 'blk.0.ffn_down.weight')).toBe('Q5_K'); // layer < 22 / 16
    expect(type('q3_k_m', 'blk.1.ffn_down.weight')).toBe('Q4_K');
    expect(type('q3_k_m', 'blk.1.attn_output.weight')).toBe('Q4_K');
    expect(type('q3_k_m', 'blk.1.ffn_up.weight')).toBe('Q3_K');
    for (const mix of ['iq4_nl', 'iq4_xs'] as const) {
      expect(type(mix, 'blk.9.attn_v.weight')).toBe('Q5_K');
      expect(type(mix, 'blk.1.ffn_down.weight')).toBe('Q5_K'); // layer < 22 / 8
      expect(type(mix, 'blk.3.ffn_down.weight')).toBe(mix.toUpperCase());
    }
    expect(type('mxfp4', 'output.weight')).toBe('Q8_0');
    expect(type('mxfp4', 'blk.3.ffn_down.weight')).toBe('MXFP4');
  });

  it('rejects bad shapes and mixes with a clear message', () => {
    expect(() => tensorTypes({ ...tiny, nHeadKv: 5 }, 'f16')).toThrow(/nHeadKv/);
    expect(() => tensorTypes({ ...tiny, nEmbd: 2050 }, 'f16')).toThrow(/headDim|nEmbd/);
    expect(() => tensorTypes(tiny, 'q3_k' as never)).toThrow(/mix/);
    expect(() => tensorTypes(tiny, 'q4_k_m', { fallback: 'nearest' as never })).toThrow(/fallback/);
    expect(() => tensorTypes({ ...tiny, arch: 'gpt2' as never }, 'f16')).toThrow(/arch/);
  });
});

describe('vocabularies', () => {
  it('llama: specials, 256 byte tokens, unique prefix-closed pieces, exact size', () => {
    for (const n of [400, 32000]) {
      const v = llamaVocab(n);
      expect(v.tokens.length).toBe(n);
      expect(new Set(v.tokens).size).toBe(n);
      expect(v.tokens.slice(0, 3)).toEqual(['<unk>', '<s>', '</s>']);
      expect(v.tokens[3 + 0x0a]).toBe('<0x0A>');
      expect(v.types.filter((t) => t === 6).length).toBe(256);
      const set = new Set(v.tokens);
      for (const p of v.tokens.slice(259)) {
        const chars = [...p];
        if (chars.length > 1) expect(set.has(chars.slice(0, -1).join('')), p).toBe(true);
      }
    }
  });

  it('gpt2: merges build every multi-character piece from earlier ones', () => {
    const v = gpt2Vocab(3000);
    expect(v.tokens.length).toBe(3000);
    expect(new Set(v.tokens).size).toBe(3000);
    const index = new Map(v.tokens.map((t, i) => [t, i]));
    for (const m of v.merges!) {
      const [l, r] = m.split(' ');
      const merged = index.get(l! + r!);
      expect(merged, m).toBeDefined();
      expect(index.get(l!)!).toBeLessThan(merged!);
      expect(index.get(r!)!).toBeLessThan(merged!);
    }
  });
});

describe('catalogue', () => {
  it('holds the published shapes of the real models', () => {
    expect(REAL_MODELS).toEqual(['tinyllama-1.1b', 'llama-3.2-1b', 'qwen2.5-0.5b', 'qwen3-0.6b', 'qwen3-1.7b', 'gemma-2-2b', 'gemma-3-1b', 'phi-3.5-mini', 'gpt-oss-20b', 'qwen3-moe-mini', 'smollm-135m', 'smollm2-360m', 'llama-110m']);
    const s = (n: string) => CATALOGUE[n]!.shape;
    expect(s('tinyllama-1.1b')).toMatchObject({ nLayers: 22, nEmbd: 2048, nFF: 5632, nHead: 32, nHeadKv: 4, nVocab: 32000 });
    expect(s('llama-3.2-1b')).toMatchObject({ nLayers: 16, nEmbd: 2048, nFF: 8192, nHead: 32, nHeadKv: 8, nVocab: 128256, ropeFreqBase: 500000, tiedEmbeddings: true });
    expect(s('qwen2.5-0.5b')).toMatchObject({ arch: 'qwen2', nLayers: 24, nEmbd: 896, nFF: 4864, nHead: 14, nHeadKv: 2, nVocab: 151936, ropeFreqBase: 1e6, tiedEmbeddings: true });
    expect(s('qwen3-0.6b')).toMatchObject({ arch: 'qwen3', nLayers: 28, nEmbd: 1024, nFF: 3072, nHead: 16, nHeadKv: 8, headDim: 128, nVocab: 151936, tiedEmbeddings: true });
    expect(s('qwen3-1.7b')).toMatchObject({ arch: 'qwen3', nLayers: 28, nEmbd: 2048, nFF: 6144, nHead: 16, nHeadKv: 8, headDim: 128, nVocab: 151936, tiedEmbeddings: true });
    expect(s('gemma-2-2b')).toMatchObject({ arch: 'gemma2', nLayers: 26, nEmbd: 2304, nFF: 9216, nHead: 8, nHeadKv: 4, headDim: 256, nVocab: 256000, slidingWindow: 4096 });
    expect(s('gemma-3-1b')).toMatchObject({ arch: 'gemma3', nLayers: 26, nEmbd: 1152, nFF: 6912, nHead: 4, nHeadKv: 1, headDim: 256, nVocab: 262144, slidingWindow: 512 });
    expect(s('phi-3.5-mini')).toMatchObject({ arch: 'phi3', nLayers: 32, nEmbd: 3072, nFF: 8192, nHead: 32, nHeadKv: 32, nVocab: 32064, originalContextLength: 4096 });
    expect(s('gpt-oss-20b')).toMatchObject({ arch: 'gpt-oss', nLayers: 24, nEmbd: 2880, nHead: 64, nHeadKv: 8, headDim: 64, nVocab: 201088, nExpert: 32, nExpertUsed: 4, nFFExp: 2880, slidingWindow: 128, yarnFactor: 32, originalContextLength: 4096, ropeFreqBase: 150000 });
    // llama.cpp's gpt-oss files: MXFP4 experts, the other matrices Q8_0, biases and sinks F32
    const oss = tensorTypes(s('gpt-oss-20b'), 'mxfp4');
    expect(oss.find((t) => t.name === 'blk.0.ffn_up_exps.weight')!.type).toBe('MXFP4');
    expect(oss.find((t) => t.name === 'blk.0.attn_q.weight')!.type).toBe('Q8_0');
    expect(oss.find((t) => t.name === 'blk.0.ffn_down_exps.bias')).toMatchObject({ type: 'F32', shape: [2880, 32] });
    expect(oss.find((t) => t.name === 'blk.0.attn_sinks.weight')).toMatchObject({ type: 'F32', shape: [64] });
    expect(s('qwen3-moe-mini')).toMatchObject({ arch: 'qwen3moe', nEmbd: 2048, nHead: 32, nHeadKv: 4, headDim: 128, nExpert: 32, nExpertUsed: 8, nFFExp: 768 });
    expect(s('smollm-135m')).toMatchObject({ nLayers: 30, nEmbd: 576, nFF: 1536, nHead: 9, nHeadKv: 3, nVocab: 49152, tiedEmbeddings: true });
    expect(s('smollm2-360m')).toMatchObject({ nLayers: 32, nEmbd: 960, nFF: 2560, nHead: 15, nHeadKv: 5, nVocab: 49152, ropeFreqBase: 1e5, tiedEmbeddings: true });
    // its Q4_K_M as llama.cpp writes it: 960-long rows fall back to Q5_0, the 2560-long
    // rows of ffn_down (10 x 256) stay K-quants
    const plan = tensorTypes(s('smollm2-360m'), 'q4_k_m');
    expect(plan.find((t) => t.name === 'blk.3.ffn_gate.weight')!.type).toBe('Q5_0');
    expect(plan.find((t) => t.name === 'blk.5.ffn_down.weight')!.type).toBe('Q4_K'); // use_more_bits(5, 32) is false
    expect(plan.find((t) => t.name === 'token_embd.weight')!.type).toBe('Q8_0');
    expect(s('llama-110m')).toMatchObject({ nLayers: 12, nEmbd: 768, nFF: 2048, nHead: 12, nHeadKv: 12, nVocab: 32000 });
    expect(() => catalogueEntry('nope')).toThrow(/tinyllama-1.1b/);
  });

  it('every shape is valid for every mix', () => {
    for (const name of [...REAL_MODELS, ...TEST_MODELS])
      for (const mix of MIXES) expect(tensorTypes(CATALOGUE[name]!.shape, mix).length).toBeGreaterThan(0);
    // the test shapes cover head dims 64 and 128 and GQA ratios 1, 3, 4, 8
    const tests = TEST_MODELS.map((n) => CATALOGUE[n]!.shape);
    const ratios = new Set(tests.map((s) => s.nHead / s.nHeadKv));
    for (const r of [1, 3, 4, 8]) expect(ratios.has(r), `GQA ${r}`).toBe(true);
    const hd = new Set(tests.map((s) => s.nEmbd / s.nHead));
    expect(hd.has(64) && hd.has(128)).toBe(true);
  });
});
