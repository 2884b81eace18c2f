// The CPU backend's operations on the NEON path against the generic path, by a C++
// program (test/backend/native/ops_isa_test.cpp) cross-compiled for AArch64 and run under
// qemu-user (test/qemu-aarch64.ts): the per-op suite's NEON leg (x86 paths run in
// ops.test.ts through the addon). Skipped, with a warning, without g++-aarch64-linux-gnu
// and qemu-user.
import { describe, expect, it } from 'vitest';
import { buildAndRun, kernelSources, nativeDir, nativeFile, skipWithoutTools } from '../qemu-aarch64.js';

describe.skipIf(skipWithoutTools('backend neon-qemu'))('CPU backend operations on NEON under qemu-aarch64', () => {
  it('agree with the generic path, and attention has the same bits on any thread count or chunking', () => {
    const run = buildAndRun({
      main: 'test/backend/native/ops_isa_test.cpp',
      sources: [...nativeDir('backend'), nativeFile('runtime/thread_pool.cpp'), nativeFile('runtime/kv_cache.cpp'), ...kernelSources()],
      flags: ['-pthread'],
      args: ['neon'],
    });
    expect(run.output).toMatch(/^ok: \d+ backend checks on neon/m);
    expect(run.status).toBe(0);
  }, 300_000);
});
