/**
 * `sparrow inspect FILE`: a readable summary of a GGUF file, its tensors, or JSON, and
 * whether sparrow can run it (if not, exactly what is missing: the architecture, a tensor
 * type, a tensor).
 */
import { inspectGGUF, type GGUFInfo, type GGUFMetadataValue } from '../../gguf.js';
import { flagHelp, parseFlags, UsageError } from '../flags.js';
import { architectureTable, systemInfo, type ArchitectureRow, type TensorNeed } from '../../system.js';

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

/** What this build of sparrow computes with: ggml type names and architectures. */
export interface Support {
  types: string[];
  architectures: string[];
  /** The loader's architecture table (which tensors each one reads); default: this build's. */
  architectureTable?: ArchitectureRow[];
}

/** The build's own answer, from the addon (the Matrix factory and the model loader). */
export function nativeSupport(): Support {
  const info = systemInfo();
  return { types: info.weightTypes, architectures: info.architectures, architectureTable: architectureTable() };
}

/** One reason a file cannot run: the missing architecture, tensor type, or tensor. */
export interface Missing {
  kind: 'architecture' | 'type' | 'tensor';
  /** The architecture name, the type name, or the tensor name. */
  name: string;
  /** One line for people. */
  detail: string;
}

/** Vectors (norms, biases) are read as floats: these are the types the loader converts. */
const VECTOR_TYPES = new Set(['F32', 'F16', 'BF16']);

/**
 * The tensors the loader requires of the file `g`, derived from its row of the native
 * architecture table as the loader (native/model/model.cpp) reads them: the embedding and
 * output norm; per layer the attention norm, Q/K/V (or the stacked attn_qkv where the
 * architecture reads it and the file has it), the attention output, the feed-forward
 * norm and weights (experts when the architecture has them and <arch>.expert_count > 0,
 * a stacked gate+up where it splits ffn_up); and every optional tensor the row marks
 * required (biases, Q/K norms, post-norms, LongRoPE factors, ...).
 */
function requiredTensors(row: ArchitectureRow, g: GGUFInfo): string[] {
  const m = g.metadata;
  const int = (key: string) => {
    const v = Number(m[`${row.name}.${key}`] ?? 0);
    return Number.isSafeInteger(v) && v > 0 ? v : 0;
  };
  const nLayers = int('block_count');
  const have = new Set(g.tensors.map((t) => t.name));
  const req = (need: TensorNeed) => need === 'required';
  const out = ['token_embd.weight', 'output_norm.weight'];
  if (req(row.output)) out.push('output.weight');
  if (req(row.ropeFreqs)) out.push('rope_freqs.weight');
  if (req(row.longrope)) out.push('rope_factors_short.weight', 'rope_factors_long.weight');
  const experts = row.moe === 'required' || (row.moe === 'optional' && int('expert_count') > 0);
  for (let l = 0; l < nLayers; l++) {
    const b = `blk.${l}.`;
    const layer = ['attn_norm.weight'];
    if (row.attnQkv === 'required' || (row.attnQkv === 'optional' && have.has(`${b}attn_qkv.weight`))) layer.push('attn_qkv.weight');
    else layer.push('attn_q.weight', 'attn_k.weight', 'attn_v.weight');
    layer.push('attn_output.weight');
    if (req(row.qkvBias)) layer.push('attn_q.bias', 'attn_k.bias', 'attn_v.bias');
    if (req(row.outBias)) layer.push('attn_output.bias');
    if (req(row.qkNorm)) layer.push('attn_q_norm.weight', 'attn_k_norm.weight');
    if (req(row.attnSinks)) layer.push('attn_sinks.weight');
    if (req(row.postNorms)) layer.push('post_attention_norm.weight', 'post_ffw_norm.weight');
    layer.push(`${row.ffnNorm}.weight`);
    if (experts) {
      layer.push('ffn_gate_inp.weight', 'ffn_gate_exps.weight', 'ffn_up_exps.weight', 'ffn_down_exps.weight');
      if (req(row.moeBias)) layer.push('ffn_gate_inp.bias', 'ffn_gate_exps.bias', 'ffn_up_exps.bias', 'ffn_down_exps.bias');
    } else if (row.ffnUpGate) layer.push('ffn_up.weight', 'ffn_down.weight');
    else layer.push('ffn_gate.weight', 'ffn_up.weight', 'ffn_down.weight');
    for (const n of layer) out.push(b + n);
  }
  return out;
}

