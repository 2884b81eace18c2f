/**
 * A session: one token sequence and its KV cache. `evaluate(tokens)` appends tokens
 * and resolves to logits; the forward pass runs on worker threads, never on the JS
 * thread. One evaluate at a time per session (a second one rejects with
 * ERR_SESSION_BUSY); evaluations of the sessions of one model queue, and their decode
 * steps (single-token evaluations waiting together) run as one batched forward pass.
 */
import { SparrowError } from './errors.js';
import type { NativeHandle } from './model.js';
import type { Tokenizer } from './tokenizer/tokenizer.js';
import { complete, generate, type GenerationTarget } from './generation/generate.js';
import type { Generation } from './generation/stream.js';
import { generationTokenizer } from './generation/tokenizer-adapter.js';
import type { GenerateOptions, GenerationResult } from './generation/types.js';

export interface SessionOptions {
  /** The most tokens the session holds: 1..model.info.contextLength. Default: the model's context length, at most 4096. */
  contextSize?: number;
  /** Storage of the cached keys and values: 'f16' (default, as llama.cpp) or 'q8_0' (half the memory). */
  kvCacheType?: 'f16' | 'q8_0';
  /**
   * Compute attention as llama.cpp's flash attention does (an online softmax, values
   * summed in f16) instead of its default path. Off by default; turn it on to reproduce
   * llama.cpp run with flash attention (node-llama-cpp's default, `flashAttention: 'auto'`,
   * turns it on for CPU models) token for token. Needs kvCacheType 'f16'.
   */
  flashAttention?: boolean;
  /**
   * Evaluations return the final hidden state after the output norm (embeddingLength floats
   * per row, what llama.cpp returns as embeddings) instead of logits. Such a session cannot
   * generate; model.embed() uses one.
   */
  embeddings?: boolean;
  /**
   * Models with sliding-window layers (Gemma 2/3 local layers): those layers keep only the
   * positions they can still see (the window plus one batch), so a long context takes far
   * less memory, with the same results. The price: such a session cannot go back further
   * than its window (truncate() to an earlier point empties it, and a context shift whose
   * kept tokens fall out of the windows falls back to evaluating again). true keeps every
   * position in every layer, as before. Default false.
   */
  fullWindowCache?: boolean;
  /**
   * This session's activation sparsity level (a number from 0 to 0.9), overriding the
   * model's (LoadModelOptions.sparsity): the fraction of the layer matrices' weight bytes
   * skipped per decoded token. It applies to decode steps (single-token evaluations);
   * prompts (evaluations of several tokens) stay dense. 0: the exact dense path.
   */
  sparsity?: number;
  /**
   * Apply the sparsity to every evaluated token, prompts included. For quality
   * measurements (`sparrow perplexity --sparsity` scores each token as if it had been
   * decoded sparsely); slower prompts, no use in generation. Default false.
   */
  sparsePrompt?: boolean;
}

export interface EvaluateOptions {
  /** Return the logits of every new token (n * vocabSize floats, row-major) instead of the last one only. */
  allLogits?: boolean;
  /**
   * Aborts the evaluation: it stops at the next layer of the forward pass and rejects with
   * ERR_ABORTED, leaving the session as it was (none of `tokens` is added). An evaluation
   * that has already finished when the signal fires resolves normally.
   */
  signal?: AbortSignal;
}

/** Token ids: a plain array or an integer typed array. */
export type Tokens = readonly number[] | Uint32Array | Int32Array;

/** @internal The addon functions a session uses. */
export interface SessionAddon {
  sessionEvaluate(session: NativeHandle, tokens: Int32Array, allLogits: boolean): Promise<Float32Array>;
  sessionReset(session: NativeHandle): void;
  sessionTruncate(session: NativeHandle, n: number): void;
  sessionShift(session: NativeHandle, keep: number, drop: number): Promise<void>;
  sessionTokens(session: NativeHandle): Int32Array;
  sessionContextSize(session: NativeHandle): number;
  sessionCacheBytes(session: NativeHandle): number;
  sessionSaveState(session: NativeHandle): Uint8Array;
  sessionRestoreState(session: NativeHandle, state: Uint8Array): void;
  sessionDispose(session: NativeHandle): void;
  sessionCancel(session: NativeHandle): void;
}

