// @ts-check
// The assignment form in the study panel: project, then participant (checked as typed), then event.
import { checkParticipant, listParticipants } from "./api.js";
import { debounce } from "./debounce.js";
import { $, button, clear, h, input, select } from "./dom.js";
import { plural } from "./format.js";
import { messageOf } from "./http.js";
import { grantedProjects, projectByName } from "./projects.js";
import { state } from "./state.js";

/** @import { Participant, Project, Target } from "./types.js" */

/** The "No event" choice of a fixed event list: a value no event name can have. */
const NO_EVENT = "\u0000none";

/** @type {Participant[]} */
let participants = [];
/** Whether the server accepted the participant id as it is typed now. */
let participantOk = false;
/** @type {Array<() => void>} */
const choiceListeners = [];

/**
 * Calls `fn` whenever the chosen project, participant or event may have changed.
 * @param {() => void} fn
 */
export function onChoiceChange(fn) {
  choiceListeners.push(fn);
}

/** Empties the form for the study just opened; a user with one project has it chosen already. */
export function resetAssignForm() {
  const projects = grantedProjects();
  const sel = select("a-project");
  const none = projects.length === 0;
  $("a-noprojects").hidden = !none;
  $("a-fields").hidden = none;
  clear(sel);
  sel.append(h("option", { value: "", disabled: true, selected: true }, "Choose a project…"));
  for (const p of projects) sel.append(h("option", { value: p.name }, p.name));
  const only = projects.length === 1 ? projects[0] : undefined;
  if (only) sel.value = only.name;
  input("a-participant").value = "";
  $("a-error").textContent = "";
  void onProjectChange();
}

async function onProjectChange() {
  const p = projectByName(select("a-project").value);
  const list = clear($("a-participants"));
  participants = [];
  input("a-participant").disabled = !p;
  // Events: a fixed list when the project defines one, else free text.
  const evSel = clear(select("a-event"));
  const evText = input("a-event-text");
  if (p && p.events.length) {
    evSel.hidden = false;
    evText.hidden = true;
    evSel.append(h("option", { value: "", disabled: true, selected: true }, "Choose an event…"));
    for (const e of p.events) evSel.append(h("option", { value: e }, e));
    evSel.append(h("option", { value: NO_EVENT }, "No event"));
  } else {
    evSel.hidden = true;
    evText.hidden = !p;
    evText.value = "";
  }
  evSel.disabled = !p;
  if (p) {
    try {
      participants = await listParticipants(p.name);
    } catch {
      participants = [];
    }
    for (const x of participants) {
      list.append(h("option", { value: x.participant }, `${plural(x.transfers, "earlier transfer")}`));
    }
  }
  validateParticipant();
}

/** @param {Project | undefined} p */
function patternOf(p) {
  if (!p || !p.participantPattern) return null;
  try {
    return new RegExp(`^(?:${p.participantPattern})$`);
  } catch {
    return null;
  }
}

/**
 * @param {string} text
 * @param {"ok" | "bad" | ""} cls
 */
function setHint(text, cls) {
  const hint = $("a-participant-hint");
  hint.textContent = text;
  hint.className = `hint ${cls || ""}`;
  const field = input("a-participant");
  field.classList.toggle("valid", cls === "ok");
  field.classList.toggle("invalid", cls === "bad");
}

/**
 * Asks the server whether the id is valid and new; an answer for an id no longer typed is dropped.
 * @param {string} project
 * @param {string} participant
 */
async function checkOnServer(project, participant) {
  try {
    const r = await checkParticipant(project, participant);
    if (input("a-participant").value.trim() !== participant || select("a-project").value !== project) return;
    participantOk = r.valid;
    if (!r.valid) setHint(r.message || "Not a valid participant id.", "bad");
    else if (r.exists) {
      const x = participants.find((p) => p.participant === participant);
      setHint(`Existing participant${x ? ` (${plural(x.transfers, "earlier transfer")})` : ""}.`, "ok");
    } else setHint("New participant: this id will be created in the project.", "ok");
  } catch (e) {
    participantOk = false;
    setHint(messageOf(e), "bad");
  }
  updateReview();
}

const serverCheck = debounce(checkOnServer, 250);

function validateParticipant() {
  const p = projectByName(select("a-project").value);
  const v = input("a-participant").value.trim();
  participantOk = false;
  if (!p) {
    setHint("Choose a project first.", "");
  } else if (!v) {
    setHint(
      p.participantPattern ? `Format: ${p.participantPattern}` : "Any id (letters, digits, - and _).",
      "",
    );
  } else {
    const re = patternOf(p);
    if (re && !re.test(v)) {
      setHint(`Does not match the project's format ${p.participantPattern}.`, "bad");
    } else {
      setHint("Checking…", "");
      serverCheck(p.name, v);
    }
  }
  updateReview();
}

/**
 * The chosen event; not ok while a project with a fixed list has none chosen.
 * @returns {{ ok: boolean, event?: string }}
 */
export function chosenEvent() {
  const p = projectByName(select("a-project").value);
  if (!p) return { ok: false };
  if (p.events.length) {
    const v = select("a-event").value;
    if (!v) return { ok: false };
    return { ok: true, event: v === NO_EVENT ? undefined : v };
  }
  const t = input("a-event-text").value.trim();
  return { ok: true, event: t || undefined };
}

/**
 * The open study and the project, participant and event chosen for it; null until all are valid.
 * @returns {Target | null}
 */
export function chosenTarget() {
  const d = state.selectedDetail;
  const project = select("a-project").value;
  const participant = input("a-participant").value.trim();
  const e = chosenEvent();
  if (!d || !projectByName(project) || !participantOk || !e.ok) return null;
  return {
    studyInstanceUid: d.studyInstanceUid,
    project,
    participant,
    ...(e.event ? { event: e.event } : {}),
  };
}

function updateReview() {
  button("a-review").disabled = !(
    projectByName(select("a-project").value) &&
    participantOk &&
    chosenEvent().ok
  );
  for (const fn of choiceListeners) fn();
}

export function wireAssignForm() {
  select("a-project").addEventListener("change", onProjectChange);
  input("a-participant").addEventListener("input", validateParticipant);
  select("a-event").addEventListener("change", updateReview);
  input("a-event-text").addEventListener("input", updateReview);
}
