// @ts-check
// The tabs: one section of the page at a time, refreshed when shown.
import { loadAudit } from "./audit.js";
import { all } from "./dom.js";
import { loadExports } from "./exports.js";
import { loadFailures } from "./failures.js";
import { schedule } from "./polling.js";
import { state } from "./state.js";
import { loadStudies } from "./studies.js";
import { loadTransfers } from "./transfers.js";

/** @import { View } from "./state.js" */

/** @param {View} view */
export function setView(view) {
  state.view = view;
  for (const tab of all(".tab")) {
    const on = tab.dataset.view === view;
    tab.classList.toggle("active", on);
    tab.setAttribute("aria-selected", String(on));
  }
  for (const sec of all("section.view")) sec.hidden = sec.dataset.view !== view;
  if (view === "transfers") void loadTransfers();
  if (view === "studies") void loadStudies();
  if (view === "audit") void loadAudit();
  if (view === "exports") void loadExports();
  if (view === "failures") void loadFailures();
  schedule();
}

export function wireViews() {
  for (const tab of all(".tab"))
    tab.addEventListener("click", () => setView(/** @type {View} */ (tab.dataset.view)));
}
