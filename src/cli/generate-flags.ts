/**
 * The flags `complete` and `chat` share: loading (--ctx, --threads) and the sampling
 * options of the generation API, with the API's own defaults (greedy unless --temperature).
 */
import fs from 'node:fs';
import { SparrowError } from '../errors.js';
import { loadModel, type Model } from '../model.js';
import type { GenerateOptions } from '../generation/index.js';
import { UsageError, type FlagTable, type FlagValues } from './flags.js';
import { progressBar } from './progress.js';

export const GENERATE_FLAGS: FlagTable = {
  'max-tokens': { kind: 'int', min: 1, value: 'N', help: 'most tokens to generate (default: until the end of text)' },
  temperature: { kind: 'number', min: 0, max: 100, value: 'T', help: 'sampling temperature; 0 (the default) is greedy' },
  'top-k': { kind: 'int', min: 0, value: 'K', help: 'keep the K most likely tokens, 0 = all (default 40)' },
  'top-p': { kind: 'number', min: 0, max: 1, minExclusive: true, value: 'P', help: 'nucleus sampling mass (default 0.95)' },
  'min-p': { kind: 'number', min: 0, max: 1, value: 'P', help: 'drop tokens below P times the best one (default 0)' },
  'repeat-penalty': { kind: 'number', min: 0, minExclusive: true, max: 100, value: 'X', help: 'penalty on the last 64 tokens (default 1: none)' },
  seed: { kind: 'int', min: 0, max: 2 ** 32 - 1, value: 'N', help: 'random seed: the same seed gives the same output (default: random)' },
  stop: { kind: 'string', repeat: true, value: 'TEXT', help: 'stop before TEXT (may be repeated)', check: (v) => (v === '' ? 'must not be empty' : undefined) },
  'ignore-eos': { kind: 'boolean', help: 'never end at an end-of-text token (stop with --max-tokens or Ctrl-C)' },
  ctx: { kind: 'int', min: 16, value: 'N', help: 'context size in tokens (default: the model\'s, at most 4096)' },
  threads: { kind: 'int', min: 1, max: 256, value: 'N', help: 'threads (default: the physical cores)' },
};

/** GenerateOptions from the parsed flags (only those given); the model is needed for --ignore-eos. */
export function generateOptions(f: FlagValues, model?: Model): GenerateOptions {
  const o: GenerateOptions = {};
  if (f['ignore-eos'] && model) {
    const bias = new Map<number, number>();
    for (let id = 0; id < model.tokenizer.vocabSize; id++) if (model.tokenizer.isEog(id)) bias.set(id, -Infinity);
    o.logitBias = bias;
  }
  if (f['max-tokens'] !== undefined) o.maxTokens = f['max-tokens'] as number;
  if (f.temperature !== undefined) o.temperature = f.temperature as number;
  if (f['top-k'] !== undefined) o.topK = f['top-k'] as number;
  if (f['top-p'] !== undefined) o.topP = f['top-p'] as number;
  if (f['min-p'] !== undefined) o.minP = f['min-p'] as number;
  if (f['repeat-penalty'] !== undefined) o.repeatPenalty = f['repeat-penalty'] as number;
  if (f.seed !== undefined) o.seed = f.seed as number;
  if (f.stop !== undefined) o.stop = f.stop as string[];
  return o;
}

/** Checks the file exists (a clear one-line error), loads it with a progress bar on a terminal. */
export async function openModel(file: string, f: FlagValues): Promise<Model> {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new SparrowError(`no such file: ${file}`, 'ERR_NOT_FOUND');
  }
  if (!st.isFile()) throw new SparrowError(`not a file: ${file}`, 'ERR_NOT_FOUND');
  const bar = progressBar('loading model');
  try {
    return await loadModel(file, { threads: f.threads as number | undefined, onProgress: (x) => bar.update(x) });
  } finally {
    bar.done();
  }
}

/** The context size: --ctx (at most the model's), else the model's capped at 4096. */
export function contextSize(model: Model, f: FlagValues): number {
  const max = model.info.contextLength;
  if (f.ctx !== undefined) {
    if ((f.ctx as number) > max) throw new UsageError(`--ctx must be at most ${max}, this model's context length (got ${f.ctx})`);
    return f.ctx as number;
  }
  return Math.min(max, 4096);
}
