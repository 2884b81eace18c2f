/**
 * An OpenAI-compatible HTTP server on Node's own http module.
 *
 *   const server = createServer({ model: loadModel('model.gguf'), parallel: 4 });
 *   const { port } = await server.listen(8080, '127.0.0.1');
 *
 * Endpoints: POST /v1/chat/completions and /v1/completions (server-sent events with
 * `stream: true`, ending with `data: [DONE]`), GET /v1/models, POST /v1/embeddings (when
 * the model can embed), GET /health (503 while the model loads, then 200) and GET /metrics
 * (Prometheus text). Requests run on a pool of sessions (see pool.ts); the model batches
 * their decode steps. Errors are answered in OpenAI's shape.
 *
 * Safety: every request field is checked (validate.ts); the body size, the queue and each
 * request's time are bounded; a client that goes away stops its generation within one
 * token and frees its session; with an API key every endpoint but /health needs it.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SparrowError } from '../errors.js';
import type { Model } from '../model.js';
import type { GenerateOptions, GenerationResult } from '../generation/types.js';
import type { LogitProcessor } from '../sampling/sampler.js';
import { applyChatTemplate } from '../templates/template.js';
import { detectToolCallFormat, parseToolCalls, toolCallMarkers, type ParsedToolCall, type ToolCallFormat } from '../templates/tool-calls.js';
import { schemaOptions, toolCallSchema } from './constraints.js';
import { HttpError } from './errors.js';
import { LogprobRecorder, type TokenLogprob } from './logprobs.js';
import { Metrics } from './metrics.js';
import { SessionPool, type Slot } from './pool.js';
import {
  parseChatRequest, parseCompletionRequest, parseEmbeddingRequest,
  type ChatRequest, type CompletionRequest, type SamplingParams,
} from './validate.js';

export interface ServerOptions {
  /** The model, or a promise of it (the server answers /health with 503 until it resolves). */
  model: Model | Promise<Model>;
  /** The model id in /v1/models and in answers. Default: the model's general.name, else 'sparrow'. */
  modelName?: string;
  /** Sessions serving requests at once (1..256). Default 4. */
  parallel?: number;
  /** Context size of each session. Default: the model's context length, at most 4096. */
  contextSize?: number;
  /** Requests that may wait for a session (0..100000); more get 429. Default 64. */
  maxQueue?: number;
  /** When set, every endpoint but /health needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Origin allowed by CORS ('*' for any). Default: no CORS headers. */
  cors?: string;
  /** Largest request body in bytes. Default 4 MiB. */
  bodyLimit?: number;
  /** Longest a request may take, queueing included, in ms; then its generation stops (finish_reason 'length'). Default 10 minutes. */
  requestTimeoutMs?: number;
  /** A Jinja chat template to use instead of the model's. */
  chatTemplate?: string;
  /** The tool-call format to parse; default: detected from the chat template. */
  toolCallFormat?: ToolCallFormat;
  /**
   * Extra steps added to the sampler chain of every generation (after the log-probability
   * recorder): policies such as banned tokens, or a test forcing an output.
   */
  logitProcessors?: (request: { endpoint: 'chat' | 'completion' }) => LogitProcessor[] | undefined;
  /** Where the server logs its events and one line per request (default: nowhere). */
  log?: (line: string) => void;
}

/** What `model.embed` (when the model has it) is expected to look like. */
export interface EmbeddingModel {
  embed(texts: string[], options: { pooling?: 'mean' | 'last' | 'cls'; normalize?: boolean }): Promise<Float32Array[]>;
}

