/** `sparrow info`: the build, the CPU, the kernel path in use, and the GPU devices. */
import os from 'node:os';
import { systemInfo } from '../../system.js';
import { flagHelp, parseFlags, UsageError } from '../flags.js';

export const summary = 'show the CPU features and the SIMD kernel path in use';
const FLAGS = { json: { kind: 'boolean' as const, help: 'print the same facts as JSON' } };

export const usage = `usage: sparrow info [--json]

options:
${flagHelp(FLAGS)}`;

export async function run(args: string[]): Promise<number> {
  const { flags, positional } = parseFlags(args, FLAGS);
  if (positional.length > 0) throw new UsageError(`unexpected argument '${positional[0]}'; see sparrow info --help`);
  const info = { ...systemInfo(), cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version };
  if (flags.json) {
    console.log(JSON.stringify(info, null, 2));
    return 0;
  }
  const features = Object.entries(info.cpuFeatures).filter(([, v]) => v).map(([k]) => k);
  console.log(`cpu:        ${info.cpu} (${info.cores} logical cores)`);
  console.log(`features:   ${features.join(' ') || 'none detected'}`);
  console.log(`kernels:    ${info.isa} (best here: ${info.bestIsa}; in this build: ${info.compiledIsas.join(', ')})`);
  if (info.gpus.length === 0) console.log(`gpus:       none (${info.gpuUnavailableReason ?? 'unknown reason'})`);
  for (const g of info.gpus)
    console.log(`gpu ${g.index}:      ${g.name} (${g.api}, ${g.type}, ${(g.memory / 2 ** 30).toFixed(1)} GiB${g.type === 'cpu' ? "; gpu: 'auto' skips it" : ''})`);
  console.log(`node:       ${info.node}`);
  return 0;
}
