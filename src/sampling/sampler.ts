/**
 * The sampler chain: turns the logits of one position into the next token id.
 *
 * Order (llama.cpp's default chain, and node-llama-cpp's knobs and defaults):
 *   1. user logit processors  (JS functions, in the order given)
 *   2. logitBias              (added to the logits; -Infinity bans a token)
 *   3. penalties              (repeatPenalty, frequencyPenalty, presencePenalty over the last `lastN` tokens)
 *   4. temperature 0          -> greedy: the arg-max, nothing else runs
 *   5. topK -> typicalP -> topP -> minP   (truncations, on the softmax of the logits at temperature 1)
 *   6. temperature            (divides the surviving logits)
 *   7. draw                   (from the softmax of the survivors, with a seeded generator)
 *
 * The logits are changed in place (steps 1-3) and every other buffer is scratch owned by
 * the sampler, allocated once, so a step allocates nothing. Over a 152k vocabulary the
 * truncations avoid full sorts: topK is a partial selection, minP is a linear filter,
 * and topP/typicalP without topK grow a partial selection until it holds enough mass.
 */
import { SparrowError } from '../errors.js';
import { randomSeed, Xoshiro128 } from './prng.js';
import { selectTopK, sortSubsetDesc } from './select.js';
import { intOption, invalidArg, numberOption } from './validate.js';

/** A user step in the chain: edit `logits` (one float per vocabulary entry) in place. */
export type LogitProcessor = (logits: Float32Array, history: readonly number[]) => void;

export interface SamplerOptions {
  /** 0 (the default) picks the most likely token (greedy); higher values flatten the distribution. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 keeps all. Default 40 (used only when temperature > 0). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p; 1 disables. Default 0.95. */
  topP?: number;
  /** Drop tokens less likely than minP times the most likely one; 0 disables. Default 0. */
  minP?: number;
  /** Locally typical sampling (Meister et al.); 1 disables. Default 1. */
  typicalP?: number;
  /** Divides positive logits (multiplies negative ones) of tokens seen in the last `lastN`; 1 disables. */
  repeatPenalty?: number;
  /** How many of the latest tokens the penalties look at; 0 disables the penalties. Default 64. */
  lastN?: number;
  /** Subtracted from a token's logit once per time it appears in the window. Default 0. */
  frequencyPenalty?: number;
  /** Subtracted from a token's logit once if it appears in the window. Default 0. */
  presencePenalty?: number;
  /** Added to the logits of the given token ids; -Infinity bans a token. */
  logitBias?: Record<number, number> | Map<number, number>;
  /** Seed of the random draw: the same seed and input give the same tokens. Default: random. */
  seed?: number;
  /** JS steps run first, on the raw logits. */
  logitProcessors?: LogitProcessor[];
}

export const SAMPLER_OPTION_KEYS = [
  'temperature', 'topK', 'topP', 'minP', 'typicalP', 'repeatPenalty', 'lastN',
  'frequencyPenalty', 'presencePenalty', 'logitBias', 'seed', 'logitProcessors',
] as const;

/** Options after validation and defaults. */
export interface ResolvedSamplerOptions {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  typicalP: number;
  repeatPenalty: number;
  lastN: number;
  frequencyPenalty: number;
  presencePenalty: number;
  logitBias: Array<[number, number]>;
  seed: number;
  logitProcessors: LogitProcessor[];
}

