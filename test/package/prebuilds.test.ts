/**
 * The prebuilt binaries that `npm run prebuild` writes into prebuilds/ (and npm pack ships):
 * each is a shared object of its architecture that exports the Node-API entry point. The
 * linux-x64 one loads here; the cross-built linux-arm64 one is loaded by the aarch64
 * dynamic loader under qemu-user (a small C program dlopens it), and its NEON kernels,
 * as compiled by that build, are checked against the generic twins under qemu.
 * Skipped, with the reason printed, where a binary or a tool is missing.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const binaryOf = (target: string) => {
  const dir = path.join(root, 'prebuilds', target);
  const f = fs.existsSync(dir) ? fs.readdirSync(dir).find((n) => n.endsWith('.node')) : undefined;
  return f ? path.join(dir, f) : undefined;
};
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

interface ElfSymbol {
  name: string;
  bind: number;
  type: number;
  shndx: number;
}

/** The parts of an ELF64 little-endian file these tests need: type, machine, dynamic symbols. */
function readElf(file: string): { type: number; machine: number; dynsym: ElfSymbol[]; needed: string[] } {
  const b = fs.readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file}: not ELF`);
  if (b[4] !== 2 || b[5] !== 1) throw new Error(`${file}: not ELF64 little-endian`);
  const type = b.readUInt16LE(16);
  const machine = b.readUInt16LE(18);
  const shoff = Number(b.readBigUInt64LE(0x28));
  const shentsize = b.readUInt16LE(0x3a);
  const shnum = b.readUInt16LE(0x3c);
  const sections = Array.from({ length: shnum }, (_, i) => {
    const o = shoff + i * shentsize;
    return { type: b.readUInt32LE(o + 4), offset: Number(b.readBigUInt64LE(o + 0x18)), size: Number(b.readBigUInt64LE(o + 0x20)), link: b.readUInt32LE(o + 0x28), entsize: Number(b.readBigUInt64LE(o + 0x38)) };
  });
  const cstr = (off: number) => b.toString('latin1', off, b.indexOf(0, off));
  const dynsymSec = sections.find((s) => s.type === 11); // SHT_DYNSYM
  const dynsym: ElfSymbol[] = [];
  if (dynsymSec) {
    const strtab = sections[dynsymSec.link]!;
    for (let o = dynsymSec.offset; o < dynsymSec.offset + dynsymSec.size; o += dynsymSec.entsize) {
      const info = b[o + 4]!;
      dynsym.push({ name: cstr(strtab.offset + b.readUInt32LE(o)), bind: info >> 4, type: info & 15, shndx: b.readUInt16LE(o + 6) });
    }
  }
  const needed: string[] = [];
  const dynamic = sections.find((s) => s.type === 6); // SHT_DYNAMIC
  if (dynamic) {
    const strtab = sections[dynamic.link]!;
    for (let o = dynamic.offset; o < dynamic.offset + dynamic.size; o += 16) {
      const tag = Number(b.readBigInt64LE(o));
      if (tag === 0) break;
      if (tag === 1) needed.push(cstr(strtab.offset + Number(b.readBigUInt64LE(o + 8)))); // DT_NEEDED
    }
  }
  return { type, machine, dynsym, needed };
}

function expectNodeApiModule(file: string, machine: number) {
  const elf = readElf(file);
  expect(elf.type, 'ET_DYN: a shared object').toBe(3);
  expect(elf.machine).toBe(machine);
  const entry = elf.dynsym.find((s) => s.name === 'napi_register_module_v1');
  expect(entry, 'exports napi_register_module_v1').toBeDefined();
  expect(entry!.shndx, 'napi_register_module_v1 is defined here').not.toBe(0);
  expect(entry!.bind, 'global').toBe(1);
  expect(entry!.type, 'a function').toBe(2);
  // Node-API only: nothing from V8, libuv or a particular Node's ABI.
  const undefinedNames = elf.dynsym.filter((s) => s.shndx === 0 && s.name).map((s) => s.name);
  expect(undefinedNames.filter((n) => /^_ZN2v8|^uv_|^node_module_register$/.test(n))).toEqual([]);
  expect(undefinedNames.some((n) => n.startsWith('napi_'))).toBe(true);
  expect(elf.needed.filter((n) => !/^(libstdc\+\+|libm|libgcc_s|libc|libpthread|ld-linux)/.test(n))).toEqual([]);
  return elf;
}

const x64 = binaryOf('linux-x64');
const arm64 = binaryOf('linux-arm64');
if (!x64) console.warn('prebuilds: linux-x64 skipped, no prebuilds/linux-x64/*.node (npm run prebuild)');
if (!arm64) console.warn('prebuilds: linux-arm64 skipped, no prebuilds/linux-arm64/*.node (npm run prebuild with g++-aarch64-linux-gnu installed)');
const qemuTools = ['qemu-aarch64', 'aarch64-linux-gnu-gcc', 'aarch64-linux-gnu-g++'].filter((c) => !has(c));
if (arm64 && qemuTools.length) console.warn(`prebuilds: the qemu checks of linux-arm64 skipped, ${qemuTools.join(', ')} not found (apt-get install qemu-user g++-aarch64-linux-gnu)`);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-prebuilds-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe.skipIf(!x64 || process.platform !== 'linux' || process.arch !== 'x64')('prebuilds/linux-x64', () => {
  it('is an x86-64 shared object exporting the Node-API entry point', () => {
    expectNodeApiModule(x64!, 62);
  });
  it('loads in Node and reads a model (SPARROW_ADDON pointing at it)', () => {
    const model = path.resolve(root, '../shared/models/stories260K-f32.gguf');
    const r = spawnSync(
      process.execPath,
      ['-e', `const m = require(${JSON.stringify(x64)}); if (typeof m.setErrorClasses !== 'function') process.exit(3)`],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    const cli = spawnSync(process.execPath, [path.join(root, 'bin/sparrow.mjs'), 'complete', model, 'Once upon a time', '--max-tokens', '32'], {
      encoding: 'utf8',
      env: { ...process.env, SPARROW_ADDON: x64 },
    });
    expect(cli.status, cli.stderr).toBe(0);
    const refs = JSON.parse(fs.readFileSync(path.resolve(root, '../shared/models/reference_outputs.json'), 'utf8'));
    expect(cli.stdout).toBe(refs.models['stories260K-f32.gguf'][0].outPiecesText);
  });
});

describe.skipIf(!arm64)('prebuilds/linux-arm64', () => {
  it('is an AArch64 shared object exporting the Node-API entry point', () => {
    expectNodeApiModule(arm64!, 183);
  });

  it.skipIf(qemuTools.length > 0)('the aarch64 dynamic loader loads it under qemu-user', () => {
    const src = path.join(tmp, 'load.c');
    fs.writeFileSync(
      src,
      `#include <dlfcn.h>
