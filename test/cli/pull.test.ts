/**
 * `sparrow pull` against a local HTTP server on 127.0.0.1 (no other traffic): a transfer cut
 * halfway is resumed with a Range request, in the same run and in the next one; the GGUF
 * magic and --sha256 are checked; redirects are followed; hf: shorthand maps to the URL.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fileNameOf, resolvePullUrl } from '../../src/cli/commands/pull.js';

const root = path.resolve(__dirname, '../..');
const bin = path.join(root, 'bin/sparrow.mjs');

// A GGUF-looking file: the magic, then random bytes (pull checks only the magic and the hash).
const file = Buffer.concat([Buffer.from('GGUF'), Buffer.from([3, 0, 0, 0]), randomBytes(3 * 2 ** 20 + 12345)]);
const sha = createHash('sha256').update(file).digest('hex');
const notGguf = Buffer.concat([Buffer.from('<!doctype html>'), randomBytes(5000)]);

interface Seen {
  url: string;
  range?: string;
}
let seen: Seen[] = [];
/** How many of the next full (non-range) transfers to cut halfway. */
let cutNext = 0;
let server: http.Server;
const stalled: http.ServerResponse[] = [];
let base = '';

function serve(req: http.IncomingMessage, res: http.ServerResponse) {
  seen.push({ url: req.url!, range: req.headers.range });
  if (req.url === '/redirect/model.gguf') {
    res.writeHead(302, { location: '/files/model.gguf' }).end();
    return;
  }
  if (req.url === '/norange/model.gguf') {
    // A server that ignores Range: always the whole file, cut halfway the first time.
    res.writeHead(200, { 'content-length': file.length });
    if (cutNext > 0) {
      cutNext--;
      res.write(file.subarray(0, file.length >> 1), () => setTimeout(() => res.socket?.destroy(), 50));
    } else res.end(file);
    return;
  }
  if (req.url === '/stall/model.gguf' && !req.headers.range) {
    // Half the file, then silence with the connection open.
    res.writeHead(200, { 'content-length': file.length });
    res.write(file.subarray(0, file.length >> 1));
    stalled.push(res);
    return;
  }
  const body = req.url === '/files/model.gguf' || req.url === '/stall/model.gguf' ? file : req.url === '/files/page.gguf' ? notGguf : undefined;
  if (!body) {
    res.writeHead(404).end('not found');
    return;
  }
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (m) {
    const start = Number(m[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    res.writeHead(206, { 'content-length': body.length - start, 'content-range': `bytes ${start}-${body.length - 1}/${body.length}`, 'accept-ranges': 'bytes' });
    res.end(body.subarray(start));
    return;
  }
  res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
  if (cutNext > 0) {
    cutNext--;
    // Half the file, then the connection drops.
    res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.socket?.destroy(), 50));
    return;
  }
  res.end(body);
}

