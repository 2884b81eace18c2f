/** sparrow-llm: local LLM inference for Node.js. */
export { SparrowError, GGUFError } from './errors.js';
export { inspectGGUF } from './gguf.js';
export type { GGUFInfo, GGUFTensorInfo, GGUFMetadataValue } from './gguf.js';
export { systemInfo, setIsa } from './system.js';
export type { SystemInfo, Isa, GpuInfo } from './system.js';
export { Tokenizer, TokenDecoder, TokenAttr, loadTokenizer } from './tokenizer/index.js';
export type { TokenizeOptions, DetokenizeOptions, SpecialTokens, TokenizerKind } from './tokenizer/index.js';
export { applyChatTemplate, detectChatFormat, BUILTIN_TEMPLATES } from './templates/index.js';
export type { ChatMessage, ChatContentPart, ChatTool, ChatFormat, ApplyChatTemplateOptions, ChatTemplateSource } from './templates/index.js';
export { loadModel, Model } from './model.js';
export type { LoadModelOptions, ModelInfo, ModelStats, CreateChatOptions, SparsityInfo } from './model.js';
export { Session } from './session.js';
export type { SessionOptions, EvaluateOptions, Tokens } from './session.js';
export { Sampler, createSampler } from './sampling/index.js';
export type { SamplerOptions, LogitProcessor } from './sampling/index.js';
export { Generation, StopMatcher } from './generation/index.js';
export type {
  GenerateOptions, GenerationChunk, GenerationResult, GenerationTimings, StopReason, ContextShiftOptions,
} from './generation/index.js';
export { Chat } from './chat/index.js';
export { compileGrammar, CompiledGrammar, GrammarMatcher, schemaToGbnf, toolCallGrammar, toolCallTrigger } from './grammar/index.js';
export type { GrammarSpec, VocabSource, ToolSpec, ToolCallGrammarOptions } from './grammar/index.js';
export type { ChatOptions } from './chat/index.js';
export { perplexity } from './quality/perplexity.js';
export type { PerplexityOptions, PerplexityResult, KLDivergenceStats } from './quality/perplexity.js';
export { parseToolCalls, detectToolCallFormat } from './templates/tool-calls.js';
export type { ToolCallFormat, ParsedToolCall, ParsedToolCalls } from './templates/tool-calls.js';
export { createServer } from './server/index.js';
export type { ServerOptions, SparrowServer } from './server/index.js';
export type { EmbedOptions, EmbeddingPooling } from './embeddings/embed.js';
