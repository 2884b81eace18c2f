/**
 * `npx bench --quick --json` end to end: compiles the project (as `npm install` does) into
 * a private folder, runs the bench's entry point on the quick model (written into a fresh
 * cache), and checks the JSON has every figure for each model and engine.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '../../bench/report.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// Inside the repository (gitignored), so the compiled code finds package.json and node_modules.
const out = path.join(root, 'build-bench', 'cli-test-dist');
const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-bench-cache-'));
// An explicit addon (SPARROW_ADDON) stays usable from other working directories.
const env = {
  ...process.env,
  SPARROW_CACHE: cache,
  ...(process.env.SPARROW_ADDON ? { SPARROW_ADDON: path.resolve(root, process.env.SPARROW_ADDON) } : {}),
};
const hasLlama = fs.existsSync(path.join(root, 'node_modules', 'node-llama-cpp', 'package.json'));

function bench(...args: string[]) {
  const entry = pathToFileURL(path.join(out, 'bench', 'main.js')).href;
  const code = `const { main } = await import(${JSON.stringify(entry)}); process.exitCode = await main(process.argv.slice(1));`;
  return spawnSync(process.execPath, ['--input-type=module', '-e', code, '--', ...args], {
    cwd: root,
    env,
    encoding: 'utf8',
    timeout: 170_000,
  });
}

beforeAll(() => {
  fs.rmSync(out, { recursive: true, force: true });
  try {
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json', '--outDir', out], {
      cwd: root,
      stdio: 'pipe',
    });
  } catch {
    // Type errors elsewhere in the tree still emit JavaScript; the checks below need only ours.
  }
  expect(fs.existsSync(path.join(out, 'bench', 'main.js')), 'tsc emitted bench/main.js').toBe(true);
}, 120_000);
afterAll(() => fs.rmSync(cache, { recursive: true, force: true }));

describe('npx bench', () => {
  it('--quick --json: every figure for each model and engine, with ratios', () => {
    // One thread: a shared 2-core test machine makes llama.cpp's spinning threads crawl.
    const r = bench('--quick', '--json', '--threads', '1');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/writing smollm-135m q4_0/);
    const report = JSON.parse(r.stdout) as BenchReport;
    expect(report.settings).toMatchObject({ pp: 64, tg: 16, rounds: 1, threads: 1, quick: true });
    expect(report.machine.bandwidth_bytes_per_s).toBeGreaterThan(1e8);
    expect(report.models).toHaveLength(1);
    const engines = hasLlama ? ['sparrow', 'llama.cpp'] : ['sparrow'];
    for (const model of report.models) {
      expect(model.weight_bytes_per_token).toBeGreaterThan(1e6);
      expect(Object.keys(model.engines).sort()).toEqual([...engines].sort());
      for (const name of engines) {
        const e = model.engines[name as 'sparrow']!;
        for (const f of ['pp_tps', 'tg_tps', 'load_ms', 'ttft_ms', 'rss_bytes'] as const) {
          expect(e[f], `${name} ${f}`).toBeGreaterThan(0);
          expect(Number.isFinite(e[f]), `${name} ${f}`).toBe(true);
        }
        expect(e.rss_bytes).toBeGreaterThan(model.weight_bytes_per_token / 2);
        expect(e.bandwidth_fraction).toBeGreaterThan(0);
        expect(e).toHaveProperty('ratio');
        if (hasLlama) {
          expect(e.ratio!.tg_tps.median).toBeGreaterThan(0);
          expect(e.ratio!.pp_tps.median).toBeCloseTo(e.pp_tps! / model.engines['llama.cpp']!.pp_tps!, 9);
        } else {
          expect(e.ratio).toBeNull();
        }
      }
      if (hasLlama) expect(model.engines['llama.cpp']!.ratio!.load_ms.median).toBe(1);
    }
  }, 180_000);

  it('in an app without node-llama-cpp: measures sparrow from the cache and says how to add llama.cpp', () => {
    // node_modules/sparrow-llm as npm installs it (bin + dist), beside every dependency of
    // this repository except node-llama-cpp.
    const app = path.join(cache, 'app');
    const pkg = path.join(app, 'node_modules', 'sparrow-llm');
    fs.mkdirSync(pkg, { recursive: true });
    for (const dep of fs.readdirSync(path.join(root, 'node_modules')))
      if (!dep.includes('node-llama-cpp') && dep !== 'sparrow-llm')
        fs.symlinkSync(path.join(root, 'node_modules', dep), path.join(app, 'node_modules', dep));
    fs.copyFileSync(path.join(root, 'package.json'), path.join(pkg, 'package.json'));
    fs.cpSync(path.join(root, 'bin'), path.join(pkg, 'bin'), { recursive: true });
    fs.cpSync(out, path.join(pkg, 'dist'), { recursive: true });
    if (fs.existsSync(path.join(root, 'build'))) fs.symlinkSync(path.join(root, 'build'), path.join(pkg, 'build'));

    const r = spawnSync(process.execPath, [path.join(pkg, 'bin', 'bench.mjs'), '--quick', '--pp', '8', '--tg', '4', '--threads', '1'], {
      cwd: app,
      env,
      encoding: 'utf8',
      timeout: 110_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/writing/); // the first test cached it
    expect(r.stderr).toContain('npm i -D node-llama-cpp@3.21.1');
    expect(r.stdout).toMatch(/llama\.cpp: not measured \(node-llama-cpp is not installed/);
    expect(r.stdout).toMatch(/smollm-135m q4_0\s+load\s+[\d.]+ m?s\s+-/);
    expect(r.stdout).toMatch(/tg4\s+[\d.]+ tok\/s/);
  }, 120_000);

  it('a bad option exits 1 and names it', () => {
    const bad = bench('--threads', 'lots');
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--threads must be a number/);
    expect(bench('--quick', '--model', 'x.gguf').stderr).toMatch(/--model: no such file: x\.gguf/);
  });
});
