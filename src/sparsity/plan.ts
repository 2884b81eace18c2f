/**
 * Where a sparsity level's allocation comes from: the default prior (allocation.ts), or a
 * calibration file (`MODEL.gguf.sparsity.json`, written by `sparrow calibrate`) that holds
 * the greedy allocation at a grid of levels; a level between two grid points is served by
 * linear interpolation of their allocations (the byte fraction is linear in the
 * fractions, so it is exactly the level asked for). The file is bound to one model file by
 * its fingerprint (the one saved session states carry) and refused for any other.
 */
import fs from 'node:fs';
import { SparrowError } from '../errors.js';
import { byteFraction, defaultAllocation, MAX_SITE_FRACTION, SITE_COUNT, SITES, solveScaled } from './allocation.js';

export const CALIBRATION_FORMAT = 'sparrow-sparsity-calibration';
export const CALIBRATION_VERSION = 1;

/** A calibration file's contents. */
export interface CalibrationFile {
  format: typeof CALIBRATION_FORMAT;
  version: number;
  model: { fingerprint: string; file: string; layers: number; sites: readonly string[] };
  /** How it was made (informative). */
  calibration: { text: string; tokens: number; contextSize: number; objective: string; step: number; evaluations: number };
  /** Increasing levels, the first 0. */
  levels: number[];
  /** One allocation per level: layers x 4 fractions, layer-major, in SITES order. */
  allocations: number[][];
  /** The calibration objective at each level (mean KL(dense || sparse) on the calibration text, nats). */
  kl?: number[];
}

/** The file `loadModel` looks for beside a model. */
export function calibrationPathFor(modelPath: string): string {
  return `${modelPath}.sparsity.json`;
}

function bad(file: string, why: string): never {
  throw new SparrowError(`sparsity calibration ${file}: ${why}`, 'ERR_BAD_CALIBRATION');
}

/** Reads and checks a calibration file's shape (not yet against a model). */
export function readCalibration(file: string): CalibrationFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    bad(file, `cannot be read (${(e as Error).message})`);
  }
  let c: CalibrationFile;
  try {
    c = JSON.parse(text) as CalibrationFile;
  } catch (e) {
    bad(file, `is not JSON (${(e as Error).message})`);
  }
  if (c === null || typeof c !== 'object' || c.format !== CALIBRATION_FORMAT) bad(file, `is not a ${CALIBRATION_FORMAT} file`);
  if (c.version !== CALIBRATION_VERSION) bad(file, `has version ${String(c.version)}; this build reads version ${CALIBRATION_VERSION}`);
  const m = c.model;
  if (!m || typeof m.fingerprint !== 'string' || !Number.isInteger(m.layers) || m.layers < 1) bad(file, 'lacks the model it was made for');
  if (!Array.isArray(m.sites) || m.sites.join() !== SITES.join()) bad(file, `has sites ${String(m.sites)}, expected ${SITES.join()}`);
  const width = m.layers * SITE_COUNT;
  if (!Array.isArray(c.levels) || !Array.isArray(c.allocations) || c.levels.length < 1 || c.levels.length !== c.allocations.length)
    bad(file, 'needs as many allocations as levels');
  for (let i = 0; i < c.levels.length; i++) {
    const l = c.levels[i];
    if (typeof l !== 'number' || !(l >= 0 && l <= 1) || (i > 0 && !(l > c.levels[i - 1]!))) bad(file, 'levels must increase from 0');
    const a = c.allocations[i];
    if (!Array.isArray(a) || a.length !== width) bad(file, `allocation ${i} must hold ${width} fractions`);
    for (const f of a) if (typeof f !== 'number' || !(f >= 0 && f <= MAX_SITE_FRACTION)) bad(file, `allocation ${i} has a fraction outside [0, ${MAX_SITE_FRACTION}]`);
  }
  if (c.levels[0] !== 0) bad(file, 'levels must start at 0');
  return c;
}

/** A model's source of allocations. */
export class SparsityPlan {
  readonly kind: 'default' | 'calibrated';
  readonly file: string | null;
  readonly #siteBytes: Float64Array;
  readonly #levels: number[];
  readonly #allocs: Float32Array[];

  private constructor(siteBytes: Float64Array, file: string | null, c?: CalibrationFile) {
    this.#siteBytes = siteBytes;
    this.file = file;
    this.kind = c ? 'calibrated' : 'default';
    this.#levels = c ? c.levels.slice() : [];
    this.#allocs = c ? c.allocations.map((a) => Float32Array.from(a)) : [];
  }

  static default(siteBytes: Float64Array): SparsityPlan {
    return new SparsityPlan(siteBytes, null);
  }

  /**
   * The plan of a calibration file for the model with this fingerprint and site bytes.
   * ERR_BAD_CALIBRATION for a damaged file, ERR_CALIBRATION_MISMATCH for one made for another model file.
   */
  static fromFile(file: string, siteBytes: Float64Array, fingerprint: string): SparsityPlan {
    const c = readCalibration(file);
    if (c.model.fingerprint !== fingerprint || c.model.layers * SITE_COUNT !== siteBytes.length)
      throw new SparrowError(
        `sparsity calibration ${file} was made for another model file (${c.model.file}, fingerprint ${c.model.fingerprint}; ` +
          `this one is ${fingerprint}): run sparrow calibrate on this model again, or pass sparsityCalibration: false`,
        'ERR_CALIBRATION_MISMATCH',
      );
    return new SparsityPlan(siteBytes, file, c);
  }

  /** The allocation of `level` (0..0.9): n_layer x 4 fractions whose byte fraction is `level`. */
  allocation(level: number): Float32Array {
    if (this.kind === 'default' || level <= 0) return defaultAllocation(this.#siteBytes, level);
    const levels = this.#levels;
    const last = levels.length - 1;
    if (level >= levels[last]!) {
      // Past the calibrated grid: the last allocation scaled up (capped per site).
      const a = this.#allocs[last]!;
      if (byteFraction(this.#siteBytes, a) >= level) return a.slice();
      const w = Float64Array.from(a, (f) => f + 1e-3);
      return solveScaled(this.#siteBytes, w, level);
    }
    let i = 0;
    while (levels[i + 1]! < level) i++;
    const t = (level - levels[i]!) / (levels[i + 1]! - levels[i]!);
    const a = this.#allocs[i]!;
    const b = this.#allocs[i + 1]!;
    return Float32Array.from(a, (x, j) => Math.min(MAX_SITE_FRACTION, x + t * (b[j]! - x)));
  }
}
