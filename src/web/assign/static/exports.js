// @ts-check
// The Exports view: the ZIP and NIfTI archives of the user's projects, with their download links.
import { listExports } from "./api.js";
import { $, clear, h } from "./dom.js";
import { ago, fmtSize, fmtStamp, plural } from "./format.js";
import { messageOf, statusOf } from "./http.js";
import { toast } from "./toast.js";

/** @import { ExportRecord, ExportStatus } from "./types.js" */

/** @type {Record<ExportStatus, string>} */
const EXPORT_LABELS = { queued: "Queued", building: "Building", done: "Done", failed: "Failed" };
/** @type {Record<ExportStatus, string>} */
const EXPORT_BADGES = { queued: "queued", building: "sending", done: "done", failed: "failed" };

/** @type {ExportRecord[]} */
let exportList = [];
let seq = 0;

/** @param {ExportRecord} x */
const isRunning = (x) => x.status === "queued" || x.status === "building";

/** Whether an archive of the last loaded list is still being built. */
export const hasRunningExports = () => exportList.some(isRunning);

/**
 * Loads the list; the answer to an older call is dropped.
 * @param {boolean} [poll] A background refresh: failures are not shown.
 */
export async function loadExports(poll = false) {
  const mine = ++seq;
  let list;
  try {
    list = await listExports(poll);
  } catch (e) {
    if (statusOf(e) !== 401 && !poll) toast(`Could not load the exports: ${messageOf(e)}`, true);
    return;
  }
  if (mine !== seq) return;
  exportList = list;
  renderExports();
}

/** @param {ExportRecord} x */
function exportRow(x) {
  const status = h(
    "div",
    { class: "status-cell" },
    h(
      "span",
      { class: `badge ${EXPORT_BADGES[x.status] || "queued"}`, dataset: { state: x.status } },
      EXPORT_LABELS[x.status] || x.status,
    ),
    x.files && x.status === "done" ? h("span", { class: "cell-sub" }, plural(x.files.total, "file")) : null,
    x.error ? h("span", { class: "reason" }, x.error) : null,
  );
  return h(
    "tr",
    { dataset: { id: x.id } },
    h("td", { class: "nowrap", title: fmtStamp(x.createdAt) }, ago(x.createdAt)),
    h("td", {}, x.project),
    h("td", { class: "mono" }, x.participant),
    h("td", {}, x.event || "—"),
    h("td", {}, x.layout),
    h("td", {}, x.source === "received" ? "Pseudonymized now" : "Transfer"),
    h("td", {}, status),
    h("td", { class: "num nowrap" }, fmtSize(x.size)),
    h("td", {}, x.requestedBy || ""),
    h(
      "td",
      {},
      x.download
        ? h(
            "a",
            { class: "btn btn-small", href: x.download, download: x.fileName || "", rel: "noopener" },
            "Download",
          )
        : null,
    ),
  );
}

function renderExports() {
  const body = clear($("exports-body"));
  for (const x of exportList) body.append(exportRow(x));
  $("exports-empty").hidden = exportList.length > 0;
  const running = exportList.filter(isRunning).length;
  $("count-exports").textContent = running ? String(running) : "";
  $("count-exports").title = "Exports being built";
}

export function wireExports() {
  $("exports-refresh").addEventListener("click", () => loadExports());
}
