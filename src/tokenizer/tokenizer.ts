/**
 * The Tokenizer: built from a GGUF file's `tokenizer.ggml.*` metadata, it tokenizes and
 * detokenizes exactly as llama.cpp does (llama-vocab.cpp), including its quirks: the SPM
 * dummy-prefix space, special tokens split out before the model runs (user-defined ones
 * always, control ones only with `parseSpecial`), the clean-up of spaces before punctuation
 * for some BPE vocabularies, and the special-token ids found by their text.
 */
import { SparrowError } from '../errors.js';
import { inspectGGUF, type GGUFMetadataValue } from '../gguf.js';
import {
  BpeModel,
  SpmModel,
  WpmModel,
  buildBpeTables,
  buildSpmTables,
  buildWpmTables,
  type BpeTables,
  type SpmTables,
  type TokenizerModel,
  type VocabData,
  type WpmTables,
} from './models.js';
import { runSliced, runSync, type SliceOptions, type Steps } from './slices.js';
import { preTokenizerInfo, type PreTokenizerInfo } from './pretokenize.js';
import { UNICODE_TO_BYTE, toWellFormed, utf8Decode, utf8Encode, utf8SeqLen } from './unicode.js';

/** Token attributes (llama.h's llama_token_attr bits). */
export const TokenAttr = {
  UNDEFINED: 0,
  UNKNOWN: 1 << 0,
  UNUSED: 1 << 1,
  NORMAL: 1 << 2,
  CONTROL: 1 << 3,
  USER_DEFINED: 1 << 4,
  BYTE: 1 << 5,
  NORMALIZED: 1 << 6,
  LSTRIP: 1 << 7,
  RSTRIP: 1 << 8,
  SINGLE_WORD: 1 << 9,
} as const;

const A = TokenAttr;

/** `tokenizer.ggml.token_type` values to attributes. */
const TYPE_TO_ATTR = [A.UNDEFINED, A.NORMAL, A.UNKNOWN, A.CONTROL, A.USER_DEFINED, A.UNUSED, A.BYTE];

export type TokenizerKind = 'spm' | 'bpe' | 'wpm';

export interface TokenizeOptions {
  /** Add BOS / EOS (BERT: CLS / SEP) as the file asks (`add_bos_token`, `add_eos_token`). Default true. */
  addSpecial?: boolean;
  /** Turn the text of control tokens (`<|im_start|>`) into their ids. Default false. */
  parseSpecial?: boolean;
}

export interface DetokenizeOptions {
  /**
   * Drop a leading BOS and a trailing EOS (when the file adds them) and render control tokens
   * as nothing. Default false.
   */
  removeSpecial?: boolean;
  /** Render control and unknown tokens as their text. Default: `!removeSpecial`. */
  unparseSpecial?: boolean;
}

/** Special token ids; null where the vocabulary has none. */
export interface SpecialTokens {
  bos: number | null;
  eos: number | null;
  eot: number | null;
  eom: number | null;
  unk: number | null;
  sep: number | null;
  pad: number | null;
  mask: number | null;
  fimPre: number | null;
  fimSuf: number | null;
  fimMid: number | null;
  fimPad: number | null;
  fimRep: number | null;
  fimSep: number | null;
  /** The newline token (llama.cpp's linefeed id). */
  nl: number | null;
}

type Metadata = Record<string, GGUFMetadataValue>;

const K = 'tokenizer.ggml.';

function metaError(key: string, what: string): SparrowError {
  return new SparrowError(`tokenizer metadata: ${key} ${what}`, 'ERR_TOKENIZER_METADATA');
}

