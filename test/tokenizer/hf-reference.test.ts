/**
 * Checks the converter (hf-vocab.ts) itself: llama.cpp on the converted GGUF must tokenize as
 * Hugging Face `tokenizers` does on the original tokenizer.json. This is what shows that the
 * Gemma scores rebuilt from merge ranks behave like the publishers' tokenizer.model.
 * Needs a Python with `tokenizers` (SPARROW_HF_PYTHON, else python3); skipped without one.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaModel } from 'node-llama-cpp';
import { FAMILIES, familyVocabFile, hfTokenizer, hfTokenizerDir, type FamilyKey } from './hf-vocab.js';
import { SHARED, loadOracle } from './vocabs.js';

const python = [process.env.SPARROW_HF_PYTHON, 'python3'].find((exe) => {
  if (!exe) return false;
  try {
    execFileSync(exe, ['-c', 'import tokenizers'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});
if (!python) console.warn('converter check against Hugging Face tokenizers skipped: no python with `tokenizers` (SPARROW_HF_PYTHON)');

function strings(): string[] {
  const dir = path.join(SHARED, 'vocab');
  const all = new Set<string>();
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.inp')).sort()) {
    const parts = fs.readFileSync(path.join(dir, f), 'utf8').split('\n__ggml_vocab_test__\n');
    parts.pop();
    for (const p of parts) all.add(p);
  }
  all.add('Grüße aus Köln! Ça va? Привет 日本語 中文 한국어 🦙👩‍👩‍👧‍👦🇫🇷');
  all.add('def f(x):\n    return x**2  # comment\n\n\tif x != 0:\n\t\tpass\n');
  all.add('   leading   and trailing   \n\n\n \t\t x\u00a0y\u3000z');
  return [...all];
}

// llama.cpp's gpt-4o pre-tokenizer splits some letter + combining-mark sequences (Khmer,
// Devanagari, Thai) differently from the published regex; sparrow follows llama.cpp there.
const HAS_MARK = /\p{M}/u;

const KEYS: FamilyKey[] = ['qwen2_5', 'qwen3', 'llama3', 'gemma2', 'gemma3', 'gpt4o'];

for (const key of KEYS) {
  const spec = FAMILIES[key];
  describe.skipIf(!python || !hfTokenizer(spec.package))(`converter: ${spec.name} as Hugging Face tokenizers`, () => {
    let oracle: LlamaModel;
    beforeAll(async () => {
      oracle = await loadOracle((await familyVocabFile(key))!);
    }, 300_000);
    afterAll(async () => {
      await oracle?.dispose();
    });

    it('llama.cpp on the converted file gives the ids of the original tokenizer.json', () => {
      const list = strings();
      const input = JSON.stringify({ tokenizer: path.join(hfTokenizerDir(spec.package), 'tokenizer.json'), strings: list });
      const ref: number[][] = JSON.parse(
        execFileSync(python!, [path.join(import.meta.dirname, 'tools', 'hf_tokenize.py')], { input, maxBuffer: 64 << 20 }).toString('utf8'),
      );
      const wrong: string[] = [];
      let compared = 0;
      list.forEach((s, i) => {
        if (key === 'gpt4o' && HAS_MARK.test(s)) return;
        compared++;
        const got = Array.from(oracle.tokenize(s, true)).join(' ');
        if (got !== ref[i]!.join(' ')) wrong.push(`${JSON.stringify(s.slice(0, 80))}: llama.cpp [${got}] vs HF [${ref[i]!.join(' ')}]`);
      });
      expect(wrong.slice(0, 5)).toEqual([]);
      expect(compared).toBeGreaterThan(40);
    });
  });
}
