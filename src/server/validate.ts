/**
 * Request checks: every field of a request body is type- and range-checked here, and a bad
 * one is a 400 that names it. Unknown fields are refused too (as OpenAI refuses them), so a
 * misspelt option is never silently ignored. The result is a plain, trusted description of
 * the request that the handlers turn into a generation.
 */
import type { ChatMessage, ChatTool } from '../templates/template.js';
import { badField, HttpError } from './errors.js';

type Json = Record<string, unknown>;

/** Sampling and stopping, shared by both endpoints. */
export interface SamplingParams {
  maxTokens: number | undefined;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  seed: number | undefined;
  presencePenalty: number;
  frequencyPenalty: number;
  logitBias: Map<number, number>;
  stop: string[];
  /** Log-probabilities of the chosen tokens, and this many alternatives per position. */
  logprobs: boolean;
  topLogprobs: number;
  stream: boolean;
  includeUsage: boolean;
  /** A JSON schema the output must follow (response_format), when given. */
  jsonSchema: Json | undefined;
}

export type ToolChoice = 'none' | 'auto' | 'required' | { name: string };

export interface ChatRequest extends SamplingParams {
  messages: ChatMessage[];
  tools: ChatTool[] | undefined;
  toolChoice: ToolChoice;
}

export interface CompletionRequest extends SamplingParams {
  prompt: string | number[];
}

export interface EmbeddingRequest {
  input: string[];
  encodingFormat: 'float' | 'base64';
}

const MAX_STOP = 4;
const MAX_STOP_LENGTH = 256;
const MAX_MESSAGES = 4096;
const MAX_TOOLS = 128;
const MAX_LOGIT_BIAS = 1024;
const MAX_EMBEDDING_INPUTS = 2048;

/** Fields OpenAI clients may send that change nothing here. */
const IGNORED = ['model', 'user', 'metadata', 'store', 'service_tier', 'parallel_tool_calls', 'stream_options'];

const SAMPLING_FIELDS = [
  'max_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'seed', 'presence_penalty', 'frequency_penalty',
  'logit_bias', 'stop', 'n', 'stream', 'stream_options', 'response_format',
];

const CHAT_FIELDS = new Set([...IGNORED, ...SAMPLING_FIELDS, 'messages', 'max_completion_tokens', 'logprobs', 'top_logprobs', 'tools', 'tool_choice']);
const COMPLETION_FIELDS = new Set([...IGNORED, ...SAMPLING_FIELDS, 'prompt', 'logprobs', 'echo', 'suffix', 'best_of']);
const EMBEDDING_FIELDS = new Set(['model', 'user', 'input', 'encoding_format', 'dimensions']);

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

function checkKnown(body: Json, known: Set<string>, prefix = ''): void {
  for (const k of Object.keys(body)) {
    if (!known.has(k)) throw new HttpError(400, `Unrecognized request argument supplied: ${prefix}${k}`, 'invalid_request_error', prefix + k, 'unknown_parameter');
  }
}

function num(body: Json, name: string, fallback: number, min: number, max: number): number {
  const v = body[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badField(name, `must be a number (got ${typeName(v)})`, 'invalid_type');
  if (v < min || v > max) throw badField(name, `must be between ${min} and ${max} (got ${v})`);
  return v;
}

function int(body: Json, name: string, min: number, max: number): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw badField(name, `must be an integer (got ${typeof v === 'number' ? v : typeName(v)})`, 'invalid_type');
  if (v < min || v > max) throw badField(name, `must be an integer from ${min} to ${max} (got ${v})`);
  return v;
}

function bool(body: Json, name: string, fallback: boolean): boolean {
  const v = body[name];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw badField(name, `must be a boolean (got ${typeName(v)})`, 'invalid_type');
  return v;
}

function str(v: unknown, name: string, maxLength = Infinity): string {
  if (typeof v !== 'string') throw badField(name, `must be a string (got ${typeName(v)})`, 'invalid_type');
  if (v.length > maxLength) throw badField(name, `must be at most ${maxLength} characters`);
  return v;
}

function checkN(body: Json): void {
  const n = int(body, 'n', 1, Number.MAX_SAFE_INTEGER);
  if (n !== undefined && n !== 1) throw badField('n', `only n = 1 is supported (got ${n}); send several requests instead`, 'unsupported_value');
}

function stopList(body: Json): string[] {
  const v = body.stop;
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list)) throw badField('stop', `must be a string or an array of strings (got ${typeName(v)})`, 'invalid_type');
  if (list.length > MAX_STOP) throw badField('stop', `at most ${MAX_STOP} stop sequences`);
  return list.map((s, i) => {
    const t = str(s, `stop[${i}]`, MAX_STOP_LENGTH);
    if (t.length === 0) throw badField(`stop[${i}]`, 'must not be empty');
    return t;
  });
}