function getString(md: Metadata, key: string): string | undefined {
  const v = md[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw metaError(key, `must be a string, got ${typeof v}`);
  return v;
}

function getBool(md: Metadata, key: string): boolean | undefined {
  const v = md[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw metaError(key, `must be a boolean, got ${typeof v}`);
  return v;
}

function getUint(md: Metadata, key: string): number | undefined {
  const v = md[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw metaError(key, `must be a non-negative integer, got ${String(v)}`);
  return n;
}

function getArray<T>(md: Metadata, key: string, elem: string, check: (x: unknown) => x is T): T[] | undefined {
  const v = md[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw metaError(key, `must be an array of ${elem}`);
  for (let i = 0; i < v.length; i++) {
    if (!check(v[i])) throw metaError(key, `must be an array of ${elem} (element ${i} is ${typeof v[i]})`);
  }
  return v as T[];
}

const isString = (x: unknown): x is string => typeof x === 'string';
const isNumber = (x: unknown): x is number => typeof x === 'number';

// Texts llama.cpp recognises special tokens by (llama_vocab::impl::load).
const EOT_TEXTS = ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '[EOT]', '<｜end▁of▁sentence｜>', '<end_of_utterance>'];
const EOM_TEXTS = ['<|eom_id|>'];
const FIM_PRE_TEXTS = ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>'];
const FIM_SUF_TEXTS = ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>'];
const FIM_MID_TEXTS = ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>'];
const FIM_PAD_TEXTS = ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>', '[PAD]'];
const FIM_REP_TEXTS = ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>'];
const FIM_SEP_TEXTS = ['<|file_sep|>'];
const EOG_TEXTS = [
  '<|eot_id|>', '<|im_end|>', '<|end|>', '<|return|>', '<|call|>', '<|flush|>', '<|calls|>', '<end_of_turn>',
  '<|endoftext|>', '</s>', '<|eom_id|>', '<EOT>', '_<EOT>', '[EOT]', '[EOS]', '<|end_of_text|>',
  '<end_of_utterance>', '<eos>', '<turn|>', '<|tool_response>', '<｜end▁of▁sentence｜>', '[e~[',
];

/** The vocabulary arrays, as read from the metadata (attributes before the special-token rules). */
interface Vocab {
  tokens: string[];
  textToId: Map<string, number>;
  scores: Float32Array;
  attrs: Uint16Array;
}

/** The tables of the tokenizer's model, built beforehand in slices (fromMetadataAsync). */
interface ModelTables {
  spm?: SpmTables;
  bpe?: BpeTables;
  wpm?: WpmTables;
}

function* buildVocab(md: Metadata): Steps<Vocab> {
  const rawTokens = getArray(md, K + 'tokens', 'strings', isString);
  if (!rawTokens) throw metaError(K + 'tokens', 'is missing');
  const n = rawTokens.length;
  const scoresIn = getArray(md, K + 'scores', 'numbers', isNumber);
  if (scoresIn && scoresIn.length < n) throw metaError(K + 'scores', `has ${scoresIn.length} entries for ${n} tokens`);
  const types = getArray(md, K + 'token_type', 'integers', isNumber);
  if (types && types.length < n) throw metaError(K + 'token_type', `has ${types.length} entries for ${n} tokens`);
  const tokens = new Array<string>(n);
  const textToId = new Map<string, number>();
  const scores = new Float32Array(n);
  const attrs = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    if (i % 2048 === 0) yield;
    const t = rawTokens[i]!.length ? rawTokens[i]! : `[EMPTY_${i}]`;
    tokens[i] = t;
    textToId.set(t, i);
    if (scoresIn) scores[i] = scoresIn[i]!;
    attrs[i] = types ? (TYPE_TO_ATTR[types[i]!] ?? A.UNDEFINED) : A.NORMAL;
  }
  return { tokens, textToId, scores, attrs };
}

/** A piece of text or a special token, after splitting out special tokens. */
type Fragment = string | number;

export class Tokenizer {
  /** 'spm' (SentencePiece, tokenizer.ggml.model = llama), 'bpe' (gpt2) or 'wpm' (bert). */
  readonly kind: TokenizerKind;
  /** tokenizer.ggml.model as written in the file. */
  readonly model: string;
  /** tokenizer.ggml.pre (BPE only). */
  readonly pre: string | undefined;
  readonly vocabSize: number;
  readonly special: Readonly<SpecialTokens>;
  readonly addBos: boolean;
  readonly addEos: boolean;
  /** SPM: a space is put before the text (and after each special token) before tokenizing. */
  readonly addSpacePrefix: boolean;
  /** tokenizer.chat_template, when the file has one. */
  readonly chatTemplate: string | undefined;

  private readonly tokens: string[];
  private readonly textToId: Map<string, number>;
  private readonly attrs: Uint16Array;
  private readonly eog: Set<number>;
  /** Detokenize drops spaces before punctuation (llama.cpp's clean_spaces, some BPE vocabularies). */
  readonly cleanSpaces: boolean;
  private readonly impl: TokenizerModel;
  /** Rendering of each token with special tokens shown (llama.cpp's cache_token_to_piece). */
  private readonly pieces: Array<Uint8Array | undefined>;
  /** Special-token texts to split out first, longest first: all of them / user-defined only. */
  private readonly specialAll: number[];
  private readonly specialUser: number[];
  private readonly tries = new Map<boolean, SpecialTrie>();

  /** Builds a tokenizer from GGUF metadata (as `inspectGGUF(path).metadata` returns it). */
  static fromMetadata(metadata: Record<string, GGUFMetadataValue>): Tokenizer {
    if (metadata === null || typeof metadata !== 'object') {
      throw new SparrowError('Tokenizer.fromMetadata: metadata must be an object', 'ERR_INVALID_ARG');
    }
    return new Tokenizer(metadata);
  }

  /**
   * Builds a tokenizer like fromMetadata, in slices of a few milliseconds that let the event
   * loop run between them (a 150k-token vocabulary takes a few hundred ms to build).
   * `signal` stops it between slices (ERR_ABORTED).
   */
  static async fromMetadataAsync(
    metadata: Record<string, GGUFMetadataValue>,
    options: SliceOptions = {},
  ): Promise<Tokenizer> {
    if (metadata === null || typeof metadata !== 'object') {
      throw new SparrowError('Tokenizer.fromMetadataAsync: metadata must be an object', 'ERR_INVALID_ARG');
    }
    return runSliced(Tokenizer.build(metadata), options, 'building the tokenizer');
  }

  /** The slow parts (vocabulary maps, the model's tables) as steps, then the constructor. */
  private static *build(md: Metadata): Steps<Tokenizer> {
    const model = getString(md, K + 'model');
    // The checks the constructor makes before the vocabulary come first, with its errors.
    if (model !== 'llama' && model !== 'gpt2' && model !== 'bert') return new Tokenizer(md);
    if (model === 'gpt2') preTokenizerInfo(getString(md, K + 'pre'));
    getBool(md, K + 'add_space_prefix');
    const vocab = yield* buildVocab(md);
    let tables: ModelTables;
    if (model === 'llama') {
      tables = { spm: yield* buildSpmTables(vocab) };
    } else if (model === 'gpt2') {
      const merges = getArray(md, K + 'merges', 'strings', isString);
      if (!merges) return new Tokenizer(md, { vocab }); // throws the constructor's error
      tables = { bpe: yield* buildBpeTables(vocab, merges) };
    } else {
      tables = { wpm: yield* buildWpmTables(vocab) };
    }
    return new Tokenizer(md, { vocab, tables });
  }

  private constructor(md: Metadata, built?: { vocab: Vocab; tables?: ModelTables }) {
    const model = getString(md, K + 'model');
    if (model === undefined) throw metaError(K + 'model', 'is missing: the file has no tokenizer');
    this.model = model;
    let pre: PreTokenizerInfo | undefined;
    const sp: SpecialTokens = {
      bos: null, eos: null, eot: null, eom: null, unk: null, sep: null, pad: null, mask: null,
      fimPre: null, fimSuf: null, fimMid: null, fimPad: null, fimRep: null, fimSep: null, nl: null,
    };
    let addBos = false;
    let addEos = false;
    let addSpacePrefix = false;
    let cleanSpaces = false;
    if (model === 'llama') {
      this.kind = 'spm';
      Object.assign(sp, { bos: 1, eos: 2, unk: 0 });
      addSpacePrefix = true;
      addBos = true;
    } else if (model === 'gpt2') {
      this.kind = 'bpe';
      Object.assign(sp, { bos: 11, eos: 11 });
      pre = preTokenizerInfo(getString(md, K + 'pre'));
      cleanSpaces = pre.cleanSpaces;
      addBos = pre.addBos;
    } else if (model === 'bert') {
      this.kind = 'wpm';
      Object.assign(sp, { bos: 101, unk: 100, sep: 102, pad: 0, mask: 103 });
      cleanSpaces = true;
      addBos = true;
    } else {
      throw new SparrowError(
        `${K}model: unsupported tokenizer model '${model}' (supported: llama, gpt2, bert)`,
        'ERR_TOKENIZER_UNSUPPORTED',
      );
    }
    this.pre = this.kind === 'bpe' ? (getString(md, K + 'pre') ?? 'default') : undefined;
    addSpacePrefix = getBool(md, K + 'add_space_prefix') ?? addSpacePrefix;

    // Vocabulary.
    const { tokens, textToId, scores, attrs } = built?.vocab ?? runSync(buildVocab(md));
    const n = tokens.length;
    this.tokens = tokens;
    this.textToId = textToId;
    this.vocabSize = n;
    this.attrs = attrs;

    // Special ids: defaults (dropped when out of range), then the file's values when in range.
    const ids: Array<[keyof SpecialTokens, string]> = [
      ['bos', 'bos_token_id'], ['eos', 'eos_token_id'], ['eot', 'eot_token_id'], ['eom', 'eom_token_id'],
      ['unk', 'unknown_token_id'], ['sep', 'seperator_token_id'], ['pad', 'padding_token_id'],
      ['mask', 'mask_token_id'], ['fimPre', 'fim_pre_token_id'], ['fimSuf', 'fim_suf_token_id'],
      ['fimMid', 'fim_mid_token_id'], ['fimPad', 'fim_pad_token_id'], ['fimRep', 'fim_rep_token_id'],
      ['fimSep', 'fim_sep_token_id'], ['fimPre', 'prefix_token_id'], ['fimSuf', 'suffix_token_id'],
      ['fimMid', 'middle_token_id'],
    ];
    for (const [name, key] of ids) {
      const cur = sp[name];
      if (cur !== null && cur >= n) sp[name] = null;
      const v = getUint(md, K + key);
      if (v !== undefined && v < n) sp[name] = v;
    }
    addBos = getBool(md, K + 'add_bos_token') ?? addBos;
    addEos = getBool(md, K + 'add_eos_token') ?? addEos;

    // Special tokens recognised by their text; they become control tokens.
    const byText = (texts: readonly string[]) => {
      // llama.cpp walks an unordered_map; here the lowest id wins when several match.
      let best: number | null = null;
      for (const t of texts) {
        const id = textToId.get(t);
        if (id !== undefined && (best === null || id < best)) best = id;
      }
      return best;
    };
    const detect: Array<[keyof SpecialTokens, readonly string[]]> = [
      ['eot', EOT_TEXTS], ['eom', EOM_TEXTS], ['fimPre', FIM_PRE_TEXTS], ['fimSuf', FIM_SUF_TEXTS],
      ['fimMid', FIM_MID_TEXTS], ['fimPad', FIM_PAD_TEXTS], ['fimRep', FIM_REP_TEXTS], ['fimSep', FIM_SEP_TEXTS],
    ];
    for (const [name, texts] of detect) {
      if (sp[name] !== null) continue;
      const id = byText(texts);
      if (id !== null) {
        sp[name] = id;
        attrs[id] |= A.CONTROL;
      }
    }
    // By id (cheaper than walking the map), visiting the ids the map holds: the last of duplicate texts.
    for (let id = 0; id < n; id++) {
      if (!(attrs[id]! & A.CONTROL) || attrs[id]! & A.UNUSED) continue;
      const text = tokens[id]!;
      if (text.includes('unused') && textToId.get(text) === id) attrs[id] |= A.UNUSED;
    }
    const eog = new Set<number>();
    for (const id of [sp.fimPad, sp.fimRep, sp.fimSep]) if (id !== null) eog.add(id);
    for (const t of EOG_TEXTS) {
      const id = textToId.get(t);
      if (id !== undefined) {
        eog.add(id);
        attrs[id] |= A.CONTROL;
      }
    }
    for (const t of ['<|channel|>', '<|message|>', '<|start|>', '<|constrain|>']) {
      const id = textToId.get(t);
      if (id !== undefined) attrs[id] = A.USER_DEFINED; // llama.cpp: always render these (gpt-oss)
    }
    for (const id of [sp.eos, sp.eot, sp.eom]) if (id !== null) eog.add(id);
    const eogText = (t: string) => [...eog].some((id) => tokens[id] === t);
    if ((eogText('<|return|>') && eogText('<|call|>')) || (eogText('<|calls|>') && eogText('<|flush|>'))) {
      const end = [...eog].find((id) => tokens[id] === '<|end|>');
      if (end !== undefined) {
        eog.delete(end);
        attrs[end] = A.USER_DEFINED;
      }
    }
    if (eogText('<|tool_response>')) {
      const s = [...eog].find((id) => tokens[id] === '</s>');
      if (s !== undefined) {
        eog.delete(s);
        attrs[s] = A.NORMAL;
      }
    }
    this.eog = eog;

    // Special tokens split out of the text, longest first (ties: lower id first).
    const specialIds: number[] = [];
    for (let id = 0; id < n; id++) if (attrs[id]! & (A.CONTROL | A.USER_DEFINED | A.UNKNOWN)) specialIds.push(id);
    specialIds.sort((a, b) => tokens[b]!.length - tokens[a]!.length || a - b);
    this.specialAll = specialIds;
    this.specialUser = specialIds.filter((id) => !(attrs[id]! & (A.CONTROL | A.UNKNOWN)));

    // Per-model token attributes llama.cpp sets by model name (only Phi-3 matters here).
    const name = (getString(md, 'general.name') ?? '').toLowerCase();
    if (name.includes('phi-3') || name.includes('phi3')) {
      for (const id of specialIds) attrs[id] |= A.RSTRIP;
      const set = (t: string, on: boolean) => {
        const id = textToId.get(t);
        if (id !== undefined) attrs[id] = on ? attrs[id]! | A.RSTRIP : attrs[id]! & ~A.RSTRIP;
      };
      set('</s>', true);
      for (const t of ['<unk>', '<s>', '<|endoftext|>']) set(t, false);
    }

    this.special = sp;
    this.addBos = addBos;
    this.addEos = addEos;
    this.addSpacePrefix = addSpacePrefix;
    this.cleanSpaces = cleanSpaces;
    this.chatTemplate = getString(md, 'tokenizer.chat_template');

    const vocab: VocabData = { tokens, textToId, scores };
    const tables = built?.tables;
    if (this.kind === 'spm') {
      this.impl = new SpmModel(vocab, tables?.spm);
    } else if (this.kind === 'bpe') {
      const merges = tables?.bpe ? [] : getArray(md, K + 'merges', 'strings', isString);
      if (!merges) throw metaError(K + 'merges', 'is missing (a gpt2 tokenizer needs its merges)');
      this.impl = new BpeModel(vocab, merges, pre!, tables?.bpe);
    } else {
      const lowercase = getBool(md, K + 'normalizer.lowercase') ?? true;
      const stripAccents = getBool(md, K + 'normalizer.strip_accents') ?? lowercase;
      this.impl = new WpmModel(vocab, sp.unk ?? -1, lowercase, stripAccents, tables?.wpm);
    }

    // Rendered on first use (piece()): most of a large vocabulary is never detokenized.
    this.pieces = new Array<Uint8Array | undefined>(n);

    // The newline token, as llama.cpp finds it.
    if (this.kind === 'spm') {
      const nl = textToId.get('<0x0A>') ?? textToId.get('\n');
      sp.nl = nl ?? sp.pad;
    } else if (this.kind === 'wpm') {
      sp.nl = sp.pad;
    } else {
      const nl = this.tokenize('\n', { addSpecial: false });
      sp.nl = nl.length ? nl[0]! : sp.pad;
    }
  }

  /** The text of a token as stored in the vocabulary. */
  tokenText(id: number): string {
    this.checkId(id, 'tokenText');
    return this.tokens[id]!;
  }

  /** The attributes of a token (TokenAttr bits). */
  tokenAttributes(id: number): number {
    this.checkId(id, 'tokenAttributes');
    return this.attrs[id]!;
  }

  /** The id of a token given its exact text, or undefined. */
  tokenId(text: string): number | undefined {
    return this.textToId.get(text);
  }

  /** True for tokens that end generation (EOS, EOT, <|im_end|>, ...). */
  isEog(id: number): boolean {
    return this.eog.has(id);
  }

  /** The end-of-generation token ids. */
  get eogTokens(): ReadonlySet<number> {
    return this.eog;
  }

  /** True for control tokens (BOS, EOS, <|im_start|>, ...). */
  isControl(id: number): boolean {
    return id >= 0 && id < this.vocabSize && (this.attrs[id]! & A.CONTROL) !== 0;
  }

  /** Token ids of `text`. */
  tokenize(text: string, options: TokenizeOptions = {}): number[] {
    if (typeof text !== 'string') throw new SparrowError('tokenize: text must be a string', 'ERR_INVALID_ARG');
    const addSpecial = optBool(options, 'addSpecial', true, 'tokenize');
    const parseSpecial = optBool(options, 'parseSpecial', false, 'tokenize');
    const wellFormed = toWellFormed(text);
    const fragments = wellFormed.length ? this.partition(wellFormed, parseSpecial) : [];
    const out: number[] = [];
    const sp = this.special;
    const need = (id: number | null, what: string): number => {
      if (id === null) throw new SparrowError(`tokenize: the vocabulary asks for a ${what} token but has none`, 'ERR_TOKENIZER');
      return id;
    };
    if (this.kind === 'spm') {
      if (addSpecial && this.addBos) out.push(need(sp.bos, 'BOS'));
      let prevSpecial = true; // prefix the first text with a space
      for (const f of fragments) {
        if (typeof f === 'number') {
          out.push(f);
          prevSpecial = true;
        } else {
          this.impl.encode(this.addSpacePrefix && prevSpecial ? ' ' + f : f, out);
          prevSpecial = false;
        }
      }
      if (addSpecial && this.addEos) out.push(need(sp.eos, 'EOS'));
    } else if (this.kind === 'bpe') {
      if (addSpecial && this.addBos) out.push(need(sp.bos, 'BOS'));
      for (const f of fragments) {
        if (typeof f === 'number') out.push(f);
        else this.impl.encode(f, out);
      }
      if (addSpecial && this.addEos) out.push(need(sp.eos, 'EOS'));
    } else {
      // BERT: CLS first and SEP last whenever special tokens are added.
      if (addSpecial) out.push(need(sp.bos, 'BOS (CLS)'));
      for (const f of fragments) {
        if (typeof f === 'number') out.push(f);
        else this.impl.encode(f, out);
      }
      if (addSpecial) out.push(need(sp.sep, 'SEP'));
    }
    return out;
  }

  /** The text of token ids (llama.cpp's llama_detokenize). */
  detokenize(ids: ArrayLike<number>, options: DetokenizeOptions = {}): string {
    if (!ids || typeof ids.length !== 'number') throw new SparrowError('detokenize: ids must be an array of token ids', 'ERR_INVALID_ARG');
    const removeSpecial = optBool(options, 'removeSpecial', false, 'detokenize');
    const unparseSpecial = optBool(options, 'unparseSpecial', !removeSpecial, 'detokenize');
    let from = 0;
    let to = ids.length;
    let removeSpace = this.addSpacePrefix;
    if (removeSpecial && this.addBos && to > 0 && ids[0] === this.special.bos) {
      removeSpace = false;
      from++;
    }
    if (removeSpecial && this.addEos && to > from && ids[to - 1] === this.special.eos) to--;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = from; i < to; i++) {
      let p = this.piece(ids[i]!, unparseSpecial, 'detokenize');
      if (removeSpace && p.length && p[0] === 0x20) p = p.subarray(1);
      removeSpace = false;
      parts.push(p);
      total += p.length;
    }
    const bytes = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      bytes.set(p, off);
      off += p.length;
    }
    return utf8Decode(this.cleanSpaces ? cleanUpSpaces(bytes) : bytes);
  }

  /** A streaming decoder: push ids one at a time, get text that is never a partial character. */
  createDecoder(options: DetokenizeOptions = {}): TokenDecoder {
    const removeSpecial = optBool(options, 'removeSpecial', false, 'createDecoder');
    const unparseSpecial = optBool(options, 'unparseSpecial', !removeSpecial, 'createDecoder');
    return new TokenDecoder(this, removeSpecial, unparseSpecial, this.cleanSpaces);
  }

  /** The bytes of one token (llama.cpp's token_to_piece, without lstrip). */
  piece(id: number, special: boolean, caller = 'piece'): Uint8Array {
    this.checkId(id, caller);
    if (!special && this.attrs[id]! & (A.UNKNOWN | A.CONTROL)) return EMPTY;
    return (this.pieces[id] ??= this.renderPiece(id));
  }

  private checkId(id: number, caller: string): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new SparrowError(`${caller}: token id ${String(id)} is out of range (vocabulary of ${this.vocabSize})`, 'ERR_INVALID_ARG');
    }
  }

  private renderPiece(id: number): Uint8Array {
    const attr = this.attrs[id]!;
    const text = this.tokens[id]!;
    if (attr & (A.UNKNOWN | A.CONTROL | A.USER_DEFINED)) return utf8Encode(text);
    if (attr & A.NORMAL) {
      if (this.kind !== 'bpe') return utf8Encode(text.replaceAll('\u2581', ' '));
      return decodeByteLevel(text);
    }
    if (attr & A.BYTE) return Uint8Array.of(parseInt(text.slice(3, 5), 16) & 0xff);
    return EMPTY;
  }

  /** Splits out special tokens (llama.cpp's tokenizer_st_partition). */
  private partition(text: string, parseSpecial: boolean): Fragment[] {
    const ids = parseSpecial ? this.specialAll : this.specialUser;
    if (ids.length === 0) return [text];
    let trie = this.tries.get(parseSpecial);
    if (!trie) {
      trie = new SpecialTrie(ids.map((id) => this.tokens[id]!));
      this.tries.set(parseSpecial, trie);
    }
    const found = trie.findAll(text); // per token rank: sorted start positions
    if (found.size === 0) return [text];
    // 0: free text, 1: inside a special token, 2: whitespace stripped next to one.
    const claimed = new Uint8Array(text.length);
    const tokenAt = new Map<number, number>();
    const ranks = [...found.keys()].sort((a, b) => a - b);
    for (const rank of ranks) {
      const id = ids[rank]!;
      const len = this.tokens[id]!.length;
      const attr = this.attrs[id]!;
      for (const start of found.get(rank)!) {
        let free = true;
        for (let i = start; i < start + len; i++) {
          if (claimed[i]) {
            free = false;
            break;
          }
        }
        if (!free) continue;
        claimed.fill(1, start, start + len);
        tokenAt.set(start, id);
        if (attr & A.LSTRIP) for (let i = start - 1; i >= 0 && !claimed[i] && isCSpace(text.charCodeAt(i)); i--) claimed[i] = 2;
        if (attr & A.RSTRIP) for (let i = start + len; i < text.length && !claimed[i] && isCSpace(text.charCodeAt(i)); i++) claimed[i] = 2;
      }
    }
    const out: Fragment[] = [];
    let i = 0;
    while (i < text.length) {
      if (claimed[i] === 0) {
        let j = i;
        while (j < text.length && claimed[j] === 0) j++;
        out.push(text.slice(i, j));
        i = j;
      } else if (claimed[i] === 1) {
        const id = tokenAt.get(i)!;
        out.push(id);
        i += this.tokens[id]!.length;
      } else {
        i++;
      }
    }
    return out;
  }
}

