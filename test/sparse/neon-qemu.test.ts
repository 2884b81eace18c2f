// The NEON sparse kernels, checked against the dense NEON kernels (bit for bit) and the
// generic twins' byte counts by a C++ program (test/sparse/native/sparse_neon_test.cpp)
// cross-compiled for AArch64 and run under qemu-user. Needs Debian's g++-aarch64-linux-gnu
// and qemu-user packages; skipped without them.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const CXX = 'aarch64-linux-gnu-g++';
const QEMU = 'qemu-aarch64';
const missing = [CXX, QEMU].filter((c) => !has(c));
if (missing.length)
  console.warn(`sparse neon-qemu: skipped, ${missing.join(' and ')} not found (apt-get install g++-aarch64-linux-gnu qemu-user)`);

describe.skipIf(missing.length > 0)('NEON sparse kernels under qemu-aarch64', () => {
  it('give the dense NEON bits and skip the zero channels, every type and awkward sizes', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-sparse-neon-'));
    const exe = path.join(dir, 'sparse_neon_test');
    const native = path.join(root, 'native');
    const inDir = (d: string) => fs.readdirSync(path.join(native, d)).filter((f) => f.endsWith('.cpp')).map((f) => path.join(native, d, f));
    const sources = [
      path.join(root, 'test/sparse/native/sparse_neon_test.cpp'),
      path.join(native, 'quant/quant.cpp'),
      path.join(native, 'kernels/matrix.cpp'),
      path.join(native, 'kernels/dispatch.cpp'),
      path.join(native, 'kernels/isa.cpp'),
      path.join(native, 'core/ggml_types.cpp'),
      path.join(native, 'core/pages.cpp'),
      path.join(native, 'sparse/sparse_matrix.cpp'),
      ...inDir('kernels/generic'),
      ...inDir('kernels/neon'),
      ...inDir('sparse/generic'),
      ...inDir('sparse/neon'),
    ];
    execFileSync(CXX, ['-O2', '-std=c++17', '-static', '-march=armv8.2-a+dotprod+fp16', '-ffp-contract=off', '-DSPARROW_HAVE_NEON_KERNELS', `-I${native}`, '-o', exe, ...sources], {
      stdio: 'pipe',
    });
    const run = spawnSync(QEMU, [exe], { encoding: 'utf8', timeout: 300_000 });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(run.stdout + run.stderr).toMatch(/^ok: \d+ NEON sparse checks/m);
    expect(run.status).toBe(0);
  }, 600_000);
});
