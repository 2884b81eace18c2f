// The token mask (trie walk, DFA, subtree shortcuts, per-state and per-count sharing) against
// the plain reference (referenceAllowed: the stack recognizer run on each token's bytes) on
// every schema of the JSONSchemaBench-style corpus, and on a large synthetic vocabulary
// (152k tokens, Qwen 2's size) built to hit the shortcuts' edge cases: JSON punctuation
// inside tokens, 2/3/4-byte characters, characters cut at the token's end, stray
// continuation and invalid bytes, runs of one byte longer than the trie's depth.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileGrammar, lowerGrammar, parseGbnf, Recognizer, type VocabSource } from '../../src/grammar/index.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { classRuns, vocabTrie } from '../../src/grammar/engine.js';
import { mulberry, randomSentence } from './helpers.js';
import { SCHEMAS } from './corpus.js';

const VOCAB = path.resolve('../shared/vocab');

/** Compares mask() with referenceAllowed() at `states` random points of random sentences; returns the points checked. */
function check(vocab: VocabSource, spec: Parameters<typeof compileGrammar>[1], states: number, seed: number, label: string): number {
  const g = compileGrammar(vocab, spec);
  const r = g.recognizer;
  const rand = mulberry(seed);
  let checked = 0;
  for (let k = 0; k < states * 3 && checked < states; k++) {
    const sentence = randomSentence(r, rand, 160);
    if (!sentence) continue;
    const prefix = sentence.slice(0, Math.floor(rand() * (sentence.length + 1)));
    const state = r.run(r.initial, prefix);
    expect(state).toBeGreaterThanOrEqual(0);
    const mask = r.mask(state, g.trie);
    const fast = new Uint8Array(vocab.vocabSize);
    let count = 0;
    for (let i = 0; i < mask.ranges.length; i += 2) {
      for (let p = mask.ranges[i]!; p < mask.ranges[i + 1]!; p++) fast[g.trie.order[p]!] = 1;
      count += mask.ranges[i + 1]! - mask.ranges[i]!;
    }
    expect(count).toBe(mask.count);
    for (const id of mask.long) fast[id] = 1;
    const ref = r.referenceAllowed(prefix, g.trie.pieces);
    for (let id = 0; id < vocab.vocabSize; id++) {
      if (fast[id] !== ref.allowed[id]) {
        const text = JSON.stringify(Buffer.from(g.trie.pieces[id]!).toString('latin1'));
        throw new Error(`${label}: after ${JSON.stringify(new TextDecoder().decode(prefix))}: token ${id} ${text}: mask ${fast[id]}, reference ${ref.allowed[id]}`);
      }
    }
    expect(mask.eog).toBe(ref.accepting);
    checked++;
  }
  return checked;
}

