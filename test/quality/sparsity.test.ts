/**
 * Sparsity calibration and quality tooling on the real stories260K files: the greedy
 * calibration's grid (every level's allocation skips exactly that byte fraction), the file
 * beside the model that loadModel finds, interpolation between its levels, refusal of a
 * calibration made for another file (and of a damaged one), `sparrow calibrate`, and
 * `sparrow perplexity --sparsity` (KL against the dense run of the same file: exactly 0 at
 * level 0, growing with the level). Calibration runs on the train text, quality on the
 * validation text.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, SparrowError, type Model } from '../../src/index.js';
import { byteFraction, MAX_SITE_FRACTION } from '../../src/sparsity/allocation.js';
import { calibrate } from '../../src/sparsity/calibrate.js';
import { calibrationPathFor, type CalibrationFile } from '../../src/sparsity/plan.js';

const root = path.resolve(__dirname, '../..');
const shared = path.resolve(root, '../shared');
const F32 = path.join(shared, 'models/stories260K-f32.gguf');
const Q8 = path.join(shared, 'models/stories260K-q8_0.gguf');
const TRAIN = path.join(shared, 'text/tinystories-train-head.txt');
const VALID = path.join(shared, 'text/tinystories-valid-b.txt');
const bin = path.join(root, 'bin/sparrow.mjs');

let dir: string;
let f32Copy: string;
let q8Copy: string;
let model: Model;
let cal: CalibrationFile;
const trainText = () => fs.readFileSync(TRAIN, 'utf8').slice(0, 20000);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-sparsity-'));
  f32Copy = path.join(dir, 'f32.gguf');
  q8Copy = path.join(dir, 'q8.gguf');
  fs.copyFileSync(F32, f32Copy);
  fs.copyFileSync(Q8, q8Copy);
  model = await loadModel(F32, { threads: 1, sparsityCalibration: false });
  cal = await calibrate(model, trainText(), { contextSize: 32, maxTokens: 64, step: 0.3 });
}, 300_000);
afterAll(() => {
  model?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SparrowError);
    return (e as SparrowError).code;
  }
  return undefined;
}

describe('calibration', () => {
  it('records every grid level, each allocation skipping exactly its byte fraction', () => {
    const bytes = model.sparsitySiteBytes;
    expect(cal.levels.length).toBe(19);
    expect(cal.levels[0]).toBe(0);
    expect(cal.levels.at(-1)).toBeCloseTo(0.9, 9);
    expect(cal.model.fingerprint).toBe(model.fingerprint);
    expect(cal.model.layers).toBe(model.info.layerCount);
    cal.levels.forEach((l, i) => {
      expect(byteFraction(bytes, cal.allocations[i]!)).toBeCloseTo(l, 5);
      for (const f of cal.allocations[i]!) expect(f >= 0 && f <= MAX_SITE_FRACTION).toBe(true);
    });
    // The measured cost grows with the level, and the greedy path is monotone per knob.
    expect(cal.kl![18]!).toBeGreaterThan(cal.kl![4]!);
    for (let i = 1; i < cal.levels.length; i++)
      cal.allocations[i]!.forEach((f, j) => expect(f).toBeGreaterThanOrEqual(cal.allocations[i - 1]![j]! - 1e-6));
  });

  it('loadModel finds the file beside the model and interpolates between its levels', async () => {
    fs.writeFileSync(calibrationPathFor(f32Copy), JSON.stringify(cal));
    const m = await loadModel(f32Copy, { threads: 1, sparsity: 0.3 });
    try {
      expect(m.info.sparsity).toEqual({ level: expect.closeTo(0.3, 6), allocation: 'calibrated', file: calibrationPathFor(f32Copy) });
      const bytes = m.sparsitySiteBytes;
      for (const level of [0.05, 0.12, 0.3, 0.333, 0.5, 0.71, 0.9]) expect(byteFraction(bytes, m.sparsityAllocation(level))).toBeCloseTo(level, 5);
      const at = cal.levels.indexOf(0.3);
      expect(Array.from(m.sparsityAllocation(0.3))).toEqual(cal.allocations[at]!.map((x) => Math.fround(x)));
      // The calibrated allocation differs from the default prior's.
      const dflt = await loadModel(f32Copy, { threads: 1, sparsityCalibration: false });
      try {
        expect(dflt.info.sparsity.allocation).toBe('default');
        expect(Array.from(dflt.sparsityAllocation(0.3))).not.toEqual(Array.from(m.sparsityAllocation(0.3)));
      } finally {
        dflt.dispose();
      }
    } finally {
      m.dispose();
    }
  });

  it('a calibration of another file is refused (ERR_CALIBRATION_MISMATCH); a damaged one is ERR_BAD_CALIBRATION', async () => {
    fs.writeFileSync(calibrationPathFor(q8Copy), JSON.stringify(cal));
    expect(await code(loadModel(q8Copy, { threads: 1 }))).toBe('ERR_CALIBRATION_MISMATCH');
    const m = await loadModel(q8Copy, { threads: 1, sparsityCalibration: false });
    m.dispose();
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{"format": "sparrow-sparsity-calibration", "version": 1, "levels": [0');
    expect(await code(loadModel(F32, { sparsityCalibration: bad }))).toBe('ERR_BAD_CALIBRATION');
    fs.writeFileSync(bad, JSON.stringify({ ...cal, allocations: cal.allocations.slice(1) }));
    expect(await code(loadModel(F32, { sparsityCalibration: bad }))).toBe('ERR_BAD_CALIBRATION');
    expect(await code(loadModel(F32, { sparsityCalibration: path.join(dir, 'missing.json') }))).toBe('ERR_BAD_CALIBRATION');
    expect(await code(loadModel(F32, { sparsityCalibration: 42 as never }))).toBe('ERR_INVALID_ARG');
    fs.rmSync(calibrationPathFor(q8Copy));
  });
});

describe('command line', () => {
  const run = (...a: string[]) => spawnSync(process.execPath, [bin, ...a], { encoding: 'utf8' });

  it('sparrow calibrate writes a file loadModel then uses; bad invocations exit 2, bad files 1', async () => {
    const text = path.join(dir, 'train.txt');
    fs.writeFileSync(text, trainText());
    const target = path.join(dir, 'cli.gguf');
    fs.copyFileSync(F32, target);
    const ok = run('calibrate', target, '--text', text, '--ctx', '32', '--tokens', '64', '--step', '0.45', '--threads', '1');
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/wrote .*cli\.gguf\.sparsity\.json/);
    const m = await loadModel(target, { threads: 1, sparsity: 0.4 });
    expect(m.info.sparsity.allocation).toBe('calibrated');
    m.dispose();
    expect(run('calibrate', target).status).toBe(2);
    expect(run('calibrate', target, '--text', text, '--step', '2').status).toBe(2);
    const missing = run('calibrate', path.join(dir, 'nope.gguf'), '--text', text);
    expect(missing.status).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(run('calibrate', '--help').status).toBe(0);
  });

  it('sparrow perplexity --sparsity: KL against the dense run, 0 at level 0, growing with the level', () => {
    const ppl = (level: string) => {
      const r = run('perplexity', F32, '--text', VALID, '--ctx', '64', '--chunks', '3', '--kl-divergence', '--sparsity', level,
        '--no-calibration', '--threads', '1', '--json');
      expect(r.status, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    };
    const p0 = ppl('0');
    expect(p0.kl.mean).toBe(0);
    const p2 = ppl('0.2');
    const p5 = ppl('0.5');
    expect(p2.sparsity).toEqual({ level: 0.2, allocation: 'default', file: null });
    expect(p2.kl.mean).toBeGreaterThan(0);
    expect(p5.kl.mean).toBeGreaterThan(p2.kl.mean);
    expect(p2.kl.basePerplexity).toBeCloseTo(p0.perplexity, 9);
    expect(p5.perplexity).toBeGreaterThan(p0.perplexity);
    expect(run('perplexity', F32, '--text', VALID, '--sparsity', '0.95').status).toBe(2);
    expect(run('perplexity', F32, '--text', VALID, '--calibration', 'x', '--no-calibration').status).toBe(2);
  });
});