function pull(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, 'pull', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

let dir: string;
beforeAll(async () => {
  server = http.createServer(serve);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  for (const r of stalled) r.socket?.destroy();
  return new Promise<void>((r) => server.close(() => r()));
});
beforeEach(() => {
  seen = [];
  cutNext = 0;
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-pull-'));
  return () => fs.rmSync(dir, { recursive: true, force: true });
});

describe('sparrow pull', () => {
  it('downloads a file whole, checks the sha256, prints the path', async () => {
    const r = await pull([`${base}/files/model.gguf`, '-o', dir, '--sha256', sha]);
    expect(r.code, r.stderr).toBe(0);
    const dest = path.join(dir, 'model.gguf');
    expect(r.stdout.trim()).toBe(dest);
    expect(fs.readFileSync(dest).equals(file)).toBe(true);
    expect(fs.existsSync(dest + '.part')).toBe(false);
    expect(r.stderr).toContain('sha256 ok');
  });

  it('a connection cut halfway is resumed with a Range request in the same run', async () => {
    cutNext = 1;
    const r = await pull([`${base}/files/model.gguf`, '--output', dir, '--sha256', sha]);
    expect(r.code, r.stderr).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'model.gguf')).equals(file)).toBe(true);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.range).toBeUndefined();
    const from = Number(/^bytes=(\d+)-$/.exec(seen[1]!.range ?? '')?.[1]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThanOrEqual(file.length >> 1);
    expect(r.stderr).toMatch(/resuming at \d+ bytes/);
  });

  it('with --retries 0 the cut run fails and keeps the .part file; the next run resumes it', async () => {
    cutNext = 1;
    const first = await pull([`${base}/files/model.gguf`, '-o', dir, '--retries', '0']);
    expect(first.code).toBe(1);
    expect(first.stderr.trim().split('\n').at(-1)).toMatch(/run the same command again to resume \[ERR_DOWNLOAD\]$/);
    const part = path.join(dir, 'model.gguf.part');
    const kept = fs.statSync(part).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(file.length);
    expect(fs.readFileSync(part).equals(file.subarray(0, kept))).toBe(true);
    const second = await pull([`${base}/files/model.gguf`, '-o', dir, '--sha256', sha]);
    expect(second.code, second.stderr).toBe(0);
    expect(seen.at(-1)!.range).toBe(`bytes=${kept}-`);
    expect(fs.readFileSync(path.join(dir, 'model.gguf')).equals(file)).toBe(true);
    expect(fs.existsSync(part)).toBe(false);
    // Pulling it again finds it there and sends no request.
    const n = seen.length;
    const third = await pull([`${base}/files/model.gguf`, '-o', dir]);
    expect(third.code).toBe(0);
    expect(seen.length).toBe(n);
  });

  it('a complete .part file is finished with the 416 answer to its Range request', async () => {
    fs.writeFileSync(path.join(dir, 'model.gguf.part'), file);
    const r = await pull([`${base}/files/model.gguf`, '-o', dir, '--sha256', sha]);
    expect(r.code, r.stderr).toBe(0);
    expect(seen.map((s) => s.range)).toEqual([`bytes=${file.length}-`]);
    expect(fs.readFileSync(path.join(dir, 'model.gguf')).equals(file)).toBe(true);
  });

  it('a server that ignores Range: the transfer starts over and the file is still right', async () => {
    cutNext = 1;
    const r = await pull([`${base}/norange/model.gguf`, '-o', dir, '--sha256', sha]);
    expect(r.code, r.stderr).toBe(0);
    expect(seen).toHaveLength(2);
    expect(seen[1]!.range).toMatch(/^bytes=\d+-$/);
    expect(fs.readFileSync(path.join(dir, 'model.gguf')).equals(file)).toBe(true);
  });

  it('a silent connection times out (--idle-timeout); the .part file resumes next time', async () => {
    const first = await pull([`${base}/stall/model.gguf`, '-o', dir, '--idle-timeout', '0.5', '--retries', '0']);
    expect(first.code).toBe(1);
    expect(first.stderr).toMatch(/no data for 0\.5 s; \d+ bytes kept in .*model\.gguf\.part/);
    const part = path.join(dir, 'model.gguf.part');
    expect(fs.statSync(part).size).toBe(file.length >> 1);
    const second = await pull([`${base}/stall/model.gguf`, '-o', dir, '--sha256', sha]);
    expect(second.code, second.stderr).toBe(0);
    expect(seen.at(-1)!.range).toBe(`bytes=${file.length >> 1}-`);
  });

  it('Ctrl-C (SIGINT) stops the download and keeps the .part file', async () => {
    const child = spawn(process.execPath, [bin, 'pull', `${base}/stall/model.gguf`, '-o', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const part = path.join(dir, 'model.gguf.part');
    while (!(fs.existsSync(part) && fs.statSync(part).size === file.length >> 1)) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(1);
    expect(stderr).toMatch(/stopped; \d+ bytes kept in .*model\.gguf\.part: run the same command again to resume \[ERR_ABORTED\]/);
    expect(fs.statSync(part).size).toBe(file.length >> 1);
  });

  it('follows redirects', async () => {
    const r = await pull([`${base}/redirect/model.gguf`, '-o', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(seen.map((s) => s.url)).toEqual(['/redirect/model.gguf', '/files/model.gguf']);
    expect(fs.readFileSync(path.join(dir, 'model.gguf')).equals(file)).toBe(true);
  });

  it('refuses a file that is not GGUF, a sha256 mismatch, a 404: one line, exit 1, nothing left behind', async () => {
    const page = await pull([`${base}/files/page.gguf`, '-o', dir]);
    expect(page.code).toBe(1);
    expect(page.stderr).toContain('is not a GGUF file');
    const wrong = await pull([`${base}/files/model.gguf`, '-o', dir, '--sha256', 'ab'.repeat(32)]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain('sha256 mismatch');
    const missing = await pull([`${base}/files/none.gguf`, '-o', dir]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('HTTP 404');
    for (const r of [page, wrong, missing]) expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('bad command lines: one line, exit 2, no request', async () => {
    for (const args of [[], ['ftp://127.0.0.1/x.gguf'], ['not a url'], [`${base}/files/model.gguf`, '--sha256', 'xyz'], ['hf:owner'], [`${base}/`], [`${base}/x.gguf`, '--bogus']]) {
      const r = await pull([...args, '-o', dir]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(seen).toEqual([]);
  });

  it('hf:owner/repo/file.gguf is the Hugging Face download URL', () => {
    expect(resolvePullUrl('hf:ggml-org/models/tinyllamas/stories260K.gguf').href).toBe(
      'https://huggingface.co/ggml-org/models/resolve/main/tinyllamas/stories260K.gguf',
    );
    expect(resolvePullUrl('hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF@v1.0/qwen2.5-0.5b-instruct-q4_0.gguf').href).toBe(
      'https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/resolve/v1.0/qwen2.5-0.5b-instruct-q4_0.gguf',
    );
    expect(fileNameOf(resolvePullUrl('hf:a/b/dir/my model.gguf'))).toBe('my model.gguf');
    expect(fileNameOf(new URL('http://127.0.0.1/a/my%20model.gguf?x=1'))).toBe('my model.gguf');
    expect(() => resolvePullUrl('hf:a/b')).toThrow(/hf:OWNER\/REPO\/FILE.gguf/);
    expect(() => resolvePullUrl('hf:a/b/../x.gguf')).toThrow();
  });
});
