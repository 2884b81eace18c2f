// The evaluation scheduler (native/runtime/scheduler.{h,cpp}) without Node: a C++ program
// (test/runtime/native/scheduler_test.cpp) drives it with a fake runner and checks the
// order of jobs, the batching of waiting decode steps, a long prompt interleaved with
// decode steps, cancel, dispose and the queue limit. Built with the host compiler, under
// AddressSanitizer and UBSan when the toolchain has them.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const CXX = process.env.CXX || 'c++';
const hasCxx = spawnSync('sh', ['-c', `command -v ${CXX}`]).status === 0;
if (!hasCxx) console.warn(`runtime scheduler: skipped, no C++ compiler (${CXX}) found`);

describe.skipIf(!hasCxx)('the scheduler on its own (C++)', () => {
  it('orders, batches, interleaves, cancels and disposes as specified', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-scheduler-'));
    try {
      const exe = path.join(dir, 'scheduler_test');
      const native = path.join(root, 'native');
      const args = ['-std=c++17', '-O1', '-g', '-Wall', '-Wextra', '-Werror', `-I${native}`, '-o', exe,
        path.join(root, 'test/runtime/native/scheduler_test.cpp'), path.join(native, 'runtime/scheduler.cpp')];
      const sanitize = ['-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer'];
      try {
        execFileSync(CXX, [...sanitize, ...args], { stdio: 'pipe' });
      } catch {
        execFileSync(CXX, args, { stdio: 'pipe' });  // no sanitizer runtime here: a plain build
      }
      const run = spawnSync(exe, [], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1' } });
      expect(run.stderr).toBe('');
      expect(run.stdout).toMatch(/^ok: \d+ scheduler checks/m);
      expect(run.status).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
