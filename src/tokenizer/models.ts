/**
 * The three tokenizer models, each turning one run of plain text (no special tokens in it)
 * into token ids exactly as llama.cpp's llm_tokenizer_{spm,bpe,wpm}_session do.
 */
import { SparrowError } from '../errors.js';
import { MergeHeap, PairTable } from './pair-table.js';
import { runSync, type Steps } from './slices.js';
import { preTokenize, type PreTokenizerInfo } from './pretokenize.js';
import {
  BYTE_TO_UNICODE,
  F_CONTROL,
  F_MARK,
  F_PUNCTUATION,
  F_SYMBOL,
  F_WHITESPACE,
  cptFlags,
  nfdFirstCpt,
  toCodepoints,
  toLowerCpt,
  toWellFormed,
  utf8Encode,
} from './unicode.js';

/** The vocabulary as the models need it. */
export interface VocabData {
  tokens: string[];
  /** Text to id; with duplicate texts the last id wins, as in llama.cpp's token_to_id. */
  textToId: Map<string, number>;
  scores: Float32Array;
}

/** Items of a loop between two pauses of a sliced build (see slices.ts). */
const STEP = 2048;

export interface TokenizerModel {
  /** Appends the ids of `text` (well-formed, without special tokens) to `out`. */
  encode(text: string, out: number[]): void;
}

const SPM_SPACE = 0x2581; // '▁'

/** Code points of a string, as a plain array (token texts are short). */
function cpsOf(s: string): number[] {
  const out: number[] = [];
  for (const ch of s) out.push(ch.codePointAt(0)!);
  return out;
}

/**
 * Remembers the ids of words already encoded: a Map from the word to a packed (offset,
 * length) in one growing Int32Array, so a miss costs no per-word array. Cleared when full.
 */
class WordCache {
  private readonly map = new Map<string, number>();
  private pool = new Int32Array(1 << 16);
  private used = 0;
  private static readonly MAX_WORDS = 200_000;
  private static readonly MAX_IDS = 63;

  /** Appends the cached ids of `word` to `out`; false when it is not cached. */
  get(word: string, out: number[]): boolean {
    const packed = this.map.get(word);
    if (packed === undefined) return false;
    const len = packed & 63;
    const off = (packed - len) / 64;
    const pool = this.pool;
    for (let i = off; i < off + len; i++) out.push(pool[i]!);
    return true;
  }

  /** Caches out[from..] as the ids of `word`. */
  set(word: string, out: number[], from: number): void {
    const len = out.length - from;
    if (len > WordCache.MAX_IDS) return;
    if (this.map.size >= WordCache.MAX_WORDS) {
      this.map.clear();
      this.used = 0;
    }
    if (this.used + len > this.pool.length) {
      const grown = new Int32Array(this.pool.length * 2);
      grown.set(this.pool.subarray(0, this.used));
      this.pool = grown;
    }
    for (let i = 0; i < len; i++) this.pool[this.used + i] = out[from + i]!;
    this.map.set(word, this.used * 64 + len);
    this.used += len;
  }
}

// ---------------------------------------------------------------------------------------------
// SPM: SentencePiece BPE driven by token scores, with byte fallback.

/** The lookup tables of an SpmModel (see its fields). */
export interface SpmTables {
  charId: Map<number, number>;
  bmpCharId: Int32Array;
  pairs: PairTable;
  byteToken: Int32Array;
  splitAtSpaces: boolean;
}

