/**
 * GBNF (llama.cpp's grammar format) parser, and the lowering of a parsed grammar to the
 * byte-level form the recognizer runs on.
 *
 *   root   ::= "{" ws pair ("," ws pair)* "}"     # rules, one per `name ::=`
 *   pair   ::= [a-z]+ ":" ws [0-9]{1,3}          # char classes, ranges, repetition
 *   ws     ::= [ \t\n]*
 *
 * Supported: rule names [a-zA-Z0-9_-]+, `::=`, alternation `|`, grouping `( )`, postfix
 * `*` `+` `?` `{m}` `{m,}` `{m,n}`, string literals with escapes (\n \r \t \\ \" \' \[ \]
 * \xHH \uHHHH \UHHHHHHHH), char classes `[...]` with ranges, negation `[^...]` and the same
 * escapes, `.` (any character), `#` comments. A rule's body runs until the next `name ::=`.
 * The start rule is `root`. Errors are SparrowErrors (ERR_GRAMMAR_SYNTAX) with line:column.
 *
 * Lowering: every character class becomes a small rule over UTF-8 byte ranges (so a token
 * may end in the middle of a character), every literal a sequence of bytes, and every
 * repetition a helper rule, as llama.cpp does.
 */
import { SparrowError } from '../errors.js';

/** A grammar element after parsing (codepoint level). */
export type Node =
  | { t: 'lit'; bytes: Uint8Array }
  | { t: 'class'; ranges: number[]; negated: boolean } // ranges: [lo0, hi0, lo1, hi1, ...] codepoints
  | { t: 'ref'; name: string; pos: number }
  | { t: 'alt'; alts: Node[][] }
  | { t: 'rep'; node: Node; min: number; max: number }; // max = Infinity for unbounded

export interface ParsedGrammar {
  rules: Map<string, Node[][]>; // name -> alternatives (each a sequence)
}

/** Byte-level grammar: element >= 0 is a rule index, element < 0 is byte set -(e + 1). */
export interface ByteGrammar {
  /** rules[r] = alternatives; an alternative is a list of elements. */
  rules: number[][][];
  /** ruleNames[r]: the GBNF name, or a generated one for helper rules. */
  ruleNames: string[];
  /** Byte sets, 256 entries each (1 = member). */
  byteSets: Uint8Array[];
  root: number;
  /**
   * Bounded repetitions: chains[c][j] is the helper rule that allows j + 1 more items
   * (alternatives [...item, chains[c][j - 1]] and []).
   */
  repChains: number[][];
}

export const MAX_REPETITION = 65536;
/** Most elements a lowered grammar may hold (repetitions are expanded): bounds memory and compile time. */
export const MAX_GRAMMAR_ELEMENTS = 2_000_000;

function syntaxError(src: string, pos: number, msg: string): SparrowError {
  let line = 1;
  let col = 1;
  for (let i = 0; i < pos && i < src.length; i++) {
    if (src[i] === '\n') {
      line++;
      col = 1;
    } else col++;
  }
  return new SparrowError(`grammar syntax error at line ${line}, column ${col}: ${msg}`, 'ERR_GRAMMAR_SYNTAX');
}

const NAME_CHAR = /[a-zA-Z0-9_-]/;

