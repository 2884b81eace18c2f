/** `sparrow calibrate MODEL --text FILE`: the sparsity allocation of MODEL, greedy on real text, written beside it. */
import fs from 'node:fs';
import { SparrowError } from '../../errors.js';
import { loadModel } from '../../model.js';
import { calibrate } from '../../sparsity/calibrate.js';
import { calibrationPathFor } from '../../sparsity/plan.js';
import { parseArgs } from '../args.js';
import { UsageError } from '../flags.js';

export const summary = 'calibrate the activation-sparsity allocation of a model on a text file';
export const usage = `usage: sparrow calibrate MODEL.gguf --text FILE [options]
  Measures, greedily, which sites (Q/K/V, attention output, gate/up, down inputs) of
  which layers take activation sparsity at the least cost in output quality (KL
  against the dense model on the text), and writes the allocation at the levels
  0, 0.05, ..., 0.9 to MODEL.gguf.sparsity.json, where loadModel finds it.
  Calibrate on other text than the one you measure quality on.
  --text FILE          the calibration text (UTF-8)
  --ctx N              tokens per chunk (default: min(128, the model's context length))
  --tokens N           calibration tokens to use at most (default 512; each greedy step
                       evaluates them a few times: time grows with tokens x model size)
  --step X             share of a site's input channels one greedy step adds (default 0.1)
  --out FILE           where to write (default: MODEL.gguf.sparsity.json)
  --threads N          threads (default: the physical cores)
  --json               print the calibration as JSON too`;

const FLAGS = {
  text: 'string',
  ctx: 'number',
  tokens: 'number',
  step: 'number',
  out: 'string',
  threads: 'number',
  json: 'boolean',
} as const;

export async function run(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(args, FLAGS, usage);
  if (positional.length !== 1) throw new UsageError(`expected one model file (see --help)`);
  if (typeof flags.text !== 'string') throw new UsageError(`--text FILE is required (see --help)`);
  for (const f of ['ctx', 'tokens'] as const)
    if (flags[f] !== undefined && !(Number.isInteger(flags[f]) && (flags[f] as number) > 0))
      throw new UsageError(`--${f} must be a positive integer`);
  if (flags.step !== undefined && !((flags.step as number) > 0 && (flags.step as number) <= 0.5))
    throw new UsageError('--step must be a number in (0, 0.5]');
  const modelPath = positional[0]!;
  let text: string;
  try {
    text = fs.readFileSync(flags.text, 'utf8');
  } catch (e) {
    throw new SparrowError(`cannot read --text ${flags.text}: ${(e as Error).message}`, 'ERR_INVALID_ARG');
  }
  const out = typeof flags.out === 'string' ? flags.out : calibrationPathFor(modelPath);
  // Dense, and without any existing calibration (which may be the stale one being replaced).
  const model = await loadModel(modelPath, { threads: flags.threads as number | undefined, sparsityCalibration: false });
  try {
    const progress = !flags.json && process.stderr.isTTY;
    const result = await calibrate(model, text, {
      contextSize: flags.ctx as number | undefined,
      maxTokens: flags.tokens as number | undefined,
      step: flags.step as number | undefined,
      textName: flags.text,
      modelName: modelPath,
      onProgress: progress ? (l, kl) => process.stderr.write(`\rlevel ${l.toFixed(3)}  KL ${kl.toExponential(3)}`) : undefined,
    });
    if (progress) process.stderr.write('\n');
    try {
      fs.writeFileSync(out, JSON.stringify(result, null, 1) + '\n');
    } catch (e) {
      throw new SparrowError(`cannot write ${out}: ${(e as Error).message}`, 'ERR_INVALID_ARG');
    }
    if (flags.json) console.log(JSON.stringify(result, null, 2));
    else {
      console.log(`wrote ${out} (${result.calibration.tokens} tokens, ${result.calibration.evaluations} evaluations)`);
      console.log('level  KL(dense||sparse)  per-site mean fraction (qkv o gateup down)');
      const L = result.model.layers;
      result.levels.forEach((l, i) => {
        const a = result.allocations[i]!;
        const mean = [0, 1, 2, 3].map((s) => {
          let m = 0;
          for (let k = 0; k < L; k++) m += a[k * 4 + s]!;
          return (m / L).toFixed(3);
        });
        console.log(`${l.toFixed(2)}   ${(result.kl?.[i] ?? 0).toExponential(3)}          ${mean.join(' ')}`);
      });
    }
    return 0;
  } finally {
    model.dispose();
  }
}