/** @internal What a model gives each session it creates. */
export interface SessionContext {
  /** The model's tokenizer, for generate() and complete(). */
  tokenizer: Tokenizer;
  /** Token ids are 0..vocabSize-1. */
  vocabSize: number;
  /** The session returns embeddings, not logits (SessionOptions.embeddings). */
  embeddings?: boolean;
  /** Called once, by dispose(). */
  onDispose: () => void;
}

/**
 * Checks and converts token ids (the one check on the JS side; the native session checks
 * them again before it evaluates). The error names the first bad one.
 */
function toInt32(tokens: Tokens, vocabSize: number): Int32Array {
  const isArray = Array.isArray(tokens);
  if (!isArray && !(tokens instanceof Uint32Array) && !(tokens instanceof Int32Array))
    throw new SparrowError('tokens must be an array of numbers, a Uint32Array or an Int32Array', 'ERR_INVALID_ARG');
  if (tokens.length === 0) throw new SparrowError('tokens must not be empty', 'ERR_INVALID_ARG');
  const out = new Int32Array(tokens.length);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= vocabSize)
      throw new SparrowError(
        `tokens[${i}] = ${String(t)} is not a token id of this model (an integer from 0 to ${vocabSize - 1})`,
        'ERR_INVALID_TOKEN',
      );
    out[i] = t;
  }
  return out;
}

export class Session {
  #native: SessionAddon;
  #handle: NativeHandle | undefined;
  #vocabSize: number;
  #embeddings: boolean;
  #onDispose: () => void;
  /** What generate() and complete() run on: this session with its model's tokenizer. */
  #target: GenerationTarget;
  /** The evaluate in flight (settled, never rejecting), for asyncDispose. */
  #inflight: Promise<void> | undefined;

  /** @internal Use model.createSession(). */
  constructor(native: SessionAddon, handle: NativeHandle, context: SessionContext) {
    this.#native = native;
    this.#handle = handle;
    this.#vocabSize = context.vocabSize;
    this.#embeddings = context.embeddings === true;
    this.#onDispose = context.onDispose;
    this.#target = { session: this, tokenizer: generationTokenizer(context.tokenizer), vocabSize: context.vocabSize };
  }

  #live(): NativeHandle {
    if (!this.#handle) throw new SparrowError('the session has been disposed', 'ERR_DISPOSED');
    return this.#handle;
  }

  get disposed(): boolean {
    return this.#handle === undefined;
  }

  /** The most tokens this session can hold. */
  get contextSize(): number {
    return this.#native.sessionContextSize(this.#live());
  }

  /**
   * Bytes reserved for the KV cache (they become resident as positions are used): the
   * whole context in every layer, but only a window in sliding-window layers.
   */
  get cacheBytes(): number {
    return this.#native.sessionCacheBytes(this.#live());
  }

  /** Number of tokens in the KV cache. */
  get nTokens(): number {
    return this.#native.sessionTokens(this.#live()).length;
  }

