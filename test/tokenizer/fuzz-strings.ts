/**
 * Seeded random strings for differential tokenizer tests: ASCII words, whitespace runs,
 * digits, punctuation, contractions, CJK, emoji and ZWJ sequences, combining marks, scripts
 * of all kinds, code points of every plane (including ones assigned after Unicode 15.1),
 * lone surrogates, special-token text and very long words.
 */

/** mulberry32: a small, fast, seedable PRNG (the one the benchmarks use). */
export { rng as makeRng } from '../../bench/stats.js';

type Rng = () => number;
const int = (rng: Rng, n: number) => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)]!;

const WORDS = [
  'the', 'Hello', 'world', 'tokenizer', 'llama', 'The', 'QUICK', 'brown', 'fox', 'jumps', 'über', 'naïve',
  'café', 'Führer', 'discards', 'apple', 'I', 'a', 'don', 'ain', 'can', 'x', 'Zebra', 'über-cool', 'e.g.',
];
const CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'LL", "'Re", "'", "''", "' "];
const WHITESPACE = [' ', '  ', '   ', '\t', '\n', '\n\n', '\r\n', '\r', '\v', '\f', '\u00a0', '\u3000', '\u2028', '\u2009', '\u0085', ' \n ', '\t\t', '\n \n'];
const PUNCT = ['.', ',', '!', '?', ';', ':', '-', '--', '...', '(', ')', '[', ']', '{', '}', '"', '<', '>', '=', '+', '$', '^', '~', '|', '`', '@', '#', '%', '&', '*', '/', '\\', '_', '。', '，', '！', '～', '«', '»', '“', '”', '—', '…', '€', '¥'];
const CJK = ['我想在', '工作', '天', '日本語', 'テスト', 'ひらがな', '한국어', '中文字符', '龥', '豈', '𠀀', '𪚥'];
const SCRIPTS = [
  'нещо на Български', 'Ελληνικά', 'العربية', 'עברית', 'हिन्दी', 'বাংলা', 'ไทย', 'កាន់តែពិសេស', 'ქართული',
  'Հայերեն', 'Tiếng Việt', 'Cửa Việt', 'ᏣᎳᎩ', 'ⰀⰁ', '𐐀𐐨', 'ꙮ', 'Ａｂｃ', 'µÀÖØö', 'ǅǈ', 'ﬁ', 'ℌℍ',
];
const EMOJI = [
  '🦙', '😁', '🚀', '✅', '😶‍🌫️', '👨‍👩‍👧‍👦', '👍🏽', '🏳️‍🌈', '❤️', '🇫🇷', '1️⃣', '🫠', '🧑🏿‍🚀', '☺', '©', '™',
];
const COMBINING = ['\u0301', '\u0308', '\u0327', '\u20dd', '\u0903', '\u093f', '\u0e31', '\u302a', '\u200d', '\ufe0f', '\u200b', '\u2060'];
const SPECIAL_TEXT = ['<|endoftext|>', '<s>', '</s>', '<unk>', '<|im_start|>', '[CLS]', '[SEP]', '<0x41>', '<｜begin▁of▁sentence｜>', '▁', '▁▁', '>>TITLE<<',
  // the chat markup of the real vocabularies (real-vocabs.test.ts)
  '<|im_end|>', '<think>', '</think>', '<tool_call>', '<|eot_id|>', '<|start_header_id|>', '<bos>', '<eos>', '<start_of_turn>',
  '<end_of_turn>', '<unused0>', '<|user|>', '<|end|>', '<|assistant|>', '<|start|>', '<|channel|>', '<|message|>', '<|return|>',
];

/** A random code point from anywhere (unassigned, private use, astral, Unicode 16/17 additions). */
function randomCodepoint(rng: Rng): string {
  const r = rng();
  let cp: number;
  if (r < 0.3) cp = 0x80 + int(rng, 0x780);
  else if (r < 0.6) cp = 0x800 + int(rng, 0xd000 - 0x800);
  else if (r < 0.7) cp = 0xe000 + int(rng, 0x2000);
  else if (r < 0.8) cp = pick(rng, [0x897, 0x1c89, 0xa7cb, 0x10d40, 0x11380, 0x1e5d0, 0x1fa89, 0x31ef, 0x2ebf0, 0x1f8b2]);
  else cp = 0x10000 + int(rng, 0x100000);
  return String.fromCodePoint(cp);
}

function randomWord(rng: Rng): string {
  let w = pick(rng, WORDS);
  if (rng() < 0.2) w = w.toUpperCase();
  return w;
}

function digits(rng: Rng): string {
  let s = '';
  const n = 1 + int(rng, 12);
  for (let i = 0; i < n; i++) s += String(int(rng, 10));
  if (rng() < 0.2) s += pick(rng, ['٣', '४', '½', '²', 'Ⅻ', '١٢٣']);
  return s;
}

function longWord(rng: Rng): string {
  const unit = pick(rng, ['a', 'ab', 'xyz', 'aaaaaaaaaa', 'é', '我', '🦙', '0', '-', ' ', '\n']);
  return unit.repeat(50 + int(rng, 400));
}

function loneSurrogate(rng: Rng): string {
  return String.fromCharCode(rng() < 0.5 ? 0xd800 + int(rng, 0x400) : 0xdc00 + int(rng, 0x400));
}

const PARTS: Array<[number, (rng: Rng) => string]> = [
  [20, randomWord],
  [14, (rng) => pick(rng, WHITESPACE)],
  [8, digits],
  [10, (rng) => pick(rng, PUNCT)],
  [5, (rng) => pick(rng, CONTRACTIONS)],
  [5, (rng) => pick(rng, CJK)],
  [6, (rng) => pick(rng, SCRIPTS)],
  [5, (rng) => pick(rng, EMOJI)],
  [4, (rng) => pick(rng, COMBINING)],
  [5, randomCodepoint],
  [2, loneSurrogate],
  [3, (rng) => pick(rng, SPECIAL_TEXT)],
  [1, longWord],
  [6, (rng) => String.fromCharCode(0x20 + int(rng, 0x5f))],
  [1, (rng) => String.fromCharCode(int(rng, 0x20))],
];
const TOTAL = PARTS.reduce((s, [w]) => s + w, 0);

/** A random string of up to `maxParts` pieces. */
export function randomText(rng: Rng, maxParts = 24): string {
  const n = int(rng, maxParts + 1);
  let s = '';
  for (let i = 0; i < n; i++) {
    let r = rng() * TOTAL;
    for (const [w, gen] of PARTS) {
      r -= w;
      if (r < 0) {
        s += gen(rng);
        break;
      }
    }
  }
  return s;
}
