/**
 * A small seeded pseudo-random generator: xoshiro128** (Blackman & Vigna), seeded through
 * splitmix32 so that any 53-bit integer seed gives a well-mixed state. It is not
 * cryptographic; it only has to be fast, reproducible run after run, and uniform.
 */
import { randomInt } from 'node:crypto';

/** splitmix32 step: spreads a 32-bit counter into a well-mixed 32-bit word. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

export class Xoshiro128 {
  private a = 0;
  private b = 0;
  private c = 0;
  private d = 0;

  /** `seed`: a non-negative integer up to 2^53 - 1. */
  constructor(seed: number) {
    this.seed(seed);
  }

  seed(seed: number): void {
    // Fold the high and low 32-bit halves of the seed into the splitmix state.
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    const st = { s: lo ^ Math.imul(hi, 0x27d4eb2d) ^ hi };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;  // the all-zero state is a fixed point
  }

  /** The next 32-bit unsigned word. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return r;
  }

  /** A float uniform in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextU32() >>> 5;  // 27 bits
    const lo = this.nextU32() >>> 6;  // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A fresh random seed for callers that did not give one. */
export function randomSeed(): number {
  return randomInt(0, 2 ** 48 - 1);
}
