/**
 * The recognizer and the token mask.
 *
 * Recognizer: a byte-level pushdown automaton over the lowered grammar (gbnf.ts). A parser
 * state is a set of stacks; a stack is an interned linked list of frames, each frame the
 * program position of the next element to match in one alternative. Stacks are kept
 * normalized: their top is a byte-set element, or the stack is empty (the grammar may end
 * there). Each distinct set of stacks gets a state id, and transitions state x byte ->
 * state are computed on first use and cached: a lazily built DFA, shared by every
 * generation that uses the same compiled grammar. A state's row is grouped on first use
 * (bytes that advance the same stacks), and each group's successor state is built when a
 * transition first needs it. Stacks are interned in an open-addressing table and a DFA
 * step runs without allocating (a generation-stamped visited set, a reusable buffer).
 *
 * Mask: the vocabulary's token byte strings sit in a trie flattened in preorder (typed
 * arrays, tokens numbered in trie order so a subtree is one range of positions). The walk
 * follows DFA transitions from the current state and skips a subtree as soon as its byte
 * is dead; a subtree whose bytes all loop on the state it reaches (string contents, digit
 * runs) is accepted whole without walking it, by bytes or by characters (following only
 * the lead bytes the subtree uses). The trie part is cached per canonical state (see
 * canonOf), the long tokens' part per state canonical for their length (canonLongOf), the
 * whole mask per DFA state. A state inside a counted repetition of one byte class (every
 * byte of the class leads to one state for L levels, then none does or the chain loops)
 * may take its trie part from the class's run table (classRuns, per vocabulary): the
 * tokens made of the class are allowed by length, and only the subtrees that leave the
 * class are walked (classPart). The start state's mask is computed when the grammar is
 * compiled.
 *
 * `referenceAllowed` is the plain twin of the mask: it runs the stack-set recognizer on
 * each token's bytes without the DFA, the trie or any cache.
 */
import { SparrowError } from '../errors.js';
import type { ByteGrammar } from './gbnf.js';

const END = -2147483648;
const UNKNOWN = -2;
/** Transitions PENDING - g (g >= 0): byte group g of the row, whose state is not built yet. */
const PENDING = -3;
const DEAD = -1;
/** Stack id of the empty stack (the grammar may end). */
const ACCEPT = 0;
/** A state with more stacks than this is refused (a pathologically ambiguous grammar). */
const MAX_STACKS = 4096;
/** Interned stacks / states before the caches are dropped and rebuilt (bounds memory). */
const MAX_NODES = 2_000_000;
const MAX_STATES = 20_000;
/**
 * For each byte C0-FF as the lead of a UTF-8 character: the decoder state after it
 * (continuation bytes left * 8 + the range of the next one, as VocabTrie.utf8Need);
 * 255 for bytes that never start a well-formed character.
 */
const LEAD_NEED = Uint8Array.from({ length: 64 }, (_, i) => {
  const b = 0xc0 + i;
  if (b >= 0xc2 && b <= 0xdf) return 8;
  if (b === 0xe0) return 16 + 1;
  if (b === 0xed) return 16 + 2;
  if (b >= 0xe1 && b <= 0xef) return 16;
  if (b === 0xf0) return 24 + 3;
  if (b === 0xf4) return 24 + 4;
  if (b >= 0xf1 && b <= 0xf3) return 24;
  return 255;
});

// ---------------------------------------------------------------------------------------
// Vocabulary trie

/**
 * Tokens longer than this many bytes (about 0.1% of a BPE vocabulary: runs of spaces or
 * dashes) stay out of the trie and are checked one by one, so that a mask never looks
 * further ahead than this: it bounds the trie's depth, and with it how far bounded
 * repetitions must be followed before their states can share a mask.
 */
export const LONG_TOKEN = 32;

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
  /** Levels below this node (0 for a leaf). */
  readonly subDepth: Int32Array;
  /**
   * 1 when the path to this node ends on a UTF-8 character boundary and every byte string
   * below it is well-formed UTF-8 (a character cut at the token's end allowed).
   */
  readonly utf8Clean: Uint8Array;
  /**
   * For a node inside a character whose subtree is well-formed UTF-8: the decoder state
   * after it (continuation bytes left * 8 + the range of the next one; see the constructor).
   * 0 on a character boundary, 255 when the subtree is not well-formed.
   */
  readonly utf8Need: Uint8Array;
  readonly maxDepth: number;
  /** Token bytes by id (empty for control tokens and for those excluded). */
  readonly pieces: Uint8Array[];
  /** Tokens that end generation. */
  readonly eog: Int32Array;
  /** Tokens longer than LONG_TOKEN bytes: not in the trie, checked one by one. */
  readonly long: Int32Array;
  /** vocabFingerprint of the vocabulary. */
  fingerprint = 0;
  /** The text of control tokens (never allowed by a grammar; seen by lazy triggers). */
  specialText = new Map<number, Uint8Array>();
  /** Class-run tables (see classRuns) by byte class, least recently used first. */
  readonly runTables = new Map<string, ClassRuns>();

  constructor(pieces: Uint8Array[], eog: Iterable<number>) {
    const n = pieces.length;
    this.nVocab = n;
    this.eog = Int32Array.from(eog);
    const eogSet = new Set(this.eog);
    this.pieces = pieces.map((p, i) => (eogSet.has(i) ? new Uint8Array(0) : p));
    const ids: number[] = [];
    const long: number[] = [];
    for (let i = 0; i < n; i++) {
      const len = this.pieces[i]!.length;
      if (len > LONG_TOKEN) long.push(i);
      else if (len > 0) ids.push(i);
    }
    this.long = Int32Array.from(long);
    // Byte order = code-unit order of the bytes read as latin1 (a native string compare).
    const keys = this.pieces.map((p) => (p.length ? latin1(p) : ''));
    ids.sort((x, y) => (keys[x]! < keys[y]! ? -1 : keys[x]! > keys[y]! ? 1 : x - y));
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
    this.subDepth = new Int32Array(nodes);
    // UTF-8 decoder state after each node: remaining continuation bytes * 8 + the range the
    // next one must be in (0: 80-BF, 1: A0-BF after E0, 2: 80-9F after ED, 3: 90-BF after F0,
    // 4: 80-8F after F4); 255: malformed.
    const need = new Uint8Array(nodes);
    const CONT: Array<[number, number]> = [[0x80, 0xbf], [0xa0, 0xbf], [0x80, 0x9f], [0x90, 0xbf], [0x80, 0x8f]];
    for (let node = 0; node < nodes; node++) {
      const p = parent[node]!;
      const st = p < 0 ? 0 : need[p]!;
      const b = this.byte[node]!;
      let ns = 255;
      if (st !== 255) {
        if (st >= 8) {
          const [lo, hi] = CONT[st & 7]!;
          if (b >= lo && b <= hi) ns = ((st >> 3) - 1) * 8;
        } else if (b < 0x80) ns = 0;
        else if (b >= 0xc2 && b <= 0xdf) ns = 8;
        else if (b === 0xe0) ns = 16 + 1;
        else if (b === 0xed) ns = 16 + 2;
        else if (b >= 0xe1 && b <= 0xef) ns = 16;
        else if (b === 0xf0) ns = 24 + 3;
        else if (b === 0xf4) ns = 24 + 4;
        else if (b >= 0xf1 && b <= 0xf3) ns = 24;
      }
      need[node] = ns;
    }
    const clean = new Uint8Array(nodes).fill(1);
    for (let node = nodes - 1; node >= 0; node--) {
      const p = parent[node]!;
      if (p >= 0 && (need[node] === 255 || !clean[node])) clean[p] = 0;
    }
    // Nodes inside a character: clean when the character's rest and all that follows is.
    this.utf8Need = new Uint8Array(nodes);
    for (let node = 0; node < nodes; node++) {
      if (need[node] === 255) clean[node] = 0;
      this.utf8Need[node] = clean[node] ? need[node]! : 255;
      if (need[node] !== 0) clean[node] = 0;
    }
    this.utf8Clean = clean;
    for (let node = nodes - 1; node >= 0; node--) {
      const p = parent[node]!;
      if (p < 0) continue;
      if (this.subDepth[node]! + 1 > this.subDepth[p]!) this.subDepth[p] = this.subDepth[node]! + 1;
      const b = this.byte[node]!;
      const sb = this.subBits;
      sb[p * 8 + (b >> 5)]! |= 1 << (b & 31);
      for (let w = 0; w < 8; w++) sb[p * 8 + w]! |= sb[node * 8 + w]!;
    }
  }
}

