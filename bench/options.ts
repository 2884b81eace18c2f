/**
 * `npx bench` options: parsing and defaults. Pure (no I/O) so the tests can check every
 * rule; every bad option is a SparrowError naming it (the CLI prints it and exits 1).
 */
import fs from 'node:fs';
import os from 'node:os';
import { SparrowError } from '../src/errors.js';
import { parseArgs } from '../src/cli/args.js';

export const ENGINES = ['sparrow', 'llama.cpp'] as const;
export type EngineName = (typeof ENGINES)[number];

/** One model to measure: a catalogue shape written synthetically, or a file. */
export type ModelSpec = { kind: 'synthetic'; name: string; mix: string } | { kind: 'file'; path: string };

export interface BenchOptions {
  models: ModelSpec[];
  engines: EngineName[];
  threads: number;
  /** Prompt tokens (pp) and generated tokens (tg) per measurement. */
  pp: number;
  tg: number;
  /** Child processes per engine and model; the engines alternate within each round. */
  rounds: number;
  quick: boolean;
  /** Activation sparsity levels (byte fractions, 0..0.9) at which sparrow's decode is also measured; 0 is the dense run. */
  sparsity: number[];
  json: boolean;
  kernels: boolean;
  /** `--gpu vulkan`: both engines on the GPU (sparrow's Vulkan backend, node-llama-cpp's Vulkan build); false: the CPU. */
  gpu: 'vulkan' | false;
  html?: string;
  /** Seed of the random token ids fed to both engines. */
  seed: number;
  /** The command line as typed, for the report. */
  argv: string[];
}

/** The default run: a 1B-class model in Q4_0 and Q4_K_M. */
export const DEFAULT_MODELS = 'tinyllama-1.1b:q4_0,tinyllama-1.1b:q4_k_m';
/** `--quick`: a small model, short prompt, one round (a CI smoke run). */
export const QUICK_MODELS = 'smollm-135m:q4_0';

export const USAGE = `usage: npx bench [options]

Measures this machine: load time, prompt processing (pp), generation (tg), time to first
token, peak resident memory and the decode speed as a fraction of the memory bandwidth,
for sparrow-llm and, when node-llama-cpp is installed, llama.cpp on the same files.

options:
  --models LIST     synthetic models, NAME[:MIX] separated by commas
                    (default ${DEFAULT_MODELS}); written once into the cache
  --model FILE      measure a GGUF file instead of synthetic models
  --threads N       compute threads for both engines (default: physical cores)
  --rounds N        repetitions; each runs every engine in a fresh process (default 3)
  --pp N            prompt tokens (default 512)
  --tg N            generated tokens (default 128)
  --engines LIST    sparrow,llama.cpp (default both)
  --gpu vulkan      run both engines on the GPU: sparrow's Vulkan backend (npm run
                    build:vulkan; any Vulkan device, lavapipe included) and node-llama-cpp's
                    Vulkan build (@node-llama-cpp/<platform>-<arch>-vulkan, when installed)
  --sparsity LIST   also measure sparrow at these activation sparsity levels (fractions of
                    the layer weight bytes skipped per decoded token, 0..0.9), e.g. 0,0.25,0.5
  --quick           smoke run under a minute: ${QUICK_MODELS}, pp64, tg16, 1 round
  --json            print a machine-readable report on stdout (progress goes to stderr)
  --html FILE       also write a self-contained HTML report with charts
  --kernels         run the per-kernel micro-benchmarks instead (GEMV/GEMM per weight
                    type and ISA path, GB/s and GFLOP/s)
  --seed N          seed of the random prompt tokens (default 1)
  --help            this text`;

const SPEC = {
  models: 'string',
  model: 'string',
  threads: 'number',
  rounds: 'number',
  pp: 'number',
  tg: 'number',
  engines: 'string',
  quick: 'boolean',
  sparsity: 'string',
  json: 'boolean',
  html: 'string',
  kernels: 'boolean',
  seed: 'number',
  gpu: 'string',
  help: 'boolean',
} as const;

/**
 * The default thread count for both engines: the physical cores (SMT siblings share a
 * core's SIMD units, and llama.cpp and sparrow both default to one thread per core).
 * Linux reads the CPU topology; elsewhere, the logical CPU count.
 */
export function physicalCores(): number {
  const logical = os.availableParallelism();
  if (process.platform !== 'linux') return logical;
  const cores = new Set<string>();
  for (let c = 0; c < os.cpus().length; c++) {
    try {
      const base = `/sys/devices/system/cpu/cpu${c}/topology/`;
      cores.add(`${fs.readFileSync(base + 'physical_package_id', 'utf8').trim()}:${fs.readFileSync(base + 'core_id', 'utf8').trim()}`);
    } catch {
      return logical;
    }
  }
  return Math.max(1, Math.min(logical, cores.size || logical));
}

