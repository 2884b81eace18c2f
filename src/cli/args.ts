/** A small, strict argument parser: known flags only, clear errors for anything else. */
import { SparrowError } from '../errors.js';

export interface FlagSpec {
  [flag: string]: 'boolean' | 'string' | 'number';
}

export interface ParsedArgs {
  flags: Record<string, string | number | boolean>;
  positional: string[];
}

export function parseArgs(args: string[], spec: FlagSpec, usage: string): ParsedArgs {
  const flags: Record<string, string | number | boolean> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq < 0 ? undefined : eq);
    const kind = spec[name];
    if (!kind) throw new SparrowError(`unknown option --${name}\n${usage}`, 'ERR_INVALID_ARG');
    if (kind === 'boolean') {
      if (eq >= 0) throw new SparrowError(`--${name} takes no value`, 'ERR_INVALID_ARG');
      flags[name] = true;
      continue;
    }
    const value = eq >= 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined) throw new SparrowError(`--${name} needs a value`, 'ERR_INVALID_ARG');
    if (kind === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new SparrowError(`--${name} must be a number (got '${value}')`, 'ERR_INVALID_ARG');
      flags[name] = n;
    } else {
      flags[name] = value;
    }
  }
  return { flags, positional };
}
