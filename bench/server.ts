/**
 * The HTTP server under concurrent clients: requests/s, generated tokens/s and time to
 * first token (p50/p99) at 1, 8 and 32 clients, each client sending streamed completions
 * one after the other. The server is `sparrow serve` in a child process (as deployed); the
 * clients run here and talk to it over 127.0.0.1.
 *
 *   npm run build:ts && node dist/bench/server.js [MODEL.gguf | name:mix] [--clients 1,8,32]
 *     [--requests 8] [--max-tokens 64] [--parallel 32] [--threads N]
 *
 * A name:mix (default tinyllama-1.1b:q4_0) is a synthetic model from the cache (written on
 * the first run). Greedy, EOS banned, so every request generates exactly --max-tokens tokens.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { syntheticModel } from '../models/cache.js';
import type { MixName } from '../models/synthetic.js';
import { median } from './stats.js';

interface Args {
  model: string;
  clients: number[];
  requests: number;
  maxTokens: number;
  parallel: number;
  threads?: number;
}

function parse(argv: string[]): Args {
  const a: Args = { model: 'tinyllama-1.1b:q4_0', clients: [1, 8, 32], requests: 8, maxTokens: 64, parallel: 32 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i]!;
    const next = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${v} needs a value`);
      return x;
    };
    if (v === '--clients') a.clients = next().split(',').map(Number);
    else if (v === '--requests') a.requests = Number(next());
    else if (v === '--max-tokens') a.maxTokens = Number(next());
    else if (v === '--parallel') a.parallel = Number(next());
    else if (v === '--threads') a.threads = Number(next());
    else if (!v.startsWith('--')) a.model = v;
    else throw new Error(`unknown option ${v}`);
  }
  for (const n of [...a.clients, a.requests, a.maxTokens, a.parallel]) if (!Number.isInteger(n) || n < 1) throw new Error(`bad number in the arguments: ${n}`);
  return a;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

const PROMPTS = ['Once upon a time', 'The little dog', 'In a small town', 'She opened the door', 'The sun was', 'He had a red ball', 'In the park', 'Mom said'];

interface Sample {
  ttftMs: number;
  totalMs: number;
  tokens: number;
}

/** One streamed completion: time to the first text chunk, total time, tokens from usage. */
function request(port: number, agent: http.Agent, prompt: string, maxTokens: number, eos: number): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let ttft = NaN;
    let buf = '';
    let tokens = 0;
    const body = JSON.stringify({
      prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true }, logit_bias: { [eos]: -100 },
    });
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/completions', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`HTTP ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        let at: number;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, at);
          buf = buf.slice(at + 2);
          if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
          const msg = JSON.parse(event.slice(6));
          if (Number.isNaN(ttft) && msg.choices?.[0]?.text) ttft = performance.now() - t0;
          if (msg.usage) tokens = msg.usage.completion_tokens;
        }
      });
      res.on('end', () => resolve({ ttftMs: ttft, totalMs: performance.now() - t0, tokens }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2));
  let file = a.model;
  if (!file.endsWith('.gguf')) {
    const [name, mix = 'q4_0'] = file.split(':');
    file = await syntheticModel(name!, mix as MixName);
  }
  const bin = path.resolve(import.meta.dirname, '../../bin/sparrow.mjs');
  const args = [bin, 'serve', file, '--port', '0', '--parallel', String(a.parallel), '--queue', '1000', '--ctx', String(Math.max(256, a.maxTokens + 64))];
  if (a.threads) args.push('--threads', String(a.threads));
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    let log = '';
    const port = await new Promise<number>((resolve, reject) => {
      child.on('exit', (code) => reject(new Error(`the server exited (${code}): ${log}`)));
      child.stderr!.on('data', (d: Buffer) => {
        log += d.toString();
        const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log);
        if (m && /model ready/.test(log)) resolve(Number(m[1]));
      });
    });
    const eos = 2;  // llama-family EOS id in the synthetic and stories vocabularies
    console.log(`model: ${path.basename(file)}; ${a.parallel} sessions; ${a.requests} requests per client; ${a.maxTokens} tokens each\n`);
    console.log('| clients | requests/s | tokens/s | TTFT p50 (ms) | TTFT p99 (ms) | latency p50 (ms) |');
    console.log('|---:|---:|---:|---:|---:|---:|');
    for (const clients of a.clients) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
      await request(port, agent, 'Warm up', 4, eos);
      const samples: Sample[] = [];
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: clients }, async (_, c) => {
          for (let r = 0; r < a.requests; r++) samples.push(await request(port, agent, `${PROMPTS[(c + r) % PROMPTS.length]} ${c}`, a.maxTokens, eos));
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      agent.destroy();
      const tokens = samples.reduce((s, x) => s + x.tokens, 0);
      const ttft = samples.map((x) => x.ttftMs).filter(Number.isFinite);
      console.log(
        `| ${clients} | ${(samples.length / seconds).toFixed(2)} | ${(tokens / seconds).toFixed(1)} | ${median(ttft).toFixed(1)} | ${percentile(ttft, 99).toFixed(1)} | ${median(samples.map((x) => x.totalMs)).toFixed(0)} |`,
      );
    }
  } finally {
    child.kill('SIGTERM');
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