export function* buildSpmTables(vocab: VocabData): Steps<SpmTables> {
  const { tokens, textToId } = vocab;
  const charId = new Map<number, number>();
  const bmpCharId = new Int32Array(0x10000).fill(-2);
  const byteToken = new Int32Array(256).fill(-1);
  let nextId = tokens.length;
  const tokenCps: number[][] = new Array(tokens.length);
  let pairCount = 0;
  let splitAtSpaces = true;
  // Single code points first: a one-character token is its own symbol.
  for (let id = 0; id < tokens.length; id++) {
    if (id % STEP === 0) yield;
    const cps = cpsOf(tokens[id]!);
    tokenCps[id] = cps;
    pairCount += cps.length - 1;
    if (cps.length === 1) charId.set(cps[0]!, textToId.get(tokens[id]!)!);
  }
  for (let id = 0; id < tokens.length; id++) {
    if (id % STEP === 0) yield;
    const cps = tokenCps[id]!;
    for (let i = 0; i < cps.length; i++) {
      const cp = cps[i]!;
      if (!charId.has(cp)) charId.set(cp, nextId++);
      if (cp === SPM_SPACE && i > 0 && cps[i - 1] !== SPM_SPACE) splitAtSpaces = false;
    }
  }
  for (const [cp, id] of charId) if (cp < 0x10000) bmpCharId[cp] = id;
  // Every way to cut a token in two where both halves can be symbols (a token or one char).
  const pairs = new PairTable(pairCount);
  const symbolOf = (s: string, cps: number[], from: number, to: number): number | undefined =>
    to - from === 1 ? charId.get(cps[from]!) : textToId.get(s);
  for (let id = 0; id < tokens.length; id++) {
    if (id % STEP === 0) yield;
    const cps = tokenCps[id]!;
    if (cps.length < 2) continue;
    const text = tokens[id]!;
    const target = textToId.get(text)!;
    let unit = 0; // UTF-16 offset of the cut
    for (let k = 1; k < cps.length; k++) {
      unit += cps[k - 1]! >= 0x10000 ? 2 : 1;
      const a = symbolOf(text.slice(0, unit), cps, 0, k);
      if (a === undefined) continue;
      const b = symbolOf(text.slice(unit), cps, k, cps.length);
      if (b === undefined) continue;
      pairs.insertIfAbsent(a, b, target, 0);
    }
  }
  const hex = '0123456789ABCDEF';
  for (let b = 0; b < 256; b++) {
    const id = textToId.get(`<0x${hex[b >> 4]}${hex[b & 15]}>`) ?? (b < 0x80 ? textToId.get(String.fromCharCode(b)) : undefined);
    if (id !== undefined) byteToken[b] = id;
  }
  return { charId, bmpCharId, pairs, byteToken, splitAtSpaces };
}

/**
 * The priority-queue merge over a linked list, shared by SPM and BPE for long inputs: adjacent
 * symbols of sym[0..n) are merged, the pair with the lowest heap key first (then the leftmost),
 * until no pair merges. `slot(a, b)` finds the merge of symbols a and b (< 0: none), `key(slot)`
 * is its heap key and `result(slot)` the merged symbol. Merged-away symbols are set to -1; the
 * survivors stay in place, linked from 0 by the returned `next` (-1 ends the list).
 */
function heapMerge(
  sym: Int32Array,
  n: number,
  heap: MergeHeap,
  slot: (a: number, b: number) => number,
  key: (slot: number) => number,
  result: (slot: number) => number,
): Int32Array {
  const next = new Int32Array(n);
  const prev = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  heap.clear();
  const tryPair = (l: number, r: number) => {
    if (l < 0 || r < 0) return;
    const a = sym[l]!;
    const b = sym[r]!;
    const s = slot(a, b);
    if (s >= 0) heap.push(key(s), l, r, a, b);
  };
  for (let i = 1; i < n; i++) tryPair(i - 1, i);
  while (heap.length > 0) {
    const l = heap.left[0]!;
    const r = heap.right[0]!;
    const a = heap.leftId[0]!;
    const b = heap.rightId[0]!;
    heap.pop();
    if (sym[l] !== a || sym[r] !== b || next[l] !== r) continue; // stale
    sym[l] = result(slot(a, b));
    sym[r] = -1;
    next[l] = next[r]!;
    if (next[r]! >= 0) prev[next[r]!] = l;
    tryPair(prev[l]!, l);
    tryPair(l, next[l]!);
  }
  return next;
}

export class SpmModel implements TokenizerModel {
  private readonly nVocab: number;
  private readonly scores: Float32Array;
  /** Symbol id of a single code point: its token id, or an id >= nVocab if it is no token. */
  private readonly charId: Map<number, number>;
  /** charId for the BMP as a flat table (-2 where no token has the character). */
  private readonly bmpCharId: Int32Array;
  /** (left symbol, right symbol) -> token id of their concatenation. */
  private readonly pairs: PairTable;
  /** Token of each byte for the fallback: <0xXX>, else the one-byte text; -1 if none. */
  private readonly byteToken: Int32Array;
  private readonly heap = new MergeHeap(1024);
  /**
   * True when no token has '▁' right after another character: merges then never cross the
   * point before a '▁' that follows another character, and each word can be encoded alone
   * (and cached) with the same result as the whole text at once.
   */
  private readonly splitAtSpaces: boolean;
  private readonly cache = new WordCache();