export interface SparrowServer {
  /** The underlying Node http.Server. */
  readonly http: http.Server;
  /** Resolves when the model is loaded and the session pool is ready. */
  readonly ready: Promise<void>;
  /** Starts listening (default 127.0.0.1:8080; port 0 picks a free port). */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  /** Sessions in use, requests waiting, requests in flight. */
  readonly stats: { busySessions: number; queueDepth: number; inFlight: number; sessions: number };
  /**
   * Graceful shutdown: stops accepting connections, refuses new requests (503), lets the
   * requests in flight finish for up to `graceMs` (default 10 s), then cancels the rest,
   * and frees the sessions. The model is left to its owner.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

const DEFAULTS = { parallel: 4, maxQueue: 64, bodyLimit: 4 << 20, requestTimeoutMs: 600_000, maxContext: 4096 };

function checkOption(name: string, v: unknown, min: number, max: number): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max))
    throw new SparrowError(`createServer: ${name} must be an integer from ${min} to ${max} (got ${String(v)})`, 'ERR_INVALID_ARG');
}

function newId(prefix: string): string {
  return prefix + randomBytes(12).toString('hex');
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

type AbortReason = 'client' | 'timeout' | 'shutdown';

interface Live {
  model: Model;
  pool: SessionPool;
  name: string;
  contextSize: number;
  template: string | undefined;
  toolFormat: ToolCallFormat | undefined;
}

export function createServer(options: ServerOptions): SparrowServer {
  if (!options || typeof options !== 'object') throw new SparrowError('createServer: options must be an object', 'ERR_INVALID_ARG');
  checkOption('parallel', options.parallel, 1, 256);
  checkOption('maxQueue', options.maxQueue, 0, 100_000);
  checkOption('bodyLimit', options.bodyLimit, 1024, 1 << 30);
  checkOption('requestTimeoutMs', options.requestTimeoutMs, 1, 2_147_483_647);
  checkOption('contextSize', options.contextSize, 16, 1 << 24);
  if (options.apiKey !== undefined && (typeof options.apiKey !== 'string' || options.apiKey.length === 0))
    throw new SparrowError('createServer: apiKey must be a non-empty string', 'ERR_INVALID_ARG');
  if (options.cors !== undefined && (typeof options.cors !== 'string' || options.cors.length === 0))
    throw new SparrowError('createServer: cors must be an origin or *', 'ERR_INVALID_ARG');
  if (options.toolCallFormat !== undefined && !['hermes', 'llama3', 'mistral'].includes(options.toolCallFormat))
    throw new SparrowError("createServer: toolCallFormat must be 'hermes', 'llama3' or 'mistral'", 'ERR_INVALID_ARG');
  if (options.chatTemplate !== undefined && typeof options.chatTemplate !== 'string')
    throw new SparrowError('createServer: chatTemplate must be a string', 'ERR_INVALID_ARG');
  const parallel = options.parallel ?? DEFAULTS.parallel;
  const maxQueue = options.maxQueue ?? DEFAULTS.maxQueue;
  const bodyLimit = options.bodyLimit ?? DEFAULTS.bodyLimit;
  const timeoutMs = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
  const keyDigest = options.apiKey !== undefined ? digest(options.apiKey) : undefined;
  const log = options.log ?? (() => {});
  const metrics = new Metrics();
  const created = Math.floor(Date.now() / 1000);

  let live: Live | undefined;
  let loadError: unknown;
  let closing = false;
  const inFlight = new Map<AbortController, Promise<void>>();
  const aborters = new Map<AbortController, (r: AbortReason) => void>();

  const ready = Promise.resolve(options.model).then((model) => {
    if (closing) throw new SparrowError('the server was closed before the model was ready', 'ERR_ABORTED');
    const contextSize = Math.min(options.contextSize ?? Math.min(model.info.contextLength, DEFAULTS.maxContext), model.info.contextLength);
    const sessions = [];
    try {
      for (let i = 0; i < parallel; i++) sessions.push(model.createSession({ contextSize }));
    } catch (e) {
      for (const s of sessions) s.dispose();
      throw e;
    }
    const template = options.chatTemplate ?? model.tokenizer.chatTemplate;
    live = {
      model,
      pool: new SessionPool(sessions, maxQueue),
      name: options.modelName ?? (model.info.name || 'sparrow'),
      contextSize,
      template: options.chatTemplate,
      toolFormat: options.toolCallFormat ?? detectToolCallFormat(template),
    };
    log(`model ready: ${live.name}, ${parallel} sessions of ${contextSize} tokens`);
  });
  ready.catch((e: unknown) => {
    loadError = e;
    log(`model failed to load: ${(e as Error)?.message ?? String(e)}`);
  });

  // ---- small helpers -------------------------------------------------------------------

  const corsHeaders = (): Record<string, string> =>
    options.cors ? { 'access-control-allow-origin': options.cors, vary: 'Origin' } : {};

  function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...corsHeaders(), ...headers });
    res.end(text);
  }

  function sendError(res: http.ServerResponse, e: HttpError): void {
    sendJson(res, e.status, e.body(), e.headers);
  }

  function toHttpError(e: unknown): HttpError {
    if (e instanceof HttpError) return e;
    const code = (e as { code?: unknown })?.code;
    if (e instanceof SparrowError && (code === 'ERR_INVALID_ARG' || code === 'ERR_SAMPLING' || code === 'ERR_INVALID_TOKEN'))
      return new HttpError(400, e.message, 'invalid_request_error', null, 'invalid_request');
    if (e instanceof SparrowError && code === 'ERR_CHAT_TEMPLATE')
      return new HttpError(400, e.message, 'invalid_request_error', 'messages', 'chat_template_error');
    if (e instanceof SparrowError && code === 'ERR_CONTEXT_FULL')
      return new HttpError(400, e.message, 'invalid_request_error', 'messages', 'context_length_exceeded');
    log(`internal error: ${(e as Error)?.stack ?? String(e)}`);
    return new HttpError(500, 'Internal server error', 'server_error', null, 'internal_error');
  }

  function authorized(req: http.IncomingMessage): boolean {
    if (!keyDigest) return true;
    const h = req.headers.authorization;
    const m = typeof h === 'string' ? /^Bearer\s+(.+)$/i.exec(h.trim()) : null;
    // Digests of equal length, compared in constant time: nothing about the key leaks through timing.
    return m !== null && timingSafeEqual(digest(m[1]!), keyDigest);
  }

  function readBody(req: http.IncomingMessage): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > bodyLimit) {
        reject(new HttpError(413, `The request body is larger than ${bodyLimit} bytes`, 'invalid_request_error', null, 'body_too_large', { connection: 'close' }));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let failed = false;
      req.on('data', (c: Buffer) => {
        if (failed) return;
        size += c.length;
        if (size > bodyLimit) {
          failed = true;
          chunks.length = 0;
          reject(new HttpError(413, `The request body is larger than ${bodyLimit} bytes`, 'invalid_request_error', null, 'body_too_large', { connection: 'close' }));
          return;
        }
        chunks.push(c);
      });
      req.on('error', (e) => {
        if (!failed) reject(e);
        failed = true;
      });
      req.on('end', () => {
        if (failed) return;
        const text = Buffer.concat(chunks).toString('utf8');
        if (text.trim() === '') {
          reject(new HttpError(400, 'The request body is empty; send a JSON object', 'invalid_request_error', null, 'invalid_body'));
          return;
        }
        try {
          resolve(JSON.parse(text));
        } catch (e) {
          reject(new HttpError(400, `The request body is not valid JSON: ${(e as Error).message}`, 'invalid_request_error', null, 'invalid_json'));
        }
      });
    });
  }

  function requireLive(): Live {
    if (live) return live;
    if (loadError !== undefined) throw new HttpError(503, 'The model failed to load', 'server_error', null, 'model_load_failed');
    throw new HttpError(503, 'The model is loading; retry when /health answers 200', 'server_error', null, 'model_loading', { 'retry-after': '1' });
  }

  // ---- generation ------------------------------------------------------------------------

  function tokenizeChat(l: Live, text: string): number[] {
    const t = l.model.tokenizer;
    const ids = t.tokenize(text, { addSpecial: false, parseSpecial: true });
    const bos = t.special.bos;
    if (t.addBos && bos !== null && ids[0] !== bos) ids.unshift(bos);
    return ids;
  }

  function generateOptions(
    p: SamplingParams,
    schema: Record<string, unknown> | undefined,
    maxTokens: number,
    signal: AbortSignal,
    recorder: LogprobRecorder | undefined,
    endpoint: 'chat' | 'completion',
  ): GenerateOptions {
    const processors = [...(recorder ? [recorder.processor] : []), ...(options.logitProcessors?.({ endpoint }) ?? [])];
    return {
      maxTokens,
      temperature: p.temperature,
      topP: p.topP,
      topK: p.topK,
      minP: p.minP,
      presencePenalty: p.presencePenalty,
      frequencyPenalty: p.frequencyPenalty,
      ...(p.logitBias.size > 0 ? { logitBias: p.logitBias } : {}),
      ...(p.seed !== undefined ? { seed: p.seed } : {}),
      ...(p.stop.length > 0 ? { stop: p.stop } : {}),
      ...(processors.length > 0 ? { logitProcessors: processors } : {}),
      contextShift: 'stop',
      signal,
      ...schemaOptions(schema),
    } as GenerateOptions;
  }

  function finishReason(r: GenerationResult, aborted: AbortReason | undefined): 'stop' | 'length' {
    if (r.stopReason === 'eos' || r.stopReason === 'stop') return 'stop';
    if (r.stopReason === 'abort' && aborted === undefined) return 'stop';
    return 'length';
  }

  function usage(promptTokens: number, cached: number, completion: number) {
    return {
      prompt_tokens: promptTokens,
      completion_tokens: completion,
      total_tokens: promptTokens + completion,
      prompt_tokens_details: { cached_tokens: cached },
    };
  }

  function toolCallsJson(calls: ParsedToolCall[]) {
    return calls.map((c, index) => ({
      index,
      id: c.id ?? newId('call_'),
      type: 'function' as const,
      function: { name: c.name, arguments: JSON.stringify(c.arguments) },
    }));
  }

  /** Holds back streamed text from where a tool call may begin, so calls are never streamed as content. */
  class Holdback {
    #pending = '';
    #holding = false;
    #started = false;
    constructor(private readonly format: ToolCallFormat | undefined, prefill = '') {
      // A forced call: everything is held from the start.
      if (format && prefill) {
        this.#holding = true;
        this.#started = true;
        this.#pending = prefill;
      }
    }
    push(text: string): string {
      if (!this.format) return text;
      if (this.#holding) {
        this.#pending += text;
        return '';
      }
      let s = this.#pending + text;
      this.#pending = '';
      if (!this.#started) {
        const lead = s.trimStart();
        if (lead.length === 0) {
          this.#pending = s;
          return '';
        }
        this.#started = true;
        // Llama 3 and Mistral calls are the whole answer: JSON from the first character.
        if ((this.format === 'llama3' && lead[0] === '{') || (this.format === 'mistral' && lead[0] === '[')) {
          this.#holding = true;
          this.#pending = s;
          return '';
        }
      }
      for (const m of toolCallMarkers(this.format)) {
        const at = s.indexOf(m);
        if (at >= 0) {
          this.#holding = true;
          this.#pending = s.slice(at);
          return s.slice(0, at);
        }
      }
      // A tail that could be the start of a marker waits for the next chunk.
      let keep = 0;
      for (const m of toolCallMarkers(this.format))
        for (let k = Math.min(m.length - 1, s.length); k > keep; k--) if (s.endsWith(m.slice(0, k))) keep = k;
      this.#pending = s.slice(s.length - keep);
      return s.slice(0, s.length - keep);
    }
    get held(): string {
      return this.#pending;
    }
  }

