/**
 * One measurement in a child process of its own: one engine on one model. The parent
 * (run.ts) forks this file, sends a WorkRequest over IPC and gets one WorkReply back.
 * A fresh process per measurement keeps the figures clean: the peak resident memory
 * is this engine's alone, and everything it allocated goes back when the process ends.
 *
 * Timing uses tinybench: one warm-up iteration on a short prompt (faults the weights in,
 * starts the thread pools), then `iterations` measured ones. Two tasks:
 * - 'prompt': from an empty context, submit the pp-token prompt and wait for the first
 *   generated token. That time is ttft_ms; pp_tps = pp / ttft (the one sampling step
 *   inside costs well under 1% at pp=512).
 * - 'decode': from an empty context, one token, then tg single-token decode steps, each
 *   followed by greedy sampling (llama-bench's tg at depth 0). tg_tps = tg / time.
 */
import { Bench } from 'tinybench';
import { engine, useGpu, type LoadedEngine } from './engines.js';
import type { EngineName } from './options.js';

export interface WorkRequest {
  engine: EngineName;
  model: string;
  threads: number;
  /** Prompt tokens (pp of them) and decode tokens (tg + 1), the same for both engines. */
  promptTokens: number[];
  decodeTokens: number[];
  iterations: number;
  /** `--gpu vulkan`: both engines on the GPU. */
  gpu?: 'vulkan' | false;
  /** sparrow only: the activation sparsity level to load the model with (absent: dense). */
  sparsity?: number;
}

export interface WorkResult {
  engine: EngineName;
  version: string;
  load_ms: number;
  /** One value per measured iteration. */
  ttft_ms: number[];
  pp_tps: number[];
  tg_tps: number[];
  /** Peak resident set of the whole process, in bytes. */
  rss_bytes: number;
  /** With a sparsity level: the level, and the fraction of the layer matrices' weight bytes the measured decode steps skipped (counted by the kernels). */
  sparsity?: number;
  skipped_fraction?: number | null;
}

export type WorkReply = { ok: true; result: WorkResult } | { ok: false; error: string; code?: string };

const WARMUP_PROMPT = 16;
const WARMUP_DECODE = 4;

/** Peak resident set size of this process in bytes (VmHWM on Linux). */
export function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}

export async function measure(req: WorkRequest): Promise<WorkResult> {
  useGpu(req.gpu ?? false);
  const eng = engine(req.engine);
  await eng.init();
  // Room for the prompt, the decode run and a few spare positions.
  const contextSize = Math.max(req.promptTokens.length, req.decodeTokens.length) + 16;
  const t0 = performance.now();
  const loaded: LoadedEngine = await eng.load(req.model, { threads: req.threads, contextSize, batchSize: 512, sparsity: req.sparsity });
  const load_ms = performance.now() - t0;

  const ttft: number[] = [];
  const tg: number[] = [];
  let warm = false;
  let skipped: number | null = null;
  const pp = req.promptTokens.length;
  const n = req.decodeTokens.length - 1;
  try {
    const bench = new Bench({ iterations: req.iterations, time: 0, warmup: true, warmupIterations: 1, warmupTime: 0 });
    const beforeEach = async (mode?: 'run' | 'warmup') => {
      warm = mode === 'warmup';
      await loaded.reset();
    };
    bench.add(
      'prompt',
      async () => {
        const tokens = warm ? req.promptTokens.slice(0, WARMUP_PROMPT) : req.promptTokens;
        const s = performance.now();
        await loaded.prompt(tokens);
        const ms = performance.now() - s;
        if (!warm) ttft.push(ms);
        return { overriddenDuration: ms };
      },
      { beforeEach },
    );
    bench.add(
      'decode',
      async () => {
        const steps = warm ? Math.min(WARMUP_DECODE, n) : n;
        await loaded.prompt(req.decodeTokens.slice(0, 1));
        const b0 = loaded.sparseBytes?.() ?? null;
        const s = performance.now();
        for (let i = 1; i <= steps; i++) await loaded.step(req.decodeTokens[i]!);
        const ms = performance.now() - s;
        const b1 = loaded.sparseBytes?.() ?? null;
        if (!warm) tg.push(ms);
        if (!warm && b0 && b1 && b1.dense > b0.dense) skipped = 1 - (b1.read - b0.read) / (b1.dense - b0.dense);
        return { overriddenDuration: ms };
      },
      { beforeEach },
    );
    await bench.run();
    for (const t of bench.tasks) {
      const r = t.result as { state: string; error?: unknown };
      if (r.state === 'errored') throw r.error;
    }
  } finally {
    await loaded.close();
  }
  return {
    engine: req.engine,
    version: loaded.info.version,
    load_ms,
    ttft_ms: ttft,
    pp_tps: ttft.map((ms) => (pp * 1000) / ms),
    tg_tps: tg.map((ms) => (n * 1000) / ms),
    rss_bytes: peakRss(),
    ...(req.sparsity !== undefined ? { sparsity: req.sparsity, skipped_fraction: skipped } : {}),
  };
}

// Run as a forked child: answer one request, then exit.
if (process.send && process.argv[2] === '--bench-child') {
  process.once('message', (req: WorkRequest) => {
    measure(req).then(
      (result) => process.send!({ ok: true, result } satisfies WorkReply, () => process.exit(0)),
      (err: unknown) => {
        const e = err as { message?: string; code?: string; stack?: string };
        const reply: WorkReply = { ok: false, error: e?.message ?? String(err), code: e?.code };
        process.send!(reply, () => process.exit(1));
      },
    );
  });
}
