/** `sparrow inspect FILE`: a readable summary of a GGUF file, its tensors, or JSON. */
import { inspectGGUF, type GGUFInfo, type GGUFMetadataValue } from '../../gguf.js';
import { flagHelp, parseFlags, UsageError } from '../flags.js';

export const summary = 'describe a GGUF file (architecture, size, quant mix, tokenizer)';
const FLAGS = {
  tensors: { kind: 'boolean' as const, help: 'list every tensor (name, type, shape, bytes)' },
  json: { kind: 'boolean' as const, help: 'print the parsed header as JSON (metadata and tensors)' },
};

export const usage = `usage: sparrow inspect FILE [--tensors] [--json]

options:
${flagHelp(FLAGS)}`;

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2)} ${units[i]}`;
}

function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(n);
}

function scalar(v: GGUFMetadataValue | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return `[${v.length} items]`;
  return String(v);
}

/** The facts the summary shows, computed from the header alone. */
export function summarize(g: GGUFInfo) {
  const m = g.metadata;
  const arch = typeof m['general.architecture'] === 'string' ? (m['general.architecture'] as string) : undefined;
  let params = 0;
  let tensorBytes = 0;
  const mix = new Map<string, { count: number; bytes: number }>();
  for (const t of g.tensors) {
    params += t.shape.reduce((a, b) => a * b, 1);
    tensorBytes += t.bytes;
    const e = mix.get(t.type) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += t.bytes;
    mix.set(t.type, e);
  }
  const tokens = m['tokenizer.ggml.tokens'];
  return {
    architecture: arch,
    name: scalar(m['general.name']),
    params,
    tensorBytes,
    mix: [...mix.entries()].sort((a, b) => b[1].bytes - a[1].bytes),
    contextLength: arch ? scalar(m[`${arch}.context_length`]) : undefined,
    tokenizer: scalar(m['tokenizer.ggml.model']),
    preTokenizer: scalar(m['tokenizer.ggml.pre']),
    vocabSize: Array.isArray(tokens) ? tokens.length : undefined,
    chatTemplate: typeof m['tokenizer.chat_template'] === 'string',
  };
}

export async function run(args: string[]): Promise<number> {
  const { flags, positional } = parseFlags(args, FLAGS);
  if (positional.length !== 1) throw new UsageError(`expected one FILE (got ${positional.length} arguments); see sparrow inspect --help`);
  const g = inspectGGUF(positional[0]);
  if (flags.json) {
    console.log(JSON.stringify(g, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2));
    return 0;
  }
  const s = summarize(g);
  const pct = (b: number) => (s.tensorBytes ? ((100 * b) / s.tensorBytes).toFixed(1) : '0');
  const rows: [string, string][] = [
    ['file', positional[0]],
    ['format', `GGUF v${g.version}, ${g.tensors.length} tensors, ${Object.keys(g.metadata).length} metadata keys`],
    ['architecture', s.architecture ?? '(none)'],
    ['name', s.name ?? '(none)'],
    ['parameters', formatCount(s.params)],
    ['size', `${formatBytes(g.fileSize)} file, ${formatBytes(s.tensorBytes)} of tensor data`],
    ['quant mix', s.mix.map(([t, e]) => `${t} ${pct(e.bytes)}% (${e.count})`).join(', ') || '(no tensors)'],
    ['context length', s.contextLength ?? '(not set)'],
    ['tokenizer', s.tokenizer ? `${s.tokenizer}${s.preTokenizer ? ` (pre: ${s.preTokenizer})` : ''}, ${s.vocabSize ?? '?'} tokens` : '(none)'],
    ['chat template', s.chatTemplate ? 'yes' : 'no'],
  ];
  for (const [k, v] of rows) console.log(`${k.padEnd(15)} ${v}`);
  if (flags.tensors) {
    console.log('');
    const w = Math.max(4, ...g.tensors.map((t) => t.name.length));
    console.log(`${'name'.padEnd(w)}  ${'type'.padEnd(7)} ${'shape'.padEnd(22)} bytes`);
    for (const t of g.tensors)
      console.log(`${t.name.padEnd(w)}  ${t.type.padEnd(7)} ${`[${t.shape.join(', ')}]`.padEnd(22)} ${formatBytes(t.bytes)}`);
  }
  return 0;
}
