/**
 * `sparrow pull URL [-o DIR] [--sha256 HEX]`: downloads a GGUF file over HTTP(S).
 *
 * The bytes go to NAME.part beside the final file; an interrupted transfer (a cut
 * connection, Ctrl-C, a crash) is resumed from the .part file's size with a Range request,
 * in the same run (--retries) or the next one. The file must start with the GGUF magic and,
 * when --sha256 is given, hash to it; only then is it renamed to its final name.
 * `hf:owner/repo/path/file.gguf` is shorthand for the Hugging Face download URL.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SparrowError } from '../../errors.js';
import { flagHelp, parseFlags, UsageError } from '../flags.js';
import { progressBar } from '../progress.js';
import { packageVersion } from '../version.js';

export const summary = 'download a GGUF model over HTTP(S) (resumable; hf:owner/repo/file.gguf works)';

const FLAGS = {
  output: { kind: 'string' as const, short: 'o', value: 'DIR', help: 'folder to write into (default: the current folder)' },
  sha256: {
    kind: 'string' as const,
    value: 'HEX',
    help: 'expected SHA-256 of the file (64 hex digits); a mismatch deletes the download',
    check: (v: string) => (/^[0-9a-fA-F]{64}$/.test(v) ? undefined : `expected 64 hex digits (got '${v}')`),
  },
  retries: { kind: 'int' as const, min: 0, max: 100, value: 'N', help: 'resume a broken transfer up to N times in this run (default 5)' },
  'idle-timeout': { kind: 'number' as const, min: 0, minExclusive: true, value: 'S', help: 'give up on a connection silent for S seconds (default 60)' },
};

export const usage = `usage: sparrow pull URL [-o DIR] [--sha256 HEX]

Downloads a GGUF file to DIR/NAME (NAME: the last part of the URL). An interrupted
download is resumed (NAME.part and an HTTP Range request). URL may be
hf:OWNER/REPO/PATH.gguf, short for https://huggingface.co/OWNER/REPO/resolve/main/PATH.gguf
(hf:OWNER/REPO@REVISION/PATH.gguf names a branch, tag or commit).

options:
${flagHelp(FLAGS)}`;

const GGUF_MAGIC = Buffer.from('GGUF', 'latin1');

/** The download URL for a URL or an `hf:` shorthand. */
export function resolvePullUrl(spec: string): URL {
  if (spec.startsWith('hf:')) {
    const m = /^hf:([\w.-]+)\/([\w.-]+)(?:@([\w./-]+?))?\/(.+)$/.exec(spec);
    if (!m || m[4]!.split('/').some((p) => p === '' || p === '.' || p === '..')) {
      throw new UsageError(`'${spec}' is not hf:OWNER/REPO/FILE.gguf`);
    }
    const [, owner, repo, rev, file] = m;
    const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');
    return new URL(`https://huggingface.co/${enc(owner!)}/${enc(repo!)}/resolve/${encodeURIComponent(rev ?? 'main')}/${enc(file!)}`);
  }
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    throw new UsageError(`'${spec}' is not a URL (http://, https:// or hf:OWNER/REPO/FILE.gguf)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`only http(s) URLs can be pulled (got ${url.protocol})`);
  return url;
}

/** The file name a URL gives: its last path segment, decoded and made safe. */
export function fileNameOf(url: URL): string {
  const last = decodeURIComponent(url.pathname.split('/').filter(Boolean).at(-1) ?? '');
  const name = last.replace(/[\\/\0]/g, '_');
  if (!name || name === '.' || name === '..') throw new UsageError(`cannot tell a file name from ${url.href}`);
  return name;
}

/** A transfer that failed in a way a Range request may fix (a cut connection, a timeout, a 5xx). */
class Retryable extends Error {}

interface Transfer {
  /** Bytes in the .part file. */
  have: number;
  /** The whole file's size, when the server said. */
  total: number | undefined;
}

/** One HTTP request: appends to the .part file what the server sends from `have` on. */
async function transferOnce(url: URL, part: string, t: Transfer, idleMs: number, onBytes: (t: Transfer) => void, stop: AbortSignal): Promise<void> {
  const ac = new AbortController();
  let idle: NodeJS.Timeout | undefined;
  let timedOut = false;
  const arm = () => {
    clearTimeout(idle);
    idle = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, idleMs);
  };
  const onStop = () => ac.abort();
  stop.addEventListener('abort', onStop, { once: true });
  const headers: Record<string, string> = { 'user-agent': `sparrow-llm/${packageVersion()}` };
  if (t.have > 0) headers.range = `bytes=${t.have}-`;
  let out: fs.WriteStream | undefined;
  try {
    arm();
    let res: Response;
    try {
      res = await fetch(url, { headers, signal: ac.signal, redirect: 'follow' });
    } catch (err) {
      if (stop.aborted) throw new SparrowError('stopped', 'ERR_ABORTED');
      throw new Retryable(timedOut ? `no answer for ${idleMs / 1000} s` : `cannot connect: ${causeText(err)}`);
    }
    if (res.status === 416 && t.have > 0) {
      // The .part file may already hold everything: the server says how big the file is.
      const m = /bytes \*\/(\d+)/.exec(res.headers.get('content-range') ?? '');
      await res.body?.cancel();
      if (m && Number(m[1]) === t.have) {
        t.total = t.have;
        return;
      }
      fs.truncateSync(part, 0); // the .part file is not a prefix of this file: start over
      t.have = 0;
      throw new Retryable('the server refused to resume; starting over');
    }
    if (res.status >= 500) {
      await res.body?.cancel();
      throw new Retryable(`HTTP ${res.status} ${res.statusText}`);
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      throw new SparrowError(`HTTP ${res.status} ${res.statusText} for ${res.url || url.href}`, 'ERR_HTTP');
    }
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (res.status === 206) {
      const m = /bytes (\d+)-(\d+)\/(\d+|\*)/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== t.have) {
        await res.body?.cancel();
        throw new SparrowError(`the server resumed at the wrong place (Content-Range: ${res.headers.get('content-range')})`, 'ERR_HTTP');
      }
      if (m[3] !== '*') t.total = Number(m[3]);
    } else {
      // 200: the whole file from the start (the server ignored or was not sent a Range).
      if (t.have > 0) fs.truncateSync(part, 0);
      t.have = 0;
      t.total = Number.isFinite(length) ? length : undefined;
    }
    out = fs.createWriteStream(part, { flags: 'a' });
    const opened = new Promise<void>((resolve, reject) => out!.once('open', () => resolve()).once('error', reject));
    await opened;
    const reader = res.body!.getReader();
    let head = t.have === 0;
    for (;;) {
      let r: Awaited<ReturnType<typeof reader.read>>;
      try {
        r = await reader.read();
      } catch (err) {
        if (stop.aborted) throw new SparrowError('stopped', 'ERR_ABORTED');
        throw new Retryable(timedOut ? `no data for ${idleMs / 1000} s` : `connection lost: ${causeText(err)}`);
      }
      if (r.done) break;
      arm();
      const chunk = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
      if (head && chunk.length > 0) {
        head = false;
        const n = Math.min(4, chunk.length);
        if (!chunk.subarray(0, n).equals(GGUF_MAGIC.subarray(0, n))) {
          await reader.cancel();
          throw new SparrowError(`${res.url || url.href} is not a GGUF file (it starts with ${JSON.stringify(chunk.subarray(0, 8).toString('latin1'))})`, 'ERR_GGUF_MAGIC');
        }
      }
      if (!out.write(chunk)) await new Promise<void>((resolve) => out!.once('drain', () => resolve()));
      t.have += chunk.length;
      onBytes(t);
    }
    if (t.total !== undefined && t.have < t.total) throw new Retryable(`the connection ended after ${t.have} of ${t.total} bytes`);
  } finally {
    clearTimeout(idle);
    stop.removeEventListener('abort', onStop);
    if (out) await new Promise<void>((resolve) => out!.end(() => resolve()));
  }
}

function causeText(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

async function sha256Of(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of fs.createReadStream(file)) h.update(c as Buffer);
  return h.digest('hex');
}

function checkMagic(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(4);
    const n = fs.readSync(fd, b, 0, 4, 0);
    if (n < 4 || !b.equals(GGUF_MAGIC)) throw new SparrowError(`${file} is not a GGUF file`, 'ERR_GGUF_MAGIC');
  } finally {
    fs.closeSync(fd);
  }
}

export async function run(args: string[]): Promise<number> {
  const { flags, positional } = parseFlags(args, FLAGS);
  if (positional.length !== 1) throw new UsageError(`expected one URL (got ${positional.length} arguments); see sparrow pull --help`);
  const url = resolvePullUrl(positional[0]!);
  const name = fileNameOf(url);
  const dir = path.resolve((flags.output as string | undefined) ?? '.');
  const expected = (flags.sha256 as string | undefined)?.toLowerCase();
  const retries = (flags.retries as number | undefined) ?? 5;
  const idleMs = ((flags['idle-timeout'] as number | undefined) ?? 60) * 1000;
  fs.mkdirSync(dir, { recursive: true });
  const dest = path.join(dir, name);
  const part = dest + '.part';

  if (fs.existsSync(dest)) {
    checkMagic(dest);
    if (expected && (await sha256Of(dest)) !== expected) {
      throw new SparrowError(`${dest} exists and its sha256 is not ${expected}; delete it to download again`, 'ERR_CHECKSUM');
    }
    process.stderr.write(`${dest} is already here\n`);
    console.log(dest);
    return 0;
  }

  const stop = new AbortController();
  const onSigint = () => stop.abort();
  process.on('SIGINT', onSigint);
  const t: Transfer = { have: fs.existsSync(part) ? fs.statSync(part).size : 0, total: undefined };
  if (t.have > 0) process.stderr.write(`resuming ${name} at ${t.have} bytes\n`);
  const bar = progressBar(name, { bytes: true });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await transferOnce(url, part, t, idleMs, (x) => bar.update(x.total ? x.have / x.total : 0, x.have, x.total), stop.signal);
        break;
      } catch (err) {
        if (!(err instanceof Retryable)) throw err;
        if (attempt >= retries) {
          throw new SparrowError(`${err.message}; ${t.have} bytes kept in ${part}: run the same command again to resume`, 'ERR_DOWNLOAD');
        }
        bar.done(`${name}: ${err.message}; resuming at ${t.have} bytes (${attempt + 1}/${retries})`);
        await sleep(Math.min(5000, 250 * 2 ** attempt), undefined, { signal: stop.signal }).catch(() => {
          throw new SparrowError(`stopped; ${t.have} bytes kept in ${part}`, 'ERR_ABORTED');
        });
      }
    }
  } catch (err) {
    if (err instanceof SparrowError && err.code === 'ERR_GGUF_MAGIC') fs.rmSync(part, { force: true });
    if (err instanceof SparrowError && err.code === 'ERR_ABORTED' && !err.message.includes(part)) {
      throw new SparrowError(`stopped; ${t.have} bytes kept in ${part}: run the same command again to resume`, 'ERR_ABORTED');
    }
    throw err;
  } finally {
    bar.done();
    process.off('SIGINT', onSigint);
  }

  checkMagic(part);
  if (expected) {
    const got = await sha256Of(part);
    if (got !== expected) {
      fs.rmSync(part, { force: true });
      throw new SparrowError(`sha256 mismatch: expected ${expected}, got ${got}; the download was deleted`, 'ERR_CHECKSUM');
    }
  }
  fs.renameSync(part, dest);
  process.stderr.write(`${dest}: ${t.have} bytes${expected ? ', sha256 ok' : ''}\n`);
  console.log(dest);
  return 0;
}
