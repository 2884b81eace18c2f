/**
 * The object `generate` returns: an async iterable of chunks that the generation loop
 * fills, plus `result`, a promise of the final result. Iterating ends with the result as
 * the iterator's return value. Leaving a `for await` early (break, throw) aborts the
 * generation. A failure rejects both `result` and the iteration, and is never an
 * unhandled rejection when only one of them is awaited.
 */
import type { GenerationChunk, GenerationResult } from './types.js';

export class Generation implements AsyncIterableIterator<GenerationChunk> {
  /** Resolves when the generation ends, with the whole text, tokens, stop reason and timings. */
  readonly result: Promise<GenerationResult>;

  private readonly queue: GenerationChunk[] = [];
  private waiter: { resolve: (r: IteratorResult<GenerationChunk, GenerationResult>) => void; reject: (e: unknown) => void } | null = null;
  private ended: { ok: true; value: GenerationResult } | { ok: false; error: unknown } | null = null;
  private resolveResult!: (r: GenerationResult) => void;
  private rejectResult!: (e: unknown) => void;

  /** `onReturn`: called when the consumer stops iterating early (the loop then aborts). */
  constructor(private readonly onReturn: () => void) {
    this.result = new Promise<GenerationResult>((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    // Users who only iterate must not get an unhandled rejection from `result`.
    this.result.catch(() => {});
  }

  /** Loop side: a new chunk. */
  push(chunk: GenerationChunk): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve({ value: chunk, done: false });
    } else {
      this.queue.push(chunk);
    }
  }

  /** Loop side: the end. */
  finish(result: GenerationResult): void {
    if (this.ended) return;
    this.ended = { ok: true, value: result };
    this.resolveResult(result);
    this.wake();
  }

  /** Loop side: a failure. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = { ok: false, error };
    this.rejectResult(error);
    this.wake();
  }

  private wake(): void {
    if (!this.waiter || this.queue.length > 0) return;
    const w = this.waiter;
    this.waiter = null;
    const e = this.ended!;
    if (e.ok) w.resolve({ value: e.value, done: true });
    else w.reject(e.error);
  }

  next(): Promise<IteratorResult<GenerationChunk, GenerationResult>> {
    if (this.queue.length > 0) return Promise.resolve({ value: this.queue.shift()!, done: false });
    if (this.ended) {
      return this.ended.ok ? Promise.resolve({ value: this.ended.value, done: true }) : Promise.reject(this.ended.error);
    }
    if (this.waiter) return Promise.reject(new Error('next() called again before the previous call settled'));
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** The consumer left the loop: abort, and resolve with the result once the loop has stopped. */
  async return(): Promise<IteratorResult<GenerationChunk, GenerationResult>> {
    this.queue.length = 0;
    if (!this.ended) this.onReturn();
    try {
      return { value: await this.result, done: true };
    } catch {
      return { value: undefined as unknown as GenerationResult, done: true };
    }
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
