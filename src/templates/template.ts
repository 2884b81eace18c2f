/**
 * Chat templates: render a conversation into the prompt text a model expects, with the
 * Jinja template from its GGUF file (`tokenizer.chat_template`) through @huggingface/jinja,
 * which renders them as Hugging Face transformers does (trim_blocks, lstrip_blocks, and the
 * raise_exception, strftime_now and tojson helpers). A file without a template gets a
 * built-in one for its format (ChatML, Llama 3, Llama 2, Mistral, Gemma, Phi-3), chosen
 * from the special tokens its vocabulary has.
 */
import { Template } from '@huggingface/jinja';
import { SparrowError } from '../errors.js';
import { patchUndefinedFilters } from './jinja-compat.js';
import type { GGUFMetadataValue } from '../gguf.js';
import { Tokenizer } from '../tokenizer/tokenizer.js';

/**
 * One part of a multi-part message content (OpenAI / Hugging Face processor shape):
 * `{ type: 'text', text }`, `{ type: 'image' }`, ... Templates that take parts (Gemma 3)
 * read them; others expect a string.
 */
export interface ChatContentPart {
  type: string;
  [field: string]: unknown;
}

/** One message of a conversation. Extra fields (tool_calls, tool_call_id, name) reach the template. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  content: string | ChatContentPart[];
  [field: string]: unknown;
}

/** A tool the model may call, in the OpenAI shape most templates expect. */
export interface ChatTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown> };
  [field: string]: unknown;
}

export type ChatFormat = 'chatml' | 'llama3' | 'llama2' | 'mistral' | 'gemma' | 'phi3';

export interface ApplyChatTemplateOptions {
  /** End with the opening of an assistant turn. Default true. */
  addGenerationPrompt?: boolean;
  /** Tools for templates that support them; left undefined in the template when not given. */
  tools?: ChatTool[];
  /** BOS / EOS text; by default the vocabulary's tokens (empty when there is no vocabulary). */
  bosToken?: string;
  eosToken?: string;
  /** Use this built-in format instead of the file's template. */
  format?: ChatFormat;
  /** More variables for the template (e.g. `date_string`, `enable_thinking`). */
  variables?: Record<string, unknown>;
}

/** What a template can come from: its text, a tokenizer, or GGUF metadata. */
export type ChatTemplateSource = string | Tokenizer | Record<string, GGUFMetadataValue>;

// Built-in templates for files without one, written for this project after each format's
// published layout. They see the same variables as a file's template.
export const BUILTIN_TEMPLATES: Readonly<Record<ChatFormat, string>> = {
  chatml:
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
  llama3:
    '{{ bos_token }}{% for m in messages %}' +
    "{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' + m['content'] | trim + '<|eot_id|>' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
  llama2:
    "{% if messages and messages[0]['role'] == 'system' %}{% set sys = '<<SYS>>\\n' + messages[0]['content'] + '\\n<</SYS>>\\n\\n' %}{% set msgs = messages[1:] %}" +
    '{% else %}{% set sys = "" %}{% set msgs = messages %}{% endif %}' +
    "{% for m in msgs %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + (sys if loop.first else '') + m['content'] | trim + ' [/INST]' }}" +
    "{% elif m['role'] == 'assistant' %}{{ ' ' + m['content'] | trim + ' ' + eos_token }}{% endif %}{% endfor %}",
  mistral:
    "{% if messages and messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] + '\\n\\n' %}{% set msgs = messages[1:] %}" +
    '{% else %}{% set sys = "" %}{% set msgs = messages %}{% endif %}' +
    "{{ bos_token }}{% for m in msgs %}{% if m['role'] == 'user' %}{{ '[INST] ' + (sys if loop.first else '') + m['content'] + ' [/INST]' }}" +
    "{% elif m['role'] == 'assistant' %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}",
  gemma:
    "{{ bos_token }}{% if messages and messages[0]['role'] == 'system' %}{% set sys = messages[0]['content'] + '\\n\\n' %}{% set msgs = messages[1:] %}" +
    '{% else %}{% set sys = "" %}{% set msgs = messages %}{% endif %}' +
    "{% for m in msgs %}{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}" +
    "{{ '<start_of_turn>' + role + '\\n' + (sys if loop.first else '') + m['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}",
  phi3:
    "{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}",
};

const compiled = new Map<string, Template>();

function compile(source: string): Template {
  let t = compiled.get(source);
  if (!t) {
    try {
      t = new Template(source);
      patchUndefinedFilters(t.parsed);  // jinja2's Undefined under filters (see jinja-compat.ts)
    } catch (err) {
      throw new SparrowError(`chat template: cannot parse the template: ${(err as Error).message}`, 'ERR_CHAT_TEMPLATE', { cause: err });
    }
    if (compiled.size > 64) compiled.clear();
    compiled.set(source, t);
  }
  return t;
}

/** The built-in format that fits a vocabulary, from the special tokens it has. */
export function detectChatFormat(hasToken: (text: string) => boolean, kind?: string): ChatFormat {
  if (hasToken('<|im_start|>')) return 'chatml';
  if (hasToken('<|start_header_id|>')) return 'llama3';
  if (hasToken('<start_of_turn>')) return 'gemma';
  if (hasToken('<|user|>') && hasToken('<|end|>')) return 'phi3';
  if (hasToken('[INST]')) return 'mistral';
  if (kind === 'spm' || kind === 'llama') return 'llama2';
  return 'chatml';
}

