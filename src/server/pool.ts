/**
 * The session pool: a fixed set of sessions (their decode steps run batched by the model),
 * each serving one request at a time, and a bounded FIFO queue of requests waiting for one.
 *
 * Prefix reuse: a request goes to the idle session whose cached tokens share the longest
 * prefix with its prompt (chat clients resend the whole conversation each turn, so the
 * session that served the previous turn holds all of it), among the sessions it shares
 * at least half their cache with; a new conversation takes an empty session, else the one
 * idle longest, rather than the cache of a conversation that may come back. The session is
 * truncated to the shared prefix and only the rest is evaluated.
 */
import type { Session } from '../session.js';
import { HttpError } from './errors.js';

export interface Slot {
  readonly index: number;
  readonly session: Session;
  busy: boolean;
  /** When it last became idle (for ties). */
  idleSince: number;
}

interface Waiter {
  prompt: readonly number[];
  resolve: (slot: Slot) => void;
  reject: (e: unknown) => void;
  cleanup: () => void;
}

function commonPrefix(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

export class SessionPool {
  readonly slots: Slot[];
  #queue: Waiter[] = [];
  #closed = false;

  constructor(sessions: Session[], readonly maxQueue: number) {
    this.slots = sessions.map((session, index) => ({ index, session, busy: false, idleSince: 0 }));
  }

  get queueDepth(): number {
    return this.#queue.length;
  }

  get busy(): number {
    return this.slots.filter((s) => s.busy).length;
  }

  /**
   * The idle slot for `prompt`. A session "holds this conversation" when the prompt shares
   * at least half of its cached tokens (an empty session qualifies with 0): the one sharing
   * the longest prefix wins. When none does, every idle session holds another conversation,
   * and the one idle longest gives its cache up.
   */
  #best(prompt: readonly number[]): Slot | undefined {
    let best: { slot: Slot; common: number } | undefined;
    let lru: Slot | undefined;
    for (const slot of this.slots) {
      if (slot.busy || slot.session.disposed) continue;
      if (!lru || slot.idleSince < lru.idleSince) lru = slot;
      const cached = slot.session.tokens;
      const common = commonPrefix(cached, prompt);
      if (common * 2 < cached.length) continue;
      if (!best || common > best.common || (common === best.common && slot.idleSince < best.slot.idleSince)) best = { slot, common };
    }
    return best?.slot ?? lru;
  }

  /**
   * A session for `prompt`, truncated to the prefix it shares with it. Waits in the queue
   * when every session is busy: a full queue is a 429; `signal` takes the request out of the queue.
   */
  async acquire(prompt: readonly number[], signal: AbortSignal): Promise<{ slot: Slot; common: number }> {
    if (this.#closed) throw new HttpError(503, 'The server is shutting down', 'server_error', null, 'shutting_down');
    signal.throwIfAborted();
    let slot: Slot;
    const found = this.#best(prompt);
    if (found) slot = found;
    else {
      if (this.#queue.length >= this.maxQueue)
        throw new HttpError(429, `All ${this.slots.length} sessions are busy and ${this.#queue.length} requests are waiting; retry later`, 'rate_limit_exceeded', null, 'queue_full', { 'retry-after': '1' });
      slot = await new Promise<Slot>((resolve, reject) => {
        const onAbort = () => {
          const i = this.#queue.indexOf(waiter);
          if (i >= 0) this.#queue.splice(i, 1);
          reject(signal.reason);
        };
        const waiter: Waiter = { prompt, resolve, reject, cleanup: () => signal.removeEventListener('abort', onAbort) };
        signal.addEventListener('abort', onAbort, { once: true });
        this.#queue.push(waiter);
      });
    }
    slot.busy = true;
    const common = commonPrefix(slot.session.tokens, prompt);
    if (common < slot.session.nTokens) slot.session.truncate(common);
    // A session with sliding-window layers may keep fewer tokens than asked.
    return { slot, common: Math.min(common, slot.session.nTokens) };
  }

  /** Gives a slot back (after its generation has fully stopped): to the first waiter, else idle. */
  release(slot: Slot): void {
    const next = this.#queue.shift();
    if (next && !slot.session.disposed) {
      next.cleanup();
      next.resolve(slot);  // handed over still busy, so no other request takes it in between
      return;
    }
    slot.busy = false;
    slot.idleSince = performance.now();
    if (next) {
      next.cleanup();
      next.reject(new HttpError(503, 'The server is shutting down', 'server_error', null, 'shutting_down'));
    }
  }

  /** Refuses new requests and fails the waiting ones. */
  close(): void {
    this.#closed = true;
    for (const w of this.#queue.splice(0)) {
      w.cleanup();
      w.reject(new HttpError(503, 'The server is shutting down', 'server_error', null, 'shutting_down'));
    }
  }
}