/**
 * The trie split along one byte class C: the tokens made only of C's bytes, and the
 * subtrees where a token first leaves C. For a state where every byte of C leads to one
 * state for L levels (a counted repetition of C), the first are allowed by length alone
 * and only the second are walked (see Recognizer.classPart).
 */
export interface ClassRuns {
  /** Runs of consecutive trie positions whose tokens are all made of C's bytes: [segLo[i], segHi[i]). */
  segLo: Int32Array;
  segHi: Int32Array;
  /** The longest token of each run. */
  segMax: Int32Array;
  /** The token lengths of run i: len[segOff[i] + (position - segLo[i])]. */
  segOff: Int32Array;
  len: Uint8Array;
  /** Nodes, in preorder, whose byte is not in C and whose ancestors' bytes all are. */
  exits: Int32Array;
  /**
   * Cost estimates by L (0 to the trie's depth): positions in runs whose longest token is
   * longer than L (looked at one by one), and the nodes a plain walk visits inside C up to
   * depth L (the class tokens of at most L + 1 bytes, and the nodes leaving C above them).
   */
  perToken: Int32Array;
  walkNodes: Int32Array;
  /** Approximate size in bytes. */
  bytes: number;
}

/**
 * Classes with more bytes than this (string contents: nearly all of printable ASCII) get no
 * class-run table: most of their exits stay alive (quotes, escapes, characters), where the
 * plain walk's subtree shortcuts do better, and their table would cover most of the trie.
 */
const MAX_CLASS_BYTES = 90;

/** Memory for class-run tables per vocabulary (bytes); the least recently used go first. */
const RUN_TABLE_BYTES = 24 << 20;

/**
 * The class-run table of `trie` for the class `bits` (8 x 32 bits); built on first use, kept
 * per vocabulary while the tables fit in `budget` bytes (the least recently used are dropped;
 * the newest one is kept even alone over it).
 */
export function classRuns(trie: VocabTrie, bits: ArrayLike<number>, budget = RUN_TABLE_BYTES): ClassRuns {
  const key = Array.prototype.join.call(bits, ',');
  const tables = trie.runTables;
  let t = tables.get(key);
  if (t) {
    tables.delete(key); // most recently used last
    tables.set(key, t);
    return t;
  }
  const { byte, depth, skip, tokLo, tokHi, nNodes, maxDepth } = trie;
  const segLo: number[] = [];
  const segHi: number[] = [];
  const segMax: number[] = [];
  const segOff: number[] = [];
  const len: number[] = [];
  const exits: number[] = [];
  const nodesAt = new Int32Array(maxDepth + 2);
  let n = 0;
  // Preorder, descending only into nodes whose byte is in the class: every node visited has
  // only class bytes above it.
  while (n < nNodes) {
    const b = byte[n]!;
    const d = depth[n]!;
    nodesAt[d]!++;
    if (((bits[b >> 5]! >>> (b & 31)) & 1) === 0) {
      exits.push(n);
      n = skip[n]!;
      continue;
    }
    const lo = tokLo[n]!;
    const hi = tokHi[n]!;
    if (hi > lo) {
      const l = d + 1;
      for (let p = lo; p < hi; p++) len.push(l);
      const k = segHi.length - 1;
      if (k >= 0 && segHi[k] === lo) {
        segHi[k] = hi;
        if (l > segMax[k]!) segMax[k] = l;
      } else {
        segLo.push(lo);
        segHi.push(hi);
        segMax.push(l);
        segOff.push(len.length - (hi - lo));
      }
    }
    n++;
  }
  const perToken = new Int32Array(maxDepth + 1);
  const walkNodes = new Int32Array(maxDepth + 1);
  for (let k = 0; k < segLo.length; k++) {
    const size = segHi[k]! - segLo[k]!;
    for (let L = 0; L < segMax[k]! && L <= maxDepth; L++) perToken[L]! += size;
  }
  for (let L = 0, acc = 0; L <= maxDepth; L++) {
    acc += nodesAt[L]!;
    walkNodes[L] = acc;
  }
  const nSeg = segLo.length;
  t = {
    segLo: Int32Array.from(segLo),
    segHi: Int32Array.from(segHi),
    segMax: Int32Array.from(segMax),
    segOff: Int32Array.from(segOff),
    len: Uint8Array.from(len),
    exits: Int32Array.from(exits),
    perToken,
    walkNodes,
    bytes: 16 * nSeg + len.length + 4 * exits.length + 8 * (maxDepth + 1) + 200,
  };
  let total = t.bytes;
  for (const x of tables.values()) total += x.bytes;
  for (const [k, x] of tables) {
    if (total <= budget) break;
    tables.delete(k);
    total -= x.bytes;
  }
  tables.set(key, t);
  return t;
}