/** Validates every sampler option (the message names the option) and fills in the defaults. */
export function resolveSamplerOptions(o: SamplerOptions, nVocab: number): ResolvedSamplerOptions {
  const bias: Array<[number, number]> = [];
  if (o.logitBias !== undefined) {
    const entries =
      o.logitBias instanceof Map ? [...o.logitBias.entries()]
      : typeof o.logitBias === 'object' && o.logitBias !== null && !Array.isArray(o.logitBias)
        ? Object.entries(o.logitBias).map(([k, v]) => [Number(k), v] as [number, unknown])
        : null;
    if (!entries) throw invalidArg('logitBias', 'an object or a Map from token id to a number', o.logitBias);
    for (const [id, b] of entries) {
      if (!Number.isInteger(id) || id < 0 || id >= nVocab) {
        throw invalidArg('logitBias', `keyed by token ids in [0, ${nVocab})`, id);
      }
      if (typeof b !== 'number' || Number.isNaN(b) || b === Infinity) {
        throw invalidArg(`logitBias[${id}]`, 'a finite number or -Infinity', b);
      }
      bias.push([id, b]);
    }
  }
  const procs = o.logitProcessors ?? [];
  if (!Array.isArray(procs) || procs.some((p) => typeof p !== 'function')) {
    throw invalidArg('logitProcessors', 'an array of functions (logits, history) => void', o.logitProcessors);
  }
  return {
    temperature: numberOption('temperature', o.temperature, 0, 0),
    topK: intOption('topK', o.topK, 40, 0),
    topP: numberOption('topP', o.topP, 0.95, 0, 1),
    minP: numberOption('minP', o.minP, 0, 0, 1),
    typicalP: numberOption('typicalP', o.typicalP, 1, 0, 1),
    repeatPenalty: numberOption('repeatPenalty', o.repeatPenalty, 1, Number.MIN_VALUE),
    lastN: intOption('lastN', o.lastN, 64, 0),
    frequencyPenalty: numberOption('frequencyPenalty', o.frequencyPenalty, 0),
    presencePenalty: numberOption('presencePenalty', o.presencePenalty, 0),
    logitBias: bias,
    seed: o.seed === undefined ? randomSeed() : intOption('seed', o.seed, 0, 0),
    logitProcessors: [...procs],
  };
}

export class Sampler {
  readonly options: ResolvedSamplerOptions;
  private readonly rng: Xoshiro128;

  // Candidates after the truncations so far: all of [0, nVocab) while `full`, else the
  // ids idx[0..m), in descending-logit order when `sorted`.
  private readonly idx: Int32Array;
  private readonly heapKey: Float32Array;
  private keys: Float32Array | null = null;  // typicalP keys, allocated on first use
  private counts: Uint32Array | null = null;  // penalty counts, allocated on first use
  private weights: Float64Array | null = null;  // draw weights, allocated on first use
  private readonly touched: number[] = [];
  private full = true;
  private m = 0;
  private sorted = false;

  constructor(readonly nVocab: number, options: SamplerOptions = {}) {
    if (!Number.isInteger(nVocab) || nVocab < 1) throw invalidArg('nVocab', 'a positive integer', nVocab);
    this.options = resolveSamplerOptions(options, nVocab);
    this.rng = new Xoshiro128(this.options.seed);
    this.idx = new Int32Array(nVocab);
    this.heapKey = new Float32Array(nVocab);
  }

  /**
   * Picks the next token. `logits` (nVocab floats) is modified in place by the processors,
   * the bias and the penalties. `history`: the tokens so far (prompt and generated), for
   * the penalties and the processors.
   */
  sample(logits: Float32Array, history: readonly number[] = []): number {
    const greedyId = this.truncate(logits, history);
    return greedyId >= 0 ? greedyId : this.draw(logits, this.options.temperature);
  }

  /**
   * The distribution `sample` would draw from: the surviving token ids and their
   * probabilities (after temperature). Changes `logits` in place like `sample`, and does
   * not advance the random generator. For tests and for users who want to inspect it.
   */
  distribution(logits: Float32Array, history: readonly number[] = []): { ids: number[]; probs: number[] } {
    const greedyId = this.truncate(logits, history);
    if (greedyId >= 0) return { ids: [greedyId], probs: [1] };
    const { max } = this.softmaxStats(logits);
    const inv = 1 / this.options.temperature;
    const ids: number[] = [];
    const w: number[] = [];
    let total = 0;
    const count = this.full ? this.nVocab : this.m;
    for (let j = 0; j < count; j++) {
      const i = this.full ? j : this.idx[j];
      const e = Math.exp((logits[i] - max) * inv);
      ids.push(i);
      w.push(e);
      total += e;
    }
    return { ids, probs: w.map((e) => e / total) };
  }

