/** Reading tool calls back out of model answers, in each template family's format (canned answers). */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectToolCallFormat, parseToolCalls } from '../../src/templates/tool-calls.js';

const SHARED = path.resolve(import.meta.dirname, '../../../shared/templates');
const read = (f: string) => fs.readFileSync(path.join(SHARED, f), 'utf8');

describe('detectToolCallFormat', () => {
  it('picks the format from the shared templates', () => {
    expect(detectToolCallFormat(read('Qwen-Qwen2.5-7B-Instruct.jinja'))).toBe('hermes');
    expect(detectToolCallFormat(read('meta-llama-Llama-3.1-8B-Instruct.jinja'))).toBe('llama3');
    expect(detectToolCallFormat(read('mistralai-Mistral-Nemo-Instruct-2407.jinja'))).toBe('mistral');
    expect(detectToolCallFormat(fs.readFileSync(path.join(import.meta.dirname, 'fixtures/hermes-tool-use.jinja'), 'utf8'))).toBe('hermes');
    expect(detectToolCallFormat(read('google-gemma-2-2b-it.jinja'))).toBeUndefined();
    expect(detectToolCallFormat(undefined)).toBeUndefined();
  });
});

describe('hermes <tool_call>', () => {
  it('reads one call, as Qwen 2.5 writes it', () => {
    const r = parseToolCalls('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>', 'hermes');
    expect(r).toEqual({ content: '', calls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] });
  });

  it('reads several calls and keeps the text around them', () => {
    const text =
      'Let me check.\n<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": {"s": "</tool_call> in a string"}}\n</tool_call>';
    const r = parseToolCalls(text, 'hermes');
    expect(r.content).toBe('Let me check.');
    expect(r.calls).toEqual([
      { name: 'a', arguments: { x: 1 } },
      { name: 'b', arguments: { s: '</tool_call> in a string' } },
    ]);
  });

  it('accepts an unclosed last call, arguments as a JSON string, and "parameters"', () => {
    expect(parseToolCalls('<tool_call>\n{"name": "f", "arguments": "{\\"k\\": [1, 2]}"}', 'hermes').calls).toEqual([{ name: 'f', arguments: { k: [1, 2] } }]);
    expect(parseToolCalls('<tool_call>{"name": "f", "parameters": {}}</tool_call>', 'hermes').calls).toEqual([{ name: 'f', arguments: {} }]);
  });

  it('leaves text that only looks like a call as text', () => {
    for (const text of [
      'no calls here',
      '<tool_call>\n{"name": "f", "arguments": {"x": }\n</tool_call>',
      '<tool_call>\n{"arguments": {}}\n</tool_call>',
      '<tool_call>\n{"name": "f", "arguments": [1]}\n</tool_call>',
      '<tool_call>\nnot json\n</tool_call>',
    ]) {
      const r = parseToolCalls(text, 'hermes');
      expect(r.calls, text).toEqual([]);
      expect(r.content).toBe(text.trim());
    }
  });
});

describe('llama3 JSON', () => {
  it('reads a call with "parameters", with or without <|python_tag|>', () => {
    const want = [{ name: 'get_weather', arguments: { city: 'Paris', days: 3 } }];
    expect(parseToolCalls('{"name": "get_weather", "parameters": {"city": "Paris", "days": 3}}', 'llama3')).toEqual({ content: '', calls: want });
    expect(parseToolCalls('<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris", "days": 3}}', 'llama3').calls).toEqual(want);
    expect(parseToolCalls(' {"type": "function", "name": "f", "parameters": {}}; {"name": "g", "parameters": {"a": "}"}}', 'llama3').calls).toEqual([
      { name: 'f', arguments: {} },
      { name: 'g', arguments: { a: '}' } },
    ]);
  });

  it('reads plain answers and broken JSON as content', () => {
    for (const text of ['The weather is fine.', '{"name": "f", "parameters": {', '{"not": "a call"}', '{"name": "f", "parameters": {}} and then text'])
      expect(parseToolCalls(text, 'llama3')).toEqual({ content: text.trim(), calls: [] });
  });
});

describe('mistral [TOOL_CALLS]', () => {
  it('reads the list of calls, with ids', () => {
    const r = parseToolCalls('[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "abc123def"}, {"name": "g", "arguments": {}}]', 'mistral');
    expect(r).toEqual({
      content: '',
      calls: [
        { name: 'get_weather', arguments: { city: 'Paris' }, id: 'abc123def' },
        { name: 'g', arguments: {} },
      ],
    });
  });

  it('reads a bare list when the marker (a control token) was dropped from the text', () => {
    expect(parseToolCalls(' [{"name": "f", "arguments": {"a": 1}}]', 'mistral').calls).toEqual([{ name: 'f', arguments: { a: 1 } }]);
  });

  it('reads plain answers and bad calls as content', () => {
    for (const text of ['Sure, here it is.', '[TOOL_CALLS][{"name": "f"', '[1, 2, 3]', '[TOOL_CALLS][{"arguments": {}}]'])
      expect(parseToolCalls(text, 'mistral')).toEqual({ content: text.trim(), calls: [] });
  });
});
