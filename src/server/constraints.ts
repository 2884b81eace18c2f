/**
 * Structured output for the server: what a request's `response_format` (and a forced tool
 * call's parameters schema) adds to the generation options. This is the one place that
 * knows how the library takes a JSON schema.
 *
 * The library's constrained decoding (`generate(input, { jsonSchema })`) is not in this
 * build yet: until it is, SCHEMA_CONSTRAINT is false and such requests run unconstrained
 * (the answer is still what the model writes after being asked for JSON by the client).
 * When it lands, set SCHEMA_CONSTRAINT to true.
 */

export const SCHEMA_CONSTRAINT = false;

/** Extra generation options that make the output follow `schema` (none when there is no schema). */
export function schemaOptions(schema: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!schema || !SCHEMA_CONSTRAINT) return {};
  return { jsonSchema: schema };
}
