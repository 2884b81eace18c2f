/** `sparrow serve` as a process: flags, the API key from the environment, failures. */
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { rawRequest, STORIES, waitFor } from './helpers.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/sparrow.mjs');

describe('sparrow serve', () => {
  it('refuses bad flags with one line and exit code 2, a missing file with exit code 1', () => {
    for (const args of [['--parallel', '0'], ['--port', '70000'], ['--bogus'], ['--timeout', '-3'], ['--tool-format', 'xml'], []]) {
      const r = spawnSync(process.execPath, [BIN, 'serve', ...(args.length ? [STORIES, ...args] : [])], { encoding: 'utf8', timeout: 30_000 });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^sparrow serve: /m);
    }
    const missing = spawnSync(process.execPath, [BIN, 'serve', '/no/such/model.gguf', '--port', '0'], { encoding: 'utf8', timeout: 30_000 });
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/sparrow serve: .*no\/such\/model\.gguf/);
  });

  it('takes the API key from SPARROW_API_KEY, and exits 0 on SIGINT', async () => {
    const child = spawn(process.execPath, [BIN, 'serve', STORIES, '--port', '0', '--parallel', '1', '--threads', '1'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, SPARROW_API_KEY: 'from-the-env' },
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      let log = '';
      child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      expect(await waitFor(() => /model ready/.test(log) && /listening on/.test(log), 30_000)).toBe(true);
      const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log)![1]);
      expect((await rawRequest(port, 'GET', '/v1/models')).status).toBe(401);
      expect((await rawRequest(port, 'GET', '/v1/models', undefined, { authorization: 'Bearer from-the-env' })).status).toBe(200);
      expect((await rawRequest(port, 'GET', '/health')).status).toBe(200);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);
});
