/**
 * The two error classes the library throws. Both carry a machine-readable `code`
 * (`ERR_GGUF_TRUNCATED`, `ERR_INVALID_ARG`, ...); the message says what is wrong and where.
 */
export class SparrowError extends Error {
  code: string;
  constructor(message: string, code = 'ERR_SPARROW', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SparrowError';
    this.code = code;
  }
}

/** A GGUF file that cannot be read: missing, truncated, malformed or hostile. */
export class GGUFError extends SparrowError {
  constructor(message: string, code = 'ERR_GGUF', options?: { cause?: unknown }) {
    super(message, code, options);
    this.name = 'GGUFError';
  }
}
