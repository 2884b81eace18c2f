/**
 * llama.cpp's own tokenizer test vectors (../shared/vocab, see its PROVENANCE.md): every
 * string must give exactly the expected ids (add_special = false, parse_special = false),
 * and detokenizing them must give the string back (SPM: up to the leading space).
 */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cleanUpSpaces, loadTokenizer } from '../../src/tokenizer/index.js';
import { vocabFile } from './vocabs.js';

const NAMES = ['llama-spm', 'gpt-2', 'falcon', 'deepseek-llm', 'bert-bge'];

function readVectors(name: string): Array<{ text: string; ids: number[] }> {
  const base = vocabFile(name);
  const inputs = fs.readFileSync(`${base}.inp`, 'utf8').split('\n__ggml_vocab_test__\n');
  inputs.pop(); // the file ends with the separator
  const outputs = fs.readFileSync(`${base}.out`, 'utf8').split('\n');
  return inputs.map((text, i) => {
    const line = outputs[i]!.trim();
    return { text, ids: line === '' ? [] : line.split(/\s+/).map(Number) };
  });
}

describe.each(NAMES)('llama.cpp test vectors: %s', (name) => {
  const vectors = readVectors(name);
  const tok = loadTokenizer(vocabFile(name));

  it(`has the vectors (${vectors.length})`, () => {
    expect(vectors.length).toBeGreaterThan(40);
  });

  it('tokenizes every string to the expected ids', () => {
    const wrong = vectors
      .map((v) => ({ ...v, got: tok.tokenize(v.text, { addSpecial: false, parseSpecial: false }) }))
      .filter((v) => v.got.join(' ') !== v.ids.join(' '))
      .map((v) => `${JSON.stringify(v.text)}: expected [${v.ids.join(' ')}], got [${v.got.join(' ')}]`);
    expect(wrong).toEqual([]);
  });

  it.skipIf(name === 'bert-bge')('detokenizes the expected ids back to the string', () => {
    for (const v of vectors) {
      const text = tok.detokenize(v.ids);
      if (tok.kind === 'spm') expect(text).toBe(v.text.replaceAll('\u2581', ' '));
      else if (!tok.cleanSpaces) expect(text).toBe(v.text);
      else expect(text).toBe(new TextDecoder().decode(cleanUpSpaces(new TextEncoder().encode(v.text))));
    }
  });
});