/** A hash of a vocabulary's token bytes and end-of-generation tokens (to match tokenizers that are different objects). */
export function vocabFingerprint(n: number, piece: (id: number) => Uint8Array, isEog: (id: number) => boolean): number {
  let h = 0x811c9dc5 ^ n;
  for (let id = 0; id < n; id++) {
    const p = piece(id);
    h = Math.imul(h ^ (p.length + (isEog(id) ? 0x10000 : 0)), 0x01000193);
    for (let i = 0; i < p.length; i++) h = Math.imul(h ^ p[i]!, 0x01000193);
  }
  return h >>> 0;
}

function latin1(p: Uint8Array): string {
  let s = '';
  for (let i = 0; i < p.length; i += 4096) s += String.fromCharCode(...p.subarray(i, i + 4096));
  return s;
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
    const special = new Map<number, Uint8Array>();
    for (let i = 0; i < tok.vocabSize; i++) {
      const p = tok.piece(i, false);
      pieces.push(p);
      if (tok.isEog(i)) eog.push(i);
      else if (p.length === 0) {
        const sp = tok.piece(i, true);
        if (sp.length > 0) special.set(i, sp);
      }
    }
    t = new VocabTrie(pieces, eog);
    t.specialText = special;
    const eogSet = new Set(eog);
    t.fingerprint = vocabFingerprint(pieces.length, (id) => pieces[id]!, (id) => eogSet.has(id));
    tries.set(key, t);
  }
  return t;
}

// ---------------------------------------------------------------------------------------
// Recognizer

/** A mask: allowed trie positions as ranges [lo0, hi0, lo1, hi1, ...], count, and whether EOG is allowed. */
export interface TokenMask {
  /** Allowed trie positions: [lo0, hi0, lo1, hi1, ...]. */
  ranges: Int32Array;
  /** Tokens in the ranges. */
  count: number;
  eog: boolean;
  /** Allowed tokens among the long ones (ids). */
  long: Int32Array;
}

export class Recognizer {
  program: Int32Array;
  private readonly ruleAlts: Int32Array[];
  private readonly sets: Uint8Array;
  private readonly root: number;

  // Interned stacks: node i = (pos[i], below[i]); node 0 is the empty stack.
  private sPos: Int32Array = new Int32Array(1024);
  private sBelow: Int32Array = new Int32Array(1024);
  private nStacks = 1;
  /** Open-addressing table of stack ids by (pos, below); 0 = empty slot (the empty stack is never looked up). */
  private stackTable: Int32Array = new Int32Array(4096);
  /** Per stack id: the step generation that last saw it (the fast step's visited set). */
  private seenGen: Int32Array = new Int32Array(1024);
  private gen = 0;
  /** The fast step's output: normalized stacks, outLen of them. */
  private outBuf: Int32Array = new Int32Array(256);
  private outLen = 0;

  // States: sets of normalized stacks.
  private stateStacks: Int32Array[] = [];
  /** Hash of a state's stacks -> the states with that hash. */
  private stateIds = new Map<number, number | number[]>();
  private trans: Int32Array = new Int32Array(0);
  private uniform: (Int32Array | null)[] = [];
  private masks: (TokenMask | null)[] = [];
  private parts: ({ ranges: Int32Array; count: number } | null)[] = [];
  /** Per state with a filled row: a byte of each group (see fillRow). */
  private groupRep: (Int32Array | null)[] = [];
  /** Start state. */
  initial = 0;
  /** Cache statistics (for the benchmark). */
  stats = { states: 0, maskHits: 0, maskMisses: 0, resets: 0, nodesWalked: 0, classParts: 0 };
  /** Whether trie parts may use the class-run tables (classPart); off, every trie part is a plain walk (tests compare the two). */
  useClassRuns = true;

  private readonly repChains: number[][];
  /** Position -> canonical position (see canonOf), for the trie depth it was built for. */
  private posCanon: Int32Array | null = null;
  private canonDepth = 0;
  private canon: number[] = [];
  private canonStacks = new Map<number, number>();
  /** The same for long tokens (see canonLongOf), and their results per canonical state. */
  private longDepth = 0;
  private longCanonMap: Int32Array | null = null;
  private longCanon = new Map<number, number>();
  private longCanonStacks = new Map<number, number>();
  private longs = new Map<number, Int32Array>();
  /** The vocabulary whose class-run tables prepare() made sure of. */
  private classesFor: VocabTrie | null = null;

  constructor(g: ByteGrammar) {
    this.repChains = g.repChains ?? [];
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
    this.stackTable = new Int32Array(4096);
    this.seenGen.fill(0);
    this.gen = 0;
    this.stateStacks = [];
    this.stateIds.clear();
    this.trans = new Int32Array(256 * 64).fill(UNKNOWN);
    this.uniform = [];
    this.masks = [];
    this.parts = [];
    this.groupRep = [];
    this.canon = [];
    this.canonStacks.clear();
    this.longCanon.clear();
    this.longCanonStacks.clear();
    this.longs.clear();
    this.midChar.clear();
    this.beginStep();
    for (const a of this.ruleAlts[this.root]!) this.fastNormalize(this.intern(a, ACCEPT));
    this.initial = this.internOut();
    if (this.initial < 0) throw new SparrowError('grammar error: the grammar matches nothing', 'ERR_GRAMMAR_SYNTAX');
  }

