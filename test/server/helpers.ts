/** Shared pieces of the server tests: the model, servers on 127.0.0.1 port 0, raw HTTP. */
import http from 'node:http';
import path from 'node:path';
import type { LogitProcessor } from '../../src/sampling/sampler.js';
import type { Model } from '../../src/model.js';
import { createServer, type ServerOptions, type SparrowServer } from '../../src/server/index.js';

export const STORIES = path.resolve(import.meta.dirname, '../../../shared/models/stories260K-f32.gguf');

export async function startServer(options: ServerOptions): Promise<{ server: SparrowServer; base: string; port: number }> {
  const server = createServer(options);
  const { port } = await server.listen(0, '127.0.0.1');
  return { server, base: `http://127.0.0.1:${port}`, port };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP request with full control of the bytes sent (raw bodies, bad JSON, odd headers). */
export function rawRequest(
  port: number,
  method: string,
  pathname: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: pathname, headers: { 'content-type': 'application/json', ...headers }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** A logit processor that makes the model write exactly `text` and then end (for paths the tiny model never takes by itself). */
export function forceOutput(model: Model, text: string): LogitProcessor {
  // The tokens whose bytes spell `text` exactly (longest piece first), so the forced answer
  // is also one that a grammar mask lets through (a plain tokenize() would add SPM's space prefix).
  const target = Buffer.from(text, 'utf8');
  const pieces: Buffer[] = [];
  for (let id = 0; id < model.info.vocabSize; id++) pieces.push(Buffer.from(model.tokenizer.piece(id, false)));
  const ids: number[] = [];
  for (let at = 0; at < target.length; ) {
    let best = -1;
    for (let id = 0; id < pieces.length; id++) {
      const p = pieces[id]!;
      if (p.length > 0 && (best < 0 || p.length > pieces[best]!.length) && target.subarray(at, at + p.length).equals(p)) best = id;
    }
    if (best < 0) throw new Error(`forceOutput: no token spells byte ${at} of ${JSON.stringify(text)}`);
    ids.push(best);
    at += pieces[best]!.length;
  }
  const eos = model.tokenizer.special.eos!;
  let i = 0;
  return (logits) => {
    const t = i < ids.length ? ids[i]! : eos;
    i++;
    logits.fill(-Infinity);
    logits[t] = 0;
  };
}

/** Polls `check` until it holds or `ms` pass. */
export async function waitFor(check: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return check();
}