/**
 * Whether sparrow can run the file whose header is `g`, and if not, what is missing:
 * an architecture the loader has no row for, tensor types the kernels cannot compute with
 * (one entry per type, naming its first tensor), and required tensors absent from the file.
 */
export function checkSupport(g: GGUFInfo, support: Support = nativeSupport()): { runnable: boolean; missing: Missing[] } {
  const missing: Missing[] = [];
  const arch = typeof g.metadata['general.architecture'] === 'string' ? (g.metadata['general.architecture'] as string) : undefined;
  if (!arch)
    missing.push({ kind: 'architecture', name: '', detail: `no general.architecture key (sparrow runs: ${support.architectures.join(', ')})` });
  else if (!support.architectures.includes(arch))
    missing.push({ kind: 'architecture', name: arch, detail: `architecture '${arch}' (sparrow runs: ${support.architectures.join(', ')})` });
  const types = new Set(support.types);
  const badTypes = new Map<string, { count: number; first: string; vector: boolean }>();
  for (const t of g.tensors) {
    const vector = t.shape.length === 1;
    if (vector ? VECTOR_TYPES.has(t.type) : types.has(t.type)) continue;
    const key = `${t.type}${vector ? ' (vector)' : ''}`;
    const e = badTypes.get(key) ?? { count: 0, first: t.name, vector };
    e.count++;
    badTypes.set(key, e);
  }
  for (const [key, e] of badTypes) {
    const type = key.replace(' (vector)', '');
    const what = e.vector ? `tensor type ${type} for a vector (vectors must be F32, F16 or BF16)` : `tensor type ${type}`;
    missing.push({
      kind: 'type',
      name: type,
      detail: `${what}: ${e.count} tensor${e.count === 1 ? '' : 's'}, first '${e.first}' (sparrow computes with: ${support.types.join(', ')})`,
    });
  }
  const row = arch && support.architectures.includes(arch) ? (support.architectureTable ?? architectureTable()).find((r) => r.name === arch) : undefined;
  if (row) {
    const required = requiredTensors(row, g);
    const have = new Set(g.tensors.map((t) => t.name));
    for (const name of required)
      if (!have.has(name)) missing.push({ kind: 'tensor', name, detail: `tensor '${name}' (required by ${arch})` });
  }
  return { runnable: missing.length === 0, missing };
}

export async function run(args: string[]): Promise<number> {
  const { flags, positional } = parseFlags(args, FLAGS);
  if (positional.length !== 1) throw new UsageError(`expected one FILE (got ${positional.length} arguments); see sparrow inspect --help`);
  const g = inspectGGUF(positional[0]);
  const check = checkSupport(g);
  if (flags.json) {
    console.log(JSON.stringify({ ...g, sparrow: check }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2));
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
    ['runs in sparrow', check.runnable ? 'yes' : 'no, missing:'],
    // at most 20 missing tensors by name, then a count (a file for another family lacks many)
    ...check.missing
      .filter((m, i, all) => m.kind !== 'tensor' || all.slice(0, i).filter((x) => x.kind === 'tensor').length < 20)
      .map((m): [string, string] => ['', `- ${m.detail}`]),
  ];
  const moreTensors = check.missing.filter((m) => m.kind === 'tensor').length - 20;
  if (moreTensors > 0) rows.push(['', `- and ${moreTensors} more missing tensors`]);
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
