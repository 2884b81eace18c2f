/**
 * The generation loop: evaluate the prompt (reusing the cached prefix), then sample,
 * decode, check stops and evaluate one token at a time, streaming UTF-8-safe chunks.
 *
 *   const gen = generate({ session, tokenizer, vocabSize }, 'Once upon a time', { maxTokens: 50 });
 *   for await (const chunk of gen) process.stdout.write(chunk.text);
 *   const { stopReason, timings } = await gen.result;
 *
 * Context shift: when the next token does not fit, the first `keep` tokens stay and the
 * oldest half of the rest is dropped. A session with a native shift() moves the kept
 * tail down in its KV cache and re-rotates its keys (as llama.cpp's K-shift: nothing is
 * evaluated again); with `reevaluate`, for a session without shift(), and for a prompt
 * longer than the context, the kept tail is evaluated again.
 */
import { SparrowError } from '../errors.js';
import { Sampler, SAMPLER_OPTION_KEYS, type SamplerOptions } from '../sampling/sampler.js';
import { boolOption, intOption, invalidArg, optionsObject, rejectUnknownKeys } from '../sampling/validate.js';
import { CompiledGrammar, compileGrammar, vocabFingerprint, type GrammarMatcher } from '../grammar/index.js';
import { StopMatcher } from './stop.js';
import { Generation } from './stream.js';
import type {
  GenerateOptions,
  GenerationChunk,
  GenerationResult,
  SessionLike,
  StopReason,
  TokenInput,
  TokenizerLike,
} from './types.js';

/** What a generation runs on. */
export interface GenerationTarget {
  session: SessionLike;
  tokenizer: TokenizerLike;
  vocabSize: number;
}

const GENERATE_KEYS = [
  ...SAMPLER_OPTION_KEYS, 'maxTokens', 'stop', 'signal', 'contextShift', 'addSpecial', 'parseSpecial',
  'jsonSchema', 'grammar',
] as const;

/** Tokens kept by a context shift when the caller does not say: the first few act as attention sinks. */
export const DEFAULT_KEEP = 4;

/** Sessions with a generation in flight. */
const busy = new WeakSet<object>();


export interface ResolvedGenerateOptions {
  sampler: SamplerOptions;
  maxTokens: number;
  stopStrings: string[];
  stopTokens: Set<number>;
  signal: AbortSignal | undefined;
  shift: boolean;
  reevaluate: boolean;
  keep: number | undefined;
  addSpecial: boolean | undefined;
  parseSpecial: boolean;
  /** Structured output: a compiled grammar, or what to compile against the target's vocabulary. */
  grammar: CompiledGrammar | { jsonSchema: object | boolean } | { grammar: string } | undefined;
}

