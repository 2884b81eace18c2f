/** sparrow-llm: local LLM inference for Node.js. */
export { SparrowError, GGUFError } from './errors.js';
export { inspectGGUF } from './gguf.js';
export type { GGUFInfo, GGUFTensorInfo, GGUFMetadataValue } from './gguf.js';
export { systemInfo, setIsa } from './system.js';
export type { SystemInfo, Isa } from './system.js';
