#!/usr/bin/env node
// `npm run prebuild`: builds the addon for each target into prebuilds/<platform>-<arch>/,
// where node-gyp-build (the package's install script and its loader) finds it before it
// tries any build. One Node-API binary serves every Node version (20, 22, 24, Electron).
//
// Each target is built by node-gyp from the same binding.gyp as a source install, in its
// own folder (build-prebuild/<target>/, so build/ is left alone; native/ is linked in). linux-arm64 is
// cross-compiled on an x64 Linux host with Debian's aarch64 toolchain
// (apt-get install g++-aarch64-linux-gnu); Node's headers are the same for every
// architecture. macOS and Windows binaries are built on those systems (see README and
// .github/workflows/prebuild.yml).
//
//   node scripts/prebuild.mjs                        this host's target, plus linux-arm64 when the cross compiler is here
//   node scripts/prebuild.mjs --targets linux-x64,linux-arm64   exactly these (a missing toolchain is an error)
//   node scripts/prebuild.mjs --if-stale             skip targets whose binary was built from the current sources
//
// The binary is named sparrow-llm.glibc.napi.node: node-gyp-build picks it for any Node-API
// runtime on glibc Linux; on musl (Alpine) it builds from source instead.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const value = (name) => {
  const i = args.findIndex((a) => a === name || a.startsWith(name + '='));
  if (i < 0) return undefined;
  return args[i].includes('=') ? args[i].slice(name.length + 1) : args[i + 1];
};
if (flag('--help')) {
  console.log('usage: node scripts/prebuild.mjs [--targets linux-x64,linux-arm64] [--if-stale] [--jobs N]');
  process.exit(0);
}

const log = (s) => console.error(`prebuild: ${s}`);
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const host = `${process.platform}-${process.arch}`;

/** How to compile for each target from this host: compilers, or null when this host cannot. */
function toolchain(target) {
  if (target === host) return { env: {} };
  if (target === 'linux-arm64' && host === 'linux-x64') {
    const p = 'aarch64-linux-gnu-';
    if (!has(`${p}g++`)) return null;
    return {
      env: { CC: `${p}gcc`, CXX: `${p}g++`, LINK: `${p}g++`, AR: `${p}ar`, CC_host: 'gcc', CXX_host: 'g++', LINK_host: 'g++', AR_host: 'ar' },
      strip: `${p}strip`,
    };
  }
  return null;
}

const explicit = value('--targets');
const targets = explicit ? explicit.split(',').map((s) => s.trim()).filter(Boolean) : [host, ...(host === 'linux-x64' && toolchain('linux-arm64') ? ['linux-arm64'] : [])];
if (!explicit && host === 'linux-x64' && !targets.includes('linux-arm64')) {
  log('skipping linux-arm64: no aarch64-linux-gnu-g++ (apt-get install g++-aarch64-linux-gnu)');
}

/** node-gyp: the copy npm runs for install scripts (npm_config_node_gyp), else the one bundled with npm. */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  try {
    const npmDir = path.dirname(path.dirname(fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim())));
    candidates.push(path.join(npmDir, 'node_modules/node-gyp/bin/node-gyp.js'));
  } catch {
    /* no npm on PATH */
  }
  const found = candidates.find((c) => c && fs.existsSync(c));
  if (!found) throw new Error('cannot find node-gyp (it comes with npm); run this through `npm run prebuild`');
  return found;
}

/** Node's headers: npm's nodedir setting (the project .npmrc), else the ones installed beside this node. */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (fs.existsSync(path.join(prefix, 'include/node/node_api.h'))) return prefix;
  return undefined; // node-gyp downloads them
}

/** A hash of everything the binary is built from, to skip an up-to-date target with --if-stale. */
function sourceHash(target) {
  const h = createHash('sha256');
  h.update(target);
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(c|cc|cpp|h|hpp|inc|cjs|gyp)$/.test(e.name)) h.update(path.relative(root, p)).update(fs.readFileSync(p));
    }
  };
  walk(path.join(root, 'native'));
  h.update(fs.readFileSync(path.join(root, 'binding.gyp')));
  return h.digest('hex');
}

const ELF_MACHINE = { x64: 62, arm64: 183 };

