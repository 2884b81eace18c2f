/**
 * Synthetic tokenizer vocabularies that llama.cpp accepts, of any size.
 *
 * `llamaVocab(n)`: a SentencePiece-style vocabulary (`tokenizer.ggml.model = "llama"`):
 *   0 `<unk>`, 1 `<s>`, 2 `</s>`, then the 256 byte tokens `<0x00>`..`<0xFF>`, then word
 *   pieces with `▁` (U+2581) standing for a space. The pieces are prefix-closed (every
 *   piece's prefixes are pieces too), so llama.cpp's bigram merging reaches every piece,
 *   and ordered so common English words come first; scores decrease with the index, as
 *   SentencePiece log-probabilities do. Filling up to any size uses letter n-grams.
 *
 * `gpt2Vocab(n)`: a byte-level BPE vocabulary (`tokenizer.ggml.model = "gpt2"`): the 256
 *   byte symbols in GPT-2's byte-to-unicode mapping, merges trained on common words
 *   ("Ġ" = space), letter n-grams up to the size, then the special tokens at the end
 *   (as Llama 3 and Qwen 2 place them).
 */
import { SparrowError } from '../src/errors.js';
import { gguf, type GGUFValue } from './gguf-writer.js';

/** llama.cpp's token types (llama_token_type). */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

const SPACE = '\u2581';

// Common English words (the first ~300 of a frequency list), then letters and digits.
const WORDS = (
  'the of and to in a is that for it as was with be by on not he I this are or his from at which but have an ' +
  'they you were her she there one all we their been has would when if will more no out so up said what its ' +
  'about into than them can only other new some could time these two may then do first any my now such like ' +
  'our over man me even most made after also did many before must through back years where much your way well ' +
  'down should because each just those people Mr how too little state good very make world still own see men ' +
  'work long get here between both life being under never day same another know while last might us great old ' +
  'year off come since against go came right used take three Once upon a time there lived girl boy named Lily ' +
  'Tim Tom Sue big small happy sad dog cat tree park ball play played friend friends mom dad home saw wanted ' +
  'went help helped fun sun sky blue red green day night love loved toy toys run ran jump look looked Hello hello ' +
  'world The It He She They One We You In On At This That There What How Why When Where Who'
).split(' ');

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const PUNCT = '.,!?\'"-:;()[]{}<>/\\@#$%^&*_+=|~`';
const CHARS = LOWER + LOWER.toUpperCase() + '0123456789' + PUNCT;

/** Ordered unique pieces, prefix-closed, until `count` are produced. */
function* pieceStream(withSpace: (w: string) => string): Generator<string> {
  const seen = new Set<string>();
  function* add(p: string): Generator<string> {
    if (!seen.has(p)) {
      seen.add(p);
      yield p;
    }
  }
  yield* add(withSpace(''));
  for (const c of CHARS) yield* add(c);
  for (const c of CHARS) yield* add(withSpace(c));
  for (const w of WORDS) {
    for (let k = 1; k <= w.length; k++) yield* add(withSpace(w.slice(0, k)));
    for (let k = 1; k <= w.length; k++) yield* add(w.slice(0, k));
  }
  // Letter n-grams, shortest first (so all prefixes exist): with and without a space.
  let grams = [...LOWER];
  for (;;) {
    const next: string[] = [];
    for (const g of grams)
      for (const c of LOWER) {
        const s = g + c;
        next.push(s);
        yield* add(withSpace(s));
        yield* add(s);
      }
    grams = next;
  }
}

export interface Vocab {
  model: 'llama' | 'gpt2';
  tokens: string[];
  /** Per token: SentencePiece score (llama) — absent for gpt2. */
  scores?: number[];
  types: number[];
  merges?: string[];
  bos: number;
  eos: number;
  unk?: number;
}

function checkSize(n: number, min: number, model: string): void {
  if (!Number.isSafeInteger(n) || n < min)
    throw new SparrowError(`vocab_size must be an integer >= ${min} for a '${model}' tokenizer, got ${n}`, 'ERR_INVALID_ARG');
}

/** A SentencePiece (llama) vocabulary of exactly `n` tokens. */
export function llamaVocab(n: number): Vocab {
  checkSize(n, 259 + CHARS.length + 1, 'llama');
  const tokens = ['<unk>', '<s>', '</s>'];
  const types: number[] = [TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(TOKEN_TYPE.BYTE);
  }
  const scores = new Array<number>(tokens.length).fill(0);
  const pieces = pieceStream((w) => SPACE + w);
  let rank = 0;
  while (tokens.length < n) {
    tokens.push(pieces.next().value as string);
    types.push(TOKEN_TYPE.NORMAL);
    scores.push(-rank++);
  }
  return { model: 'llama', tokens, scores, types, bos: 1, eos: 2, unk: 0 };
}

/** GPT-2's byte-to-unicode map: printable bytes stand for themselves, the rest move to U+0100+. */
function byteToUnicode(): string[] {
  const map: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map[b] = String.fromCodePoint(printable ? b : 256 + extra++);
  }
  return map;
}

/** Special tokens placed at the end of a gpt2 vocabulary (Qwen 2 / ChatML style). */
export const GPT2_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

