/**
 * Structured output: compile a JSON schema or a GBNF grammar against a tokenizer's
 * vocabulary once, then constrain generations with it.
 *
 *   const g = compileGrammar(tokenizer, { jsonSchema: { type: 'object', ... } });
 *   await session.complete(prompt, { grammar: g, temperature: 0.8 });
 *   await session.complete(prompt, { jsonSchema: {...} });   // compiles on the fly
 *
 * A compiled grammar holds a lazily built DFA and per-state token masks; reusing it
 * across requests (a server caching it per schema) makes later masks cache hits.
 */
import { SparrowError } from '../errors.js';
import { Recognizer, vocabTrie, type TokenMask, type VocabSource, type VocabTrie } from './engine.js';
import { lowerGrammar, parseGbnf } from './gbnf.js';
import { schemaToGbnf } from './schema.js';

export { parseGbnf, lowerGrammar } from './gbnf.js';
export { schemaToGbnf } from './schema.js';
export { toolCallGrammar, prefixRules } from './tools.js';
export type { ToolSpec, ToolCallFormat, ToolCallGrammarOptions } from './tools.js';
export { Recognizer, VocabTrie, vocabTrie } from './engine.js';
export type { TokenMask, VocabSource } from './engine.js';

export type GrammarSpec = { jsonSchema: object | boolean } | { grammar: string };

/** A grammar compiled for one vocabulary. Pass it as the `grammar` option. */
export class CompiledGrammar {
  /** The GBNF text it was built from (generated for a JSON schema). */
  readonly gbnf: string;
  /** Compile time in milliseconds. */
  readonly compileMs: number;
  /** @internal */ readonly recognizer: Recognizer;
  /** @internal */ readonly trie: VocabTrie;
  /** @internal */ readonly vocabKey: object;

  /** @internal Use compileGrammar(). */
  constructor(gbnf: string, recognizer: Recognizer, trie: VocabTrie, vocabKey: object, compileMs: number) {
    this.gbnf = gbnf;
    this.recognizer = recognizer;
    this.trie = trie;
    this.vocabKey = vocabKey;
    this.compileMs = compileMs;
  }

  /** A fresh matcher at the start of the grammar (one per generation). */
  matcher(): GrammarMatcher {
    return new GrammarMatcher(this);
  }

  /** Whether `text` is a complete sentence of the grammar. */
  accepts(text: string | Uint8Array): boolean {
    const bytes = typeof text === 'string' ? new TextEncoder().encode(text) : text;
    const r = this.recognizer;
    const s = r.run(r.initial, bytes);
    return s >= 0 && r.accepting(s);
  }
}

/**
 * Compiles a JSON schema or GBNF text for a tokenizer (anything with vocabSize,
 * piece(id, special) and isEog(id), such as the library's Tokenizer).
 */
export function compileGrammar(tokenizer: VocabSource, spec: GrammarSpec, vocabKey: object = tokenizer): CompiledGrammar {
  if (!tokenizer || typeof tokenizer.piece !== 'function' || typeof tokenizer.isEog !== 'function') {
    throw new SparrowError('compileGrammar: the first argument must be a tokenizer', 'ERR_INVALID_ARG');
  }
  if (!spec || typeof spec !== 'object') throw new SparrowError('compileGrammar: expected { jsonSchema } or { grammar }', 'ERR_INVALID_ARG');
  const t0 = performance.now();
  let gbnf: string;
  if ('jsonSchema' in spec && spec.jsonSchema !== undefined) {
    if ('grammar' in spec && (spec as { grammar?: unknown }).grammar !== undefined) {
      throw new SparrowError('give either jsonSchema or grammar, not both', 'ERR_INVALID_ARG');
    }
    gbnf = schemaToGbnf(spec.jsonSchema);
  } else if ('grammar' in spec && typeof spec.grammar === 'string') {
    gbnf = spec.grammar;
  } else {
    throw new SparrowError('compileGrammar: expected { jsonSchema: object } or { grammar: string }', 'ERR_INVALID_ARG');
  }
  const recognizer = new Recognizer(lowerGrammar(parseGbnf(gbnf)));
  const trie = vocabTrie(tokenizer, vocabKey);
  return new CompiledGrammar(gbnf, recognizer, trie, vocabKey, performance.now() - t0);
}

/** The grammar state of one generation. */
export class GrammarMatcher {
  private state: number;
  private resets: number;
  private readonly bytes: number[] = [];
  private scratch: Float32Array | null = null;
  /** Mask timings in milliseconds (for the benchmark). */
  readonly maskMs: number[] = [];

