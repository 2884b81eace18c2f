/**
 * Grammars for tool calls: the whole response is one (or several) calls in the format a
 * chat template asks for, and each call's arguments validate against its tool's JSON
 * schema. For `tool_choice: 'required'` (or one named function): pass the result as the
 * `grammar` option, then parse the calls from the text. For 'auto': compile it lazily,
 * `compileGrammar(tokenizer, { grammar, triggers: [toolCallTrigger(format)] })`: free text
 * until the model starts a call, then the call follows the grammar.
 *
 *   hermes   (Qwen 2.5, Hermes): <tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>
 *   llama3   (Llama 3.x JSON):   {"name": "f", "parameters": {...}}
 *   mistral  (Mistral Nemo):     [TOOL_CALLS][{"name": "f", "arguments": {...}, "id": "abc123XYZ"}]
 */
import { SparrowError } from '../errors.js';
import type { ToolCallFormat } from '../templates/tool-calls.js';
import { lit, schemaToGbnf } from './schema.js';

export type { ToolCallFormat };

export interface ToolSpec {
  name: string;
  /** JSON schema of the arguments (an object schema); absent: any JSON object. */
  parameters?: object;
}

export interface ToolCallGrammarOptions {
  format: ToolCallFormat;
  /** Allow several calls in one response (hermes and mistral). Default false. */
  parallel?: boolean;
}

/** The text that starts a call in each format: the trigger of a lazy tool-call grammar (tool_choice 'auto'). */
export function toolCallTrigger(format: ToolCallFormat): string {
  return format === 'hermes' ? '<tool_call>' : format === 'mistral' ? '[TOOL_CALLS]' : '{"name"';
}

/** Renames every rule of GBNF text written one rule per line (as schemaToGbnf writes it). */
export function prefixRules(gbnf: string, prefix: string): string {
  const names = new Set<string>();
  for (const line of gbnf.split('\n')) {
    const m = /^([a-zA-Z0-9_-]+) ::= /.exec(line);
    if (m) names.add(m[1]!);
  }
  const out: string[] = [];
  for (const line of gbnf.split('\n')) {
    let res = '';
    let i = 0;
    while (i < line.length) {
      const c = line[i]!;
      if (c === '"' || c === '[') {
        // Copy a literal or a class as is (with its escapes).
        const end = c === '"' ? '"' : ']';
        let j = i + 1;
        while (j < line.length && line[j] !== end) j += line[j] === '\\' ? 2 : 1;
        res += line.slice(i, j + 1);
        i = j + 1;
      } else if (/[a-zA-Z0-9_-]/.test(c)) {
        let j = i;
        while (j < line.length && /[a-zA-Z0-9_-]/.test(line[j]!)) j++;
        const word = line.slice(i, j);
        // Repetition counts ({0,20}) are digits after '{' or ','; rule names are in the set.
        res += names.has(word) ? prefix + word : word;
        i = j;
      } else {
        res += c;
        i++;
      }
    }
    out.push(res);
  }
  return out.join('\n');
}

/** GBNF for tool calls whose arguments follow each tool's schema. */
export function toolCallGrammar(tools: readonly ToolSpec[], options: ToolCallGrammarOptions): string {
  if (!Array.isArray(tools) || tools.length === 0) throw new SparrowError('toolCallGrammar: tools must be a non-empty array', 'ERR_INVALID_ARG');
  const format = options?.format;
  if (format !== 'hermes' && format !== 'llama3' && format !== 'mistral') {
    throw new SparrowError(`toolCallGrammar: format must be 'hermes', 'llama3' or 'mistral', got ${String(format)}`, 'ERR_INVALID_ARG');
  }
  const argsKey = format === 'llama3' ? 'parameters' : 'arguments';
  const lines: string[] = [];
  const alts: string[] = [];
  tools.forEach((tool, i) => {
    if (!tool || typeof tool.name !== 'string' || tool.name.length === 0) {
      throw new SparrowError(`toolCallGrammar: tools[${i}].name must be a non-empty string`, 'ERR_INVALID_ARG');
    }
    const schema = tool.parameters ?? { type: 'object' };
    const prefix = `t${i}-`;
    const text = prefixRules(schemaToGbnf(schema).trimEnd(), prefix);
    lines.push(...text.split('\n'));
    alts.push(`${lit(JSON.stringify(tool.name))} tws "," tws ${lit(JSON.stringify(argsKey))} tws ":" tws ${prefix}root`);
  });
  const call = `"{" tws "\\"name\\"" tws ":" tws ( ${alts.join(' | ')} )`;
  const head: string[] = [];
  if (format === 'hermes') {
    head.push(`root ::= tcall${options.parallel ? ' ( "\\n" tcall )*' : ''}`);
    head.push(`tcall ::= "<tool_call>\\n" ${call} "}" "\\n</tool_call>"`);
  } else if (format === 'llama3') {
    head.push(`root ::= ${call} "}"`);
  } else {
    head.push(`root ::= "[TOOL_CALLS][" tcall${options.parallel ? ' ( ", " tcall )*' : ''} "]"`);
    head.push(`tcall ::= ${call} ( ", \\"id\\": \\"" [a-zA-Z0-9]{9} "\\"" )? "}"`);
  }
  head.push('tws ::= | " "');
  return [...head, ...lines].join('\n') + '\n';
}
