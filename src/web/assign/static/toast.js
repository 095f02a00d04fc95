// @ts-check
// The short message at the bottom of the page.
import { $ } from "./dom.js";

/** @type {number | undefined} */
let timer;

/**
 * Shows the message for 4 seconds.
 * @param {string} msg
 * @param {boolean} [bad] An error: shown in red.
 */
export function toast(msg, bad = false) {
  const t = $("toast");
  t.textContent = msg;
  t.className = bad ? "toast bad" : "toast";
  t.hidden = false;
  clearTimeout(timer);
  timer = setTimeout(() => (t.hidden = true), 4000);
}
