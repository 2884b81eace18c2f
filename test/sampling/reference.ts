/**
 * A deliberately naive sampler chain for the tests: arrays of objects, full stable sorts,
 * float64 softmax at every step, following llama.cpp's definitions literally. It shares
 * no code with src/sampling.
 */
export interface RefOptions {
  temperature: number;
  topK?: number;
  topP?: number;
  minP?: number;
  typicalP?: number;
  repeatPenalty?: number;
  lastN?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  logitBias?: Record<number, number>;
}

interface Cand {
  id: number;
  logit: number;
}

function softmax(c: Cand[]): number[] {
  const max = c.reduce((m, x) => (x.logit > m ? x.logit : m), -Infinity);
  const e = c.map((x) => Math.exp(x.logit - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

function sortDesc(c: Cand[]): Cand[] {
  // Array.prototype.sort is stable: equal logits keep ascending-id order.
  return [...c].sort((a, b) => b.logit - a.logit);
}

/** Returns the final distribution as a Map id -> probability. */
export function referenceDistribution(input: Float32Array, history: number[], o: RefOptions): Map<number, number> {
  // Float32 like the real logits, so the in-place rounding is the same.
  const logits = Float32Array.from(input);
  for (const [k, b] of Object.entries(o.logitBias ?? {})) logits[Number(k)] += b;

  const lastN = o.lastN ?? 64;
  const rp = o.repeatPenalty ?? 1;
  const fp = o.frequencyPenalty ?? 0;
  const pp = o.presencePenalty ?? 0;
  if (lastN > 0) {
    const window = history.slice(Math.max(0, history.length - lastN));
    const counts = new Map<number, number>();
    for (const t of window) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const [t, c] of counts) {
      let l = logits[t];
      if (l <= 0) l *= rp;
      else l /= rp;
      logits[t] = l - c * fp - (c > 0 ? pp : 0);
    }
  }

  let cands: Cand[] = Array.from(logits, (logit, id) => ({ id, logit }));
  if (o.temperature === 0) {
    const best = sortDesc(cands)[0];
    return new Map([[best.id, 1]]);
  }
  const topK = o.topK ?? 40;
  if (topK > 0 && topK < cands.length) cands = sortDesc(cands).slice(0, topK);

  const typicalP = o.typicalP ?? 1;
  if (typicalP < 1) {
    const p = softmax(cands);
    let h = 0;
    for (const x of p) if (x > 0) h -= x * Math.log(x);
    const withShift = cands.map((c, i) => ({ c, p: p[i], shift: Math.abs(-Math.log(p[i]) - h) }));
    withShift.sort((a, b) => a.shift - b.shift);
    let cum = 0;
    let keep = withShift.length;
    for (let i = 0; i < withShift.length; i++) {
      cum += withShift[i].p;
      if (cum > typicalP) {
        keep = i + 1;
        break;
      }
    }
    cands = withShift.slice(0, keep).map((x) => x.c);
  }

  const topP = o.topP ?? 0.95;
  if (topP < 1) {
    cands = sortDesc(cands);
    const p = softmax(cands);
    let cum = 0;
    let keep = cands.length;
    for (let i = 0; i < cands.length; i++) {
      cum += p[i];
      if (cum >= topP) {
        keep = i + 1;
        break;
      }
    }
    cands = cands.slice(0, keep);
  }

  const minP = o.minP ?? 0;
  if (minP > 0) {
    const max = cands.reduce((m, c) => (c.logit > m ? c.logit : m), -Infinity);
    cands = cands.filter((c) => c.logit >= max + Math.log(minP));
  }

  const scaled = cands.map((c) => ({ id: c.id, logit: c.logit / o.temperature }));
  const p = softmax(scaled);
  return new Map(scaled.map((c, i) => [c.id, p[i]]));
}

/** Deterministic pseudo-random logits (a simple LCG + Box-Muller, not the code under test). */
export function randomLogits(n: number, seed: number, scale = 3): Float32Array {
  let s = seed >>> 0 || 1;
  const u = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}