  /** `tables`: from buildSpmTables(vocab), when it was run in slices; built here otherwise. */
  constructor(vocab: VocabData, tables: SpmTables = runSync(buildSpmTables(vocab))) {
    this.nVocab = vocab.tokens.length;
    this.scores = vocab.scores;
    this.charId = tables.charId;
    this.bmpCharId = tables.bmpCharId;
    this.pairs = tables.pairs;
    this.byteToken = tables.byteToken;
    this.splitAtSpaces = tables.splitAtSpaces;
  }

  encode(text: string, out: number[]): void {
    if (text.length === 0) return;
    if (!this.splitAtSpaces) {
      const cps = toCodepoints(text);
      this.encodeRange(cps, 0, cps.length, out);
      return;
    }
    // Words start at a space ('▁' once escaped) that follows another character.
    let start = 0;
    for (let i = 1; i <= text.length; i++) {
      if (i < text.length) {
        const c = text.charCodeAt(i);
        if (c !== 0x20 && c !== SPM_SPACE) continue;
        const p = text.charCodeAt(i - 1);
        if (p === 0x20 || p === SPM_SPACE) continue;
      }
      this.encodeWord(text.slice(start, i), out);
      start = i;
    }
  }

  private encodeWord(word: string, out: number[]): void {
    if (this.cache.get(word, out)) return;
    const from = out.length;
    const cps = toCodepoints(word);
    this.encodeRange(cps, 0, cps.length, out);
    this.cache.set(word, out, from);
  }

  // Scratch arrays, grown as needed. After a merge, sym[0..m) holds the final symbols and
  // merged[0..m) the source position of each one's first character.
  private sym = new Int32Array(256);
  private score = new Float64Array(256);
  private merged = new Int32Array(256);

  /** Merges code points [from, to) of `cps` (spaces not yet escaped) and appends the ids. */
  private encodeRange(cps: Uint32Array, from: number, to: number, out: number[]): void {
    const n = to - from;
    if (this.sym.length < n) {
      this.sym = new Int32Array(n * 2);
      this.score = new Float64Array(n * 2);
      this.merged = new Int32Array(n * 2);
    }
    const sym = this.sym;
    for (let i = 0; i < n; i++) {
      const cp = cps[from + i]!;
      sym[i] = this.symbolOfCpt(cp === 0x20 ? SPM_SPACE : cp);
    }
    const m = n <= 64 ? this.mergeLinear(n) : this.mergeHeap(n);
    for (let i = 0; i < m; i++) {
      const id = sym[i]!;
      if (id >= 0 && id < this.nVocab) {
        out.push(id);
        continue;
      }
      // Not a token: a single character (merged[i] is its position), spelled with byte tokens.
      const cp = cps[from + this.merged[i]!]!;
      if (cp < 0x80) {
        this.pushByte(cp === 0x20 ? 0xe2 : cp, out); // a space never gets here unless '▁' is missing
        if (cp === 0x20) {
          this.pushByte(0x96, out);
          this.pushByte(0x81, out);
        }
      } else if (cp < 0x800) {
        this.pushByte(0xc0 | (cp >> 6), out);
        this.pushByte(0x80 | (cp & 0x3f), out);
      } else if (cp < 0x10000) {
        this.pushByte(0xe0 | (cp >> 12), out);
        this.pushByte(0x80 | ((cp >> 6) & 0x3f), out);
        this.pushByte(0x80 | (cp & 0x3f), out);
      } else {
        this.pushByte(0xf0 | (cp >> 18), out);
        this.pushByte(0x80 | ((cp >> 12) & 0x3f), out);
        this.pushByte(0x80 | ((cp >> 6) & 0x3f), out);
        this.pushByte(0x80 | (cp & 0x3f), out);
      }
    }
  }

  private pushByte(byte: number, out: number[]): void {
    const t = this.byteToken[byte]!;
    if (t < 0) {
      throw new SparrowError(
        `tokenize: the vocabulary has no byte token <0x${byte.toString(16).toUpperCase().padStart(2, '0')}> for a character it cannot spell`,
        'ERR_TOKENIZER',
      );
    }
    out.push(t);
  }

  /** Symbol id of a code point (spaces already escaped), -2 for a character no token contains. */
  private symbolOfCpt(cp: number): number {
    if (cp < 0x10000) return this.bmpCharId[cp]!;
    return this.charId.get(cp) ?? -2;
  }