  interface Prepared {
    l: Live;
    endpoint: 'chat' | 'completion';
    params: SamplingParams;
    prompt: number[];
    toolFormat: ToolCallFormat | undefined;
    /** Text the prompt already ends with that belongs to the answer (the opening of a forced tool call). */
    prefill: string;
    /** The JSON schema the output must follow (response_format, or a forced tool call). */
    schema: Record<string, unknown> | undefined;
  }

  /** What opens a tool call in each format: a forced call starts the answer with it. */
  const CALL_OPENING: Record<ToolCallFormat, string> = { hermes: '<tool_call>\n', mistral: '[TOOL_CALLS]', llama3: '' };

  function prepareChat(l: Live, r: ChatRequest): Prepared {
    const useTools = r.tools !== undefined && r.toolChoice !== 'none';
    let text = applyChatTemplate(l.template ?? l.model.tokenizer, r.messages, useTools ? { tools: r.tools } : {});
    const toolFormat = useTools ? l.toolFormat : undefined;
    // tool_choice 'required' or a named tool: the answer starts as a call, and (with
    // constrained decoding) its JSON follows the tools' parameters schemas.
    const forced = toolFormat && r.tools ? toolCallSchema(r.tools, r.toolChoice, toolFormat === 'mistral') : undefined;
    const prefill = forced && toolFormat ? CALL_OPENING[toolFormat] : '';
    text += prefill;
    return { l, endpoint: 'chat', params: r, prompt: tokenizeChat(l, text), toolFormat, prefill, schema: forced ?? r.jsonSchema };
  }

