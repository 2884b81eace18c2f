/**
 * Quality measurements the way llama.cpp's `llama-perplexity` makes them, so figures
 * compare across engines and settings:
 *
 * - Perplexity: the text is tokenized once (BOS first, as the file asks) and cut into
 *   chunks of `contextSize` tokens; each chunk is evaluated on an empty cache with its
 *   first token replaced by BOS, and only the second half of its positions is scored (each
 *   of those predictions sees at least half a context). PPL = exp(mean negative log-likelihood).
 * - KL divergence against a base run (another file, or other settings of the same one):
 *   per scored position, KL(base || this) of the full next-token distributions, and
 *   whether both put the same token first; reported as mean, percentiles and top-1 agreement.
 *
 * The uncertainties are llama.cpp's: the standard error of the mean NLL, carried to the
 * perplexity by exp's derivative.
 */
import { SparrowError } from '../errors.js';
import type { Model } from '../model.js';
import type { Session, SessionOptions } from '../session.js';

export interface PerplexityOptions {
  /** Tokens per chunk: an integer from 4 to the model's context length. Default min(512, context length). */
  contextSize?: number;
  /** Score at most this many chunks (default: every whole chunk of the text). */
  maxChunks?: number;
  /** Measure KL divergence against this model (the same vocabulary), e.g. the F32 file or the same file with other settings. */
  base?: Model;
  /**
   * Options of the sessions the measurement creates (for the base model too, with
   * `baseSessionOptions` overriding). Activation sparsity: `{ sparsity, sparsePrompt: true }`
   * sparsifies every token of each chunk, so each scored prediction is what a sparse decode
   * step computes (without sparsePrompt the chunks, being prompts, stay dense); with
   * `base: model, baseSessionOptions: { sparsity: 0 }` the KL is against the dense run.
   */
  sessionOptions?: Omit<SessionOptions, 'contextSize'>;
  baseSessionOptions?: Omit<SessionOptions, 'contextSize'>;
  /** Called after each chunk with (chunks done, chunks in all). */
  onProgress?: (done: number, total: number) => void;
  /** Stops between two chunks (and inside an evaluation) with ERR_ABORTED. */
  signal?: AbortSignal;
}

export interface KLDivergenceStats {
  /** Mean KL(base || model) in nats, with its standard error. */
  mean: number;
  uncertainty: number;
  median: number;
  p99: number;
  max: number;
  /** Fraction of scored positions where both put the same token first. */
  top1Agreement: number;
  /** The base model's perplexity on the same positions. */
  basePerplexity: number;
}

export interface PerplexityResult {
  perplexity: number;
  /** Standard error of the perplexity estimate. */
  uncertainty: number;
  /** Mean negative log-likelihood (nats per token). */
  meanNll: number;
  contextSize: number;
  chunks: number;
  /** Predictions scored: chunks * (contextSize - 1 - contextSize / 2). */
  tokensScored: number;
  /** Tokens the whole text made. */
  textTokens: number;
  /** Perplexity after each chunk (running value), as llama-perplexity prints it. */
  running: number[];
  kl?: KLDivergenceStats;
}

function fail(message: string): never {
  throw new SparrowError(`perplexity: ${message}`, 'ERR_INVALID_ARG');
}

/** log-softmax of one row of logits into `out` (float64 for accurate sums over large vocabularies). */
function logSoftmax(row: Float32Array, out: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > max) max = row[i]!;
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i]! - max);
  const lse = max + Math.log(sum);
  for (let i = 0; i < row.length; i++) out[i] = row[i]! - lse;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Mean and standard error of the mean, as llama.cpp reports them. */