const EMPTY = new Uint8Array(0);

function optBool(options: object, key: string, dflt: boolean, caller: string): boolean {
  if (options === null || typeof options !== 'object') throw new SparrowError(`${caller}: options must be an object`, 'ERR_INVALID_ARG');
  const v = (options as Record<string, unknown>)[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new SparrowError(`${caller}: options.${key} must be a boolean`, 'ERR_INVALID_ARG');
  return v;
}

/** isspace() in the C locale. */
function isCSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

/** Bytes of a byte-level BPE token: each character back to its byte (llama_decode_text). */
function decodeByteLevel(text: string): Uint8Array {
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const b = cp < UNICODE_TO_BYTE.length ? UNICODE_TO_BYTE[cp]! : -1;
    if (b >= 0) {
      out.push(b);
    } else {
      // Not a byte character: llama.cpp writes a marker with the character's UTF-8 and the whole text.
      const hex = [...utf8Encode(ch)].map((x) => x.toString(16).padStart(2, '0')).join('');
      out.push(...utf8Encode(`[UNK_BYTE_0x${hex}${text}]`));
    }
  }
  return Uint8Array.from(out);
}

/**
 * llama.cpp's clean_up_tokenization_spaces, byte for byte: drop the space before ? ! . , ;
 * turn " ' " into "'"; drop the space before 's 'm 're 've.
 */