  constructor(readonly grammar: CompiledGrammar) {
    this.state = grammar.recognizer.initial;
    this.resets = grammar.recognizer.stats.resets;
  }

  private current(): number {
    const r = this.grammar.recognizer;
    if (this.resets !== r.stats.resets) {
      // The shared caches were rebuilt: replay our bytes.
      this.resets = r.stats.resets;
      this.state = r.run(r.initial, Uint8Array.from(this.bytes));
    }
    return this.state;
  }

  /** True when the output so far is a complete sentence. */
  get accepting(): boolean {
    return this.grammar.recognizer.accepting(this.current());
  }

  /** True when nothing more can follow: the generation should end. */
  get done(): boolean {
    return this.grammar.recognizer.final(this.current());
  }

  /** The allowed tokens now. */
  computeMask(): TokenMask {
    const r = this.grammar.recognizer;
    if (r.overgrown()) r.rebuild();
    return r.mask(this.current(), this.grammar.trie);
  }

  /** Sets the logits of every token the grammar does not allow here to -Infinity. */
  apply(logits: Float32Array): void {
    const t0 = performance.now();
    const mask = this.computeMask();
    const { order, nVocab, eog } = this.grammar.trie;
    const ranges = mask.ranges;
    const keepEog = mask.eog;
    let eogSaved: number[] | null = null;
    if (keepEog) eogSaved = Array.from(eog, (id) => logits[id]!);
    if (mask.count * 2 < nVocab) {
      const s = (this.scratch ??= new Float32Array(nVocab));
      let j = 0;
      for (let r = 0; r < ranges.length; r += 2) for (let k = ranges[r]!; k < ranges[r + 1]!; k++) s[j++] = logits[order[k]!]!;
      logits.fill(-Infinity, 0, nVocab);
      j = 0;
      for (let r = 0; r < ranges.length; r += 2) for (let k = ranges[r]!; k < ranges[r + 1]!; k++) logits[order[k]!] = s[j++]!;
    } else {
      // Most tokens are allowed: ban the gaps between ranges, and every token outside the trie.
      let prev = 0;
      for (let r = 0; r <= ranges.length; r += 2) {
        const lo = r < ranges.length ? ranges[r]! : order.length;
        for (let k = prev; k < lo; k++) logits[order[k]!] = -Infinity;
        if (r < ranges.length) prev = ranges[r + 1]!;
      }
      const outside = this.outside();
      for (let i = 0; i < outside.length; i++) logits[outside[i]!] = -Infinity;
    }
    if (eogSaved) eog.forEach((id, i) => (logits[id] = eogSaved![i]!));
    else for (let i = 0; i < eog.length; i++) logits[eog[i]!] = -Infinity;
    this.maskMs.push(performance.now() - t0);
  }

  private outside(): Int32Array {
    const trie = this.grammar.trie as VocabTrie & { _outside?: Int32Array };
    if (!trie._outside) {
      const inTrie = new Uint8Array(trie.nVocab);
      for (const id of trie.order) inTrie[id] = 1;
      const ids: number[] = [];
      for (let i = 0; i < trie.nVocab; i++) if (!inTrie[i]) ids.push(i);
      trie._outside = Int32Array.from(ids);
    }
    return trie._outside;
  }

  /** Whether token `id` may come next (EOG tokens: where the grammar may end). */
  allows(id: number): boolean {
    const trie = this.grammar.trie;
    if (trie.eog.includes(id)) return this.accepting;
    const p = trie.pieces[id];
    if (!p || p.length === 0) return false;
    return this.grammar.recognizer.run(this.current(), p) >= 0;
  }

  /** Advances by raw bytes (text that is forced, not sampled); throws when the grammar rejects them. */
  advanceBytes(bytes: Uint8Array): void {
    const s = this.grammar.recognizer.run(this.current(), bytes);
    if (s < 0) throw new SparrowError('these bytes are not allowed by the grammar here', 'ERR_GRAMMAR_REJECTED');
    this.state = s;
    for (const b of bytes) this.bytes.push(b);
  }

  /** Advances by token `id`; throws when the grammar does not allow it. */
  accept(id: number): void {
    const trie = this.grammar.trie;
    const p = trie.pieces[id];
    const s = p && p.length > 0 ? this.grammar.recognizer.run(this.current(), p) : -1;
    if (s < 0) {
      throw new SparrowError(`token ${id} is not allowed by the grammar here`, 'ERR_GRAMMAR_REJECTED');
    }
    this.state = s;
    for (const b of p!) this.bytes.push(b);
  }
}