/** Parses GBNF text. */
export function parseGbnf(src: string): ParsedGrammar {
  if (typeof src !== 'string') throw new SparrowError('grammar must be a string of GBNF text', 'ERR_INVALID_ARG');
  let pos = 0;
  const rules = new Map<string, Node[][]>();
  const lineCol = (p: number) => {
    let line = 1;
    let col = 1;
    for (let i = 0; i < p; i++) {
      if (src[i] === '\n') {
        line++;
        col = 1;
      } else col++;
    }
    return { line, col };
  };

  const skipSpace = () => {
    for (;;) {
      const c = src[pos];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') pos++;
      else if (c === '#') {
        while (pos < src.length && src[pos] !== '\n') pos++;
      } else return;
    }
  };
  const readName = (): string => {
    const start = pos;
    while (pos < src.length && NAME_CHAR.test(src[pos]!)) pos++;
    return src.slice(start, pos);
  };
  /** True when a `name ::=` starts at pos (the end of the current rule's body). */
  const atRuleStart = (): boolean => {
    let p = pos;
    while (p < src.length && NAME_CHAR.test(src[p]!)) p++;
    if (p === pos) return false;
    while (src[p] === ' ' || src[p] === '\t') p++;
    return src.startsWith('::=', p);
  };

  const hexDigits = (n: number): number => {
    const h = src.slice(pos, pos + n);
    if (h.length !== n || !/^[0-9a-fA-F]+$/.test(h)) throw syntaxError(src, pos, `expected ${n} hex digits`);
    pos += n;
    return parseInt(h, 16);
  };
  /** One (possibly escaped) character of a literal or class; returns its codepoint. */
  const readChar = (): number => {
    if (pos >= src.length) throw syntaxError(src, pos, 'unexpected end of input');
    const c = src.codePointAt(pos)!;
    if (c !== 0x5c) {
      pos += c > 0xffff ? 2 : 1;
      return c;
    }
    pos++;
    const e = src[pos++];
    switch (e) {
      case 'n': return 10;
      case 'r': return 13;
      case 't': return 9;
      case '\\': case '"': case "'": case '[': case ']': case '-': case '^': case '/': case '.': case '(': case ')': case '|': case '*': case '+': case '?': case '{': case '}':
        return e.charCodeAt(0);
      case 'x': return hexDigits(2);
      case 'u': return hexDigits(4);
      case 'U': {
        const v = hexDigits(8);
        if (v > 0x10ffff) throw syntaxError(src, pos - 8, 'codepoint out of range');
        return v;
      }
      default:
        throw syntaxError(src, pos - 2, `unknown escape \\${e ?? ''}`);
    }
  };

  const parseAlternatives = (nested: boolean): Node[][] => {
    const alts: Node[][] = [parseSequence(nested)];
    while (src[pos] === '|') {
      pos++;
      alts.push(parseSequence(nested));
    }
    return alts;
  };

  const parseSequence = (nested: boolean): Node[] => {
    const seq: Node[] = [];
    for (;;) {
      skipSpace();
      if (pos >= src.length) return seq;
      const c = src[pos]!;
      if (c === '|' || c === ')') {
        if (c === ')' && !nested) throw syntaxError(src, pos, "unmatched ')'");
        return seq;
      }
      if (!nested && atRuleStart()) return seq;
      let node: Node;
      const start = pos;
      if (c === '"') {
        pos++;
        const cps: number[] = [];
        while (src[pos] !== '"') {
          if (pos >= src.length) throw syntaxError(src, start, 'unterminated string literal');
          cps.push(readChar());
        }
        pos++;
        node = { t: 'lit', bytes: new TextEncoder().encode(String.fromCodePoint(...cps)) };
      } else if (c === '[') {
        pos++;
        let negated = false;
        if (src[pos] === '^') {
          negated = true;
          pos++;
        }
        const ranges: number[] = [];
        while (src[pos] !== ']') {
          if (pos >= src.length) throw syntaxError(src, start, "unterminated character class (missing ']')");
          const lo = readChar();
          let hi = lo;
          if (src[pos] === '-' && src[pos + 1] !== ']' && pos + 1 < src.length) {
            pos++;
            hi = readChar();
            if (hi < lo) throw syntaxError(src, pos - 1, 'character range out of order');
          }
          ranges.push(lo, hi);
        }
        pos++;
        node = { t: 'class', ranges, negated };
      } else if (c === '.') {
        pos++;
        node = { t: 'class', ranges: [], negated: true };
      } else if (c === '(') {
        pos++;
        const alts = parseAlternatives(true);
        skipSpace();
        if (src[pos] !== ')') throw syntaxError(src, start, "unmatched '('");
        pos++;
        node = { t: 'alt', alts };
      } else if (NAME_CHAR.test(c)) {
        const at = pos;
        const name = readName();
        node = { t: 'ref', name, pos: at };
      } else {
        throw syntaxError(src, pos, `unexpected character '${c}'`);
      }
      // Postfix operators.
      for (;;) {
        const p = src[pos];
        if (p === '*') {
          pos++;
          node = { t: 'rep', node, min: 0, max: Infinity };
        } else if (p === '+') {
          pos++;
          node = { t: 'rep', node, min: 1, max: Infinity };
        } else if (p === '?') {
          pos++;
          node = { t: 'rep', node, min: 0, max: 1 };
        } else if (p === '{') {
          const at = pos;
          const m = /^\{\s*(\d+)\s*(?:(,)\s*(\d*)\s*)?\}/.exec(src.slice(pos, pos + 40));
          if (!m) throw syntaxError(src, at, "malformed repetition: expected {m}, {m,} or {m,n}");
          pos += m[0].length;
          const min = Number(m[1]);
          const max = m[2] ? (m[3] ? Number(m[3]) : Infinity) : min;
          if (max < min) throw syntaxError(src, at, `repetition {${min},${max}}: max is below min`);
          if (min > MAX_REPETITION || (max !== Infinity && max > MAX_REPETITION)) {
            throw syntaxError(src, at, `repetition count above ${MAX_REPETITION}`);
          }
          node = { t: 'rep', node, min, max };
        } else break;
      }
      seq.push(node);
    }
  };

  skipSpace();
  while (pos < src.length) {
    const start = pos;
    const name = readName();
    if (!name) throw syntaxError(src, pos, 'expected a rule name');
    while (src[pos] === ' ' || src[pos] === '\t') pos++;
    if (!src.startsWith('::=', pos)) throw syntaxError(src, pos, `expected '::=' after rule name '${name}'`);
    pos += 3;
    if (rules.has(name)) throw syntaxError(src, start, `rule '${name}' is defined twice`);
    const alts = parseAlternatives(false);
    rules.set(name, alts);
    skipSpace();
  }
  // Every referenced rule must exist.
  const check = (n: Node): void => {
    if (n.t === 'ref') {
      if (!rules.has(n.name)) {
        const { line, col } = lineCol(n.pos);
        throw new SparrowError(`grammar error at line ${line}, column ${col}: undefined rule '${n.name}'`, 'ERR_GRAMMAR_SYNTAX');
      }
    } else if (n.t === 'alt') n.alts.forEach((a) => a.forEach(check));
    else if (n.t === 'rep') check(n.node);
  };
  for (const alts of rules.values()) alts.forEach((a) => a.forEach(check));
  if (!rules.has('root')) throw new SparrowError("grammar error: no 'root' rule", 'ERR_GRAMMAR_SYNTAX');
  return { rules };
}

