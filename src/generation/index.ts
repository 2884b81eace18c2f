/** Generation: the streaming loop, stop strings, context shift. */
export { generate, complete, syncSession, resolveGenerateOptions, DEFAULT_KEEP } from './generate.js';
export type { GenerationTarget } from './generate.js';
export { Generation } from './stream.js';
export { StopMatcher } from './stop.js';
export { generationTokenizer } from './tokenizer-adapter.js';
export type {
  GenerateOptions, GenerationChunk, GenerationResult, GenerationTimings, StopReason, ContextShiftOptions,
  SessionLike, TokenizerLike, DecoderLike, TokenInput,
} from './types.js';
