/**
 * Loading a GGUF model. `loadModel(path, options)` maps and validates the file on a
 * worker thread and resolves to a `Model`; `model.createSession()` gives a `Session` with
 * its own KV cache. The weights stay memory-mapped: memory use is about the file plus
 * the KV caches of the live sessions.
 */
import { addon } from './native.js';
import { SparrowError } from './errors.js';
import { Session, type SessionAddon, type SessionOptions } from './session.js';
import { Tokenizer } from './tokenizer/tokenizer.js';
import { abortError, runSliced } from './tokenizer/slices.js';
import { unpackMetadata, type PackedMetadata } from './gguf.js';
import { applyChatTemplate, type ApplyChatTemplateOptions, type ChatMessage } from './templates/template.js';
import { Chat, type ChatOptions } from './chat/chat.js';
import { embed, type EmbedOptions } from './embeddings/embed.js';
import fs from 'node:fs';
import { byteFraction, checkLevel } from './sparsity/allocation.js';
import { calibrationPathFor, SparsityPlan } from './sparsity/plan.js';

export interface LoadModelOptions {
  /** Threads for the forward pass (the calling worker thread included): an integer 1..256. Default: physical cores. */
  threads?: number;
  /** Tokens per forward pass when evaluating a prompt: an integer 1..65536. Default 512. */
  batchSize?: number;
  /**
   * Called as the load goes on with the fraction done, from 0 to 1: increasing, the last
   * call with exactly 1 just before the promise resolves. The weights (prepared on a worker
   * thread) count for the first 90%, the tokenizer for the rest.
   */
  onProgress?: (fraction: number) => void;
  /**
   * Aborts the load: it stops between two tensors (or two slices of the tokenizer), frees
   * what it had built and rejects with a SparrowError of code ERR_ABORTED.
   */
  signal?: AbortSignal;
  /**
   * The most prompt evaluations (and context shifts) that may wait for the model at once:
   * an integer 1..2^30, default no limit. One more rejects at once with a SparrowError of
   * code ERR_QUEUE_FULL and leaves its session unchanged (an HTTP server answers 429).
   * Decode steps (single-token evaluations) are never refused, so a generation in
   * progress is never cut off by the limit.
   */
  maxQueue?: number;
  /**
   * Where the forward pass runs. 'auto' (the default): a GPU when this build has the Vulkan
   * backend (`npm run build:vulkan`) and the machine a real GPU (never a CPU-type Vulkan
   * device such as Mesa's lavapipe), else the CPU; a model the GPU backend cannot run yet
   * (a head dimension above 256, or sparsity > 0) stays on the CPU. 'vulkan': a Vulkan device
   * of any type, or a SparrowError ERR_NO_GPU. false: the CPU. `model.info.gpu` says which.
   */
  gpu?: 'auto' | 'vulkan' | false;
  /** Which device (the `index` of `systemInfo().gpus`); default: the first suitable one. */
  gpuDevice?: number;
  /**
   * Activation sparsity of decoding: the fraction of the layer matrices' weight bytes that
   * each decoded token skips, a number from 0 to 0.9 (default 0: the exact dense path).
   * The smallest-magnitude inputs of each layer's matrix products are zeroed, per site and
   * layer as the allocation says, and the weights they would multiply are not read
   * (a model loaded with sparsity > 0 stores its layer matrices for that). Prompts stay
   * dense. Faster decoding for some quality; see README "Activation sparsity".
   * Sessions may override the level (createSession({ sparsity })).
   */
  sparsity?: number;
  /**
   * The sparsity calibration (per-site, per-layer allocation of each level, from `sparrow
   * calibrate`): a file path, or false for the built-in default allocation. Default: the
   * file `MODEL.gguf.sparsity.json` beside the model when it exists. A calibration made for
   * another model file rejects with ERR_CALIBRATION_MISMATCH, a damaged one with
   * ERR_BAD_CALIBRATION.
   */
  sparsityCalibration?: string | false;
}

/** Options of model.createChat: the chat's own, plus the size of the session it creates. */
export interface CreateChatOptions extends ChatOptions {
  /** Context size of the chat's session (default: the model's context length). */
  contextSize?: number;
}