/** Validates the generation options (each error names the option). Sampler options are checked by the Sampler. */
export function resolveGenerateOptions(options: unknown, vocabSize: number, extraKeys: readonly string[] = []): ResolvedGenerateOptions {
  const o = optionsObject<GenerateOptions>('options', options);
  rejectUnknownKeys('options', o, [...GENERATE_KEYS, ...extraKeys]);
  const stopStrings: string[] = [];
  const stopTokens = new Set<number>();
  if (o.stop !== undefined) {
    const list = typeof o.stop === 'string' || typeof o.stop === 'number' ? [o.stop] : o.stop;
    if (!Array.isArray(list)) throw invalidArg('stop', 'a string, a token id or an array of them', o.stop);
    for (const s of list as unknown[]) {
      if (typeof s === 'string') {
        if (s.length === 0) throw invalidArg('stop', 'non-empty strings', s);
        stopStrings.push(s);
      } else if (typeof s === 'number' && Number.isInteger(s) && s >= 0 && s < vocabSize) {
        stopTokens.add(s);
      } else {
        throw invalidArg('stop', `strings or token ids in [0, ${vocabSize})`, s);
      }
    }
  }
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArg('signal', 'an AbortSignal', signal);
  let shift = true;
  let reevaluate = false;
  let keep: number | undefined;
  const cs = o.contextShift;
  if (cs === 'stop') shift = false;
  else if (cs !== undefined && cs !== 'shift') {
    if (typeof cs !== 'object' || cs === null || Array.isArray(cs)) {
      throw invalidArg('contextShift', "'shift', 'stop' or { keep, reevaluate }", cs);
    }
    rejectUnknownKeys('contextShift', cs, ['keep', 'reevaluate']);
    keep = intOption('contextShift.keep', cs.keep, DEFAULT_KEEP, 0);
    reevaluate = boolOption('contextShift.reevaluate', cs.reevaluate, false);
  }
  const sampler: SamplerOptions = {};
  for (const k of SAMPLER_OPTION_KEYS) if (o[k] !== undefined) (sampler as Record<string, unknown>)[k] = o[k];
  return {
    sampler,
    maxTokens: intOption('maxTokens', o.maxTokens, Number.MAX_SAFE_INTEGER, 0),
    stopStrings,
    stopTokens,
    signal,
    shift,
    reevaluate,
    keep,
    addSpecial: o.addSpecial === undefined ? undefined : boolOption('addSpecial', o.addSpecial, true),
    parseSpecial: boolOption('parseSpecial', o.parseSpecial, false),
    grammar: grammarOption(o),
  };
}

function grammarOption(o: Partial<GenerateOptions>): ResolvedGenerateOptions['grammar'] {
  if (o.jsonSchema !== undefined && o.grammar !== undefined) {
    throw new SparrowError('give either jsonSchema or grammar, not both', 'ERR_INVALID_ARG');
  }
  if (o.jsonSchema !== undefined) {
    if (typeof o.jsonSchema !== 'boolean' && (typeof o.jsonSchema !== 'object' || o.jsonSchema === null || Array.isArray(o.jsonSchema))) {
      throw invalidArg('jsonSchema', 'a JSON schema (an object)', o.jsonSchema);
    }
    return { jsonSchema: o.jsonSchema };
  }
  if (o.grammar === undefined) return undefined;
  if (o.grammar instanceof CompiledGrammar) return o.grammar;
  if (typeof o.grammar === 'string') return { grammar: o.grammar };
  throw invalidArg('grammar', 'GBNF text or a grammar from compileGrammar()', o.grammar);
}

/** The grammar matcher of one generation (compiling a schema or GBNF text now), or null. */
function grammarMatcher(target: GenerationTarget, o: ResolvedGenerateOptions): GrammarMatcher | null {
  if (o.grammar === undefined) return null;
  const tok = target.tokenizer;
  const key = tok.vocabKey ?? tok;
  if (typeof tok.piece !== 'function') throw new SparrowError('structured output needs a tokenizer with piece()', 'ERR_INVALID_ARG');
  if (o.grammar instanceof CompiledGrammar) {
    const g = o.grammar;
    if (g.vocabKey !== key) {
      // Another object: the same vocabulary is fine (compared by content, once per object).
      let fp = fingerprints.get(key);
      if (fp === undefined) {
        fp = vocabFingerprint(target.vocabSize, (id) => tok.piece!(id, false), (id) => tok.isEog(id));
        fingerprints.set(key, fp);
      }
      if (g.trie.nVocab !== target.vocabSize || fp !== g.trie.fingerprint) {
        throw new SparrowError('this grammar was compiled for another tokenizer', 'ERR_INVALID_ARG');
      }
    }
    return g.matcher();
  }
  // Recently compiled schemas and grammars are kept (per vocabulary), so that a request
  // repeating one finds its masks already cached.
  let text: string;
  try {
    text = 'jsonSchema' in o.grammar ? 's' + JSON.stringify(o.grammar.jsonSchema) : 'g' + o.grammar.grammar;
  } catch (e) {
    throw new SparrowError('jsonSchema must be plain JSON data (no cycles, no BigInt)', 'ERR_INVALID_ARG', { cause: e });
  }
  let cache = compiledCache.get(key);
  if (!cache) compiledCache.set(key, (cache = new Map()));
  let compiled = cache.get(text);
  if (compiled) {
    cache.delete(text); // most recently used last
  } else {
    const source = { vocabSize: target.vocabSize, piece: tok.piece.bind(tok), isEog: (id: number) => tok.isEog(id) };
    compiled = compileGrammar(source, o.grammar, key);
    if (cache.size >= COMPILED_CACHE_SIZE) cache.delete(cache.keys().next().value!);
  }
  cache.set(text, compiled);
  return compiled.matcher();
}

