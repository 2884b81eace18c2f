// Shared by the grammar tests.
import type { Recognizer } from '../../src/grammar/engine.js';

/** Random walk: generates a complete sentence of the grammar byte by byte (DFA states). */
export function randomSentence(r: Recognizer, rand: () => number, maxBytes = 600): Uint8Array | null {
  const out: number[] = [];
  let s = r.initial;
  for (let i = 0; i < maxBytes * 2; i++) {
    const live: number[] = [];
    for (let b = 0; b < 256; b++) if (r.next(s, b) >= 0) live.push(b);
    const canEnd = r.accepting(s);
    if (live.length === 0) return canEnd ? Uint8Array.from(out) : null;
    // Past the budget, prefer ending: take the byte whose state is closest to accepting.
    if (canEnd && (out.length > maxBytes || rand() < 0.05)) return Uint8Array.from(out);
    // Favour structure over long runs: pick among printable ASCII mostly.
    const ascii = live.filter((b) => b >= 0x20 && b < 0x7f);
    const pool = ascii.length > 0 && rand() < 0.97 ? ascii : live;
    let b = pool[Math.floor(rand() * pool.length)]!;
    if (out.length > maxBytes) {
      // Head for the end: closing brackets, quotes and digits first.
      const closers = live.filter((x) => x === 0x7d || x === 0x5d || x === 0x22);
      if (closers.length) b = closers[Math.floor(rand() * closers.length)]!;
    }
    out.push(b);
    s = r.next(s, b);
  }
  return null;
}

export function mulberry(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

