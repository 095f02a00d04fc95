// @ts-check
// Keeps the shown lists current: a refresh every 2 seconds, and one when the tab becomes visible.
import { hasRunningExports, loadExports } from "./exports.js";
import { state } from "./state.js";
import { loadStudies } from "./studies.js";
import { loadTransfers } from "./transfers.js";

/** @type {number | undefined} */
let timer;
let tick = 0;

/** (Re)starts the refresh loop; it stops once nobody is signed in. */
export function schedule() {
  clearTimeout(timer);
  timer = setTimeout(async () => {
    tick++;
    if (state.me && !document.hidden) {
      // Transfers every 2 s while shown (10 s otherwise, for the running count); studies every 10 s.
      if (state.view === "transfers" || tick % 5 === 0) await loadTransfers(true);
      if (state.view === "studies" && tick % 5 === 0) await loadStudies(true);
      if (state.view === "exports" && hasRunningExports()) await loadExports(true);
    }
    if (state.me) schedule();
  }, 2000);
}

export function wirePolling() {
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && state.me)
      void (state.view === "transfers" ? loadTransfers(true) : loadStudies(true));
  });
}
