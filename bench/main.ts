/**
 * `npx bench`: measures sparrow-llm and, when node-llama-cpp is installed, llama.cpp on
 * the same GGUF files, the same token ids and the same thread count, in the same run.
 *
 * Each (round, engine) measurement runs in a fresh child process (worker.ts); within a
 * round the engines run one after the other, so a slow spell on a shared machine hits
 * both, and each ratio compares the two measurements of one round only.
 */
import { fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SparrowError } from '../src/errors.js';
import { packageRoot } from '../src/native.js';
import { measureBandwidth } from './bandwidth.js';
import { LLAMA_INSTALL_HINT, sparrowApi } from './engines.js';
import { renderHtml } from './html.js';
import { resolveModels, type ResolvedModel } from './models.js';
import { USAGE, parseBenchArgs, type BenchOptions, type EngineName } from './options.js';
import { addRatios, engineReport, formatTable, sparsityRunName, type BenchReport, type ModelReport } from './report.js';
import { randomTokens } from './stats.js';
import type { WorkReply, WorkRequest, WorkResult } from './worker.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');

/** Status lines go to stderr so that stdout holds only the table or the JSON. */
const log = (s: string) => process.stderr.write(s + '\n');

/**
 * The gist of a dead child's stderr: its error line (`Error [CODE]: message`, `SomeError:
 * message`) when there is one, else its last non-empty line; at most 500 characters.
 */
export function childError(stderr: string): string {
  const lines = stderr.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('at ') && l !== '^' && !/^Node\.js v\d/.test(l));
  const err = lines.findLast((l) => /^(\w*Error|Error)\b.*:/.test(l));
  const line = err ?? lines.at(-1) ?? '';
  return line.length > 500 ? line.slice(0, 497) + '...' : line;
}

/** Runs one measurement in a child process; rejects with the child's error. */
export function runChild(req: WorkRequest, timeoutMs: number): Promise<WorkResult> {
  return new Promise((resolve, reject) => {
    // execArgv: []: the parent's node flags (--input-type, --eval, test runners' loaders) are not for the child.
    const child = fork(WORKER, ['--bench-child'], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [] });
    // The engines' own logs must not reach our stdout (it may be JSON).
    child.stdout!.pipe(process.stderr, { end: false });
    child.stderr!.pipe(process.stderr, { end: false });
    // Kept so that a child that dies before reporting is reported with its own error.
    let stderrTail = '';
    child.stderr!.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString('utf8')).slice(-8192)));
    let reply: WorkReply | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new SparrowError(`${req.engine} took longer than ${Math.round(timeoutMs / 1000)} s; stopped`, 'ERR_TIMEOUT'));
    }, timeoutMs);
    child.on('message', (m: WorkReply) => (reply = m));
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (reply?.ok) resolve(reply.result);
      else if (reply) reject(new SparrowError(reply.error, reply.code ?? 'ERR_ENGINE'));
      else {
        const why = childError(stderrTail);
        reject(new SparrowError(`${req.engine} process ended with ${signal ?? `exit code ${code}`} before reporting${why ? `: ${why}` : ''}`, 'ERR_ENGINE'));
      }
    });
    child.send(req);
  });
}

/** Which engines can run here, with a note for those that cannot. */
async function availableEngines(wanted: EngineName[]): Promise<BenchReport['engines']> {
  const out: BenchReport['engines'] = [];
  for (const name of wanted) {
    if (name === 'sparrow') {
      try {
        (await sparrowApi()).systemInfo(); // loads the addon: fails here if it cannot
        out.push({ name, available: true });
      } catch (err) {
        out.push({ name, available: false, note: (err as Error).message });
      }
    } else {
      let found = false;
      try {
        import.meta.resolve('node-llama-cpp');
        found = true;
      } catch {
        /* not installed */
      }
      out.push(
        found
          ? { name, available: true }
          : { name, available: false, note: `node-llama-cpp is not installed; add it with \`${LLAMA_INSTALL_HINT}\` to compare with llama.cpp` },
      );
    }
  }
  return out;
}