  function prepareCompletion(l: Live, r: CompletionRequest): Prepared {
    const prompt = typeof r.prompt === 'string' ? l.model.tokenizer.tokenize(r.prompt, { addSpecial: true, parseSpecial: false }) : r.prompt;
    return { l, endpoint: 'completion', params: r, prompt, toolFormat: undefined, prefill: '', schema: r.jsonSchema };
  }

  async function runGeneration(req: http.IncomingMessage, res: http.ServerResponse, p: Prepared, t0: number): Promise<number> {
    const { l, params, prompt } = p;
    if (prompt.length === 0) throw new HttpError(400, 'The prompt is empty', 'invalid_request_error', p.endpoint === 'chat' ? 'messages' : 'prompt', 'empty_prompt');
    if (prompt.length >= l.contextSize)
      throw new HttpError(
        400,
        `The prompt is ${prompt.length} tokens; this server's context is ${l.contextSize} tokens (at least one must be left to generate)`,
        'invalid_request_error', p.endpoint === 'chat' ? 'messages' : 'prompt', 'context_length_exceeded',
      );
    // max_tokens is capped by what is left of the context.
    const room = l.contextSize - prompt.length;
    const maxTokens = Math.min(params.maxTokens ?? room, room);

    const ac = new AbortController();
    let reason: AbortReason | undefined;
    const abort = (r: AbortReason) => {
      if (reason !== undefined) return;
      reason = r;
      ac.abort(new HttpError(r === 'shutdown' ? 503 : 408, r === 'shutdown' ? 'The server is shutting down' : r === 'timeout' ? 'The request took too long' : 'The client went away'));
    };
    aborters.set(ac, abort);
    const timer = setTimeout(() => abort('timeout'), Math.max(1, timeoutMs - (performance.now() - t0)));
    const onClose = () => {
      if (!res.writableFinished) abort('client');
    };
    res.on('close', onClose);
    let slot: Slot | undefined;
    try {
      let acquired: { slot: Slot; common: number };
      try {
        acquired = await l.pool.acquire(prompt, ac.signal);
      } catch (e) {
        if (e instanceof HttpError && !ac.signal.aborted) throw e;
        if (reason === 'client') return 499;
        throw new HttpError(reason === 'shutdown' ? 503 : 504, reason === 'shutdown' ? 'The server is shutting down' : 'The request timed out waiting for a session', 'server_error', null, reason === 'shutdown' ? 'shutting_down' : 'timeout');
      }
      slot = acquired.slot;
      if (ac.signal.aborted) return reason === 'client' ? 499 : 504;
      const recorder = params.logprobs ? new LogprobRecorder(l.model.tokenizer, params.topLogprobs) : undefined;
      const gen = slot.session.generate(prompt.slice(acquired.common), generateOptions(params, p.schema, maxTokens, ac.signal, recorder, p.endpoint));
      const id = newId(p.endpoint === 'chat' ? 'chatcmpl-' : 'cmpl-');
      const created = Math.floor(Date.now() / 1000);
      let firstToken = true;
      const onToken = () => {
        if (!firstToken) return;
        firstToken = false;
        metrics.ttft.observe((performance.now() - t0) / 1000);
      };
      let result: GenerationResult;
      let calls: ParsedToolCall[] = [];
      let content: string;
      let logprobs: TokenLogprob[] = [];

      if (params.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no', ...corsHeaders() });
        const send = (obj: unknown) => {
          if (!res.destroyed) res.write(`data: ${JSON.stringify(obj)}\n\n`);
        };
        const base = p.endpoint === 'chat'
          ? { id, object: 'chat.completion.chunk', created, model: l.name, system_fingerprint: null }
          : { id, object: 'text_completion', created, model: l.name };
        const extra = params.includeUsage ? { usage: null } : {};
        const chunkOf = (text: string, lp: TokenLogprob[] | undefined, finish: string | null, delta?: Record<string, unknown>) =>
          p.endpoint === 'chat'
            ? { ...base, choices: [{ index: 0, delta: delta ?? { content: text }, logprobs: lp ? { content: lp } : null, finish_reason: finish }], ...extra }
            : { ...base, choices: [{ index: 0, text, logprobs: lp ? legacyLogprobs(lp) : null, finish_reason: finish }], ...extra };
        if (p.endpoint === 'chat') send(chunkOf('', undefined, null, { role: 'assistant', content: '' }));
        const hold = new Holdback(p.toolFormat, p.prefill);
        try {
          for await (const chunk of gen) {
            if (chunk.tokens.length > 0) onToken();
            const lp = recorder?.take(chunk.tokens);
            if (lp) logprobs.push(...lp);
            const out = hold.push(chunk.text);
            if (out.length > 0 || (lp && lp.length > 0)) send(chunkOf(out, lp, null));
          }
          result = await gen.result;
        } catch (e) {
          const err = toHttpError(e);
          send(err.body());
          res.end();
          return err.status;
        }
        content = hold.held;
        if (p.toolFormat && content.length > 0) {
          const parsed = parseToolCalls(p.prefill + result.text, p.toolFormat);
          calls = parsed.calls;
          if (calls.length > 0) {
            const tc = toolCallsJson(calls);
            send(chunkOf('', undefined, null, { tool_calls: tc }));
            content = '';
          }
        }
        // A forced call that did not parse: the text the model wrote after the opening.
        if (calls.length === 0 && p.prefill && content.startsWith(p.prefill)) content = content.slice(p.prefill.length);
        if (content.length > 0) send(chunkOf(content, undefined, null));
        const finish = calls.length > 0 ? 'tool_calls' : finishReason(result, reason);
        send(chunkOf('', undefined, finish, {}));
        if (params.includeUsage) send({ ...base, choices: [], usage: usage(prompt.length, acquired.common, result.tokens.length) });
        if (!res.destroyed) res.end('data: [DONE]\n\n');
      } else {
        for await (const chunk of gen) {
          if (chunk.tokens.length > 0) onToken();
          if (recorder) logprobs.push(...recorder.take(chunk.tokens));
        }
        result = await gen.result;
        if (reason === 'client') return 499;
        content = result.text;
        if (p.toolFormat) {
          const parsed = parseToolCalls(p.prefill + result.text, p.toolFormat);
          if (parsed.calls.length > 0) {
            calls = parsed.calls;
            content = parsed.content;
          }
        }
        const finish = calls.length > 0 ? 'tool_calls' : finishReason(result, reason);
        const u = usage(prompt.length, acquired.common, result.tokens.length);
        if (p.endpoint === 'chat') {
          const message: Record<string, unknown> = { role: 'assistant', content: calls.length > 0 && content === '' ? null : content, refusal: null };
          if (calls.length > 0) message.tool_calls = toolCallsJson(calls);
          sendJson(res, 200, {
            id, object: 'chat.completion', created, model: l.name, system_fingerprint: null,
            choices: [{ index: 0, message, logprobs: recorder ? { content: logprobs } : null, finish_reason: finish }],
            usage: u,
          });
        } else {
          sendJson(res, 200, {
            id, object: 'text_completion', created, model: l.name,
            choices: [{ index: 0, text: content, logprobs: recorder ? legacyLogprobs(logprobs) : null, finish_reason: finish }],
            usage: u,
          });
        }
      }
      metrics.promptTokens += prompt.length;
      metrics.cachedPromptTokens += acquired.common;
      metrics.generatedTokens += result.tokens.length;
      metrics.latency.observe((performance.now() - t0) / 1000);
      return reason === 'client' ? 499 : 200;
    } finally {
      clearTimeout(timer);
      res.off('close', onClose);
      aborters.delete(ac);
      if (slot) l.pool.release(slot);
    }
  }

