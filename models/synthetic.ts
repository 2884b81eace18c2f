/**
 * Synthetic llama-family GGUF models: real shapes, deterministic pseudo-random weights.
 *
 * `writeSyntheticModel(path, { shape, mix, seed })` writes a file llama.cpp loads and runs:
 * every tensor the `llama` / `qwen2` architectures expect, every hyper-parameter key, a
 * tokenizer, and weights in the types the mix names (chosen per tensor as llama.cpp's
 * llama-quantize would: see `tensorTypes`).
 *
 * Weight scales keep a deep random model numerically sane: projections have a standard
 * deviation of 1/sqrt(fan_in) so each output is about unit size on the normalised inputs,
 * norm weights are near 1, and the embedding / output matrices are scaled so the logits
 * have a standard deviation of about 2 (varied, neither flat nor one-hot).
 */
import { SparrowError } from '../src/errors.js';
import { GGML_TYPES, gguf, writeGGUF, type GGMLTypeName, type GGUFValue, type TensorSpec } from './gguf-writer.js';
import { randomTensorChunks } from './random-tensors.js';
import { CHATML_TEMPLATE, LLAMA_CHAT_TEMPLATE, gpt2Vocab, llamaVocab, vocabMetadata } from './vocab.js';

export type Architecture = 'llama' | 'qwen2' | 'qwen3' | 'gemma2' | 'gemma3' | 'phi3' | 'qwen3moe' | 'gpt-oss';
/** The architectures the writer knows. */
export const ARCHITECTURES: readonly Architecture[] = ['llama', 'qwen2', 'qwen3', 'gemma2', 'gemma3', 'phi3', 'qwen3moe', 'gpt-oss'];

/** A model's hyper-parameters (the names follow the GGUF keys). */
export interface ModelShape {
  arch: Architecture;
  /** block_count */
  nLayers: number;
  /** embedding_length */
  nEmbd: number;
  /** feed_forward_length */
  nFF: number;
  /** attention.head_count */
  nHead: number;
  /** attention.head_count_kv */
  nHeadKv: number;
  /** vocab_size (and the tokenizer's size) */
  nVocab: number;
  /** Head dimension; default nEmbd / nHead. Written as attention.key_length / value_length. */
  headDim?: number;
  /** context_length; default 2048. */
  contextLength?: number;
  /** rope.freq_base; default 10000. */
  ropeFreqBase?: number;
  /** attention.layer_norm_rms_epsilon; default 1e-5. */
  rmsEps?: number;
  /** Output matrix shared with token_embd (no output.weight tensor). */
  tiedEmbeddings?: boolean;
  /** Tokenizer kind; default 'llama' (SentencePiece). */
  tokenizer?: 'llama' | 'gpt2';
  /** gemma2/gemma3/gpt-oss: attention.sliding_window of the local layers; default 4096 (gemma2), 512 (gemma3), 128 (gpt-oss). */
  slidingWindow?: number;
  /** gemma2: attn_logit_softcapping; default 50. */
  attnSoftcap?: number;
  /** gemma2: final_logit_softcapping, default 30; gemma3: written only when set. */
  finalSoftcap?: number;
  /** phi3: write LongRoPE factors (rope_factors_short / rope_factors_long.weight); default false. */
  ropeFactors?: boolean;
  /** rope.scaling.original_context_length (written when set; LongRoPE: long factors beyond it). */
  originalContextLength?: number;
  /** rope.scaling.attn_factor (written when set): multiplies RoPE's cos and sin. */
  ropeAttnFactor?: number;
  /** Mixture of experts (llama: Mixtral-style; qwen3moe: required): expert_count; default 0. */
  nExpert?: number;
  /** expert_used_count (experts per token). */
  nExpertUsed?: number;
  /** qwen3moe / gpt-oss: expert_feed_forward_length (llama's experts are nFF wide). */
  nFFExp?: number;
  /**
   * YaRN RoPE scaling: rope.scaling.type 'yarn' with this rope.scaling.factor (written when
   * > 0; gpt-oss default 32, with rope.scaling.original_context_length 4096 unless set).
   */
  yarnFactor?: number;
}

