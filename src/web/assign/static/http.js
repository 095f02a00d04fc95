// @ts-check
// Requests to the API: JSON in and out, the session's CSRF token on every write, and one place that
// notices an ended session (401).

/** @import { ErrorBody } from "./types.js" */

/**
 * @typedef {object} RequestOptions
 * @property {boolean} [poll] A background refresh: marked so that it does not extend the session.
 * @property {boolean} [allow401] The caller handles 401 itself (the sign-in calls).
 * @property {string} [contentType] Of the body; JSON when absent.
 */

/** A call the server refused (or answered with an error): its status, message and error body. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   * @param {ErrorBody | null} [body]
   */
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

const SESSION_ENDED = "Your session has ended. Please sign in again.";

/** @type {string | null} */
let csrfToken = null;
/** @type {(message: string) => void} */
let sessionEnded = () => {};

/** @param {string | null} token The session's token (GET/POST /api/session), null once signed out. */
export function setCsrfToken(token) {
  csrfToken = token;
}

/** @param {(message: string) => void} fn Called when a call finds the session ended. */
export function onSessionEnded(fn) {
  sessionEnded = fn;
}

/**
 * The HTTP status of a failed call; undefined when there was no response (network error).
 * @param {unknown} e
 */
export const statusOf = (e) => (e instanceof ApiError ? e.status : undefined);

/** @param {unknown} e */
export const messageOf = (e) => (e instanceof Error ? e.message : String(e));

/**
 * Calls the API and returns its JSON body (null when empty). A 401 ends the session unless allowed.
 * @template T
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body] Sent as JSON, or as it is when a string.
 * @param {RequestOptions} [opts]
 * @returns {Promise<T>}
 */
export async function request(method, path, body, opts = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (opts.poll) headers["X-Fiona-Poll"] = "1";
  if (method !== "GET") {
    headers["Content-Type"] = opts.contentType || "application/json";
    if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
  }
  let payload;
  if (body !== undefined) payload = typeof body === "string" ? body : JSON.stringify(body);
  const res = await fetch(path, {
    method,
    headers,
    body: payload,
    credentials: "same-origin",
    cache: "no-store",
  });
  const text = await res.text();
  /** @type {unknown} */
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: text };
    }
  }
  const error = /** @type {ErrorBody | null} */ (data);
  if (res.status === 401 && !opts.allow401) {
    sessionEnded(SESSION_ENDED);
    throw new ApiError(401, (error && error.error) || "sign in required", error);
  }
  if (!res.ok) throw new ApiError(res.status, (error && error.error) || res.statusText, error);
  return /** @type {T} */ (data);
}

/**
 * POSTs JSON and returns the file the server answers with, under the name it suggests.
 * @param {string} path
 * @param {unknown} body
 * @param {string} accept The file's media type.
 * @returns {Promise<{ blob: Blob, fileName: string | undefined }>}
 */
export async function postForFile(path, body, accept) {
  /** @type {Record<string, string>} */
  const headers = { Accept: accept, "Content-Type": "application/json" };
  if (csrfToken) headers["X-CSRF-Token"] = csrfToken;
  const res = await fetch(path, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  if (!res.ok) {
    let msg = res.statusText;
    try {
      msg = /** @type {ErrorBody} */ (await res.json()).error || msg;
    } catch {
      // not JSON
    }
    if (res.status === 401) sessionEnded(SESSION_ENDED);
    throw new ApiError(res.status, msg);
  }
  const m = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "");
  return { blob: await res.blob(), fileName: m?.[1] };
}
