import { describe, expect, it } from 'vitest';
import { StopMatcher } from '../../src/generation/stop.js';

/** Feeds pieces; returns the emitted text and the stop string, if any. */
function feed(stops: string[], pieces: string[]): { out: string; matched: string | null; emitted: string[] } {
  const m = new StopMatcher(stops);
  let out = '';
  const emitted: string[] = [];
  for (const p of pieces) {
    const r = m.push(p);
    out += r.emit;
    emitted.push(r.emit);
    if (r.matched !== null) return { out, matched: r.matched, emitted };
  }
  const tail = m.flush();
  return { out: out + tail, matched: null, emitted: [...emitted, tail] };
}

/**
 * Plain reference: read the whole text one character at a time and stop at the first
 * position where a stop string ends (the longest if several end there).
 */
function reference(stops: string[], text: string): { out: string; matched: string | null } {
  for (let end = 1; end <= text.length; end++) {
    const hits = stops.filter((s) => text.slice(0, end).endsWith(s)).sort((a, b) => b.length - a.length);
    if (hits.length > 0) return { out: text.slice(0, end - hits[0].length), matched: hits[0] };
  }
  return { out: text, matched: null };
}

describe('StopMatcher', () => {
  it('a stop string split over several pieces never leaks', () => {
    const r = feed(['\n\nUser:'], ['Hello', ' there', '\n', '\nUs', 'er', ':', ' more']);
    expect(r.out).toBe('Hello there');
    expect(r.matched).toBe('\n\nUser:');
    for (const e of r.emitted) expect(e).not.toContain('\n');
  });
  it('a false start is released once it cannot match', () => {
    const r = feed(['STOP'], ['ST', 'AR', ' wars ', 'STO', 'P!']);
    expect(r.out).toBe('STAR wars ');
    expect(r.emitted[0]).toBe('');  // "ST" held back
    expect(r.matched).toBe('STOP');
  });
  it('held text is flushed at the end when no stop completes', () => {
    expect(feed(['END'], ['the E', 'N'])).toMatchObject({ out: 'the EN', matched: null });
  });
  it('overlapping candidates: the first to complete wins, however the text is split', () => {
    expect(feed(['abcd', 'bc'], ['a', 'b', 'c', 'd'])).toMatchObject({ out: 'a', matched: 'bc' });
    expect(feed(['abcd', 'bc'], ['abcd'])).toMatchObject({ out: 'a', matched: 'bc' });
  });
  it('no stops: everything passes at once', () => {
    expect(feed([], ['a', 'b']).emitted).toEqual(['a', 'b', '']);
  });
  it('random texts and splits agree with cutting the whole text', () => {
    let s = 12345;
    const rnd = (n: number) => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return (s >>> 8) % n;
    };
    const alphabet = 'ab\nxé';
    for (let trial = 0; trial < 2000; trial++) {
      const text = Array.from({ length: 1 + rnd(30) }, () => alphabet[rnd(alphabet.length)]).join('');
      const stops = Array.from({ length: 1 + rnd(3) }, () =>
        Array.from({ length: 1 + rnd(4) }, () => alphabet[rnd(alphabet.length)]).join(''));
      const pieces: string[] = [];
      for (let i = 0; i < text.length; ) {
        const len = 1 + rnd(4);
        pieces.push(text.slice(i, i + len));
        i += len;
      }
      const got = feed(stops, pieces);
      const want = reference(stops, text);
      expect({ out: got.out, matched: got.matched }, JSON.stringify({ text, stops, pieces })).toEqual(want);
    }
  });
});
