/**
 * A bench report built from made-up measurements through the real report code (the
 * figures are invented; the ratios, medians and spreads are computed as in a real run).
 */
import { addRatios, engineReport, type BenchReport, type ModelReport } from '../../bench/report.js';
import type { EngineName } from '../../bench/options.js';
import type { WorkResult } from '../../bench/worker.js';

export function round(engine: EngineName, pp: number, tg: number, load = 200, rss = 700 * 2 ** 20): WorkResult {
  return {
    engine,
    version: engine === 'sparrow' ? 'sparrow-llm 0.1.0 (avx512)' : 'node-llama-cpp 3.21.1 (llama.cpp b0000, cpu)',
    load_ms: load,
    ttft_ms: [(512 * 1000) / pp],
    pp_tps: [pp],
    tg_tps: [tg],
    rss_bytes: rss,
  };
}

export const BANDWIDTH = 40e9;

function model(name: string, weightBytes: number, s: WorkResult[], l: WorkResult[]): ModelReport {
  const m: ModelReport = {
    name,
    file: `/cache/${name.replace(' ', '-')}.gguf`,
    file_bytes: weightBytes * 1.05,
    weight_bytes_per_token: weightBytes,
    engines: {
      sparrow: engineReport(s, weightBytes, BANDWIDTH, []),
      'llama.cpp': engineReport(l, weightBytes, BANDWIDTH, []),
    },
  };
  addRatios(m);
  return m;
}

export function cannedReport(): BenchReport {
  return {
    schema: 1,
    date: '2025-01-01T00:00:00.000Z',
    command: 'npx bench --html report.html',
    machine: {
      cpu: 'Test CPU <with> "markup" & co',
      logical_cpus: 8,
      memory_bytes: 16 * 2 ** 30,
      os: 'Linux 6.1 x64',
      node: 'v20.20.0',
      isa: 'avx512',
      bandwidth_bytes_per_s: BANDWIDTH,
      bandwidth_method: 'canned',
    },
    settings: { pp: 512, tg: 128, rounds: 3, threads: 8, seed: 1, quick: false },
    engines: [
      { name: 'sparrow', available: true, version: 'sparrow-llm 0.1.0 (avx512)' },
      { name: 'llama.cpp', available: true, version: 'node-llama-cpp 3.21.1 (llama.cpp b0000, cpu)' },
    ],
    models: [
      model(
        'tinyllama-1.1b q4_0',
        600 * 2 ** 20,
        [round('sparrow', 120, 30, 150, 650 * 2 ** 20), round('sparrow', 110, 31, 160, 650 * 2 ** 20), round('sparrow', 125, 29, 140, 651 * 2 ** 20)],
        [round('llama.cpp', 100, 25), round('llama.cpp', 105, 26), round('llama.cpp', 98, 24)],
      ),
      model(
        'tinyllama-1.1b q4_k_m',
        640 * 2 ** 20,
        [round('sparrow', 80, 20, 400), round('sparrow', 82, 21, 420), round('sparrow', 78, 19, 390)],
        [round('llama.cpp', 100, 24), round('llama.cpp', 101, 23), round('llama.cpp', 99, 25)],
      ),
    ],
    notes: ['a canned report for the tests'],
  };
}
