#!/usr/bin/env node
// The packaged-install test: what a user gets from `npm install sparrow-llm`.
//
// Packs the package (`npm pack`: the prepack script builds prebuilds/ first), installs the
// tarball into a fresh app folder (its dependencies from the npm registry or npm's cache),
// then runs there, as a user would: the library import, `npx sparrow` (inspect, info,
// complete, chat, pull against a server on 127.0.0.1, --version), the README's code
// examples (the `readme-example` blocks, with model.gguf replaced by a real small model)
// and `npx bench --quick --json`.
//
//   node test/package/install.mjs [options]
//     --tarball FILE    test this tarball instead of packing one
//     --node FILE       run npm, the install scripts and the app with this node binary
//     --no-compiler     install with no C++ compiler, make or python on PATH (CC/CXX=false):
//                       only the prebuilt binary can make it work; fails if a build was tried
//     --from-source     remove this platform's prebuilt binary from the tarball first: the
//                       install must build the addon from source, as without prebuilds
//     --skip-bench      leave out `npx bench --quick` (the slowest step)
//     --keep            keep the app folder (its path is printed)
//
// Ends with one line "package test: N passed, M failed" and exit code 0 only when M is 0.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const models = path.resolve(root, '../shared/models');
const MODEL = path.join(models, 'stories260K-f32.gguf');
const argv = process.argv.slice(2);
const flag = (n) => argv.includes(n);
const value = (n) => {
  const i = argv.indexOf(n);
  return i >= 0 ? argv[i + 1] : undefined;
};

const node = path.resolve(value('--node') ?? process.execPath);
const noCompiler = flag('--no-compiler');
const fromSource = flag('--from-source');
const platform = `${process.platform}-${process.arch}`;
const t00 = Date.now();

let passed = 0;
let failed = 0;
const log = (s) => console.log(s);
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    log(`  ok   ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (err) {
    failed++;
    log(`  FAIL ${name}: ${String(err?.message ?? err).split('\n').slice(0, 30).join('\n       ')}`);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** npm's own CLI script, run with `node` so that npm and its install scripts use that Node. */
function npmCli() {
  const npmBin = fs.realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
  return path.join(path.dirname(npmBin), 'npm-cli.js');
}
const NPM = npmCli();
const NPX = path.join(path.dirname(NPM), 'npx-cli.js');

// PATH for the app: this node first; with --no-compiler, only a few tools (no cc, c++, g++, make, python).
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-pkg-'));
let PATHV = `${path.dirname(node)}${path.delimiter}${process.env.PATH}`;
if (noCompiler) {
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(node, path.join(bin, 'node'));
  fs.writeFileSync(path.join(bin, 'npm'), `#!/bin/sh\nexec "${node}" "${NPM}" "$@"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'npx'), `#!/bin/sh\nexec "${node}" "${NPX}" "$@"\n`, { mode: 0o755 });
  for (const tool of ['sh', 'bash', 'env', 'cat', 'ls', 'rm', 'mkdir', 'cp', 'mv', 'uname', 'tar', 'gzip', 'git']) {
    const p = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    if (p) fs.symlinkSync(p, path.join(bin, tool));
  }
  PATHV = bin;
}
const env = {
  ...process.env,
  PATH: PATHV,
  ...(noCompiler ? { CC: 'false', CXX: 'false', LINK: 'false', PYTHON: 'false' } : {}),
  npm_config_audit: 'false',
  npm_config_fund: 'false',
  npm_config_update_notifier: 'false',
  npm_config_prefer_offline: 'true',
  npm_config_yes: 'false',
};
delete env.SPARROW_ADDON;
delete env.npm_config_build_from_source;

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: 300_000, maxBuffer: 64 << 20, ...opts });
  if (r.error) throw r.error;
  return r;
}
function ok(r, what) {
  assert(r.status === 0, `${what}: exit ${r.status ?? r.signal}\n${(r.stderr || '').trim().split('\n').slice(-15).join('\n')}`);
  return r;
}
const nodeVersion = run(node, ['--version']).stdout.trim();
log(`package test: node ${nodeVersion} (${node}), ${platform}${noCompiler ? ', no compiler' : ''}${fromSource ? ', from source' : ''}`);

