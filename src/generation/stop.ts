/**
 * Stop strings across tokens. Text arrives piece by piece (one token's worth at a time);
 * the matcher emits only text that can no longer be part of a stop string: when the
 * end of the text so far could be the start of a stop string, that end is held back
 * until the next piece decides. A stop string therefore never leaks into the output,
 * even when several tokens spell it.
 */
export class StopMatcher {
  private held = '';
  private readonly stops: string[];

  constructor(stops: readonly string[]) {
    this.stops = [...stops];
  }

  /**
   * Adds a piece of text. Returns the text that is safe to emit now, and the stop string
   * when one is complete (then `emit` is the text before it and the rest is dropped).
   */
  push(piece: string): { emit: string; matched: string | null } {
    if (this.stops.length === 0) return { emit: piece, matched: null };
    const text = this.held + piece;
    // The stop that completes first in the character stream wins (so the result does not
    // depend on how the text was split into pieces); at the same end, the longest.
    let at = -1;
    let end = Infinity;
    let matched: string | null = null;
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (i + s.length < end || (i + s.length === end && i < at))) {
        at = i;
        end = i + s.length;
        matched = s;
      }
    }
    if (matched !== null) {
      this.held = '';
      return { emit: text.slice(0, at), matched };
    }
    const hold = this.longestPrefixSuffix(text);
    this.held = text.slice(text.length - hold);
    return { emit: text.slice(0, text.length - hold), matched: null };
  }

  /** The text held back, at the end of the generation (no stop string completed it). */
  flush(): string {
    const t = this.held;
    this.held = '';
    return t;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
  private longestPrefixSuffix(text: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let len = Math.min(s.length - 1, text.length); len > best; len--) {
        if (text.endsWith(s.slice(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}
