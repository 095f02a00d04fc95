// @ts-check
// The Coupling list view: a CSV of accession numbers and their participants, previewed, then uploaded.
import { uploadCoupling } from "./api.js";
import { $, button, byId, clear, h, input } from "./dom.js";
import { fmtDate, plural } from "./format.js";
import { ApiError, messageOf, statusOf } from "./http.js";
import { loadStudies } from "./studies.js";
import { toast } from "./toast.js";
import { loadTransfers } from "./transfers.js";

/** @import { Child } from "./dom.js" */
/** @import { CouplingOutcome, CouplingResult } from "./types.js" */

/** @type {Record<CouplingOutcome, [label: string, badge: string]>} */
const OUTCOMES = {
  planned: ["will be sent", "queued"],
  started: ["transfer started", "sending"],
  exists: ["already sent", "done"],
  "pending-arrival": ["when the study has arrived", "queued"],
  invalid: ["not possible", "failed"],
  error: ["error", "failed"],
};

/** The chosen file's text, else the pasted text. */
async function couplingCsv() {
  const file = input("c-file").files?.[0];
  if (file) return file.text();
  return byId("c-text", HTMLTextAreaElement).value;
}

/**
 * @param {string[]} headers
 * @param {Child[][]} rows
 */
function simpleTable(headers, rows) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "grid" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          headers.map((x) => h("th", {}, x)),
        ),
      ),
      h(
        "tbody",
        {},
        rows.map((cells) =>
          h(
            "tr",
            {},
            cells.map((c) => h("td", {}, c)),
          ),
        ),
      ),
    ),
  );
}

/**
 * @param {CouplingResult} r
 * @param {boolean} applied Uploaded (else a preview).
 */
function renderCoupling(r, applied) {
  const out = clear($("c-result"));
  const matches = r.matches || [];
  const starting = matches.filter((m) => m.status === (applied ? "started" : "planned")).length;
  out.append(
    h(
      "p",
      { class: "result-summary" },
      applied
        ? `Uploaded: ${plural(r.stored, "row")} stored, ${plural(starting, "transfer")} started now. Studies that arrive later are matched automatically.`
        : `Preview (nothing stored yet): ${plural(r.rows.length, "row")}; ${plural(matches.length, "match")} among the studies in the list, ${starting} would be sent now.`,
    ),
  );
  if (matches.length) {
    out.append(
      simpleTable(
        ["Study", "Accession no.", "Project", "Participant", "Event", "Outcome"],
        matches.map((m) => {
          const [label, cls] = OUTCOMES[m.status] || [m.status, "queued"];
          return [
            h(
              "div",
              {},
              h("div", { class: "cell-main" }, m.studyDescription || "(no description)"),
              h("div", { class: "cell-sub" }, fmtDate(m.studyDate)),
            ),
            h("span", { class: "mono" }, m.accessionNumber || "—"),
            m.project,
            h("span", { class: "mono" }, m.participant),
            m.event || "—",
            h(
              "div",
              { class: "status-cell" },
              h("span", { class: `badge ${cls}` }, label),
              m.error ? h("span", { class: "reason" }, m.error) : null,
            ),
          ];
        }),
      ),
    );
  } else {
    out.append(h("p", { class: "muted" }, "No study in the list matches these rows yet."));
  }
  out.append(
    h(
      "details",
      { class: "series-box rows-box" },
      h("summary", {}, `Rows of the list (${r.rows.length})`),
      simpleTable(
        ["Line", "Accession no. / Study UID", "Project", "Participant", "Event"],
        r.rows
          .slice(0, 1000)
          .map((x) => [
            String(x.line),
            h("span", { class: "mono" }, x.accessionNumber || x.studyInstanceUid || ""),
            x.project,
            h("span", { class: "mono" }, x.participant),
            x.event || "—",
          ]),
      ),
    ),
  );
}

/** @param {unknown} e */
function renderCouplingErrors(e) {
  const out = clear($("c-result"));
  const status = statusOf(e);
  if (status === 501 || status === 404) {
    out.append(h("div", { class: "form-error" }, "The coupling list is not available on this site."));
    return;
  }
  out.append(h("div", { class: "form-error" }, messageOf(e)));
  const errors = (e instanceof ApiError && e.body?.errors) || [];
  if (errors.length) {
    out.append(
      h(
        "ul",
        { class: "warnings" },
        errors
          .slice(0, 100)
          .map((x) => h("li", {}, `Line ${x.line}${x.column ? ` (${x.column})` : ""}: ${x.message}`)),
      ),
    );
  }
}

/** @param {boolean} apply Upload (else preview). */
async function onCoupling(apply) {
  const csv = await couplingCsv();
  if (!csv.trim()) {
    toast("Choose a CSV file or paste the list first.", true);
    return;
  }
  const btn = button(apply ? "c-apply" : "c-preview");
  btn.disabled = true;
  try {
    const r = await uploadCoupling(csv, !apply);
    renderCoupling(r, apply);
    button("c-apply").disabled = apply;
    if (apply) {
      toast("Coupling list uploaded.");
      void loadStudies();
      void loadTransfers();
    }
  } catch (e) {
    renderCouplingErrors(e);
    button("c-apply").disabled = true;
  } finally {
    if (!apply) btn.disabled = false;
  }
}

export function wireCoupling() {
  $("c-preview").addEventListener("click", () => onCoupling(false));
  $("c-apply").addEventListener("click", () => onCoupling(true));
  // A changed list needs a new preview before it can be uploaded.
  const needPreview = () => {
    button("c-apply").disabled = true;
  };
  $("c-file").addEventListener("change", needPreview);
  $("c-text").addEventListener("input", needPreview);
}