#include <stdio.h>
int main(int argc, char** argv) {
  void* h = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);
  if (!h) { printf("dlopen failed: %s\\n", dlerror()); return 1; }
  void* f = dlsym(h, "napi_register_module_v1");
  if (!f) { printf("no napi_register_module_v1: %s\\n", dlerror()); return 1; }
  printf("loaded, napi_register_module_v1 found\\n");
  return 0;
}
`,
    );
    const exe = path.join(tmp, 'load');
    execFileSync('aarch64-linux-gnu-gcc', ['-O1', '-o', exe, src, '-ldl'], { stdio: 'pipe' });
    const r = spawnSync('qemu-aarch64', ['-L', '/usr/aarch64-linux-gnu', exe, arm64!], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout + r.stderr).toContain('loaded, napi_register_module_v1 found');
    expect(r.status).toBe(0);
  });

  // The objects that build compiled (build-prebuild/, left by npm run prebuild), linked with
  // the NEON-vs-generic test program, run under qemu.
  const objDir = path.join(root, 'build-prebuild/linux-arm64/build/Release/obj.target');
  const haveObjs = fs.existsSync(path.join(objDir, 'sparrow_neon.a'));
  if (arm64 && !haveObjs) console.warn('prebuilds: the arm64 kernel check skipped, no build-prebuild/linux-arm64 objects (npm run prebuild)');
  it.skipIf(qemuTools.length > 0 || !haveObjs)("that build's NEON kernels agree with the generic twins under qemu", () => {
    const o = (rel: string) => path.join(objDir, 'sparrow/native', rel);
    const inDir = (d: string) => fs.readdirSync(path.join(objDir, 'sparrow/native', d)).filter((f) => f.endsWith('.o')).map((f) => o(`${d}/${f}`));
    const objects = [
      o('quant/quant.o'),
      o('kernels/matrix.o'),
      o('kernels/dispatch.o'),
      o('kernels/isa.o'),
      o('core/ggml_types.o'),
      o('core/pages.o'),
      ...inDir('kernels/generic'),
      path.join(objDir, 'sparrow_neon.a'),
    ];
    const exe = path.join(tmp, 'neon_test');
    execFileSync(
      'aarch64-linux-gnu-g++',
      ['-O2', '-std=c++17', '-static', '-DSPARROW_HAVE_NEON_KERNELS', `-I${path.join(root, 'native')}`, '-o', exe, path.join(root, 'test/kernels/native/neon_test.cpp'), ...objects, '-lpthread'],
      { stdio: 'pipe' },
    );
    const r = spawnSync('qemu-aarch64', [exe], { encoding: 'utf8', timeout: 120_000 });
    expect(r.stdout + r.stderr).toMatch(/^ok: \d+ NEON checks/m);
    expect(r.status).toBe(0);
  });
});
