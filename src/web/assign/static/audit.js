// @ts-check
// The Audit log view: assignments (and, for admins, sign-ins and Bull Board actions), newest first.
import { listAudit } from "./api.js";
import { $, clear, h } from "./dom.js";
import { fmtStamp } from "./format.js";
import { messageOf, statusOf } from "./http.js";
import { toast } from "./toast.js";

/** @import { AuditEntry } from "./types.js" */

/**
 * What the entry acted on beyond study and participant: the transfer request, a queue's job, or free text.
 * @param {AuditEntry} a
 */
function target(a) {
  if (a.requestId) return `${a.requestId.slice(0, 10)}… run ${a.run || 1}`;
  if (a.queue) {
    const job = a.jobId ? ` #${a.jobId}` : "";
    const detail = a.detail ? ` ${a.detail}` : "";
    return `${a.queue}${job}${detail} → ${a.status ?? "?"}`;
  }
  return a.detail || "";
}

export async function loadAudit() {
  let list;
  try {
    list = await listAudit();
  } catch (e) {
    if (statusOf(e) !== 401) toast(`Could not load the audit log: ${messageOf(e)}`, true);
    return;
  }
  const body = clear($("audit-body"));
  for (const a of list) {
    body.append(
      h(
        "tr",
        {},
        h("td", { class: "nowrap" }, fmtStamp(a.at)),
        h("td", {}, a.user),
        h("td", {}, h("span", { class: "badge plain" }, a.action)),
        h("td", { class: "mono cell-sub" }, a.study || ""),
        h("td", {}, a.project || ""),
        h("td", { class: "mono" }, a.participant || ""),
        h("td", {}, a.event || ""),
        h("td", { class: "mono cell-sub" }, target(a)),
      ),
    );
  }
  $("audit-empty").hidden = list.length > 0;
}

export function wireAudit() {
  $("audit-refresh").addEventListener("click", loadAudit);
}