function logitBias(body: Json, vocabSize: number): Map<number, number> {
  const v = body.logit_bias;
  const out = new Map<number, number>();
  if (v === undefined || v === null) return out;
  if (!isObject(v)) throw badField('logit_bias', `must be an object mapping token ids to numbers (got ${typeName(v)})`, 'invalid_type');
  const entries = Object.entries(v);
  if (entries.length > MAX_LOGIT_BIAS) throw badField('logit_bias', `at most ${MAX_LOGIT_BIAS} entries`);
  for (const [key, bias] of entries) {
    const id = /^(0|[1-9][0-9]{0,9})$/.test(key) ? Number(key) : NaN;
    if (!(id >= 0 && id < vocabSize)) throw badField('logit_bias', `keys must be token ids from 0 to ${vocabSize - 1} (got "${key.slice(0, 32)}")`);
    if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < -100 || bias > 100)
      throw badField(`logit_bias.${id}`, `must be a number from -100 to 100 (got ${typeof bias === 'number' ? bias : typeName(bias)})`);
    // -100 bans the token, as OpenAI documents; other values are added to the logit.
    out.set(id, bias <= -100 ? -Infinity : bias);
  }
  return out;
}

function responseFormat(body: Json): Json | undefined {
  const v = body.response_format;
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw badField('response_format', `must be an object (got ${typeName(v)})`, 'invalid_type');
  checkKnown(v, new Set(['type', 'json_schema']), 'response_format.');
  switch (v.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return { type: 'object' };
    case 'json_schema': {
      const js = v.json_schema;
      if (!isObject(js)) throw badField('response_format.json_schema', 'must be an object { name, schema, strict? }', 'invalid_type');
      checkKnown(js, new Set(['name', 'description', 'schema', 'strict']), 'response_format.json_schema.');
      if (js.name !== undefined) str(js.name, 'response_format.json_schema.name', 64);
      if (js.schema === undefined) return {};  // OpenAI: no schema means any JSON object
      if (!isObject(js.schema)) throw badField('response_format.json_schema.schema', 'must be a JSON schema object', 'invalid_type');
      return js.schema;
    }
    default:
      throw badField('response_format.type', `must be 'text', 'json_object' or 'json_schema' (got ${JSON.stringify(v.type)?.slice(0, 40)})`);
  }
}

function sampling(body: Json, vocabSize: number, maxTokensField: unknown, logprobs: boolean, topLogprobs: number): SamplingParams {
  checkN(body);
  const so = body.stream_options;
  const stream = bool(body, 'stream', false);
  let includeUsage = false;
  if (so !== undefined && so !== null) {
    if (!isObject(so)) throw badField('stream_options', `must be an object (got ${typeName(so)})`, 'invalid_type');
    checkKnown(so, new Set(['include_usage', 'include_obfuscation']), 'stream_options.');
    if (!stream) throw badField('stream_options', 'is only allowed when stream is true');
    includeUsage = bool(so, 'include_usage', false);
  }
  const maxTokens = maxTokensField === undefined || maxTokensField === null
    ? undefined
    : int({ max_tokens: maxTokensField }, 'max_tokens', 1, Number.MAX_SAFE_INTEGER);
  return {
    maxTokens,
    temperature: num(body, 'temperature', 1, 0, 2),
    topP: num(body, 'top_p', 1, 0, 1),
    topK: int(body, 'top_k', 0, vocabSize) ?? 0,
    minP: num(body, 'min_p', 0, 0, 1),
    seed: int(body, 'seed', 0, Number.MAX_SAFE_INTEGER),
    presencePenalty: num(body, 'presence_penalty', 0, -2, 2),
    frequencyPenalty: num(body, 'frequency_penalty', 0, -2, 2),
    logitBias: logitBias(body, vocabSize),
    stop: stopList(body),
    logprobs,
    topLogprobs,
    stream,
    includeUsage,
    jsonSchema: responseFormat(body),
  };
}

function messageContent(v: unknown, name: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) throw badField(name, `must be a string or an array of content parts (got ${typeName(v)})`, 'invalid_type');
  return v
    .map((part, i) => {
      if (!isObject(part)) throw badField(`${name}[${i}]`, 'must be an object { type, text }', 'invalid_type');
      if (part.type !== 'text') throw badField(`${name}[${i}].type`, `only 'text' parts are supported (got ${JSON.stringify(part.type)?.slice(0, 40)})`, 'unsupported_value');
      return str(part.text, `${name}[${i}].text`);
    })
    .join('');
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

