/**
 * The recognizer and the token mask.
 *
 * Recognizer: a byte-level pushdown automaton over the lowered grammar (gbnf.ts). A parser
 * state is a set of stacks; a stack is an interned linked list of frames, each frame the
 * program position of the next element to match in one alternative. Stacks are kept
 * normalized: their top is a byte-set element, or the stack is empty (the grammar may end
 * there). Each distinct set of stacks gets a state id, and transitions state x byte ->
 * state are computed on first use and cached: a lazily built DFA, shared by every
 * generation that uses the same compiled grammar.
 *
 * Mask: the vocabulary's token byte strings sit in a trie flattened in preorder (typed
 * arrays, tokens numbered in trie order so a subtree is one range of positions). The walk
 * follows DFA transitions from the current state and skips a subtree as soon as its byte
 * is dead; a subtree whose bytes all loop on the state it reaches (string contents, digit
 * runs) is accepted whole without walking it. Masks are cached per DFA state.
 *
 * `referenceAllowed` is the plain twin of the mask: it runs the stack-set recognizer on
 * each token's bytes without the DFA, the trie or any cache.
 */
import { SparrowError } from '../errors.js';
import type { ByteGrammar } from './gbnf.js';

const END = -2147483648;
const UNKNOWN = -2;
const DEAD = -1;
/** Stack id of the empty stack (the grammar may end). */
const ACCEPT = 0;
/** A state with more stacks than this is refused (a pathologically ambiguous grammar). */
const MAX_STACKS = 4096;
/** Interned stacks / states before the caches are dropped and rebuilt (bounds memory). */
const MAX_NODES = 2_000_000;
const MAX_STATES = 50_000;

// ---------------------------------------------------------------------------------------
// Vocabulary trie

/** The token bytes of a vocabulary in a preorder trie. Built once per tokenizer. */
export class VocabTrie {
  readonly nVocab: number;
  /** Tokens in trie order (sorted by bytes); tokens without bytes are not in it. */
  readonly order: Int32Array;
  readonly nNodes: number;
  readonly byte: Uint8Array;
  readonly depth: Int32Array;
  /** First node after this node's subtree. */
  readonly skip: Int32Array;
  /** Tokens that end at this node: order[tokLo, tokHi); the subtree's tokens: order[tokLo, subHi). */
  readonly tokLo: Int32Array;
  readonly tokHi: Int32Array;
  readonly subHi: Int32Array;
  /** Bytes used below this node (not its own), 8 x 32 bits per node. */
  readonly subBits: Int32Array;
  readonly maxDepth: number;
  /** Token bytes by id (empty for control tokens and for those excluded). */
  readonly pieces: Uint8Array[];
  /** Tokens that end generation. */
  readonly eog: Int32Array;

