/** The OpenAI-compatible HTTP server. */
export { createServer } from './server.js';
export type { ServerOptions, SparrowServer, EmbeddingModel } from './server.js';
