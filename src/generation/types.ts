/**
 * What generation needs from the model, session and tokenizer modules (written against
 * their interfaces, not their classes), and the public option and result types.
 */
import type { SamplerOptions } from '../sampling/sampler.js';
import type { CompiledGrammar } from '../grammar/index.js';

export type TokenInput = readonly number[] | Int32Array | Uint32Array;

/** The parts of a session that generation uses. */
export interface SessionLike {
  /** Appends tokens to the KV cache; resolves to the logits of the last position. */
  evaluate(tokens: TokenInput, options?: { allLogits?: boolean; signal?: AbortSignal }): Promise<Float32Array>;
  /** Keeps the first n cached tokens (or fewer: a session with sliding-window layers may keep none). */
  truncate(n: number): void;
  /** Drops cached tokens [keep, keep + drop) and moves the later ones down (a native context shift). Optional. */
  shift?(keep: number, drop: number): Promise<void>;
  /** The cached tokens. */
  readonly tokens: ArrayLike<number>;
  readonly contextSize: number;
}

/** An incremental detokenizer: never returns half a UTF-8 character. */
export interface DecoderLike {
  push(id: number): string;
  /** Whatever is still buffered (an incomplete character), at the end. Optional. */
  flush?(): string;
}

/** The parts of a tokenizer that generation uses. */
export interface TokenizerLike {
  tokenize(text: string, options?: { addSpecial?: boolean; parseSpecial?: boolean }): ArrayLike<number>;
  createDecoder(options?: { removeSpecial?: boolean }): DecoderLike;
  /** End-of-generation tokens (EOS, EOT, <|im_end|>, ...). */
  isEog(id: number): boolean;
  /** The bytes of a token (for grammars); the library's Tokenizer has it. */
  piece?(id: number, special: boolean): Uint8Array;
  /** The object that per-vocabulary caches (the grammar's token trie) are kept on. */
  readonly vocabKey?: object;
}

export interface ContextShiftOptions {
  /** Tokens at the start of the context that a shift keeps (the BOS and system prompt). */
  keep?: number;
  /**
   * Evaluate the kept tail again instead of moving it down in the KV cache (default
   * false). Exact (as if the dropped tokens had never been there) but it costs a prompt
   * evaluation of the kept tail at each shift; the default, like llama.cpp's context
   * shift, re-rotates the cached keys in place, and the kept tokens' cached values still
   * carry what they saw of the dropped ones.
   */
  reevaluate?: boolean;
}

export interface GenerateOptions extends SamplerOptions {
  /** Most tokens to generate. Default: no limit but the end of generation and the context. */
  maxTokens?: number;
  /** Stop strings (never part of the output) and stop token ids. */
  stop?: string | number | ReadonlyArray<string | number>;
  /** Aborts the generation within one token; the result then says 'abort'. */
  signal?: AbortSignal;
  /**
   * When the context is full: 'shift' (the default) keeps the first tokens, drops the oldest
   * half of the rest and goes on (see ContextShiftOptions); 'stop' ends with stopReason
   * 'contextFull'.
   */
  contextShift?: 'shift' | 'stop' | ContextShiftOptions;
  /** For string input: add BOS/EOS as the model says (default: when the session is empty). */
  addSpecial?: boolean;
  /** For string input: read special-token texts (`<|im_start|>`) as special tokens. Default false. */
  parseSpecial?: boolean;
  /**
   * Structured output: the output is JSON that validates against this schema (see README,
   * "Structured output"). Generation ends where the JSON ends.
   */
  jsonSchema?: object | boolean;
  /** Structured output: GBNF text (llama.cpp's grammar format), or a grammar from compileGrammar(). */
  grammar?: string | CompiledGrammar;
}

export type StopReason = 'eos' | 'maxTokens' | 'stop' | 'abort' | 'contextFull';

export interface GenerationChunk {
  /** Whole characters only; never any part of a stop string. */
  text: string;
  /** The tokens generated since the previous chunk. */
  tokens: number[];
}

export interface GenerationTimings {
  /** Prompt tokens evaluated (tokens already in the cache are not counted). */
  promptTokens: number;
  promptMs: number;
  generatedTokens: number;
  generationMs: number;
}

export interface GenerationResult {
  /** All generated text, without the stop string. */
  text: string;
  /** All generated tokens (with those that spelled a stop string; without an EOS or stop token). */
  tokens: number[];
  stopReason: StopReason;
  /** The stop string or token id that ended the generation, when stopReason is 'stop'. */
  stop?: string | number;
  timings: GenerationTimings;
}
