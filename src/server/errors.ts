/** Errors the server answers with, in OpenAI's shape: `{ error: { message, type, param, code } }`. */

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string = status >= 500 ? 'server_error' : 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 that names the request field at fault. */
export function badField(param: string, message: string, code = 'invalid_value'): HttpError {
  return new HttpError(400, `${param}: ${message}`, 'invalid_request_error', param, code);
}