  /** Steps 1-5; returns the greedy id when temperature is 0, else -1 with the candidates set. */
  private truncate(logits: Float32Array, history: readonly number[]): number {
    const n = this.nVocab;
    if (!(logits instanceof Float32Array) || logits.length < n) {
      throw new SparrowError(
        `logits must be a Float32Array of ${n} entries (the vocabulary size)`, 'ERR_INVALID_ARG');
    }
    const o = this.options;
    for (const p of o.logitProcessors) p(logits, history);
    for (const [id, b] of o.logitBias) logits[id] += b;
    this.applyPenalties(logits, history);

    if (o.temperature === 0) return greedy(logits, n);

    this.full = true;
    this.m = n;
    this.sorted = false;
    if (o.topK > 0 && o.topK < n) {
      selectTopK(logits, n, o.topK, this.idx, this.heapKey);
      this.full = false;
      this.m = o.topK;
      this.sorted = true;
    }
    if (o.typicalP < 1) this.typical(logits, o.typicalP);
    if (o.topP < 1) this.topP(logits, o.topP);
    if (o.minP > 0) this.minP(logits, o.minP);
    return -1;
  }

  // Penalties, as llama.cpp defines them: for each distinct token t in the window, with c
  // occurrences: logit /= repeat when positive (*= when not), then -= c * freq + presence.
  private applyPenalties(logits: Float32Array, history: readonly number[]): void {
    const o = this.options;
    if (o.lastN === 0 || (o.repeatPenalty === 1 && o.frequencyPenalty === 0 && o.presencePenalty === 0)) return;
    const counts = (this.counts ??= new Uint32Array(this.nVocab));
    const touched = this.touched;
    for (let i = Math.max(0, history.length - o.lastN); i < history.length; i++) {
      const t = history[i];
      if (!(t >= 0 && t < this.nVocab)) continue;  // out-of-vocabulary ids are ignored
      if (counts[t]++ === 0) touched.push(t);
    }
    for (const t of touched) {
      const c = counts[t];
      let l = logits[t];
      if (o.repeatPenalty !== 1) l = l <= 0 ? l * o.repeatPenalty : l / o.repeatPenalty;
      logits[t] = l - c * o.frequencyPenalty - o.presencePenalty;
      counts[t] = 0;
    }
    touched.length = 0;
  }

  /** Max logit and sum of exp(l - max) over the current candidates. */
  private softmaxStats(logits: Float32Array): { max: number; sum: number } {
    let max = -Infinity;
    let sum = 0;
    if (this.full) {
      for (let i = 0; i < this.nVocab; i++) if (logits[i] > max) max = logits[i];
      for (let i = 0; i < this.nVocab; i++) sum += Math.exp(logits[i] - max);
    } else {
      const idx = this.idx;
      for (let j = 0; j < this.m; j++) if (logits[idx[j]] > max) max = logits[idx[j]];
      for (let j = 0; j < this.m; j++) sum += Math.exp(logits[idx[j]] - max);
    }
    if (max === -Infinity) {
      throw new SparrowError('every token is excluded (all logits are -Infinity after bias and processors)', 'ERR_SAMPLING');
    }
    return { max, sum };
  }

  /**
   * Keeps the first candidates, in descending `keys` order, whose probabilities
   * (exp(logit - max) / sum) add up to more than `p` (`>= p` when `inclusive`). Over the
   * full vocabulary it selects the best 64 keys, then 512, ... so a peaked distribution
   * never pays for a full sort.
   */
  private keepMass(logits: Float32Array, keys: Float32Array, p: number, inclusive: boolean, max: number, sum: number): void {
    const idx = this.idx;
    const target = p * sum;  // compare unnormalised mass against p * sum
    if (!this.full) {
      let cum = 0;
      for (let j = 0; j < this.m; j++) {
        cum += Math.exp(logits[idx[j]] - max);
        if (inclusive ? cum >= target : cum > target) {
          this.m = j + 1;
          return;
        }
      }
      return;
    }
    const n = this.nVocab;
    for (let k = Math.min(64, n); ; k = k * 8 > n / 4 ? n : k * 8) {
      selectTopK(keys, n, k, idx, this.heapKey);
      let cum = 0;
      for (let j = 0; j < k; j++) {
        cum += Math.exp(logits[idx[j]] - max);
        if (inclusive ? cum >= target : cum > target) {
          this.full = false;
          this.m = j + 1;
          return;
        }
      }
      if (k === n) {
        // Rounding kept the sum just under p * sum: everything stays, now in order.
        this.full = false;
        this.m = n;
        return;
      }
    }
  }

