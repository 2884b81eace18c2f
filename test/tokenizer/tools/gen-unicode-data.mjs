#!/usr/bin/env node
/**
 * Generates src/tokenizer/unicode-data.ts: the Unicode tables the tokenizer needs, frozen at
 * the Unicode version llama.cpp's own tables use (15.1), so that tokenization does not change
 * with the Unicode version of the Node.js that runs it.
 *
 * Source of the facts: this Node's ICU (regex property escapes, String#toLowerCase,
 * String#normalize), minus the code points first assigned in Unicode 16.0 and 17.0, which
 * llama.cpp treats as unassigned (general category Cn).
 *
 * Run: node test/tokenizer/tools/gen-unicode-data.mjs > src/tokenizer/unicode-data.ts
 * Needs a Node whose ICU has Unicode 15.1, 16.0 or 17.0 (process.versions.unicode).
 */

const MAX = 0x110000;

const version = process.versions.unicode;
if (!['15.1', '16.0', '17.0'].includes(version)) {
  console.error(`gen-unicode-data: this Node has Unicode ${version}; run it on a Node with Unicode 15.1, 16.0 or 17.0`);
  process.exit(1);
}

// Code points assigned in Unicode 16.0 or 17.0 (inclusive ranges). They are unassigned in 15.1.
// Listed as data; a Node with Unicode 15.1 already reports them as Cn.
const NEWER_THAN_15_1 = [
  [0x88f, 0x88f], [0x897, 0x897], [0xc5c, 0xc5c], [0xcdc, 0xcdc], [0x1acf, 0x1add], [0x1ae0, 0x1aeb],
  [0x1b4e, 0x1b4f], [0x1b7f, 0x1b7f], [0x1c89, 0x1c8a], [0x20c1, 0x20c1], [0x2427, 0x2429],
  [0x2b96, 0x2b96], [0x31e4, 0x31e5], [0xa7cb, 0xa7cf], [0xa7d2, 0xa7d2], [0xa7d4, 0xa7d4],
  [0xa7da, 0xa7dc], [0xa7f1, 0xa7f1], [0xfbc3, 0xfbd2], [0xfd90, 0xfd91], [0xfdc8, 0xfdce],
  [0x105c0, 0x105f3], [0x10940, 0x10959], [0x10d40, 0x10d65], [0x10d69, 0x10d85], [0x10d8e, 0x10d8f],
  [0x10ec2, 0x10ec7], [0x10ed0, 0x10ed8], [0x10efa, 0x10efc], [0x11380, 0x11389], [0x1138b, 0x1138b],
  [0x1138e, 0x1138e], [0x11390, 0x113b5], [0x113b7, 0x113c0], [0x113c2, 0x113c2], [0x113c5, 0x113c5],
  [0x113c7, 0x113ca], [0x113cc, 0x113d5], [0x113d7, 0x113d8], [0x113e1, 0x113e2], [0x116d0, 0x116e3],
  [0x11b60, 0x11b67], [0x11bc0, 0x11be1], [0x11bf0, 0x11bf9], [0x11db0, 0x11ddb], [0x11de0, 0x11de9],
  [0x11f5a, 0x11f5a], [0x13460, 0x143fa], [0x16100, 0x16139], [0x16d40, 0x16d79], [0x16ea0, 0x16eb8],
  [0x16ebb, 0x16ed3], [0x16ff2, 0x16ff6], [0x187f8, 0x187ff], [0x18cff, 0x18cff], [0x18d09, 0x18d1e],
  [0x18d80, 0x18df2], [0x1cc00, 0x1ccfc], [0x1cd00, 0x1ceb3], [0x1ceba, 0x1ced0], [0x1cee0, 0x1cef0],
  [0x1e5d0, 0x1e5fa], [0x1e5ff, 0x1e5ff], [0x1e6c0, 0x1e6de], [0x1e6e0, 0x1e6f5], [0x1e6fe, 0x1e6ff],
  [0x1f6d8, 0x1f6d8], [0x1f777, 0x1f77a], [0x1f8b2, 0x1f8bb], [0x1f8c0, 0x1f8c1], [0x1f8d0, 0x1f8d8],
  [0x1fa54, 0x1fa57], [0x1fa89, 0x1fa8a], [0x1fa8e, 0x1fa8f], [0x1fabe, 0x1fabe], [0x1fac6, 0x1fac6],
  [0x1fac8, 0x1fac8], [0x1facd, 0x1facd], [0x1fadc, 0x1fadc], [0x1fadf, 0x1fadf], [0x1fae9, 0x1faea],
  [0x1faef, 0x1faef], [0x1fbcb, 0x1fbef], [0x1fbfa, 0x1fbfa], [0x2b73a, 0x2b73f], [0x2cea2, 0x2cead],
  [0x323b0, 0x33479],
];