export function cleanUpSpaces(input: Uint8Array): Uint8Array {
  const t = Uint8Array.from(input);
  const SP = 0x20;
  const AP = 0x27;
  // Pass 1: " ?", " !", " .", " ,"
  let total = t.length ? 1 : 0;
  for (let i = 1, n = t.length; i < n; i++) {
    const x = t[i]!;
    if (t[i - 1] === SP && (x === 0x3f || x === 0x21 || x === 0x2e || x === 0x2c)) total--;
    t[total++] = x;
  }
  // Pass 2: " ' " -> "'"
  let n = total;
  total = n ? 1 : 0;
  for (let i = 1; i < n; i++) {
    const x = t[i]!;
    if (x === AP && i + 1 < n && t[i - 1] === SP && t[i + 1] === SP) {
      total--;
      t[++i] = 0; // the next space goes; the 0 also stops a match on the following byte
    }
    t[total++] = x;
  }
  // Pass 3: " 's", " 'm", " 're", " 've" lose their space
  n = total;
  total = n ? 1 : 0;
  for (let i = 1; i < n; i++) {
    const x = t[i]!;
    if (t[i - 1] === SP && x === AP && i + 1 < n) {
      const x1 = t[i + 1]!;
      if (x1 === 0x73 || x1 === 0x6d) total--;
      else if (x1 !== 0x74 && x1 !== 0x64 && i + 2 < n) {
        const x2 = t[i + 2]!;
        if ((x1 === 0x72 && x2 === 0x65) || (x1 === 0x76 && x2 === 0x65)) total--;
      }
    }
    t[total++] = x;
  }
  return t.subarray(0, total);
}

