/**
 * Byte-level BPE pre-tokenizers: split text into words before the merges run, exactly as
 * llama.cpp's `unicode_regex_split` does it.
 *
 * llama.cpp applies a list of patterns one after the other: each pattern splits every chunk
 * left by the previous one into matches and the gaps between them. Three pattern families
 * (GPT-2, Llama 3, Qwen 2) are hand-written scanners over code points and their flags; the
 * others run through std::regex on a "collapsed" text where each non-ASCII code point is
 * replaced by one byte naming its category (so `\p{L}` only needs a byte class), or on the
 * code points themselves with non-ASCII whitespace replaced by U+000B. The same is done
 * here with JS regexes, so that `\p{..}` and `\s` mean exactly what they mean there.
 *
 * All offsets are in code points. A split result is a list of chunk lengths.
 */
import { SparrowError } from '../errors.js';
import {
  F_LETTER,
  F_MARK,
  F_NUMBER,
  F_PUNCTUATION,
  F_SYMBOL,
  F_WHITESPACE,
  flagsTable,
} from './unicode.js';

/** One step of a pre-tokenizer. */
type Step =
  | { kind: 'gpt2' }
  | { kind: 'llama3' }
  | { kind: 'qwen2' }
  | { kind: 'qwen35' }
  /** A regex over the collapsed text (one Latin-1 char per code point). */
  | { kind: 'collapsed'; re: RegExp }
  /** A regex (with the u flag) over the code points, non-ASCII whitespace as U+000B. */
  | { kind: 'wide'; re: RegExp };

// Collapsed bytes, as in llama.cpp: non-ASCII code points become one byte per category.
const C_OTHER = 0xd0;
const C_NUMBER = 0xd1;
const C_LETTER = 0xd2;
const C_PUNCT = 0xd3;
const C_MARK = 0xd4;
const C_SYMBOL = 0xd5;

// Character classes over the collapsed text. The ASCII members are what llama.cpp appends for
// each category; \s is the C locale's isspace (the same six characters as JS's ASCII \s).
const P = String.raw`\xD3!-#%-*,-\/:;?@\[-\]_{}`; // \p{P}
const N = String.raw`\xD10-9`; // \p{N}
const L = String.raw`\xD2A-Za-z`; // \p{L}

const collapsed = (source: string): Step => ({ kind: 'collapsed', re: new RegExp(source, 'g') });

// What llama.cpp puts in place of each \p{..} over the collapsed text: the category byte and
// the category's ASCII members.
const UCAT: Record<string, string> = {
  N: String.raw`\xD10-9`,
  L: String.raw`\xD2A-Za-z`,
  P: String.raw`\xD3!-#%-*,-\/:;?@\[-\]_\{\}`,
  M: String.raw`\xD4`,
  S: String.raw`\xD5$+<->^\x60|~`,
};
UCAT.Lu = UCAT.Ll = UCAT.Lt = UCAT.Lm = UCAT.Lo = UCAT.L!;

/**
 * A pattern as written in llama.cpp (itself adapted from tokenizer.json), translated the way
 * llama.cpp runs it: with \p{..} it runs on the collapsed text, each \p{X} becoming a byte
 * class; without, on the code points. \s and \S become std::regex's C-locale classes.
 */
function llamaRegex(source: string): Step {
  const useCollapsed = /\\p\{(N|L|P|M|S|Lu|Ll|Lt|Lm|Lo)\}/.test(source);
  let out = '';
  let inside = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '\\' && i + 1 < source.length) {
      const d = source[i + 1]!;
      const cat = d === 'p' ? /^\{(\w+)\}/.exec(source.slice(i + 2)) : null;
      if (cat && UCAT[cat[1]!]) {
        out += inside ? UCAT[cat[1]!] : `[${UCAT[cat[1]!]}]`;
        i += 2 + cat[0].length - 1;
      } else if (d === 's') {
        out += inside ? String.raw`\t-\r ` : String.raw`[\t-\r ]`;
        i++;
      } else if (d === 'S' && !inside) {
        out += String.raw`[^\t-\r ]`;
        i++;
      } else {
        out += c + d;
        i++;
      }
      continue;
    }
    if (c === '[' && !inside) inside = true;
    else if (c === ']' && inside) inside = false;
    out += c;
  }
  return useCollapsed ? { kind: 'collapsed', re: new RegExp(out, 'g') } : { kind: 'wide', re: new RegExp(out, 'gu') };
}
const wide = (source: string): Step => ({ kind: 'wide', re: new RegExp(source, 'gu') });