  constructor(pieces: Uint8Array[], eog: Iterable<number>) {
    const n = pieces.length;
    this.nVocab = n;
    this.eog = Int32Array.from(eog);
    const eogSet = new Set(this.eog);
    this.pieces = pieces.map((p, i) => (eogSet.has(i) ? new Uint8Array(0) : p));
    const ids: number[] = [];
    for (let i = 0; i < n; i++) if (this.pieces[i]!.length > 0) ids.push(i);
    const cmp = (a: Uint8Array, b: Uint8Array): number => {
      const m = Math.min(a.length, b.length);
      for (let k = 0; k < m; k++) if (a[k] !== b[k]) return a[k]! - b[k]!;
      return a.length - b.length;
    };
    ids.sort((x, y) => cmp(this.pieces[x]!, this.pieces[y]!) || x - y);
    this.order = Int32Array.from(ids);
    // Count nodes: sum over tokens of (length - lcp with the previous).
    let nodes = 0;
    let maxDepth = 0;
    for (let k = 0; k < ids.length; k++) {
      const p = this.pieces[ids[k]!]!;
      const prev = k > 0 ? this.pieces[ids[k - 1]!]! : new Uint8Array(0);
      let l = 0;
      while (l < p.length && l < prev.length && p[l] === prev[l]) l++;
      nodes += p.length - l;
      if (p.length > maxDepth) maxDepth = p.length;
    }
    this.nNodes = nodes;
    this.maxDepth = maxDepth;
    this.byte = new Uint8Array(nodes);
    this.depth = new Int32Array(nodes);
    this.skip = new Int32Array(nodes);
    this.tokLo = new Int32Array(nodes);
    this.tokHi = new Int32Array(nodes);
    this.subHi = new Int32Array(nodes);
    const parent = new Int32Array(nodes);
    const path: number[] = []; // node at each depth on the current path
    let next = 0;
    const close = (to: number, k: number) => {
      while (path.length > to) {
        const node = path.pop()!;
        this.skip[node] = next;
        this.subHi[node] = k;
      }
    };
    for (let k = 0; k < ids.length; k++) {
      const p = this.pieces[ids[k]!]!;
      // Depth of the common prefix with the current path.
      let l = 0;
      while (l < path.length && l < p.length && this.byte[path[l]!] === p[l]) l++;
      close(l, k);
      if (l === p.length) {
        // Same bytes as the previous token: it ends at the same node.
        this.tokHi[path[l - 1]!] = k + 1;
        continue;
      }
      for (let d = l; d < p.length; d++) {
        const node = next++;
        this.byte[node] = p[d]!;
        this.depth[node] = d;
        parent[node] = d > 0 ? path[d - 1]! : -1;
        this.tokLo[node] = k;
        this.tokHi[node] = k;
        path.push(node);
      }
      this.tokHi[path[p.length - 1]!] = k + 1;
    }
    close(0, ids.length);
    this.subBits = new Int32Array(nodes * 8);
    for (let node = nodes - 1; node >= 0; node--) {
      const p = parent[node]!;
      if (p < 0) continue;
      const b = this.byte[node]!;
      const sb = this.subBits;
      sb[p * 8 + (b >> 5)]! |= 1 << (b & 31);
      for (let w = 0; w < 8; w++) sb[p * 8 + w]! |= sb[node * 8 + w]!;
    }
  }
}

/** Vocabulary tries are cached per tokenizer object. */
const tries = new WeakMap<object, VocabTrie>();

export interface VocabSource {
  readonly vocabSize: number;
  piece(id: number, special: boolean): Uint8Array;
  isEog(id: number): boolean;
}

export function vocabTrie(tok: VocabSource, key: object = tok): VocabTrie {
  let t = tries.get(key);
  if (!t) {
    const pieces: Uint8Array[] = [];
    const eog: number[] = [];
    for (let i = 0; i < tok.vocabSize; i++) {
      pieces.push(tok.piece(i, false));
      if (tok.isEog(i)) eog.push(i);
    }
    t = new VocabTrie(pieces, eog);
    tries.set(key, t);
  }
  return t;
}

// ---------------------------------------------------------------------------------------
// Recognizer

/** A mask: allowed trie positions as ranges [lo0, hi0, lo1, hi1, ...], count, and whether EOG is allowed. */
export interface TokenMask {
  ranges: Int32Array;
  count: number;
  eog: boolean;
}

export class Recognizer {
  readonly program: Int32Array;
  private readonly ruleAlts: Int32Array[];
  private readonly sets: Uint8Array;
  private readonly root: number;

  // Interned stacks: node i = (pos[i], below[i]); node 0 is the empty stack.
  private sPos: Int32Array = new Int32Array(1024);
  private sBelow: Int32Array = new Int32Array(1024);
  private nStacks = 1;
  private stackIds = new Map<number, number>();

  // States: sets of normalized stacks.
  private stateStacks: Int32Array[] = [];
  private stateIds = new Map<string, number>();
  private trans: Int32Array = new Int32Array(0);
  private loops: (Int32Array | null)[] = [];
  private masks: (TokenMask | null)[] = [];
  /** Start state. */
  initial = 0;
  /** Cache statistics (for the benchmark). */
  stats = { states: 0, maskHits: 0, maskMisses: 0, resets: 0 };

  constructor(g: ByteGrammar) {
    const prog: number[] = [];
    this.ruleAlts = g.rules.map((alts) =>
      Int32Array.from(
        alts.map((alt) => {
          const start = prog.length;
          for (const e of alt) prog.push(e);
          prog.push(END);
          return start;
        }),
      ),
    );
    this.program = Int32Array.from(prog);
    this.sets = new Uint8Array(g.byteSets.length * 256);
    g.byteSets.forEach((s, k) => this.sets.set(s, k * 256));
    this.root = g.root;
    this.reset();
  }

