/**
 * Tool calls: reading a model's tool calls back out of its text. Each family of chat
 * templates asks for its own format:
 *
 *   hermes   (Qwen 2.5, Hermes 2/3, ...)  <tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>  (one block per call)
 *   llama3   (Llama 3.1 / 3.2 / 3.3)      {"name": ..., "parameters": {...}}  (the whole answer; optionally after <|python_tag|>)
 *   mistral  (Mistral Nemo, ...)          [TOOL_CALLS][{"name": ..., "arguments": {...}, "id": ...}, ...]
 *
 * `detectToolCallFormat(template)` picks the format from the template's text and
 * `parseToolCalls(text, format)` returns the calls plus whatever text was not a call.
 * Text that only looks like a call (bad JSON, no name) stays text: nothing is guessed.
 */

export type ToolCallFormat = 'hermes' | 'llama3' | 'mistral';

export interface ParsedToolCall {
  name: string;
  /** The arguments as the model wrote them, parsed (an object; `{}` when it gave none). */
  arguments: Record<string, unknown>;
  /** An id the model gave (Mistral does), if any. */
  id?: string;
}

export interface ParsedToolCalls {
  /** The text outside the calls, trimmed ('' when the answer was calls only). */
  content: string;
  calls: ParsedToolCall[];
}

/** The tool-call format a chat template asks for, or undefined when it shows none of them. */
export function detectToolCallFormat(template: string | undefined): ToolCallFormat | undefined {
  if (!template) return undefined;
  if (template.includes('<tool_call>')) return 'hermes';
  if (template.includes('[TOOL_CALLS]')) return 'mistral';
  if (template.includes('<|start_header_id|>') && (template.includes('ipython') || template.includes('"parameters"'))) return 'llama3';
  return undefined;
}

/** Markers after which a streamed answer may be a tool call: text from there on is held back until the end. */
export function toolCallMarkers(format: ToolCallFormat): string[] {
  switch (format) {
    case 'hermes':
      return ['<tool_call>'];
    case 'mistral':
      return ['[TOOL_CALLS]'];
    case 'llama3':
      return ['<|python_tag|>'];
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One call from a parsed JSON value: { name, arguments | parameters }; arguments may be a JSON string. */
function toCall(v: unknown, argKeys: readonly string[]): ParsedToolCall | undefined {
  if (!isObject(v)) return undefined;
  // Some models wrap the call: {"function": {...}} or {"type": "function", "function": {...}}.
  if (isObject(v.function) && typeof v.name !== 'string') v = { ...v.function, id: v.id };
  const o = v as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name.length === 0) return undefined;
  let args: unknown = {};
  for (const k of argKeys) {
    if (o[k] !== undefined) {
      args = o[k];
      break;
    }
  }
  if (typeof args === 'string') {
    try {
      args = JSON.parse(args);
    } catch {
      return undefined;
    }
  }
  if (!isObject(args)) return undefined;
  const call: ParsedToolCall = { name: o.name, arguments: args };
  if (typeof o.id === 'string' && o.id.length > 0) call.id = o.id;
  return call;
}

/**
 * The JSON value that starts at text[start] ('{' or '['), and where it ends; undefined
 * when the text there is not one complete JSON value. Scans brackets outside strings
 * to find the end, then lets JSON.parse judge.
 */
function jsonAt(text: string, start: number): { value: unknown; end: number } | undefined {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) {
        try {
          return { value: JSON.parse(text.slice(start, i + 1)), end: i + 1 };
        } catch {
          return undefined;
        }
      }
      if (depth < 0) return undefined;
    }
  }
  return undefined;
}

function parseHermes(text: string): ParsedToolCalls {
  const calls: ParsedToolCall[] = [];
  let content = '';
  let pos = 0;
  const open = '<tool_call>';
  const close = '</tool_call>';
  for (;;) {
    const at = text.indexOf(open, pos);
    if (at < 0) break;
    // The JSON object is found by its brackets (a string inside it may hold "</tool_call>").
    let i = at + open.length;
    while (i < text.length && /\s/.test(text[i]!)) i++;
    const parsed = text[i] === '{' ? jsonAt(text, i) : undefined;
    const call = parsed && toCall(parsed.value, ['arguments', 'parameters']);
    if (!parsed || !call) break;  // not a call: leave the rest as text
    let j = parsed.end;
    while (j < text.length && /\s/.test(text[j]!)) j++;
    // Then the closing tag, or the end of the text (the model stopped at its end-of-turn token).
    if (text.startsWith(close, j)) j += close.length;
    else if (j < text.length) break;
    content += text.slice(pos, at);
    calls.push(call);
    pos = j;
  }
  content += text.slice(pos);
  return { content: content.trim(), calls };
}

function parseLlama3(text: string): ParsedToolCalls {
  let body = text.trim();
  if (body.startsWith('<|python_tag|>')) body = body.slice('<|python_tag|>'.length).trim();
  if (!body.startsWith('{')) return { content: text.trim(), calls: [] };
  // One call, or several separated by ';' (as Llama 3.2's prompt allows).
  const calls: ParsedToolCall[] = [];
  let pos = 0;
  while (pos < body.length) {
    const parsed = jsonAt(body, pos);
    const call = parsed && toCall(parsed.value, ['parameters', 'arguments']);
    if (!parsed || !call) return { content: text.trim(), calls: [] };
    calls.push(call);
    pos = parsed.end;
    while (pos < body.length && (body[pos] === ';' || /\s/.test(body[pos]!))) pos++;
    if (pos < body.length && body[pos] !== '{') return { content: text.trim(), calls: [] };
  }
  return { content: '', calls };
}

function parseMistral(text: string): ParsedToolCalls {
  const marker = '[TOOL_CALLS]';
  const at = text.indexOf(marker);
  // The marker is a control token that detokenizing may have dropped: then the answer is the bare array.
  const start = at >= 0 ? at + marker.length : 0;
  let i = start;
  while (i < text.length && /\s/.test(text[i]!)) i++;
  if (text[i] !== '[' && !(at >= 0 && text[i] === '{')) return { content: text.trim(), calls: [] };
  const parsed = jsonAt(text, i);
  if (!parsed) return { content: text.trim(), calls: [] };
  const list = Array.isArray(parsed.value) ? parsed.value : [parsed.value];
  const calls = list.map((v) => toCall(v, ['arguments', 'parameters']));
  if (calls.length === 0 || calls.some((c) => c === undefined)) return { content: text.trim(), calls: [] };
  const content = (text.slice(0, at >= 0 ? at : i) + text.slice(parsed.end)).trim();
  return { content, calls: calls as ParsedToolCall[] };
}

/** The tool calls in a model's answer, in the given format, and the text around them. */
export function parseToolCalls(text: string, format: ToolCallFormat): ParsedToolCalls {
  switch (format) {
    case 'hermes':
      return parseHermes(text);
    case 'llama3':
      return parseLlama3(text);
    case 'mistral':
      return parseMistral(text);
  }
}
