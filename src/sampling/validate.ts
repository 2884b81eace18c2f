/**
 * Option checks shared by the sampling, generation and chat modules. Each throws a
 * SparrowError with code ERR_INVALID_ARG whose message names the option and what it got.
 */
import { SparrowError } from '../errors.js';

export function invalidArg(name: string, expected: string, got: unknown): SparrowError {
  return new SparrowError(`${name} must be ${expected} (got ${describe(got)})`, 'ERR_INVALID_ARG');
}

function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : typeof v;
}

/** A finite number in [min, max]; `undefined` gives `fallback`. */
export function numberOption(name: string, v: unknown, fallback: number, min = -Infinity, max = Infinity): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    const range =
      min === -Infinity && max === Infinity ? 'a finite number'
      : max === Infinity ? `a finite number >= ${min}`
      : min === -Infinity ? `a finite number <= ${max}`
      : `a number between ${min} and ${max}`;
    throw invalidArg(name, range, v);
  }
  return v;
}

/** An integer in [min, max]; `undefined` gives `fallback`. */
export function intOption(name: string, v: unknown, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer between ${min} and ${max}`;
    throw invalidArg(name, range, v);
  }
  return v;
}

export function boolOption(name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw invalidArg(name, 'a boolean', v);
  return v;
}

/** Options objects: undefined or a plain object. */
export function optionsObject<T extends object>(name: string, v: unknown): Partial<T> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidArg(name, 'an object', v);
  return v as Partial<T>;
}

/** Rejects keys that are not in `known`, so a typo ("temprature") is an error, not a silent default. */
export function rejectUnknownKeys(name: string, obj: object, known: readonly string[]): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) {
      throw new SparrowError(
        `${name} has an unknown option "${key}" (known: ${known.join(', ')})`,
        'ERR_INVALID_ARG',
      );
    }
  }
}
