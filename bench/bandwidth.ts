/**
 * This machine's memory bandwidth, measured the way decode uses memory: streaming reads
 * of buffers far larger than the caches, by every compute thread at once.
 *
 * Each of `threads` worker threads owns two Float32Arrays (its share of `totalBytes`)
 * and runs sparrow's own SIMD f32 dot kernel over them (`_dotF32`, a test hook on `addon.internal`
 * for one kernel on one ISA path): 8 bytes read per 2 flops, far below what a core can
 * compute, so the time is the time to stream the bytes. All threads start each pass on
 * one message; a pass's bandwidth is all the bytes read divided by the time from the
 * first thread's start to the last thread's end. The best of `passes` passes is kept, as
 * STREAM does. Plain JS loops are too slow to saturate memory, so without the addon the
 * figure is reported as unavailable rather than guessed.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { internal } from '../src/native.js';
import { systemInfo } from '../src/system.js';

export interface BandwidthResult {
  /** Bytes per second, or null when it could not be measured. */
  bytesPerSecond: number | null;
  method: string;
  threads: number;
  totalBytes: number;
}

interface ThreadInit {
  floats: number;
  isa: string;
}
type FromThread = { ready: true } | { start: number; end: number } | { error: string };

interface DotAddon {
  _dotF32(isa: string, a: Float32Array, b: Float32Array): number;
}

const now = () => performance.timeOrigin + performance.now();

function threadMain(init: ThreadInit): void {
  const port = parentPort!;
  try {
    const dot = internal<DotAddon>()._dotF32;
    const a = new Float32Array(init.floats).fill(1);
    const b = new Float32Array(init.floats).fill(0.5);
    dot(init.isa, a, b); // touch every page once
    port.postMessage({ ready: true } satisfies FromThread);
    port.on('message', (msg: 'pass' | 'exit') => {
      if (msg === 'exit') return port.close();
      const start = now();
      const s = dot(init.isa, a, b);
      const end = now();
      if (!Number.isFinite(s)) return port.postMessage({ error: `the dot kernel returned ${s}` } satisfies FromThread);
      port.postMessage({ start, end } satisfies FromThread);
    });
  } catch (err) {
    port.postMessage({ error: (err as Error).message } satisfies FromThread);
  }
}

if (!isMainThread && (workerData as { bandwidthThread?: ThreadInit })?.bandwidthThread)
  threadMain((workerData as { bandwidthThread: ThreadInit }).bandwidthThread);

/** Measures the read bandwidth with `threads` threads over `totalBytes` of buffers. */
export async function measureBandwidth(threads: number, totalBytes = 1 << 30, passes = 6): Promise<BandwidthResult> {
  const unavailable = (why: string): BandwidthResult => ({ bytesPerSecond: null, method: `unavailable: ${why}`, threads, totalBytes });
  let isa: string;
  try {
    isa = systemInfo().isa;
  } catch (err) {
    return unavailable((err as Error).message);
  }
  // Each thread reads two arrays of `floats` floats; 64 floats keep every array a whole
  // number of SIMD vectors.
  const floats = Math.max(64, Math.floor(totalBytes / threads / 8 / 64) * 64);
  const workers: Worker[] = [];
  const inbox: ((m: FromThread) => void)[] = [];
  const next = (i: number) =>
    new Promise<FromThread>((resolve, reject) => {
      inbox[i] = resolve;
      workers[i]!.once('error', reject);
    });
  try {
    for (let i = 0; i < threads; i++) {
      const w = new Worker(new URL(import.meta.url), { workerData: { bandwidthThread: { floats, isa } }, execArgv: [] });
      w.on('message', (m: FromThread) => inbox[i]?.(m));
      workers.push(w);
    }
    const ready = await Promise.all(workers.map((_, i) => next(i)));
    const failed = ready.find((m) => 'error' in m);
    if (failed && 'error' in failed) return unavailable(failed.error);

    let best = 0;
    for (let p = 0; p < passes; p++) {
      const replies = workers.map((_, i) => next(i));
      for (const w of workers) w.postMessage('pass');
      const r = await Promise.all(replies);
      const bad = r.find((m) => 'error' in m);
      if (bad && 'error' in bad) return unavailable(bad.error);
      const times = r as { start: number; end: number }[];
      const seconds = (Math.max(...times.map((t) => t.end)) - Math.min(...times.map((t) => t.start))) / 1000;
      if (seconds > 0) best = Math.max(best, (threads * floats * 8) / seconds);
    }
    return {
      bytesPerSecond: best,
      method: `best of ${passes} passes of sparrow's ${isa} f32 dot kernel, ${threads} thread(s), ${Math.round((threads * floats * 8) / 2 ** 20)} MiB`,
      threads,
      totalBytes: threads * floats * 8,
    };
  } catch (err) {
    return unavailable((err as Error).message);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
