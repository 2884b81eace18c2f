/**
 * Tokenizer throughput: MB/s of UTF-8 text tokenized by sparrow-llm and by llama.cpp
 * (node-llama-cpp's model.tokenize on the same vocabulary file), in the same run.
 *
 *   npm run build:ts && node dist/bench/tokenizer.js [--mb 1] [--reps 5] [--vocabs llama-spm,gpt-2,...] [--shared ../shared]
 *
 * Texts: English prose (the README files of the installed packages, concatenated) and a
 * mixed-script text (random words in Latin, Cyrillic, Greek, Arabic, Devanagari, CJK, Hangul,
 * Thai, with digits, punctuation and emoji). Both engines get the whole text in one call.
 * "cold" is the first call on a freshly built tokenizer (sparrow caches word encodings),
 * "warm" a second call on it; each figure is the median over the reps, and the engines
 * alternate rep by rep.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTokenizer } from '../src/tokenizer/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
// Works from bench/ (vitest, tsx) and from dist/bench/ (compiled).
const root = [path.resolve(here, '..'), path.resolve(here, '../..')].find((d) => fs.existsSync(path.join(d, 'package.json')))!;
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const shared = path.resolve(arg('shared', path.resolve(root, '../shared')));
const targetBytes = Number(arg('mb', '1')) * 1e6;
const reps = Number(arg('reps', '5'));
const vocabs = arg('vocabs', 'llama-spm,gpt-2,deepseek-llm,falcon').split(',');

function englishText(): string {
  const files: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && depth < 3) walk(p, depth + 1);
      else if (/^readme\.md$/i.test(e.name)) files.push(p);
    }
  };
  walk(path.join(root, 'node_modules'), 0);
  let text = '';
  for (const f of files) {
    text += fs.readFileSync(f, 'utf8') + '\n\n';
    if (Buffer.byteLength(text) >= targetBytes) break;
  }
  while (Buffer.byteLength(text) < targetBytes) text += text; // small install: repeat
  return text.slice(0, targetBytes);
}

function mixedText(): string {
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const range = (a: number, b: number) => () => String.fromCodePoint(a + Math.floor(rnd() * (b - a + 1)));
  const scripts = [
    range(0x61, 0x7a), range(0x430, 0x44f), range(0x3b1, 0x3c9), range(0x627, 0x64a), range(0x915, 0x939),
    range(0x4e00, 0x9fa5), range(0xac00, 0xd7a3), range(0x0e01, 0x0e2e), range(0x3041, 0x3096),
  ];
  const emoji = ['🦙', '😁', '🚀', '✅', '👍🏽', '❤️', '🇫🇷', '😶‍🌫️'];
  const punct = ['.', ',', '!', '?', '。', '、', '…', ' - ', '"', '(', ')'];
  let out = '';
  while (Buffer.byteLength(out) < targetBytes) {
    const r = rnd();
    if (r < 0.7) {
      const gen = scripts[Math.floor(rnd() * scripts.length)]!;
      const n = 1 + Math.floor(rnd() * 8);
      for (let i = 0; i < n; i++) out += gen();
    } else if (r < 0.8) out += String(Math.floor(rnd() * 100000));
    else if (r < 0.9) out += punct[Math.floor(rnd() * punct.length)];
    else out += emoji[Math.floor(rnd() * emoji.length)];
    out += rnd() < 0.1 ? '\n' : ' ';
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(fn: () => unknown): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

async function main(): Promise<void> {
  let nlc: typeof import('node-llama-cpp') | undefined;
  try {
    nlc = await import('node-llama-cpp');
  } catch {
    console.log('node-llama-cpp is not installed: sparrow numbers only');
  }
  const llama = nlc ? await nlc.getLlama({ gpu: false, logLevel: 'error' as never }) : undefined;
  const texts = { english: englishText(), mixed: mixedText() };
  console.log(`texts: english ${(Buffer.byteLength(texts.english) / 1e6).toFixed(2)} MB, mixed ${(Buffer.byteLength(texts.mixed) / 1e6).toFixed(2)} MB; ${reps} reps`);
  console.log('vocab          text     sparrow cold  sparrow warm  llama.cpp     ratio (warm)  ratio (cold)  same ids');
  for (const name of vocabs) {
    const file = path.join(shared, 'vocab', `ggml-vocab-${name}.gguf`);
    const oracle = llama ? await llama.loadModel({ modelPath: file, vocabOnly: true }) : undefined;
    for (const [label, text] of Object.entries(texts)) {
      const mb = Buffer.byteLength(text) / 1e6;
      // Interleave the engines rep by rep: this machine may be shared, so noise hits both alike.
      const cold: number[] = [];
      const warm: number[] = [];
      const ref: number[] = [];
      let ours: number[] = [];
      let theirs: number[] = [];
      for (let i = 0; i < reps; i++) {
        const tok = loadTokenizer(file); // fresh: empty caches
        cold.push(time(() => (ours = tok.tokenize(text, { addSpecial: false }))));
        warm.push(time(() => tok.tokenize(text, { addSpecial: false })));
        if (oracle) ref.push(time(() => (theirs = oracle.tokenize(text, false))));
      }
      const same = oracle ? (ours.length === theirs.length && ours.every((id, i) => id === theirs[i]) ? 'yes' : 'NO') : '-';
      const f = (s: number) => `${(mb / s).toFixed(2).padStart(7)} MB/s`;
      const ratio = (s: number) => (ref.length ? `${(median(ref) / s).toFixed(2)}x`.padStart(12) : '-'.padStart(12));
      console.log(
        `${name.padEnd(14)} ${label.padEnd(8)} ${f(median(cold))}  ${f(median(warm))}  ${ref.length ? f(median(ref)) : '      -     '}  ${ratio(median(warm))}  ${ratio(median(cold))}  ${same}`,
      );
    }
    await oracle?.dispose();
  }
}

await main();
