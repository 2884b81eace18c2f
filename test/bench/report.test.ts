import { describe, expect, it } from 'vitest';
import { median, pairedRatio, randomTokens, summarize } from '../../bench/stats.js';
import { FIGURES, addRatios, engineReport, formatTable, type ModelReport } from '../../bench/report.js';
import { weightBytesPerToken } from '../../bench/models.js';
import { BANDWIDTH, cannedReport, round } from './canned.js';

describe('stats', () => {
  it('median, min and max over repetitions, ignoring failed ones', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(summarize([5, NaN, 1, 3])).toEqual({ median: 3, min: 1, max: 5, samples: [5, NaN, 1, 3] });
    expect(Number.isNaN(summarize([NaN]).median)).toBe(true);
  });

  it('ratios pair round i with round i only', () => {
    // Medians of each side would give 20/10 = 2; the paired ratios are 1, 4 and 1.5.
    const r = pairedRatio([10, 40, 30], [10, 10, 20])!;
    expect(r.samples).toEqual([1, 4, 1.5]);
    expect(r.median).toBe(1.5);
    expect([r.min, r.max]).toEqual([1, 4]);
    // A failed round on either side drops that pair, not the others.
    expect(pairedRatio([10, NaN, 30], [5, 10, 10])!.samples).toEqual([2, 3]);
    expect(pairedRatio([NaN], [1])).toBeNull();
  });

  it('random token ids are deterministic, in range and skip the special ids', () => {
    const a = randomTokens(1000, 32000, 7);
    expect(a).toEqual(randomTokens(1000, 32000, 7));
    expect(a).not.toEqual(randomTokens(1000, 32000, 8));
    expect(Math.min(...a)).toBeGreaterThanOrEqual(4);
    expect(Math.max(...a)).toBeLessThan(32000);
    expect(new Set(a).size).toBeGreaterThan(900);
  });
});

describe('report', () => {
  it('bytes read per decode step: all weights, one embedding row unless the output is tied', () => {
    const t = (name: string, bytes: number, shape: number[]) => ({ name, bytes, shape });
    const layers = [t('blk.0.attn_q.weight', 1000, [64, 64]), t('blk.0.attn_norm.weight', 256, [64])];
    const untied = weightBytesPerToken([t('token_embd.weight', 64000, [64, 1000]), ...layers, t('output.weight', 80000, [64, 1000])]);
    expect(untied).toEqual({ bytes: 64 + 1256 + 80000, nVocab: 1000 });
    const tied = weightBytesPerToken([t('token_embd.weight', 64000, [64, 1000]), ...layers]);
    expect(tied).toEqual({ bytes: 64000 + 1256, nVocab: 1000 });
  });

  it('each engine gets medians, spreads, the bandwidth fraction and its ratio to llama.cpp', () => {
    const m: ModelReport = {
      name: 'x q4_0',
      file: 'x.gguf',
      file_bytes: 1,
      weight_bytes_per_token: 4e8,
      engines: {
        sparrow: engineReport([round('sparrow', 200, 50), null, round('sparrow', 300, 40)], 4e8, BANDWIDTH, ['round 2: boom']),
        'llama.cpp': engineReport([round('llama.cpp', 100, 20), round('llama.cpp', 100, 25), round('llama.cpp', 150, 20)], 4e8, BANDWIDTH, []),
      },
    };
    addRatios(m);
    const s = m.engines.sparrow!, l = m.engines['llama.cpp']!;
    expect(s.pp_tps).toBe(250);
    expect(s.stats.pp_tps).toMatchObject({ min: 200, max: 300 });
    expect(s.tg_tps).toBe(45);
    expect(s.bandwidth_fraction).toBeCloseTo((4e8 * 45) / BANDWIDTH, 12);
    expect(s.errors).toEqual(['round 2: boom']);
    // Rounds 1 and 3 pair up: 200/100 and 300/150.
    expect(s.ratio!.pp_tps.samples).toEqual([2, 2]);
    expect(s.ratio!.tg_tps.samples).toEqual([2.5, 2]);
    for (const f of FIGURES) expect(l.ratio![f].median).toBe(1);
  });

  it('without llama.cpp there is no ratio', () => {
    const m: ModelReport = {
      name: 'x',
      file: 'x.gguf',
      file_bytes: 1,
      weight_bytes_per_token: 1,
      engines: { sparrow: engineReport([round('sparrow', 1, 1)], 1, null, []) },
    };
    addRatios(m);
    expect(m.engines.sparrow!.ratio).toBeNull();
    expect(m.engines.sparrow!.bandwidth_fraction).toBeNull();
  });

  it('the terminal table has one row per model and figure, with both engines and the ratio', () => {
    const text = formatTable(cannedReport());
    const lines = text.split('\n');
    const row = (label: string, model = 0) => lines.filter((x) => x.includes(` ${label} `) || x.includes(`  ${label}`))[model] ?? '';
    expect(text).toContain('tinyllama-1.1b q4_0');
    expect(text).toContain('tinyllama-1.1b q4_k_m');
    // q4_0: sparrow pp 120 (110-125) vs llama.cpp 100 (98-105); paired ratios 1.2, 1.048, 1.276.
    expect(row('pp512')).toMatch(/120\.0 tok\/s \(110\.0-125\.0 tok\/s\)\s+100\.0 tok\/s \(98\.0-105\.0 tok\/s\)\s+1\.20x \(1\.05-1\.28\) \+/);
    // q4_k_m: sparrow is slower on pp, so the mark is '-'.
    expect(row('pp512', 1)).toMatch(/0\.80x \(0\.79-0\.81\) -$/);
    expect(lines.filter((x) => /tok\/s/.test(x))).toHaveLength(4);
  });
});