export interface ModelInfo {
  /** `general.architecture`: one of the supported architectures ('llama', 'qwen2', 'qwen3', ...). */
  architecture: string;
  /** `general.name` ('' when absent). */
  name: string;
  /** Number of weights in all tensors. */
  parameterCount: number;
  /** llama.cpp's name for `general.file_type` ('Q4_K_M', 'F16', ...), or 'unknown'. */
  fileType: string;
  /** `general.file_type` as stored (-1 when absent). */
  fileTypeId: number;
  fileSize: number;
  /** The context length the model was trained with: the largest `contextSize` a session may have. */
  contextLength: number;
  vocabSize: number;
  embeddingLength: number;
  layerCount: number;
  headCount: number;
  headCountKv: number;
  headDim: number;
  feedForwardLength: number;
  ropeDim: number;
  ropeFreqBase: number;
  ropeFreqScale: number;
  rmsEpsilon: number;
  /** True when the output matrix is the token embedding (no `output.weight`). */
  tiedOutput: boolean;
  /** Threads and batch size in use. */
  threads: number;
  batchSize: number;
  /** The GPU the forward pass runs on, or null for the CPU. */
  gpu: { api: 'vulkan'; index: number; name: string; type: string; memory: number } | null;
  /** The activation sparsity in effect (LoadModelOptions.sparsity). */
  sparsity: SparsityInfo;
}

export interface SparsityInfo {
  /** The level sessions get by default: the fraction of layer-matrix weight bytes skipped per decoded token. */
  level: number;
  /** Where the per-site, per-layer allocation of a level comes from: the built-in prior, or a calibration file. */
  allocation: 'default' | 'calibrated';
  /** The calibration file in use, or null. */
  file: string | null;
}

/** An opaque native handle. */
export type NativeHandle = { readonly __sparrowHandle: unique symbol };

/**
 * How the model's evaluations were scheduled. Evaluations of its sessions queue and run
 * one job at a time; decode steps (single-token evaluations) of different sessions that
 * are waiting together run as one batched forward pass.
 */
export interface ModelStats {
  /** Jobs run (forward passes, chunked prompt evaluations, context shifts). */
  evaluations: number;
  /** Jobs that decoded several sessions' tokens in one forward pass. */
  batchedSteps: number;
  /** Tokens decoded in those batched jobs. */
  batchedTokens: number;
  /** The largest batch so far (0 before the first batched job). */
  maxBatch: number;
  /** Evaluations waiting for the model now. */
  queued: number;
  /**
   * Models loaded with sparsity > 0: weight bytes the channel-major layer matrices have
   * read so far, and the bytes dense matrices would have read for the same products
   * (1 - read / dense is the measured skipped fraction).
   */
  sparseBytesRead?: number;
  sparseBytesDense?: number;
}

interface ModelAddon extends SessionAddon {
  loadModel(
    path: string,
    options: NativeLoadOptions,
    onProgress?: (fraction: number) => void,
    abortFlag?: NativeHandle,
  ): Promise<[NativeHandle, PackedMetadata]>;
  abortFlagCreate(): NativeHandle;
  abortFlagSet(flag: NativeHandle): void;
  modelInfo(model: NativeHandle): Omit<ModelInfo, 'sparsity'> & { sparsity: number };
  modelSparsitySites(model: NativeHandle): Float64Array;
  modelFingerprint(model: NativeHandle): string;
  modelDispose(model: NativeHandle): void;
  modelStats(model: NativeHandle): ModelStats;
  sessionCreate(
    model: NativeHandle,
    options: Omit<SessionOptions, 'sparsity'> & { sparsity?: number; sparsityAllocation?: Float32Array },
  ): NativeHandle;
}

type NativeLoadOptions = Pick<LoadModelOptions, 'threads' | 'batchSize' | 'maxQueue' | 'sparsity' | 'gpu' | 'gpuDevice'>;

function checkInteger(value: unknown, name: string, min: number, max: number): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
    throw new SparrowError(`${name} must be an integer from ${min} to ${max} (got ${String(value)})`, 'ERR_INVALID_ARG');
}

