/**
 * A chat: the conversation history on one session. Each turn renders the whole history
 * with the model's chat template, tokenizes it, and hands it to the generation loop,
 * which keeps the part of the KV cache that the new prompt shares with it (the previous
 * turns) and evaluates only the rest. It streams like `generate`.
 *
 *   const chat = model.createChat({ systemPrompt: 'You are terse.' });
 *   for await (const chunk of chat.send('Hi!')) process.stdout.write(chunk.text);
 *   console.log(chat.history);  // system, user, assistant
 */
import { SparrowError } from '../errors.js';
import { applyChatTemplate, type ChatFormat, type ChatMessage } from '../templates/template.js';
import { Sampler } from '../sampling/sampler.js';
import { invalidArg, optionsObject, rejectUnknownKeys } from '../sampling/validate.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { resolveGenerateOptions, start, type GenerationTarget } from '../generation/generate.js';
import type { Generation } from '../generation/stream.js';
import { generationTokenizer } from '../generation/tokenizer-adapter.js';
import type { GenerateOptions, GenerationResult, SessionLike } from '../generation/types.js';

export interface ChatOptions {
  /** The first message, with role 'system'. */
  systemPrompt?: string;
  /** A conversation to start from (after the system prompt, if both are given). */
  history?: ChatMessage[];
  /** A built-in format instead of the model's own template. */
  format?: ChatFormat;
  /** A Jinja chat template to use instead of the model's. */
  template?: string;
  /** More variables for the template. */
  templateVariables?: Record<string, unknown>;
}

export const CHAT_OPTION_KEYS = ['systemPrompt', 'history', 'format', 'template', 'templateVariables'] as const;

function checkHistory(name: string, v: unknown): ChatMessage[] {
  if (!Array.isArray(v)) throw invalidArg(name, 'an array of { role, content } messages', v);
  return v.map((m: unknown, i) => {
    if (!m || typeof m !== 'object') throw invalidArg(`${name}[${i}]`, 'an object { role, content }', m);
    const { role, content } = m as ChatMessage;
    if (typeof role !== 'string' || role.length === 0) throw invalidArg(`${name}[${i}].role`, 'a non-empty string', role);
    if (typeof content !== 'string') throw invalidArg(`${name}[${i}].content`, 'a string', content);
    return { ...(m as ChatMessage) };
  });
}

export class Chat {
  #session: SessionLike;
  #tokenizer: Tokenizer;
  #target: GenerationTarget;
  #history: ChatMessage[];
  #format: ChatFormat | undefined;
  #template: string | undefined;
  #variables: Record<string, unknown> | undefined;
  #busy = false;
  #onDispose: (() => void) | undefined;

  /** @internal Use model.createChat(). `onDispose` frees the session the chat owns. */
  constructor(session: SessionLike, tokenizer: Tokenizer, vocabSize: number, options?: ChatOptions, onDispose?: () => void) {
    const o = optionsObject<ChatOptions>('createChat options', options);
    rejectUnknownKeys('createChat options', o, CHAT_OPTION_KEYS);
    if (o.systemPrompt !== undefined && typeof o.systemPrompt !== 'string') throw invalidArg('systemPrompt', 'a string', o.systemPrompt);
    if (o.template !== undefined && typeof o.template !== 'string') throw invalidArg('template', 'a string', o.template);
    if (o.templateVariables !== undefined && (typeof o.templateVariables !== 'object' || o.templateVariables === null)) {
      throw invalidArg('templateVariables', 'an object', o.templateVariables);
    }
    this.#session = session;
    this.#tokenizer = tokenizer;
    this.#target = { session, tokenizer: generationTokenizer(tokenizer), vocabSize };
    this.#format = o.format;
    this.#template = o.template;
    this.#variables = o.templateVariables;
    this.#history = [
      ...(o.systemPrompt !== undefined ? [{ role: 'system', content: o.systemPrompt }] : []),
      ...(o.history !== undefined ? checkHistory('history', o.history) : []),
    ];
    this.#onDispose = onDispose;
    if (o.format !== undefined) this.render([]);  // validates the format now
  }

  /** The conversation so far (a copy). Setting it replaces the conversation; the cache keeps what still matches. */
  get history(): ChatMessage[] {
    return this.#history.map((m) => ({ ...m }));
  }

  set history(messages: ChatMessage[]) {
    if (this.#busy) throw new SparrowError('the chat is answering; wait for the result or abort it first', 'ERR_SESSION_BUSY');
    this.#history = checkHistory('history', messages);
  }

  /** The session the chat runs on (its tokens are the rendered conversation). */
  get session(): SessionLike {
    return this.#session;
  }

  private render(messages: ChatMessage[]): string {
    return applyChatTemplate(this.#template ?? this.#tokenizer, messages, {
      addGenerationPrompt: true,
      format: this.#format,
      variables: this.#variables,
    });
  }

  /** Tokens of rendered chat text: special-token texts are special; one BOS at most. */
  private tokenize(text: string): number[] {
    const t = this.#tokenizer;
    const ids = t.tokenize(text, { addSpecial: false, parseSpecial: true });
    const bos = t.special.bos;
    if (t.addBos && bos !== null && ids[0] !== bos) ids.unshift(bos);
    return ids;
  }

  /** Tokens that a context shift keeps: the rendered system prompt, when the chat has one. */
  private keepCount(all: number[]): number {
    if (this.#history[0]?.role !== 'system') return 1;
    const sys = applyChatTemplate(this.#template ?? this.#tokenizer, [this.#history[0]], {
      addGenerationPrompt: false,
      format: this.#format,
      variables: this.#variables,
    });
    const ids = this.tokenize(sys);
    let n = 0;
    while (n < ids.length && n < all.length && ids[n] === all[n]) n++;
    return n;
  }

  /**
   * Sends a user message and streams the answer. When the answer ends (for any reason,
   * abort included, as long as it has text), it is added to the history.
   */
  send(message: string, options?: GenerateOptions): Generation {
    if (typeof message !== 'string') throw invalidArg('message', 'a string', message);
    if (this.#busy) throw new SparrowError('the chat is already answering; wait for the result or abort it first', 'ERR_SESSION_BUSY');
    const o = resolveGenerateOptions(options, this.#target.vocabSize);
    const sampler = new Sampler(this.#target.vocabSize, o.sampler);
    const messages: ChatMessage[] = [...this.#history, { role: 'user', content: message }];
    const tokens = this.tokenize(this.render(messages));
    const gen = start(this.#target, o, sampler, () => tokens, { defaultKeep: this.keepCount(tokens) });
    this.#busy = true;
    // Registered before the caller can await `result`, so the history is updated first.
    gen.result.then(
      (r) => {
        this.#busy = false;
        if (r.stopReason !== 'abort' || r.text.length > 0) {
          this.#history = [...messages, { role: 'assistant', content: r.text }];
        }
      },
      () => {
        this.#busy = false;
      },
    );
    return gen;
  }

  /** Like send, without streaming: resolves to the result (its text is the answer). */
  prompt(message: string, options?: GenerateOptions): Promise<GenerationResult> {
    return this.send(message, options).result;
  }

  /** Frees the session the chat owns. */
  dispose(): void {
    this.#onDispose?.();
    this.#onDispose = undefined;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.dispose();
  }
}
