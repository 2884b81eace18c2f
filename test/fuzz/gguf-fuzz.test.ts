/**
 * Fuzzing the GGUF reader through the public API: real files written by others
 * (llama.cpp's vocab files, the stories260K model) and our synthetic ones, mutated
 * thousands of ways. Every case must either parse or throw a GGUFError, and a file
 * that parses must describe tensors that lie inside it. A crash kills the worker and
 * fails the run. Seeds are printed (replay one with SPARROW_FUZZ_SEED=n);
 * SPARROW_FUZZ_ITERATIONS scales the random part.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { rng as mulberry32 } from '../../bench/stats.js';
import { GGUFError, inspectGGUF } from '../../src/index.js';
import { ggufFields } from './gguf-fields.js';

const shared = path.resolve(__dirname, '../../../shared');
const files = [
  ...['stories260K-f32.gguf', 'stories260K-q8_0.gguf'].map((f) => path.join(shared, 'models', f)),
  ...fs.readdirSync(path.join(shared, 'vocab')).filter((f) => f.endsWith('.gguf')).map((f) => path.join(shared, 'vocab', f)),
];
const ITER = Number(process.env.SPARROW_FUZZ_ITERATIONS ?? 400);

let parsed = 0;
let rejected = 0;
const codes = new Map<string, number>();

/** Parse or GGUFError; nothing else. Parsed files must be self-consistent. */
function check(bytes: Uint8Array, what: string) {
  let info;
  try {
    info = inspectGGUF(bytes);
  } catch (err) {
    if (!(err instanceof GGUFError)) throw new Error(`${what}: threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
    expect(err.code).toMatch(/^ERR_GGUF_/);
    expect(err.message.length).toBeGreaterThan(10);
    codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
    rejected++;
    return;
  }
  parsed++;
  for (const t of info.tensors) {
    if (!(t.offset >= info.dataOffset && t.offset + t.bytes <= bytes.length))
      throw new Error(`${what}: parsed, but tensor ${t.name} lies outside the file`);
  }
}

function put64(b: Uint8Array, at: number, v: bigint) {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setBigUint64(at, BigInt.asUintN(64, v), true);
}

const HUGE = [0xffffffffffffffffn, 0x8000000000000000n, 0x7fffffffffffffffn, 0x100000000n, 0xffffffffn];

describe('GGUF reader fuzzing', () => {
  for (const file of files) {
    const name = path.basename(file);
    const orig = new Uint8Array(fs.readFileSync(file));
    const { fields, dataStart, tensorRanges } = ggufFields(orig);

    it(`${name}: parses as is`, () => {
      const info = inspectGGUF(orig);
      expect(info.dataOffset).toBe(dataStart);
    });

    it(`${name}: truncated at every structural boundary`, () => {
      const cuts = new Set<number>([0, 1, 3, 4, 7, dataStart - 1, dataStart, orig.length - 1]);
      for (const f of fields) for (const d of [-1, 0, 1, f.size - 1]) cuts.add(f.at + d);
      for (const [s, e] of tensorRanges) for (const c of [s, s + 1, e - 1]) cuts.add(c);
      for (const c of cuts) {
        if (c < 0 || c >= orig.length) continue;
        const cut = orig.subarray(0, c);
        try {
          inspectGGUF(cut);
          // Cutting inside tensor data must always be caught; a cut inside the header too.
          throw new Error(`truncation at ${c} of ${orig.length} was accepted`);
        } catch (err) {
          if (!(err instanceof GGUFError)) throw err;
        }
      }
    });

    it(`${name}: huge and lying counts, lengths, dimensions and offsets`, () => {
      for (const f of fields) {
        if (!['count', 'length', 'dim', 'offset'].includes(f.kind)) continue;
        for (const v of HUGE) {
          const b = orig.slice();
          put64(b, f.at, v);
          check(b, `${name}: ${f.kind} at ${f.at} = ${v}`);
        }
        const b = orig.slice();
        put64(b, f.at, BigInt(orig.length));
        check(b, `${name}: ${f.kind} at ${f.at} = file size`);
        if (f.kind === 'offset') {
          for (const delta of [1n, 32n, -32n]) {
            const c = orig.slice();
            const dv = new DataView(c.buffer);
            put64(c, f.at, dv.getBigUint64(f.at, true) + delta);
            check(c, `${name}: offset at ${f.at} moved by ${delta}`);
          }
          // point every tensor at the first tensor's data: overlap
          const o = orig.slice();
          put64(o, f.at, 0n);
          check(o, `${name}: offset at ${f.at} = 0`);
        }
      }
    });

    it(`${name}: wrong type ids and dimension counts`, () => {
      for (const f of fields) {
        if (f.kind !== 'type' && f.kind !== 'ndims' && f.kind !== 'version') continue;
        for (const v of [0, 1, 2, 5, 7, 8, 9, 12, 13, 31, 40, 255, 0xffffffff]) {
          const b = orig.slice();
          new DataView(b.buffer).setUint32(f.at, v, true);
          check(b, `${name}: ${f.kind} at ${f.at} = ${v}`);
        }
      }
    });

    it(`${name}: random byte flips (seeded)`, () => {
      const seed = process.env.SPARROW_FUZZ_SEED ? Number(process.env.SPARROW_FUZZ_SEED) : (Date.now() ^ (name.length * 7919)) >>> 0;
      console.log(`fuzz ${name}: seed ${seed}, ${ITER} iterations`);
      const rand = mulberry32(seed);
      const headerEnd = Math.min(dataStart, orig.length);
      for (let i = 0; i < ITER; i++) {
        const b = orig.slice();
        const flips = 1 + Math.floor(rand() * 4);
        for (let k = 0; k < flips; k++) {
          // mostly at structural fields, sometimes anywhere in the header
          const at = rand() < 0.7 ? fields[Math.floor(rand() * fields.length)].at + Math.floor(rand() * 8) : Math.floor(rand() * headerEnd);
          if (at < b.length) b[at] = Math.floor(rand() * 256);
        }
        check(b, `${name}: seed ${seed} iteration ${i}`);
      }
    });
  }

  it('rejected cases carry specific codes', () => {
    console.log(`fuzz totals: ${parsed} parsed, ${rejected} rejected; codes ${JSON.stringify(Object.fromEntries(codes))}`);
    expect(rejected).toBeGreaterThan(1000);
    expect(codes.size).toBeGreaterThanOrEqual(6);
  });
});