  /** The tokens in the KV cache, in order. */
  get tokens(): number[] {
    return Array.from(this.#native.sessionTokens(this.#live()));
  }

  /**
   * Appends `tokens` to the KV cache and resolves to the logits of the last one
   * (vocabSize floats), or of every new one with `allLogits` (tokens.length * vocabSize,
   * row-major). Rejects with ERR_CONTEXT_FULL when they do not fit, ERR_INVALID_TOKEN
   * for an id outside the vocabulary, ERR_SESSION_BUSY while another evaluate runs,
   * ERR_QUEUE_FULL when the model's queue is at its `maxQueue` (see LoadModelOptions).
   * On any error the session is left unchanged.
   */
  evaluate(tokens: Tokens, options: EvaluateOptions = {}): Promise<Float32Array> {
    return this.#track(this.#evaluate(tokens, options));
  }

  /** A job of this session, tracked as the caller sees it, so that asyncDispose resolves after the caller's promise settles. */
  #track<T>(job: Promise<T>): Promise<T> {
    const done = job.then(
      () => {},
      () => {},
    );
    this.#inflight = done;
    void done.then(() => {
      if (this.#inflight === done) this.#inflight = undefined;
    });
    return job;
  }

  async #evaluate(tokens: Tokens, options: EvaluateOptions): Promise<Float32Array> {
    const handle = this.#live();
    if (options === null || typeof options !== 'object')
      throw new SparrowError('evaluate: options must be an object', 'ERR_INVALID_ARG');
    const { signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal))
      throw new SparrowError('evaluate: options.signal must be an AbortSignal', 'ERR_INVALID_ARG');
    const ids = toInt32(tokens, this.#vocabSize);
    if (signal?.aborted) throw new SparrowError('evaluate() was aborted', 'ERR_ABORTED');
    const job = this.#native.sessionEvaluate(handle, ids, options.allLogits === true);
    if (!signal) return job;
    const cancel = () => {
      if (this.#handle === handle) this.#native.sessionCancel(handle);
    };
    signal.addEventListener('abort', cancel, { once: true });
    try {
      return await job;
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  /**
   * Continues the session's tokens with `input` (text or token ids) and streams the
   * generated text: `for await (const chunk of session.generate(...))`, then `await .result`.
   * See src/generation/generate.ts.
   */
  generate(input: string | Tokens, options?: GenerateOptions): Generation {
    this.#canGenerate();
    return generate(this.#target, input, options);
  }

  /** Like generate, without streaming: resolves to { text, tokens, stopReason, timings }. */
  complete(input: string | Tokens, options?: GenerateOptions): Promise<GenerationResult> {
    this.#canGenerate();
    return complete(this.#target, input, options);
  }

  #canGenerate(): void {
    if (this.#embeddings)
      throw new SparrowError('this session returns embeddings (createSession({ embeddings: true })): it cannot generate', 'ERR_INVALID_ARG');
  }

  /** Empties the KV cache. */
  reset(): void {
    this.#native.sessionReset(this.#live());
  }

  /**
   * Keeps only the first `n` tokens of the KV cache (0 <= n <= nTokens). A model with
   * sliding-window layers (unless fullWindowCache) keeps none when those layers no longer
   * hold what position n sees (n more than a window back): check nTokens.
   */
  truncate(n: number): void {
    this.#native.sessionTruncate(this.#live(), n);
  }

  /**
   * Context shift: removes tokens [keep, keep + drop) from the KV cache; the later tokens
   * move down by `drop` positions and their cached keys are re-rotated for their new
   * positions (as llama.cpp's K-shift), so nothing is evaluated again. The logits that
   * follow are those of the shorter sequence up to the small differences of rotating
   * stored f16 keys a second time. On a model with sliding-window layers (unless
   * fullWindowCache), when the windows after the shift would reach kept tokens those
   * layers no longer hold, the session is truncated instead (to `keep` tokens, or none:
   * check nTokens) and the caller evaluates the rest again. Rejects with ERR_INVALID_ARG unless drop >= 1 and
   * keep + drop <= nTokens, ERR_SESSION_BUSY while an evaluate runs.
   */
  shift(keep: number, drop: number): Promise<void> {
    try {
      const handle = this.#live();
      for (const [name, v] of [['keep', keep], ['drop', drop]] as const)
        if (typeof v !== 'number' || !Number.isInteger(v))
          throw new SparrowError(`shift: ${name} must be an integer`, 'ERR_INVALID_ARG');
      return this.#track(this.#native.sessionShift(handle, keep, drop));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The tokens and KV cache as bytes, for restore() on a session of the same model. */
  save(): Uint8Array {
    return this.#native.sessionSaveState(this.#live());
  }

  /**
   * Replaces the session's tokens and KV cache by a state from save(). Rejects a state of
   * another model or cache type (ERR_STATE_MISMATCH), one with more tokens than this
   * session's contextSize (ERR_CONTEXT_FULL) and damaged bytes (ERR_BAD_STATE).
   */
  restore(state: Uint8Array): void {
    if (!(state instanceof Uint8Array)) throw new SparrowError('restore: state must be a Uint8Array', 'ERR_INVALID_ARG');
    this.#native.sessionRestoreState(this.#live(), state);
  }

  /**
   * Frees the KV cache. An evaluate() in flight stops at its next layer and rejects with
   * ERR_DISPOSED. Safe to call twice.
   */
  dispose(): void {
    if (!this.#handle) return;
    this.#native.sessionDispose(this.#handle);
    this.#handle = undefined;
    this.#onDispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** dispose(), then waits for an evaluate in flight to stop (its memory is freed then). */
  async [Symbol.asyncDispose](): Promise<void> {
    const inflight = this.#inflight;
    this.dispose();
    await inflight;
  }

  /** @internal Resolves when no evaluate is in flight. */
  whenIdle(): Promise<void> {
    return this.#inflight ?? Promise.resolve();
  }
}