interface ModelRounds {
  model: ResolvedModel;
  /** Per run (an engine, or sparrow at a sparsity level), one entry per round (null: that round failed). */
  rounds: Map<string, (WorkResult | null)[]>;
  errors: Map<string, string[]>;
}

/** The runs of a round: each engine, then sparrow at each sparsity level above 0 (`--sparsity`). */
function runList(engines: EngineName[], o: BenchOptions): { name: string; engine: EngineName; sparsity?: number }[] {
  const runs: { name: string; engine: EngineName; sparsity?: number }[] = engines.map((e) => ({ name: e, engine: e }));
  if (engines.includes('sparrow'))
    for (const level of o.sparsity) if (level > 0) runs.push({ name: sparsityRunName(level), engine: 'sparrow', sparsity: level });
  return runs;
}

/** Every round of every engine on one model; in each round the engines run one after the other. */
async function benchModel(model: ResolvedModel, engines: EngineName[], o: BenchOptions, timeoutMs: number): Promise<ModelRounds> {
  const promptTokens = randomTokens(o.pp, model.nVocab, o.seed);
  const decodeTokens = randomTokens(o.tg + 1, model.nVocab, o.seed + 1);
  const runs = runList(engines, o);
  const rounds = new Map<string, (WorkResult | null)[]>(runs.map((e) => [e.name, []]));
  const errors = new Map<string, string[]>(runs.map((e) => [e.name, []]));
  for (let r = 0; r < o.rounds; r++) {
    for (const { name: e, engine, sparsity } of runs) {
      const t0 = performance.now();
      process.stderr.write(`${model.name}: round ${r + 1}/${o.rounds}, ${e} ... `);
      try {
        const res = await runChild(
          { engine, model: model.path, threads: o.threads, promptTokens, decodeTokens, iterations: 1, sparsity, gpu: o.gpu },
          timeoutMs,
        );
        rounds.get(e)!.push(res);
        log(`pp ${res.pp_tps[0]!.toFixed(1)} tok/s, tg ${res.tg_tps[0]!.toFixed(1)} tok/s (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      } catch (err) {
        rounds.get(e)!.push(null);
        errors.get(e)!.push(`round ${r + 1}: ${(err as Error).message}`);
        log(`failed: ${(err as Error).message}`);
      }
    }
  }
  return { model, rounds, errors };
}

function modelReport({ model, rounds, errors }: ModelRounds, bandwidth: number | null): ModelReport {
  const report: ModelReport = {
    name: model.name,
    file: model.path,
    file_bytes: model.fileBytes,
    weight_bytes_per_token: model.weightBytesPerToken,
    engines: {},
  };
  for (const [e, r] of rounds) report.engines[e] = engineReport(r, model.weightBytesPerToken, bandwidth, errors.get(e)!);
  addRatios(report);
  return report;
}

/** `--kernels`: the kernel micro-benchmarks live in bench/kernels.mjs; run it as is. */
async function runKernels(o: BenchOptions): Promise<number> {
  const script = path.join(packageRoot, 'bench', 'kernels.mjs');
  if (!fs.existsSync(script)) {
    log(`bench: the kernel micro-benchmarks (bench/kernels.mjs) are not in this copy of sparrow-llm`);
    return 1;
  }
  // kernels.mjs prints its own table (or JSON); it takes --threads (default 1: per-core figures).
  const args = [script];
  if (o.argv.some((a) => a.startsWith('--threads'))) args.push('--threads', String(o.threads));
  if (o.json) args.push('--json');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: 'inherit' });
    child.on('exit', (code) => resolve(code ?? 1));
    child.on('error', (err) => {
      log(`bench: cannot run ${script}: ${err.message}`);
      resolve(1);
    });
  });
}

function machineIsa(): Promise<string | null> {
  return import('../src/system.js').then(
    (m) => m.systemInfo().isa,
    () => null,
  );
}

export async function run(o: BenchOptions): Promise<number> {
  if (o.kernels) return runKernels(o);

  const engineInfo = await availableEngines(o.engines);
  const engines = engineInfo.filter((e) => e.available).map((e) => e.name);
  for (const e of engineInfo) if (!e.available) log(`bench: ${e.name} not measured: ${e.note}`);
  if (engines.length === 0) {
    log('bench: no engine to measure');
    return 1;
  }

  const models = await resolveModels(o.models);
  log(`measuring memory bandwidth (${o.threads} thread(s)) ...`);
  const measureBw = () => measureBandwidth(o.threads, o.quick ? 256 * 2 ** 20 : 2 ** 30, o.quick ? 3 : 6);
  let bw = await measureBw();

  const timeoutMs = (o.quick ? 3 : 20) * 60_000;
  const measured: ModelRounds[] = [];
  for (const m of models) measured.push(await benchModel(m, engines, o, timeoutMs));
  const failed = measured.some((m) => [...m.errors.values()].some((x) => x.length > 0));
  if (!o.quick) {
    // Once more at the end, keeping the better figure: a busy spell on the machine during
    // one measurement would otherwise inflate every decode / bandwidth fraction.
    const again = await measureBw();
    if ((again.bytesPerSecond ?? 0) > (bw.bytesPerSecond ?? 0)) bw = again;
  }
  const reports = measured.map((m) => modelReport(m, bw.bytesPerSecond));
  for (const e of engineInfo)
    if (e.available) e.version = reports.map((r) => r.engines[e.name]?.version).find((v) => v && v !== 'unknown');

  const notes: string[] = [];
  for (const e of engineInfo) if (!e.available) notes.push(`${e.name} was not measured: ${e.note}`);
  for (const r of reports)
    for (const [name, e] of Object.entries(r.engines)) for (const err of e?.errors ?? []) notes.push(`${name} failed on ${r.name}, ${err}`);
  if (bw.bytesPerSecond === null) notes.push(`memory bandwidth not measured (${bw.method}), so no decode / bandwidth figure`);
  notes.push(
    'pp = prompt tokens / time to the first generated token; tg = single-token decode steps from an empty context; ' +
      'decode / bandwidth = weight bytes read per token x tg / measured bandwidth.',
  );
  const report: BenchReport = {
    schema: 1,
    date: new Date().toISOString(),
    command: ['npx bench', ...o.argv].join(' '),
    machine: {
      cpu: os.cpus()[0]?.model?.trim() || 'unknown CPU',
      logical_cpus: os.availableParallelism(),
      memory_bytes: os.totalmem(),
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
      isa: await machineIsa(),
      bandwidth_bytes_per_s: bw.bytesPerSecond,
      bandwidth_method: bw.method,
    },
    settings: { pp: o.pp, tg: o.tg, rounds: o.rounds, threads: o.threads, seed: o.seed, quick: o.quick },
    engines: engineInfo,
    models: reports,
    notes,
  };

  if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
  else process.stdout.write(formatTable(report) + '\n');
  if (o.html) {
    fs.writeFileSync(o.html, renderHtml(report));
    log(`bench: wrote ${o.html}`);
  }
  return failed ? 1 : 0;
}

/** The `bench` command: parses argv, runs, returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  try {
    const o = parseBenchArgs(argv);
    if (o === 'help') {
      process.stdout.write(USAGE + '\n');
      return 0;
    }
    return await run(o);
  } catch (err) {
    if (err instanceof SparrowError) log(`bench: ${err.message}${err.code === 'ERR_INVALID_ARG' ? '' : ` [${err.code}]`}`);
    else log(`bench: ${(err as Error)?.stack ?? String(err)}`);
    return 1;
  }
}