// ---------------------------------------------------------------------------------------
// Lowering to bytes

/** Sorted, merged codepoint ranges of a class (negation applied, surrogates removed). */
export function classRanges(ranges: readonly number[], negated: boolean): number[] {
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i]!, ranges[i + 1]!]);
  pairs.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const p of pairs) {
    const last = merged[merged.length - 1];
    if (last && p[0] <= last[1] + 1) last[1] = Math.max(last[1], p[1]);
    else merged.push([p[0], p[1]]);
  }
  let out = merged;
  if (negated) {
    out = [];
    let next = 0;
    for (const [lo, hi] of merged) {
      if (lo > next) out.push([next, lo - 1]);
      next = hi + 1;
    }
    if (next <= 0x10ffff) out.push([next, 0x10ffff]);
  }
  const flat: number[] = [];
  for (const [lo, hi] of out) {
    // Remove the surrogates: they are not characters and have no UTF-8 form.
    if (hi < 0xd800 || lo > 0xdfff) flat.push(lo, hi);
    else {
      if (lo < 0xd800) flat.push(lo, 0xd7ff);
      if (hi > 0xdfff) flat.push(0xe000, hi);
    }
  }
  return flat;
}

function utf8Bytes(cp: number): number[] {
  if (cp < 0x80) return [cp];
  if (cp < 0x800) return [0xc0 | (cp >> 6), 0x80 | (cp & 63)];
  if (cp < 0x10000) return [0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
  return [0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63)];
}

/**
 * The UTF-8 encodings of the codepoints [lo, hi] as sequences of byte ranges: each
 * sequence is [[b0lo, b0hi], [b1lo, b1hi], ...] and the sequences are disjoint.
 */
