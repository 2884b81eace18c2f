/** Summaries over repetitions: median and min/max, and ratios between paired runs. */

export interface Summary {
  median: number;
  min: number;
  max: number;
  /** Every repetition, in the order measured. */
  samples: number[];
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function summarize(samples: number[]): Summary {
  const ok = samples.filter((x) => Number.isFinite(x));
  if (ok.length === 0) return { median: NaN, min: NaN, max: NaN, samples: [...samples] };
  return { median: median(ok), min: Math.min(...ok), max: Math.max(...ok), samples: [...samples] };
}

/**
 * The ratio a / b from repetitions measured in pairs: round i of `a` is compared with
 * round i of `b` only (the two engines ran one after the other in the same round), so no
 * ratio mixes figures from different runs. Rounds where either side failed are skipped.
 */
export function pairedRatio(a: number[], b: number[]): Summary | null {
  const r: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i]!, y = b[i]!;
    if (Number.isFinite(x) && Number.isFinite(y) && y !== 0) r.push(x / y);
  }
  return r.length ? summarize(r) : null;
}

/** A deterministic PRNG (mulberry32), for the token ids both engines are fed. */
export function rng(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let x = t;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` token ids drawn uniformly from [lo, hi). `lo` skips the first ids, which are
 * the special tokens (unk, bos, eos) in the vocabularies this bench meets.
 */
export function randomTokens(count: number, nVocab: number, seed: number, lo = 4): number[] {
  const hi = Math.max(lo + 1, nVocab);
  const next = rng(seed);
  return Array.from({ length: count }, () => lo + Math.floor(next() * (hi - lo)));
}
