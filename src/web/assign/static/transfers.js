// @ts-check
// The Transfers view: assigned studies and the live progress of their transfers.
import { listTransfers, retryTransfer } from "./api.js";
import { $, clear, h, select } from "./dom.js";
import { ago, fmtDate, fmtStamp, plural } from "./format.js";
import { messageOf, statusOf } from "./http.js";
import { toast } from "./toast.js";

/** @import { LiveState, StageTimings, Transfer } from "./types.js" */

/** @type {Transfer[]} */
let transfers = [];
/**
 * The transfer to flash when the list is next shown: the one the user just started.
 * @type {string | null}
 */
let highlight = null;
let seq = 0;

/** @param {string} requestId */
export function highlightTransfer(requestId) {
  highlight = requestId;
}

/**
 * Loads the transfers of the chosen project; the answer to an older call is dropped.
 * @param {boolean} [poll] A background refresh: failures are not shown.
 */
export async function loadTransfers(poll = false) {
  const mine = ++seq;
  let list;
  try {
    list = await listTransfers(select("t-project").value, poll);
  } catch (e) {
    if (statusOf(e) !== 401 && !poll) toast(`Could not load the transfers: ${messageOf(e)}`, true);
    return;
  }
  if (mine !== seq) return;
  transfers = list;
  renderTransfers();
}

/** @param {Transfer} t */
function statusCell(t) {
  const live = t.live;
  const cell = h("div", { class: "status-cell" });
  /** @type {Record<LiveState, string>} */
  const labels = {
    queued: "Queued",
    deidentifying: `De-identifying ${live.deidentified}/${live.series}`,
    sending: `Sending ${live.sent}/${live.series}`,
    finishing: "Finishing",
    done: "Done",
    partial: "Done with errors",
    failed: "Failed",
  };
  cell.append(
    h(
      "span",
      { class: `badge ${live.state}`, dataset: { state: live.state } },
      labels[live.state] || live.label,
    ),
  );
  if (live.state === "sending" && typeof live.percent === "number") {
    const fill = h("span", {});
    fill.style.width = `${live.percent}%`;
    cell.append(h("div", { class: "progress", title: `${live.percent}%` }, fill));
  }
  if (live.state === "done") {
    cell.append(
      h(
        "span",
        { class: "cell-sub" },
        `${plural(t.filesSent, "image")} sent${t.filesDropped ? `, ${t.filesDropped} left out by the project's rules` : ""}`,
      ),
    );
  }
  if (["done", "partial", "failed"].includes(live.state) && t.stages) cell.append(stagesLine(t.stages));
  if (live.retrying) cell.append(h("span", { class: "reason retrying" }, `Retrying: ${live.retrying}`));
  if ((live.state === "failed" || live.state === "partial") && (live.reason || t.error)) {
    cell.append(h("span", { class: "reason" }, live.reason || t.error));
  }
  return cell;
}

/**
 * Where the latest run's time went, in one line; busy time (jobs side by side) in the tooltip.
 * @param {StageTimings} s
 */
function stagesLine(s) {
  /** @param {number} ms */
  const sec = (ms) => `${(ms / 1000).toFixed(1)} s`;
  const text =
    `Waited ${sec(s.queueWaitMs)} · de-identified ${sec(s.deidentify.spanMs)} · ` +
    `sent ${sec(s.send.spanMs)} · recorded ${sec(s.bookkeepingMs)}`;
  const title =
    `De-identification: ${s.deidentify.jobs} series, ${sec(s.deidentify.sumMs)} busy, longest ${sec(s.deidentify.maxMs)}\n` +
    `Send: ${s.send.jobs} series, ${sec(s.send.sumMs)} busy, longest ${sec(s.send.maxMs)}`;
  return h("span", { class: "cell-sub stages", title }, text);
}

/**
 * @param {Transfer} t
 * @param {HTMLButtonElement} btn
 */
async function onRetry(t, btn) {
  btn.disabled = true;
  try {
    await retryTransfer(t.requestId);
    highlight = t.requestId;
    toast(`Sending again: ${t.project} · ${t.participant}`);
    await loadTransfers();
  } catch (e) {
    toast(messageOf(e), true);
    btn.disabled = false;
  }
}

/** @param {Transfer} t */
function transferRow(t) {
  const live = t.live;
  const canRetry = live.retryable && ["failed", "partial", "queued"].includes(live.state);
  const retry = canRetry
    ? h(
        "button",
        {
          type: "button",
          class: "btn btn-small needs-operator",
          title: "Send what the research PACS has not accepted yet",
        },
        "Retry",
      )
    : null;
  if (retry) retry.addEventListener("click", () => onRetry(t, retry));
  return h(
    "tr",
    { dataset: { id: t.requestId }, class: highlight === t.requestId ? "flash" : "" },
    h(
      "td",
      { class: "nowrap", title: fmtStamp(t.createdAt) },
      h("div", {}, ago(t.createdAt)),
      h("div", { class: "cell-sub" }, t.runs > 1 ? `${t.runs} runs` : ""),
    ),
    h(
      "td",
      {},
      h("div", { class: "cell-main" }, t.study?.studyDescription || "(no description)"),
      h(
        "div",
        { class: "cell-sub" },
        [fmtDate(t.study?.studyDate), t.study?.accessionNumber ? `Acc. ${t.study.accessionNumber}` : ""]
          .filter(Boolean)
          .join(" · "),
      ),
    ),
    h("td", {}, t.project),
    h("td", { class: "mono" }, t.participant),
    h("td", {}, t.event || "—"),
    h("td", { class: "mono cell-sub" }, t.destination || "—"),
    h("td", {}, statusCell(t)),
    h("td", {}, t.requestedBy || ""),
    h("td", {}, retry),
  );
}

function renderTransfers() {
  const body = clear($("transfers-body"));
  let active = 0;
  for (const t of transfers) {
    if (!["done", "partial", "failed"].includes(t.live.state)) active++;
    body.append(transferRow(t));
  }
  highlight = null;
  $("transfers-empty").hidden = transfers.length > 0;
  const count = $("count-transfers");
  count.textContent = active ? String(active) : "";
  count.classList.toggle("live", active > 0);
  count.title = active ? `${active} running` : "";
}

export function wireTransfers() {
  select("t-project").addEventListener("change", () => loadTransfers());
}