  private intern(pos: number, below: number): number {
    let table = this.stackTable;
    let mask = table.length - 1;
    let h = (Math.imul(pos, 0x9e3779b1) ^ Math.imul(below + 0x7f4a7c15, 0x85ebca6b)) >>> 0;
    h = (h ^ (h >>> 15)) & mask;
    for (;;) {
      const id = table[h]!;
      if (id === 0) break;
      if (this.sPos[id] === pos && this.sBelow[id] === below) return id;
      h = (h + 1) & mask;
    }
    const id = this.nStacks++;
    if (id >= this.sPos.length) {
      const cap = this.sPos.length * 2;
      const np = new Int32Array(cap);
      np.set(this.sPos);
      this.sPos = np;
      const nb = new Int32Array(cap);
      nb.set(this.sBelow);
      this.sBelow = nb;
      const ng = new Int32Array(cap);
      ng.set(this.seenGen);
      this.seenGen = ng;
    }
    this.sPos[id] = pos;
    this.sBelow[id] = below;
    if (id * 2 >= table.length) {
      // Keep the load under one half: rehash every stack into a table twice the size.
      table = new Int32Array(table.length * 2);
      mask = table.length - 1;
      for (let k = 1; k <= id; k++) {
        let g = (Math.imul(this.sPos[k]!, 0x9e3779b1) ^ Math.imul(this.sBelow[k]! + 0x7f4a7c15, 0x85ebca6b)) >>> 0;
        g = (g ^ (g >>> 15)) & mask;
        while (table[g] !== 0) g = (g + 1) & mask;
        table[g] = k;
      }
      this.stackTable = table;
    } else table[h] = id;
    return id;
  }

  /** Starts a fast step: an empty output and a fresh visited set. */
  private beginStep(): void {
    this.outLen = 0;
    if (++this.gen === 0x7fffffff) {
      this.seenGen.fill(0);
      this.gen = 1;
    }
  }

  /**
   * normalize() for the DFA: the visited set is a generation stamp per stack id and the
   * output a reusable buffer (no Set per step). Same closure as normalize().
   */
  private fastNormalize(id: number): void {
    if (this.seenGen[id] === this.gen) return;
    this.seenGen[id] = this.gen;
    if (id !== ACCEPT) {
      const pos = this.sPos[id]!;
      const e = this.program[pos]!;
      const below = this.sBelow[id]!;
      if (e === END) {
        this.fastNormalize(below);
        return;
      }
      if (e >= 0) {
        const cont = this.program[pos + 1] === END ? below : this.intern(pos + 1, below);
        const alts = this.ruleAlts[e]!;
        for (let a = 0; a < alts.length; a++) this.fastNormalize(this.intern(alts[a]!, cont));
        return;
      }
    }
    if (this.outLen === this.outBuf.length) {
      const nb = new Int32Array(this.outBuf.length * 2);
      nb.set(this.outBuf);
      this.outBuf = nb;
    }
    this.outBuf[this.outLen++] = id;
    if (this.outLen > MAX_STACKS) {
      throw new SparrowError(`grammar error: the grammar is too ambiguous (more than ${MAX_STACKS} parses at once)`, 'ERR_GRAMMAR_AMBIGUOUS');
    }
  }

  /** The fast step: the stacks after reading `b` from each of `stacks`, left in outBuf. */
  private fastStep(stacks: Int32Array, b: number): void {
    this.beginStep();
    for (let i = 0; i < stacks.length; i++) {
      const id = stacks[i]!;
      if (id === ACCEPT) continue;
      const pos = this.sPos[id]!;
      if (this.sets[(-this.program[pos]! - 1) * 256 + b]) this.fastNormalize(this.intern(pos + 1, this.sBelow[id]!));
    }
  }

  /** The state of the stacks in outBuf (DEAD when there are none). */
  private internOut(): number {
    if (this.outLen === 0) return DEAD;
    return this.internSorted(this.outBuf.slice(0, this.outLen).sort());
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
    return this.internSorted(Int32Array.from(stacks).sort());
  }

  /** The state id of a sorted, duplicate-free array of stacks (a new state when unseen). */
  private internSorted(arr: Int32Array): number {
    let h = 0x811c9dc5 ^ arr.length;
    for (let i = 0; i < arr.length; i++) h = Math.imul(h ^ arr[i]!, 0x01000193);
    h &= 0x3fffffff; // a small-integer key
    const found = this.stateIds.get(h);
    if (found !== undefined) {
      for (const cand of typeof found === 'number' ? [found] : found) {
        const other = this.stateStacks[cand]!;
        if (other.length !== arr.length) continue;
        let same = true;
        for (let i = 0; i < arr.length; i++) {
          if (other[i] !== arr[i]) {
            same = false;
            break;
          }
        }
        if (same) return cand;
      }
    }
    {
      const s = this.stateStacks.length;
      if (found === undefined) this.stateIds.set(h, s);
      else if (typeof found === 'number') this.stateIds.set(h, [found, s]);
      else found.push(s);
      this.stateStacks.push(arr);
      this.uniform.push(null);
      this.canon.push(-1);
      this.masks.push(null);
      this.parts.push(null);
      this.groupRep.push(null);
      if ((s + 1) * 256 > this.trans.length) {
        const t = new Int32Array(this.trans.length * 2).fill(UNKNOWN);
        t.set(this.trans);
        this.trans = t;
      }
      this.stats.states = s + 1;
      return s;
    }
  }

  /** The stacks after reading `b` from each stack of `stacks` (the reference step). */
  private step(stacks: ArrayLike<number>, b: number, out = new Set<number>(), seen = new Set<number>()): Set<number> {
    out.clear();
    seen.clear();
    for (let i = 0; i < stacks.length; i++) {
      const id = stacks[i]!;
      if (id === ACCEPT) continue;
      const pos = this.sPos[id]!;
      const set = -this.program[pos]! - 1;
      if (this.sets[set * 256 + b]) this.normalize(this.intern(pos + 1, this.sBelow[id]!), out, seen);
    }
    return out;
  }

  /**
   * DFA transition (cached). The first miss in a state fills its whole row: bytes that
   * advance the same subset of its stacks lead to the same state, so they form one group.
   * A group's state is built on the first transition that needs it (until then its bytes
   * hold PENDING - group): a walk that reaches a state through a few bytes does not pay for
   * the states of all its other groups (each level of a counted string has a dozen).
   */
  next(s: number, b: number): number {
    let t = this.trans[s * 256 + b]!;
    if (t >= DEAD) return t;
    if (t === UNKNOWN) {
      this.fillRow(s);
      t = this.trans[s * 256 + b]!;
      if (t >= DEAD) return t;
    }
    return this.materialize(s, t);
  }

