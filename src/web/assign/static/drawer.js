// @ts-check
// The study panel: what was received, what it is assigned to already, and the assignment form.
import { getStudy } from "./api.js";
import { resetAssignForm } from "./assign-form.js";
import { $, all, byId, clear, dialog, fact, h } from "./dom.js";
import { fmtDate, fmtStamp, fmtTime, plural, targetLabel } from "./format.js";
import { messageOf } from "./http.js";
import { state } from "./state.js";
import { toast } from "./toast.js";

/** @import { StudyDetail } from "./types.js" */

/** @param {string} uid */
export async function openStudy(uid) {
  state.selected = uid;
  for (const tr of all("#studies-body tr")) tr.classList.toggle("selected", tr.dataset.uid === uid);
  let d;
  try {
    d = await getStudy(uid);
  } catch (e) {
    toast(`Could not open the study: ${messageOf(e)}`, true);
    return;
  }
  state.selectedDetail = d;
  $("d-title").textContent = d.studyDescription || "(no description)";
  $("d-sub").textContent = [
    fmtDate(d.studyDate),
    fmtTime(d.studyTime),
    d.accessionNumber ? `Acc. ${d.accessionNumber}` : "",
  ]
    .filter(Boolean)
    .join("  ·  ");
  renderFacts(d);
  renderSeries(d);
  const ex = clear($("d-existing"));
  if (d.transfers.length) {
    ex.append(
      h(
        "div",
        { class: "existing" },
        h("h4", {}, "Already assigned"),
        h(
          "ul",
          {},
          d.transfers.map((t) => h("li", {}, `${targetLabel(t)} — ${t.status}`)),
        ),
      ),
    );
  }
  resetAssignForm();
  $("x-error").textContent = "";
  $("x-result").textContent = "";
  $("drawer").hidden = false;
  $("drawer-scrim").hidden = false;
}

/** @param {StudyDetail} d */
function renderFacts(d) {
  const facts = clear($("d-facts"));
  if (state.me?.showPatientIdentity) {
    fact(facts, "Patient", d.patientName);
    fact(facts, "Patient ID", d.patientId, "mono");
  }
  fact(facts, "Study date", `${fmtDate(d.studyDate) || "—"} ${fmtTime(d.studyTime)}`);
  // Sent only to users shown patient identity, as name and ID are.
  if (d.accessionNumber) fact(facts, "Accession no.", d.accessionNumber, "mono");
  fact(facts, "Modality", d.modalities.join(", ") || "—");
  fact(facts, "Images", `${plural(d.fileCount, "image")} in ${d.seriesCount} series`);
  fact(facts, "Sender", `${d.callingAe || "—"}${d.calledAe ? ` → ${d.calledAe}` : ""}`);
  fact(
    facts,
    "Received",
    `${fmtStamp(d.firstSeenAt)}${d.status === "receiving" ? " (still receiving)" : ""}`,
  );
  fact(facts, "Study UID", d.studyInstanceUid, "mono");
}

/** @param {StudyDetail} d */
function renderSeries(d) {
  $("d-series-summary").textContent = `Series (${d.series.length})`;
  // The markup has the table's one <tbody>.
  const tbody = clear(/** @type {HTMLTableSectionElement} */ (byId("d-series", HTMLTableElement).tBodies[0]));
  for (const s of d.series) {
    tbody.append(
      h(
        "tr",
        {},
        h("td", { class: "num" }, s.seriesNumber || ""),
        h("td", {}, s.seriesDescription || "—"),
        h("td", {}, s.modality || ""),
        h("td", { class: "num" }, String(s.numFiles)),
        h("td", { class: "cell-sub" }, (s.classifyType || []).join(", ")),
      ),
    );
  }
}

export function closeDrawer() {
  $("drawer").hidden = true;
  $("drawer-scrim").hidden = true;
  state.selected = null;
  for (const tr of all("#studies-body tr.selected")) tr.classList.remove("selected");
}

export function wireDrawer() {
  $("d-close").addEventListener("click", closeDrawer);
  $("drawer-scrim").addEventListener("click", closeDrawer);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("drawer").hidden && !dialog("confirm").open) closeDrawer();
  });
}
