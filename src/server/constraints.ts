/**
 * Structured output for the server: what a request's `response_format` (and a forced tool
 * call's parameters schema) adds to the generation options. This is the one place that
 * knows how the library takes a JSON schema.
 *
 * The library's constrained decoding (`generate(input, { jsonSchema })`, src/grammar/) makes
 * the output follow the schema token by token.
 */

/** Extra generation options that make the output follow `schema` (none when there is no schema). */
export function schemaOptions(schema: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!schema) return {};
  return { jsonSchema: schema };
}

/**
 * The JSON a forced tool call must follow (tool_choice 'required' or a named function):
 * one call `{ name, arguments }` whose arguments follow that tool's parameters schema, or
 * for Mistral's format a list of such calls. Undefined when no call is forced.
 */
export function toolCallSchema(
  tools: ReadonlyArray<{ function: { name: string; parameters?: Record<string, unknown> } }>,
  choice: 'none' | 'auto' | 'required' | { name: string },
  listOfCalls: boolean,
): Record<string, unknown> | undefined {
  if (choice === 'none' || choice === 'auto') return undefined;
  const allowed = typeof choice === 'object' ? tools.filter((t) => t.function.name === choice.name) : tools;
  const calls = allowed.map((t) => ({
    type: 'object',
    properties: { name: { const: t.function.name }, arguments: t.function.parameters ?? { type: 'object' } },
    required: ['name', 'arguments'],
    additionalProperties: false,
  }));
  const one = calls.length === 1 ? calls[0]! : { anyOf: calls };
  return listOfCalls ? { type: 'array', items: one, minItems: 1 } : one;
}
