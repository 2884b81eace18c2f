/**
 * The model catalogue: shapes of popular small models (checked against their published
 * config.json files) and tiny shapes for parity tests. Pass a name to `syntheticModel`
 * (models/cache.ts) to get a GGUF file of that shape with random weights.
 */
import { SparrowError } from '../src/errors.js';
import type { ModelShape } from './synthetic.js';

export interface CatalogueEntry {
  name: string;
  /** What it is, in one line. */
  description: string;
  /** Where the numbers come from (the real model's Hugging Face repo), if any. */
  source?: string;
  shape: ModelShape;
  /** True for the tiny shapes meant for fast tests. */
  test: boolean;
}

const real = (name: string, description: string, source: string, shape: ModelShape): CatalogueEntry => ({
  name,
  description,
  source,
  shape,
  test: false,
});
const tiny = (name: string, description: string, shape: ModelShape): CatalogueEntry => ({
  name,
  description,
  shape,
  test: true,
});

const entries: CatalogueEntry[] = [
  // ---- real shapes ---------------------------------------------------------------------
  real('tinyllama-1.1b', 'TinyLlama 1.1B (llama, 22 layers, GQA 8)', 'TinyLlama/TinyLlama-1.1B-Chat-v1.0', {
    arch: 'llama',
    nLayers: 22,
    nEmbd: 2048,
    nFF: 5632,
    nHead: 32,
    nHeadKv: 4,
    nVocab: 32000,
    contextLength: 2048,
    ropeFreqBase: 10000,
    rmsEps: 1e-5,
  }),
  // The real file also carries llama3 rope scaling (rope_freqs.weight); the synthetic one
  // uses plain RoPE, which costs the same.
  real('llama-3.2-1b', 'Llama 3.2 1B (llama, 16 layers, GQA 4, tied embeddings)', 'meta-llama/Llama-3.2-1B', {
    arch: 'llama',
    nLayers: 16,
    nEmbd: 2048,
    nFF: 8192,
    nHead: 32,
    nHeadKv: 8,
    nVocab: 128256,
    contextLength: 131072,
    ropeFreqBase: 500000,
    rmsEps: 1e-5,
    tiedEmbeddings: true,
    tokenizer: 'gpt2',
  }),
  real('qwen2.5-0.5b', 'Qwen2.5 0.5B (qwen2, 24 layers, GQA 7, QKV biases, tied)', 'Qwen/Qwen2.5-0.5B', {
    arch: 'qwen2',
    nLayers: 24,
    nEmbd: 896,
    nFF: 4864,
    nHead: 14,
    nHeadKv: 2,
    nVocab: 151936,
    contextLength: 32768,
    ropeFreqBase: 1000000,
    rmsEps: 1e-6,
    tiedEmbeddings: true,
    tokenizer: 'gpt2',
  }),
  real('qwen3-0.6b', 'Qwen3 0.6B (qwen3, 28 layers, GQA 2, head dim 128, Q/K norms, tied)', 'Qwen/Qwen3-0.6B', {
    arch: 'qwen3',
    nLayers: 28,
    nEmbd: 1024,
    nFF: 3072,
    nHead: 16,
    nHeadKv: 8,
    headDim: 128,
    nVocab: 151936,
    contextLength: 40960,
    ropeFreqBase: 1000000,
    rmsEps: 1e-6,
    tiedEmbeddings: true,
    tokenizer: 'gpt2',
  }),
  real('qwen3-1.7b', 'Qwen3 1.7B (qwen3, 28 layers, GQA 2, head dim 128, Q/K norms, tied)', 'Qwen/Qwen3-1.7B', {
    arch: 'qwen3',
    nLayers: 28,
    nEmbd: 2048,
    nFF: 6144,
    nHead: 16,
    nHeadKv: 8,
    headDim: 128,
    nVocab: 151936,
    contextLength: 40960,
    ropeFreqBase: 1000000,
    rmsEps: 1e-6,
    tiedEmbeddings: true,
    tokenizer: 'gpt2',
  }),
  real('gemma-2-2b', 'Gemma 2 2B (gemma2, 26 layers, GQA 2, head dim 256, soft-capping, sliding window 4096 on even layers, tied)', 'google/gemma-2-2b', {
    arch: 'gemma2',
    nLayers: 26,
    nEmbd: 2304,
    nFF: 9216,
    nHead: 8,
    nHeadKv: 4,
    headDim: 256,
    nVocab: 256000,
    contextLength: 8192,
    rmsEps: 1e-6,
    tiedEmbeddings: true,
    slidingWindow: 4096,
    attnSoftcap: 50,
    finalSoftcap: 30,
  }),
  real('gemma-3-1b', 'Gemma 3 1B (gemma3, 26 layers, MQA, head dim 256, Q/K norms, 5:1 local/global, window 512, tied)', 'google/gemma-3-1b-it', {
    arch: 'gemma3',
    nLayers: 26,
    nEmbd: 1152,
    nFF: 6912,
    nHead: 4,
    nHeadKv: 1,
    headDim: 256,
    nVocab: 262144,
    contextLength: 32768,
    ropeFreqBase: 1000000,
    rmsEps: 1e-6,
    tiedEmbeddings: true,
    slidingWindow: 512,
  }),
  real('phi-3.5-mini', 'Phi-3.5 mini (phi3, 32 layers, MHA, head dim 96, fused QKV and gate/up, LongRoPE)', 'microsoft/Phi-3.5-mini-instruct', {
    arch: 'phi3',
    nLayers: 32,
    nEmbd: 3072,
    nFF: 8192,
    nHead: 32,
    nHeadKv: 32,
    nVocab: 32064,
    contextLength: 131072,
    ropeFreqBase: 10000,
    rmsEps: 1e-5,
    ropeFactors: true,
    originalContextLength: 4096,
    ropeAttnFactor: 1.1902380714238083,
  }),
  real(
    'qwen3-moe-mini',
    'Qwen3-30B-A3B\'s layer (qwen3moe: dim 2048, head dim 128, GQA 8, experts of width 768, 8 routed per token) with 12 of its 48 layers and 32 of its 128 experts: a Qwen3-MoE of ~2B weights that fits in memory',
    'Qwen/Qwen3-30B-A3B',
    {
      arch: 'qwen3moe',
      nLayers: 12,
      nEmbd: 2048,
      nFF: 6144,
      nHead: 32,
      nHeadKv: 4,
      headDim: 128,
      nVocab: 151936,
      contextLength: 40960,
      ropeFreqBase: 1000000,
      rmsEps: 1e-6,
      tokenizer: 'gpt2',
      nExpert: 32,
      nExpertUsed: 8,
      nFFExp: 768,
    },
  ),
  real('smollm-135m', 'SmolLM 135M (llama, 30 layers, GQA 3, tied)', 'HuggingFaceTB/SmolLM-135M', {
    arch: 'llama',
    nLayers: 30,
    nEmbd: 576,
    nFF: 1536,
    nHead: 9,
    nHeadKv: 3,
    nVocab: 49152,
    contextLength: 2048,
    ropeFreqBase: 10000,
    rmsEps: 1e-5,
    tiedEmbeddings: true,
  }),
  real('llama-110m', 'A 110M llama (llama2.c stories110M: 12 layers, MHA)', 'karpathy/tinyllamas (stories110M)', {
    arch: 'llama',
    nLayers: 12,
    nEmbd: 768,
    nFF: 2048,
    nHead: 12,
    nHeadKv: 12,
    nVocab: 32000,
    contextLength: 1024,
    ropeFreqBase: 10000,
    rmsEps: 1e-5,
  }),

  // ---- tiny test shapes ----------------------------------------------------------------
  // Rows that are multiples of 256 take every weight type; 384 and 576 are not, so
  // K-quant mixes fall back to 32-block types there (as llama.cpp does).
  tiny('tiny-mha', 'llama, 2 layers, dim 256, head dim 64, MHA (GQA 1)', {
    arch: 'llama',
    nLayers: 2,
    nEmbd: 256,
    nFF: 768,
    nHead: 4,
    nHeadKv: 4,
    nVocab: 512,
    contextLength: 512,
  }),
  tiny('tiny-gqa4-hd128', 'llama, 3 layers, dim 512, head dim 128, GQA 4', {
    arch: 'llama',
    nLayers: 3,
    nEmbd: 512,
    nFF: 1280,
    nHead: 4,
    nHeadKv: 1,
    nVocab: 1000,
    contextLength: 512,
  }),
  tiny('tiny-gqa3', 'llama, 2 layers, dim 384 (not a multiple of 256), GQA 3, odd vocab', {
    arch: 'llama',
    nLayers: 2,
    nEmbd: 384,
    nFF: 1024,
    nHead: 6,
    nHeadKv: 2,
    nVocab: 777,
    contextLength: 512,
  }),
  tiny('tiny-gqa8-tied', 'llama, 2 layers, dim 512, GQA 8, tied embeddings, rope base 500000', {
    arch: 'llama',
    nLayers: 2,
    nEmbd: 512,
    nFF: 1536,
    nHead: 8,
    nHeadKv: 1,
    nVocab: 2000,
    contextLength: 512,
    ropeFreqBase: 500000,
    tiedEmbeddings: true,
  }),
  tiny('tiny-qwen2', 'qwen2, 3 layers, dim 256, GQA 2, QKV biases, tied, BPE (gpt2) tokenizer', {
    arch: 'qwen2',
    nLayers: 3,
    nEmbd: 256,
    nFF: 768,
    nHead: 4,
    nHeadKv: 2,
    nVocab: 1500,
    contextLength: 512,
    ropeFreqBase: 1000000,
    rmsEps: 1e-6,
    tiedEmbeddings: true,
    tokenizer: 'gpt2',
  }),
  tiny('tiny-qwen2-576', 'qwen2, 2 layers, dim 576 (SmolLM-like, not a multiple of 256), GQA 3, untied', {
    arch: 'qwen2',
    nLayers: 2,
    nEmbd: 576,
    nFF: 1536,
    nHead: 9,
    nHeadKv: 3,
    nVocab: 1200,
    contextLength: 512,
    ropeFreqBase: 1000000,
    rmsEps: 1e-6,
  }),
  tiny('tiny-deep', 'llama, 22 layers (TinyLlama depth), dim 256, GQA 4: numerical stability', {
    arch: 'llama',
    nLayers: 22,
    nEmbd: 256,
    nFF: 512,
    nHead: 4,
    nHeadKv: 1,
    nVocab: 600,
    contextLength: 512,
  }),
];

/** Every catalogue entry by name. */
export const CATALOGUE: Readonly<Record<string, CatalogueEntry>> = Object.freeze(
  Object.fromEntries(entries.map((e) => [e.name, e])),
);

/** Names of the real-model shapes. */
export const REAL_MODELS: readonly string[] = entries.filter((e) => !e.test).map((e) => e.name);
/** Names of the tiny test shapes. */
export const TEST_MODELS: readonly string[] = entries.filter((e) => e.test).map((e) => e.name);

/** The entry called `name`; throws a SparrowError listing the known names otherwise. */
export function catalogueEntry(name: string): CatalogueEntry {
  const e = typeof name === 'string' ? CATALOGUE[name] : undefined;
  if (!e)
    throw new SparrowError(
      `unknown catalogue model '${String(name)}'; known: ${Object.keys(CATALOGUE).join(', ')}`,
      'ERR_INVALID_ARG',
    );
  return e;
}
