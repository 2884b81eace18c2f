/**
 * The bench report: its JSON shape (what `--json` prints and `--html` draws), and the
 * terminal table. Building the report from raw measurements lives here too, so the
 * ratio rules are in one place.
 */
import { pairedRatio, summarize, type Summary } from './stats.js';
import type { EngineName } from './options.js';
import type { WorkResult } from './worker.js';

/** The figures measured for each model and engine. */
export const FIGURES = ['load_ms', 'pp_tps', 'tg_tps', 'ttft_ms', 'rss_bytes', 'bandwidth_fraction'] as const;
export type Figure = (typeof FIGURES)[number];

export const HIGHER_IS_BETTER: Record<Figure, boolean> = {
  load_ms: false,
  pp_tps: true,
  tg_tps: true,
  ttft_ms: false,
  rss_bytes: false,
  bandwidth_fraction: true,
};

export interface EngineReport {
  version: string;
  /** Medians over the rounds (null when the engine failed). */
  load_ms: number | null;
  pp_tps: number | null;
  tg_tps: number | null;
  ttft_ms: number | null;
  rss_bytes: number | null;
  /** Decode speed as a fraction of the memory bandwidth: weight bytes per token x tg_tps / bandwidth. */
  bandwidth_fraction: number | null;
  /** Median, min, max and every sample of each figure. */
  stats: Record<Figure, Summary>;
  /** This engine / llama.cpp, each ratio from one round's pair; null without llama.cpp figures. */
  ratio: Record<Figure, Summary> | null;
  /** Why a round failed, when one did. */
  errors: string[];
  /**
   * sparrow at a sparsity level (`--sparsity`): the level, and the median over the rounds of
   * the fraction of the layer matrices' weight bytes its decode steps skipped (measured by
   * the kernels). bandwidth_fraction still counts the dense bytes per token.
   */
  sparsity?: number;
  skipped_fraction?: number | null;
}

/** The report key of sparrow's run at a sparsity level. */
export function sparsityRunName(level: number): string {
  return `sparrow sparsity ${level}`;
}

export interface ModelReport {
  /** 'tinyllama-1.1b q4_0', or the file's name. */
  name: string;
  file: string;
  file_bytes: number;
  /** Bytes of weights one decode step reads (every matrix, one embedding row). */
  weight_bytes_per_token: number;
  /** Per engine, and per sparrow sparsity level (sparsityRunName). */
  engines: Partial<Record<string, EngineReport>>;
}

export interface BenchReport {
  schema: 1;
  date: string;
  command: string;
  machine: {
    cpu: string;
    logical_cpus: number;
    memory_bytes: number;
    os: string;
    node: string;
    isa: string | null;
    bandwidth_bytes_per_s: number | null;
    bandwidth_method: string;
  };
  settings: { pp: number; tg: number; rounds: number; threads: number; seed: number; quick: boolean };
  engines: { name: EngineName; available: boolean; version?: string; note?: string }[];
  models: ModelReport[];
  notes: string[];
}

/** Turns the rounds of one engine on one model (null = that round failed) into its report. */
export function engineReport(
  rounds: (WorkResult | null)[],
  weightBytesPerToken: number,
  bandwidth: number | null,
  errors: string[],
): EngineReport {
  // Each round contributes its median iteration (one iteration per round by default).
  const per = (f: (r: WorkResult) => number | number[]): number[] =>
    rounds.map((r) => {
      if (!r) return NaN;
      const v = f(r);
      return Array.isArray(v) ? summarize(v).median : v;
    });
  const tg = per((r) => r.tg_tps);
  const samples: Record<Figure, number[]> = {
    load_ms: per((r) => r.load_ms),
    pp_tps: per((r) => r.pp_tps),
    tg_tps: tg,
    ttft_ms: per((r) => r.ttft_ms),
    rss_bytes: per((r) => r.rss_bytes),
    bandwidth_fraction: tg.map((t) => (bandwidth ? (weightBytesPerToken * t) / bandwidth : NaN)),
  };
  const stats = Object.fromEntries(FIGURES.map((f) => [f, summarize(samples[f])])) as Record<Figure, Summary>;
  const med = (f: Figure) => (Number.isFinite(stats[f].median) ? stats[f].median : null);
  const level = rounds.find((r) => r?.sparsity !== undefined)?.sparsity;
  const skipped = summarize(rounds.map((r) => r?.skipped_fraction ?? NaN)).median;
  return {
    ...(level !== undefined ? { sparsity: level, skipped_fraction: Number.isFinite(skipped) ? skipped : null } : {}),
    version: rounds.find((r) => r)?.version ?? 'unknown',
    load_ms: med('load_ms'),
    pp_tps: med('pp_tps'),
    tg_tps: med('tg_tps'),
    ttft_ms: med('ttft_ms'),
    rss_bytes: med('rss_bytes'),
    bandwidth_fraction: med('bandwidth_fraction'),
    stats,
    ratio: null,
    errors,
  };
}