function bad(message: string): never {
  throw new SparrowError(message, 'ERR_INVALID_ARG');
}

function positiveInt(name: string, v: unknown, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > max)
    bad(`--${name} must be an integer from 1 to ${max} (got ${String(v)})`);
  return v;
}

/** Parses `NAME[:MIX],...`; names and mixes are checked against the catalogue later. */
export function parseModelList(list: string): ModelSpec[] {
  const out: ModelSpec[] = [];
  for (const raw of list.split(',')) {
    const item = raw.trim();
    if (!item) continue;
    const [name, mix, extra] = item.split(':');
    if (extra !== undefined || !name) bad(`--models: '${item}' is not NAME or NAME:MIX`);
    out.push({ kind: 'synthetic', name: name.toLowerCase(), mix: (mix || 'q4_0').toLowerCase() });
  }
  if (out.length === 0) bad('--models needs at least one NAME[:MIX]');
  return out;
}

function parseGpu(v: unknown): 'vulkan' | false {
  if (v === undefined) return false;
  if (String(v).toLowerCase() === 'vulkan') return 'vulkan';
  bad(`--gpu must be 'vulkan' (got '${String(v)}')`);
}

/** `--sparsity 0,0.25,0.5`: distinct levels from 0 to 0.9, in the order given. */
function parseSparsity(v: unknown): number[] {
  if (v === undefined) return [];
  const out: number[] = [];
  for (const item of String(v).split(',').map((s) => s.trim())) {
    const x = item === '' ? NaN : Number(item);
    if (!Number.isFinite(x) || x < 0 || x > 0.9) bad(`--sparsity: '${item}' is not a level from 0 to 0.9`);
    if (!out.includes(x)) out.push(x);
  }
  if (out.length === 0) bad('--sparsity needs at least one level');
  return out;
}

/** Returns the options, or 'help' when --help was asked for. */
export function parseBenchArgs(argv: string[]): BenchOptions | 'help' {
  const { flags, positional } = parseArgs(argv, SPEC, USAGE);
  if (flags.help) return 'help';
  if (positional.length > 0) bad(`unexpected argument '${positional[0]}' (options start with --)\n${USAGE}`);
  if (flags.model !== undefined && flags.models !== undefined) bad('--model and --models cannot be used together');

  const quick = flags.quick === true;
  if (flags.gpu !== undefined && flags.sparsity !== undefined)
    bad('--sparsity runs on the CPU only (the Vulkan backend does not load sparse models): not with --gpu');
  let models: ModelSpec[];
  if (flags.model !== undefined) {
    const p = String(flags.model);
    if (!p.toLowerCase().endsWith('.gguf')) bad(`--model must name a .gguf file (got '${p}')`);
    models = [{ kind: 'file', path: p }];
  } else {
    models = parseModelList(String(flags.models ?? (quick ? QUICK_MODELS : DEFAULT_MODELS)));
  }

  let engines: EngineName[] = [...ENGINES];
  if (flags.engines !== undefined) {
    engines = [];
    for (const e of String(flags.engines).split(',').map((s) => s.trim().toLowerCase())) {
      const name = e === 'llama' || e === 'llamacpp' || e === 'node-llama-cpp' ? 'llama.cpp' : e;
      if (!(ENGINES as readonly string[]).includes(name)) bad(`--engines: unknown engine '${e}' (known: ${ENGINES.join(', ')})`);
      if (!engines.includes(name as EngineName)) engines.push(name as EngineName);
    }
    if (engines.length === 0) bad('--engines needs at least one engine');
  }

  const pp = positiveInt('pp', flags.pp ?? (quick ? 64 : 512), 8192);
  const tg = positiveInt('tg', flags.tg ?? (quick ? 16 : 128), 8192);
  const html = flags.html === undefined ? undefined : String(flags.html);
  if (html !== undefined && html.trim() === '') bad('--html needs a file name');
  return {
    models,
    engines,
    threads: positiveInt('threads', flags.threads ?? physicalCores(), 1024),
    pp,
    tg,
    rounds: positiveInt('rounds', flags.rounds ?? (quick ? 1 : 3), 100),
    quick,
    sparsity: parseSparsity(flags.sparsity),
    json: flags.json === true,
    kernels: flags.kernels === true,
    gpu: parseGpu(flags.gpu),
    html,
    seed: flags.seed === undefined ? 1 : positiveInt('seed', flags.seed, 0xffffffff),
    argv: [...argv],
  };
}
