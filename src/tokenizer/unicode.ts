/**
 * Unicode helpers shared by the tokenizers: per-code-point flags with llama.cpp's meaning
 * (category bits, whitespace), simple lowercase, the first code point of NFD, the GPT-2
 * byte-to-unicode map, and UTF-8 conversion with lone surrogates turned into U+FFFD (what
 * Node does when it hands a JS string to C++ as UTF-8).
 */
import { CATEGORY_RUNS, LOWERCASE_MAP, NFD_RUNS } from './unicode-data.js';

export const MAX_CODEPOINT = 0x110000;

// Flag bits, numbered as in llama.cpp's unicode.h so the pre-tokenizers read the same.
export const F_UNDEFINED = 0x0001;
export const F_NUMBER = 0x0002; // \p{N}
export const F_LETTER = 0x0004; // \p{L}
export const F_SEPARATOR = 0x0008; // \p{Z}
export const F_MARK = 0x0010; // \p{M}
export const F_PUNCTUATION = 0x0020; // \p{P}
export const F_SYMBOL = 0x0040; // \p{S}
export const F_CONTROL = 0x0080; // \p{C}
export const F_CATEGORIES = 0x00ff;
export const F_WHITESPACE = 0x0100; // \s (Unicode White_Space)

/** Unicode White_Space code points (PropList.txt), as llama.cpp lists them. */
const WHITESPACE = [
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004,
  0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
];

let flagTable: Uint16Array | undefined;

/** Flags of every code point (2.2 MB, built once on first use in a few milliseconds). */
export function flagsTable(): Uint16Array {
  if (flagTable) return flagTable;
  const t = new Uint16Array(MAX_CODEPOINT);
  let start = 0;
  let prevFlag = -1;
  for (const item of CATEGORY_RUNS.split(',')) {
    const dot = item.indexOf('.');
    const runStart = start + parseInt(item.slice(0, dot), 36);
    if (prevFlag >= 0) t.fill(prevFlag, start, runStart);
    start = runStart;
    prevFlag = parseInt(item.slice(dot + 1), 36);
  }
  t.fill(prevFlag, start, MAX_CODEPOINT);
  for (const cp of WHITESPACE) t[cp] |= F_WHITESPACE;
  flagTable = t;
  return t;
}

/** Flags of one code point; code points past U+10FFFF are undefined, as in llama.cpp. */
export function cptFlags(cp: number): number {
  return cp < MAX_CODEPOINT ? flagsTable()[cp]! : F_UNDEFINED;
}

let lowerMap: Map<number, number> | undefined;

/** Simple lowercase mapping (UnicodeData.txt field 13), identity when there is none. */
export function toLowerCpt(cp: number): number {
  if (!lowerMap) {
    lowerMap = new Map();
    let cur = 0;
    for (const item of LOWERCASE_MAP.split(',')) {
      const dot = item.indexOf('.');
      cur += parseInt(item.slice(0, dot), 36);
      lowerMap.set(cur, cur + parseInt(item.slice(dot + 1), 36) - MAX_CODEPOINT);
    }
  }
  return lowerMap.get(cp) ?? cp;
}

let nfdStarts: Int32Array | undefined;
let nfdLasts: Int32Array | undefined;
let nfdValues: Int32Array | undefined;

/** First code point of the canonical decomposition (llama.cpp's `unicode_cpts_normalize_nfd`). */
export function nfdFirstCpt(cp: number): number {
  if (!nfdStarts) {
    const items = NFD_RUNS.split(',');
    nfdStarts = new Int32Array(items.length);
    nfdLasts = new Int32Array(items.length);
    nfdValues = new Int32Array(items.length);
    let cur = 0;
    items.forEach((item, i) => {
      const [d, len, v] = item.split('.').map((x) => parseInt(x, 36)) as [number, number, number];
      cur += d;
      nfdStarts![i] = cur;
      nfdLasts![i] = cur + len;
      nfdValues![i] = v;
    });
  }
  // Binary search for the last run starting at or before cp.
  let lo = 0;
  let hi = nfdStarts.length - 1;
  if (hi < 0 || cp < nfdStarts[0]!) return cp;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (nfdStarts[mid]! <= cp) lo = mid;
    else hi = mid - 1;
  }
  return cp <= nfdLasts![lo]! ? nfdValues![lo]! : cp;
}

/**
 * Code points of a JS string. Lone surrogates become U+FFFD, exactly as Node's UTF-8
 * conversion (and so node-llama-cpp) sees them.
 */
export function toCodepoints(text: string): Uint32Array {
  const out = new Uint32Array(text.length);
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c < 0xe000) {
      if (c < 0xdc00 && i + 1 < text.length) {
        const d = text.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) {
          out[n++] = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
          continue;
        }
      }
      out[n++] = 0xfffd;
    } else {
      out[n++] = c;
    }
  }
  return out.subarray(0, n);
}

/** Replaces lone surrogates with U+FFFD (what Node's UTF-8 conversion does). */
export function toWellFormed(text: string): string {
  // String.prototype.isWellFormed exists from Node 20; fall back to a scan otherwise.
  const s = text as string & { isWellFormed?: () => boolean; toWellFormed?: () => string };
  if (typeof s.isWellFormed === 'function') return s.isWellFormed() ? text : s.toWellFormed!();
  return String.fromCodePoint(...toCodepoints(text));
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

/** UTF-8 bytes of a string (lone surrogates as EF BF BD). */
export function utf8Encode(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A string from UTF-8 bytes; invalid sequences become U+FFFD, as V8 does for node-llama-cpp. */
export function utf8Decode(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Number of bytes of a UTF-8 sequence from its lead byte (llama.cpp's `unicode_len_utf8`). */
export function utf8SeqLen(lead: number): number {
  const hi = lead >> 4;
  return hi < 12 ? 1 : hi < 14 ? 2 : hi === 14 ? 3 : 4;
}

/**
 * GPT-2's byte-to-unicode map: printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100 and up, in byte order.
 */
export const BYTE_TO_UNICODE: readonly string[] = (() => {
  const map: string[] = new Array(256);
  const direct = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) map[b] = String.fromCharCode(direct(b) ? b : 256 + n++);
  return map;
})();

/** Inverse of BYTE_TO_UNICODE, indexed by code point (-1 where a code point is no byte). */
export const UNICODE_TO_BYTE: Int16Array = (() => {
  const inv = new Int16Array(512).fill(-1);
  BYTE_TO_UNICODE.forEach((ch, b) => {
    inv[ch.charCodeAt(0)] = b;
  });
  return inv;
})();