/**
 * Trains byte-level BPE merges on the word list (weighted by rank, each word alone and
 * after a space), the way BPE tokenizers are made: repeatedly merge the most frequent
 * adjacent pair. Replaying these merges in order (what llama.cpp does) turns every
 * training word back into one token, which a hand-made merge list cannot promise
 * (a short merge like "l o" would pre-empt "Hell o").
 */
function trainMerges(limit: number): [string, string][] {
  const corpus: { syms: string[]; weight: number }[] = [];
  WORDS.forEach((w, i) => {
    corpus.push({ syms: ['Ġ', ...w], weight: 2 / (i + 1) }, { syms: [...w], weight: 1 / (i + 1) });
  });
  const merges: [string, string][] = [];
  while (merges.length < limit) {
    const counts = new Map<string, number>();
    for (const { syms, weight } of corpus)
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = syms[i] + ' ' + syms[i + 1];
        counts.set(key, (counts.get(key) ?? 0) + weight);
      }
    let best = '';
    let bestCount = 0;
    for (const [key, c] of counts) if (c > bestCount || (c === bestCount && key < best)) [best, bestCount] = [key, c];
    if (!best) break; // every word is one token
    const [l, r] = best.split(' ') as [string, string];
    merges.push([l, r]);
    for (const item of corpus) {
      const out: string[] = [];
      for (let i = 0; i < item.syms.length; i++) {
        if (i + 1 < item.syms.length && item.syms[i] === l && item.syms[i + 1] === r) {
          out.push(l + r);
          i++;
        } else out.push(item.syms[i]!);
      }
      item.syms = out;
    }
  }
  return merges;
}

/**
 * A byte-level BPE (gpt2) vocabulary of exactly `n` tokens, with its merges: merges
 * trained on the word list first, then filler pieces, each the merge of its prefix (one
 * character shorter) and its last character, both of which come earlier.
 */
export function gpt2Vocab(n: number): Vocab {
  checkSize(n, 256 + GPT2_SPECIALS.length + 64, 'gpt2');
  const b2u = byteToUnicode();
  const tokens = [...b2u];
  const seen = new Set(tokens);
  const merges: string[] = [];
  const nNormal = n - GPT2_SPECIALS.length;
  for (const [l, r] of trainMerges(nNormal - tokens.length)) {
    seen.add(l + r);
    tokens.push(l + r);
    merges.push(`${l} ${r}`);
  }
  const pieces = pieceStream((w) => 'Ġ' + w); // 'Ġ' is the space byte (0x20) in the map
  while (tokens.length < nNormal) {
    const p = pieces.next().value as string;
    if (seen.has(p)) continue; // single printable characters are already byte symbols
    const chars = [...p];
    const left = chars.slice(0, -1).join('');
    const right = chars[chars.length - 1]!;
    if (!seen.has(left) || !seen.has(right)) continue; // (cannot happen: prefix-closed)
    seen.add(p);
    tokens.push(p);
    merges.push(`${left} ${right}`);
  }
  const types: number[] = tokens.map(() => TOKEN_TYPE.NORMAL);
  const eos = tokens.length;
  for (const s of GPT2_SPECIALS) {
    tokens.push(s);
    types.push(TOKEN_TYPE.CONTROL);
  }
  return { model: 'gpt2', tokens, types, merges, bos: eos, eos };
}

/** A simple chat template (Zephyr / TinyLlama-chat style) that needs only the eos token. */
export const LLAMA_CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

/** ChatML, for gpt2 vocabularies that have <|im_start|> and <|im_end|>. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The `tokenizer.*` metadata entries for a vocabulary. */
export function vocabMetadata(v: Vocab, chatTemplate?: string): [string, GGUFValue][] {
  const out: [string, GGUFValue][] = [['tokenizer.ggml.model', gguf.str(v.model)]];
  if (v.model === 'gpt2') out.push(['tokenizer.ggml.pre', gguf.str('qwen2')]);
  out.push(['tokenizer.ggml.tokens', gguf.arr('string', v.tokens)]);
  if (v.scores) out.push(['tokenizer.ggml.scores', gguf.arr('f32', v.scores)]);
  out.push(['tokenizer.ggml.token_type', gguf.arr('i32', v.types)]);
  if (v.merges) out.push(['tokenizer.ggml.merges', gguf.arr('string', v.merges)]);
  out.push(['tokenizer.ggml.bos_token_id', gguf.u32(v.bos)]);
  out.push(['tokenizer.ggml.eos_token_id', gguf.u32(v.eos)]);
  if (v.unk !== undefined) out.push(['tokenizer.ggml.unknown_token_id', gguf.u32(v.unk)]);
  if (v.model === 'gpt2') out.push(['tokenizer.ggml.padding_token_id', gguf.u32(v.eos)]);
  out.push(['tokenizer.ggml.add_bos_token', gguf.bool(v.model === 'llama')]);
  out.push(['tokenizer.ggml.add_eos_token', gguf.bool(false)]);
  if (chatTemplate) out.push(['tokenizer.chat_template', gguf.str(chatTemplate)]);
  return out;
}
