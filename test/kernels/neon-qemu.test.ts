// The NEON kernels, checked against their generic twins by a C++ program
// (test/kernels/native/neon_test.cpp) cross-compiled for AArch64 and run under qemu-user
// (test/qemu-aarch64.ts). Skipped, with a warning, without g++-aarch64-linux-gnu and qemu-user.
import { describe, expect, it } from 'vitest';
import { buildAndRun, kernelSources, skipWithoutTools } from '../qemu-aarch64.js';

describe.skipIf(skipWithoutTools('neon-qemu'))('NEON kernels under qemu-aarch64', () => {
  it('agree with the generic twins for every type and awkward sizes', () => {
    const run = buildAndRun({ main: 'test/kernels/native/neon_test.cpp', sources: kernelSources(), flags: ['-ffp-contract=off'] });
    expect(run.output).toMatch(/^ok: \d+ NEON checks/m);
    expect(run.status).toBe(0);
  }, 300_000);
});
