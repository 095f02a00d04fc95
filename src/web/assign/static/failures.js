// @ts-check
// The Failures view: what each stage refused or gave up on (its quarantine), with Retry and Dismiss.
import { actOnFailure, listFailures } from "./api.js";
import { $, clear, h, select } from "./dom.js";
import { ago, fmtStamp } from "./format.js";
import { messageOf, statusOf } from "./http.js";
import { toast } from "./toast.js";

/** @import { QuarantineRecord } from "./types.js" */

/** @param {boolean} [poll] A background refresh: failures to load are not shown. */
export async function loadFailures(poll = false) {
  let list;
  try {
    list = await listFailures(select("f-stage").value);
  } catch (e) {
    if (statusOf(e) !== 401 && !poll) toast(`Could not load the failures: ${messageOf(e)}`, true);
    return;
  }
  $("count-failures").textContent = list.length ? String(list.length) : "";
  const body = clear($("failures-body"));
  for (const r of list) body.append(failureRow(r));
  $("failures-empty").hidden = list.length > 0;
}

/** @param {QuarantineRecord} r */
function objectCell(r) {
  const ids = r.ids;
  const lines = [
    ids.project ? `${ids.project}${ids.participant ? ` · ${ids.participant}` : ""}` : "",
    ids.studyInstanceUid ? `study ${ids.studyInstanceUid}` : "",
    ids.seriesInstanceUid ? `series ${ids.seriesInstanceUid}` : "",
    ids.file ? `file ${ids.file}` : "",
    ids.uploadId ? `upload ${ids.uploadId}` : "",
    ids.exportId ? `export ${ids.exportId}` : "",
    ids.requestId ? `transfer ${ids.requestId.slice(0, 10)}… run ${ids.run ?? ""}` : "",
  ].filter(Boolean);
  return h("td", { class: "mono cell-sub" }, ...lines.map((l) => h("div", {}, l)));
}

/**
 * @param {QuarantineRecord} r
 * @param {"retry" | "dismiss"} action
 * @param {HTMLButtonElement} btn
 */
async function onAction(r, action, btn) {
  btn.disabled = true;
  try {
    await actOnFailure(r.id, action);
    toast(action === "retry" ? `${r.stage}: queued again` : "Dismissed");
    await loadFailures();
  } catch (e) {
    toast(messageOf(e), true);
    btn.disabled = false;
  }
}

/** @param {QuarantineRecord} r */
function failureRow(r) {
  const retry = h(
    "button",
    { type: "button", class: "btn btn-small", dataset: { action: "retry" } },
    "Retry",
  );
  const dismiss = h(
    "button",
    { type: "button", class: "btn btn-ghost btn-small", dataset: { action: "dismiss" } },
    "Dismiss",
  );
  retry.addEventListener("click", () => onAction(r, "retry", retry));
  dismiss.addEventListener("click", () => onAction(r, "dismiss", dismiss));
  return h(
    "tr",
    { dataset: { id: r.id } },
    h(
      "td",
      { class: "nowrap", title: fmtStamp(r.lastAt) },
      h("div", {}, ago(r.lastAt)),
      h("div", { class: "cell-sub" }, r.count > 1 ? `${r.count} times` : ""),
    ),
    h("td", {}, h("span", { class: "badge plain" }, r.stage)),
    h(
      "td",
      {},
      h("span", { class: "reason" }, r.reason),
      r.files ? h("div", { class: "cell-sub" }, `${r.files} files`) : null,
    ),
    objectCell(r),
    h("td", { class: "nowrap" }, retry, " ", dismiss),
  );
}

export function wireFailures() {
  $("failures-refresh").addEventListener("click", () => loadFailures());
  $("f-stage").addEventListener("change", () => loadFailures());
}