/** The usual file mixes, as llama-quantize names them. */
export const MIXES = [
  'f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k_m', 'q5_k_m', 'q6_k',
  'q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k_m', 'iq4_nl', 'iq4_xs', 'mxfp4',
] as const;
export type MixName = (typeof MIXES)[number];

/** Per mix: the base type of 2-D weights and llama.cpp's general.file_type (llama_ftype). */
const MIX_INFO: Record<MixName, { base: GGMLTypeName; fileType: number; quantized: boolean }> = {
  f32: { base: 'F32', fileType: 0, quantized: false },
  f16: { base: 'F16', fileType: 1, quantized: false },
  bf16: { base: 'BF16', fileType: 32, quantized: false },
  q8_0: { base: 'Q8_0', fileType: 7, quantized: true },
  q4_0: { base: 'Q4_0', fileType: 2, quantized: true },
  q4_k_m: { base: 'Q4_K', fileType: 15, quantized: true },
  q5_k_m: { base: 'Q5_K', fileType: 17, quantized: true },
  q6_k: { base: 'Q6_K', fileType: 18, quantized: true },
  q4_1: { base: 'Q4_1', fileType: 3, quantized: true },
  q5_0: { base: 'Q5_0', fileType: 8, quantized: true },
  q5_1: { base: 'Q5_1', fileType: 9, quantized: true },
  q2_k: { base: 'Q2_K', fileType: 10, quantized: true },
  q3_k_m: { base: 'Q3_K', fileType: 12, quantized: true },
  iq4_nl: { base: 'IQ4_NL', fileType: 25, quantized: true },
  iq4_xs: { base: 'IQ4_XS', fileType: 30, quantized: true },
  // llama.cpp's MXFP4_MOE: MXFP4 for expert tensors, Q8_0 for the rest. A dense model has
  // no experts, so this mix puts MXFP4 where the experts' weights would be (every 2-D weight
  // but the output, which stays Q8_0 as llama.cpp has it): the type is what it tests.
  mxfp4: { base: 'MXFP4', fileType: 38, quantized: true },
};

export function isMixName(m: unknown): m is MixName {
  return typeof m === 'string' && (MIXES as readonly string[]).includes(m);
}

/**
 * Where a tensor's row length does not fit a 256-block type, llama.cpp falls back to a
 * 32-block type (Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0, Q2_K/Q3_K/IQ4_XS->IQ4_NL): 'llama.cpp',
 * the default, since that is what users' files contain. 'supported' keeps the fallbacks of
 * the first sparrow kernels (Q4_K->Q4_0, Q5_K->Q8_0, Q6_K->Q8_0, the others as llama.cpp).
 */
export type FallbackPolicy = 'supported' | 'llama.cpp';

