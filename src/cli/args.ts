/** A small, strict argument parser: known flags only, clear errors for anything else. */
import { UsageError } from './flags.js';

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
    if (!kind) throw new UsageError(`unknown option --${name} (see --help)`);
    if (kind === 'boolean') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const value = eq >= 0 ? a.slice(eq + 1) : args[++i];
    if (value === undefined) throw new UsageError(`--${name} needs a value`);
    if (kind === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number (got '${value}')`);
      flags[name] = n;
    } else {
      flags[name] = value;
    }
  }
  return { flags, positional };
}
