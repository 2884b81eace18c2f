/**
 * Activation sparsity (TEAL-style, training-free): for each decoded token, the inputs of
 * the layer matrix products are zeroed at their smallest-magnitude channels, so that the
 * weights of those channels need not be read. The sites, per layer:
 *
 *   qkv     the input of Q/K/V (attention norm output; wq+wk+wv read it)
 *   o       the input of the attention output projection (wo)
 *   gateup  the input of gate/up (FFN norm output; w_gate+w_up)
 *   down    the input of the down projection (w_down)
 *
 * A level L (0..0.9) is the fraction of the layer matrices' weight bytes skipped per decoded
 * token: sum over layers and sites of frac * bytes = L * sum of bytes, where frac is the
 * share of the site's input channels zeroed and bytes the bytes of the matrices that read
 * it. The output (and embedding) matrix is never skipped and is not in the denominator;
 * neither are the FFN matrices of a mixture-of-experts layer (their sites are never
 * sparsified). An allocation is the fractions, n_layer x 4, layer-major in the order above.
 */
import { SparrowError } from '../errors.js';

export const SITES = ['qkv', 'o', 'gateup', 'down'] as const;
export type SiteName = (typeof SITES)[number];
export const SITE_COUNT = SITES.length;
/** The most any site may be sparsified, and the highest level that may be asked for. */
export const MAX_SITE_FRACTION = 0.95;
export const MAX_LEVEL = 0.9;

/**
 * The robustness prior of the default allocation (no calibration file): how readily each
 * site gives up its channels, per weight byte. The down input takes the most (50% there
 * costs nothing measurable on stories260K), Q/K/V the least; gate/up, although it loses
 * the most quality at a given fraction, holds about half of a layer's bytes, so per byte
 * skipped it sits with the attention output. The ratios are those `sparrow calibrate`'s
 * greedy allocation settles on with stories260K's train text (F32 and Q8_0 alike), and
 * beat both a uniform allocation and a gate/up-averse one there. A site's fraction is
 * c * prior, capped at MAX_SITE_FRACTION, with c solved for the level.
 */
export const DEFAULT_PRIOR: Readonly<Record<SiteName, number>> = { qkv: 0.5, o: 0.65, gateup: 0.6, down: 1 };

/** Checks a sparsity level option: a number in [0, 0.9]. */
export function checkLevel(value: unknown, name = 'sparsity'): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_LEVEL)
    throw new SparrowError(`${name} must be a number from 0 to ${MAX_LEVEL} (got ${String(value)})`, 'ERR_INVALID_ARG');
}

/** The byte fraction an allocation skips (siteBytes: n_layer x 4, as the addon gives it). */
export function byteFraction(siteBytes: ArrayLike<number>, alloc: ArrayLike<number>): number {
  let skipped = 0;
  let total = 0;
  for (let i = 0; i < siteBytes.length; i++) {
    skipped += alloc[i]! * siteBytes[i]!;
    total += siteBytes[i]!;
  }
  return total > 0 ? skipped / total : 0;
}

/** fractions[i] = min(cap, c * weights[i]) for sites with bytes (0 for the others). */
function scaled(siteBytes: ArrayLike<number>, weights: ArrayLike<number>, c: number): Float32Array {
  const out = new Float32Array(siteBytes.length);
  for (let i = 0; i < out.length; i++) out[i] = siteBytes[i]! > 0 ? Math.min(MAX_SITE_FRACTION, c * weights[i]!) : 0;
  return out;
}

/**
 * The allocation min(cap, c * weights) whose byte fraction is `level`, c found by bisection
 * (the byte fraction grows with c). Levels above what the cap allows give the capped allocation.
 */
export function solveScaled(siteBytes: ArrayLike<number>, weights: ArrayLike<number>, level: number): Float32Array {
  if (level <= 0) return new Float32Array(siteBytes.length);
  let lo = 0;
  let hi = 1;
  while (byteFraction(siteBytes, scaled(siteBytes, weights, hi)) < level && hi < 1e6) hi *= 2;
  for (let it = 0; it < 60; it++) {
    const mid = (lo + hi) / 2;
    if (byteFraction(siteBytes, scaled(siteBytes, weights, mid)) < level) lo = mid;
    else hi = mid;
  }
  return scaled(siteBytes, weights, hi);
}

/** The default allocation of `level`: the robustness prior, the same in every layer. */
export function defaultAllocation(siteBytes: ArrayLike<number>, level: number): Float32Array {
  const weights = new Float64Array(siteBytes.length);
  for (let i = 0; i < weights.length; i++) weights[i] = DEFAULT_PRIOR[SITES[i % SITE_COUNT]!];
  return solveScaled(siteBytes, weights, level);
}