const WS = String.raw`[\t-\r ]`; // std::regex \s in the C locale
const CJK = String.raw`[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+`;
const DEEPSEEK_LLM_LETTERS = String.raw`[A-Za-z\u{b5}\u{c0}-\u{d6}\u{d8}-\u{f6}\u{f8}-\u{1ba}\u{1bc}-\u{1bf}\u{1c4}-\u{293}\u{295}-\u{2af}\u{370}-\u{373}\u{376}\u{377}\u{37b}-\u{37d}\u{37f}\u{386}\u{388}-\u{38a}\u{38c}\u{38e}-\u{3a1}\u{3a3}-\u{3f5}\u{3f7}-\u{481}\u{48a}-\u{52f}\u{531}-\u{556}\u{10a0}-\u{10c5}\u{13a0}-\u{13f5}\u{13f8}-\u{13fd}\u{1c90}-\u{1cba}\u{1cbd}-\u{1cbf}\u{1d00}-\u{1d2b}\u{1d6b}-\u{1d77}\u{1d79}-\u{1d9a}\u{1e00}-\u{1f15}\u{1f18}-\u{1f1d}\u{1f20}-\u{1f45}\u{1f48}-\u{1f4d}\u{1f50}-\u{1f57}\u{1f59}\u{1f5b}\u{1f5d}\u{1f5f}-\u{1f7d}\u{1f80}-\u{1fb4}\u{1fb6}-\u{1fbc}\u{1fbe}\u{1fc2}-\u{1fc4}\u{1fc6}-\u{1fcc}\u{1fd0}-\u{1fd3}\u{1fd6}-\u{1fdb}\u{1fe0}-\u{1fec}\u{1ff2}-\u{1ff4}\u{1ff6}-\u{1ffc}\u{2102}\u{2107}\u{210a}-\u{2113}\u{2115}\u{2119}-\u{211d}\u{2124}\u{2126}\u{2128}\u{212a}-\u{212d}\u{212f}-\u{2134}\u{2139}\u{213c}-\u{213f}\u{2145}-\u{2149}\u{214e}\u{2183}\u{2184}\u{2c00}-\u{2c7b}\u{2c7e}-\u{2ce4}\u{2ceb}-\u{2cee}\u{2cf2}\u{2cf3}\u{a640}-\u{a66d}\u{a680}-\u{a69b}\u{a722}-\u{a76f}\u{a771}-\u{a787}\u{a78b}-\u{a78e}\u{ab70}-\u{abbf}\u{fb00}-\u{fb06}\u{fb13}-\u{fb17}\u{ff21}-\u{ff3a}\u{ff41}-\u{ff5a}\u{10400}-\u{1044f}\u{104b0}-\u{104d3}\u{104d8}-\u{104fb}\u{10c80}-\u{10cb2}\u{10cc0}-\u{10cf2}\u{118a0}-\u{118df}\u{1e900}-\u{1e943}]+`;