export function utf8Sequences(lo: number, hi: number): Array<Array<[number, number]>> {
  const out: Array<Array<[number, number]>> = [];
  const bounds = [0x7f, 0x7ff, 0xffff, 0x10ffff];
  const rec = (a: number, b: number): void => {
    // Split at encoded-length boundaries.
    for (const m of bounds) {
      if (a <= m && b > m) {
        rec(a, m);
        rec(m + 1, b);
        return;
      }
    }
    const n = utf8Bytes(a).length;
    for (let i = 1; i < n; i++) {
      const mask = (1 << (6 * i)) - 1;
      if ((a & ~mask) !== (b & ~mask)) {
        if ((a & mask) !== 0) {
          rec(a, a | mask);
          rec((a | mask) + 1, b);
          return;
        }
        if ((b & mask) !== mask) {
          rec(a, (b & ~mask) - 1);
          rec(b & ~mask, b);
          return;
        }
      }
    }
    const ea = utf8Bytes(a);
    const eb = utf8Bytes(b);
    out.push(ea.map((x, k) => [x, eb[k]!] as [number, number]));
  };
  rec(lo, hi);
  return out;
}

/** Lowers a parsed grammar to byte level. */
export function lowerGrammar(g: ParsedGrammar): ByteGrammar {
  const rules: number[][][] = [];
  const ruleNames: string[] = [];
  const byteSets: Uint8Array[] = [];
  const setIndex = new Map<string, number>();
  const classRules = new Map<string, number>();
  const index = new Map<string, number>();
  const repChains: number[][] = [];
  for (const name of g.rules.keys()) {
    index.set(name, rules.length);
    rules.push([]);
    ruleNames.push(name);
  }
  const newRule = (name: string): number => {
    rules.push([]);
    ruleNames.push(name);
    return rules.length - 1;
  };
  const byteSet = (lo: number, hi: number): number => {
    const key = `${lo}-${hi}`;
    let k = setIndex.get(key);
    if (k === undefined) {
      const s = new Uint8Array(256);
      s.fill(1, lo, hi + 1);
      k = byteSets.length;
      byteSets.push(s);
      setIndex.set(key, k);
    }
    return -(k + 1);
  };
  const asciiSet = (flat: number[]): number => {
    const key = 'a' + flat.join(',');
    let k = setIndex.get(key);
    if (k === undefined) {
      const s = new Uint8Array(256);
      for (let i = 0; i < flat.length; i += 2) s.fill(1, flat[i]!, flat[i + 1]! + 1);
      k = byteSets.length;
      byteSets.push(s);
      setIndex.set(key, k);
    }
    return -(k + 1);
  };
  /** Elements for one character class: a byte set when it is all ASCII, else a helper rule. */
  const lowerClass = (ranges: number[], negated: boolean, out: number[]): void => {
    const flat = classRanges(ranges, negated);
    if (flat.length === 0) {
      // An empty class matches nothing: a rule without alternatives.
      const key = 'empty';
      let r = classRules.get(key);
      if (r === undefined) {
        r = newRule('empty-class');
        classRules.set(key, r);
      }
      out.push(r);
      return;
    }
    if (flat[flat.length - 1]! < 0x80) {
      out.push(asciiSet(flat));
      return;
    }
    const key = flat.join(',');
    let r = classRules.get(key);
    if (r === undefined) {
      r = newRule(`class-${classRules.size}`);
      classRules.set(key, r);
      const ascii: number[] = [];
      const alts: number[][] = [];
      for (let i = 0; i < flat.length; i += 2) {
        const lo = flat[i]!;
        const hi = flat[i + 1]!;
        if (lo < 0x80) ascii.push(lo, Math.min(hi, 0x7f));
        if (hi >= 0x80) {
          for (const seq of utf8Sequences(Math.max(lo, 0x80), hi)) alts.push(seq.map(([a, b]) => byteSet(a, b)));
        }
      }
      if (ascii.length) alts.unshift([asciiSet(ascii)]);
      rules[r] = alts;
    }
    out.push(r);
  };

  let elements = 0;
  const grow = (n: number) => {
    elements += n;
    if (elements > MAX_GRAMMAR_ELEMENTS) {
      throw new SparrowError(`grammar error: the grammar is too large once its repetitions are expanded (over ${MAX_GRAMMAR_ELEMENTS} elements)`, 'ERR_GRAMMAR_TOO_LARGE');
    }
  };
  const lowerSeq = (seq: Node[], ctx: string): number[] => {
    const out: number[] = [];
    for (const n of seq) lowerNode(n, ctx, out);
    grow(out.length);
    return out;
  };
  const lowerNode = (n: Node, ctx: string, out: number[]): void => {
    switch (n.t) {
      case 'lit':
        for (const b of n.bytes) out.push(byteSet(b, b));
        return;
      case 'class':
        lowerClass(n.ranges, n.negated, out);
        return;
      case 'ref':
        out.push(index.get(n.name)!);
        return;
      case 'alt': {
        if (n.alts.length === 1) {
          for (const e of lowerSeq(n.alts[0]!, ctx)) out.push(e);
          return;
        }
        const r = newRule(`${ctx}-${rules.length}`);
        rules[r] = n.alts.map((a) => lowerSeq(a, ctx));
        out.push(r);
        return;
      }
      case 'rep': {
        const item = lowerSeq([n.node], ctx);
        grow(item.length * (n.min + (n.max === Infinity ? 1 : n.max - n.min)));
        for (let i = 0; i < n.min; i++) for (const e of item) out.push(e);
        if (n.max === Infinity) {
          // star ::= item star | ε
          const star = newRule(`${ctx}-star-${rules.length}`);
          rules[star] = [[...item, star], []];
          out.push(star);
        } else if (n.max > n.min) {
          // opt_k ::= item opt_{k-1} | ε, nested so that at most max - min more items follow.
          let inner = -1;
          const chain: number[] = [];
          for (let k = 0; k < n.max - n.min; k++) {
            const r = newRule(`${ctx}-opt-${rules.length}`);
            rules[r] = [inner >= 0 ? [...item, inner] : [...item], []];
            chain.push(r);
            inner = r;
          }
          if (chain.length > 2) repChains.push(chain);
          out.push(inner);
        }
        return;
      }
    }
  };

  for (const [name, alts] of g.rules) rules[index.get(name)!] = alts.map((a) => lowerSeq(a, name));
  const bg: ByteGrammar = { rules, ruleNames, byteSets, root: index.get('root')!, repChains };
  checkLeftRecursion(bg);
  return bg;
}

