/**
 * Test doubles for the generation loop: a byte-level tokenizer (ids 0..255 are bytes,
 * 256 is EOS, 257 is a "stop" marker token) and a session whose "model" follows a
 * script: the next token is a function of the tokens in its cache. They record what
 * they were asked to do, so the tests can check prefix reuse and context shifts.
 */
import { SparrowError } from '../../src/errors.js';
import type { DecoderLike, SessionLike, TokenInput, TokenizerLike } from '../../src/generation/types.js';

export const EOS = 256;
export const MARK = 257;
export const VOCAB = 260;

export class ByteTokenizer implements TokenizerLike {
  tokenize(text: string, options?: { addSpecial?: boolean }): number[] {
    const bytes = [...Buffer.from(text, 'utf8')];
    return options?.addSpecial ? [258, ...bytes] : bytes;  // 258 plays BOS
  }
  createDecoder(): DecoderLike {
    // A plain incremental UTF-8 decoder (node's TextDecoder with stream: true).
    const d = new TextDecoder('utf-8');
    return {
      push: (id: number) => (id < 256 ? d.decode(new Uint8Array([id]), { stream: true }) : ''),
      flush: () => d.decode(),
    };
  }
  isEog(id: number): boolean {
    return id === EOS;
  }
}

export function bytesOf(s: string): number[] {
  return [...Buffer.from(s, 'utf8')];
}

/** A session whose next token is `next(cachedTokens)`; evaluate resolves after a macrotask. */
export class ScriptedSession implements SessionLike {
  cache: number[] = [];
  evaluated: number[][] = [];   // each evaluate call's tokens
  truncations: number[] = [];
  disposed = false;
  private inFlight: { reject: (e: unknown) => void } | null = null;

  constructor(
    private readonly next: (cache: readonly number[]) => number,
    readonly contextSize = 512,
  ) {}

  get tokens(): number[] {
    if (this.disposed) throw new SparrowError('the session has been disposed', 'ERR_DISPOSED');
    return this.cache.slice();
  }

  truncate(n: number): void {
    if (this.disposed) throw new SparrowError('the session has been disposed', 'ERR_DISPOSED');
    if (n > this.cache.length) throw new Error('bad truncate');
    this.truncations.push(n);
    this.cache.length = n;
  }

  evaluate(tokens: TokenInput): Promise<Float32Array> {
    if (this.disposed) return Promise.reject(new SparrowError('the session has been disposed', 'ERR_DISPOSED'));
    if (this.inFlight) return Promise.reject(new SparrowError('busy', 'ERR_SESSION_BUSY'));
    if (tokens.length === 0) return Promise.reject(new Error('empty evaluate'));
    if (this.cache.length + tokens.length > this.contextSize) {
      return Promise.reject(new SparrowError('context full', 'ERR_CONTEXT_FULL'));
    }
    return new Promise((resolve, reject) => {
      this.inFlight = { reject };
      setImmediate(() => {
        if (!this.inFlight) return;  // rejected by dispose
        this.inFlight = null;
        this.cache.push(...tokens);
        this.evaluated.push([...tokens]);
        const logits = new Float32Array(VOCAB).fill(-10);
        logits[this.next(this.cache)] = 10;
        resolve(logits);
      });
    });
  }

  dispose(): void {
    this.disposed = true;
    if (this.inFlight) {
      const f = this.inFlight;
      this.inFlight = null;
      f.reject(new SparrowError('the session has been disposed', 'ERR_DISPOSED'));
    }
  }
}

/** A ScriptedSession with a native context shift: drops cache entries [keep, keep + drop). */
export class ShiftingSession extends ScriptedSession {
  shifts: Array<[number, number]> = [];
  shift(keep: number, drop: number): Promise<void> {
    if (this.disposed) return Promise.reject(new SparrowError('the session has been disposed', 'ERR_DISPOSED'));
    if (drop < 1 || keep + drop > this.cache.length) return Promise.reject(new Error('bad shift'));
    this.shifts.push([keep, drop]);
    this.cache.splice(keep, drop);
    return new Promise((resolve) => setImmediate(resolve));
  }
}

/** A script that spells `text` as bytes after the prompt, then EOS. */
export function spell(text: string, promptLength: () => number): (cache: readonly number[]) => number {
  const b = bytesOf(text);
  return (cache) => {
    const i = cache.length - promptLength();
    return i < b.length ? b[i] : EOS;
  };
}