  /**
   * Repeatedly merges the adjacent pair whose concatenation is the token of highest score,
   * leftmost first: llama.cpp's priority-queue order, found by a scan (faster for short words).
   */
  private mergeLinear(n: number): number {
    const { sym, score, pairs, scores } = this;
    const pos = this.merged; // source position of each symbol's first character
    for (let i = 0; i < n; i++) pos[i] = i;
    const pairScore = (i: number) => {
      const a = sym[i]!;
      const b = sym[i + 1]!;
      if (a < 0 || b < 0) return -Infinity;
      const slot = pairs.find(a, b);
      return slot < 0 ? -Infinity : scores[pairs.value0(slot)]!;
    };
    for (let i = 0; i + 1 < n; i++) score[i] = pairScore(i);
    for (;;) {
      let best = -1;
      let bestScore = -Infinity;
      for (let i = 0; i + 1 < n; i++) {
        if (score[i]! > bestScore) {
          bestScore = score[i]!;
          best = i;
        }
      }
      if (best < 0) break;
      sym[best] = pairs.value0(pairs.find(sym[best]!, sym[best + 1]!));
      for (let i = best + 1; i + 1 < n; i++) {
        sym[i] = sym[i + 1]!;
        score[i] = score[i + 1]!;
        pos[i] = pos[i + 1]!;
      }
      n--;
      if (best > 0) score[best - 1] = pairScore(best - 1);
      if (best + 1 < n) score[best] = pairScore(best);
    }
    return n;
  }

  /** The priority-queue merge over a linked list, for long runs of text. */
  private mergeHeap(n: number): number {
    const { sym, pairs, scores } = this;
    const next = heapMerge(
      sym,
      n,
      this.heap,
      (a, b) => (a < 0 || b < 0 ? -1 : pairs.find(a, b)),
      // Highest score first, then the leftmost: llama.cpp's llm_bigram_spm ordering.
      (slot) => -scores[pairs.value0(slot)]!,
      (slot) => pairs.value0(slot),
    );
    let m = 0;
    for (let i = 0; i !== -1; i = next[i]!) {
      this.merged[m] = i;
      sym[m++] = sym[i]!;
    }
    return m;
  }
}

// ---------------------------------------------------------------------------------------------
// BPE: GPT-2 style byte-level BPE with ranked merges and a regex pre-tokenizer.

/** The lookup tables of a BpeModel (see its fields). */
export interface BpeTables {
  extraText: string[];
  merges: PairTable;
  byteSym: Int32Array;
}

export function* buildBpeTables(vocab: VocabData, mergeList: readonly string[]): Steps<BpeTables> {
  const nVocab = vocab.tokens.length;
  const textToId = vocab.textToId;
  const extraText: string[] = [];
  const byteSym = new Int32Array(256);
  const interned = new Map<string, number>();
  const intern = (s: string): number => {
    const id = textToId.get(s) ?? interned.get(s);
    if (id !== undefined) return id;
    const fresh = nVocab + extraText.length;
    extraText.push(s);
    interned.set(s, fresh);
    return fresh;
  };
  const merges = new PairTable(mergeList.length);
  for (let rank = 0; rank < mergeList.length; rank++) {
    if (rank % STEP === 0) yield;
    const line = mergeList[rank]!;
    const space = line.indexOf(' ', 1);
    if (space < 0) continue; // llama.cpp stores an empty pair that can never match
    const a = line.slice(0, space);
    const b = line.slice(space + 1);
    merges.insertIfAbsent(intern(a), intern(b), rank, intern(a + b));
  }
  for (let b = 0; b < 256; b++) byteSym[b] = intern(BYTE_TO_UNICODE[b]!);
  return { extraText, merges, byteSym };
}

export class BpeModel implements TokenizerModel {
  private readonly nVocab: number;
  private readonly tokens: string[];
  private readonly textToId: Map<string, number>;
  /** Symbol texts that are not tokens, by id - nVocab. */
  private readonly extraText: string[];
  /** (left, right) -> (rank, merged symbol id). */
  private readonly merges: PairTable;
  /** Symbol id of each byte's GPT-2 character. */
  private readonly byteSym: Int32Array;
  private readonly cache = new WordCache();
  private readonly heap = new MergeHeap(64);
  // Scratch arrays for the linear merge of short words.
  private sym = new Int32Array(256);
  private rank = new Int32Array(256);
  private merged = new Int32Array(256);

  /** `tables`: from buildBpeTables(vocab, mergeList), when it was run in slices; built here otherwise. */
  constructor(
    vocab: VocabData,
    mergeList: readonly string[],
    private readonly pre: PreTokenizerInfo,
    tables: BpeTables = runSync(buildBpeTables(vocab, mergeList)),
  ) {
    this.nVocab = vocab.tokens.length;
    this.tokens = vocab.tokens;
    this.textToId = vocab.textToId;
    this.extraText = tables.extraText;
    this.merges = tables.merges;
    this.byteSym = tables.byteSym;
  }