/** Loads a GGUF model (llama or qwen2 architecture) on a worker thread. */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<Model> {
  if (typeof path !== 'string' || path.length === 0)
    throw new SparrowError('loadModel: path must be a non-empty string', 'ERR_INVALID_ARG');
  if (options === null || typeof options !== 'object')
    throw new SparrowError('loadModel: options must be an object', 'ERR_INVALID_ARG');
  checkInteger(options.threads, 'threads', 1, 256);
  checkInteger(options.batchSize, 'batchSize', 1, 65536);
  checkInteger(options.maxQueue, 'maxQueue', 1, 2 ** 30);
  checkInteger(options.gpuDevice, 'gpuDevice', 0, 64);
  if (options.gpu !== undefined && options.gpu !== 'auto' && options.gpu !== 'vulkan' && options.gpu !== false)
    throw new SparrowError(`loadModel: gpu must be 'auto', 'vulkan' or false (got ${String(options.gpu)})`, 'ERR_INVALID_ARG');
  checkLevel(options.sparsity);
  const cal = options.sparsityCalibration;
  if (cal !== undefined && cal !== false && (typeof cal !== 'string' || cal.length === 0))
    throw new SparrowError('loadModel: sparsityCalibration must be a file path or false', 'ERR_INVALID_ARG');
  const calibration = cal === false ? null : (cal ?? (fs.existsSync(calibrationPathFor(path)) ? calibrationPathFor(path) : null));
  const { onProgress, signal } = options;
  if (onProgress !== undefined && typeof onProgress !== 'function')
    throw new SparrowError(`loadModel: options.onProgress must be a function (got ${typeof onProgress})`, 'ERR_INVALID_ARG');
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new SparrowError('loadModel: options.signal must be an AbortSignal', 'ERR_INVALID_ARG');
  if (signal?.aborted) throw abortError('loadModel');
  const { threads, batchSize, maxQueue, sparsity, gpu, gpuDevice } = options;
  return loadWithProgress(addon<ModelAddon>(), path, { threads, batchSize, maxQueue, sparsity, gpu, gpuDevice }, calibration, onProgress, signal);
}

/** Share of the progress given to the weights; the tokenizer has the rest. */
const WEIGHTS_SHARE = 0.9;

/**
 * The load: the weights on a worker thread (native progress and abort flag), then the
 * tokenizer on this thread in slices that leave the event loop free (a 150k-token
 * vocabulary would otherwise block it for hundreds of milliseconds).
 */
async function loadWithProgress(
  native: ModelAddon,
  path: string,
  nativeOptions: NativeLoadOptions,
  calibration: string | null,
  onProgress: ((fraction: number) => void) | undefined,
  signal: AbortSignal | undefined,
): Promise<Model> {
  let last = -1;
  const failed: { callbackError?: { error: unknown } } = {};
  const flag = native.abortFlagCreate();
  const stop = () => native.abortFlagSet(flag);
  // Reports increasing values only (native reports may arrive late); a throwing callback aborts the load.
  const report = (f: number) => {
    if (!onProgress || failed.callbackError || !(f > last)) return;
    last = f;
    try {
      onProgress(f);
    } catch (error) {
      failed.callbackError = { error };
      stop();
    }
  };
  signal?.addEventListener('abort', stop, { once: true });
  let handle: NativeHandle | undefined;
  try {
    let packed: PackedMetadata;
    try {
      [handle, packed] = await native.loadModel(
        path,
        nativeOptions,
        onProgress ? (f) => report(Math.min(f, 1) * WEIGHTS_SHARE) : undefined,
        flag,
      );
    } catch (e) {
      if (failed.callbackError) throw failed.callbackError.error;
      throw e;
    }
    const siteBytes = native.modelSparsitySites(handle);
    const plan = calibration
      ? SparsityPlan.fromFile(calibration, siteBytes, native.modelFingerprint(handle))
      : SparsityPlan.default(siteBytes);
    report(WEIGHTS_SHARE);
    let slices = 0;
    const sliced = {
      signal,
      // The tokenizer's share grows with each slice, towards (never reaching) 1.
      onSlice: () => report(1 - (1 - WEIGHTS_SHARE) / (1 + 0.1 * ++slices)),
    };
    const metadata = await runSliced(unpackMetadata(packed), sliced, 'loadModel');
    const tokenizer = await Tokenizer.fromMetadataAsync(metadata, sliced).catch((e: unknown) => {
      throw (e as SparrowError)?.code === 'ERR_ABORTED' ? abortError('loadModel') : e;
    });
    if (failed.callbackError) throw failed.callbackError.error;
    if (signal?.aborted) throw abortError('loadModel');
    const model = new Model(native, handle, tokenizer, plan);
    handle = undefined;
    report(1);
    const late = failed.callbackError as { error: unknown } | undefined; // set by report(1)
    if (late) {
      model.dispose();
      throw late.error;
    }
    return model;
  } finally {
    signal?.removeEventListener('abort', stop);
    if (handle) native.modelDispose(handle);
  }
}

