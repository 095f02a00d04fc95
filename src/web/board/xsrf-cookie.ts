/**
 * Bull Board's UI cannot be taught a header, but its HTTP client (axios) copies the cookie XSRF-TOKEN
 * into an X-XSRF-TOKEN header on same-origin requests. So signed-in browsers get their session's CSRF
 * token in that cookie, readable by scripts on the dashboard's path only; ../csrf.ts accepts it there
 * like X-CSRF-Token. A page of another site can neither read the cookie nor set the header.
 */
import { BOARD_PATH } from "./path.js";

export const BOARD_CSRF_COOKIE = "XSRF-TOKEN";

function attributes(secure: boolean): string[] {
  return [`Path=${BOARD_PATH}`, "SameSite=Strict", ...(secure ? ["Secure"] : [])];
}

/** Set-Cookie value handing the session's CSRF token to Bull Board's UI (no Max-Age: ends with the browser). */
export function boardCsrfCookie(token: string, secure: boolean): string {
  return [`${BOARD_CSRF_COOKIE}=${token}`, ...attributes(secure)].join("; ");
}

/** Set-Cookie value deleting it (on sign-out). */
export function clearBoardCsrfCookie(secure: boolean): string {
  return [`${BOARD_CSRF_COOKIE}=`, ...attributes(secure), "Max-Age=0"].join("; ");
}
