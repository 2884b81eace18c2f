/**
 * Flags of the `sparrow` commands: each command declares its flags once (kind, range,
 * help text); the parser checks every value and the help text is written from the same
 * table. A bad command line is a UsageError: one line on stderr and exit code 2.
 */
import { SparrowError } from '../errors.js';

/** A bad command line (unknown flag, bad value, missing argument): exit code 2. */
export class UsageError extends SparrowError {
  constructor(message: string) {
    super(message, 'ERR_USAGE');
    this.name = 'UsageError';
  }
}

export type FlagKind = 'boolean' | 'string' | 'int' | 'number';

export interface FlagDef {
  kind: FlagKind;
  /** One-letter alias: `-o` for `--output`. */
  short?: string;
  /** Placeholder in the help text (`N`, `DIR`). */
  value?: string;
  help: string;
  /** May be given more than once; the values are collected in an array. */
  repeat?: boolean;
  /** Inclusive bounds for int / number flags. */
  min?: number;
  max?: number;
  /** For number flags: the lower bound itself is not allowed (e.g. top-p > 0). */
  minExclusive?: boolean;
  /** For string flags: a check that returns an error text, or undefined when the value is fine. */
  check?: (v: string) => string | undefined;
}

export type FlagTable = Record<string, FlagDef>;
export type FlagValues = Record<string, string | number | boolean | string[] | undefined>;

/** Flags every command takes. */
export const COMMON_FLAGS: FlagTable = {
  help: { kind: 'boolean', short: 'h', help: 'show this help' },
  version: { kind: 'boolean', short: 'V', help: 'print the sparrow-llm version' },
};

function parseValue(name: string, def: FlagDef, raw: string): string | number {
  if (def.kind === 'string') {
    const err = def.check?.(raw);
    if (err) throw new UsageError(`--${name}: ${err}`);
    return raw;
  }
  const n = raw.trim() === '' ? NaN : Number(raw);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number (got '${raw}')`);
  if (def.kind === 'int' && !Number.isInteger(n)) throw new UsageError(`--${name} must be an integer (got '${raw}')`);
  const lo = def.min;
  const hi = def.max;
  const below = lo !== undefined && (def.minExclusive ? n <= lo : n < lo);
  if (below || (hi !== undefined && n > hi)) {
    const range =
      lo !== undefined && hi !== undefined
        ? `${def.minExclusive ? 'above' : 'from'} ${lo} ${def.minExclusive ? 'and at most' : 'to'} ${hi}`
        : lo !== undefined
          ? `${def.minExclusive ? 'above' : 'at least'} ${lo}`
          : `at most ${hi}`;
    throw new UsageError(`--${name} must be ${range} (got '${raw}')`);
  }
  return n;
}

/**
 * Parses `args` against `table` (plus --help / --version). Accepts `--flag value`,
 * `--flag=value`, `-x value`, and `--` to end the flags.
 */
export function parseFlags(args: readonly string[], table: FlagTable): { flags: FlagValues; positional: string[] } {
  const all: FlagTable = { ...COMMON_FLAGS, ...table };
  const byShort = new Map(Object.entries(all).flatMap(([name, d]) => (d.short ? [[d.short, name] as const] : [])));
  const flags: FlagValues = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    let name: string | undefined;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = a.slice(2, eq < 0 ? undefined : eq);
      if (eq >= 0) inline = a.slice(eq + 1);
      if (!all[name]) throw new UsageError(`unknown option --${name}`);
    } else if (/^-[A-Za-z]$/.test(a)) {
      name = byShort.get(a.slice(1));
      if (!name) throw new UsageError(`unknown option ${a}`);
    } else {
      positional.push(a);
      continue;
    }
    const def = all[name]!;
    if (def.kind === 'boolean') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const raw = inline ?? args[++i];
    if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    const v = parseValue(name, def, raw);
    if (def.repeat) flags[name] = [...((flags[name] as string[] | undefined) ?? []), String(v)];
    else if (flags[name] !== undefined) throw new UsageError(`--${name} was given twice`);
    else flags[name] = v;
  }
  return { flags, positional };
}

/** The options part of a help text, from the flag table. */
export function flagHelp(table: FlagTable): string {
  const rows = Object.entries({ ...table, ...COMMON_FLAGS }).map(([name, d]) => {
    const left = `${d.short ? `-${d.short}, ` : '    '}--${name}${d.kind === 'boolean' ? '' : ` ${d.value ?? 'N'}`}`;
    return [left, d.help] as const;
  });
  const w = Math.max(...rows.map(([l]) => l.length));
  return rows.map(([l, h]) => `  ${l.padEnd(w)}  ${h}`).join('\n');
}