  /** Drops every cache (keeps the grammar). Called when the caches grow past their bounds. */
  private reset(): void {
    this.nStacks = 1;
    this.stackIds.clear();
    this.stateStacks = [];
    this.stateIds.clear();
    this.trans = new Int32Array(256 * 64).fill(UNKNOWN);
    this.loops = [];
    this.masks = [];
    const out = new Set<number>();
    for (const a of this.ruleAlts[this.root]!) this.normalize(this.intern(a, ACCEPT), out, new Set());
    this.initial = this.internState(out);
    if (this.initial < 0) throw new SparrowError('grammar error: the grammar matches nothing', 'ERR_GRAMMAR_SYNTAX');
  }

  private intern(pos: number, below: number): number {
    const key = pos * 2147483648 + below;
    let id = this.stackIds.get(key);
    if (id === undefined) {
      id = this.nStacks++;
      if (id >= this.sPos.length) {
        const np = new Int32Array(this.sPos.length * 2);
        np.set(this.sPos);
        this.sPos = np;
        const nb = new Int32Array(this.sBelow.length * 2);
        nb.set(this.sBelow);
        this.sBelow = nb;
      }
      this.sPos[id] = pos;
      this.sBelow[id] = below;
      this.stackIds.set(key, id);
    }
    return id;
  }

  /** Adds the normalized forms of stack `id` to `out`. */
  private normalize(id: number, out: Set<number>, seen: Set<number>): void {
    if (seen.has(id)) return;
    seen.add(id);
    if (id === ACCEPT) {
      out.add(ACCEPT);
      return;
    }
    const pos = this.sPos[id]!;
    const e = this.program[pos]!;
    const below = this.sBelow[id]!;
    if (e === END) {
      this.normalize(below, out, seen);
    } else if (e < 0) {
      out.add(id);
    } else {
      // A rule reference: the continuation below, then each alternative on top. A reference
      // in last position pops straight to `below` (no frame for an ended alternative).
      const cont = this.program[pos + 1] === END ? below : this.intern(pos + 1, below);
      for (const a of this.ruleAlts[e]!) this.normalize(this.intern(a, cont), out, seen);
    }
    if (out.size > MAX_STACKS) {
      throw new SparrowError(`grammar error: the grammar is too ambiguous (more than ${MAX_STACKS} parses at once)`, 'ERR_GRAMMAR_AMBIGUOUS');
    }
  }

  private internState(stacks: Set<number>): number {
    if (stacks.size === 0) return DEAD;
    const arr = Int32Array.from(stacks).sort();
    const key = arr.join(',');
    let s = this.stateIds.get(key);
    if (s === undefined) {
      s = this.stateStacks.length;
      this.stateStacks.push(arr);
      this.stateIds.set(key, s);
      this.loops.push(null);
      this.masks.push(null);
      if ((s + 1) * 256 > this.trans.length) {
        const t = new Int32Array(this.trans.length * 2).fill(UNKNOWN);
        t.set(this.trans);
        this.trans = t;
      }
      this.stats.states = s + 1;
    }
    return s;
  }

  /** The stacks after reading `b` from each stack of `stacks` (the reference step). */
  private step(stacks: ArrayLike<number>, b: number): Set<number> {
    const out = new Set<number>();
    const seen = new Set<number>();
    for (let i = 0; i < stacks.length; i++) {
      const id = stacks[i]!;
      if (id === ACCEPT) continue;
      const pos = this.sPos[id]!;
      const set = -this.program[pos]! - 1;
      if (this.sets[set * 256 + b]) this.normalize(this.intern(pos + 1, this.sBelow[id]!), out, seen);
    }
    return out;
  }

  /** DFA transition (cached). */
  next(s: number, b: number): number {
    const t = this.trans[s * 256 + b]!;
    if (t !== UNKNOWN) return t;
    const ns = this.internState(this.step(this.stateStacks[s]!, b));
    this.trans[s * 256 + b] = ns;
    return ns;
  }

  /** True when the grammar may end in state s. */
  accepting(s: number): boolean {
    return this.stateStacks[s]![0] === ACCEPT;
  }

  /** True when the grammar must end in state s (nothing more can follow). */
  final(s: number): boolean {
    const st = this.stateStacks[s]!;
    return st.length === 1 && st[0] === ACCEPT;
  }

