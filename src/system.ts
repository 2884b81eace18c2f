/** What this build and this CPU can run, and which SIMD path is in use. */
import { addon } from './native.js';

export type Isa = 'generic' | 'avx2' | 'avx512' | 'neon';

export interface SystemInfo {
  /** The kernel path in use now. */
  isa: Isa;
  /** The fastest path this CPU supports. */
  bestIsa: Isa;
  compiledIsas: Isa[];
  supportedIsas: Isa[];
  cpuFeatures: Record<string, boolean>;
  /** The weight types this build computes with (ggml names: 'Q4_K', 'F16', ...). */
  weightTypes: string[];
  /** The architectures it runs (`general.architecture` values). */
  architectures: string[];
  /**
   * The GPU devices a model can run on (`loadModel`'s `gpu` and `gpuDevice` options): empty
   * when this build has no Vulkan backend (`npm run build:vulkan`), or the machine no Vulkan
   * loader or device.
   */
  gpus: GpuInfo[];
  /** True when this build contains the Vulkan backend. */
  vulkan: boolean;
  /** Why `gpus` is empty (absent when it is not). */
  gpuUnavailableReason?: string;
}

export interface GpuInfo {
  /** The `gpuDevice` value that picks it. */
  index: number;
  api: 'vulkan';
  name: string;
  /** 'discrete', 'integrated', 'virtual', 'cpu' (a CPU-type device such as lavapipe: `gpu: 'auto'` skips it), 'other'. */
  type: string;
  /** Bytes of its largest device-local memory heap. */
  memory: number;
  /** Bytes one storage buffer may span (the backend splits larger weights). */
  maxBufferSize: number;
  driver: string;
  /** 'fp16', 'int8', 'storage16', 'fp64', 'subgroupN' (N: the subgroup size), 'cooperativeMatrix', 'integerDotProduct'. */
  features: string[];
}

/** Whether an architecture's loader reads a tensor: never, when the file has it, or always (else ERR_MISSING_TENSOR). */
export type TensorNeed = 'absent' | 'optional' | 'required';

/**
 * @internal One row of the native architecture table (native/model/arch.cpp): which of
 * the tensors beyond the common ones (embedding, norms, attention and feed-forward
 * weights) the loader reads for this `general.architecture`.
 */
export interface ArchitectureRow {
  name: string;
  /** blk.N.attn_{q,k,v}.bias */
  qkvBias: TensorNeed;
  /** blk.N.attn_output.bias */
  outBias: TensorNeed;
  /** output.weight (not required: tied to token_embd.weight when absent or not read) */
  output: TensorNeed;
  /** rope_freqs.weight */
  ropeFreqs: TensorNeed;
  /** blk.N.attn_{q,k}_norm.weight */
  qkNorm: TensorNeed;
  /** blk.N.post_attention_norm.weight and blk.N.post_ffw_norm.weight */
  postNorms: TensorNeed;
  /** blk.N.attn_qkv.weight, read in place of attn_{q,k,v}.weight when the file has it */
  attnQkv: TensorNeed;
  /** blk.N.ffn_up.weight holds the gate and up rows (no ffn_gate.weight) */
  ffnUpGate: boolean;
  /** rope_factors_short.weight and rope_factors_long.weight */
  longrope: TensorNeed;
  /** Mixture of experts (ffn_gate_inp, ffn_{gate,up,down}_exps) when <arch>.expert_count > 0 ('optional') or always ('required') */
  moe: TensorNeed;
  /** blk.N.attn_sinks.weight (gpt-oss: one learned attention-sink logit per head) */
  attnSinks: TensorNeed;
  /** The name of the norm before the feed-forward block: 'ffn_norm' (gpt-oss: 'post_attention_norm') */
  ffnNorm: string;
  /** With experts: ffn_gate_inp.bias and ffn_{gate,up,down}_exps.bias (gpt-oss) */
  moeBias: TensorNeed;
}

interface SystemAddon {
  systemInfo(): SystemInfo;
  setIsa(isa: string): void;
  architectureTable(): ArchitectureRow[];
}

export function systemInfo(): SystemInfo {
  return addon<SystemAddon>().systemInfo();
}

/** @internal The native architecture table, one row per architecture the loader runs. */
export function architectureTable(): ArchitectureRow[] {
  return addon<SystemAddon>().architectureTable();
}

/**
 * Forces a kernel path for the whole process (tests, benchmarks). Throws a SparrowError
 * (`ERR_ISA_UNSUPPORTED`) when the path is not in this build or not on this CPU.
 * The SPARROW_ISA environment variable does the same at start-up.
 */
export function setIsa(isa: Isa): void {
  addon<SystemAddon>().setIsa(isa);
}
