// The CPU backend's operations on the NEON path against the generic path, by a C++
// program (test/backend/native/ops_isa_test.cpp) cross-compiled for AArch64 and run under
// qemu-user: the per-op suite's NEON leg (x86 paths run in ops.test.ts through the addon).
// Needs Debian's g++-aarch64-linux-gnu and qemu-user packages; skipped without them.
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
  console.warn(`backend neon-qemu: skipped, ${missing.join(' and ')} not found (apt-get install g++-aarch64-linux-gnu qemu-user)`);

describe.skipIf(missing.length > 0)('CPU backend operations on NEON under qemu-aarch64', () => {
  it('agree with the generic path, and attention has the same bits on any thread count or chunking', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-backend-neon-'));
    const exe = path.join(dir, 'ops_isa_test');
    const native = path.join(root, 'native');
    const inDir = (d: string) => fs.readdirSync(path.join(native, d)).filter((f) => f.endsWith('.cpp')).map((f) => path.join(native, d, f));
    const sources = [
      path.join(root, 'test/backend/native/ops_isa_test.cpp'),
      ...inDir('backend'),
      path.join(native, 'runtime/thread_pool.cpp'),
      path.join(native, 'runtime/kv_cache.cpp'),
      path.join(native, 'quant/quant.cpp'),
      path.join(native, 'kernels/matrix.cpp'),
      path.join(native, 'kernels/dispatch.cpp'),
      path.join(native, 'kernels/isa.cpp'),
      path.join(native, 'core/ggml_types.cpp'),
      path.join(native, 'core/pages.cpp'),
      ...inDir('kernels/generic'),
      ...inDir('kernels/neon'),
    ];
    try {
      execFileSync(CXX, ['-O2', '-std=c++17', '-static', '-pthread', '-march=armv8.2-a+dotprod', '-DSPARROW_HAVE_NEON_KERNELS', `-I${native}`, '-o', exe, ...sources], {
        stdio: 'pipe',
      });
      const run = spawnSync(QEMU, [exe, 'neon'], { encoding: 'utf8', timeout: 120_000 });
      expect(run.stdout + run.stderr).toMatch(/^ok: \d+ backend checks on neon/m);
      expect(run.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