/** Fills every engine's `ratio` against llama.cpp on the same model (llama.cpp's own is 1). */
export function addRatios(model: ModelReport): void {
  const ref = model.engines['llama.cpp'];
  for (const e of Object.values(model.engines)) {
    if (!e) continue;
    if (!ref || ref.pp_tps === null) {
      e.ratio = null;
      continue;
    }
    const ratio = {} as Record<Figure, Summary>;
    let any = false;
    for (const f of FIGURES) {
      const r = pairedRatio(e.stats[f].samples, ref.stats[f].samples);
      ratio[f] = r ?? summarize([]);
      any ||= r !== null;
    }
    e.ratio = any ? ratio : null;
  }
}

// ---------------------------------------------------------------------------------------
// Formatting

export function figureLabel(f: Figure, s: { pp: number; tg: number }): string {
  switch (f) {
    case 'load_ms':
      return 'load';
    case 'pp_tps':
      return `pp${s.pp}`;
    case 'tg_tps':
      return `tg${s.tg}`;
    case 'ttft_ms':
      return 'first token';
    case 'rss_bytes':
      return 'peak RSS';
    case 'bandwidth_fraction':
      return 'decode / bandwidth';
  }
}

export function formatValue(f: Figure, v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  switch (f) {
    case 'load_ms':
    case 'ttft_ms':
      return v >= 10_000 ? `${(v / 1000).toFixed(1)} s` : `${v.toFixed(v < 10 ? 1 : 0)} ms`;
    case 'pp_tps':
    case 'tg_tps':
      return `${v.toFixed(v < 10 ? 2 : 1)} tok/s`;
    case 'rss_bytes':
      return v >= 2 ** 30 ? `${(v / 2 ** 30).toFixed(2)} GiB` : `${(v / 2 ** 20).toFixed(0)} MiB`;
    case 'bandwidth_fraction':
      return `${(v * 100).toFixed(0)} %`;
  }
}

function spread(f: Figure, s: Summary | undefined): string {
  if (!s || s.samples.filter(Number.isFinite).length < 2) return '';
  const lo = formatValue(f, s.min), hi = formatValue(f, s.max);
  const unit = (x: string) => x.replace(/^[^ ]* ?/, '');
  // '41.0-43.2 tok/s', or both units when they differ ('950 ms-1.2 s').
  return ` (${unit(lo) === unit(hi) ? lo.replace(/ .*/, '') : lo}-${hi})`;
}

export function formatRatio(r: Summary | undefined): string {
  if (!r || !Number.isFinite(r.median)) return '-';
  const n = r.samples.filter(Number.isFinite).length;
  return n < 2 ? `${r.median.toFixed(2)}x` : `${r.median.toFixed(2)}x (${r.min.toFixed(2)}-${r.max.toFixed(2)})`;
}

/** Whether sparrow is better on this figure (ratio > 1 for speeds, < 1 for times and memory). */
export function sparrowWins(f: Figure, ratio: number): boolean {
  return HIGHER_IS_BETTER[f] ? ratio > 1 : ratio < 1;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n');
}

export function formatTable(report: BenchReport): string {
  const out: string[] = [];
  const m = report.machine;
  const bw = m.bandwidth_bytes_per_s ? `${(m.bandwidth_bytes_per_s / 1e9).toFixed(1)} GB/s` : 'not measured';
  out.push(`${m.cpu}, ${m.logical_cpus} logical CPUs, ${report.settings.threads} thread(s), kernels: ${m.isa ?? '?'}, memory bandwidth ${bw}`);
  for (const e of report.engines) out.push(`  ${e.name}: ${e.available ? e.version ?? 'available' : `not measured (${e.note})`}`);
  out.push(`  medians over ${report.settings.rounds} round(s), min-max in brackets; ratio = sparrow / llama.cpp, paired by round`);
  const rows: string[][] = [['model', 'figure', 'sparrow', 'llama.cpp', 'ratio']];
  for (const model of report.models) {
    let first = true;
    for (const f of FIGURES) {
      const s = model.engines.sparrow, l = model.engines['llama.cpp'];
      const r = s?.ratio?.[f];
      const mark = r && Number.isFinite(r.median) && f !== 'bandwidth_fraction' ? (sparrowWins(f, r.median) ? ' +' : ' -') : '';
      rows.push([
        first ? model.name : '',
        figureLabel(f, report.settings),
        s ? formatValue(f, s[f]) + spread(f, s.stats[f]) : '-',
        l ? formatValue(f, l[f]) + spread(f, l.stats[f]) : '-',
        formatRatio(r) + mark,
      ]);
      first = false;
    }
    for (const e of Object.values(model.engines)) {
      if (!e || e.sparsity === undefined) continue;
      const l = model.engines['llama.cpp'];
      const skipped = e.skipped_fraction == null ? '?' : `${(100 * e.skipped_fraction).toFixed(1)}%`;
      rows.push([
        '',
        `${figureLabel('tg_tps', report.settings)} at sparsity ${e.sparsity} (skipped ${skipped})`,
        formatValue('tg_tps', e.tg_tps) + spread('tg_tps', e.stats.tg_tps),
        l ? formatValue('tg_tps', l.tg_tps) + spread('tg_tps', l.stats.tg_tps) : '-',
        formatRatio(e.ratio?.tg_tps),
      ]);
    }
  }
  out.push('', table(rows));
  out.push('', '(+ sparrow better, - llama.cpp better)');
  for (const n of report.notes) out.push(`note: ${n}`);
  return out.join('\n');
}
