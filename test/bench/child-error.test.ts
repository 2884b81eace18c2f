/** A bench child that dies before reporting is reported with its own error (its stderr's error line). */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { childError } from '../../bench/main.js';

const root = path.resolve(__dirname, '../..');

describe('childError', () => {
  it("picks a real child's ERR_MODULE_NOT_FOUND line out of its stderr", () => {
    // What a child sees when a dependency of the bench is missing (tinybench was a devDependency).
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', "import 'tinybench-that-is-not-installed';"], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    const line = childError(r.stderr);
    expect(line).toMatch(/ERR_MODULE_NOT_FOUND|Cannot find package/);
    expect(line).toContain('tinybench-that-is-not-installed');
    expect(line.split('\n')).toHaveLength(1);
  });

  it('takes a thrown error, else the last line; never more than 500 characters', () => {
    const r = spawnSync(process.execPath, ['-e', "console.error('loading...'); throw new RangeError('bad size 42')"], { encoding: 'utf8' });
    expect(childError(r.stderr)).toBe('RangeError: bad size 42');
    expect(childError('something\nwent wrong here\n\n')).toBe('went wrong here');
    expect(childError('')).toBe('');
    expect(childError('Error: ' + 'x'.repeat(2000)).length).toBe(500);
  });

  it('runChild (the compiled bench, needs npm run build:ts) rejects with the error of a child that died before reporting', async () => {
    const { runChild } = (await import(path.join(root, 'dist/bench/main.js'))) as typeof import('../../bench/main.js');
    // The child fails the way it did when tinybench was missing: at start-up, before any reply.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-child-'));
    const preload = path.join(dir, 'fail.cjs');
    fs.writeFileSync(preload, "const e = new Error(\"Cannot find package 'tinybench' imported from the worker\"); e.code = 'ERR_MODULE_NOT_FOUND'; throw e;\n");
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = `--require ${preload}`;
    const run = runChild({ engine: 'sparrow', model: 'none.gguf', threads: 1, promptTokens: [1], decodeTokens: [1, 2], iterations: 1 }, 60_000);
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
    await expect(run).rejects.toThrow(/sparrow process ended with exit code 1 before reporting: Error: Cannot find package 'tinybench'/);
    fs.rmSync(dir, { recursive: true });
  });
});
