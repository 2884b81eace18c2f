// Cross-compile a C++ test program against the native sources for AArch64 and run it
// under qemu-user: the NEON legs of the kernel and backend suites (test/kernels/native,
// test/backend/native), on an x86 machine. Needs Debian's g++-aarch64-linux-gnu and
// qemu-user packages; `missingTools` says what is absent so a suite can skip (loudly).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const root = path.resolve(__dirname, '..');
const native = path.join(root, 'native');
const CXX = 'aarch64-linux-gnu-g++';
const QEMU = 'qemu-aarch64';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** The cross compiler and qemu-user commands that are not installed (empty: all there). */
export function missingTools(): string[] {
  return [CXX, QEMU].filter((c) => !has(c));
}

/** Warns once per suite when it is skipped for missing tools; returns whether it must skip. */
export function skipWithoutTools(suite: string): boolean {
  const missing = missingTools();
  if (missing.length) console.warn(`${suite}: skipped, ${missing.join(' and ')} not found (apt-get install g++-aarch64-linux-gnu qemu-user)`);
  return missing.length > 0;
}

/** Every .cpp file directly in native/<dir>, as absolute paths. */
export function nativeDir(dir: string): string[] {
  const d = path.join(native, dir);
  return fs
    .readdirSync(d)
    .filter((f) => f.endsWith('.cpp'))
    .sort()
    .map((f) => path.join(d, f));
}

/** native/<file> as an absolute path. */
export const nativeFile = (file: string) => path.join(native, file);

/** The sources every NEON program links: the matmul kernels with their generic and NEON twins. */
export function kernelSources(): string[] {
  return [
    nativeFile('quant/quant.cpp'),
    nativeFile('kernels/matrix.cpp'),
    nativeFile('kernels/dispatch.cpp'),
    nativeFile('kernels/isa.cpp'),
    nativeFile('core/ggml_types.cpp'),
    nativeFile('core/pages.cpp'),
    ...nativeDir('kernels/generic'),
    ...nativeDir('kernels/neon'),
  ];
}

export interface QemuProgram {
  /** The test program (path relative to the repository root). */
  main: string;
  /** Further sources (absolute paths). */
  sources: string[];
  /** Extra compiler flags (after the common ones). */
  flags?: string[];
  /** Arguments for the program. */
  args?: string[];
  /** Run time limit in ms (default 120 s). */
  timeoutMs?: number;
}

export interface QemuRun {
  status: number | null;
  /** stdout followed by stderr. */
  output: string;
}

/**
 * Builds `main` + `sources` statically for ARMv8.2-A with dot products and the NEON
 * kernels enabled, in a temporary folder, runs it under qemu-aarch64 and removes the folder.
 * A compile error throws (with the compiler's output).
 */
export function buildAndRun(program: QemuProgram): QemuRun {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-qemu-'));
  try {
    const exe = path.join(dir, path.basename(program.main, '.cpp'));
    const flags = ['-O2', '-std=c++17', '-static', '-march=armv8.2-a+dotprod', '-DSPARROW_HAVE_NEON_KERNELS', `-I${native}`, ...(program.flags ?? [])];
    try {
      execFileSync(CXX, [...flags, '-o', exe, path.join(root, program.main), ...program.sources], { stdio: 'pipe' });
    } catch (e) {
      const err = e as { stderr?: Buffer; message: string };
      throw new Error(`${CXX} failed for ${program.main}: ${err.stderr?.toString() || err.message}`);
    }
    const run = spawnSync(QEMU, [exe, ...(program.args ?? [])], { encoding: 'utf8', timeout: program.timeoutMs ?? 120_000 });
    if (run.error) throw run.error;
    return { status: run.status, output: run.stdout + run.stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