const fingerprints = new WeakMap<object, number>();

/** Grammars compiled from generation options, per vocabulary: the most recent few. */
const compiledCache = new WeakMap<object, Map<string, CompiledGrammar>>();
const COMPILED_CACHE_SIZE = 16;

function checkTokens(name: string, tokens: ArrayLike<number>, vocabSize: number): number[] {
  const out = new Array<number>(tokens.length);
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t >= vocabSize) {
      throw invalidArg(`${name}[${i}]`, `a token id in [0, ${vocabSize})`, t);
    }
    out[i] = t;
  }
  return out;
}

/**
 * Starts a generation that continues the session's sequence with `input` (text or token
 * ids). Throws at once for bad options and for a session that is already generating.
 */
export function generate(target: GenerationTarget, input: string | TokenInput, options?: GenerateOptions): Generation {
  const o = resolveGenerateOptions(options, target.vocabSize);
  const sampler = new Sampler(target.vocabSize, o.sampler);  // validates the sampler options now
  let inputTokens: number[] | null = null;
  if (typeof input !== 'string') {
    if (!Array.isArray(input) && !(input instanceof Uint32Array) && !(input instanceof Int32Array)) {
      throw invalidArg('input', 'a string, an array of token ids, a Uint32Array or an Int32Array', input);
    }
    inputTokens = checkTokens('input', input, target.vocabSize);
  }
  return start(target, o, sampler, (cached) => {
    if (inputTokens) return [...cached, ...inputTokens];
    // A new sequence gets BOS (and whatever else the model adds); a continuation does not.
    const addSpecial = o.addSpecial ?? cached.length === 0;
    const ids = target.tokenizer.tokenize(input as string, { addSpecial, parseSpecial: o.parseSpecial });
    return [...cached, ...Array.from(ids)];
  });
}

/** Like generate, without streaming: resolves to the result. */
export function complete(target: GenerationTarget, input: string | TokenInput, options?: GenerateOptions): Promise<GenerationResult> {
  return generate(target, input, options).result;
}

/**
 * @internal Runs a generation whose full token sequence (cached part included) is
 * `buildSequence(tokensInTheSessionSoFar)`. Used by generate() and by chats, which pass
 * the whole rendered conversation and let the common prefix with the cache be reused.
 */
export function start(
  target: GenerationTarget,
  o: ResolvedGenerateOptions,
  sampler: Sampler,
  buildSequence: (cached: number[]) => number[],
  hooks: { defaultKeep?: number } = {},
): Generation {
  const { session } = target;
  if (busy.has(session)) {
    throw new SparrowError('the session is already generating; wait for the result or abort it first', 'ERR_SESSION_BUSY');
  }
  // Synchronous checks first: a disposed session or a bad input throws here, not later.
  const contextSize = session.contextSize;
  const sequence = buildSequence(Array.from(session.tokens));
  // Structured output: the mask runs last among the logit processors (after the user's).
  const grammar = grammarMatcher(target, o);
  if (grammar) sampler.options.logitProcessors.push((logits) => grammar.apply(logits));
  busy.add(session);
  const stopper = new AbortController();
  const gen = new Generation(() => stopper.abort());
  const onAbort = () => stopper.abort();
  if (o.signal?.aborted) stopper.abort();
  else o.signal?.addEventListener('abort', onAbort, { once: true });
  run(target, o, sampler, sequence, contextSize, hooks.defaultKeep, gen, stopper.signal, grammar).then(
    (r) => {
      busy.delete(session);  // before the result is seen, so the caller can generate again at once
      o.signal?.removeEventListener('abort', onAbort);
      gen.finish(r);
    },
    (e: unknown) => {
      busy.delete(session);
      o.signal?.removeEventListener('abort', onAbort);
      gen.fail(e);
    },
  );
  return gen;
}

