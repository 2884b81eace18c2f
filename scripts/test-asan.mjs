#!/usr/bin/env node
// Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer (cmake-js,
// SPARROW_SANITIZE=ON, into build-asan/) and runs the native-facing test suites against
// it. Node itself is not instrumented, so libasan is preloaded; leak detection is off
// because V8 keeps memory until exit by design.
//   npm run test:asan [-- vitest args]      (default suites: see SUITES below)
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SUITES = ['test/unit/', 'test/fuzz/', 'test/kernels/', 'test/backend/ops.test.ts', 'test/model/', 'test/parity/stories.test.ts'];

const cc = process.env.CXX || 'g++';
const libasan = execFileSync(cc, ['-print-file-name=libasan.so'], { encoding: 'utf8' }).trim();
if (!libasan || !path.isAbsolute(libasan)) {
  console.error(`test:asan: cannot find libasan.so through ${cc} (install the compiler's sanitizer runtime)`);
  process.exit(2);
}

const build = spawnSync('npx', ['cmake-js', 'compile', '-d', 'native', '-O', 'build-asan', '--CDSPARROW_SANITIZE=ON'], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
});
if (build.status !== 0) process.exit(build.status ?? 1);

const args = process.argv.slice(2);
const suites = args.length ? args : SUITES;
const env = {
  ...process.env,
  SPARROW_ADDON: path.join(root, 'build-asan/Release/sparrow.node'),
  LD_PRELOAD: libasan,
  ASAN_OPTIONS: 'detect_leaks=0:abort_on_error=1:halt_on_error=1',
  UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
  SPARROW_FUZZ_ITERATIONS: process.env.SPARROW_FUZZ_ITERATIONS ?? '100',
  SPARROW_SANITIZED: '1',
};
const run = spawnSync('npx', ['vitest', 'run', '--passWithNoTests', ...suites], { cwd: root, env, stdio: 'inherit' });
process.exit(run.status ?? 1);