export class Model {
  /** What the model is: architecture, sizes, file type, context length, ... */
  readonly info: Readonly<ModelInfo>;
  /** The model's tokenizer (from the same GGUF file). */
  readonly tokenizer: Tokenizer;
  #native: ModelAddon;
  #handle: NativeHandle | undefined;
  #statsHandle: NativeHandle;
  #sessions = new Set<WeakRef<Session>>();
  /** Bytes of the weights behind each sparsity site, n_layer x 4 (src/sparsity). */
  readonly #siteBytes: Float64Array;
  readonly #plan: SparsityPlan;

  /** @internal Use loadModel(). */
  constructor(native: ModelAddon, handle: NativeHandle, tokenizer: Tokenizer, plan?: SparsityPlan) {
    this.#native = native;
    this.#handle = handle;
    this.#statsHandle = handle;
    const info = native.modelInfo(handle);
    this.#siteBytes = native.modelSparsitySites(handle);
    this.#plan = plan ?? SparsityPlan.default(this.#siteBytes);
    this.info = Object.freeze({
      ...info,
      // The native level is a float: give back the number asked for (to 6 decimals).
      sparsity: Object.freeze({ level: Math.round(info.sparsity * 1e6) / 1e6, allocation: this.#plan.kind, file: this.#plan.file }),
    });
    this.tokenizer = tokenizer;
  }

  /**
   * @internal The allocation of a sparsity level (n_layer x 4 fractions of zeroed input
   * channels, src/sparsity): the calibration's, else the default prior's.
   */
  sparsityAllocation(level: number): Float32Array {
    return this.#plan.allocation(level);
  }

  /** @internal Bytes of the weights behind each sparsity site, n_layer x 4. */
  get sparsitySiteBytes(): Float64Array {
    return this.#siteBytes.slice();
  }

  /** @internal The model file's fingerprint (16 hex digits), which a calibration file names. */
  get fingerprint(): string {
    if (!this.#handle) throw new SparrowError('the model has been disposed', 'ERR_DISPOSED');
    return this.#native.modelFingerprint(this.#handle);
  }

  /**
   * @internal A session whose decoded (and, with sparsePrompt, prompt) tokens use this
   * explicit allocation (n_layer x 4 fractions): what calibration measures.
   */
  createSessionWithAllocation(allocation: Float32Array, options: { contextSize?: number; sparsePrompt?: boolean } = {}): Session {
    if (!this.#handle) throw new SparrowError('the model has been disposed', 'ERR_DISPOSED');
    let any = false;
    for (const f of allocation) any ||= f > 0;
    const handle = this.#native.sessionCreate(this.#handle, {
      contextSize: options.contextSize,
      // The native level only says "sparsified"; the allocation says how much.
      sparsity: any ? Math.min(0.9, Math.max(1e-6, byteFraction(this.#siteBytes, allocation))) : 0,
      sparsityAllocation: any ? allocation : undefined,
      sparsePrompt: options.sparsePrompt,
    });
    const session = new Session(this.#native, handle, {
      tokenizer: this.tokenizer,
      vocabSize: this.info.vocabSize,
      onDispose: () => this.#sessions.delete(ref),
    });
    const ref = new WeakRef(session);
    this.#sessions.add(ref);
    return session;
  }

  get disposed(): boolean {
    return this.#handle === undefined;
  }

  /** Scheduling statistics (a fresh snapshot on each read; still readable after dispose()). */
  get stats(): ModelStats {
    return this.#native.modelStats(this.#statsHandle);
  }

  /**
   * A new session with its own KV cache. `contextSize` (default: the model's context
   * length, at most 4096) is the most tokens it can hold; `kvCacheType` is 'f16'
   * (default) or 'q8_0'. The cache's memory is reserved but only becomes resident as
   * positions are used.
   */
  createSession(options: SessionOptions = {}): Session {
    if (!this.#handle) throw new SparrowError('the model has been disposed', 'ERR_DISPOSED');
    if (options === null || typeof options !== 'object')
      throw new SparrowError('createSession: options must be an object', 'ERR_INVALID_ARG');
    checkInteger(options.contextSize, 'contextSize', 1, this.info.contextLength);
    if (options.kvCacheType !== undefined && options.kvCacheType !== 'f16' && options.kvCacheType !== 'q8_0')
      throw new SparrowError(`kvCacheType must be 'f16' or 'q8_0' (got ${String(options.kvCacheType)})`, 'ERR_INVALID_ARG');
    if (options.flashAttention !== undefined && typeof options.flashAttention !== 'boolean')
      throw new SparrowError(`flashAttention must be a boolean (got ${String(options.flashAttention)})`, 'ERR_INVALID_ARG');
    if (options.flashAttention && options.kvCacheType === 'q8_0')
      throw new SparrowError("flashAttention needs kvCacheType 'f16'", 'ERR_INVALID_ARG');
    if (options.fullWindowCache !== undefined && typeof options.fullWindowCache !== 'boolean')
      throw new SparrowError(`fullWindowCache must be a boolean (got ${String(options.fullWindowCache)})`, 'ERR_INVALID_ARG');
    if (options.embeddings !== undefined && typeof options.embeddings !== 'boolean')
      throw new SparrowError(`embeddings must be a boolean (got ${String(options.embeddings)})`, 'ERR_INVALID_ARG');
    checkLevel(options.sparsity);
    if (options.sparsePrompt !== undefined && typeof options.sparsePrompt !== 'boolean')
      throw new SparrowError(`sparsePrompt must be a boolean (got ${String(options.sparsePrompt)})`, 'ERR_INVALID_ARG');
    // Embeddings sessions evaluate prompts only: dense unless asked otherwise.
    const sparsity = options.sparsity ?? (options.embeddings ? 0 : this.info.sparsity.level);
    const handle = this.#native.sessionCreate(this.#handle, {
      contextSize: options.contextSize,
      kvCacheType: options.kvCacheType,
      flashAttention: options.flashAttention,
      embeddings: options.embeddings,
      fullWindowCache: options.fullWindowCache,
      sparsity,
      sparsityAllocation: sparsity > 0 ? this.sparsityAllocation(sparsity) : undefined,
      sparsePrompt: options.sparsePrompt,
    });
    const session = new Session(this.#native, handle, {
      tokenizer: this.tokenizer,
      vocabSize: this.info.vocabSize,
      embeddings: options.embeddings,
      onDispose: () => this.#sessions.delete(ref),
    });
    const ref = new WeakRef(session);
    this.#sessions.add(ref);
    return session;
  }

  /**
   * Embeddings of `texts`: one Float32Array of `info.embeddingLength` floats per text, from
   * the final hidden state after the output norm, pooled over the text's tokens ('mean' by
   * default, 'last' or 'cls') and scaled to unit length unless `normalize: false`.
   * See src/embeddings/embed.ts.
   */
  embed(texts: readonly string[], options?: EmbedOptions): Promise<Float32Array[]> {
    if (!this.#handle) return Promise.reject(new SparrowError('the model has been disposed', 'ERR_DISPOSED'));
    return embed(this, texts, options);
  }

  /** A chat (history + chat template) on a new session that the chat owns; see src/chat/chat.ts. */
  createChat(options: CreateChatOptions = {}): Chat {
    if (options === null || typeof options !== 'object')
      throw new SparrowError('createChat: options must be an object', 'ERR_INVALID_ARG');
    const { contextSize, ...chatOptions } = options;
    const session = this.createSession({ contextSize });
    try {
      return new Chat(session, this.tokenizer, this.info.vocabSize, chatOptions, () => session.dispose());
    } catch (e) {
      session.dispose();
      throw e;
    }
  }

  /**
   * Renders `messages` with the model's chat template (tokenizer.chat_template, else the
   * built-in template its vocabulary suggests): `applyChatTemplate(model.tokenizer, ...)`.
   * Options: `addGenerationPrompt` (default true), `tools`, `format`, `variables`, `bosToken`, `eosToken`.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options?: ApplyChatTemplateOptions): string {
    return applyChatTemplate(this.tokenizer, messages, options);
  }

  /**
   * Frees the model and disposes its sessions. An evaluate() in flight ends with an
   * ERR_DISPOSED rejection; the memory goes when it has stopped. Safe to call twice.
   */
  dispose(): void {
    if (!this.#handle) return;
    for (const ref of [...this.#sessions]) ref.deref()?.dispose();
    this.#sessions.clear();
    this.#native.modelDispose(this.#handle);
    this.#handle = undefined;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * dispose(), then waits until the evaluations in flight of the sessions it disposed have
   * stopped: the model's memory has been handed back when the promise resolves.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    const sessions = [...this.#sessions].map((ref) => ref.deref()).filter((s): s is Session => s !== undefined);
    const idle = sessions.map((s) => s.whenIdle());
    this.dispose();
    await Promise.all(idle);
  }
}