/** Finds every occurrence of a set of strings (the special tokens) in a text. */
class SpecialTrie {
  private readonly root: TrieNode = { next: new Map(), rank: -1 };
  private readonly first = new Set<number>();

  constructor(texts: string[]) {
    texts.forEach((text, rank) => {
      let node = this.root;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        let child = node.next.get(c);
        if (!child) {
          child = { next: new Map(), rank: -1 };
          node.next.set(c, child);
        }
        node = child;
      }
      if (node.rank < 0) node.rank = rank;
      this.first.add(text.charCodeAt(0));
    });
  }

  /** rank -> ascending start positions of that string. */
  findAll(text: string): Map<number, number[]> {
    const found = new Map<number, number[]>();
    for (let p = 0; p < text.length; p++) {
      if (!this.first.has(text.charCodeAt(p))) continue;
      let node: TrieNode | undefined = this.root;
      for (let i = p; i < text.length; i++) {
        node = node.next.get(text.charCodeAt(i));
        if (!node) break;
        if (node.rank >= 0) {
          let list = found.get(node.rank);
          if (!list) found.set(node.rank, (list = []));
          list.push(p);
        }
      }
    }
    return found;
  }
}

interface TrieNode {
  next: Map<number, TrieNode>;
  rank: number;
}

/**
 * Streaming detokenizer. `push(id)` returns the new text; bytes of a character split across
 * tokens are held until it is complete, and so are spaces that llama.cpp's clean-up could
 * still remove. `flush()` returns what is held. The concatenation of everything returned
 * equals `detokenize` of all ids pushed (with the same options).
 */
