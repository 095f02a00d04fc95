// @ts-check
// The confirmation dialog: what the assignment will send, and where, before it is sent.
import { previewTransfer, startTransfer } from "./api.js";
import { chosenEvent } from "./assign-form.js";
import { $, button, byId, clear, dialog, fact, h, input, select } from "./dom.js";
import { closeDrawer } from "./drawer.js";
import { fmtDate, fmtTime, plural, targetLabel } from "./format.js";
import { ApiError, messageOf } from "./http.js";
import { state } from "./state.js";
import { loadStudies } from "./studies.js";
import { toast } from "./toast.js";
import { highlightTransfer } from "./transfers.js";
import { setView } from "./views.js";

/** @import { TransferPreview } from "./types.js" */

/**
 * The preview the dialog shows: Send sends exactly this.
 * @type {TransferPreview | null}
 */
let pending = null;
/** The user was told this sends a study already sent as another participant, and may confirm. */
let confirmingReassign = false;

const SEND_LABEL = "Send to research PACS";

/** @param {Event} ev */
async function onReview(ev) {
  ev.preventDefault();
  $("a-error").textContent = "";
  const d = state.selectedDetail;
  const project = select("a-project").value;
  const participant = input("a-participant").value.trim();
  const e = chosenEvent();
  if (!d || !e.ok) return;
  let pv;
  try {
    pv = await previewTransfer({
      studyInstanceUid: d.studyInstanceUid,
      project,
      participant,
      ...(e.event ? { event: e.event } : {}),
    });
  } catch (err) {
    $("a-error").textContent = messageOf(err);
    return;
  }
  pending = pv;
  confirmingReassign = false;
  $("c-send").textContent = SEND_LABEL;
  renderPreview(pv);
  $("c-error").textContent = "";
  button("c-send").disabled = false;
  dialog("confirm").showModal();
  button("c-send").focus();
}

/** @param {TransferPreview} pv */
function renderPreview(pv) {
  const s = pv.study;
  const what = clear($("c-what"));
  fact(what, "Study date", `${fmtDate(s.studyDate) || "—"} ${fmtTime(s.studyTime)}`);
  fact(what, "Description", s.studyDescription || "(no description)");
  if (s.accessionNumber) fact(what, "Accession no.", s.accessionNumber, "mono");
  fact(what, "Images", `${plural(pv.fileCount, "image")} in ${pv.seriesCount} series`);
  const sl = clear($("c-series"));
  for (const x of s.series) {
    sl.append(
      h(
        "li",
        {},
        `${x.seriesNumber ? `#${x.seriesNumber} ` : ""}${x.seriesDescription || "(no description)"} — ${plural(x.numFiles, "image")}`,
      ),
    );
  }
  const where = clear($("c-where"));
  fact(where, "Project", pv.project);
  fact(where, "Participant", pv.participant, "mono");
  fact(where, "Event", pv.event || "(none)");
  fact(
    where,
    "Destination",
    `${pv.destination.aeTitle}@${pv.destination.host}:${pv.destination.port}`,
    "dest",
  );
  const warn = clear($("c-warnings"));
  for (const w of pv.warnings) warn.append(h("li", { class: /new participant/.test(w) ? "info" : "" }, w));
}

async function onSend() {
  const pv = pending;
  if (!pv) return;
  button("c-send").disabled = true;
  $("c-error").textContent = "";
  try {
    const r = await startTransfer({
      studyInstanceUid: pv.study.studyInstanceUid,
      project: pv.project,
      participant: pv.participant,
      ...(pv.event ? { event: pv.event } : {}),
      ...(confirmingReassign ? { replace: true } : {}),
    });
    dialog("confirm").close();
    closeDrawer();
    highlightTransfer(r.requestId);
    toast(`Transfer started: ${targetLabel(pv)}`);
    setView("transfers");
    void loadStudies();
  } catch (e) {
    $("c-error").textContent = messageOf(e);
    if (e instanceof ApiError && e.body?.code === "reassign" && !confirmingReassign) {
      confirmingReassign = true;
      $("c-send").textContent = `Re-assign to ${pv.participant}`;
    }
    button("c-send").disabled = false;
  }
}

export function wireConfirm() {
  byId("assign-form", HTMLFormElement).addEventListener("submit", onReview);
  $("c-send").addEventListener("click", onSend);
}