  function legacyLogprobs(lp: TokenLogprob[]) {
    let offset = 0;
    const textOffset = lp.map((t) => {
      const o = offset;
      offset += t.token.length;
      return o;
    });
    return {
      tokens: lp.map((t) => t.token),
      token_logprobs: lp.map((t) => t.logprob),
      top_logprobs: lp.map((t) => Object.fromEntries(t.top_logprobs.map((x) => [x.token, x.logprob]))),
      text_offset: textOffset,
    };
  }

  // ---- routes ----------------------------------------------------------------------------

  async function embeddings(res: http.ServerResponse, body: unknown): Promise<number> {
    const l = requireLive();
    const r = parseEmbeddingRequest(body);
    const model = l.model as unknown as Partial<EmbeddingModel>;
    if (typeof model.embed !== 'function')
      throw new HttpError(501, 'This build cannot compute embeddings (the model has no embed())', 'invalid_request_error', null, 'not_implemented');
    let tokens = 0;
    for (const text of r.input) {
      const n = l.model.tokenizer.tokenize(text, { addSpecial: true }).length;
      if (n > l.contextSize) throw new HttpError(400, `input is ${n} tokens; the context is ${l.contextSize}`, 'invalid_request_error', 'input', 'context_length_exceeded');
      tokens += n;
    }
    const vectors = await model.embed.call(l.model, r.input, { pooling: 'mean', normalize: true });
    sendJson(res, 200, {
      object: 'list',
      model: l.name,
      data: vectors.map((v, index) => ({
        object: 'embedding',
        index,
        embedding: r.encodingFormat === 'base64' ? Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') : Array.from(v),
      })),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
    return 200;
  }

  /** Answers one request; `at.endpoint` names the route as soon as it is known (for the metrics of failed requests). */
  async function route(req: http.IncomingMessage, res: http.ServerResponse, t0: number, at: { endpoint: string }): Promise<{ endpoint: string; status: number }> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      throw new HttpError(400, 'The request target is not a valid path', 'invalid_request_error', null, 'invalid_path');
    }
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';

    if (method === 'OPTIONS' && options.cors) {
      res.writeHead(204, {
        ...corsHeaders(),
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'Authorization, Content-Type',
        'access-control-max-age': '600',
      });
      res.end();
      return { endpoint: 'options', status: 204 };
    }
    if (path === '/health') {
      at.endpoint = 'health';
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'Use GET /health', 'invalid_request_error', null, 'method_not_allowed', { allow: 'GET' });
      const status = live && !closing ? 200 : 503;
      sendJson(res, status, { status: closing ? 'shutting_down' : live ? 'ok' : loadError !== undefined ? 'error' : 'loading' });
      return { endpoint: 'health', status };
    }
    if (!authorized(req))
      throw new HttpError(401, 'Incorrect or missing API key: send it as "Authorization: Bearer <key>"', 'invalid_request_error', null, 'invalid_api_key', { 'www-authenticate': 'Bearer' });

