// The token mask (trie walk over the lazy DFA, subtree shortcuts, per-state cache) against
// brute force: a token is allowed iff the plain stack recognizer accepts prefix + its bytes.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileGrammar } from '../../src/grammar/index.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import { mulberry, randomSentence } from './helpers.js';
import { SCHEMAS } from './corpus.js';

const VOCAB = path.resolve('../shared/vocab');

/** Long tokens (outside the trie) allowed in the states of the last check(). */
let longAllowed = 0;

function check(vocabFile: string, spec: Parameters<typeof compileGrammar>[1], states: number, seed: number) {
  const tok = loadTokenizer(path.join(VOCAB, vocabFile));
  const g = compileGrammar(tok, spec);
  const r = g.recognizer;
  const rand = mulberry(seed);
  const pieces = g.trie.pieces;
  let checked = 0;
  let shared = 0;
  longAllowed = 0;
  for (let k = 0; k < states; k++) {
    const sentence = randomSentence(r, rand, 200);
    if (!sentence) continue;
    const prefix = sentence.slice(0, Math.floor(rand() * (sentence.length + 1)));
    const state = r.run(r.initial, prefix);
    expect(state).toBeGreaterThanOrEqual(0);
    const mask = r.mask(state, g.trie);
    if (r.canonOf(state) !== state) shared++;
    longAllowed += mask.long.length;
    const fast = new Uint8Array(tok.vocabSize);
    for (let i = 0; i < mask.ranges.length; i += 2) for (let p = mask.ranges[i]!; p < mask.ranges[i + 1]!; p++) fast[g.trie.order[p]!] = 1;
    for (const id of mask.long) fast[id] = 1;
    const ref = r.referenceAllowed(prefix, pieces);
    let diff = -1;
    for (let id = 0; id < tok.vocabSize; id++) if (fast[id] !== ref.allowed[id]) { diff = id; break; }
    expect(diff, `prefix ${JSON.stringify(new TextDecoder().decode(prefix))}: token ${diff} ${JSON.stringify(diff >= 0 ? tok.tokenText(diff) : '')}`).toBe(-1);
    expect(mask.eog).toBe(ref.accepting);
    // And through the logits: what apply() leaves finite is exactly the allowed set (plus EOG where accepting).
    const m = g.matcher();
    m.advanceBytes(prefix);
    const logits = new Float32Array(tok.vocabSize).fill(1);
    m.apply(logits);
    for (let id = 0; id < tok.vocabSize; id++) {
      const want = tok.isEog(id) ? ref.accepting : ref.allowed[id] === 1;
      if ((logits[id] !== -Infinity) !== want) throw new Error(`apply() disagrees on token ${id} (${tok.tokenText(id)})`);
    }
    checked++;
  }
  expect(checked).toBeGreaterThan(states / 2);
  return shared;
}

describe('token mask vs brute force', () => {
  it('byte-level BPE (GPT-2, 50k tokens): JSON schema states', () => {
    check('ggml-vocab-gpt-2.gguf', { jsonSchema: SCHEMAS.invoice! }, 6, 7);
    check('ggml-vocab-gpt-2.gguf', { jsonSchema: SCHEMAS.unicodeKeys! }, 6, 8);
  }, 120_000);

  it('long bounded repetitions (states shared past the longest token): GPT-2 and llama vocabularies', () => {
    const schema = { type: 'object', properties: { bio: { type: 'string', maxLength: 300 }, code: { type: 'string', pattern: '^[a-z -]{5,200}$' } }, required: ['bio', 'code'], additionalProperties: false };
    let shared = check('ggml-vocab-gpt-2.gguf', { jsonSchema: schema }, 8, 21);
    shared += check('ggml-vocab-llama-spm.gguf', { jsonSchema: schema }, 8, 22);
    shared += check('ggml-vocab-gpt-2.gguf', { grammar: 'root ::= [a-c -]{0,150} "!" [ ]{0,140}' }, 8, 23);
    expect(longAllowed).toBeGreaterThan(0); // GPT-2's runs of spaces and dashes, checked one by one
    expect(shared).toBeGreaterThan(4); // states whose mask is the canonical state's
  }, 180_000);

  it('SentencePiece with byte fallback (llama): a GBNF grammar with non-ASCII classes', () => {
    const grammar = `root ::= "[" item ("," " "? item)* "]"
item ::= "\\"" [^"\\\\\\x00-\\x1f]{0,12} "\\"" | [0-9]+ | "«" [à-ÿ中-龥]+ "»"`;
    check('ggml-vocab-llama-spm.gguf', { grammar }, 8, 9);
  }, 120_000);
});

describe('cache rebuild', () => {
  it('matchers in flight replay their bytes when the shared caches are dropped', () => {
    const tok = loadTokenizer(path.join(VOCAB, 'ggml-vocab-gpt-2.gguf'));
    const g = compileGrammar(tok, { jsonSchema: SCHEMAS.weatherTool! });
    const ids = tok.tokenize('{"location": "Paris, France", "unit": "celsius", "days": 3}', { addSpecial: false });
    const a = g.matcher();
    const b = g.matcher();
    const logits = new Float32Array(tok.vocabSize);
    ids.forEach((id, i) => {
      if (i % 3 === 1) g.recognizer.rebuild();
      for (const m of [a, b]) {
        logits.fill(0);
        m.apply(logits);
        expect(logits[id]).toBe(0);
        m.accept(id);
      }
    });
    expect(a.accepting && b.accepting).toBe(true);
    expect(g.recognizer.stats.resets).toBeGreaterThan(3);
  });
});

describe('shared masks of counted repetitions, at chosen positions', () => {
  it('before, inside and after the mandatory items, far from and near the limit', () => {
    const tok = loadTokenizer(path.join(VOCAB, 'ggml-vocab-gpt-2.gguf'));
    const g = compileGrammar(tok, { grammar: 'root ::= "x" [a-z ]{3,200} "!"' });
    const r = g.recognizer;
    const enc = (t: string) => new TextEncoder().encode(t);
    let canonical = 0;
    for (const prefix of ['x', 'xa', 'xab', 'xabc', 'x' + 'ab '.repeat(20), 'x' + 'a'.repeat(150), 'x' + 'b'.repeat(180), 'x' + 'c'.repeat(199), 'x' + 'd'.repeat(200)]) {
      const state = r.run(r.initial, enc(prefix));
      if (r.canonOf(state) !== state) canonical++;
      const mask = r.mask(state, g.trie);
      const fast = new Uint8Array(tok.vocabSize);
      for (let i = 0; i < mask.ranges.length; i += 2) for (let p = mask.ranges[i]!; p < mask.ranges[i + 1]!; p++) fast[g.trie.order[p]!] = 1;
      for (const id of mask.long) fast[id] = 1;
      const ref = r.referenceAllowed(enc(prefix), g.trie.pieces);
      for (let id = 0; id < tok.vocabSize; id++) {
        if (fast[id] !== ref.allowed[id]) throw new Error(`prefix of ${prefix.length} bytes: token ${id} ${JSON.stringify(tok.tokenText(id))}`);
      }
    }
    expect(canonical).toBeGreaterThanOrEqual(5);
  }, 120_000);
});