/** Checks a built binary: an ELF shared object of the right machine (Linux targets). */
function checkElf(file, arch) {
  const b = fs.readFileSync(file);
  if (b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
  const type = b.readUInt16LE(16);
  const machine = b.readUInt16LE(18);
  if (type !== 3) throw new Error(`${file} is not a shared object (e_type ${type})`);
  if (machine !== ELF_MACHINE[arch]) throw new Error(`${file} is for ELF machine ${machine}, not ${arch} (${ELF_MACHINE[arch]})`);
}

const jobs = value('--jobs') ?? String(Math.max(1, Math.min(os.cpus().length, 8)));
let failed = 0;
for (const target of targets) {
  const [platform, arch] = target.split('-');
  const tc = toolchain(target);
  if (!tc) {
    log(`${target}: cannot be built on ${host}${target === 'linux-arm64' ? ' without aarch64-linux-gnu-g++ (apt-get install g++-aarch64-linux-gnu)' : ''}`);
    failed++;
    continue;
  }
  const outDir = path.join(root, 'prebuilds', target);
  const out = path.join(outDir, `sparrow-llm${platform === 'linux' ? '.glibc' : ''}.napi.node`);
  const stage = path.join(root, 'build-prebuild', target);
  const stamp = path.join(root, 'build-prebuild', `${target}.sources`);
  const hash = sourceHash(target);
  if (flag('--if-stale') && fs.existsSync(out) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === hash) {
    log(`${target}: up to date (${path.relative(root, out)})`);
    continue;
  }
  // The build folder: binding.gyp and native/ as links, so gyp's relative paths hold.
  fs.mkdirSync(stage, { recursive: true });
  // Remove what an earlier run left: a link itself, never what it points to.
  for (const name of ['binding.gyp', 'native']) {
    const p = path.join(stage, name);
    const old = fs.lstatSync(p, { throwIfNoEntry: false });
    if (old?.isSymbolicLink() || old?.isFile()) fs.unlinkSync(p);
    else if (old) fs.rmSync(p, { recursive: true });
  }
  fs.copyFileSync(path.join(root, 'binding.gyp'), path.join(stage, 'binding.gyp'));
  const link = path.join(stage, 'native');
  if (process.platform === 'win32') fs.symlinkSync(path.join(root, 'native'), link, 'junction');
  else fs.symlinkSync(path.relative(stage, path.join(root, 'native')), link);
  const gypArgs = [nodeGyp(), 'rebuild', `--arch=${arch}`, '-j', jobs];
  const nd = nodeDir();
  if (nd) gypArgs.push(`--nodedir=${nd}`);
  log(`${target}: node-gyp ${gypArgs.slice(1).join(' ')}${Object.keys(tc.env).length ? ` (CXX=${tc.env.CXX})` : ''}`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, gypArgs, { cwd: stage, stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, ...tc.env } });
  if (r.status !== 0) {
    log(`${target}: build failed (exit ${r.status ?? r.signal})`);
    failed++;
    continue;
  }
  const built = path.join(stage, 'build/Release/sparrow.node');
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  fs.copyFileSync(built, out);
  if (platform === 'linux') {
    const strip = tc.strip ?? (has('strip') ? 'strip' : undefined);
    if (strip) execFileSync(strip, ['--strip-unneeded', out]);
    checkElf(out, arch);
  }
  fs.writeFileSync(stamp, hash);
  log(`${target}: ${path.relative(root, out)} (${(fs.statSync(out).size / 1024).toFixed(0)} KiB, ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}

// A binary of this host is checked by loading it.
const mine = path.join(root, 'prebuilds', host);
if (targets.includes(host) && fs.existsSync(mine)) {
  const file = fs.readdirSync(mine).find((f) => f.endsWith('.node'));
  const r = spawnSync(process.execPath, ['-e', `const m = require(${JSON.stringify(path.join(mine, file))}); if (typeof m.setErrorClasses !== 'function') process.exit(3)`], { encoding: 'utf8' });
  if (r.status !== 0) {
    log(`${host}: the binary does not load: ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
    failed++;
  }
}
process.exitCode = failed ? 1 : 0;
