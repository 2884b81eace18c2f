/** What the server hands the library's constrained decoding: the schemas of response_format and forced tool calls. */
import { describe, expect, it } from 'vitest';
import { schemaOptions, toolCallSchema } from '../../src/server/constraints.js';
import { parseChatRequest } from '../../src/server/validate.js';

const tools = [
  { type: 'function' as const, function: { name: 'a', parameters: { type: 'object', properties: { x: { type: 'integer' } }, required: ['x'] } } },
  { type: 'function' as const, function: { name: 'b' } },
];

describe('schemas for constrained decoding', () => {
  it('response_format: json_schema gives its schema, json_object any object, text nothing', () => {
    const base = { messages: [{ role: 'user', content: 'x' }] };
    const schema = { type: 'object', properties: { n: { type: 'number' } } };
    expect(parseChatRequest({ ...base, response_format: { type: 'json_schema', json_schema: { name: 's', schema } } }, 10).jsonSchema).toEqual(schema);
    expect(parseChatRequest({ ...base, response_format: { type: 'json_object' } }, 10).jsonSchema).toEqual({ type: 'object' });
    expect(parseChatRequest({ ...base, response_format: { type: 'text' } }, 10).jsonSchema).toBeUndefined();
  });

  it('a forced call follows the named tool, or any of them for required; none for auto', () => {
    expect(toolCallSchema(tools, 'auto', false)).toBeUndefined();
    expect(toolCallSchema(tools, 'none', false)).toBeUndefined();
    expect(toolCallSchema(tools, { name: 'a' }, false)).toEqual({
      type: 'object',
      properties: { name: { const: 'a' }, arguments: tools[0]!.function.parameters },
      required: ['name', 'arguments'],
      additionalProperties: false,
    });
    const any = toolCallSchema(tools, 'required', false) as { anyOf: Array<{ properties: { name: { const: string }; arguments: unknown } }> };
    expect(any.anyOf.map((c) => c.properties.name.const)).toEqual(['a', 'b']);
    expect(any.anyOf[1]!.properties.arguments).toEqual({ type: 'object' });
    expect(toolCallSchema(tools, { name: 'b' }, true)).toMatchObject({ type: 'array', minItems: 1, items: { properties: { name: { const: 'b' } } } });
  });

  it('passes the schema as jsonSchema once the library takes it', () => {
    expect(schemaOptions(undefined)).toEqual({});
    expect(schemaOptions({ type: 'object' })).toEqual({ jsonSchema: { type: 'object' } });
  });
});
