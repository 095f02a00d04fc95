/**
 * Association-level failures of a C-STORE SCU. Messages name the destination (AE@host:port) and the
 * DICOM status or rejection reason, never dataset content.
 */
import type { SendReport } from "./send.js";

export class SendError extends Error {
  override name = "SendError";
  /** "CALLED_AE@host:port". */
  readonly destination: string;
  /** For rejections: the A-ASSOCIATE-RJ result/source/reason. */
  readonly reject?: { result: number; source: number; reason: number };
  /** Set by sendFiles when the failure interrupted a batch: the outcomes collected so far. */
  report?: SendReport;
  /** The message without the "C-STORE to …:" prefix (for other operations on the same association). */
  readonly detail: string;

  constructor(
    destination: string,
    message: string,
    opts: { cause?: unknown; reject?: { result: number; source: number; reason: number } } = {},
  ) {
    super(
      `C-STORE to ${destination}: ${message}`,
      opts.cause === undefined ? undefined : { cause: opts.cause },
    );
    this.destination = destination;
    this.detail = message;
    if (opts.reject) this.reject = opts.reject;
  }
}

/** Try again later: connection refused/reset, timeouts, A-ABORT, transient association rejection. */
export class RetryableSendError extends SendError {
  override name = "RetryableSendError";
  readonly retryable = true;
}

/** Retrying will not help without a configuration change: permanent association rejection, bad AE titles. */
export class PermanentSendError extends SendError {
  override name = "PermanentSendError";
  readonly retryable = false;
}
