/** `sparrow serve MODEL.gguf`: the OpenAI-compatible HTTP server (see src/server/server.ts). */
import fs from 'node:fs';
import { SparrowError } from '../../errors.js';
import { loadModel } from '../../model.js';
import { createServer } from '../../server/index.js';
import { parseArgs } from '../args.js';
import { UsageError } from '../flags.js';

export const summary = 'serve a model over an OpenAI-compatible HTTP API';
export const usage = `usage: sparrow serve MODEL.gguf [options]
  --host ADDR          address to listen on (default 127.0.0.1: this machine only)
  --port N             port (default 8080; 0 picks a free one)
  --api-key KEY        require "Authorization: Bearer KEY" on every endpoint but /health
                       (default: the SPARROW_API_KEY environment variable, else none)
  --parallel N         requests served at once, one session each (default 4)
  --ctx N              context size of each session (default: the model's, at most 4096)
  --queue N            requests that may wait for a session before 429 (default 64)
  --cors ORIGIN        allow browser requests from ORIGIN ('*' for any; default: off)
  --threads N          threads for the forward pass (default: physical cores)
  --body-limit BYTES   largest request body (default 4194304)
  --timeout SECONDS    longest a request may take, queueing included (default 600)
  --chat-template FILE a Jinja chat template to use instead of the model's
  --tool-format F      tool-call format to parse: hermes, llama3 or mistral (default: from the template)
  --name ID            the model id the API reports (default: the model's name)
  --quiet              log nothing but errors
SIGTERM or SIGINT: stop accepting requests, finish those in flight (10 s at most), exit 0.`;

function intFlag(flags: Record<string, unknown>, name: string, min: number, max: number): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new UsageError(`--${name} must be an integer from ${min} to ${max} (got ${String(v)})`);
  return v;
}

export async function run(args: string[]): Promise<number> {
  const { flags, positional } = parseArgs(
    args,
    {
      host: 'string', port: 'number', 'api-key': 'string', parallel: 'number', ctx: 'number', queue: 'number', cors: 'string',
      threads: 'number', 'body-limit': 'number', timeout: 'number', 'chat-template': 'string', 'tool-format': 'string', name: 'string', quiet: 'boolean',
    },
    usage,
  );
  if (positional.length !== 1) throw new UsageError(`expected one model file (see --help)`);
  const file = positional[0]!;
  const host = (flags.host as string | undefined) ?? '127.0.0.1';
  const port = intFlag(flags, 'port', 0, 65535) ?? 8080;
  const apiKey = (flags['api-key'] as string | undefined) ?? (process.env.SPARROW_API_KEY || undefined);
  const timeout = flags.timeout;
  if (timeout !== undefined && (typeof timeout !== 'number' || !(timeout > 0) || timeout > 86400))
    throw new UsageError(`--timeout must be a number of seconds from 0 to 86400 (got ${String(timeout)})`);
  const templateFile = flags['chat-template'] as string | undefined;
  const chatTemplate = templateFile !== undefined ? fs.readFileSync(templateFile, 'utf8') : undefined;
  const toolFormat = flags['tool-format'];
  if (toolFormat !== undefined && toolFormat !== 'hermes' && toolFormat !== 'llama3' && toolFormat !== 'mistral')
    throw new UsageError(`--tool-format must be hermes, llama3 or mistral (got ${String(toolFormat)})`);
  const quiet = flags.quiet === true;
  const log = (line: string) => {
    if (!quiet) console.error(`[${new Date().toISOString()}] ${line}`);
  };

  // Every flag is checked before the load starts.
  const threads = intFlag(flags, 'threads', 1, 256);
  const settings = {
    parallel: intFlag(flags, 'parallel', 1, 256),
    contextSize: intFlag(flags, 'ctx', 16, 1 << 24),
    maxQueue: intFlag(flags, 'queue', 0, 100_000),
    bodyLimit: intFlag(flags, 'body-limit', 1024, 1 << 30),
    requestTimeoutMs: timeout !== undefined ? Math.round((timeout as number) * 1000) : undefined,
    apiKey,
    cors: flags.cors as string | undefined,
    chatTemplate,
    toolCallFormat: toolFormat as 'hermes' | 'llama3' | 'mistral' | undefined,
    modelName: flags.name as string | undefined,
    log,
  };
  const loadAbort = new AbortController();
  const loading = loadModel(file, { threads, signal: loadAbort.signal });
  const server = createServer({ model: loading, ...settings });
  loading.catch(() => {});  // reported through server.ready below

  // SIGTERM / SIGINT, from now on (during the load too): finish or cancel what runs, free everything, exit 0.
  let stopping: Promise<number> | undefined;
  let wake: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (wake = resolve));
  const stop = (signal: string) => {
    if (stopping) return;
    log(`${signal}: finishing the requests in flight`);
    loadAbort.abort();
    stopping = server.close({ graceMs: 10_000 }).then(
      async () => {
        const model = await loading.catch(() => undefined);
        await model?.[Symbol.asyncDispose]();
        return 0;
      },
      (e: unknown) => {
        console.error(`sparrow serve: ${(e as Error)?.stack ?? String(e)}`);
        return 1;
      },
    );
    wake();
  };
  const onTerm = () => stop('SIGTERM');
  const onInt = () => stop('SIGINT');
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  try {
    // Listen at once: /health answers 503 while the model loads, so a load balancer waits.
    const address = await server.listen(port, host);
    log(`listening on http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port} (loading ${file})`);
    if (host !== '127.0.0.1' && host !== 'localhost' && host !== '::1' && !apiKey)
      log(`warning: listening on ${host} without an API key: anyone who can reach it can use it`);
    await Promise.race([server.ready, stopped]);
    await stopped;
    return await stopping!;
  } catch (e) {
    // Could not listen, or the model did not load: free what was started, then report.
    loadAbort.abort();
    void loading.then((m) => m.dispose(), () => {});
    await server.close({ graceMs: 0 });
    throw e;
  } finally {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  }
}