export class TokenDecoder {
  private pending = new Uint8Array(64);
  private len = 0;
  private first = true;

  /** @internal use Tokenizer.createDecoder */
  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly removeSpecial: boolean,
    private readonly special: boolean,
    private readonly cleanSpaces: boolean,
  ) {}

  push(id: number): string {
    if (this.first && this.removeSpecial && this.tokenizer.addBos && id === this.tokenizer.special.bos) {
      // detokenize({ removeSpecial }) drops a leading BOS, and then keeps the next leading space.
      this.first = false;
      return '';
    }
    let p = this.tokenizer.piece(id, this.special, 'TokenDecoder.push');
    if (this.first && this.tokenizer.addSpacePrefix && p.length && p[0] === 0x20) p = p.subarray(1);
    this.first = false;
    if (this.len + p.length > this.pending.length) {
      const grown = new Uint8Array(Math.max(this.pending.length * 2, this.len + p.length));
      grown.set(this.pending.subarray(0, this.len));
      this.pending = grown;
    }
    this.pending.set(p, this.len);
    this.len += p.length;
    const cut = this.safeCut();
    if (cut === 0) return '';
    const head = this.pending.slice(0, cut);
    this.pending.copyWithin(0, cut, this.len);
    this.len -= cut;
    return utf8Decode(this.cleanSpaces ? cleanUpSpaces(head) : head);
  }

  /** Returns everything held back (an unfinished character comes out as U+FFFD). */
  flush(): string {
    const head = this.pending.slice(0, this.len);
    this.len = 0;
    return utf8Decode(this.cleanSpaces ? cleanUpSpaces(head) : head);
  }

  /**
   * The longest prefix of the pending bytes that can be emitted now: it must end on a whole
   * UTF-8 character and, when spaces are cleaned up, its last three bytes must hold no space
   * or apostrophe (the clean-up never looks further across such a point).
   */
  private safeCut(): number {
    const b = this.pending;
    for (let c = this.len; c > 0; c--) {
      if (!completeAt(b, c)) continue;
      if (this.cleanSpaces) {
        let ok = true;
        for (let k = c - 1; k >= Math.max(0, c - 3); k--) {
          if (b[k] === 0x20 || b[k] === 0x27) {
            ok = false;
            break;
          }
        }
        if (!ok) continue;
      }
      return c;
    }
    return 0;
  }
}

/** True when bytes[0..c) do not end inside a UTF-8 sequence. */
function completeAt(bytes: Uint8Array, c: number): boolean {
  // Walk back over continuation bytes to the lead byte; its sequence must fit before c.
  for (let k = c - 1; k >= 0 && k >= c - 4; k--) {
    const byte = bytes[k]!;
    if ((byte & 0xc0) !== 0x80) return k + utf8SeqLen(byte) <= c;
  }
  return true; // only continuation bytes: garbage that no later byte can complete
}

/** Reads a GGUF file's metadata (vocab-only files work) and builds its tokenizer. */
export function loadTokenizer(path: string): Tokenizer {
  if (typeof path !== 'string' || path.length === 0) {
    throw new SparrowError('loadTokenizer: path must be a non-empty string', 'ERR_INVALID_ARG');
  }
  return Tokenizer.fromMetadata(inspectGGUF(path).metadata);
}
