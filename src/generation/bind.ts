/**
 * Glue for the Session and Model classes: a model binds each session it creates to its
 * tokenizer, and `session.generate` / `session.complete` / `model.createChat` delegate
 * here. Keeping the link in a WeakMap keeps those classes' own code small.
 */
import { SparrowError } from '../errors.js';
import { Chat, type ChatOptions } from '../chat/chat.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { complete, generate, type GenerationTarget } from './generate.js';
import type { Generation } from './stream.js';
import { generationTokenizer } from './tokenizer-adapter.js';
import type { GenerateOptions, GenerationResult, SessionLike, TokenInput } from './types.js';

const targets = new WeakMap<object, GenerationTarget>();

/** Called by Model.createSession for every new session. */
export function bindSession(session: SessionLike, tokenizer: Tokenizer, vocabSize: number): void {
  targets.set(session, { session, tokenizer: generationTokenizer(tokenizer), vocabSize });
}

function targetOf(session: SessionLike): GenerationTarget {
  const t = targets.get(session);
  if (!t) throw new SparrowError('this session was not created by model.createSession()', 'ERR_INVALID_ARG');
  return t;
}

export function generateOnSession(session: SessionLike, input: string | TokenInput, options?: GenerateOptions): Generation {
  return generate(targetOf(session), input, options);
}

export function completeOnSession(session: SessionLike, input: string | TokenInput, options?: GenerateOptions): Promise<GenerationResult> {
  return complete(targetOf(session), input, options);
}

/** Options of model.createChat: the chat's own, plus the size of the session it creates. */
export interface CreateChatOptions extends ChatOptions {
  /** Context size of the chat's session (default: the model's context length). */
  contextSize?: number;
}

/** Called by Model.createChat: a chat on a new session that the chat owns. */
export function createChatOnModel(
  createSession: (o: { contextSize?: number }) => SessionLike & { dispose(): void },
  tokenizer: Tokenizer,
  vocabSize: number,
  options: CreateChatOptions = {},
): Chat {
  if (options === null || typeof options !== 'object') {
    throw new SparrowError('createChat: options must be an object', 'ERR_INVALID_ARG');
  }
  const { contextSize, ...chatOptions } = options;
  const session = createSession({ contextSize });
  try {
    return new Chat(session, tokenizer, vocabSize, chatOptions, () => session.dispose());
  } catch (e) {
    session.dispose();
    throw e;
  }
}
