/**
 * Errors of the REDCap client. Messages carry REDCap's own error text (never the token, never the
 * request body) so they are safe to log and to keep as a job's failure reason.
 */
export type RedcapErrorKind =
  /** 403: bad, missing or expired token, or missing rights. Not retried. */
  | "auth"
  /** 400 and other 4xx: the request is wrong (unknown field, invalid value, …). Not retried. */
  | "request"
  /** 429: REDCap has banned this IP. Never retried: an admin must lift the ban. */
  | "banned"
  /** 5xx. Retried with backoff. */
  | "server"
  /** No answer in time. Retried with backoff. */
  | "timeout"
  /** Connection refused/reset, DNS, TLS. Retried with backoff. */
  | "network"
  /** 200 whose body is not the expected JSON (HTML error page, truncated output). Retried with backoff. */
  | "response"
  /** No token or URL configured. Not retried. */
  | "config";

const RETRYABLE: ReadonlySet<RedcapErrorKind> = new Set(["server", "timeout", "network", "response"]);

export class RedcapError extends Error {
  override name = "RedcapError";
  constructor(
    message: string,
    readonly kind: RedcapErrorKind,
    /** The REDCap project's configuration name (e.g. "incoming"), never its token. */
    readonly redcapProject: string,
    readonly status?: number,
  ) {
    super(`REDCap ${redcapProject}: ${message}`);
  }
  get retryable(): boolean {
    return RETRYABLE.has(this.kind);
  }
}

/** Shorten a response body for an error message (REDCap error texts are short; HTML pages are not). */
export function bodySnippet(body: string, max = 300): string {
  const t = body.replace(/\s+/g, " ").trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}