/** The steps of each pre-tokenizer family (llama.cpp's `llm_tokenizer_bpe` constructor). */
const FAMILIES: Record<string, Step[]> = {
  // The fallback pattern list llama.cpp uses for tokenizer.ggml.pre = "default".
  default: [
    collapsed(String.raw`[${P}$+<=>^~|]+`),
    { kind: 'gpt2' },
    collapsed(`[${N}]+`),
    collapsed('[0-9][0-9][0-9]'),
  ],
  gpt2: [{ kind: 'gpt2' }],
  llama3: [{ kind: 'llama3' }],
  qwen2: [{ kind: 'qwen2' }],
  'deepseek-llm': [
    collapsed('[\\r\\n]'),
    wide(`${WS}?${DEEPSEEK_LLM_LETTERS}`),
    wide(String.raw`${WS}?[!-\/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+`),
    wide(`${WS}+$`),
    wide(CJK),
    collapsed(`[${N}]+`),
  ],
  'deepseek-coder': [
    collapsed('[\\r\\n]'),
    collapsed(`${WS}?[${L}]+`),
    collapsed(`${WS}?[${P}]+`),
    wide(CJK),
    collapsed(`[${N}]`),
  ],
  falcon: [collapsed(String.raw`[${P}$+<=>^~|\x60]+`), { kind: 'gpt2' }, collapsed('[0-9][0-9][0-9]')],
  starcoder: [collapsed(`[${N}]`), { kind: 'gpt2' }],
  qwen35: [{ kind: 'qwen35' }],
  'deepseek-v3': [
    llamaRegex(String.raw`\p{N}{1,3}`),
    llamaRegex('[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+'),
    llamaRegex(
      String.raw`[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_\x60{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
    ),
  ],
  'gpt-4o': [
    llamaRegex(
      String.raw`[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
    ),
  ],
  tekken: [
    llamaRegex(
      String.raw`[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
    ),
  ],
};

/**
 * tokenizer.ggml.pre values this implementation supports, with their family and their
 * llama.cpp options (clean_spaces: the detokenizer's space clean-up; ignore_merges: a word
 * that is a token is emitted whole; add_bos: the default of add_bos_token).
 */
export interface PreTokenizerInfo {
  family: keyof typeof FAMILIES;
  cleanSpaces: boolean;
  ignoreMerges: boolean;
  addBos: boolean;
}

const pre = (family: string, cleanSpaces = true, ignoreMerges = false, addBos = false): PreTokenizerInfo => ({
  family,
  cleanSpaces,
  ignoreMerges,
  addBos,
});

export const PRE_TOKENIZERS: Record<string, PreTokenizerInfo> = {
  default: pre('default'),
  'gpt-2': pre('gpt2'),
  'phi-2': pre('gpt2'),
  'jina-es': pre('gpt2'),
  'jina-de': pre('gpt2'),
  'jina-v2-es': pre('gpt2'),
  'jina-v2-de': pre('gpt2'),
  gigachat: pre('gpt2'),
  mellum: pre('gpt2'),
  'a.x-4.0': pre('gpt2'),
  'modern-bert': pre('gpt2'),
  exaone4: pre('gpt2'),
  mpt: pre('gpt2'),
  olmo: pre('gpt2'),
  jais: pre('gpt2'),
  trillion: pre('gpt2', false),
  llama3: pre('llama3', true, true, true),
  'llama-v3': pre('llama3', true, true, true),
  'llama-bpe': pre('llama3', true, true, true),
  falcon3: pre('llama3', true, true, true),
  'falcon-h1': pre('llama3', true, true, true),
  pixtral: pre('llama3', true, true, true),
  'midm-2.0': pre('llama3', true, true, true),
  lfm2: pre('llama3', true, true, true),
  dbrx: pre('llama3'),
  'smaug-bpe': pre('llama3'),
  qwen2: pre('qwen2', false),
  'deepseek-r1-qwen': pre('qwen2', false),
  megrez: pre('qwen2'),
  stablelm2: pre('qwen2'),
  hunyuan: pre('qwen2', false),
  'deepseek-llm': pre('deepseek-llm', false),
  'deepseek-coder': pre('deepseek-coder', false),
  falcon: pre('falcon'),
  starcoder: pre('starcoder'),
  refact: pre('starcoder'),
  'command-r': pre('starcoder', false),
  smollm: pre('starcoder', false),
  codeshell: pre('starcoder'),
  exaone: pre('starcoder'),
  'minerva-7b': pre('starcoder'),
  mellum2: pre('starcoder'),
  qwen35: pre('qwen35', false),
  'deepseek-v3': pre('deepseek-v3', false),
  'hunyuan-dense': pre('deepseek-v3', false),
  'joyai-llm': pre('deepseek-v3', false),
  'gpt-4o': pre('gpt-4o', false),
  llama4: pre('gpt-4o', false),
  kanana2: pre('gpt-4o', false),
  talkie: pre('gpt-4o', false),
  'minimax-m2': pre('gpt-4o', false),
  tekken: pre('tekken', false, true, true),
};

/** The pre-tokenizer for a `tokenizer.ggml.pre` value; unknown values are an error, as in llama.cpp. */
export function preTokenizerInfo(name: string | undefined): PreTokenizerInfo {
  // llama.cpp: a missing pre-tokenizer means "default" (with a warning about quality).
  const key = name === undefined || name === '' ? 'default' : name;
  const info = PRE_TOKENIZERS[key];
  if (!info) {
    throw new SparrowError(
      `tokenizer.ggml.pre: unsupported pre-tokenizer '${key}' (supported: ${Object.keys(PRE_TOKENIZERS).join(', ')})`,
      'ERR_TOKENIZER_UNSUPPORTED',
    );
  }
  return info;
}

/** Text prepared once per call for the regex steps. */
interface Prepared {
  cps: Uint32Array;
  collapsedText?: string;
  wideText?: string;
  /** UTF-16 offset of each code point in wideText (length cps.length + 1). */
  wideOffsets?: Uint32Array;
}

function collapsedTextOf(p: Prepared): string {
  if (p.collapsedText !== undefined) return p.collapsedText;
  const flags = flagsTable();
  const { cps } = p;
  const codes = new Uint16Array(cps.length);
  for (let i = 0; i < cps.length; i++) {
    const cp = cps[i]!;
    if (cp < 128) {
      codes[i] = cp;
      continue;
    }
    const f = flags[cp]!;
    if (f & F_WHITESPACE) codes[i] = 0x0b;
    else if (f & F_NUMBER) codes[i] = C_NUMBER;
    else if (f & F_LETTER) codes[i] = C_LETTER;
    else if (f & F_PUNCTUATION) codes[i] = C_PUNCT;
    else if (f & F_MARK) codes[i] = C_MARK;
    else if (f & F_SYMBOL) codes[i] = C_SYMBOL;
    else codes[i] = C_OTHER;
  }
  p.collapsedText = decodeUtf16(codes);
  return p.collapsedText;
}

function wideTextOf(p: Prepared): string {
  if (p.wideText !== undefined) return p.wideText;
  const flags = flagsTable();
  const { cps } = p;
  const units = new Uint16Array(cps.length * 2);
  const offsets = new Uint32Array(cps.length + 1);
  let n = 0;
  for (let i = 0; i < cps.length; i++) {
    offsets[i] = n;
    let cp = cps[i]!;
    if (cp > 0x7f && flags[cp]! & F_WHITESPACE) cp = 0x0b;
    if (cp >= 0x10000) {
      units[n++] = 0xd800 + ((cp - 0x10000) >> 10);
      units[n++] = 0xdc00 + ((cp - 0x10000) & 0x3ff);
    } else {
      units[n++] = cp;
    }
  }
  offsets[cps.length] = n;
  p.wideText = decodeUtf16(units.subarray(0, n));
  p.wideOffsets = offsets;
  return p.wideText;
}

function decodeUtf16(units: Uint16Array): string {
  let s = '';
  for (let i = 0; i < units.length; i += 8192) {
    s += String.fromCharCode.apply(null, units.subarray(i, i + 8192) as unknown as number[]);
  }
  return s;
}

/** Splits `cps` into words; returns their lengths in code points. */
export function preTokenize(cps: Uint32Array, family: string): number[] {
  const steps = FAMILIES[family];
  if (!steps) throw new SparrowError(`unknown pre-tokenizer family '${family}'`, 'ERR_INTERNAL');
  let lengths = [cps.length];
  const prepared: Prepared = { cps };
  for (const step of steps) {
    switch (step.kind) {
      case 'gpt2':
        lengths = splitGpt2(cps, lengths);
        break;
      case 'llama3':
        lengths = splitLlama3(cps, lengths, true, F_LETTER);
        break;
      case 'qwen2':
        lengths = splitLlama3(cps, lengths, false, F_LETTER);
        break;
      case 'qwen35':
        lengths = splitLlama3(cps, lengths, false, F_LETTER | F_MARK);
        break;
      case 'collapsed':
        lengths = splitRegex(collapsedTextOf(prepared), undefined, step.re, lengths);
        break;
      case 'wide':
        lengths = splitRegex(wideTextOf(prepared), prepared.wideOffsets, step.re, lengths);
        break;
    }
  }
  return lengths;
}

/**
 * Splits each chunk into regex matches and the gaps between them (std::regex_iterator over
 * the chunk alone, so `$` means the end of the chunk). `offsets` maps code points to UTF-16
 * units when the text has surrogate pairs.
 */
function splitRegex(text: string, offsets: Uint32Array | undefined, re: RegExp, lengths: number[]): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of lengths) {
    const u0 = offsets ? offsets[start]! : start;
    const u1 = offsets ? offsets[start + len]! : start + len;
    const chunk = text.slice(u0, u1);
    // Code point index within the chunk of a UTF-16 index within the chunk.
    const toCp = offsets && u1 - u0 !== len ? cpIndexer(offsets, start, len, u0) : (u: number) => u;
    re.lastIndex = 0;
    let prev = 0; // code points consumed so far in this chunk
    let m: RegExpExecArray | null;
    while ((m = re.exec(chunk)) !== null) {
      if (m[0].length === 0) {
        // No pattern used here matches the empty string; guard against a loop anyway.
        re.lastIndex++;
        continue;
      }
      const a = toCp(m.index);
      const b = toCp(m.index + m[0].length);
      if (a > prev) out.push(a - prev);
      out.push(b - a);
      prev = b;
    }
    if (prev < len) out.push(len - prev);
    start += len;
  }
  return out;
}

function cpIndexer(offsets: Uint32Array, start: number, len: number, u0: number): (u: number) => number {
  // Binary search in offsets[start .. start+len] for the code point starting at unit u0+u.
  return (u: number) => {
    const target = u0 + u;
    let lo = start;
    let hi = start + len;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (offsets[mid]! < target) lo = mid + 1;
      else hi = mid;
    }
    return lo - start;
  };
}

const APOS = 0x27;
const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const NO_CPT = -1;

/** The contraction suffix after an apostrophe at `pos`: its length (2 or 3), or 0. */
function contraction(cps: Uint32Array, pos: number, end: number, lower: boolean): number {
  if (pos + 1 >= end) return 0;
  let c1 = cps[pos + 1]!;
  // Only ASCII letters can lower-case to s, t, m, d, r, e, v, l (llama.cpp's unicode_tolower).
  if (lower && c1 >= 0x41 && c1 <= 0x5a) c1 += 0x20;
  if (c1 === 0x73 || c1 === 0x74 || c1 === 0x6d || c1 === 0x64) return 2; // s t m d
  if (pos + 2 >= end) return 0;
  let c2 = cps[pos + 2]!;
  if (lower && c2 >= 0x41 && c2 <= 0x5a) c2 += 0x20;
  if ((c1 === 0x72 && c2 === 0x65) || (c1 === 0x76 && c2 === 0x65) || (c1 === 0x6c && c2 === 0x6c)) return 3; // re ve ll
  return 0;
}

/** GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
function splitGpt2(cps: Uint32Array, lengths: number[]): number[] {
  const table = flagsTable();
  const out: number[] = [];
  let start = 0;
  for (const len of lengths) {
    const ini = start;
    const end = start + len;
    start = end;
    const flag = (p: number) => (p < end ? table[cps[p]!]! : 0);
    let pos = ini;
    while (pos < end) {
      const cpt = cps[pos]!;
      if (cpt === APOS) {
        const n = contraction(cps, pos, end, false);
        if (n) {
          out.push(n);
          pos += n;
          continue;
        }
      }
      const from = pos;
      let f2 = cpt === SPACE ? flag(pos + 1) : table[cpt]!;
      if (f2 & F_LETTER) {
        if (cpt === SPACE) pos++;
        while (f2 & F_LETTER) f2 = flag(++pos);
        out.push(pos - from);
        continue;
      }
      if (f2 & F_NUMBER) {
        if (cpt === SPACE) pos++;
        while (f2 & F_NUMBER) f2 = flag(++pos);
        out.push(pos - from);
        continue;
      }
      if (!(f2 & (F_WHITESPACE | F_LETTER | F_NUMBER)) && f2) {
        if (cpt === SPACE) pos++;
        while (!(f2 & (F_WHITESPACE | F_LETTER | F_NUMBER)) && f2) f2 = flag(++pos);
        out.push(pos - from);
        continue;
      }
      let nws = 0;
      while (flag(pos + nws) & F_WHITESPACE) nws++;
      if (nws > 1 && pos + nws < end) {
        pos += nws - 1; // \s+(?!\S): leave the last space to the next word
        out.push(pos - from);
        continue;
      }
      pos += nws > 0 ? nws : 1;
      out.push(pos - from);
    }
  }
  return out;
}

/**
 * Llama 3 (digits in groups of up to three) and Qwen 2 (single digits):
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * Qwen 3.5 is Qwen 2 with \p{M} counted with the letters (`letters` = L|M).
 */
function splitLlama3(cps: Uint32Array, lengths: number[], digitTriples: boolean, letters: number): number[] {
  const table = flagsTable();
  const out: number[] = [];
  let start = 0;
  for (const len of lengths) {
    const ini = start;
    const end = start + len;
    start = end;
    const flag = (p: number) => (p < end ? table[cps[p]!]! : 0);
    const cpt = (p: number) => (p < end ? cps[p]! : NO_CPT);
    let pos = ini;
    while (pos < end) {
      const c = cps[pos]!;
      const f = table[c]!;
      if (c === APOS) {
        const n = contraction(cps, pos, end, true);
        if (n) {
          out.push(n);
          pos += n;
          continue;
        }
      }
      const from = pos;
      // [^\r\n\p{L}\p{N}]?\p{L}+
      if (!(c === CR || c === LF || f & F_NUMBER)) {
        if (f & letters || flag(pos + 1) & letters) {
          pos++;
          while (flag(pos) & letters) pos++;
          out.push(pos - from);
          continue;
        }
      }
      if (f & F_NUMBER) {
        if (!digitTriples) {
          out.push(1);
          pos++;
          continue;
        }
        let groupStart = pos;
        while (flag(pos) & F_NUMBER) {
          if (++pos - groupStart >= 3) {
            out.push(pos - groupStart);
            groupStart = pos;
          }
        }
        if (pos > groupStart) out.push(pos - groupStart);
        continue;
      }
      // <space>?[^\s\p{L}\p{N}]+[\r\n]*
      const stop = F_WHITESPACE | letters | F_NUMBER;
      let f2 = c === SPACE ? flag(pos + 1) : f;
      if (!(f2 & stop) && f) {
        if (c === SPACE) pos++;
        while (!(f2 & stop) && f2) f2 = flag(++pos);
        let c2 = cpt(pos);
        while (c2 === CR || c2 === LF) c2 = cpt(++pos);
        out.push(pos - from);
        continue;
      }
      let nws = 0;
      let lastNewlineEnd = 0;
      while (flag(pos + nws) & F_WHITESPACE) {
        const c2 = cps[pos + nws]!;
        if (c2 === CR || c2 === LF) lastNewlineEnd = pos + nws + 1;
        nws++;
      }
      if (lastNewlineEnd > 0) {
        pos = lastNewlineEnd; // \s*[\r\n]+
      } else if (nws > 1 && pos + nws < end) {
        pos += nws - 1; // \s+(?!\S)
      } else {
        pos += nws > 0 ? nws : 1;
      }
      out.push(pos - from);
    }
  }
  return out;
}