  encode(text: string, out: number[]): void {
    const cps = toCodepoints(text);
    const lengths = preTokenize(cps, this.pre.family);
    // Cache key: the word's text. Rebuild the well-formed text's UTF-16 offsets as we go.
    let cp = 0;
    let unit = 0;
    const wellFormed = toWellFormed(text); // same UTF-16 offsets as the code points give
    for (const len of lengths) {
      const from = cp;
      const fromUnit = unit;
      for (let k = 0; k < len; k++) unit += cps[cp++]! >= 0x10000 ? 2 : 1;
      const key = wellFormed.slice(fromUnit, unit);
      if (this.cache.get(key, out)) continue;
      const start = out.length;
      this.encodeWord(cps, from, cp, out);
      this.cache.set(key, out, start);
    }
  }

  private encodeWord(cps: Uint32Array, from: number, to: number, out: number[]): void {
    // Byte-level encoding: UTF-8 bytes, each one a symbol.
    let n = 0;
    const maxBytes = (to - from) * 4;
    if (this.sym.length < maxBytes) {
      const cap = Math.max(maxBytes, this.sym.length * 2);
      this.sym = new Int32Array(cap);
      this.rank = new Int32Array(cap);
      this.merged = new Int32Array(cap);
    }
    const sym = this.sym;
    const bs = this.byteSym;
    for (let i = from; i < to; i++) {
      const c = cps[i]!;
      if (c < 0x80) {
        sym[n++] = bs[c]!;
      } else if (c < 0x800) {
        sym[n++] = bs[0xc0 | (c >> 6)]!;
        sym[n++] = bs[0x80 | (c & 0x3f)]!;
      } else if (c < 0x10000) {
        sym[n++] = bs[0xe0 | (c >> 12)]!;
        sym[n++] = bs[0x80 | ((c >> 6) & 0x3f)]!;
        sym[n++] = bs[0x80 | (c & 0x3f)]!;
      } else {
        sym[n++] = bs[0xf0 | (c >> 18)]!;
        sym[n++] = bs[0x80 | ((c >> 12) & 0x3f)]!;
        sym[n++] = bs[0x80 | ((c >> 6) & 0x3f)]!;
        sym[n++] = bs[0x80 | (c & 0x3f)]!;
      }
    }
    if (this.pre.ignoreMerges && n > 1) {
      // A word that is a token as a whole is taken as it is (Llama 3).
      let s = '';
      for (let i = 0; i < n; i++) s += this.symbolText(sym[i]!);
      const id = this.textToId.get(s);
      if (id !== undefined) {
        out.push(id);
        return;
      }
    }
    n = n <= 128 ? this.mergeLinear(n) : this.mergeHeap(n);
    for (let i = 0; i < n; i++) this.emit(sym[i]!, out);
  }

  /**
   * Repeatedly merges the adjacent pair of lowest rank, leftmost first: the same order as
   * llama.cpp's priority queue, found by a scan (faster for short words).
   */
  private mergeLinear(n: number): number {
    const { sym, rank, merged, merges } = this;
    const NONE = 0x7fffffff;
    for (let i = 0; i + 1 < n; i++) {
      const slot = merges.find(sym[i]!, sym[i + 1]!);
      rank[i] = slot < 0 ? NONE : merges.value0(slot);
      merged[i] = slot < 0 ? -1 : merges.value1(slot);
    }
    for (;;) {
      let best = -1;
      let bestRank = NONE;
      for (let i = 0; i + 1 < n; i++) {
        if (rank[i]! < bestRank) {
          bestRank = rank[i]!;
          best = i;
        }
      }
      if (best < 0) return n;
      sym[best] = merged[best]!;
      for (let i = best + 1; i + 1 < n; i++) {
        sym[i] = sym[i + 1]!;
        rank[i] = rank[i + 1]!;
        merged[i] = merged[i + 1]!;
      }
      n--;
      for (const i of [best - 1, best]) {
        if (i < 0 || i + 1 >= n) continue;
        const slot = merges.find(sym[i]!, sym[i + 1]!);
        rank[i] = slot < 0 ? NONE : merges.value0(slot);
        merged[i] = slot < 0 ? -1 : merges.value1(slot);
      }
    }
  }