function toolCalls(v: unknown, name: string): unknown[] {
  if (!Array.isArray(v)) throw badField(name, `must be an array (got ${typeName(v)})`, 'invalid_type');
  return v.map((c, i) => {
    const at = `${name}[${i}]`;
    if (!isObject(c)) throw badField(at, 'must be an object', 'invalid_type');
    if (c.type !== undefined && c.type !== 'function') throw badField(`${at}.type`, "must be 'function'");
    const f = c.function;
    if (!isObject(f)) throw badField(`${at}.function`, 'must be an object { name, arguments }', 'invalid_type');
    const fname = str(f.name, `${at}.function.name`, 256);
    // Templates expect the arguments as an object (they print them with tojson); clients send a JSON string.
    let args: unknown = f.arguments ?? {};
    if (typeof args === 'string') {
      try {
        args = args.trim() === '' ? {} : JSON.parse(args);
      } catch {
        throw badField(`${at}.function.arguments`, 'must be a JSON object (as a string)');
      }
    }
    if (!isObject(args)) throw badField(`${at}.function.arguments`, 'must be a JSON object');
    return { type: 'function', ...(c.id !== undefined ? { id: str(c.id, `${at}.id`, 256) } : {}), function: { name: fname, arguments: args } };
  });
}

function messages(v: unknown): ChatMessage[] {
  if (!Array.isArray(v)) throw badField('messages', `must be an array of messages (got ${typeName(v)})`, v === undefined ? 'missing_required_parameter' : 'invalid_type');
  if (v.length === 0) throw badField('messages', 'must not be empty');
  if (v.length > MAX_MESSAGES) throw badField('messages', `at most ${MAX_MESSAGES} messages`);
  return v.map((m, i) => {
    const at = `messages[${i}]`;
    if (!isObject(m)) throw badField(at, `must be an object (got ${typeName(m)})`, 'invalid_type');
    checkKnown(m, new Set(['role', 'content', 'name', 'tool_calls', 'tool_call_id', 'refusal']), `${at}.`);
    const role = str(m.role, `${at}.role`);
    if (!ROLES.has(role)) throw badField(`${at}.role`, `must be one of ${[...ROLES].join(', ')} (got ${JSON.stringify(role.slice(0, 40))})`);
    const out: ChatMessage = { role: role === 'developer' ? 'system' : role, content: messageContent(m.content, `${at}.content`) };
    if (m.name !== undefined && m.name !== null) out.name = str(m.name, `${at}.name`, 256);
    if (m.tool_calls !== undefined && m.tool_calls !== null) {
      if (role !== 'assistant') throw badField(`${at}.tool_calls`, 'is only allowed on assistant messages');
      out.tool_calls = toolCalls(m.tool_calls, `${at}.tool_calls`);
    }
    if (m.tool_call_id !== undefined && m.tool_call_id !== null) out.tool_call_id = str(m.tool_call_id, `${at}.tool_call_id`, 256);
    if (role === 'tool' && out.tool_call_id === undefined) throw badField(`${at}.tool_call_id`, 'is required on tool messages', 'missing_required_parameter');
    return out;
  });
}

function tools(v: unknown): ChatTool[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw badField('tools', `must be an array (got ${typeName(v)})`, 'invalid_type');
  if (v.length > MAX_TOOLS) throw badField('tools', `at most ${MAX_TOOLS} tools`);
  return v.map((t, i) => {
    const at = `tools[${i}]`;
    if (!isObject(t)) throw badField(at, 'must be an object', 'invalid_type');
    checkKnown(t, new Set(['type', 'function']), `${at}.`);
    if (t.type !== 'function') throw badField(`${at}.type`, "must be 'function'");
    const f = t.function;
    if (!isObject(f)) throw badField(`${at}.function`, 'must be an object { name, description?, parameters? }', 'invalid_type');
    checkKnown(f, new Set(['name', 'description', 'parameters', 'strict']), `${at}.function.`);
    const name = str(f.name, `${at}.function.name`, 64);
    if (!/^[a-zA-Z0-9_-]{1,64}$/.test(name)) throw badField(`${at}.function.name`, 'must be 1 to 64 letters, digits, underscores or dashes');
    const fn: ChatTool['function'] = { name };
    if (f.description !== undefined) fn.description = str(f.description, `${at}.function.description`);
    if (f.parameters !== undefined) {
      if (!isObject(f.parameters)) throw badField(`${at}.function.parameters`, 'must be a JSON schema object', 'invalid_type');
      fn.parameters = f.parameters;
    }
    return { type: 'function', function: fn };
  });
}