/**
 * Errors that mean "the session or model went away" or "the evaluation was aborted by the
 * signal": the generation ends as aborted.
 */
function isDisposal(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === 'ERR_DISPOSED' || code === 'ERR_CANCELLED' || code === 'ERR_ABORTED';
}

/**
 * Brings the session's cache to `sequence` (keeping the common prefix) and resolves to
 * the logits of its last token. Returns how many tokens were evaluated.
 */
export async function syncSession(
  session: SessionLike,
  sequence: readonly number[],
  signal?: AbortSignal,
): Promise<{ logits: Float32Array; evaluated: number }> {
  if (sequence.length === 0) throw new SparrowError('nothing to evaluate: the input is empty and the session holds no tokens', 'ERR_INVALID_ARG');
  const cached = session.tokens;
  let common = 0;
  const max = Math.min(cached.length, sequence.length);
  while (common < max && cached[common] === sequence[common]) common++;
  // The logits of the last token are not kept: evaluate at least that one again.
  if (common === sequence.length) common--;
  if (common < cached.length) {
    session.truncate(common);
    // A session with sliding-window layers may keep fewer tokens than asked.
    common = Math.min(common, session.tokens.length);
  }
  // With a signal, an abort stops the forward pass at its next layer (the session then
  // holds the common prefix only).
  const logits = await session.evaluate(sequence.slice(common), signal ? { signal } : undefined);
  return { logits, evaluated: sequence.length - common };
}

/** The sequence after a shift: the first `keep` tokens, then the newer half of the rest. */
function shifted(tokens: readonly number[], keep: number, room: number): number[] | null {
  const rest = tokens.length - keep;
  // Drop the oldest half of what follows `keep`, and more if still needed to leave `room`.
  const drop = Math.max(Math.ceil(rest / 2), tokens.length - (room - 1));
  if (drop <= 0 || drop > rest) return null;
  return [...tokens.slice(0, keep), ...tokens.slice(keep + drop)];
}

