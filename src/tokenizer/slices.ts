/**
 * Long computations written as generators that `yield` now and then (every few thousand
 * items of a loop), so that one body serves two callers: `runSync` runs it to the end at
 * once, `runSliced` runs it in slices of a few milliseconds and gives the event loop a turn
 * (setImmediate) between them. Used to build 100k-entry tokenizers without blocking the
 * event loop for hundreds of milliseconds.
 */
import { SparrowError } from '../errors.js';

/** A computation that may pause at each `yield` and ends with a T. */
export type Steps<T> = Generator<void, T, void>;

/** Runs `steps` to the end, synchronously. */
export function runSync<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

export interface SliceOptions {
  /** Longest run between two turns of the event loop, in ms. Default 5. */
  sliceMs?: number;
  /** Stops between two slices: the promise then rejects with ERR_ABORTED. */
  signal?: AbortSignal;
  /** Called after each slice (progress reports). */
  onSlice?: () => void;
}

/** The error of an aborted operation (SparrowError ERR_ABORTED), naming `what`. */
export function abortError(what: string): SparrowError {
  return new SparrowError(`${what} was aborted`, 'ERR_ABORTED');
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs `steps` in slices of about `sliceMs`, letting the event loop run between them. */
export async function runSliced<T>(steps: Steps<T>, options: SliceOptions = {}, what = 'the operation'): Promise<T> {
  const sliceMs = options.sliceMs ?? 5;
  let start = performance.now();
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    if (performance.now() - start < sliceMs) continue;
    options.onSlice?.();
    await nextTurn();
    if (options.signal?.aborted) {
      steps.return(undefined as never);
      throw abortError(what);
    }
    start = performance.now();
  }
}
