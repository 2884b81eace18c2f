/**
 * The vocabularies the tokenizer tests run on, and the llama.cpp oracle (node-llama-cpp
 * 3.21.1 loading the same file, vocabulary only).
 */
import path from 'node:path';
import { getLlama, type Llama, type LlamaModel } from 'node-llama-cpp';
import { patchGGUF } from './gguf-patch.js';

export const SHARED = path.resolve(import.meta.dirname, '../../../shared');
export const vocabFile = (name: string) => path.join(SHARED, 'vocab', `ggml-vocab-${name}.gguf`);
export const STORIES = path.join(SHARED, 'models', 'stories260K-f32.gguf');

export interface VocabCase {
  name: string;
  /** Path of the GGUF file, made on first use. */
  file: () => string;
}

const plain = (name: string): VocabCase => ({ name, file: () => vocabFile(name) });

/** The GPT-2 vocabulary under another pre-tokenizer: same merges, other word splitting. */
const gpt2As = (pre: string): VocabCase => {
  let file: string | undefined;
  return {
    name: `gpt-2 vocab, pre=${pre}`,
    file: () => (file ??= patchGGUF(vocabFile('gpt-2'), { 'tokenizer.ggml.pre': pre }, `gpt2-${pre}`)),
  };
};

export const VOCABS: VocabCase[] = [
  plain('llama-spm'),
  { name: 'stories260K', file: () => STORIES },
  plain('gpt-2'),
  plain('falcon'),
  plain('deepseek-llm'),
  plain('bert-bge'),
];

/** Pre-tokenizers exercised through the GPT-2 vocabulary (no shared vocab file has them). */
export const PATCHED_VOCABS: VocabCase[] = [
  gpt2As('llama-bpe'),
  gpt2As('qwen2'),
  gpt2As('deepseek-coder'),
  gpt2As('starcoder'),
  gpt2As('refact'),
  gpt2As('smollm'),
  gpt2As('mpt'),
  gpt2As('default'),
  gpt2As('deepseek-llm'),
  gpt2As('falcon'),
  gpt2As('deepseek-v3'),
  gpt2As('gpt-4o'),
  gpt2As('tekken'),
  gpt2As('qwen35'),
  {
    name: 'llama-spm, add_space_prefix=false',
    file: (() => {
      let f: string | undefined;
      return () => (f ??= patchGGUF(vocabFile('llama-spm'), { 'tokenizer.ggml.add_space_prefix': false }, 'spm-noprefix'));
    })(),
  },
];

let llama: Promise<Llama> | undefined;

/** node-llama-cpp's model for a vocabulary file (vocabulary only). */
export async function loadOracle(file: string): Promise<LlamaModel> {
  llama ??= getLlama({ gpu: false, logLevel: 'error' as never });
  return (await llama).loadModel({ modelPath: file, vocabOnly: true });
}

/** How many random strings per vocabulary: SPARROW_FUZZ_ITERATIONS, else `dflt`. */
export function fuzzIterations(dflt: number): number {
  const v = Number(process.env.SPARROW_FUZZ_ITERATIONS);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : dflt;
}

/** The seed: SPARROW_FUZZ_SEED to replay a failure, else random. Printed by the tests. */
export function fuzzSeed(): number {
  const v = Number(process.env.SPARROW_FUZZ_SEED);
  return Number.isFinite(v) && process.env.SPARROW_FUZZ_SEED ? v >>> 0 : (Math.random() * 2 ** 32) >>> 0;
}
