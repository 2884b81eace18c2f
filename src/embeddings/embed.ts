/**
 * Text embeddings from a generative model: each text is evaluated on a session that returns
 * the final hidden state after the output norm (what llama.cpp returns as embeddings), and
 * the rows of its tokens are pooled into one vector:
 * - 'mean' (default): the average over the text's tokens (BOS included, as llama.cpp);
 * - 'last': the last token's row (what llama.cpp returns with pooling "none" or "last");
 * - 'cls': the first token's row.
 * `normalize` (default true) scales each vector to unit Euclidean length.
 *
 * Texts are evaluated on a few sessions at once; the model's scheduler runs their prompts
 * one batch at a time, so the event loop and other sessions keep going.
 */
import { SparrowError } from '../errors.js';
import type { Model } from '../model.js';
import type { Session } from '../session.js';

export type EmbeddingPooling = 'mean' | 'last' | 'cls';

export interface EmbedOptions {
  /** How the rows of a text's tokens become one vector (default 'mean'). */
  pooling?: EmbeddingPooling;
  /** Scale every vector to unit length (default true). */
  normalize?: boolean;
  /** Stops the remaining evaluations; rejects with ERR_ABORTED. */
  signal?: AbortSignal;
  /**
   * Attention with llama.cpp's flash-attention numerics (see SessionOptions.flashAttention):
   * node-llama-cpp's embedding contexts compute with it, so this reproduces their vectors.
   */
  flashAttention?: boolean;
}

function fail(message: string): never {
  throw new SparrowError(`embed: ${message}`, 'ERR_INVALID_ARG');
}

/** Pools the rows (n x width, row-major) into one vector. */
export function pool(rows: Float32Array, n: number, width: number, pooling: EmbeddingPooling, normalize: boolean): Float32Array {
  let out: Float32Array;
  if (pooling === 'mean') {
    const acc = new Float64Array(width);
    for (let t = 0; t < n; t++) for (let i = 0; i < width; i++) acc[i]! += rows[t * width + i]!;
    out = Float32Array.from(acc, (v) => v / n);
  } else {
    const t = pooling === 'last' ? n - 1 : 0;
    out = rows.slice(t * width, (t + 1) * width);
  }
  if (normalize) {
    let sq = 0;
    for (const v of out) sq += v * v;
    const norm = Math.sqrt(sq);
    if (norm > 0) for (let i = 0; i < width; i++) out[i]! /= norm;
  }
  return out;
}

/** model.embed(): one Float32Array of model.info.embeddingLength floats per text. */
export async function embed(model: Model, texts: readonly string[], options: EmbedOptions = {}): Promise<Float32Array[]> {
  if (!Array.isArray(texts)) fail('texts must be an array of strings');
  if (options === null || typeof options !== 'object') fail('options must be an object');
  const pooling = options.pooling ?? 'mean';
  if (pooling !== 'mean' && pooling !== 'last' && pooling !== 'cls') fail(`pooling must be 'mean', 'last' or 'cls' (got ${String(pooling)})`);
  const normalize = options.normalize ?? true;
  if (typeof normalize !== 'boolean') fail(`normalize must be a boolean (got ${String(normalize)})`);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) fail('signal must be an AbortSignal');
  const flashAttention = options.flashAttention ?? false;
  if (typeof flashAttention !== 'boolean') fail(`flashAttention must be a boolean (got ${String(flashAttention)})`);
  const ids = texts.map((t, i) => {
    if (typeof t !== 'string') fail(`texts[${i}] must be a string (got ${typeof t})`);
    return model.tokenizer.tokenize(t, { addSpecial: true });
  });
  const longest = ids.reduce((m, x) => Math.max(m, x.length), 0);
  if (ids.some((x) => x.length === 0)) fail('a text made no tokens (the model adds no BOS and the text is empty)');
  if (longest > model.info.contextLength)
    fail(`a text is ${longest} tokens, more than the model's context length ${model.info.contextLength}`);

  const width = model.info.embeddingLength;
  const out: Float32Array[] = new Array(texts.length);
  const sessions: Session[] = [];
  try {
    // A few sessions, each taking the next text: one prompt evaluates while the next waits.
    const workers = Math.min(texts.length, 2);
    for (let w = 0; w < workers; w++) sessions.push(model.createSession({ contextSize: Math.max(1, longest), embeddings: true, flashAttention }));
    let next = 0;
    await Promise.all(
      sessions.map(async (session) => {
        while (next < texts.length) {
          const i = next++;
          if (options.signal?.aborted) throw new SparrowError('embed: aborted', 'ERR_ABORTED');
          session.reset();
          const rows = await session.evaluate(ids[i]!, { allLogits: true, signal: options.signal });
          out[i] = pool(rows, ids[i]!.length, width, pooling, normalize);
        }
      }),
    );
    return out;
  } finally {
    for (const s of sessions) s.dispose();
  }
}
