/**
 * The tokenizers of the families sparrow runs (Qwen2.5, Qwen3, Llama 3, Gemma 2, Gemma 3, Phi-3, o200k
 * as in gpt-4o, and gpt-oss: o200k with the harmony special tokens), converted from the publishers' tokenizer.json the way llama.cpp's
 * converter does (hf-vocab.ts): on llama.cpp's test strings plus multilingual, code, emoji,
 * whitespace and chat-markup strings, with and without special-token parsing, our ids and
 * text must equal llama.cpp's (node-llama-cpp on the same file); then a differential fuzz run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaModel } from 'node-llama-cpp';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { FAMILIES, familyVocabFile, hfTokenizer, phi3VocabFile, type FamilyKey } from './hf-vocab.js';
import { fuzzVocabulary } from './fuzz-shared.js';
import { SHARED, loadOracle, vocabFile, type VocabCase } from './vocabs.js';

/** Every test string of llama.cpp's vocabulary tests (../shared/vocab/*.inp), deduplicated. */
function sharedStrings(): string[] {
  const dir = path.join(SHARED, 'vocab');
  const all = new Set<string>();
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.inp')).sort()) {
    const parts = fs.readFileSync(path.join(dir, f), 'utf8').split('\n__ggml_vocab_test__\n');
    parts.pop();
    for (const p of parts) all.add(p);
  }
  return [...all];
}

const EXTRA = [
  'Grüße aus Köln! Ça va? Ñandú, naïve café, Øresund, İstanbul, ǅ ǈ ǋ',
  'Привет, как дела? Ελληνικά κείμενα. עברית וערבية: مرحبا بالعالم',
  '日本語のテキストと中文文本，还有한국어 문장。 全角：ＡＢＣ１２３',
  'हिन्दी पाठ, தமிழ், ภาษาไทย ไม่มีช่องว่าง, ქართული',
  '🦙🦙 emoji: 👩‍👩‍👧‍👦 🏳️‍🌈 👍🏽 🇫🇷 ❤️ 1️⃣ 🫠',
  'def f(x):\n    return x**2  # comment\n\n\tif x != 0:\n\t\tpass\n',
  'const a = [1, 2, 3].map((v) => v * 2); // arrow\nfunction g() { return `t ${a}`; }',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }',
  '<div class="x"><p>HTML &amp; entities &lt;tag&gt;</p></div>',
  '1234567890 12 345 6789 3.14159 -0.5e10 0x1F 1,000,000 ١٢٣ ๑๒๓',
  "I'm sure you've seen it; they'll say we'd go. DON'T SHOUT, it's 'quoted'.",
  '   leading spaces, trailing spaces   ',
  '\n\n\nnew\r\nlines\r\r\n \n \t\t tabs\u00a0nbsp\u2009thin\u3000ideographic',
  ' ',
  '\t',
  '\n',
  '▁already▁has▁the▁SPM▁space▁marker',
  'a\u0301 e\u0308 n\u0303 (combining) and U+FEFF:\ufeff and ZWJ:\u200d',
  'camelCaseWords and snake_case_words and ALLCAPS and MixedCASE123abc',
  '<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n',
  '<think>\nreasoning here\n</think>\n\nThe answer.<tool_call>\n{"name": "f"}\n</tool_call>',
  '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>',
  '<bos><start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n',
  '<|system|>\nBe brief.<|end|>\n<|user|>\nHi <|end|>\n<|assistant|>\n',
  '<|start|>assistant<|channel|>final<|message|>Hi<|return|><|endoftext|>',
  '<s> </s> <unk> <pad> <eos> <mask> <unused0> <|endoftext|>x<|endoftext|>',
  'text<|im_end|>text <|im_end|> text\n<|im_end|>\n',
];

const STRINGS = [...sharedStrings(), ...EXTRA];

interface Case {
  name: string;
  available: boolean;
  file: () => Promise<string>;
}