/** A deterministic synthetic byte-level vocabulary of `n` distinct tokens (plus one end-of-generation token). */
function syntheticVocab(n: number, seed: number): VocabSource {
  const rand = mulberry(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const enc = new TextEncoder();
  const lower = 'abcdefghijklmnopqrstuvwxyz';
  const upper = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  const punct = ['"', '{', '}', '[', ']', ',', ':', '.', '-', '_', '\\', '/', '@', '\n', '\t', '+', '#', "'"];
  const multi = ['é', 'ü', 'ß', 'ñ', 'ø', 'Ж', 'ω', '€', '中', '文', '字', '—', '…', '😀', '🚀', '𝄞'];
  const seen = new Set<string>();
  const pieces: Uint8Array[] = [];
  const add = (bytes: Uint8Array) => {
    const key = Buffer.from(bytes).toString('latin1');
    if (bytes.length === 0 || seen.has(key)) return;
    seen.add(key);
    pieces.push(bytes);
  };
  for (let b = 0; b < 256; b++) add(Uint8Array.of(b));
  // Common JSON glue, as real BPE vocabularies have it.
  for (const t of ['",', '":', '"}', '"]', '","', '": "', '{"', '["', '}}', '},', '],', ' "', '\n ', '\n  ', '\\"', '\\n', '\\u00', '0.', '00', '-0', '1e'] as const) add(enc.encode(t));
  while (pieces.length < n) {
    const r = rand();
    if (r < 0.02) {
      // A run of one byte, often longer than the trie's depth (kept out of the trie).
      add(enc.encode(pick([' ', '-', '=', '*', 'a', '0', '_']).repeat(2 + Math.floor(rand() * 70))));
      continue;
    }
    const len = r < 0.85 ? 1 + Math.floor(rand() * 8) : r < 0.98 ? 9 + Math.floor(rand() * 24) : 33 + Math.floor(rand() * 30);
    const parts: Uint8Array[] = [];
    let size = 0;
    if (rand() < 0.4) {
      parts.push(Uint8Array.of(0x20));
      size++;
    }
    while (size < len) {
      const c = rand();
      let p: Uint8Array;
      if (c < 0.5) p = enc.encode(pick([...lower]));
      else if (c < 0.6) p = enc.encode(pick([...upper]));
      else if (c < 0.7) p = enc.encode(String(Math.floor(rand() * 10)));
      else if (c < 0.76) p = Uint8Array.of(0x20);
      else if (c < 0.86) p = enc.encode(pick(punct));
      else if (c < 0.98) p = enc.encode(pick(multi));
      else p = Uint8Array.of(pick([0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xc3, 0xe4, 0xed, 0xf0, 0xf4, 0xf8, 0xff]));
      parts.push(p);
      size += p.length;
    }
    let bytes = Buffer.concat(parts);
    // Sometimes cut inside the last character (byte-level BPE tokens do that).
    if (rand() < 0.08 && bytes.length > 1) bytes = bytes.subarray(0, bytes.length - 1);
    add(new Uint8Array(bytes));
  }
  const eog = pieces.length;
  return {
    vocabSize: eog + 1,
    piece: (id) => (id === eog ? new Uint8Array(0) : pieces[id]!),
    isEog: (id) => id === eog,
  };
}

/** The synthetic 152k vocabulary, built once for the tests that use it. */
let synthetic: VocabSource | null = null;
const synthetic152k = () => (synthetic ??= syntheticVocab(151_935, 5));

describe('token mask vs the reference on the schema corpus', () => {
  it('every corpus schema, GPT-2 vocabulary (50k tokens)', () => {
    const tok = loadTokenizer(path.join(VOCAB, 'ggml-vocab-gpt-2.gguf'));
    let checked = 0;
    let seed = 100;
    for (const [name, schema] of Object.entries(SCHEMAS)) checked += check(tok, { jsonSchema: schema }, 2, seed++, name);
    expect(checked).toBeGreaterThan(Object.keys(SCHEMAS).length);
  }, 300_000);

  it('a 152k-token synthetic vocabulary: corpus schemas with strings, counted strings, formats, numbers and non-ASCII keys', () => {
    const vocab = synthetic152k();
    expect(vocab.vocabSize).toBe(151_936);
    let checked = 0;
    let seed = 200;
    const names = Object.keys(SCHEMAS);
    expect(names.length).toBeGreaterThan(10);
    for (const name of names.filter((_, i) => i % 4 === 0)) checked += check(vocab, { jsonSchema: SCHEMAS[name]! }, 2, seed++, `synthetic/${name}`);
    // Counted strings past the trie's depth (shared masks) and a char-class pattern.
    const counted = { type: 'object', properties: { bio: { type: 'string', maxLength: 400 }, email: { type: 'string', format: 'email' }, tag: { type: 'string', pattern: '^[a-z0-9-]{1,39}$' } }, required: ['bio', 'email', 'tag'], additionalProperties: false };
    checked += check(vocab, { jsonSchema: counted }, 6, seed++, 'synthetic/counted');
    expect(checked).toBeGreaterThan(names.length / 4);
  }, 300_000);

  it('counted byte classes (class-run tables) equal the plain walk at every byte, and the reference at sampled ones', () => {
    const vocab = synthetic152k();
    const schema = {
      type: 'object',
      properties: {
        tag: { type: 'string', pattern: '^[a-z0-9-]{1,39}$' },
        code: { type: 'string', pattern: '^[A-Z]{2,5}-[0-9]{3,8}$' },
        email: { type: 'string', format: 'email' },
        id: { type: 'string', format: 'uuid' },
        ip: { type: 'string', format: 'ipv6' },
        note: { type: 'string', minLength: 3, maxLength: 60 },
      },
      required: ['tag', 'code', 'email', 'id', 'ip', 'note'],
      additionalProperties: false,
    };
    const g = compileGrammar(vocab, { jsonSchema: schema });
    const fast = g.recognizer;
    // The same grammar with every trie part a plain walk.
    const plain = new Recognizer(lowerGrammar(parseGbnf(g.gbnf)));
    plain.useClassRuns = false;
    const rand = mulberry(77);
    let compared = 0;
    let referenced = 0;
    for (let k = 0; k < 2; k++) {
      const sentence = randomSentence(fast, rand, 300);
      if (!sentence) continue;
      let s = fast.initial;
      let t = plain.initial;
      for (let i = 0; i <= sentence.length; i++) {
        const a = fast.mask(s, g.trie);
        const b = plain.mask(t, g.trie);
        const where = `after ${JSON.stringify(new TextDecoder().decode(sentence.subarray(0, i)))}`;
        expect(Array.from(a.ranges), where).toEqual(Array.from(b.ranges));
        expect(a.count, where).toBe(b.count);
        expect(Array.from(a.long), where).toEqual(Array.from(b.long));
        expect(a.eog, where).toBe(b.eog);
        compared++;
        if (rand() < 0.015) {
          const ref = fast.referenceAllowed(sentence.subarray(0, i), g.trie.pieces);
          const allowed = new Uint8Array(vocab.vocabSize);
          for (let j = 0; j < a.ranges.length; j += 2) for (let p = a.ranges[j]!; p < a.ranges[j + 1]!; p++) allowed[g.trie.order[p]!] = 1;
          for (const id of a.long) allowed[id] = 1;
          for (let id = 0; id < vocab.vocabSize; id++) if (allowed[id] !== ref.allowed[id]) throw new Error(`${where}: token ${id}: mask ${allowed[id]}, reference ${ref.allowed[id]}`);
          referenced++;
        }
        if (i < sentence.length) {
          s = fast.next(s, sentence[i]!);
          t = plain.next(t, sentence[i]!);
        }
      }
    }
    expect(compared).toBeGreaterThan(200);
    expect(referenced).toBeGreaterThan(1);
    // The class-run path did the counted states, the plain one never.
    expect(fast.stats.classParts).toBeGreaterThan(20);
    expect(plain.stats.classParts).toBe(0);
  }, 300_000);

  it('class-run tables: the class tokens and their lengths match the token bytes; memory stays bounded', () => {
    const tok = loadTokenizer(path.join(VOCAB, 'ggml-vocab-gpt-2.gguf'));
    const trie = vocabTrie(tok);
    const rand = mulberry(9);
    for (let k = 0; k < 24; k++) {
      const bits = new Int32Array(8);
      // Random classes, some dense (most tokens inside), some sparse.
      const density = k % 3 === 0 ? 0.9 : k % 3 === 1 ? 0.4 : 0.05;
      for (let b = 0; b < 256; b++) if (rand() < density) bits[b >> 5]! |= 1 << (b & 31);
      const inC = (b: number) => ((bits[b >> 5]! >>> (b & 31)) & 1) === 1;
      const t = classRuns(trie, bits, 1 << 20);
      const want = new Int32Array(trie.order.length); // class-only token length by position, 0 otherwise
      const exitAt = new Int32Array(trie.order.length); // the first byte outside the class, -1 for none
      for (let p = 0; p < trie.order.length; p++) {
        const piece = trie.pieces[trie.order[p]!]!;
        exitAt[p] = piece.findIndex((b) => !inC(b));
        if (exitAt[p] === -1) want[p] = piece.length;
      }
      const got = new Int32Array(trie.order.length);
      let bad = 0;
      for (let i = 0; i < t.segLo.length; i++) {
        let max = 0;
        for (let p = t.segLo[i]!; p < t.segHi[i]!; p++) {
          got[p] = t.len[t.segOff[i]! + p - t.segLo[i]!]!;
          max = Math.max(max, got[p]!);
        }
        if (t.segMax[i] !== max || (i > 0 && t.segLo[i]! <= t.segHi[i - 1]!)) bad++;
      }
      expect(bad).toBe(0);
      expect(got).toEqual(want);
      // Exits: every token not made of class bytes is under exactly one exit, at its first byte outside the class.
      const under = new Int32Array(trie.order.length).fill(-1);
      for (const e of t.exits) {
        if (inC(trie.byte[e]!)) bad++;
        for (let p = trie.tokLo[e]!; p < trie.subHi[e]!; p++) {
          if (under[p] !== -1) bad++;
          under[p] = trie.depth[e]!;
        }
      }
      expect(bad).toBe(0);
      expect(under).toEqual(exitAt);
    }
    let bytes = 0;
    for (const t of trie.runTables.values()) bytes += t.bytes;
    expect(bytes).toBeLessThanOrEqual(1 << 20);
    expect(trie.runTables.size).toBeLessThan(24); // older tables were dropped
  }, 300_000);
});
