/** `sparrow perplexity MODEL --text FILE`: perplexity (and KL divergence) as llama-perplexity measures it. */
import fs from 'node:fs';
import { SparrowError } from '../../errors.js';
import { loadModel, type Model } from '../../model.js';
import { perplexity, type PerplexityResult } from '../../quality/perplexity.js';
import { parseArgs } from '../args.js';
import { UsageError } from '../flags.js';

export const summary = 'measure perplexity on a text file (llama-perplexity style), or KL divergence against a base';
export const usage = `usage: sparrow perplexity MODEL.gguf --text FILE [options]
  --text FILE          the text to score (UTF-8)
  --ctx N              tokens per chunk (default: min(512, the model's context length));
                       the second half of each chunk is scored
  --chunks N           score at most N chunks
  --kl-divergence      also measure KL(base || model) and top-1 agreement per scored token
  --base FILE.gguf     the base model of --kl-divergence (default: MODEL itself, dense)
  --sparsity X         activation sparsity level (0..0.9, the share of layer-matrix weight
                       bytes skipped): every scored token is evaluated as a sparse decode
                       step would be (the prompt-style batch with sparsification on all
                       of its tokens); with --kl-divergence and no --base, KL is against
                       the dense run of the same file
  --calibration FILE   the sparsity calibration (default: MODEL.gguf.sparsity.json when it
                       exists); --no-calibration: the built-in default allocation
  --no-calibration     ignore any calibration file
  --threads N          threads (default: the physical cores)
  --json               print the result as JSON`;

const FLAGS = {
  text: 'string',
  ctx: 'number',
  chunks: 'number',
  'kl-divergence': 'boolean',
  base: 'string',
  sparsity: 'number',
  calibration: 'string',
  'no-calibration': 'boolean',
  threads: 'number',
  json: 'boolean',
} as const;

export async function run(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, FLAGS, usage);
  if (positional.length !== 1) throw new UsageError(`expected one model file (see --help)`);
  if (typeof flags.text !== 'string') throw new UsageError(`--text FILE is required (see --help)`);
  if (flags.base !== undefined && !flags['kl-divergence'])
    throw new UsageError('--base is the base model of --kl-divergence: give both');
  let text: string;
  try {
    text = fs.readFileSync(flags.text, 'utf8');
  } catch (e) {
    throw new SparrowError(`cannot read --text ${flags.text}: ${(e as Error).message}`, 'ERR_INVALID_ARG');
  }
  const sparsity = flags.sparsity as number | undefined;
  if (sparsity !== undefined && !(sparsity >= 0 && sparsity <= 0.9)) throw new UsageError('--sparsity must be a number from 0 to 0.9');
  if (flags.calibration !== undefined && flags['no-calibration'])
    throw new UsageError('--calibration and --no-calibration exclude each other');
  const threads = flags.threads as number | undefined;
  const sparsityCalibration = flags['no-calibration'] ? false : (flags.calibration as string | undefined);
  const model = await loadModel(positional[0]!, { threads, sparsityCalibration });
  let base: Model | undefined;
  try {
    if (flags['kl-divergence']) base = typeof flags.base === 'string' ? await loadModel(flags.base, { threads }) : model;
    const progress = !flags.json && process.stderr.isTTY;
    const result = await perplexity(model, text, {
      contextSize: flags.ctx as number | undefined,
      maxChunks: flags.chunks as number | undefined,
      base,
      // Sparsity on every token of each chunk (each scored as a sparse decode step); the
      // base (the same model when no --base) stays dense.
      sessionOptions: sparsity ? { sparsity, sparsePrompt: true } : undefined,
      baseSessionOptions: sparsity ? { sparsity: 0, sparsePrompt: false } : undefined,
      onProgress: progress ? (d, t) => process.stderr.write(`\rchunk ${d}/${t}`) : undefined,
    });
    if (progress) process.stderr.write('\n');
    const report = sparsity
      ? { ...result, sparsity: { level: sparsity, allocation: model.info.sparsity.allocation, file: model.info.sparsity.file } }
      : result;
    console.log(flags.json ? JSON.stringify(report, null, 2) : describe(result));
    if (sparsity && !flags.json)
      console.log(`sparsity        ${sparsity} (${model.info.sparsity.allocation} allocation${model.info.sparsity.file ? `: ${model.info.sparsity.file}` : ''})`);
    return 0;
  } finally {
    if (base && base !== model) base.dispose();
    model.dispose();
  }
}

function describe(r: PerplexityResult): string {
  const lines = [
    `chunks          ${r.chunks} of ${r.contextSize} tokens (${r.tokensScored} predictions scored, text ${r.textTokens} tokens)`,
    `perplexity      ${r.perplexity.toFixed(4)} +/- ${r.uncertainty.toFixed(4)}`,
    `mean NLL        ${r.meanNll.toFixed(6)}`,
  ];
  if (r.kl) {
    lines.push(
      `base perplexity ${r.kl.basePerplexity.toFixed(4)}`,
      `KL divergence   mean ${r.kl.mean.toExponential(4)} +/- ${r.kl.uncertainty.toExponential(2)}, median ${r.kl.median.toExponential(3)}, p99 ${r.kl.p99.toExponential(3)}, max ${r.kl.max.toExponential(3)}`,
      `same top token  ${(100 * r.kl.top1Agreement).toFixed(2)}%`,
    );
  }
  return lines.join('\n');
}