  // top-p (nucleus): the most likely tokens until their probability reaches p (llama.cpp: `>= p`).
  private topP(logits: Float32Array, p: number): void {
    const { max, sum } = this.softmaxStats(logits);
    if (!this.full && !this.sorted) sortSubsetDesc(logits, this.idx, this.m);
    this.keepMass(logits, logits, p, true, max, sum);
    this.sorted = true;
  }

  // Locally typical: order by |(-log p) - H| (closest to the entropy first), keep until the
  // mass exceeds p (llama.cpp: `> p`). The result is not in logit order.
  private typical(logits: Float32Array, p: number): void {
    const { max, sum } = this.softmaxStats(logits);
    const logSum = Math.log(sum);
    const keys = (this.keys ??= new Float32Array(this.nVocab));
    const idx = this.idx;
    // Entropy H = -sum p log p, with log p = l - max - log(sum).
    let h = 0;
    const full = this.full;
    const count = full ? this.nVocab : this.m;
    for (let j = 0; j < count; j++) {
      const i = full ? j : idx[j];
      const lp = logits[i] - max - logSum;
      if (lp > -Infinity) h -= Math.exp(lp) * lp;
    }
    for (let j = 0; j < count; j++) {
      const i = full ? j : idx[j];
      const lp = logits[i] - max - logSum;
      keys[i] = lp > -Infinity ? -Math.abs(-lp - h) : -Infinity;
    }
    if (!full) sortSubsetDesc(keys, idx, this.m);
    this.keepMass(logits, keys, p, false, max, sum);
    this.sorted = false;
  }

  // min-p: keep logits >= max + ln(minP), i.e. probability >= minP * the top probability.
  private minP(logits: Float32Array, p: number): void {
    const { max } = this.softmaxStats(logits);
    const threshold = max + Math.log(p);
    const idx = this.idx;
    let m = 0;
    if (this.full) {
      for (let i = 0; i < this.nVocab; i++) if (logits[i] >= threshold) idx[m++] = i;
      this.full = false;
      this.sorted = false;
    } else {
      for (let j = 0; j < this.m; j++) if (logits[idx[j]] >= threshold) idx[m++] = idx[j];
    }
    this.m = m;
  }

  // Draw from softmax(logit / temperature) over the candidates: one pass for the max, one
  // for the weights (kept in scratch), then a scan that stops at the drawn token.
  private draw(logits: Float32Array, temperature: number): number {
    const idx = this.idx;
    const full = this.full;
    const count = full ? this.nVocab : this.m;
    let max = -Infinity;
    for (let j = 0; j < count; j++) {
      const l = logits[full ? j : idx[j]];
      if (l > max) max = l;
    }
    if (max === -Infinity) {
      throw new SparrowError('every token is excluded (all logits are -Infinity after bias and processors)', 'ERR_SAMPLING');
    }
    const w = (this.weights ??= new Float64Array(this.nVocab));
    const inv = 1 / temperature;
    let total = 0;
    for (let j = 0; j < count; j++) {
      const e = Math.exp((logits[full ? j : idx[j]] - max) * inv);
      w[j] = e;
      total += e;
    }
    const u = this.rng.next() * total;
    let cum = 0;
    let last = -1;
    for (let j = 0; j < count; j++) {
      if (w[j] === 0) continue;
      cum += w[j];
      last = full ? j : idx[j];
      if (cum > u) return last;
    }
    return last;  // u landed in the rounding gap at the very end
  }
}

/** Arg-max; ties go to the smaller id. */
function greedy(logits: Float32Array, n: number): number {
  let best = 0;
  let bestV = logits[0];
  for (let i = 1; i < n; i++) {
    if (logits[i] > bestV || (bestV !== bestV && logits[i] === logits[i])) {
      bestV = logits[i];
      best = i;
    }
  }
  if (!(bestV > -Infinity)) {
    throw new SparrowError('every token is excluded (all logits are -Infinity after bias and processors)', 'ERR_SAMPLING');
  }
  return best;
}

/** Convenience: a sampler for one vocabulary size. */
export function createSampler(nVocab: number, options?: SamplerOptions): Sampler {
  return new Sampler(nVocab, options);
}
