/**
 * Calibration of the sparsity allocation on real text (`sparrow calibrate`), after TEAL's
 * greedy allocation (arXiv 2408.14690), with the model's own output as the measure:
 *
 * 1. The calibration text is tokenized and cut into chunks (BOS first, as perplexity does);
 *    the dense model's next-token distributions over them are the reference.
 * 2. Starting from no sparsity, each step raises one knob (a site of a layer) by `step`
 *    (a share of its input channels): the knob whose raise costs the least output quality
 *    per weight byte skipped, the cost being the mean KL(dense || sparse) over every
 *    position of the calibration chunks, every token sparsified as a decode step would be.
 *    The search is lazy: a knob's last measured cost ranks it, the best is measured again
 *    and taken when it still beats the others' (older) costs; every `refresh` steps all
 *    knobs are measured anew.
 * 3. Whenever the skipped byte fraction crosses a level of the grid (0.05, 0.10, ..., 0.9),
 *    the allocation there (interpolated between the states before and after the step, as
 *    only one knob moved) is recorded. loadModel interpolates between grid levels.
 *
 * The allocation is per row exact (Backend::sparsify zeroes floor(f * width) entries of
 * each token's input), so no magnitude thresholds or histograms are needed: the fraction
 * is the threshold, taken per token.
 */
import path from 'node:path';
import { SparrowError } from '../errors.js';
import type { Model } from '../model.js';
import { byteFraction, MAX_LEVEL, MAX_SITE_FRACTION, SITE_COUNT, SITES } from './allocation.js';
import { CALIBRATION_FORMAT, CALIBRATION_VERSION, type CalibrationFile } from './plan.js';

export interface CalibrateOptions {
  /** Tokens per chunk (default min(128, the model's context length)). */
  contextSize?: number;
  /** Calibration tokens to use at most (whole chunks; default 512). More measure better and cost proportionally more. */
  maxTokens?: number;
  /** The share of a site's input channels one greedy step adds (default 0.1). */
  step?: number;
  /** Measure every knob anew every this many steps (default 8). */
  refresh?: number;
  /** The text file's name, recorded in the result. */
  textName?: string;
  /** The model file's name, recorded in the result. */
  modelName?: string;
  /** Called after each greedy step with the byte fraction reached and its cost. */
  onProgress?: (level: number, kl: number) => void;
  signal?: AbortSignal;
}

export const CALIBRATION_LEVELS: readonly number[] = Array.from({ length: 19 }, (_, i) => Math.round(i * 5) / 100);

function fail(message: string): never {
  throw new SparrowError(`calibrate: ${message}`, 'ERR_INVALID_ARG');
}

/** log-softmax of each row (vocab wide) of `logits`, as float32. */
function logSoftmaxRows(logits: Float32Array, vocab: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / vocab; r++) {
    const o = r * vocab;
    let max = -Infinity;
    for (let i = 0; i < vocab; i++) if (logits[o + i]! > max) max = logits[o + i]!;
    let sum = 0;
    for (let i = 0; i < vocab; i++) sum += Math.exp(logits[o + i]! - max);
    const lse = max + Math.log(sum);
    for (let i = 0; i < vocab; i++) out[o + i] = logits[o + i]! - lse;
  }
  return out;
}

/** Sum over rows of KL(p || q), p given as log-probabilities, q as logits. */
function klSum(lp: Float32Array, logits: Float32Array, vocab: number): number {
  let total = 0;
  for (let r = 0; r < logits.length / vocab; r++) {
    const o = r * vocab;
    let max = -Infinity;
    for (let i = 0; i < vocab; i++) if (logits[o + i]! > max) max = logits[o + i]!;
    let sum = 0;
    for (let i = 0; i < vocab; i++) sum += Math.exp(logits[o + i]! - max);
    const lse = max + Math.log(sum);
    let kl = 0;
    for (let i = 0; i < vocab; i++) {
      const l = lp[o + i]!;
      kl += Math.exp(l) * (l - (logits[o + i]! - lse));
    }
    total += Math.max(0, kl);
  }
  return total;
}