const family = (key: FamilyKey): Case => ({
  name: FAMILIES[key].name,
  available: hfTokenizer(FAMILIES[key].package) !== undefined,
  file: async () => (await familyVocabFile(key))!,
});

const CASES: Case[] = [
  family('qwen2_5'),
  family('qwen3'),
  family('llama3'),
  family('gpt4o'),
  family('gptoss'),
  family('gemma2'),
  family('gemma3'),
  { name: 'Phi 3', available: true, file: () => phi3VocabFile(vocabFile('llama-spm')) },
];

const files = new Map<string, string>();

for (const c of CASES) {
  describe.skipIf(!c.available)(`real vocabulary: ${c.name}`, () => {
    let ours: Tokenizer;
    let oracle: LlamaModel;
    beforeAll(async () => {
      const file = await c.file();
      files.set(c.name, file);
      ours = loadTokenizer(file);
      oracle = await loadOracle(file);
    }, 300_000);
    afterAll(async () => {
      await oracle?.dispose();
    });

    it(`tokenizes ${STRINGS.length} strings as llama.cpp does, with and without special tokens`, () => {
      const wrong: string[] = [];
      let specialSplits = 0;
      for (const s of STRINGS) {
        for (const parseSpecial of [false, true]) {
          const want = Array.from(oracle.tokenize(s, parseSpecial));
          const got = ours.tokenize(s, { addSpecial: false, parseSpecial });
          if (want.join(' ') !== got.join(' ')) {
            wrong.push(`${JSON.stringify(s.slice(0, 120))} parseSpecial=${parseSpecial}: llama.cpp [${want.join(' ')}] vs ours [${got.join(' ')}]`);
            continue;
          }
          if (parseSpecial && got.some((id) => ours.isControl(id))) specialSplits++;
          for (const special of [false, true]) {
            const w = oracle.detokenize(want, special);
            const g = ours.detokenize(got, { removeSpecial: false, unparseSpecial: special });
            if (w !== g) wrong.push(`${JSON.stringify(s.slice(0, 120))} detokenize(special=${special}): llama.cpp ${JSON.stringify(w)} vs ours ${JSON.stringify(g)}`);
          }
        }
      }
      expect(wrong.slice(0, 10)).toEqual([]);
      // The chat-markup strings must really exercise special tokens of this vocabulary.
      expect(specialSplits).toBeGreaterThan(0);
    });

    it('has the end-of-generation tokens and BOS/EOS that llama.cpp has', () => {
      const want: number[] = [];
      for (let id = 0; id < ours.vocabSize; id++) if (oracle.isEogToken(id as never)) want.push(id);
      expect([...ours.eogTokens].sort((a, b) => a - b)).toEqual(want);
      expect(want.length).toBeGreaterThan(0);
      expect(ours.special.bos ?? null).toBe(oracle.tokens.bos);
      expect(ours.special.eos ?? null).toBe(oracle.tokens.eos);
    });

    it('adds BOS/EOS as llama.cpp says the file asks', () => {
      const ids = ours.tokenize('Hello world', { addSpecial: true, parseSpecial: false });
      const plain = ours.tokenize('Hello world', { addSpecial: false, parseSpecial: false });
      const bos = ours.special.bos;
      if (ours.addBos) expect(ids).toEqual([bos, ...plain]);
      else expect(ids).toEqual(plain);
      expect(Array.from(oracle.tokenize('Hello world', false))).toEqual(plain);
    });
  });
}

/** Differential fuzz on each real vocabulary (fewer strings than the shared ones: big vocabularies). */
for (const c of CASES.filter((c) => c.available)) {
  const vc: VocabCase = {
    name: `real ${c.name}`,
    file: () => {
      const f = files.get(c.name);
      if (!f) throw new Error(`${c.name}: vocabulary file not written (did its describe block run?)`);
      return f;
    },
  };
  fuzzVocabulary(vc, 600);
}