// 1. The tarball.
let tarball = value('--tarball') && path.resolve(value('--tarball'));
if (!tarball) {
  await check('npm pack (prepack builds the prebuilt binaries)', () => {
    const r = ok(run(process.execPath, [NPM, 'pack', '--json', '--pack-destination', work], { cwd: root, env: { ...process.env } }), 'npm pack');
    const info = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')));
    tarball = path.join(work, info[0].filename);
  });
}
if (!tarball || !fs.existsSync(tarball)) {
  log(`package test: no tarball\npackage test: ${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}

await check('the tarball holds dist/, bin/, the sources and a prebuilt binary for this platform', () => {
  const list = run('tar', ['tzf', tarball]).stdout.split('\n');
  for (const f of ['package/dist/src/index.js', 'package/dist/bench/main.js', 'package/bin/sparrow.mjs', 'package/bin/bench.mjs', 'package/binding.gyp', 'package/native/sources.cjs']) {
    assert(list.includes(f), `${f} is missing`);
  }
  const pre = list.filter((f) => f.startsWith('package/prebuilds/') && f.endsWith('.node'));
  assert(pre.some((f) => f.startsWith(`package/prebuilds/${platform}/`)), `no prebuilds/${platform}/*.node (has: ${pre.join(', ') || 'none'})`);
  assert(!list.some((f) => f.startsWith('package/build/') || f.startsWith('package/test/') || f.endsWith('.gguf')), 'build/, test/ or a model file is in the package');
});

if (fromSource) {
  // The same package without this platform's binary: what a user on an unsupported platform gets.
  const x = path.join(work, 'unpacked');
  fs.mkdirSync(x);
  run('tar', ['xzf', tarball, '-C', x]);
  fs.rmSync(path.join(x, 'package/prebuilds', platform), { recursive: true, force: true });
  tarball = path.join(work, 'sparrow-llm-no-prebuild.tgz');
  ok(run('tar', ['czf', tarball, '-C', x, 'package']), 'repack');
}

// 2. A fresh app that installs it.
const app = path.join(work, 'app');
fs.mkdirSync(app);
fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'sparrow-app', version: '1.0.0', private: true, type: 'module' }, null, 2));
const pkgDir = path.join(app, 'node_modules/sparrow-llm');

await check(`npm install the tarball${noCompiler ? ' with no compiler on PATH' : ''}`, () => {
  ok(run(node, [NPM, 'install', tarball, '--foreground-scripts'], { cwd: app }), 'npm install');
  assert(fs.existsSync(pkgDir), 'node_modules/sparrow-llm is missing');
});

await check(fromSource ? 'the addon was built from source (no prebuilt binary here)' : 'the prebuilt binary is used; nothing was built', () => {
  const r = ok(run(node, ['-e', `console.log(require('node-gyp-build').path(${JSON.stringify(pkgDir)}))`], { cwd: pkgDir }), 'node-gyp-build');
  const file = r.stdout.trim();
  if (fromSource) {
    assert(file.includes(`${path.sep}build${path.sep}Release${path.sep}`), `loads ${file}, not build/Release`);
  } else {
    assert(file.includes(`${path.sep}prebuilds${path.sep}${platform}${path.sep}`), `loads ${file}, not the prebuilt binary`);
    assert(!fs.existsSync(path.join(pkgDir, 'build')), 'a build/ folder exists: the install tried to compile');
  }
});

// As a user types it (npx NAME ARGS); npm_config_yes=false: never download a missing command.
const npx = (args, opts = {}) => run(node, [NPX, ...args], { cwd: app, ...opts });

await check('the library loads and generates (import sparrow-llm)', () => {
  const script = `
    import { loadModel, systemInfo } from 'sparrow-llm';
    const model = await loadModel(${JSON.stringify(MODEL)});
    const session = model.createSession({ contextSize: 256 });
    const r = await session.complete('Once upon a time', { maxTokens: 32 });
    console.log(JSON.stringify({ text: r.text, isa: systemInfo().isa }));
    model.dispose();`;
  fs.writeFileSync(path.join(app, 'generate.mjs'), script);
  const r = ok(run(node, ['generate.mjs'], { cwd: app }), 'generate.mjs');
  const out = JSON.parse(r.stdout.trim().split('\n').at(-1));
  const ref = JSON.parse(fs.readFileSync(path.join(models, 'reference_outputs.json'), 'utf8')).models['stories260K-f32.gguf'][0];
  assert(out.text === ref.outPiecesText, `greedy text differs from the reference:\n${out.text}\n${ref.outPiecesText}`);
});

await check('npx sparrow --version, info, inspect', () => {
  const version = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')).version;
  assert(ok(npx(['sparrow', '--version']), 'version').stdout.trim() === version, 'wrong --version');
  const info = JSON.parse(ok(npx(['sparrow', 'info', '--json']), 'info').stdout);
  assert(info.supportedIsas.includes(info.isa), `info: ${JSON.stringify(info)}`);
  const r = ok(npx(['sparrow', 'inspect', MODEL]), 'inspect');
  assert(/^architecture\s+llama$/m.test(r.stdout) && /GGUF v3, \d+ tensors/.test(r.stdout), `inspect printed:\n${r.stdout}`);
  const bad = npx(['sparrow', 'inspect', path.join(app, 'package.json')]);
  assert(bad.status === 1 && bad.stderr.trim().split('\n').length === 1, `inspect of a bad file: exit ${bad.status}, ${bad.stderr}`);
});

await check('npx sparrow complete streams the reference greedy text', () => {
  const ref = JSON.parse(fs.readFileSync(path.join(models, 'reference_outputs.json'), 'utf8')).models['stories260K-f32.gguf'][1];
  const r = ok(npx(['sparrow', 'complete', MODEL, ref.prompt, '--max-tokens', String(ref.maxTokens)]), 'complete');
  assert(r.stdout === ref.outPiecesText, `complete printed ${JSON.stringify(r.stdout)}, expected ${JSON.stringify(ref.outPiecesText)}`);
  const bad = npx(['sparrow', 'complete', MODEL, 'x', '--top-k', '-1']);
  assert(bad.status === 2, `a bad flag: exit ${bad.status}`);
});

await check('npx sparrow chat (stdin piped)', () => {
  const r = ok(npx(['sparrow', 'chat', MODEL, '--max-tokens', '8', '--system', 'You tell stories.'], { input: 'Hello\nTell me about a dog.\n' }), 'chat');
  assert(r.stdout.split('\n').filter((l) => l.trim()).length >= 2, `chat printed ${JSON.stringify(r.stdout)}`);
});

await check('npx sparrow pull from a server on 127.0.0.1 (cut halfway, resumed)', async () => {
  const body = fs.readFileSync(MODEL);
  const sha = createHash('sha256').update(body).digest('hex');
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      const s = Number(m[1]);
      res.writeHead(206, { 'content-length': body.length - s, 'content-range': `bytes ${s}-${body.length - 1}/${body.length}` });
      res.end(body.subarray(s));
    } else {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${server.address().port}/models/stories.gguf`;
    // spawn, not spawnSync: the server runs in this process.
    const child = spawn(node, [NPX, 'sparrow', 'pull', url, '-o', path.join(app, 'models'), '--sha256', sha], { cwd: app, env });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const code = await new Promise((r) => child.on('exit', r));
    assert(code === 0, `pull: exit ${code}\n${err}`);
    assert(requests === 2, `${requests} requests, expected 2 (the second one a Range request)`);
    assert(fs.readFileSync(path.join(app, 'models/stories.gguf')).equals(body), 'the pulled file differs');
  } finally {
    server.close();
  }
});

await check("README's code examples (readme-example blocks) run against the installed package", () => {
  const readme = fs.readFileSync(path.join(pkgDir, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/<!-- readme-example: ([\w-]+) -->\s*```js\n([\s\S]*?)```/g)];
  assert(blocks.length >= 3, `only ${blocks.length} readme-example blocks in the packaged README.md`);
  for (const [, name, code] of blocks) {
    const file = path.join(app, `readme-${name}.mjs`);
    fs.writeFileSync(file, code.replaceAll("'model.gguf'", JSON.stringify(MODEL)));
    const r = run(node, [file], { cwd: app, timeout: 60_000 });
    assert(r.status === 0, `readme-example ${name}: exit ${r.status ?? r.signal}\n${r.stderr.trim().split('\n').slice(-10).join('\n')}`);
    assert(r.stdout.trim().length > 0, `readme-example ${name} printed nothing`);
  }
});

if (!flag('--skip-bench')) {
  await check('npx bench --quick --json', () => {
    const r = ok(npx(['bench', '--quick', '--json'], { timeout: 240_000 }), 'bench');
    const report = JSON.parse(r.stdout);
    const sparrow = report.engines.find((e) => e.name === 'sparrow');
    assert(sparrow?.available, `sparrow engine not available: ${sparrow?.note}`);
    for (const m of report.models) {
      const e = m.engines.sparrow;
      assert(e && e.errors.length === 0 && e.tg_tps > 0 && e.pp_tps > 0, `${m.name}: ${JSON.stringify(e?.errors ?? e)}`);
    }
    assert(report.models.length > 0, 'no models measured');
  });
}

if (flag('--keep')) log(`  app kept in ${app}`);
else fs.rmSync(work, { recursive: true, force: true });
log(`package test: ${passed} passed, ${failed} failed (node ${nodeVersion}, ${((Date.now() - t00) / 1000).toFixed(0)} s)`);
process.exitCode = failed ? 1 : 0;