function toolChoice(v: unknown, list: ChatTool[] | undefined): ToolChoice {
  if (v === undefined || v === null) return list ? 'auto' : 'none';
  if (v === 'none' || v === 'auto' || v === 'required') {
    if (v !== 'none' && !list) throw badField('tool_choice', `'${v}' needs tools`);
    return v;
  }
  if (isObject(v) && v.type === 'function' && isObject(v.function)) {
    const name = str(v.function.name, 'tool_choice.function.name', 64);
    if (!list?.some((t) => t.function.name === name)) throw badField('tool_choice.function.name', `no tool is named ${JSON.stringify(name)}`);
    return { name };
  }
  throw badField('tool_choice', "must be 'none', 'auto', 'required' or { type: 'function', function: { name } }", 'invalid_type');
}

function requireObject(body: unknown): Json {
  if (!isObject(body)) throw new HttpError(400, `The request body must be a JSON object (got ${typeName(body)})`, 'invalid_request_error', null, 'invalid_body');
  return body;
}

export function parseChatRequest(raw: unknown, vocabSize: number): ChatRequest {
  const body = requireObject(raw);
  checkKnown(body, CHAT_FIELDS);
  if (body.model !== undefined) str(body.model, 'model', 256);
  const logprobs = bool(body, 'logprobs', false);
  const topLogprobs = int(body, 'top_logprobs', 0, 20) ?? 0;
  if (topLogprobs > 0 && !logprobs) throw badField('top_logprobs', 'needs logprobs: true');
  if (body.max_tokens !== undefined && body.max_tokens !== null && body.max_completion_tokens !== undefined && body.max_completion_tokens !== null)
    throw badField('max_completion_tokens', 'give max_tokens or max_completion_tokens, not both');
  let max = body.max_completion_tokens ?? body.max_tokens;
  if (body.max_completion_tokens !== undefined && body.max_completion_tokens !== null)
    max = int(body, 'max_completion_tokens', 1, Number.MAX_SAFE_INTEGER);
  const list = tools(body.tools);
  return {
    ...sampling(body, vocabSize, max, logprobs, topLogprobs),
    messages: messages(body.messages),
    tools: list,
    toolChoice: toolChoice(body.tool_choice, list),
  };
}

export function parseCompletionRequest(raw: unknown, vocabSize: number): CompletionRequest {
  const body = requireObject(raw);
  checkKnown(body, COMPLETION_FIELDS);
  if (body.model !== undefined) str(body.model, 'model', 256);
  if (body.echo !== undefined && body.echo !== null && body.echo !== false) throw badField('echo', 'is not supported (only false)', 'unsupported_value');
  if (body.suffix !== undefined && body.suffix !== null) throw badField('suffix', 'is not supported', 'unsupported_value');
  const bestOf = int(body, 'best_of', 1, Number.MAX_SAFE_INTEGER);
  if (bestOf !== undefined && bestOf !== 1) throw badField('best_of', 'only best_of = 1 is supported', 'unsupported_value');
  // The legacy API's logprobs is a count of alternatives (0..5).
  const lp = int(body, 'logprobs', 0, 5);
  let prompt: string | number[];
  const p = body.prompt;
  if (typeof p === 'string') prompt = p;
  else if (Array.isArray(p) && p.length === 1 && typeof p[0] === 'string') prompt = p[0];
  else if (Array.isArray(p) && p.length > 0 && p.every((t) => typeof t === 'number')) {
    prompt = p.map((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= vocabSize) throw badField(`prompt[${i}]`, `must be a token id from 0 to ${vocabSize - 1} (got ${t})`);
      return t as number;
    });
  } else if (Array.isArray(p) && p.length > 1) {
    throw badField('prompt', 'only one prompt per request is supported', 'unsupported_value');
  } else {
    throw badField('prompt', `must be a string or an array of token ids (got ${typeName(p)})`, p === undefined ? 'missing_required_parameter' : 'invalid_type');
  }
  if (prompt.length === 0) throw badField('prompt', 'must not be empty');
  return { ...sampling(body, vocabSize, body.max_tokens, lp !== undefined, lp ?? 0), prompt };
}

export function parseEmbeddingRequest(raw: unknown): EmbeddingRequest {
  const body = requireObject(raw);
  checkKnown(body, EMBEDDING_FIELDS);
  if (body.model !== undefined) str(body.model, 'model', 256);
  if (body.dimensions !== undefined && body.dimensions !== null) throw badField('dimensions', 'is not supported', 'unsupported_value');
  const f = body.encoding_format ?? 'float';
  if (f !== 'float' && f !== 'base64') throw badField('encoding_format', "must be 'float' or 'base64'");
  const v = body.input;
  const input = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(input) || input.length === 0) throw badField('input', 'must be a string or a non-empty array of strings', v === undefined ? 'missing_required_parameter' : 'invalid_type');
  if (input.length > MAX_EMBEDDING_INPUTS) throw badField('input', `at most ${MAX_EMBEDDING_INPUTS} inputs`);
  return { input: input.map((s, i) => str(s, `input[${i}]`)), encodingFormat: f };
}
