/** An error the API answers with its status and `{ error: message, ...details }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Machine-readable fields next to the message (e.g. a `code` the page acts on). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