/** The greedy allocation of `model` on `text`, as the calibration file that records it. */
export async function calibrate(model: Model, text: string, options: CalibrateOptions = {}): Promise<CalibrationFile> {
  if (typeof text !== 'string') fail('text must be a string');
  const ctxMax = model.info.contextLength;
  const n = options.contextSize ?? Math.min(128, ctxMax);
  if (!Number.isInteger(n) || n < 4 || n > ctxMax) fail(`contextSize must be an integer from 4 to ${ctxMax} (got ${String(n)})`);
  const maxTokens = options.maxTokens ?? 512;
  if (!Number.isInteger(maxTokens) || maxTokens < n) fail(`maxTokens must be an integer of at least one chunk (${n})`);
  const step = options.step ?? 0.1;
  if (typeof step !== 'number' || !(step > 0 && step <= 0.5)) fail(`step must be a number in (0, 0.5] (got ${String(step)})`);
  const refresh = options.refresh ?? 8;
  if (!Number.isInteger(refresh) || refresh < 1) fail(`refresh must be a positive integer (got ${String(refresh)})`);

  const vocab = model.info.vocabSize;
  const bos = model.tokenizer.special.bos;
  const tokens = model.tokenizer.tokenize(text, { addSpecial: true });
  const nChunks = Math.min(Math.floor(tokens.length / n), Math.floor(maxTokens / n));
  if (nChunks < 1) fail(`the text makes ${tokens.length} tokens: fewer than one chunk of ${n}`);
  const chunks: number[][] = [];
  for (let c = 0; c < nChunks; c++) {
    const chunk = tokens.slice(c * n, (c + 1) * n);
    if (bos !== null && model.tokenizer.addBos) chunk[0] = bos;
    chunks.push(chunk);
  }
  const positions = nChunks * n;

  const siteBytes = model.sparsitySiteBytes;
  const knobs = siteBytes.length;
  const zero = new Float32Array(knobs);
  const signal = options.signal;

  // The dense reference.
  const ref: Float32Array[] = [];
  {
    const s = model.createSessionWithAllocation(zero, { contextSize: n });
    try {
      for (const chunk of chunks) {
        s.reset();
        ref.push(logSoftmaxRows(await s.evaluate(chunk, { allLogits: true, signal }), vocab));
      }
    } finally {
      s.dispose();
    }
  }

  let evaluations = 0;
  /** Mean KL(dense || sparse) per position under an allocation. */
  const cost = async (alloc: Float32Array): Promise<number> => {
    evaluations++;
    const s = model.createSessionWithAllocation(alloc, { contextSize: n, sparsePrompt: true });
    try {
      let total = 0;
      for (let c = 0; c < chunks.length; c++) {
        if (signal?.aborted) throw new SparrowError('calibrate: aborted', 'ERR_ABORTED');
        s.reset();
        total += klSum(ref[c]!, await s.evaluate(chunks[c]!, { allLogits: true, signal }), vocab);
      }
      return total / positions;
    } finally {
      s.dispose();
    }
  };

  const levels = CALIBRATION_LEVELS.filter((l) => l <= MAX_LEVEL + 1e-9);
  const out = { levels: [0], allocations: [Array.from(zero)], kl: [0] };
  let next = 1; // the grid level to record next
  let cur: Float32Array = new Float32Array(knobs);
  let curFrac = 0;
  let curKl = 0;
  const raised = (j: number): Float32Array => {
    const a = cur.slice();
    a[j] = Math.min(MAX_SITE_FRACTION, a[j]! + step);
    return a;
  };
  // Last measured (cost, allocation KL) per knob, and the step it was measured at.
  const known = new Map<number, { score: number; kl: number; at: number }>();
  const measure = async (j: number, at: number) => {
    const a = raised(j);
    const kl = await cost(a);
    const gain = byteFraction(siteBytes, a) - curFrac;
    const m = { score: (kl - curKl) / gain, kl, at };
    known.set(j, m);
    return m;
  };

  for (let it = 0; next < levels.length; it++) {
    const open: number[] = [];
    for (let j = 0; j < knobs; j++) if (siteBytes[j]! > 0 && cur[j]! < MAX_SITE_FRACTION - 1e-7) open.push(j);
    if (open.length === 0) break;
    if (it % refresh === 0) for (const j of open) await measure(j, it);
    // Lazy greedy: re-measure the best-ranked knob until one measured now stays the best.
    let pick = -1;
    for (;;) {
      open.sort((a, b) => (known.get(a)?.score ?? -Infinity) - (known.get(b)?.score ?? -Infinity));
      const best = open[0]!;
      const m = known.get(best);
      if (m && m.at === it) {
        pick = best;
        break;
      }
      await measure(best, it);
    }
    const prev = cur;
    const prevFrac = curFrac;
    const prevKl = curKl;
    cur = raised(pick);
    curFrac = byteFraction(siteBytes, cur);
    curKl = known.get(pick)!.kl;
    known.delete(pick); // its next raise has a new cost
    for (; next < levels.length && levels[next]! <= curFrac + 1e-12; next++) {
      const g = levels[next]!;
      const t = (g - prevFrac) / (curFrac - prevFrac);
      out.levels.push(g);
      out.allocations.push(Array.from(prev, (x, j) => Math.min(MAX_SITE_FRACTION, x + t * (cur[j]! - x))));
      out.kl.push(prevKl + t * (curKl - prevKl));
    }
    options.onProgress?.(curFrac, curKl);
  }

  return {
    format: CALIBRATION_FORMAT,
    version: CALIBRATION_VERSION,
    model: {
      fingerprint: model.fingerprint,
      file: options.modelName ? path.basename(options.modelName) : '',
      layers: knobs / SITE_COUNT,
      sites: [...SITES],
    },
    calibration: {
      text: options.textName ? path.basename(options.textName) : '',
      tokens: positions,
      contextSize: n,
      objective: 'mean KL(dense || sparse) per position, every token sparsified',
      step,
      evaluations,
    },
    levels: out.levels,
    allocations: out.allocations.map((a) => a.map((x) => Math.round(x * 1e6) / 1e6)),
    kl: out.kl,
  };
}
