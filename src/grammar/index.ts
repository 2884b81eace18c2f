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
export { toolCallGrammar, toolCallTrigger, prefixRules } from './tools.js';
export type { ToolSpec, ToolCallFormat, ToolCallGrammarOptions } from './tools.js';
export { Recognizer, VocabTrie, vocabTrie, vocabFingerprint } from './engine.js';
export type { TokenMask, VocabSource } from './engine.js';

/**
 * What to compile. `triggers`: a lazy grammar, off until the output contains one of these
 * strings; from there on the output must follow the grammar, which starts with the trigger
 * (e.g. a tool-call grammar with the trigger "<tool_call>" for tool_choice 'auto').
 */
export type GrammarSpec = ({ jsonSchema: object | boolean } | { grammar: string }) & { triggers?: readonly string[] };

/** A grammar compiled for one vocabulary. Pass it as the `grammar` option. */
export class CompiledGrammar {
  /** The GBNF text it was built from (generated for a JSON schema). */
  readonly gbnf: string;
  /** Compile time in milliseconds. */
  readonly compileMs: number;
  /** @internal */ readonly recognizer: Recognizer;
  /** @internal */ readonly trie: VocabTrie;
  /** @internal */ readonly vocabKey: object;
  /** Lazy triggers (UTF-8); empty when the grammar applies from the first token. */
  readonly triggers: readonly Uint8Array[];

  /** @internal Use compileGrammar(). */
  constructor(gbnf: string, recognizer: Recognizer, trie: VocabTrie, vocabKey: object, compileMs: number, triggers: readonly Uint8Array[] = []) {
    this.gbnf = gbnf;
    this.triggers = triggers;
    this.recognizer = recognizer;
    this.trie = trie;
    this.vocabKey = vocabKey;
    this.compileMs = compileMs;
  }

  private bans: Int32Array | null = null;

  /**
   * @internal For a lazy grammar: tokens that contain a whole trigger followed by bytes the
   * grammar rejects. They are banned while the grammar waits, so that a trigger never
   * arrives with a tail the grammar cannot take.
   */
  lazyBans(): Int32Array {
    if (!this.bans) {
      const ids: number[] = [];
      const r = this.recognizer;
      const { pieces, specialText } = this.trie;
      const triggers = this.triggers.map((t) => Buffer.from(t).toString('latin1'));
      for (let id = 0; id < pieces.length; id++) {
        const p = pieces[id]!.length > 0 ? pieces[id]! : specialText.get(id);
        if (!p || p.length === 0) continue;
        const text = Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('latin1');
        let at = -1;
        for (const t of triggers) {
          const i = text.indexOf(t);
          if (i >= 0 && (at < 0 || i < at)) at = i;
        }
        if (at >= 0 && r.run(r.initial, p.subarray(at)) < 0) ids.push(id);
      }
      this.bans = Int32Array.from(ids);
    }
    return this.bans;
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
    try {
      gbnf = schemaToGbnf(spec.jsonSchema);
    } catch (e) {
      if (e instanceof RangeError) {
        throw new SparrowError('JSON schema too deeply nested', 'ERR_SCHEMA_TOO_LARGE', { cause: e });
      }
      throw e;
    }
  } else if ('grammar' in spec && typeof spec.grammar === 'string') {
    gbnf = spec.grammar;
  } else {
    throw new SparrowError('compileGrammar: expected { jsonSchema: object } or { grammar: string }', 'ERR_INVALID_ARG');
  }
  const triggers: Uint8Array[] = [];
  if (spec.triggers !== undefined) {
    if (!Array.isArray(spec.triggers) || spec.triggers.some((t) => typeof t !== 'string' || t.length === 0)) {
      throw new SparrowError('compileGrammar: triggers must be an array of non-empty strings', 'ERR_INVALID_ARG');
    }
    for (const t of spec.triggers) triggers.push(new TextEncoder().encode(t));
  }
  let recognizer: Recognizer;
  try {
    recognizer = new Recognizer(lowerGrammar(parseGbnf(gbnf)));
  } catch (e) {
    if (e instanceof RangeError) {
      throw new SparrowError('grammar error: the grammar is too large or too deeply nested', 'ERR_GRAMMAR_TOO_LARGE', { cause: e });
    }
    throw e;
  }
  const trie = vocabTrie(tokenizer, vocabKey);
  // Precomputed here rather than on the first token of the first request: the positions
  // shared by long counted repetitions, and the mask of the start state (every request's
  // first token). A grammar that matches nothing has thrown above.
  recognizer.prepare(trie);
  recognizer.mask(recognizer.initial, trie);
  return new CompiledGrammar(gbnf, recognizer, trie, vocabKey, performance.now() - t0, triggers);
}

