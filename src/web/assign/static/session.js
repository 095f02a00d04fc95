// @ts-check
// Signing in and out, and starting the page for whoever is signed in.
import { getSession, signIn, signOut } from "./api.js";
import { $, button, dialog, input, all } from "./dom.js";
import { closeDrawer } from "./drawer.js";
import { ApiError, messageOf, onSessionEnded, setCsrfToken, statusOf } from "./http.js";
import { loadNoAssignDestinations } from "./out-box.js";
import { schedule } from "./polling.js";
import { loadProjects } from "./projects.js";
import { state } from "./state.js";
import { loadStudies } from "./studies.js";
import { loadTransfers } from "./transfers.js";

/** @import { LoginInfo, Session } from "./types.js" */

/** Set while the sign-in form is shown, so that the 401s of calls still under way do not reset it. */
let signedOut = false;

/**
 * Where to go once signed in: the `next` parameter, when it names a page of this server that sends
 * browsers here to sign in (Bull Board); anything else is ignored, so the page is no open redirect.
 * @returns {string | null}
 */
function nextPage() {
  const next = new URLSearchParams(window.location.search).get("next");
  return next && /^\/admin\/queues(?:[/?#]|$)/.test(next) ? next : null;
}

/**
 * @param {string} message Shown above the form; "" for the default.
 * @param {LoginInfo} [login] How the site signs users in; without password accounts there is no form.
 */
function showLogin(message, login) {
  signedOut = true;
  $("app").hidden = true;
  $("login").hidden = false;
  const canPassword = !login || login.password !== false;
  $("login-fields").hidden = !canPassword;
  $("login-note").textContent =
    message ||
    (canPassword
      ? "Assign incoming studies to research projects."
      : "Sign in through your hospital portal, then reload this page.");
  $("login-error").textContent = "";
  if (canPassword) setTimeout(() => input("login-user").focus(), 0);
}

/** @param {string} message */
function endSession(message) {
  if (signedOut) return;
  // Behind a sign-in proxy a new session is one request away.
  if (state.me && state.me.via === "proxy") {
    signedOut = true;
    window.location.reload();
    return;
  }
  state.me = null;
  setCsrfToken(null);
  closeDrawer();
  if (dialog("confirm").open) dialog("confirm").close();
  showLogin(message);
}

/** @param {Session} s */
async function startSession(s) {
  const next = nextPage();
  if (next) {
    // Replaced, so that Back from the dashboard does not land on this redirect again.
    window.location.replace(next);
    return;
  }
  state.me = s;
  setCsrfToken(s.csrfToken);
  signedOut = false;
  $("login").hidden = true;
  $("app").hidden = false;
  $("who-name").textContent = s.user;
  $("who-role").textContent = s.role;
  document.body.dataset.role = s.role;
  $("sign-out").hidden = s.via === "proxy";
  for (const el of all(".col-patient")) el.hidden = !s.showPatientIdentity;
  $("tab-failures").hidden = !s.admin;
  $("audit-lead").textContent = s.admin
    ? "Every assignment and sign-in: who, when, which study, project, participant and event."
    : "Assignments in your projects: who, when, which study, project, participant and event.";
  await loadProjects();
  await Promise.all([loadStudies(), loadTransfers(), loadNoAssignDestinations()]);
  schedule();
}

/** Starts the page with the current session, or shows the sign-in form. */
export async function boot() {
  try {
    await startSession(await getSession());
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) showLogin("", e.body?.login);
    else showLogin(`The server could not be reached (${messageOf(e)}). Reload the page to try again.`);
  }
}

/** @param {Event} ev */
async function onLogin(ev) {
  ev.preventDefault();
  $("login-error").textContent = "";
  button("login-submit").disabled = true;
  try {
    const s = await signIn(input("login-user").value.trim(), input("login-password").value);
    input("login-password").value = "";
    await startSession(s);
  } catch (e) {
    $("login-error").textContent = statusOf(e) === 401 ? "Wrong user name or password." : messageOf(e);
  } finally {
    button("login-submit").disabled = false;
  }
}

async function onSignOut() {
  try {
    await signOut();
  } catch {
    // signed out anyway
  }
  signedOut = false;
  endSession("You have signed out.");
}

export function wireSession() {
  onSessionEnded(endSession);
  $("login-form").addEventListener("submit", onLogin);
  $("sign-out").addEventListener("click", onSignOut);
}