interface ResolvedSource {
  template: string | undefined;
  bos: string;
  eos: string;
  hasToken: (text: string) => boolean;
  kind?: string;
}

function resolveSource(source: ChatTemplateSource): ResolvedSource {
  if (typeof source === 'string') {
    return { template: source, bos: '', eos: '', hasToken: () => false };
  }
  if (source instanceof Tokenizer) {
    const sp = source.special;
    return {
      template: source.chatTemplate,
      bos: sp.bos !== null ? source.tokenText(sp.bos) : '',
      eos: sp.eos !== null ? source.tokenText(sp.eos) : '',
      hasToken: (t) => source.tokenId(t) !== undefined,
      kind: source.kind,
    };
  }
  if (source && typeof source === 'object') {
    // GGUF metadata: read just what is needed, without building a tokenizer.
    const md = source;
    const tmpl = md['tokenizer.chat_template'];
    if (tmpl !== undefined && typeof tmpl !== 'string') {
      throw new SparrowError('chat template: tokenizer.chat_template must be a string', 'ERR_CHAT_TEMPLATE');
    }
    const tokens = Array.isArray(md['tokenizer.ggml.tokens']) ? (md['tokenizer.ggml.tokens'] as unknown[]) : [];
    const text = (key: string): string => {
      const id = md[key];
      const t = typeof id === 'number' ? tokens[id] : undefined;
      return typeof t === 'string' ? t : '';
    };
    let set: Set<unknown> | undefined;
    return {
      template: tmpl,
      bos: text('tokenizer.ggml.bos_token_id'),
      eos: text('tokenizer.ggml.eos_token_id'),
      hasToken: (t) => (set ??= new Set(tokens)).has(t),
      kind: typeof md['tokenizer.ggml.model'] === 'string' ? (md['tokenizer.ggml.model'] as string) : undefined,
    };
  }
  throw new SparrowError('applyChatTemplate: the first argument must be a template string, a Tokenizer or GGUF metadata', 'ERR_INVALID_ARG');
}

function checkMessages(messages: unknown): asserts messages is ChatMessage[] {
  if (!Array.isArray(messages)) throw new SparrowError('applyChatTemplate: messages must be an array', 'ERR_INVALID_ARG');
  messages.forEach((m, i) => {
    if (!m || typeof m !== 'object') throw new SparrowError(`applyChatTemplate: messages[${i}] must be an object`, 'ERR_INVALID_ARG');
    const { role, content } = m as Record<string, unknown>;
    if (typeof role !== 'string') throw new SparrowError(`applyChatTemplate: messages[${i}].role must be a string`, 'ERR_INVALID_ARG');
    if (Array.isArray(content)) {
      content.forEach((part, k) => {
        if (!part || typeof part !== 'object' || typeof (part as Record<string, unknown>).type !== 'string') {
          throw new SparrowError(`applyChatTemplate: messages[${i}].content[${k}] must be an object with a string type`, 'ERR_INVALID_ARG');
        }
      });
    } else if (typeof content !== 'string' && content !== null && content !== undefined) {
      throw new SparrowError(`applyChatTemplate: messages[${i}].content must be a string or an array of parts`, 'ERR_INVALID_ARG');
    }
  });
}

/**
 * Renders `messages` with a chat template.
 * @param source the template text, a Tokenizer (its file's template, else a built-in one), or GGUF metadata
 */
export function applyChatTemplate(
  source: ChatTemplateSource,
  messages: readonly ChatMessage[],
  options: ApplyChatTemplateOptions = {},
): string {
  checkMessages(messages);
  if (!options || typeof options !== 'object') throw new SparrowError('applyChatTemplate: options must be an object', 'ERR_INVALID_ARG');
  const { addGenerationPrompt = true, tools, format, variables } = options;
  if (typeof addGenerationPrompt !== 'boolean') {
    throw new SparrowError('applyChatTemplate: options.addGenerationPrompt must be a boolean', 'ERR_INVALID_ARG');
  }
  if (tools !== undefined && !Array.isArray(tools)) throw new SparrowError('applyChatTemplate: options.tools must be an array', 'ERR_INVALID_ARG');
  if (format !== undefined && !(format in BUILTIN_TEMPLATES)) {
    throw new SparrowError(`applyChatTemplate: options.format must be one of ${Object.keys(BUILTIN_TEMPLATES).join(', ')}`, 'ERR_INVALID_ARG');
  }
  const src = resolveSource(source);
  const template = format ? BUILTIN_TEMPLATES[format] : (src.template ?? BUILTIN_TEMPLATES[detectChatFormat(src.hasToken, src.kind)]);
  const context: Record<string, unknown> = {
    ...variables,
    messages,
    add_generation_prompt: addGenerationPrompt,
    bos_token: options.bosToken ?? src.bos,
    eos_token: options.eosToken ?? src.eos,
  };
  if (tools !== undefined) context.tools = tools;
  try {
    return compile(template).render(context);
  } catch (err) {
    if (err instanceof SparrowError) throw err;
    throw new SparrowError(`chat template: ${(err as Error).message}`, 'ERR_CHAT_TEMPLATE', { cause: err });
  }
}