  /** Whether the caches have grown past their bounds; if so the caller resets and re-walks. */
  overgrown(): boolean {
    return this.nStacks > MAX_NODES || this.stateStacks.length > MAX_STATES;
  }

  /** Drops the caches; `replay` brings each live matcher back to its state (their bytes). */
  rebuild(): void {
    this.stats.resets++;
    this.reset();
  }

  /** Bytes b with next(s, b) === s, as 8 x 32 bits. */
  private loopBits(s: number): Int32Array {
    let l = this.loops[s];
    if (!l) {
      l = new Int32Array(8);
      for (let b = 0; b < 256; b++) if (this.next(s, b) === s) l[b >> 5]! |= 1 << (b & 31);
      this.loops[s] = l;
    }
    return l;
  }

  /** The allowed tokens in state s (cached per state). */
  mask(s: number, trie: VocabTrie): TokenMask {
    const cached = this.masks[s];
    if (cached) {
      this.stats.maskHits++;
      return cached;
    }
    this.stats.maskMisses++;
    const ranges: number[] = [];
    let count = 0;
    const add = (lo: number, hi: number) => {
      if (hi <= lo) return;
      count += hi - lo;
      const m = ranges.length;
      if (m > 0 && ranges[m - 1] === lo) ranges[m - 1] = hi;
      else ranges.push(lo, hi);
    };
    const stateAt = new Int32Array(trie.maxDepth + 1);
    stateAt[0] = s;
    const { byte, depth, skip, tokLo, tokHi, subHi, subBits, nNodes } = trie;
    let n = 0;
    while (n < nNodes) {
      const d = depth[n]!;
      const ns = this.next(stateAt[d]!, byte[n]!);
      if (ns < 0) {
        n = skip[n]!;
        continue;
      }
      add(tokLo[n]!, tokHi[n]!);
      if (skip[n]! - n > 8) {
        const loop = this.loopBits(ns);
        const o = n * 8;
        let inside = true;
        for (let w = 0; w < 8; w++) {
          if ((subBits[o + w]! & ~loop[w]!) !== 0) {
            inside = false;
            break;
          }
        }
        if (inside) {
          add(tokHi[n]!, subHi[n]!);
          n = skip[n]!;
          continue;
        }
      }
      stateAt[d + 1] = ns;
      n++;
    }
    const mask: TokenMask = { ranges: Int32Array.from(ranges), count, eog: this.accepting(s) };
    this.masks[s] = mask;
    return mask;
  }

  /** Runs bytes from state s; DEAD when rejected. */
  run(s: number, bytes: Uint8Array): number {
    for (let i = 0; i < bytes.length && s >= 0; i++) s = this.next(s, bytes[i]!);
    return s;
  }

  /**
   * Reference twin: the stacks after `prefix`, then for each token whether its bytes are
   * accepted, straight from the pushdown step (no DFA, trie or mask cache).
   */
  referenceAllowed(prefix: Uint8Array, pieces: readonly Uint8Array[]): { allowed: Uint8Array; accepting: boolean } {
    let stacks: ArrayLike<number> = [];
    {
      const out = new Set<number>();
      for (const a of this.ruleAlts[this.root]!) this.normalize(this.intern(a, ACCEPT), out, new Set());
      stacks = [...out];
    }
    for (const b of prefix) stacks = [...this.step(stacks, b)];
    const accepting = Array.from(stacks).includes(ACCEPT);
    const allowed = new Uint8Array(pieces.length);
    pieces.forEach((p, i) => {
      if (p.length === 0) return;
      let st: ArrayLike<number> = stacks;
      for (const b of p) {
        if (st.length === 0) break;
        st = [...this.step(st, b)];
      }
      allowed[i] = st.length > 0 ? 1 : 0;
    });
    return { allowed, accepting };
  }

  /** Reference: whether the whole of `bytes` is a complete sentence of the grammar. */
  referenceAccepts(bytes: Uint8Array): boolean {
    const out = new Set<number>();
    for (const a of this.ruleAlts[this.root]!) this.normalize(this.intern(a, ACCEPT), out, new Set());
    let stacks: number[] = [...out];
    for (const b of bytes) {
      stacks = [...this.step(stacks, b)];
      if (stacks.length === 0) return false;
    }
    return stacks.includes(ACCEPT);
  }
}
