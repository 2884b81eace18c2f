/**
 * Loading a GGUF model. `loadModel(path, options)` maps and validates the file on a
 * worker thread and resolves to a `Model`; `model.createSession()` gives a `Session` with
 * its own KV cache. The weights stay memory-mapped: memory use is about the file plus
 * the KV caches of the live sessions.
 */
import { addon } from './native.js';
import { SparrowError } from './errors.js';
import { Session, type SessionAddon, type SessionOptions } from './session.js';
import { loadTokenizer, type Tokenizer } from './tokenizer/tokenizer.js';
import { bindSession, createChatOnModel, type CreateChatOptions } from './generation/bind.js';
import type { Chat } from './conversation/chat.js';

export interface LoadModelOptions {
  /** Threads for the forward pass (the calling worker thread included): an integer 1..256. Default: physical cores. */
  threads?: number;
  /** Tokens per forward pass when evaluating a prompt: an integer 1..65536. Default 512. */
  batchSize?: number;
}

export interface ModelInfo {
  /** `general.architecture`: 'llama' or 'qwen2'. */
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
}

/** An opaque native handle. */
export type NativeHandle = { readonly __sparrowHandle: unique symbol };

interface ModelAddon extends SessionAddon {
  loadModel(path: string, options: LoadModelOptions): Promise<NativeHandle>;
  modelInfo(model: NativeHandle): ModelInfo;
  modelDispose(model: NativeHandle): void;
  sessionCreate(model: NativeHandle, options: SessionOptions): NativeHandle;
}

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
  const native = addon<ModelAddon>();
  const handle = await native.loadModel(path, { threads: options.threads, batchSize: options.batchSize });
  return new Model(native, handle, loadTokenizer(path));
}

export class Model {
  /** What the model is: architecture, sizes, file type, context length, ... */
  readonly info: Readonly<ModelInfo>;
  /** The model's tokenizer (from the same GGUF file). */
  readonly tokenizer: Tokenizer;
  #native: ModelAddon;
  #handle: NativeHandle | undefined;
  #sessions = new Set<WeakRef<Session>>();

  /** @internal Use loadModel(). */
  constructor(native: ModelAddon, handle: NativeHandle, tokenizer: Tokenizer) {
    this.#native = native;
    this.#handle = handle;
    this.info = Object.freeze(native.modelInfo(handle));
    this.tokenizer = tokenizer;
  }

  get disposed(): boolean {
    return this.#handle === undefined;
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
    const handle = this.#native.sessionCreate(this.#handle, {
      contextSize: options.contextSize,
      kvCacheType: options.kvCacheType,
    });
    const session = new Session(this.#native, handle, this.info.vocabSize, () => this.#sessions.delete(ref));
    const ref = new WeakRef(session);
    this.#sessions.add(ref);
    bindSession(session, this.tokenizer, this.info.vocabSize);
    return session;
  }

  /** A chat (history + chat template) on a new session of its own; see src/conversation/chat.ts. */
  createChat(options?: CreateChatOptions): Chat {
    return createChatOnModel((o) => this.createSession(o), this.tokenizer, this.info.vocabSize, options);
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
}