    const routes: Record<string, { method: string; endpoint: string }> = {
      '/metrics': { method: 'GET', endpoint: 'metrics' },
      '/v1/models': { method: 'GET', endpoint: 'models' },
      '/v1/chat/completions': { method: 'POST', endpoint: 'chat' },
      '/v1/completions': { method: 'POST', endpoint: 'completion' },
      '/v1/embeddings': { method: 'POST', endpoint: 'embeddings' },
    };
    let r = routes[path];
    if (!r && path.startsWith('/v1/models/')) r = { method: 'GET', endpoint: 'model' };
    if (r) at.endpoint = r.endpoint;
    if (!r) throw new HttpError(404, `Unknown endpoint: ${method} ${path.slice(0, 100)}`, 'invalid_request_error', null, 'not_found');
    if (method !== r.method) throw new HttpError(405, `Use ${r.method} ${path}`, 'invalid_request_error', null, 'method_not_allowed', { allow: r.method });
    const endpoint = r.endpoint;

    switch (endpoint) {
      case 'metrics': {
        const text = metrics.render({
          queueDepth: live?.pool.queueDepth ?? 0,
          busySessions: live?.pool.busy ?? 0,
          sessions: live?.pool.slots.length ?? 0,
          ready: live !== undefined && !closing,
        });
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', ...corsHeaders() });
        res.end(text);
        return { endpoint, status: 200 };
      }
      case 'models':
      case 'model': {
        const l = requireLive();
        const entry = { id: l.name, object: 'model', created, owned_by: 'sparrow' };
        if (endpoint === 'model') {
          let id: string;
          try {
            id = decodeURIComponent(path.slice('/v1/models/'.length));
          } catch {
            throw new HttpError(400, 'The model id is not valid percent-encoding', 'invalid_request_error', 'model', 'invalid_path');
          }
          if (id !== l.name) throw new HttpError(404, `The model '${id.slice(0, 100)}' does not exist`, 'invalid_request_error', 'model', 'model_not_found');
          sendJson(res, 200, entry);
        } else sendJson(res, 200, { object: 'list', data: [entry] });
        return { endpoint, status: 200 };
      }
    }
    const body = await readBody(req);
    if (closing) throw new HttpError(503, 'The server is shutting down', 'server_error', null, 'shutting_down');
    const l = requireLive();
    if (endpoint === 'embeddings') return { endpoint, status: await embeddings(res, body) };
    const vocab = l.model.info.vocabSize;
    const prepared = endpoint === 'chat' ? prepareChat(l, parseChatRequest(body, vocab)) : prepareCompletion(l, parseCompletionRequest(body, vocab));
    return { endpoint, status: await runGeneration(req, res, prepared, t0) };
  }

  const server = http.createServer((req, res) => {
    const t0 = performance.now();
    // A client that resets mid-request or mid-answer is handled where it matters (abort on
    // 'close'); these listeners keep the socket errors from being unhandled 'error' events.
    req.on('error', () => {});
    res.on('error', () => {});
    const key = new AbortController();
    const at = { endpoint: 'unknown' };
    const access = (status: number) =>
      log(`${req.socket.remoteAddress ?? '-'} ${req.method} ${(req.url ?? '').slice(0, 200)} ${status} ${(performance.now() - t0).toFixed(0)}ms`);
    const done = route(req, res, t0, at).then(
      ({ endpoint, status }) => {
        metrics.countRequest(endpoint, status);
        if (endpoint !== 'health' && endpoint !== 'metrics') access(status);
      },
      (e: unknown) => {
        const err = toHttpError(e);
        if (!res.headersSent) sendError(res, err);
        else if (!res.writableEnded) res.end();
        metrics.countRequest(at.endpoint, err.status);
        access(err.status);
        // After a refused body, stop reading the rest of it.
        if (err.status === 413) res.once('finish', () => req.destroy());
      },
    ).finally(() => inFlight.delete(key));
    inFlight.set(key, done);
  });
  // Receiving a request (headers and body) may take a minute at most: slow senders do not hold sockets.
  server.requestTimeout = 60_000;
  server.headersTimeout = 20_000;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });

  return {
    http: server,
    ready,
    get stats() {
      return { busySessions: live?.pool.busy ?? 0, queueDepth: live?.pool.queueDepth ?? 0, inFlight: inFlight.size, sessions: live?.pool.slots.length ?? 0 };
    },
    listen(port = 8080, host = '127.0.0.1') {
      return new Promise<AddressInfo>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      });
    },
    async close({ graceMs = 10_000 } = {}) {
      if (closing) return;
      closing = true;
      live?.pool.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const all = () => Promise.all([...inFlight.values()]);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        all().then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs))),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        for (const abort of aborters.values()) abort('shutdown');
        await all();
      }
      server.closeAllConnections();
      await closed;
      if (live) for (const s of live.pool.slots) await s.session[Symbol.asyncDispose]();
      log('server closed');
    },
  };
}