// Category flags, as llama.cpp's unicode.h numbers them.
const CATEGORIES = [
  [0x01, /\p{Cn}/u], // unassigned
  [0x02, /\p{N}/u],
  [0x04, /\p{L}/u],
  [0x08, /\p{Z}/u],
  [0x10, /\p{M}/u],
  [0x20, /\p{P}/u],
  [0x40, /\p{S}/u],
  [0x80, /[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u],
];

const newer = new Uint8Array(MAX);
for (const [a, b] of NEWER_THAN_15_1) newer.fill(1, a, b + 1);

const flags = new Uint8Array(MAX);
for (let cp = 0; cp < MAX; cp++) {
  if (newer[cp]) {
    flags[cp] = 0x01;
    continue;
  }
  const s = String.fromCodePoint(cp);
  for (const [bit, re] of CATEGORIES) {
    if (re.test(s)) {
      flags[cp] = bit;
      break;
    }
  }
}

// Runs of equal flags: "delta,flag" pairs in base 36, delta from the previous run's start.
const runs = [];
let prevStart = 0;
for (let cp = 0; cp < MAX; cp++) {
  if (cp === 0 || flags[cp] !== flags[cp - 1]) {
    runs.push(`${(cp - prevStart).toString(36)}.${flags[cp].toString(36)}`);
    prevStart = cp;
  }
}

// Simple lowercase mapping of assigned code points (first code point of the full mapping:
// only U+0130 has a multi-code-point lowercase, and its simple mapping is its first one).
const lower = [];
let prevLower = 0;
for (let cp = 0; cp < MAX; cp++) {
  if (flags[cp] === 0x01 || (cp >= 0xd800 && cp < 0xe000)) continue;
  const l = String.fromCodePoint(cp).toLowerCase().codePointAt(0);
  if (l !== cp) {
    lower.push(`${(cp - prevLower).toString(36)}.${(l - cp + 0x110000).toString(36)}`);
    prevLower = cp;
  }
}

// First code point of the canonical decomposition (NFD), as runs [start, last, nfd].
const nfd = [];
let prevNfd = 0;
let run = null;
for (let cp = 0; cp < MAX; cp++) {
  let d = cp;
  if (flags[cp] !== 0x01 && !(cp >= 0xd800 && cp < 0xe000)) {
    d = String.fromCodePoint(cp).normalize('NFD').codePointAt(0);
  }
  if (d !== cp) {
    if (run && run[1] === cp - 1 && run[2] === d) {
      run[1] = cp;
    } else {
      if (run) nfd.push(run);
      run = [cp, cp, d];
    }
  }
}
if (run) nfd.push(run);
const nfdText = nfd.map(([a, b, d]) => {
  const s = `${(a - prevNfd).toString(36)}.${(b - a).toString(36)}.${d.toString(36)}`;
  prevNfd = a;
  return s;
});

const wrap = (items) => {
  const lines = [];
  let line = '';
  for (const it of items) {
    if (line.length + it.length + 1 > 96) {
      lines.push(line);
      line = '';
    }
    line += (line ? ',' : '') + it;
  }
  if (line) lines.push(line);
  return lines.map((l, i) => `  '${l}${i < lines.length - 1 ? ',' : ''}'`).join(' +\n');
};

process.stdout.write(`/**
 * Unicode tables for the tokenizer, frozen at Unicode 15.1 (the version llama.cpp's tables use).
 * Generated by test/tokenizer/tools/gen-unicode-data.mjs; do not edit by hand.
 * Each table is a comma-separated list of base-36 fields; see src/tokenizer/unicode.ts.
 */

/** Runs of general-category flags: "delta.flag", delta from the previous run's start. */
export const CATEGORY_RUNS =
${wrap(runs)};

/** Simple lowercase mapping: "delta.offset", lower = cp + offset - 0x110000. */
export const LOWERCASE_MAP =
${wrap(lower)};

/** First code point of the NFD decomposition: "delta.length.nfd" for runs [start, start+length]. */
export const NFD_RUNS =
${wrap(nfdText)};
`);
