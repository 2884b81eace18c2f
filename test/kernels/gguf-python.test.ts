// The block formats against a second, independent implementation: llama.cpp's Python
// package `gguf` (gguf-py), which quantizes Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and MXFP4 and
// dequantizes every type. Needs a Python with `gguf` and `numpy` (pip install gguf numpy,
// in a venv): $GGUF_PYTHON names its interpreter, else `python3` is tried. Skipped, with
// the reason printed, when neither imports them.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { k, rng, T, type TypeName } from './helpers.js';

const python = process.env.GGUF_PYTHON || 'python3';
const probe = spawnSync(python, ['-c', 'import gguf, numpy'], { encoding: 'utf8' });
const skip = probe.status !== 0;
if (skip)
  console.warn(
    `gguf-python: skipped, ${python} cannot import gguf and numpy (pip install gguf numpy in a venv, then GGUF_PYTHON=<venv>/bin/python)`,
  );

describe.skipIf(skip)("block formats agree with llama.cpp's gguf-py", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-gguf-py-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  // Blocks of very different scales, all-zero and constant blocks, and values on the
  // quantizers' rounding boundaries (exact multiples of a power of two).
  const r = rng(2026);
  const n = 256 * 64;
  const x = new Float32Array(n);
  for (let b = 0; b < n / 32; b++) {
    const scale = 10 ** ((b % 7) - 3);
    for (let i = 0; i < 32; i++) {
      const j = b * 32 + i;
      if (b % 11 === 3) x[j] = 0;
      else if (b % 11 === 5) x[j] = 0.75;
      else if (b % 11 === 7) x[j] = Math.round((r() * 2 - 1) * 16) / 8;
      else x[j] = (r() * 2 - 1) * scale * (i === 5 ? 4 : 1);
    }
  }
  const all: TypeName[] = ['Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'MXFP4', 'IQ4_NL', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'IQ4_XS'];
  const ours = new Map(all.map((t) => [t, k()._quantize(T[t], x)]));
  fs.writeFileSync(path.join(dir, 'x.f32'), new Uint8Array(x.buffer));
  for (const [t, q] of ours) fs.writeFileSync(path.join(dir, `${t}.ours`), q);
  const run = spawnSync(python, [path.join(__dirname, 'gguf_quants.py'), dir], { encoding: 'utf8' });
  const read = (f: string) => new Uint8Array(fs.readFileSync(path.join(dir, f)));

  it('the helper ran', () => expect(run.stdout + run.stderr).toMatch(/^ok$/m));

  // Q4_1, Q5_0, Q5_1 and MXFP4 follow ggml's reference quantizers (same rounding): same
  // bytes. Q4_0 and Q8_0 round to nearest-even where ggml rounds half away from zero, so
  // they may differ by one step at exact ties, and nowhere else.
  for (const t of ['Q4_1', 'Q5_0', 'Q5_1', 'MXFP4'] as const)
    it(`${t}: quantizes to the same bytes`, () => {
      const theirs = read(`${t}.gguf`);
      const mine = ours.get(t)!;
      expect(mine.length).toBe(theirs.length);
      let first = -1;
      for (let i = 0; i < mine.length && first < 0; i++) if (mine[i] !== theirs[i]) first = i;
      expect(first, `${t}: first differing byte`).toBe(-1);
    });

  for (const t of ['Q4_0', 'Q8_0'] as const)
    it(`${t}: quantizes to the same values but at rounding ties`, () => {
      const a = k()._dequantize(T[t], ours.get(t)!, n);
      const b = k()._dequantize(T[t], read(`${t}.gguf`), n);
      let differ = 0;
      for (let blk = 0; blk < n / 32; blk++) {
        let amax = 0;
        for (let i = blk * 32; i < blk * 32 + 32; i++) amax = Math.max(amax, Math.abs(x[i]!));
        const step = (amax / (t === 'Q4_0' ? 8 : 127)) * (1 + 2 ** -10);
        for (let i = blk * 32; i < blk * 32 + 32; i++) {
          if (a[i] === b[i]) continue;
          differ++;
          expect(Math.abs(a[i]! - b[i]!), `${t}[${i}]`).toBeLessThanOrEqual(step);
        }
      }
      // the ties come from the blocks of multiples of 1/8 (1 in 11 blocks)
      expect(differ).toBeLessThan(n / 20);
    });

  // Every type: gguf-py's dequantizer reads our bytes as we do.
  for (const t of all)
    it(`${t}: gguf-py dequantizes our blocks to our values`, () => {
      const mine = k()._dequantize(T[t], ours.get(t)!, n);
      const theirs = new Float32Array(read(`${t}.deq`).buffer);
      expect(theirs.length).toBe(n);
      let maxAbs = 0;
      for (const v of mine) maxAbs = Math.max(maxAbs, Math.abs(v));
      for (let i = 0; i < n; i++)
        if (!(Math.abs(mine[i]! - theirs[i]!) <= 1e-6 * (Math.abs(mine[i]!) + 1e-3 * maxAbs)))
          throw new Error(`${t}[${i}]: ours ${mine[i]}, gguf-py ${theirs[i]}`);
    });
});
