/** Tokenizers built from GGUF metadata, identical to llama.cpp's. */
export { Tokenizer, TokenDecoder, TokenAttr, loadTokenizer, cleanUpSpaces } from './tokenizer.js';
export type { TokenizeOptions, DetokenizeOptions, SpecialTokens, TokenizerKind } from './tokenizer.js';
export { PRE_TOKENIZERS } from './pretokenize.js';