  /** Builds the state of a pending group of row s (code PENDING - group) and stores it for all its bytes. */
  private materialize(s: number, code: number): number {
    this.fastStep(this.stateStacks[s]!, this.groupRep[s]![PENDING - code]!);
    const ns = this.internOut(); // may grow the table
    const trans = this.trans;
    const base = s * 256;
    for (let b = 0; b < 256; b++) if (trans[base + b] === code) trans[base + b] = ns;
    return ns;
  }

  private readonly rowKeys = new Int32Array(256);
  private readonly rowBuf = new Int32Array(256);
  private readonly rowSeen = new Map<number | string, number>();
  private readonly uniKeys = new Int32Array(256);
  private readonly uniSizes = new Map<number | string, number>();
  private readonly rowStrKeys: string[] = new Array<string>(256);

  /** Groups the bytes of state s by the stacks they advance; the groups' states are built on demand (materialize). */
  private fillRow(s: number): void {
    const stacks = this.stateStacks[s]!;
    const row = this.rowBuf;
    const seenKey = this.rowSeen; // key -> group
    seenKey.clear();
    const reps: number[] = [];
    let keys: ArrayLike<number | string>;
    if (stacks.length <= 31) {
      const k = this.rowKeys;
      k.fill(0);
      for (let i = 0; i < stacks.length; i++) {
        const id = stacks[i]!;
        if (id === ACCEPT) continue;
        const base = (-this.program[this.sPos[id]!]! - 1) * 256;
        const bit = 1 << i;
        for (let b = 0; b < 256; b++) if (this.sets[base + b]) k[b]! |= bit;
      }
      keys = k;
    } else {
      const k = this.rowStrKeys;
      k.fill('');
      for (let i = 0; i < stacks.length; i++) {
        const id = stacks[i]!;
        if (id === ACCEPT) continue;
        const base = (-this.program[this.sPos[id]!]! - 1) * 256;
        for (let b = 0; b < 256; b++) if (this.sets[base + b]) k[b] += i + ',';
      }
      keys = k;
    }
    for (let b = 0; b < 256; b++) {
      const key = keys[b]!;
      if (key === 0 || key === '') {
        row[b] = DEAD;
        continue;
      }
      let g = seenKey.get(key);
      if (g === undefined) {
        g = reps.length;
        reps.push(b);
        seenKey.set(key, g);
      }
      row[b] = PENDING - g;
    }
    this.groupRep[s] = Int32Array.from(reps);
    this.trans.set(row, s * 256);
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

  /**
   * The uniform successor of state s: the live state most bytes lead to, at [8], and the
   * bytes that lead there, as 8 x 32 bits at [0, 8). [8] is DEAD when every byte is dead.
   */
  private uniformOf(s: number): Int32Array {
    let u = this.uniform[s];
    if (!u) {
      u = new Int32Array(9);
      u[8] = DEAD;
      // The largest group of bytes that advance the same stacks (one step, without
      // computing the other groups' states: a chain check only follows this one).
      const stacks = this.stateStacks[s]!;
      let keys: ArrayLike<number | string>;
      if (stacks.length <= 31) {
        const k = this.uniKeys;
        k.fill(0);
        for (let i = 0; i < stacks.length; i++) {
          const id = stacks[i]!;
          if (id === ACCEPT) continue;
          const base = (-this.program[this.sPos[id]!]! - 1) * 256;
          const bit = 1 << i;
          for (let b = 0; b < 256; b++) if (this.sets[base + b]) k[b]! |= bit;
        }
        keys = k;
      } else {
        const k: string[] = new Array<string>(256).fill('');
        for (let i = 0; i < stacks.length; i++) {
          const id = stacks[i]!;
          if (id === ACCEPT) continue;
          const base = (-this.program[this.sPos[id]!]! - 1) * 256;
          for (let b = 0; b < 256; b++) if (this.sets[base + b]) k[b] += i + ',';
        }
        keys = k;
      }
      const sizes = this.uniSizes;
      sizes.clear();
      let best: number | string = 0;
      let bestN = 0;
      let first = -1;
      for (let b = 0; b < 256; b++) {
        const k = keys[b]!;
        if (k === 0 || k === '') continue;
        const c = (sizes.get(k) ?? 0) + 1;
        sizes.set(k, c);
        if (c > bestN) {
          bestN = c;
          best = k;
          first = b;
        }
      }
      if (first >= 0) {
        const t = this.nextOne(s, first);
        u[8] = t;
        for (let b = 0; b < 256; b++) {
          if (keys[b] !== best) continue;
          u[b >> 5]! |= 1 << (b & 31);
          this.trans[s * 256 + b] = t;
        }
      }
      this.uniform[s] = u;
    }
    return u;
  }

  /**
   * True when every byte string of length <= h over the bytes `bits[o, o + 8)` stays alive
   * from state s: at each level all those bytes lead to the same (uniform) successor.
   * Covers self-loops (string contents, digit runs) and counted repetitions (maxLength).
   */
  private chainCovers(s: number, bits: Int32Array, o: number, h: number): boolean {
    for (let i = 0; i < h; i++) {
      const u = this.uniformOf(s);
      const next = u[8]!;
      if (next < 0) return false;
      for (let w = 0; w < 8; w++) if ((bits[o + w]! & ~u[w]!) !== 0) return false;
      if (next === s) return true; // a loop: every further level is the same check
      s = next;
    }
    return true;
  }

  private midChar = new Map<number, number>();

  /**
   * The state every completion of the current character leads to from state s, which is
   * `need` into one (continuation bytes left * 8 + the range of the next), with every
   * prefix alive; DEAD when completions do not all lead to one state.
   */
  private completeChar(s: number, need: number): number {
    const key = s * 64 + need;
    let u = this.midChar.get(key);
    if (u === undefined) {
      const RANGES: Array<[number, number]> = [[0x80, 0xbf], [0xa0, 0xbf], [0x80, 0x9f], [0x90, 0xbf], [0x80, 0x8f]];
      let states = new Set<number>([s]);
      let [lo, hi] = RANGES[need & 7]!;
      u = DEAD;
      let ok = true;
      for (let left = need >> 3; left > 0 && ok; left--) {
        const next = new Set<number>();
        for (const st of states) {
          for (let b = lo; b <= hi; b++) {
            const t = this.next(st, b);
            if (t < 0) {
              ok = false;
              break;
            }
            next.add(t);
          }
          if (!ok) break;
        }
        states = next;
        lo = 0x80;
        hi = 0xbf;
      }
      if (ok && states.size === 1) u = [...states][0]!;
      this.midChar.set(key, u);
    }
    return u;
  }

  /**
   * Like chainCovers, by characters: the subtree is clean UTF-8 and its bytes are in
   * bits[o, o + 8). At each level every ASCII byte of the subtree, and every complete
   * character whose lead byte is in the subtree (each prefix of it alive), must lead to one
   * state. Only the lead bytes the subtree uses are followed, so a subtree of Latin text
   * does not build the states of CJK or 4-byte characters (each level of a counted string
   * is a new state, and those would be built per level).
   */
  private charChainCovers(s: number, bits: Int32Array, o: number, h: number): boolean {
    for (let i = 0; i < h; i++) {
      let t = -3;
      for (let w = 0; w < 4; w++) {
        let x = bits[o + w]!;
        while (x !== 0) {
          const b = w * 32 + 31 - Math.clz32(x & -x);
          x &= x - 1;
          const n = this.next(s, b);
          if (n < 0 || (t !== -3 && n !== t)) return false;
          t = n;
        }
      }
      for (let w = 6; w < 8; w++) {
        let x = bits[o + w]!;
        while (x !== 0) {
          const b = w * 32 + 31 - Math.clz32(x & -x);
          x &= x - 1;
          const need = LEAD_NEED[b - 0xc0]!;
          if (need === 255) return false;
          const m = this.next(s, b);
          if (m < 0) return false;
          const n = this.completeChar(m, need);
          if (n < 0 || (t !== -3 && n !== t)) return false;
          t = n;
        }
      }
      if (t === -3 || t === s) return true; // nothing to read, or a loop: every further level is the same check
      s = t;
    }
    return true;
  }

  /**
   * Bounded repetitions make a state per count (a string with maxLength 500: 500 states).
   * A mask looks at most `depth` bytes ahead, so a frame with more than `depth` items left
   * behaves like one with exactly `depth` left: canonOf(s) maps such frames there, and the
   * states share one mask.
   */
  private setCanonDepth(depth: number): void {
    this.canonDepth = depth;
    this.canon = this.canon.map(() => -1);
    this.canonStacks.clear();
    this.posCanon = this.buildCanonMap(depth);
  }

  /**
   * The position map for `depth` (null when no chain is longer): frames of chain rules with
   * more than `depth` items left go to the rule with `depth` left. Sites that refer to such a
   * rule get a copy appended to the program. Positions past a map's end (copies appended for
   * another depth) map to themselves.
   */
  private buildCanonMap(depth: number): Int32Array | null {
    let map: Int32Array | null = null;
    const inChain = new Uint8Array(this.program.length);
    const long = new Map<number, number>(); // chain rule with more than `depth` items left -> the rule with `depth`
    for (const chain of this.repChains) {
      if (chain.length <= depth) continue;
      map ??= Int32Array.from(this.program, (_, i) => i);
      const target = chain[depth - 1]!; // depth items left
      const tAlts = this.ruleAlts[target]!;
      for (let j = depth; j < chain.length; j++) {
        long.set(chain[j]!, target);
        const alts = this.ruleAlts[chain[j]!]!;
        for (let a = 0; a < alts.length; a++) {
          const src = alts[a]!;
          const dst = tAlts[a]!;
          for (let o = 0; ; o++) {
            map[src + o] = dst + o;
            inChain[src + o] = 1;
            if (this.program[src + o] === END) break;
          }
        }
      }
    }
    if (map) {
      // Sites outside the chains that refer to a long chain rule (after the mandatory items
      // of x{m,n}): a copy of the rest of their alternative that refers to the target rule.
      const extra: number[] = [];
      const base = this.program.length;
      const sites: Array<[number, number]> = [];
      for (let p = 0; p < this.program.length; p++) {
        const e = this.program[p]!;
        if (e >= 0 && !inChain[p] && long.has(e)) {
          sites.push([p, base + extra.length]);
          extra.push(long.get(e)!);
          for (let o = 1; ; o++) {
            extra.push(this.program[p + o]!);
            if (this.program[p + o] === END) break;
          }
        }
      }
      if (extra.length > 0) {
        const prog = new Int32Array(base + extra.length);
        prog.set(this.program);
        prog.set(extra, base);
        this.program = prog;
        const m2 = Int32Array.from(prog, (_, i) => i);
        m2.set(map);
        map = m2;
        for (const [p, q] of sites) {
          for (let o = 0; ; o++) {
            map[p + o] = q + o;
            if (prog[p + o] === END) break;
          }
        }
      }
    }
    return map;
  }

  private canonStack(id: number, map: Int32Array, cache: Map<number, number>): number {
    if (id === ACCEPT) return ACCEPT;
    let c = cache.get(id);
    if (c === undefined) {
      const pos = this.sPos[id]!;
      const below = this.canonStack(this.sBelow[id]!, map, cache);
      const cp = pos < map.length ? map[pos]! : pos;
      c = cp === pos && below === this.sBelow[id] ? id : this.intern(cp, below);
      cache.set(id, c);
    }
    return c;
  }

  /** The state of s's stacks mapped by `map` (s itself when none changes). */
  private canonState(s: number, map: Int32Array, cache: Map<number, number>): number {
    const stacks = this.stateStacks[s]!;
    const out = new Set<number>();
    let changed = false;
    for (let i = 0; i < stacks.length; i++) {
      const k = this.canonStack(stacks[i]!, map, cache);
      if (k !== stacks[i]) changed = true;
      out.add(k);
    }
    return changed ? this.internState(out) : s;
  }

  /**
   * Like canonOf for the long tokens (outside the trie, up to longDepth - 1 bytes): states
   * whose frames have more items left than that share one long-token check.
   */
  private canonLongOf(s: number): number {
    const map = this.longCanonMap;
    if (!map) return s;
    let c = this.longCanon.get(s);
    if (c === undefined) {
      c = this.canonState(s, map, this.longCanonStacks);
      this.longCanon.set(s, c);
    }
    return c;
  }

  /** The canonical state of s (s itself when no frame has more items left than the depth). */
  canonOf(s: number): number {
    if (!this.posCanon) return s;
    let c = this.canon[s]!;
    if (c < 0) {
      c = this.canonState(s, this.posCanon, this.canonStacks);
      this.canon[s] = c;
    }
    return c;
  }

  /**
   * Work that depends only on the grammar and the vocabulary, done when the grammar is
   * compiled rather than on its first token: the shared counted-repetition positions for
   * the trie's depth (see setCanonDepth).
   */
  prepare(trie: VocabTrie): void {
    if (this.classesFor !== trie) {
      // The class-run tables of the grammar's byte classes (kept per vocabulary: built on a
      // vocabulary's first grammars, found by later ones).
      this.classesFor = trie;
      const bits = new Int32Array(8);
      for (let k = 0; k * 256 < this.sets.length; k++) {
        bits.fill(0);
        let pop = 0;
        for (let b = 0; b < 256; b++) {
          if (this.sets[k * 256 + b]) {
            bits[b >> 5]! |= 1 << (b & 31);
            pop++;
          }
        }
        if (pop >= 2 && pop <= MAX_CLASS_BYTES) classRuns(trie, bits);
      }
    }
    const depth = Math.max(2, trie.maxDepth + 1);
    if (this.canonDepth !== depth) this.setCanonDepth(depth);
    let longest = 0;
    for (const id of trie.long) longest = Math.max(longest, trie.pieces[id]!.length);
    if (longest > 0 && this.longDepth !== longest + 1) {
      this.longDepth = longest + 1;
      this.longCanon.clear();
      this.longCanonStacks.clear();
      this.longs.clear();
      this.longCanonMap = this.buildCanonMap(this.longDepth);
    }
  }

  /** The allowed tokens in state s (cached per state). */
  mask(s: number, trie: VocabTrie): TokenMask {
    const cached = this.masks[s];
    if (cached) {
      this.stats.maskHits++;
      return cached;
    }
    this.prepare(trie);
    // The trie part is the canonical state's; long tokens reach further: they are checked
    // from s itself (and only for states a mask is asked for, not for their canonical ones).
    const part = this.triePart(this.canonOf(s), trie);
    const mask: TokenMask = { ranges: part.ranges, count: part.count, eog: this.accepting(s), long: this.longAllowed(s, trie) };
    this.masks[s] = mask;
    return mask;
  }

  /** Ranges being built by a walk (triePart): [lo, hi) pairs of trie positions in increasing order. */
  private acc: number[] = [];
  private accCount = 0;
  private accLastHi = -1;
  /** The walk's state per trie depth (the state before the node at that depth). */
  private stateAt = new Int32Array(0);
  /** The states along a class chain (see classPart). */
  private chainAt = new Int32Array(0);

  /** Appends trie positions [lo, hi) to the ranges being built (after every earlier one). */
  private emit(lo: number, hi: number): void {
    if (hi <= lo) return;
    this.accCount += hi - lo;
    if (lo === this.accLastHi) this.acc[this.acc.length - 1] = hi;
    else this.acc.push(lo, hi);
    this.accLastHi = hi;
  }

  /** The allowed trie positions in state s (a canonical state), cached per state. */
  private triePart(s: number, trie: VocabTrie): { ranges: Int32Array; count: number } {
    const cached = this.parts[s];
    if (cached) return cached;
    this.stats.maskMisses++;
    this.acc = [];
    this.accCount = 0;
    this.accLastHi = -1;
    if (this.stateAt.length < trie.maxDepth + 1) {
      this.stateAt = new Int32Array(trie.maxDepth + 1);
      this.chainAt = new Int32Array(trie.maxDepth + 1);
    }
    if (this.useClassRuns && this.classPart(s, trie)) this.stats.classParts++;
    else {
      this.stateAt[0] = s;
      this.walk(0, trie.nNodes, trie);
    }
    const part = { ranges: Int32Array.from(this.acc), count: this.accCount };
    this.acc = [];
    this.parts[s] = part;
    return part;
  }

  /**
   * The trie part of state s through the class-run table (classRuns) of its uniform byte
   * class C, when every byte of C leads to one state at each of the next L levels and then
   * either all of C is dead or the chain loops (a counted repetition of C, as in
   * [a-z0-9-]{1,39}, an email atom or a hex run). Then the tokens made of C's bytes are
   * allowed exactly when they are at most L bytes long, and a token that leaves C after r
   * bytes (r <= L) is walked from the r-th state of the chain; a token with more than L
   * bytes of C first is rejected. Returns false (nothing emitted) when the state is not
   * like that: the plain walk does it.
   */
  private classPart(s: number, trie: VocabTrie): boolean {
    const u = this.uniformOf(s);
    if (u[8]! < 0 || u[8] === s) return false; // dead, or a loop (the walk's shortcuts cover those)
    let pop = 0;
    for (let w = 0; w < 8; w++) {
      let x = u[w]!;
      while (x !== 0) {
        x &= x - 1;
        pop++;
      }
    }
    if (pop < 2 || pop > MAX_CLASS_BYTES) return false;
    const bits = u.slice(0, 8);
    const maxD = trie.maxDepth;
    const st = this.chainAt;
    st[0] = s;
    let L = maxD;
    for (let i = 0; i < maxD; i++) {
      let t = -3;
      let dead = false;
      if (i > 0) {
        // Most levels: C inside the state's largest group (one state for all of C).
        const v = this.uniformOf(st[i]!);
        if (v[8]! >= 0 && (bits[0]! & ~v[0]!) === 0 && (bits[1]! & ~v[1]!) === 0 && (bits[2]! & ~v[2]!) === 0 && (bits[3]! & ~v[3]!) === 0 &&
          (bits[4]! & ~v[4]!) === 0 && (bits[5]! & ~v[5]!) === 0 && (bits[6]! & ~v[6]!) === 0 && (bits[7]! & ~v[7]!) === 0) {
          t = v[8]!;
          st[i + 1] = t;
          if (t === st[i]) {
            for (let j = i + 2; j <= maxD; j++) st[j] = t;
            break;
          }
          continue;
        }
      }
      for (let w = 0; w < 8; w++) {
        let x = bits[w]!;
        while (x !== 0) {
          const b = w * 32 + 31 - Math.clz32(x & -x);
          x &= x - 1;
          const n = this.next(st[i]!, b);
          if (n < 0) dead = true;
          else if (t === -3) t = n;
          else if (n !== t) return false;
        }
      }
      if (dead) {
        if (t !== -3) return false; // some bytes of C live, others dead
        L = i;
        break;
      }
      st[i + 1] = t;
      if (t === st[i]) {
        for (let j = i + 2; j <= maxD; j++) st[j] = t;
        break;
      }
    }
    const { segLo, segHi, segMax, segOff, len, exits, perToken, walkNodes } = classRuns(trie, bits);
    // The runs and exits are looked at whatever L is; with a small L the plain walk stays
    // near the root and is cheaper (its nodes cost a few times more than a run's).
    if (segLo.length + exits.length + perToken[L]! > 3 * walkNodes[L]!) return false;
    const { depth, byte, skip, tokLo } = trie;
    // Exits are walked one by one, where the plain walk often takes a whole subtree with
    // its exits in one step (string contents and the characters inside them): when most
    // exits stay alive, the plain walk does it.
    let live = 0;
    for (let j = 0; j < exits.length; j++) {
      const e = exits[j]!;
      const r = depth[e]!;
      if (r > L) continue;
      const ps = st[r]!;
      let ns = this.trans[ps * 256 + byte[e]!]!;
      if (ns < DEAD) ns = this.next(ps, byte[e]!);
      if (ns >= 0) live++;
    }
    if (live * 4 > exits.length) return false;
    const nSeg = segLo.length;
    const nEx = exits.length;
    let i = 0;
    let j = 0;
    // Runs of class tokens and subtrees leaving the class are disjoint: merge them in position order.
    while (i < nSeg || j < nEx) {
      if (j >= nEx || (i < nSeg && segLo[i]! < tokLo[exits[j]!]!)) {
        const lo = segLo[i]!;
        const hi = segHi[i]!;
        if (segMax[i]! <= L) this.emit(lo, hi);
        else {
          const off = segOff[i]! - lo;
          for (let p = lo; p < hi; p++) if (len[off + p]! <= L) this.emit(p, p + 1);
        }
        i++;
        continue;
      }
      const e = exits[j++]!;
      const r = depth[e]!;
      if (r > L) continue;
      const ps = st[r]!;
      let ns = this.trans[ps * 256 + byte[e]!]!;
      if (ns < DEAD) ns = this.next(ps, byte[e]!);
      if (ns < 0) continue;
      this.stateAt[r] = ps;
      this.walk(e, skip[e]!, trie);
    }
    return true;
  }

  /** Walks trie nodes [n, end) (a run of whole subtrees), the state before depth[n] in stateAt, emitting the allowed positions. */
  private walk(n: number, end: number, trie: VocabTrie): void {
    const stateAt = this.stateAt;
    const { byte, depth, skip, tokLo, tokHi, subHi, subBits, subDepth, utf8Clean, utf8Need } = trie;
    let trans = this.trans;
    let walked = 0;
    while (n < end) {
      const d = depth[n]!;
      const ps = stateAt[d]!;
      let ns = trans[ps * 256 + byte[n]!]!;
      if (ns < DEAD) {
        ns = this.next(ps, byte[n]!);
        trans = this.trans; // may have grown
      }
      if (ns < 0) {
        n = skip[n]!;
        continue;
      }
      let lo = tokLo[n]!;
      let hi = tokHi[n]!;
      let next = n + 1;
      if (skip[n]! - n > 8) {
        const u = this.uniformOf(ns);
        trans = this.trans;
        // Level-0 check inline; the rest of the chain only when it passes.
        const o = n * 8;
        if (
          u[8]! >= 0 &&
          (subBits[o]! & ~u[0]!) === 0 && (subBits[o + 1]! & ~u[1]!) === 0 && (subBits[o + 2]! & ~u[2]!) === 0 &&
          (subBits[o + 3]! & ~u[3]!) === 0 && (subBits[o + 4]! & ~u[4]!) === 0 && (subBits[o + 5]! & ~u[5]!) === 0 &&
          (subBits[o + 6]! & ~u[6]!) === 0 && (subBits[o + 7]! & ~u[7]!) === 0 &&
          this.chainCovers(ns, subBits, o, subDepth[n]!)
        ) {
          hi = subHi[n]!;
          next = skip[n]!;
        } else if (utf8Clean[n] && this.charChainCovers(ns, subBits, o, subDepth[n]!)) {
          hi = subHi[n]!;
          next = skip[n]!;
        } else if (utf8Need[n]! > 0 && utf8Need[n]! !== 255) {
          // Inside a character: every completion must lead to one state, and from there on by characters.
          const u2 = this.completeChar(ns, utf8Need[n]!);
          if (u2 >= 0 && this.charChainCovers(u2, subBits, o, subDepth[n]!)) {
            hi = subHi[n]!;
            next = skip[n]!;
          }
        }
        trans = this.trans;
      }
      if (hi > lo) this.emit(lo, hi);
      if (next === n + 1) stateAt[d + 1] = ns;
      n = next;
      walked++;
    }
    this.stats.nodesWalked += walked;
  }

  /** The long tokens allowed in state s, checked one by one (shared by states with the same canonLongOf). */
  private longAllowed(s: number, trie: VocabTrie): Int32Array {
    const c = this.canonLongOf(s);
    let r = this.longs.get(c);
    if (!r) {
      const ok: number[] = [];
      for (const id of trie.long) if (this.run(c, trie.pieces[id]!) >= 0) ok.push(id);
      r = Int32Array.from(ok);
      this.longs.set(c, r);
    }
    return r;
  }

  /**
   * One transition without filling the rest of the row (for runs of token bytes, which
   * visit states no mask may ever need: a long token's walk through a counted string).
   */
  private nextOne(s: number, b: number): number {
    const t = this.trans[s * 256 + b]!;
    if (t >= DEAD) return t;
    if (t !== UNKNOWN) return this.materialize(s, t);
    this.fastStep(this.stateStacks[s]!, b);
    const ns = this.internOut();
    this.trans[s * 256 + b] = ns;
    return ns;
  }

  /** Runs bytes from state s; DEAD when rejected. */
  run(s: number, bytes: Uint8Array): number {
    for (let i = 0; i < bytes.length && s >= 0; i++) s = this.nextOne(s, bytes[i]!);
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