/** Nullable rules, then a search for a rule that can reach itself without consuming input. */
function checkLeftRecursion(g: ByteGrammar): void {
  const n = g.rules.length;
  const nullable = new Uint8Array(n);
  for (let changed = true; changed; ) {
    changed = false;
    for (let r = 0; r < n; r++) {
      if (nullable[r]) continue;
      if (g.rules[r]!.some((alt) => alt.every((e) => e >= 0 && nullable[e]))) {
        nullable[r] = 1;
        changed = true;
      }
    }
  }
  // Edges r -> s when s can be the first thing r expands to.
  const first: number[][] = g.rules.map((alts) => {
    const s = new Set<number>();
    for (const alt of alts) {
      for (const e of alt) {
        if (e < 0) break;
        s.add(e);
        if (!nullable[e]) break;
      }
    }
    return [...s];
  });
  const state = new Uint8Array(n); // 0 new, 1 on stack, 2 done
  const visit = (r: number, path: number[]): void => {
    state[r] = 1;
    path.push(r);
    for (const s of first[r]!) {
      if (state[s] === 1) {
        const cycle = path.slice(path.indexOf(s)).map((x) => g.ruleNames[x]).join(' -> ');
        throw new SparrowError(`grammar error: left recursion (${cycle} -> ${g.ruleNames[s]}) is not supported`, 'ERR_GRAMMAR_SYNTAX');
      }
      if (state[s] === 0) visit(s, path);
    }
    path.pop();
    state[r] = 2;
  };
  for (let r = 0; r < n; r++) if (state[r] === 0) visit(r, []);
}