/** The grammar state of one generation. */
export class GrammarMatcher {
  private state: number;
  private resets: number;
  private readonly bytes: number[] = [];
  private scratch: Float32Array | null = null;
  /** Mask timings in milliseconds (for the benchmark). */
  readonly maskMs: number[] = [];

  /** False while a lazy grammar waits for its trigger. */
  private active: boolean;
  /** The latest output bytes while inactive (enough to find a trigger across tokens). */
  private pending: number[] = [];

  constructor(readonly grammar: CompiledGrammar) {
    this.state = grammar.recognizer.initial;
    this.resets = grammar.recognizer.stats.resets;
    this.active = grammar.triggers.length === 0;
  }

  /** True once the grammar applies (always, unless it is lazy and waiting for a trigger). */
  get triggered(): boolean {
    return this.active;
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
    return !this.active || this.grammar.recognizer.accepting(this.current());
  }

  /** True when nothing more can follow: the generation should end. */
  get done(): boolean {
    return this.active && this.grammar.recognizer.final(this.current());
  }

  /** The allowed tokens now. */
  computeMask(): TokenMask {
    const r = this.grammar.recognizer;
    if (r.overgrown()) r.rebuild();
    return r.mask(this.current(), this.grammar.trie);
  }

  /**
   * Computes (and caches) the mask of the current state ahead of apply(): the generation
   * loop calls it while the next forward pass runs on a native thread.
   */
  prefetch(): void {
    if (this.active && !this.done) this.computeMask();
  }

  /** Sets the logits of every token the grammar does not allow here to -Infinity. */
  apply(logits: Float32Array): void {
    if (!this.active) {
      const bans = this.grammar.lazyBans();
      for (let i = 0; i < bans.length; i++) logits[bans[i]!] = -Infinity;
      return;
    }
    const t0 = performance.now();
    const mask = this.computeMask();
    const { order, nVocab, eog } = this.grammar.trie;
    if (mask.count === 0 && mask.long.length === 0 && !(mask.eog && eog.length > 0)) {
      throw new SparrowError('no token of this vocabulary can continue the grammar here (the grammar needs text the tokens cannot spell)', 'ERR_GRAMMAR_DEAD_END');
    }
    const ranges = mask.ranges;
    const keepEog = mask.eog;
    let eogSaved: number[] | null = null;
    if (keepEog) eogSaved = Array.from(eog, (id) => logits[id]!);
    const longIds = mask.long;
    const longSaved = longIds.length > 0 ? Array.from(longIds, (id) => logits[id]!) : null;
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
    if (longSaved) longIds.forEach((id, i) => (logits[id] = longSaved[i]!));
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
    if (!this.active) return true;
    const trie = this.grammar.trie;
    if (trie.eog.includes(id)) return this.accepting;
    const p = trie.pieces[id];
    if (!p || p.length === 0) return false;
    return this.grammar.recognizer.run(this.current(), p) >= 0;
  }

  /** While inactive: looks for a trigger in the output; from its first byte on, the grammar applies. */
  private watch(bytes: Uint8Array | undefined): void {
    if (!bytes || bytes.length === 0) return;
    const buf = this.pending;
    const start = buf.length;
    for (const b of bytes) buf.push(b);
    let at = -1;
    for (const t of this.grammar.triggers) {
      // A trigger that ends within the new bytes.
      for (let p = Math.max(0, start - t.length + 1); p + t.length <= buf.length; p++) {
        let k = 0;
        while (k < t.length && buf[p + k] === t[k]) k++;
        if (k === t.length && (at < 0 || p < at)) {
          at = p;
          break;
        }
      }
    }
    if (at < 0) {
      const keep = Math.max(...this.grammar.triggers.map((t) => t.length)) - 1;
      if (buf.length > keep) buf.splice(0, buf.length - keep);
      return;
    }
    this.active = true;
    this.pending = [];
    this.advanceBytes(Uint8Array.from(buf.slice(at)));
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
    if (!this.active) {
      this.watch(trie.pieces[id]!.length > 0 ? trie.pieces[id]! : trie.specialText.get(id));
      return;
    }
    const p = trie.pieces[id];
    const s = p && p.length > 0 ? this.grammar.recognizer.run(this.current(), p) : -1;
    if (s < 0) {
      throw new SparrowError(`token ${id} is not allowed by the grammar here`, 'ERR_GRAMMAR_REJECTED');
    }
    this.state = s;
    for (const b of p!) this.bytes.push(b);
  }
}