async function run(
  target: GenerationTarget,
  o: ResolvedGenerateOptions,
  sampler: Sampler,
  sequence: number[],
  ctx: number,
  defaultKeep: number | undefined,
  gen: Generation,
  stop: AbortSignal,
  grammar: GrammarMatcher | null = null,
): Promise<GenerationResult> {
  const { session, tokenizer } = target;
  const t0 = performance.now();
  const tokens: number[] = [];
  let text = '';
  let stopReason: StopReason = 'maxTokens';
  let stopValue: string | number | undefined;
  let promptTokens = 0;
  let promptMs = 0;
  let tGen = t0;
  const result = (): GenerationResult => ({
    text,
    tokens,
    stopReason,
    ...(stopValue !== undefined ? { stop: stopValue } : {}),
    timings: { promptTokens, promptMs, generatedTokens: tokens.length, generationMs: performance.now() - tGen },
  });
  if (stop.aborted) {
    stopReason = 'abort';
    return result();
  }

  const keep = Math.min(o.keep ?? defaultKeep ?? DEFAULT_KEEP, Math.floor(ctx / 2));
  if (sequence.length > ctx) {
    const fitted = o.shift ? shifted(sequence, keep, ctx - Math.floor((ctx - keep) / 4)) : null;
    if (!fitted || fitted.length > ctx) {
      throw new SparrowError(
        `the prompt (${sequence.length} tokens with those already in the session) does not fit the context of ${ctx} tokens` +
          (o.shift ? '' : " and contextShift is 'stop'"),
        'ERR_CONTEXT_FULL',
      );
    }
    sequence = fitted;
  }
  const history = sequence.slice();  // for the penalties: all tokens so far

  let logits: Float32Array;
  try {
    ({ logits, evaluated: promptTokens } = await syncSession(session, sequence, stop));
  } catch (e) {
    if (!isDisposal(e)) throw e;
    stopReason = 'abort';
    return result();
  }
  promptMs = performance.now() - t0;
  tGen = performance.now();
  let nCached = sequence.length;  // tokens in the session's cache, tracked here (reading them is O(n))

  const decoder = tokenizer.createDecoder({ removeSpecial: true });
  const matcher = new StopMatcher(o.stopStrings);
  let chunkTokens: number[] = [];
  const emit = (s: string) => {
    if (s.length === 0) return;
    text += s;
    const chunk: GenerationChunk = { text: s, tokens: chunkTokens };
    chunkTokens = [];
    gen.push(chunk);
  };

  for (;;) {
    if (stop.aborted) {
      stopReason = 'abort';
      break;
    }
    if (tokens.length >= o.maxTokens) {
      stopReason = 'maxTokens';
      break;
    }
    if (grammar?.done) {
      // The grammar has ended: nothing more may follow.
      stopReason = 'eos';
      break;
    }
    const t = sampler.sample(logits, history);
    if (tokenizer.isEog(t)) {
      stopReason = 'eos';
      break;
    }
    if (o.stopTokens.has(t)) {
      stopReason = 'stop';
      stopValue = t;
      break;
    }
    grammar?.accept(t);
    tokens.push(t);
    history.push(t);
    chunkTokens.push(t);
    const { emit: out, matched } = matcher.push(decoder.push(t));
    emit(out);
    if (matched !== null) {
      stopReason = 'stop';
      stopValue = matched;
    }
    if (stop.aborted) {
      // No forward pass after an abort: the result comes at once.
      if (stopReason !== 'stop') stopReason = 'abort';
      break;
    }

    // Evaluate t, shifting the context first when it is full. The last token is evaluated
    // too (for maxTokens and stop strings), so that the session holds the prompt and all
    // of the output and the next generation simply continues it.
    try {
      if (nCached + 1 > ctx) {
        const fitted = o.shift ? shifted([...Array.from(session.tokens), t], keep, ctx) : null;
        if (!fitted) {
          if (stopReason !== 'stop') stopReason = 'contextFull';
          break;
        }
        const drop = nCached + 1 - fitted.length;  // the tokens after `keep` that go
        if (session.shift && !o.reevaluate && keep + drop <= nCached) {
          await session.shift(keep, drop);
          // A session with sliding-window layers may keep fewer tokens (see shift()).
          if (session.tokens.length === nCached - drop) logits = await session.evaluate([t], { signal: stop });
          else ({ logits } = await syncSession(session, fitted, stop));
        } else {
          ({ logits } = await syncSession(session, fitted, stop));
        }
        nCached = fitted.length;
      } else {
        const next = session.evaluate([t], { signal: stop });
        // While the forward pass runs on its native thread, work out the next token mask
        // (an error there is thrown again by the mask itself, in order).
        try {
          grammar?.prefetch();
        } catch {
          /* reported by the next apply() */
        }
        logits = await next;
        nCached++;
      }
    } catch (e) {
      if (!isDisposal(e)) throw e;
      stopReason = 'abort';
      break;
    }
    if (stopReason === 'stop') break;
  }

  // The end: whatever the decoder and the stop matcher still hold is output, unless a stop string matched.
  if (stopReason !== 'stop' || typeof stopValue !== 'string') {
    const tail = decoder.flush?.() ?? '';
    const { emit: out, matched } = matcher.push(tail);
    if (matched !== null) {
      emit(out);
      if (stopReason !== 'stop') {
        stopReason = 'stop';
        stopValue = matched;
      }
    } else {
      emit(out + matcher.flush());
    }
  }
  if (chunkTokens.length > 0) gen.push({ text: '', tokens: chunkTokens });

  return result();
}
