// @ts-check
// The study panel's "Export, or NoAssign" box: an export archive, or the study pseudonymized without
// a transfer (downloaded, or forwarded to another DICOM node), for the target chosen in the form.
import { forwardNoAssign, listNoAssignDestinations, noAssignZip, requestExport } from "./api.js";
import { chosenTarget, onChoiceChange } from "./assign-form.js";
import { $, button, clear, h, select } from "./dom.js";
import { closeDrawer } from "./drawer.js";
import { plural, targetLabel } from "./format.js";
import { ApiError, messageOf } from "./http.js";
import { toast } from "./toast.js";
import { setView } from "./views.js";

/** @import { ExportLayout, NoAssignDestination, Target } from "./types.js" */

/** Offers the DICOM nodes NoAssign may forward to; without any, the forward row is hidden. */
export async function loadNoAssignDestinations() {
  /** @type {NoAssignDestination[]} */
  let list;
  try {
    list = await listNoAssignDestinations();
  } catch {
    list = [];
  }
  const sel = clear(select("n-dest"));
  for (const d of list) sel.append(h("option", { value: d.name }, `${d.name} (${d.aeTitle})`));
  $("n-forward-row").hidden = list.length === 0;
}

function updateOutButtons() {
  const ready = chosenTarget() !== null;
  button("x-export").disabled = !ready;
  button("n-download").disabled = !ready;
  button("n-forward").disabled = !ready || !select("n-dest").value;
}

/**
 * Runs one of the box's actions for the chosen target; a failure is shown in the box.
 * @param {HTMLButtonElement} btn
 * @param {(t: Target) => Promise<void>} fn
 */
async function runOut(btn, fn) {
  $("x-error").textContent = "";
  $("x-result").textContent = "";
  const t = chosenTarget();
  if (!t) return;
  btn.disabled = true;
  try {
    await fn(t);
  } catch (e) {
    $("x-error").textContent = messageOf(e);
  } finally {
    updateOutButtons();
  }
}

function onExport() {
  return runOut(button("x-export"), async (t) => {
    const layout = /** @type {ExportLayout} */ (select("x-layout").value);
    await requestExport(t, layout);
    toast(`Export requested: ${targetLabel(t)} (${layout})`);
    closeDrawer();
    setView("exports");
  });
}

function onNoAssignDownload() {
  return runOut(button("n-download"), async (t) => {
    $("x-result").textContent = "Pseudonymizing…";
    let file;
    try {
      file = await noAssignZip(t);
    } catch (e) {
      // Refused: the progress note goes, the server's reason shows as the error.
      if (e instanceof ApiError) $("x-result").textContent = "";
      throw e;
    }
    const url = URL.createObjectURL(file.blob);
    const a = h("a", { href: url, download: file.fileName ?? "noassign.zip", hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    $("x-result").textContent = `Pseudonymized ZIP downloaded (${targetLabel(t)}).`;
  });
}

function onNoAssignForward() {
  return runOut(button("n-forward"), async (t) => {
    const destination = select("n-dest").value;
    $("x-result").textContent = `Pseudonymizing and sending to ${destination}…`;
    const r = await forwardNoAssign(t, destination);
    $("x-result").textContent =
      `Sent ${r.sent} of ${plural(r.files, "image")} to ${r.destination} (${r.peer})${
        r.failed ? `; ${r.failed} failed` : ""
      }.`;
    toast(`NoAssign: ${plural(r.sent, "image")} sent to ${r.destination}`, r.failed > 0);
  });
}

export function wireOutBox() {
  onChoiceChange(updateOutButtons);
  $("x-export").addEventListener("click", onExport);
  $("n-download").addEventListener("click", onNoAssignDownload);
  $("n-forward").addEventListener("click", onNoAssignForward);
  $("n-dest").addEventListener("change", updateOutButtons);
}