const FALLBACK: Record<FallbackPolicy, Partial<Record<GGMLTypeName, GGMLTypeName>>> = {
  supported: { Q4_K: 'Q4_0', Q5_K: 'Q8_0', Q6_K: 'Q8_0', Q2_K: 'IQ4_NL', Q3_K: 'IQ4_NL', IQ4_XS: 'IQ4_NL' },
  'llama.cpp': { Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0', Q2_K: 'IQ4_NL', Q3_K: 'IQ4_NL', IQ4_XS: 'IQ4_NL' },
};

export type TensorRole =
  | 'token_embd'
  | 'output_norm'
  | 'output'
  | 'attn_norm'
  | 'attn_q'
  | 'attn_k'
  | 'attn_v'
  | 'attn_output'
  | 'attn_q_bias'
  | 'attn_k_bias'
  | 'attn_v_bias'
  | 'attn_q_norm'
  | 'attn_k_norm'
  | 'attn_post_norm'
  | 'ffn_post_norm'
  | 'attn_qkv'
  | 'ffn_gate_inp'
  | 'ffn_gate_exps'
  | 'ffn_up_exps'
  | 'ffn_down_exps'
  | 'attn_output_bias'
  | 'attn_sinks'
  | 'ffn_gate_inp_bias'
  | 'ffn_gate_exps_bias'
  | 'ffn_up_exps_bias'
  | 'ffn_down_exps_bias'
  | 'rope_factors_long'
  | 'rope_factors_short'
  | 'ffn_norm'
  | 'ffn_gate'
  | 'ffn_up'
  | 'ffn_down';

export interface PlannedTensor {
  name: string;
  role: TensorRole;
  /** Layer index for blk.N tensors, -1 otherwise. */
  layer: number;
  type: GGMLTypeName;
  shape: number[];
  /** Standard deviation and mean of the generated values. */
  std: number;
  mean: number;
}

export interface MixOptions {
  /** llama-quantize --pure: every 2-D weight in the base type (no Q6_K output etc.). */
  pure?: boolean;
  fallback?: FallbackPolicy;
}

/** Checks a shape and returns it with its defaults filled in. */
export function resolveShape(shape: ModelShape): Required<ModelShape> {
  const bad = (field: string, why: string): never => {
    throw new SparrowError(`model shape: ${field} ${why}`, 'ERR_INVALID_ARG');
  };
  if (!shape || typeof shape !== 'object') bad('', 'must be an object');
  if (!ARCHITECTURES.includes(shape.arch)) bad('arch', `must be one of ${ARCHITECTURES.join(', ')}, got ${String(shape.arch)}`);
  for (const f of ['nLayers', 'nEmbd', 'nFF', 'nHead', 'nHeadKv', 'nVocab'] as const)
    if (!Number.isSafeInteger(shape[f]) || shape[f] <= 0) bad(f, `must be a positive integer, got ${String(shape[f])}`);
  const headDim = shape.headDim ?? shape.nEmbd / shape.nHead;
  if (!Number.isSafeInteger(headDim) || headDim <= 0 || headDim % 2 !== 0)
    bad('headDim', `must be an even positive integer (nEmbd / nHead by default), got ${headDim}`);
  if (shape.nHead % shape.nHeadKv !== 0) bad('nHeadKv', `(${shape.nHeadKv}) must divide nHead (${shape.nHead})`);
  const r: Required<ModelShape> = {
    arch: shape.arch,
    nLayers: shape.nLayers,
    nEmbd: shape.nEmbd,
    nFF: shape.nFF,
    nHead: shape.nHead,
    nHeadKv: shape.nHeadKv,
    nVocab: shape.nVocab,
    headDim,
    contextLength: shape.contextLength ?? 2048,
    ropeFreqBase: shape.ropeFreqBase ?? 10000,
    rmsEps: shape.rmsEps ?? 1e-5,
    tiedEmbeddings: shape.tiedEmbeddings ?? false,
    tokenizer: shape.tokenizer ?? 'llama',
    slidingWindow: shape.slidingWindow ?? (shape.arch === 'gemma2' ? 4096 : shape.arch === 'gpt-oss' ? 128 : 512),
    attnSoftcap: shape.attnSoftcap ?? 50,
    finalSoftcap: shape.finalSoftcap ?? (shape.arch === 'gemma2' ? 30 : 0),
    ropeFactors: shape.ropeFactors ?? false,
    originalContextLength: shape.originalContextLength ?? (shape.arch === 'gpt-oss' && (shape.yarnFactor ?? 32) > 0 ? 4096 : 0),
    ropeAttnFactor: shape.ropeAttnFactor ?? 0,
    nExpert: shape.nExpert ?? 0,
    nExpertUsed: shape.nExpertUsed ?? 0,
    nFFExp: shape.nFFExp ?? (shape.arch === 'qwen3moe' || shape.arch === 'gpt-oss' ? shape.nFF : 0),
    yarnFactor: shape.yarnFactor ?? (shape.arch === 'gpt-oss' ? 32 : 0),
  };
  if ((r.arch === 'qwen3moe' || r.arch === 'gpt-oss') && !(r.nExpert > 0)) bad('nExpert', `must be positive for ${r.arch}`);
  if (r.nExpert > 0 && r.arch !== 'llama' && r.arch !== 'qwen3moe' && r.arch !== 'gpt-oss')
    bad('nExpert', 'experts are written for llama, qwen3moe and gpt-oss only');
  if (!(r.yarnFactor >= 0)) bad('yarnFactor', 'must not be negative');
  if (r.nExpert > 0 && !(Number.isSafeInteger(r.nExpertUsed) && r.nExpertUsed > 0 && r.nExpertUsed <= r.nExpert))
    bad('nExpertUsed', `must be an integer in 1..nExpert, got ${String(r.nExpertUsed)}`);
  if (r.nExpert > 0 && r.arch !== 'llama' && (r.nFFExp <= 0 || r.nFFExp % 32 !== 0)) bad('nFFExp', 'must be a positive multiple of 32');
  if (!Number.isSafeInteger(r.originalContextLength) || r.originalContextLength < 0) bad('originalContextLength', 'must be a positive integer');
  if (!(r.ropeAttnFactor >= 0)) bad('ropeAttnFactor', 'must be positive');
  // llama.cpp's gemma2 always ties the output matrix to the embedding.
  if (r.arch === 'gemma2') r.tiedEmbeddings = true;
  if (!Number.isSafeInteger(r.slidingWindow) || r.slidingWindow <= 0) bad('slidingWindow', 'must be a positive integer');
  if (!(r.attnSoftcap > 0)) bad('attnSoftcap', 'must be positive');
  if (!(r.finalSoftcap >= 0)) bad('finalSoftcap', 'must not be negative');
  if (!Number.isSafeInteger(r.contextLength) || r.contextLength <= 0) bad('contextLength', 'must be a positive integer');
  if (!(r.ropeFreqBase > 0)) bad('ropeFreqBase', 'must be positive');
  if (!(r.rmsEps > 0)) bad('rmsEps', 'must be positive');
  if (r.tokenizer !== 'llama' && r.tokenizer !== 'gpt2') bad('tokenizer', "must be 'llama' or 'gpt2'");
  if (r.nEmbd % 32 !== 0 || r.nFF % 32 !== 0 || (r.nHead * r.headDim) % 32 !== 0)
    bad('nEmbd/nFF/nHead*headDim', 'must be multiples of 32 (the quantized block size)');
  return r;
}

/**
 * Every tensor of a model, in file order, with the type the mix gives it. The type rules
 * follow llama.cpp's llama_tensor_get_type for these mixes:
 * - 1-D tensors (norms, biases) stay F32;
 * - output.weight (or token_embd when tied) becomes Q6_K in every quantized mix except
 *   q8_0 (Q8_0 when its rows are not a multiple of the base type's block);
 * - q4_k_m / q5_k_m: attn_v and ffn_down get Q6_K in the layers `use_more_bits` picks
 *   (the first and last eighth, and every third layer between);
 * - q2_k: attn_v Q4_K (GQA >= 4) or Q3_K, ffn_down and attn_output Q3_K;
 * - q3_k_m: attn_v Q5_K in layers 0-1 then Q4_K, ffn_down Q5_K in the first sixteenth of
 *   the layers then Q4_K, attn_output Q4_K;
 * - iq4_nl / iq4_xs: attn_v Q5_K when GQA >= 4, ffn_down Q5_K in the first eighth (no imatrix);
 * - mxfp4: see MIX_INFO (output Q8_0, everything else MXFP4);
 * - a row length that the chosen type's block does not divide falls back (see FallbackPolicy).
 */
export function tensorTypes(shapeIn: ModelShape, mix: MixName, options: MixOptions = {}): PlannedTensor[] {
  const s = resolveShape(shapeIn);
  if (!isMixName(mix)) throw new SparrowError(`mix must be one of ${MIXES.join(', ')}; got ${String(mix)}`, 'ERR_INVALID_ARG');
  const fallback = options.fallback ?? 'llama.cpp';
  if (!(fallback in FALLBACK)) throw new SparrowError(`fallback must be 'supported' or 'llama.cpp', got ${String(fallback)}`, 'ERR_INVALID_ARG');
  const { base, quantized } = MIX_INFO[mix];
  const pure = options.pure ?? false;
  const qDim = s.nHead * s.headDim;
  const kvDim = s.nHeadKv * s.headDim;
  const useMoreBits = (i: number, n: number): boolean =>
    i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;

  const gqa = s.nHead / s.nHeadKv;
  const pick = (role: TensorRole, layer: number, rowLen: number): GGMLTypeName => {
    let t = base;
    if (quantized && !pure) {
      const isOutput = role === 'output' || (role === 'token_embd' && s.tiedEmbeddings);
      if (isOutput) {
        if (mix === 'mxfp4' || rowLen % GGML_TYPES[base].blockSize !== 0) t = 'Q8_0';
        else if (base !== 'Q8_0') t = 'Q6_K';
      } else if ((mix === 'q4_k_m' || mix === 'q5_k_m') && (role === 'attn_v' || role === 'ffn_down' || role === 'ffn_down_exps')) {
        if (useMoreBits(layer, s.nLayers)) t = 'Q6_K';
      } else if (role === 'attn_qkv' && (mix === 'q4_k_m' || mix === 'q5_k_m')) {
        if (mix === 'q4_k_m') t = 'Q5_K';
        else if (mix === 'q5_k_m') t = 'Q6_K';
      } else if (mix === 'q2_k') {
        if (role === 'attn_v') t = gqa >= 4 ? 'Q4_K' : 'Q3_K';
        else if (role === 'ffn_down' || role === 'attn_output') t = 'Q3_K';
      } else if (mix === 'q3_k_m') {
        if (role === 'attn_v') t = layer < 2 ? 'Q5_K' : 'Q4_K';
        else if (role === 'ffn_down') t = layer < Math.trunc(s.nLayers / 16) ? 'Q5_K' : 'Q4_K';
        else if (role === 'attn_output') t = 'Q4_K';
      } else if (mix === 'iq4_nl' || mix === 'iq4_xs') {
        if (role === 'attn_v' && gqa >= 4) t = 'Q5_K';
        else if (role === 'ffn_down' && layer < Math.trunc(s.nLayers / 8)) t = 'Q5_K';
      }
    }
    if (role === 'ffn_gate_inp') return 'F32'; // llama-quantize leaves the router unquantized
    // gpt-oss files as llama.cpp converts them (MXFP4_MOE): the experts MXFP4, the other
    // matrices Q8_0.
    if (mix === 'mxfp4' && s.arch === 'gpt-oss' && !role.endsWith('_exps')) t = 'Q8_0';
    const block = GGML_TYPES[t].blockSize;
    if (rowLen % block !== 0) {
      const fb = FALLBACK[fallback][t];
      t = fb && rowLen % GGML_TYPES[fb].blockSize === 0 ? fb : 'F16';
    }
    return t;
  };

  const out: PlannedTensor[] = [];
  const weight = (name: string, role: TensorRole, layer: number, shape: number[], std: number): void => {
    out.push({ name, role, layer, type: pick(role, layer, shape[0]!), shape, std, mean: 0 });
  };
  const vector = (name: string, role: TensorRole, layer: number, n: number, mean: number, std: number): void => {
    out.push({ name, role, layer, type: 'F32', shape: [n], std, mean });
  };

  // Logit std ~2: logits = norm(x) . w_out with |norm(x)|^2 ~ nEmbd.
  const outStd = 2 / Math.sqrt(s.nEmbd);
  weight('token_embd.weight', 'token_embd', -1, [s.nEmbd, s.nVocab], outStd);
  if (s.arch === 'phi3' && s.ropeFactors) {
    // LongRoPE frequency divisors: near 1 for short contexts, larger for long ones.
    vector('rope_factors_long.weight', 'rope_factors_long', -1, s.headDim / 2, 5, 1);
    vector('rope_factors_short.weight', 'rope_factors_short', -1, s.headDim / 2, 1.2, 0.1);
  }
  for (let i = 0; i < s.nLayers; i++) {
    const p = `blk.${i}.`;
    vector(p + 'attn_norm.weight', 'attn_norm', i, s.nEmbd, 1, 0.05);
    if (s.arch === 'phi3') {
      // Phi-3: Q, K and V stacked in one matrix; gate and up stacked in ffn_up (below).
      weight(p + 'attn_qkv.weight', 'attn_qkv', i, [s.nEmbd, qDim + 2 * kvDim], 1 / Math.sqrt(s.nEmbd));
      weight(p + 'attn_output.weight', 'attn_output', i, [qDim, s.nEmbd], 1 / Math.sqrt(qDim));
      vector(p + 'ffn_norm.weight', 'ffn_norm', i, s.nEmbd, 1, 0.05);
      weight(p + 'ffn_up.weight', 'ffn_up', i, [s.nEmbd, 2 * s.nFF], 1 / Math.sqrt(s.nEmbd));
      weight(p + 'ffn_down.weight', 'ffn_down', i, [s.nFF, s.nEmbd], 1 / Math.sqrt(s.nFF));
      continue;
    }
    const qkvBias = s.arch === 'qwen2' || s.arch === 'gpt-oss';
    const oss = s.arch === 'gpt-oss';
    weight(p + 'attn_q.weight', 'attn_q', i, [s.nEmbd, qDim], 1 / Math.sqrt(s.nEmbd));
    if (qkvBias) vector(p + 'attn_q.bias', 'attn_q_bias', i, qDim, 0, 0.1);
    weight(p + 'attn_k.weight', 'attn_k', i, [s.nEmbd, kvDim], 1 / Math.sqrt(s.nEmbd));
    if (qkvBias) vector(p + 'attn_k.bias', 'attn_k_bias', i, kvDim, 0, 0.1);
    weight(p + 'attn_v.weight', 'attn_v', i, [s.nEmbd, kvDim], 1 / Math.sqrt(s.nEmbd));
    if (qkvBias) vector(p + 'attn_v.bias', 'attn_v_bias', i, kvDim, 0, 0.1);
    if (s.arch === 'qwen3' || s.arch === 'gemma3' || s.arch === 'qwen3moe') {
      // Per-head RMSNorm weights of Q and K (head_dim each), as llama.cpp's converter names them.
      vector(p + 'attn_k_norm.weight', 'attn_k_norm', i, s.headDim, 1, 0.1);
      vector(p + 'attn_q_norm.weight', 'attn_q_norm', i, s.headDim, 1, 0.1);
    }
    weight(p + 'attn_output.weight', 'attn_output', i, [qDim, s.nEmbd], 1 / Math.sqrt(qDim));
    if (oss) {
      // gpt-oss: output bias, one attention sink logit per head, the pre-FFN norm named
      // post_attention_norm, then experts with router and expert biases.
      vector(p + 'attn_output.bias', 'attn_output_bias', i, s.nEmbd, 0, 0.1);
      vector(p + 'attn_sinks.weight', 'attn_sinks', i, s.nHead, 0, 1);
      vector(p + 'post_attention_norm.weight', 'ffn_norm', i, s.nEmbd, 1, 0.05);
      const fe = s.nFFExp, E = s.nExpert;
      weight(p + 'ffn_gate_inp.weight', 'ffn_gate_inp', i, [s.nEmbd, E], 3 / Math.sqrt(s.nEmbd));
      vector(p + 'ffn_gate_inp.bias', 'ffn_gate_inp_bias', i, E, 0, 0.5);
      weight(p + 'ffn_gate_exps.weight', 'ffn_gate_exps', i, [s.nEmbd, fe, E], 1 / Math.sqrt(s.nEmbd));
      out.push({ name: p + 'ffn_gate_exps.bias', role: 'ffn_gate_exps_bias', layer: i, type: 'F32', shape: [fe, E], std: 0.1, mean: 0 });
      weight(p + 'ffn_up_exps.weight', 'ffn_up_exps', i, [s.nEmbd, fe, E], 1 / Math.sqrt(s.nEmbd));
      out.push({ name: p + 'ffn_up_exps.bias', role: 'ffn_up_exps_bias', layer: i, type: 'F32', shape: [fe, E], std: 0.1, mean: 0 });
      weight(p + 'ffn_down_exps.weight', 'ffn_down_exps', i, [fe, s.nEmbd, E], 1 / Math.sqrt(fe));
      out.push({ name: p + 'ffn_down_exps.bias', role: 'ffn_down_exps_bias', layer: i, type: 'F32', shape: [s.nEmbd, E], std: 0.1, mean: 0 });
      continue;
    }
    const gemma = s.arch === 'gemma2' || s.arch === 'gemma3';
    // Gemma's norms of the blocks' outputs (llama.cpp's names; stored as the final 1 + w).
    if (gemma) vector(p + 'post_attention_norm.weight', 'attn_post_norm', i, s.nEmbd, 1, 0.05);
    vector(p + 'ffn_norm.weight', 'ffn_norm', i, s.nEmbd, 1, 0.05);
    if (s.nExpert > 0) {
      // Mixture of experts: the router (logits of std ~3: decisive choices) and one [in, out] slice per expert.
      const fe = s.arch === 'qwen3moe' ? s.nFFExp : s.nFF;
      weight(p + 'ffn_gate_inp.weight', 'ffn_gate_inp', i, [s.nEmbd, s.nExpert], 3 / Math.sqrt(s.nEmbd));
      weight(p + 'ffn_gate_exps.weight', 'ffn_gate_exps', i, [s.nEmbd, fe, s.nExpert], 1 / Math.sqrt(s.nEmbd));
      weight(p + 'ffn_up_exps.weight', 'ffn_up_exps', i, [s.nEmbd, fe, s.nExpert], 1 / Math.sqrt(s.nEmbd));
      weight(p + 'ffn_down_exps.weight', 'ffn_down_exps', i, [fe, s.nEmbd, s.nExpert], 1 / Math.sqrt(fe));
      continue;
    }
    weight(p + 'ffn_gate.weight', 'ffn_gate', i, [s.nEmbd, s.nFF], 1 / Math.sqrt(s.nEmbd));
    weight(p + 'ffn_up.weight', 'ffn_up', i, [s.nEmbd, s.nFF], 1 / Math.sqrt(s.nEmbd));
    // silu(gate) * up has std ~0.6 on unit inputs; scale down to keep the residual growth tame.
    weight(p + 'ffn_down.weight', 'ffn_down', i, [s.nFF, s.nEmbd], 1 / Math.sqrt(s.nFF));
    if (gemma) vector(p + 'post_ffw_norm.weight', 'ffn_post_norm', i, s.nEmbd, 1, 0.05);
  }
  vector('output_norm.weight', 'output_norm', -1, s.nEmbd, 1, 0.05);
  if (!s.tiedEmbeddings) weight('output.weight', 'output', -1, [s.nEmbd, s.nVocab], outStd);
  return out;
}

export interface SyntheticModelOptions extends MixOptions {
  shape: ModelShape;
  mix: MixName;
  /** PRNG seed (u32); default 1. */
  seed?: number;
  /** general.name; default 'synthetic'. */
  name?: string;
  /** A chat template string, or false for none; default a simple template for the vocabulary. */
  chatTemplate?: string | false;
  onProgress?: (written: number, total: number) => void;
}

/** The metadata of a synthetic model (hyper-parameters and tokenizer). */
export function syntheticMetadata(options: SyntheticModelOptions): [string, GGUFValue][] {
  const s = resolveShape(options.shape);
  const a = s.arch;
  const md: [string, GGUFValue][] = [
    ['general.architecture', gguf.str(a)],
    // llama.cpp treats a model whose name contains "phi-3" / "phi3" as Phi-3 and looks up
    // Phi-3's special tokens, which the synthetic vocabularies lack: keep such names apart.
    ['general.name', gguf.str((options.name ?? 'synthetic').replace(/phi-?3/gi, (m) => m.replace(/3$/, ' 3')))],
    ['general.file_type', gguf.u32(MIX_INFO[options.mix].fileType)],
  ];
  if (MIX_INFO[options.mix].quantized) md.push(['general.quantization_version', gguf.u32(2)]);
  md.push(
    ['general.alignment', gguf.u32(32)],
    [`${a}.context_length`, gguf.u32(s.contextLength)],
    [`${a}.embedding_length`, gguf.u32(s.nEmbd)],
    [`${a}.block_count`, gguf.u32(s.nLayers)],
    [`${a}.feed_forward_length`, gguf.u32(s.nFF)],
    [`${a}.attention.head_count`, gguf.u32(s.nHead)],
    [`${a}.attention.head_count_kv`, gguf.u32(s.nHeadKv)],
    [`${a}.rope.dimension_count`, gguf.u32(s.headDim)],
    [`${a}.rope.freq_base`, gguf.f32(s.ropeFreqBase)],
    [`${a}.attention.layer_norm_rms_epsilon`, gguf.f32(s.rmsEps)],
    [`${a}.vocab_size`, gguf.u32(s.nVocab)],
  );
  if (s.nExpert > 0) {
    md.push([`${a}.expert_count`, gguf.u32(s.nExpert)], [`${a}.expert_used_count`, gguf.u32(s.nExpertUsed)]);
    if (a !== 'llama') md.push([`${a}.expert_feed_forward_length`, gguf.u32(s.nFFExp)]);
  }
  if (s.originalContextLength > 0) md.push([`${a}.rope.scaling.original_context_length`, gguf.u32(s.originalContextLength)]);
  if (s.ropeAttnFactor > 0) md.push([`${a}.rope.scaling.attn_factor`, gguf.f32(s.ropeAttnFactor)]);
  if (a === 'gemma2')
    md.push(
      [`${a}.attention.sliding_window`, gguf.u32(s.slidingWindow)],
      [`${a}.attn_logit_softcapping`, gguf.f32(s.attnSoftcap)],
      [`${a}.final_logit_softcapping`, gguf.f32(s.finalSoftcap)],
    );
  if (a === 'gpt-oss') md.push([`${a}.attention.sliding_window`, gguf.u32(s.slidingWindow)]);
  if (s.yarnFactor > 0)
    md.push([`${a}.rope.scaling.type`, gguf.str('yarn')], [`${a}.rope.scaling.factor`, gguf.f32(s.yarnFactor)]);
  if (a === 'gemma3') {
    md.push([`${a}.attention.sliding_window`, gguf.u32(s.slidingWindow)]);
    if (s.finalSoftcap > 0) md.push([`${a}.final_logit_softcapping`, gguf.f32(s.finalSoftcap)]);
  }
  if (s.headDim * s.nHead !== s.nEmbd)
    md.push([`${a}.attention.key_length`, gguf.u32(s.headDim)], [`${a}.attention.value_length`, gguf.u32(s.headDim)]);
  const vocab = s.tokenizer === 'gpt2' ? gpt2Vocab(s.nVocab) : llamaVocab(s.nVocab);
  const template =
    options.chatTemplate === false
      ? undefined
      : (options.chatTemplate ?? (s.tokenizer === 'gpt2' ? CHATML_TEMPLATE : LLAMA_CHAT_TEMPLATE));
  md.push(...vocabMetadata(vocab, template));
  return md;
}

/** The tensors of a synthetic model, each with its generator. */
export function syntheticTensors(options: SyntheticModelOptions): TensorSpec[] {
  const seed = options.seed ?? 1;
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new SparrowError(`seed must be an integer in [0, 2^32), got ${String(seed)}`, 'ERR_INVALID_ARG');
  return tensorTypes(options.shape, options.mix, options).map((t) => ({
    name: t.name,
    type: t.type,
    shape: t.shape,
    data: () =>
      randomTensorChunks({
        type: t.type,
        count: t.shape.reduce((a, b) => a * b, 1),
        std: t.std,
        mean: t.mean,
        seed,
        // The stream depends on the tensor's name only, not its type: a q4_0 and a q8_0
        // file draw their blocks from the same streams (not the same values, though).
        stream: t.name,
      }),
  }));
}

/** Writes a synthetic model to `path` (atomically: a temp file renamed at the end). */
export async function writeSyntheticModel(path: string, options: SyntheticModelOptions): Promise<{ bytes: number }> {
  if (!options || typeof options !== 'object')
    throw new SparrowError('writeSyntheticModel: options must be an object', 'ERR_INVALID_ARG');
  if (!isMixName(options.mix))
    throw new SparrowError(`writeSyntheticModel: mix must be one of ${MIXES.join(', ')}; got ${String(options.mix)}`, 'ERR_INVALID_ARG');
  return writeGGUF(path, {
    metadata: syntheticMetadata(options),
    tensors: syntheticTensors(options),
    onProgress: options.onProgress,
  });
}
