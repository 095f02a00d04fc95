// @ts-check
// The Incoming studies view: the incoming list and its filters.
import { listStudies } from "./api.js";
import { debounce } from "./debounce.js";
import { $, byId, clear, h, input, select } from "./dom.js";
import { openStudy } from "./drawer.js";
import { ago, fmtDate, fmtStamp, fmtTime, targetLabel } from "./format.js";
import { messageOf, statusOf } from "./http.js";
import { state } from "./state.js";
import { toast } from "./toast.js";

/** @import { Study, StudyTransferRef } from "./types.js" */

/** @type {Study[]} */
let studies = [];
/**
 * Every sender seen since the page loaded: the sender filter offers them all.
 * @type {Set<string>}
 */
const aes = new Set();
let seq = 0;

function studyQuery() {
  const params = new URLSearchParams();
  const q = input("f-q").value.trim();
  if (q) params.set("q", q);
  if (input("f-from").value) params.set("from", input("f-from").value);
  if (input("f-to").value) params.set("to", input("f-to").value);
  if (select("f-ae").value) params.set("ae", select("f-ae").value);
  if (select("f-assigned").value !== "all") params.set("assigned", select("f-assigned").value);
  return params.toString();
}

/**
 * Loads the list with the filters' values; the answer to an older call is dropped.
 * @param {boolean} [poll] A background refresh: failures are not shown.
 */
export async function loadStudies(poll = false) {
  const mine = ++seq;
  let list;
  try {
    list = await listStudies(studyQuery(), poll);
  } catch (e) {
    if (statusOf(e) !== 401 && !poll) toast(`Could not load the studies: ${messageOf(e)}`, true);
    return;
  }
  if (mine !== seq) return;
  studies = list;
  renderStudies();
}

/** @param {StudyTransferRef[]} transfers */
function transferChips(transfers) {
  if (!transfers.length) return h("span", { class: "muted" }, "Not assigned");
  return h(
    "div",
    {},
    transfers.map((t) =>
      h(
        "span",
        { class: `chip ${t.status === "queued" ? "" : t.status}`, title: `${targetLabel(t)}: ${t.status}` },
        targetLabel(t),
      ),
    ),
  );
}

/**
 * @param {Study} s
 * @param {boolean} showPatient Whether the site shows accession number, patient name and ID.
 */
function studyRow(s, showPatient) {
  return h(
    "tr",
    {
      class: `clickable${state.selected === s.studyInstanceUid ? " selected" : ""}`,
      dataset: { uid: s.studyInstanceUid },
      tabindex: "0",
      onclick: () => void openStudy(s.studyInstanceUid),
      onkeydown: (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          void openStudy(s.studyInstanceUid);
        }
      },
    },
    h(
      "td",
      { class: "nowrap" },
      h("div", { class: "cell-main" }, fmtDate(s.studyDate) || "—"),
      h("div", { class: "cell-sub" }, fmtTime(s.studyTime)),
    ),
    showPatient ? h("td", { class: "mono col-patient" }, s.accessionNumber || "—") : null,
    showPatient
      ? h(
          "td",
          { class: "col-patient" },
          h("div", { class: "cell-main" }, s.patientName || "—"),
          h("div", { class: "cell-sub mono" }, s.patientId || ""),
        )
      : null,
    h("td", {}, h("div", { class: "cell-main" }, s.studyDescription || "(no description)")),
    h(
      "td",
      {},
      s.modalities.map((m) => h("span", { class: "mod" }, m)),
    ),
    h("td", { class: "num" }, String(s.seriesCount)),
    h("td", { class: "num" }, String(s.fileCount)),
    h(
      "td",
      { class: "nowrap" },
      h("div", { class: "mono" }, s.callingAe || "—"),
      s.calledAe ? h("div", { class: "cell-sub" }, `to ${s.calledAe}`) : null,
    ),
    h(
      "td",
      { class: "nowrap", title: fmtStamp(s.lastSeenAt) },
      h("div", {}, ago(s.arrivedAt || s.lastSeenAt)),
      s.status === "receiving" ? h("span", { class: "badge receiving" }, "receiving") : null,
    ),
    h("td", {}, transferChips(s.transfers)),
  );
}

function renderStudies() {
  const body = clear($("studies-body"));
  const showPatient = Boolean(state.me && state.me.showPatientIdentity);
  for (const s of studies) {
    if (s.callingAe) aes.add(s.callingAe);
    body.append(studyRow(s, showPatient));
  }
  $("studies-empty").hidden = studies.length > 0;
  $("count-studies").textContent = String(studies.filter((s) => s.transfers.length === 0).length || "");
  $("count-studies").title = "Studies not assigned yet";
  $("studies-foot").textContent = studies.length
    ? `${studies.length} ${studies.length === 1 ? "study" : "studies"} shown. Patient names, IDs and accession numbers are ${
        showPatient
          ? "shown because this site enabled them"
          : "not shown (search by accession number finds exact matches)"
      }.`
    : "";
  const sel = select("f-ae");
  const keep = sel.value;
  if (sel.options.length - 1 !== aes.size) {
    clear(sel).append(h("option", { value: "" }, "All senders"));
    for (const ae of [...aes].sort()) sel.append(h("option", { value: ae }, ae));
    sel.value = keep;
  }
}

export function wireStudies() {
  const reload = debounce(() => loadStudies(), 250);
  input("f-q").addEventListener("input", reload);
  for (const id of ["f-from", "f-to", "f-ae", "f-assigned"])
    $(id).addEventListener("change", () => loadStudies());
  const filters = byId("study-filters", HTMLFormElement);
  filters.addEventListener("submit", (e) => e.preventDefault());
  $("f-clear").addEventListener("click", () => {
    filters.reset();
    void loadStudies();
  });
}
