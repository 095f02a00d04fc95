/**
 * Malformed, truncated or unsupported slide input: a permanent failure (the upload is kept).
 * The message says what is wrong and where (IFD, tile, byte offset), never anything from the file's text.
 */
export class WsiInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WsiInputError";
  }
}
