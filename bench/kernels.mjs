#!/usr/bin/env node
// Kernel micro-benchmark: GEMV (n = 1) in GB/s of weights read, GEMM (n = 64, 512) in
// GOP/s (2 ops per multiply-add), per weight type and SIMD path, on TinyLlama-sized
// matrices. Compare GEMV against the memory bandwidth (about 36 GB/s on one core here,
// 66 GB/s on two) and GEMM against the int8 dot-product peak.
//   node bench/kernels.mjs [--types Q4_0,Q8_0] [--isas avx512,avx2] [--threads 1] [--shapes 2048x2048,5632x2048] [--n 1,64,512] [--reps 3] [--json]
// Uses the addon at $SPARROW_ADDON, else the default build. The machine may be shared:
// repeat runs and compare relative changes.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const addon = process.env.SPARROW_ADDON ? require(path.resolve(process.env.SPARROW_ADDON)) : require('node-gyp-build')(root);

const TYPES = { F32: 0, F16: 1, BF16: 30, Q8_0: 8, Q4_0: 2, Q4_K: 12, Q5_K: 13, Q6_K: 14 };
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const types = arg('types', 'Q4_0,Q8_0,Q4_K,Q6_K,Q5_K,F16').split(',');
const isas = arg('isas', addon.systemInfo().supportedIsas.filter((i) => i !== 'generic').join(',')).split(',');
const threads = Number(arg('threads', '1'));
const shapes = arg('shapes', '2048x2048,5632x2048').split(',').map((s) => s.split('x').map(Number));
const ns = arg('n', '1,64,512').split(',').map(Number);
const reps = Number(arg('reps', '3'));
const json = process.argv.includes('--json');
const results = [];

if (!json) console.log(`threads=${threads}  (GEMV: GB/s of weights; GEMM: GOP/s)`);
for (const type of types)
  for (const isa of isas)
    for (const [rows, cols] of shapes) {
      const cells = [];
      for (const n of ns) {
        const ops = 2 * rows * cols * n;
        const iters = Math.max(2, Math.min(200, Math.round(2e9 / ops)));
        let best = Infinity, bytes = 0;
        for (let rep = 0; rep < reps; rep++) {
          const r = addon.internal._benchMatmul(isa, TYPES[type], rows, cols, n, iters, threads);
          best = Math.min(best, r.seconds);
          bytes = r.weightBytes;
        }
        results.push({ type, isa, rows, cols, n, threads, seconds: best, gbps: bytes / best / 1e9, gops: ops / best / 1e9 });
        cells.push(n === 1 ? `n=1 ${(bytes / best / 1e9).toFixed(1)} GB/s` : `n=${n} ${(ops / best / 1e9).toFixed(0)} GOP/s`);
      }
      if (!json) console.log(`${type.padEnd(5)} ${isa.padEnd(7)} ${`${rows}x${cols}`.padEnd(10)} ${cells.join('   ')}`);
    }
if (json) console.log(JSON.stringify({ threads, results }, null, 2));