function meanAndError(sum: number, sum2: number, n: number): [number, number] {
  const mean = sum / n;
  const variance = n > 1 ? Math.max(0, sum2 / n - mean * mean) : 0;
  return [mean, n > 1 ? Math.sqrt(variance / (n - 1)) : 0];
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/** Perplexity of `model` on `text` (and KL divergence against `options.base`), chunked as llama-perplexity does. */
export async function perplexity(model: Model, text: string, options: PerplexityOptions = {}): Promise<PerplexityResult> {
  if (typeof text !== 'string') fail('text must be a string');
  if (options === null || typeof options !== 'object') fail('options must be an object');
  const ctxMax = model.info.contextLength;
  const n = options.contextSize ?? Math.min(512, ctxMax);
  if (!Number.isInteger(n) || n < 4 || n > ctxMax) fail(`contextSize must be an integer from 4 to ${ctxMax} (got ${String(n)})`);
  if (options.maxChunks !== undefined && (!Number.isInteger(options.maxChunks) || options.maxChunks < 1))
    fail(`maxChunks must be a positive integer (got ${String(options.maxChunks)})`);
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') fail('onProgress must be a function');
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) fail('signal must be an AbortSignal');
  const base = options.base;
  const vocab = model.info.vocabSize;
  if (base !== undefined && base.info?.vocabSize !== vocab)
    fail(`the base model's vocabulary (${String(base.info?.vocabSize)} tokens) differs from the model's (${vocab})`);

  const bos = model.tokenizer.special.bos;
  const tokens = model.tokenizer.tokenize(text, { addSpecial: true });
  let chunks = Math.floor(tokens.length / n);
  if (options.maxChunks !== undefined) chunks = Math.min(chunks, options.maxChunks);
  if (chunks < 1) fail(`the text makes ${tokens.length} tokens: fewer than one chunk of ${n}`);

  const first = Math.floor(n / 2);
  const perChunk = n - 1 - first;
  const sessions: Session[] = [];
  try {
    const session = model.createSession({ ...options.sessionOptions, contextSize: n });
    sessions.push(session);
    const baseSession = base?.createSession({ ...options.sessionOptions, ...options.baseSessionOptions, contextSize: n });
    if (baseSession) sessions.push(baseSession);

    let nll = 0;
    let nll2 = 0;
    let baseNll = 0;
    let kl = 0;
    let kl2 = 0;
    let sameTop = 0;
    const klValues = base ? new Float64Array(chunks * perChunk) : undefined;
    const running: number[] = [];
    const lp = new Float64Array(vocab);
    const blp = new Float64Array(vocab);
    let scored = 0;
    for (let c = 0; c < chunks; c++) {
      if (options.signal?.aborted) throw new SparrowError('perplexity: aborted', 'ERR_ABORTED');
      const chunk = tokens.slice(c * n, (c + 1) * n);
      if (bos !== null && model.tokenizer.addBos) chunk[0] = bos;
      session.reset();
      baseSession?.reset();
      const evalOpts = { allLogits: true, signal: options.signal };
      const [logits, baseLogits] = await Promise.all([
        session.evaluate(chunk, evalOpts),
        baseSession?.evaluate(chunk, evalOpts),
      ]);
      for (let j = first; j < n - 1; j++) {
        const row = logits.subarray(j * vocab, (j + 1) * vocab);
        logSoftmax(row, lp);
        const target = chunk[j + 1]!;
        const v = -lp[target]!;
        nll += v;
        nll2 += v * v;
        if (baseLogits && klValues) {
          const brow = baseLogits.subarray(j * vocab, (j + 1) * vocab);
          logSoftmax(brow, blp);
          baseNll += -blp[target]!;
          let d = 0;
          for (let i = 0; i < vocab; i++) {
            const b = blp[i]!;
            if (b > -700) d += Math.exp(b) * (b - lp[i]!);
          }
          d = Math.max(0, d);
          klValues[scored] = d;
          kl += d;
          kl2 += d * d;
          if (argmax(row) === argmax(brow)) sameTop++;
        }
        scored++;
      }
      running.push(Math.exp(nll / scored));
      options.onProgress?.(c + 1, chunks);
    }
    const [meanNll, nllErr] = meanAndError(nll, nll2, scored);
    const ppl = Math.exp(meanNll);
    const result: PerplexityResult = {
      perplexity: ppl,
      uncertainty: ppl * nllErr,
      meanNll,
      contextSize: n,
      chunks,
      tokensScored: scored,
      textTokens: tokens.length,
      running,
    };
    if (klValues) {
      const [mean, err] = meanAndError(kl, kl2, scored);
      const sorted = klValues.slice(0, scored).sort();
      result.kl = {
        mean,
        uncertainty: err,
        median: percentile(sorted, 0.5),
        p99: percentile(sorted, 0.99),
        max: sorted[sorted.length - 1]!,
        top1Agreement: sameTop / scored,
        basePerplexity: Math.exp(baseNll / scored),
      };
    }
    return result;
  } finally {
    for (const s of sessions) s.dispose();
  }
}