  /** The priority-queue merge over a linked list, for long words. */
  private mergeHeap(n: number): number {
    const { sym, merges } = this;
    const next = heapMerge(
      sym,
      n,
      this.heap,
      (a, b) => merges.find(a, b),
      (slot) => merges.value0(slot), // rank
      (slot) => merges.value1(slot), // merged symbol
    );
    let m = 0;
    for (let i = 0; i !== -1; i = next[i]!) sym[m++] = sym[i]!;
    return m;
  }

  private symbolText(id: number): string {
    return id < this.nVocab ? this.tokens[id]! : this.extraText[id - this.nVocab]!;
  }

  private emit(id: number, out: number[]): void {
    if (id < this.nVocab) {
      out.push(id);
      return;
    }
    // A symbol that is no token: llama.cpp looks up each of its bytes as a one-byte text,
    // which only ASCII characters can be.
    const text = this.extraText[id - this.nVocab]!;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) continue;
      const t = this.textToId.get(text[i]!);
      if (t !== undefined) out.push(t);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// WPM: BERT WordPiece, greedy longest match on words with a phantom '▁' in front.

/** The lookup tables of a WpmModel (see its fields). */
export interface WpmTables {
  byteTextToId: Map<string, number>;
  maxTokenLen: number;
}

export function* buildWpmTables(vocab: VocabData): Steps<WpmTables> {
  const byteTextToId = new Map<string, number>();
  let maxTokenLen = 0;
  let i = 0;
  for (const [text, id] of vocab.textToId) {
    if (i++ % STEP === 0) yield;
    const bytes = latin1OfUtf8(text);
    maxTokenLen = Math.max(maxTokenLen, bytes.length);
    byteTextToId.set(bytes, id);
  }
  return { byteTextToId, maxTokenLen };
}

export class WpmModel implements TokenizerModel {
  /** UTF-8 bytes of each token as a Latin-1 string -> id: lookups by byte ranges, as llama.cpp does. */
  private readonly byteTextToId: Map<string, number>;
  private readonly maxTokenLen: number;

  /** `tables`: from buildWpmTables(vocab), when it was run in slices; built here otherwise. */
  constructor(
    vocab: VocabData,
    private readonly unkId: number,
    private readonly lowercase: boolean,
    private readonly stripAccents: boolean,
    tables: WpmTables = runSync(buildWpmTables(vocab)),
  ) {
    this.byteTextToId = tables.byteTextToId;
    this.maxTokenLen = tables.maxTokenLen;
  }

  encode(text: string, out: number[]): void {
    for (const word of this.preprocess(text)) {
      if (word.length === 0) continue;
      const w = latin1OfUtf8('\u2581' + word);
      const n = w.length;
      const before = out.length;
      for (let i = 0; i < n; i++) {
        let match = false;
        for (let j = Math.min(n, i + this.maxTokenLen + 1); j > i; j--) {
          const id = this.byteTextToId.get(w.slice(i, j));
          if (id !== undefined) {
            out.push(id);
            match = true;
            i = j - 1;
            break;
          }
        }
        if (!match) {
          out.length = before; // discard the whole word
          break;
        }
      }
      if (out.length === before) out.push(this.unkId);
    }
  }

  /** BERT normalisation and split (llama.cpp's llm_tokenizer_wpm_session::preprocess). */
  private preprocess(text: string): string[] {
    const words: string[] = [''];
    for (let cp of toCodepoints(text)) {
      if (this.stripAccents) cp = nfdFirstCpt(cp);
      const f = cptFlags(cp);
      if (f & F_WHITESPACE) {
        if (words[words.length - 1]!.length) words.push('');
        continue;
      }
      if (cp === 0 || cp === 0xfffd || f & F_CONTROL) continue;
      if (this.stripAccents && f & F_MARK) continue;
      const s = String.fromCodePoint(this.lowercase ? toLowerCpt(cp) : cp);
      if (f & F_PUNCTUATION || (cp < 0x7f && f & F_SYMBOL) || isChineseChar(cp)) {
        if (words[words.length - 1]!.length) words.push('');
        words[words.length - 1] = s;
        words.push('');
      } else {
        words[words.length - 1] += s;
      }
    }
    if (!words[words.length - 1]!.length) words.pop();
    return words;
  }
}

function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) || // sic: llama.cpp follows HF's 0x2B920 here
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

function latin1OfUtf8(s: string): string {
  const bytes = utf8Encode(s);
  let out = '';
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192) as unknown as number[]);
  }
  return out;
}
