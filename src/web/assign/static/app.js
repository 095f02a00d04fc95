// FIONA Assign page: plain JavaScript against the REST API under /api (see /api/openapi.json).
// Everything shown is built with textContent (never innerHTML), so values from DICOM headers cannot
// inject markup; the server's Content-Security-Policy allows only this file as script.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  const state = {
    me: null,
    csrf: null,
    projects: [],
    studies: [],
    aes: new Set(),
    view: "studies",
    selected: null,
    selectedDetail: null,
    participants: [],
    participantOk: false,
    pendingPreview: null,
    transfers: [],
    highlight: null,
    signedOut: false,
    exports: [],
    noAssignDestinations: [],
  };

  // ---------- helpers ----------

  /** h("div", {class: "x", onclick: fn}, "text", child) */
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") el.className = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  function fmtDate(d) {
    if (!d || !/^\d{8}$/.test(d)) return d || "";
    return `${d.slice(0, 4)}-${d.slice(4, 6)}-${d.slice(6, 8)}`;
  }

  function fmtTime(t) {
    if (!t) return "";
    const m = /^(\d{2})(\d{2})?/.exec(t);
    return m ? `${m[1]}:${m[2] || "00"}` : t;
  }

  function fmtStamp(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso;
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function ago(iso) {
    if (!iso) return "";
    const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    if (!Number.isFinite(s)) return "";
    if (s < 45) return "just now";
    if (s < 90) return "1 min ago";
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) {
      const hrs = Math.round(s / 3600);
      return `${hrs} hour${hrs === 1 ? "" : "s"} ago`;
    }
    return fmtStamp(iso);
  }

  function plural(n, word) {
    return `${n} ${word}${n === 1 ? "" : "s"}`;
  }

  let toastTimer;
  function toast(msg, bad = false) {
    const t = $("toast");
    t.textContent = msg;
    t.className = bad ? "toast bad" : "toast";
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => (t.hidden = true), 4000);
  }

  class ApiError extends Error {
    constructor(status, message, body) {
      super(message);
      this.status = status;
      this.body = body;
    }
  }

  /** Calls the API; writes carry the session's CSRF token. 401 shows the sign-in form. */
  async function api(method, path, body, opts = {}) {
    const headers = { Accept: "application/json" };
    if (opts.poll) headers["X-Fiona-Poll"] = "1";
    if (method !== "GET") {
      headers["Content-Type"] = opts.contentType || "application/json";
      if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
    }
    let payload;
    if (body !== undefined) payload = typeof body === "string" ? body : JSON.stringify(body);
    const res = await fetch(path, {
      method,
      headers,
      body: payload,
      credentials: "same-origin",
      cache: "no-store",
    });
    const text = await res.text();
    let data = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = { error: text };
      }
    }
    if (res.status === 401 && !opts.allow401) {
      signedOut("Your session has ended. Please sign in again.");
      throw new ApiError(401, (data && data.error) || "sign in required", data);
    }
    if (!res.ok) throw new ApiError(res.status, (data && data.error) || res.statusText, data);
    return data;
  }

  function debounce(fn, ms) {
    let t;
    return (...args) => {
      clearTimeout(t);
      t = setTimeout(() => fn(...args), ms);
    };
  }

  // ---------- session ----------

  function showLogin(message, login) {
    state.signedOut = true;
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
    if (canPassword) setTimeout(() => $("login-user").focus(), 0);
  }

  function signedOut(message) {
    if (state.signedOut) return;
    // Behind a sign-in proxy (or on a site without accounts) a new session is one request away.
    if (state.me && (state.me.via === "proxy" || state.me.via === "open")) {
      state.signedOut = true;
      window.location.reload();
      return;
    }
    state.me = null;
    state.csrf = null;
    closeDrawer();
    if ($("confirm").open) $("confirm").close();
    showLogin(message);
  }

  async function startSession(s) {
    state.me = s;
    state.csrf = s.csrfToken;
    state.signedOut = false;
    $("login").hidden = true;
    $("app").hidden = false;
    $("who-name").textContent = s.user;
    $("who-role").textContent = s.admin ? "admin" : "";
    $("sign-out").hidden = s.via === "proxy" || s.via === "open";
    for (const el of document.querySelectorAll(".col-patient")) el.hidden = !s.showPatientIdentity;
    $("audit-lead").textContent = s.admin
      ? "Every assignment and sign-in: who, when, which study, project, participant and event."
      : "Assignments in your projects: who, when, which study, project, participant and event.";
    await loadProjects();
    await Promise.all([loadStudies(), loadTransfers(), loadNoAssignDestinations()]);
    schedule();
  }

  async function boot() {
    wire();
    try {
      const s = await api("GET", "/api/session", undefined, { allow401: true });
      await startSession(s);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) showLogin("", e.body && e.body.login);
      else showLogin(`The server could not be reached (${e.message}). Reload the page to try again.`);
    }
  }

  async function onLogin(ev) {
    ev.preventDefault();
    $("login-error").textContent = "";
    $("login-submit").disabled = true;
    try {
      const s = await api(
        "POST",
        "/api/session",
        { user: $("login-user").value.trim(), password: $("login-password").value },
        { allow401: true },
      );
      $("login-password").value = "";
      await startSession(s);
    } catch (e) {
      $("login-error").textContent = e.status === 401 ? "Wrong user name or password." : e.message;
    } finally {
      $("login-submit").disabled = false;
    }
  }

  async function onSignOut() {
    try {
      await api("DELETE", "/api/session");
    } catch {
      // signed out anyway
    }
    state.signedOut = false;
    signedOut("You have signed out.");
  }

  // ---------- views ----------

  function setView(view) {
    state.view = view;
    for (const tab of document.querySelectorAll(".tab")) {
      const on = tab.dataset.view === view;
      tab.classList.toggle("active", on);
      tab.setAttribute("aria-selected", String(on));
    }
    for (const sec of document.querySelectorAll("section.view")) sec.hidden = sec.dataset.view !== view;
    if (view === "transfers") void loadTransfers();
    if (view === "studies") void loadStudies();
    if (view === "audit") void loadAudit();
    if (view === "exports") void loadExports();
    schedule();
  }

  // ---------- projects ----------

  async function loadProjects() {
    state.projects = await api("GET", "/api/projects");
    const sel = $("t-project");
    const keep = sel.value;
    clear(sel).append(h("option", { value: "" }, "All my projects"));
    for (const p of state.projects) sel.append(h("option", { value: p.name }, p.name));
    sel.value = state.projects.some((p) => p.name === keep) ? keep : "";
  }

  const projectByName = (name) => state.projects.find((p) => p.name === name);

  // ---------- studies ----------

  function studyQuery() {
    const params = new URLSearchParams();
    const q = $("f-q").value.trim();
    if (q) params.set("q", q);
    if ($("f-from").value) params.set("from", $("f-from").value);
    if ($("f-to").value) params.set("to", $("f-to").value);
    if ($("f-ae").value) params.set("ae", $("f-ae").value);
    if ($("f-assigned").value !== "all") params.set("assigned", $("f-assigned").value);
    return params.toString();
  }

  let studiesSeq = 0;
  async function loadStudies(poll = false) {
    const seq = ++studiesSeq;
    const qs = studyQuery();
    let list;
    try {
      list = await api("GET", `/api/studies${qs ? `?${qs}` : ""}`, undefined, { poll });
    } catch (e) {
      if (e.status !== 401 && !poll) toast(`Could not load the studies: ${e.message}`, true);
      return;
    }
    if (seq !== studiesSeq) return;
    state.studies = list;
    renderStudies();
  }

  function transferChips(transfers) {
    if (!transfers.length) return h("span", { class: "muted" }, "Not assigned");
    return h(
      "div",
      {},
      transfers.map((t) =>
        h(
          "span",
          {
            class: `chip ${t.status === "queued" ? "" : t.status}`,
            title: `${t.project} · ${t.participant}${t.event ? ` · ${t.event}` : ""}: ${t.status}`,
          },
          `${t.project} · ${t.participant}${t.event ? ` · ${t.event}` : ""}`,
        ),
      ),
    );
  }

  function renderStudies() {
    const body = clear($("studies-body"));
    const showPatient = state.me && state.me.showPatientIdentity;
    for (const s of state.studies) {
      for (const ae of [s.callingAe]) if (ae) state.aes.add(ae);
      const tr = h(
        "tr",
        {
          class: `clickable${state.selected === s.studyInstanceUid ? " selected" : ""}`,
          dataset: { uid: s.studyInstanceUid },
          tabindex: "0",
          onclick: () => openStudy(s.studyInstanceUid),
          onkeydown: (e) => {
            if (e.key === "Enter" || e.key === " ") {
              e.preventDefault();
              openStudy(s.studyInstanceUid);
            }
          },
        },
        h(
          "td",
          { class: "nowrap" },
          h("div", { class: "cell-main" }, fmtDate(s.studyDate) || "—"),
          h("div", { class: "cell-sub" }, fmtTime(s.studyTime)),
        ),
        h("td", { class: "mono" }, s.accessionNumber || "—"),
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
      body.append(tr);
    }
    $("studies-empty").hidden = state.studies.length > 0;
    $("count-studies").textContent = String(
      state.studies.filter((s) => s.transfers.length === 0).length || "",
    );
    $("count-studies").title = "Studies not assigned yet";
    $("studies-foot").textContent = state.studies.length
      ? `${state.studies.length} ${state.studies.length === 1 ? "study" : "studies"} shown. Patient names and IDs are ${
          showPatient ? "shown because this site enabled them" : "not shown"
        }.`
      : "";
    // Sender filter: every AE title seen so far, keeping the current choice.
    const sel = $("f-ae");
    const keep = sel.value;
    if (sel.options.length - 1 !== state.aes.size) {
      clear(sel).append(h("option", { value: "" }, "All senders"));
      for (const ae of [...state.aes].sort()) sel.append(h("option", { value: ae }, ae));
      sel.value = keep;
    }
  }

  // ---------- study panel and assignment ----------

  function fact(dl, label, value, cls) {
    if (value === undefined || value === null || value === "") return;
    dl.append(h("dt", {}, label), h("dd", { class: cls }, value));
  }

  async function openStudy(uid) {
    state.selected = uid;
    for (const tr of document.querySelectorAll("#studies-body tr")) {
      tr.classList.toggle("selected", tr.dataset.uid === uid);
    }
    let d;
    try {
      d = await api("GET", `/api/studies/${encodeURIComponent(uid)}`);
    } catch (e) {
      toast(`Could not open the study: ${e.message}`, true);
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
    const facts = clear($("d-facts"));
    if (state.me.showPatientIdentity) {
      fact(facts, "Patient", d.patientName);
      fact(facts, "Patient ID", d.patientId, "mono");
    }
    fact(facts, "Study date", `${fmtDate(d.studyDate) || "—"} ${fmtTime(d.studyTime)}`);
    fact(facts, "Accession no.", d.accessionNumber || "—", "mono");
    fact(facts, "Modality", d.modalities.join(", ") || "—");
    fact(facts, "Images", `${plural(d.fileCount, "image")} in ${d.seriesCount} series`);
    fact(facts, "Sender", `${d.callingAe || "—"}${d.calledAe ? ` → ${d.calledAe}` : ""}`);
    fact(
      facts,
      "Received",
      `${fmtStamp(d.firstSeenAt)}${d.status === "receiving" ? " (still receiving)" : ""}`,
    );
    fact(facts, "Study UID", d.studyInstanceUid, "mono");

    $("d-series-summary").textContent = `Series (${d.series.length})`;
    const tbody = clear($("d-series").tBodies[0]);
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
            d.transfers.map((t) =>
              h("li", {}, `${t.project} · ${t.participant}${t.event ? ` · ${t.event}` : ""} — ${t.status}`),
            ),
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

  function closeDrawer() {
    $("drawer").hidden = true;
    $("drawer-scrim").hidden = true;
    state.selected = null;
    for (const tr of document.querySelectorAll("#studies-body tr.selected")) tr.classList.remove("selected");
  }

  function resetAssignForm() {
    const sel = $("a-project");
    const none = state.projects.length === 0;
    $("a-noprojects").hidden = !none;
    $("a-fields").hidden = none;
    clear(sel);
    sel.append(h("option", { value: "", disabled: true, selected: true }, "Choose a project…"));
    for (const p of state.projects) sel.append(h("option", { value: p.name }, p.name));
    if (state.projects.length === 1) sel.value = state.projects[0].name;
    $("a-participant").value = "";
    $("a-error").textContent = "";
    void onProjectChange();
  }

  async function onProjectChange() {
    const p = projectByName($("a-project").value);
    const list = clear($("a-participants"));
    state.participants = [];
    $("a-participant").disabled = !p;
    // Events: a fixed list when the project defines one, else free text.
    const evSel = clear($("a-event"));
    const evText = $("a-event-text");
    if (p && p.events.length) {
      evSel.hidden = false;
      evText.hidden = true;
      evSel.append(h("option", { value: "", disabled: true, selected: true }, "Choose an event…"));
      for (const e of p.events) evSel.append(h("option", { value: e }, e));
      evSel.append(h("option", { value: "\u0000none" }, "No event"));
    } else {
      evSel.hidden = true;
      evText.hidden = !p;
      evText.value = "";
    }
    evSel.disabled = !p;
    if (p) {
      try {
        state.participants = await api("GET", `/api/projects/${encodeURIComponent(p.name)}/participants`);
      } catch {
        state.participants = [];
      }
      for (const x of state.participants) {
        list.append(h("option", { value: x.participant }, `${plural(x.transfers, "earlier transfer")}`));
      }
    }
    validateParticipant();
  }

  function patternOf(p) {
    if (!p || !p.participantPattern) return null;
    try {
      return new RegExp(`^(?:${p.participantPattern})$`);
    } catch {
      return null;
    }
  }

  function setHint(text, cls) {
    const hint = $("a-participant-hint");
    hint.textContent = text;
    hint.className = `hint ${cls || ""}`;
    const input = $("a-participant");
    input.classList.toggle("valid", cls === "ok");
    input.classList.toggle("invalid", cls === "bad");
  }

  const serverCheck = debounce(async (project, participant) => {
    try {
      const r = await api(
        "GET",
        `/api/projects/${encodeURIComponent(project)}/participants/check?participant=${encodeURIComponent(participant)}`,
      );
      if ($("a-participant").value.trim() !== participant || $("a-project").value !== project) return;
      state.participantOk = r.valid;
      if (!r.valid) setHint(r.message || "Not a valid participant id.", "bad");
      else if (r.exists) {
        const x = state.participants.find((p) => p.participant === participant);
        setHint(`Existing participant${x ? ` (${plural(x.transfers, "earlier transfer")})` : ""}.`, "ok");
      } else setHint("New participant: this id will be created in the project.", "ok");
    } catch (e) {
      state.participantOk = false;
      setHint(e.message, "bad");
    }
    updateReview();
  }, 250);

  function validateParticipant() {
    const p = projectByName($("a-project").value);
    const v = $("a-participant").value.trim();
    state.participantOk = false;
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

  function chosenEvent() {
    const p = projectByName($("a-project").value);
    if (!p) return { ok: false };
    if (p.events.length) {
      const v = $("a-event").value;
      if (!v) return { ok: false };
      return { ok: true, event: v === "\u0000none" ? undefined : v };
    }
    const t = $("a-event-text").value.trim();
    return { ok: true, event: t || undefined };
  }

  function updateReview() {
    $("a-review").disabled = !(
      projectByName($("a-project").value) &&
      state.participantOk &&
      chosenEvent().ok
    );
    updateOutButtons();
  }

  async function onReview(ev) {
    ev.preventDefault();
    $("a-error").textContent = "";
    const d = state.selectedDetail;
    const project = $("a-project").value;
    const participant = $("a-participant").value.trim();
    const e = chosenEvent();
    if (!d || !e.ok) return;
    const params = new URLSearchParams({ study: d.studyInstanceUid, project, participant });
    if (e.event) params.set("event", e.event);
    let pv;
    try {
      pv = await api("GET", `/api/transfers/preview?${params}`);
    } catch (err) {
      $("a-error").textContent = err.message;
      return;
    }
    state.pendingPreview = pv;
    const s = pv.study;
    const what = clear($("c-what"));
    fact(what, "Study date", `${fmtDate(s.studyDate) || "—"} ${fmtTime(s.studyTime)}`);
    fact(what, "Description", s.studyDescription || "(no description)");
    fact(what, "Accession no.", s.accessionNumber || "—", "mono");
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
    $("c-error").textContent = "";
    $("c-send").disabled = false;
    $("confirm").showModal();
    $("c-send").focus();
  }

  async function onSend() {
    const pv = state.pendingPreview;
    if (!pv) return;
    $("c-send").disabled = true;
    $("c-error").textContent = "";
    try {
      const r = await api("POST", "/api/transfers", {
        studyInstanceUid: pv.study.studyInstanceUid,
        project: pv.project,
        participant: pv.participant,
        ...(pv.event ? { event: pv.event } : {}),
      });
      $("confirm").close();
      closeDrawer();
      state.highlight = r.requestId;
      toast(`Transfer started: ${pv.project} · ${pv.participant}${pv.event ? ` · ${pv.event}` : ""}`);
      setView("transfers");
      void loadStudies();
    } catch (e) {
      $("c-error").textContent = e.message;
      $("c-send").disabled = false;
    }
  }

  // ---------- transfers ----------

  let transfersSeq = 0;
  async function loadTransfers(poll = false) {
    const seq = ++transfersSeq;
    const project = $("t-project").value;
    let list;
    try {
      list = await api(
        "GET",
        `/api/transfers${project ? `?project=${encodeURIComponent(project)}` : ""}`,
        undefined,
        {
          poll,
        },
      );
    } catch (e) {
      if (e.status !== 401 && !poll) toast(`Could not load the transfers: ${e.message}`, true);
      return;
    }
    if (seq !== transfersSeq) return;
    state.transfers = list;
    renderTransfers();
  }

  function statusCell(t) {
    const live = t.live;
    const cell = h("div", { class: "status-cell" });
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
      const bar = h("div", { class: "progress", title: `${live.percent}%` }, h("span", {}));
      bar.firstChild.style.width = `${live.percent}%`;
      cell.append(bar);
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
    if (live.retrying) cell.append(h("span", { class: "reason retrying" }, `Retrying: ${live.retrying}`));
    if ((live.state === "failed" || live.state === "partial") && (live.reason || t.error)) {
      cell.append(h("span", { class: "reason" }, live.reason || t.error));
    }
    return cell;
  }

  async function onRetry(t, btn) {
    btn.disabled = true;
    try {
      await api("POST", `/api/transfers/${encodeURIComponent(t.requestId)}/retry`, {});
      state.highlight = t.requestId;
      toast(`Sending again: ${t.project} · ${t.participant}`);
      await loadTransfers();
    } catch (e) {
      toast(e.message, true);
      btn.disabled = false;
    }
  }

  function renderTransfers() {
    const body = clear($("transfers-body"));
    let active = 0;
    for (const t of state.transfers) {
      const live = t.live;
      if (!["done", "partial", "failed"].includes(live.state)) active++;
      const canRetry = live.retryable && ["failed", "partial", "queued"].includes(live.state);
      const retry = canRetry
        ? h(
            "button",
            {
              type: "button",
              class: "btn btn-small",
              title: "Send what the research PACS has not accepted yet",
            },
            "Retry",
          )
        : null;
      if (retry) retry.addEventListener("click", () => onRetry(t, retry));
      const tr = h(
        "tr",
        { dataset: { id: t.requestId }, class: state.highlight === t.requestId ? "flash" : "" },
        h(
          "td",
          { class: "nowrap", title: fmtStamp(t.createdAt) },
          h("div", {}, ago(t.createdAt)),
          h("div", { class: "cell-sub" }, t.runs > 1 ? `${t.runs} runs` : ""),
        ),
        h(
          "td",
          {},
          h("div", { class: "cell-main" }, (t.study && t.study.studyDescription) || "(no description)"),
          h(
            "div",
            { class: "cell-sub" },
            [
              fmtDate(t.study && t.study.studyDate),
              t.study && t.study.accessionNumber ? `Acc. ${t.study.accessionNumber}` : "",
            ]
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
      body.append(tr);
    }
    state.highlight = null;
    $("transfers-empty").hidden = state.transfers.length > 0;
    const count = $("count-transfers");
    count.textContent = active ? String(active) : "";
    count.classList.toggle("live", active > 0);
    count.title = active ? `${active} running` : "";
  }

  // ---------- coupling list ----------

  async function couplingCsv() {
    const file = $("c-file").files[0];
    if (file) return file.text();
    return $("c-text").value;
  }

  const OUTCOMES = {
    planned: ["will be sent", "queued"],
    started: ["transfer started", "sending"],
    exists: ["already sent", "done"],
    "pending-arrival": ["when the study has arrived", "queued"],
    invalid: ["not possible", "failed"],
    error: ["error", "failed"],
  };

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

  function renderCouplingErrors(e) {
    const out = clear($("c-result"));
    if (e.status === 501 || e.status === 404) {
      out.append(h("div", { class: "form-error" }, "The coupling list is not available on this site."));
      return;
    }
    out.append(h("div", { class: "form-error" }, e.message));
    const errors = (e.body && e.body.errors) || [];
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

  async function onCoupling(apply) {
    const csv = await couplingCsv();
    if (!csv.trim()) {
      toast("Choose a CSV file or paste the list first.", true);
      return;
    }
    const btn = apply ? $("c-apply") : $("c-preview");
    btn.disabled = true;
    try {
      const r = await api("POST", `/api/coupling${apply ? "" : "?dryRun=true"}`, csv, {
        contentType: "text/csv",
      });
      renderCoupling(r, apply);
      $("c-apply").disabled = apply;
      if (apply) {
        toast("Coupling list uploaded.");
        void loadStudies();
        void loadTransfers();
      }
    } catch (e) {
      renderCouplingErrors(e);
      $("c-apply").disabled = true;
    } finally {
      if (!apply) btn.disabled = false;
    }
  }

  // ---------- exports and NoAssign ----------

  const EXPORT_LABELS = { queued: "Queued", building: "Building", done: "Done", failed: "Failed" };
  const EXPORT_BADGES = { queued: "queued", building: "sending", done: "done", failed: "failed" };

  function fmtSize(n) {
    if (typeof n !== "number") return "";
    if (n < 1024) return `${n} B`;
    const units = ["KB", "MB", "GB", "TB"];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
  }

  let exportsSeq = 0;
  async function loadExports(poll = false) {
    const seq = ++exportsSeq;
    let list;
    try {
      list = await api("GET", "/api/exports", undefined, { poll });
    } catch (e) {
      if (e.status !== 401 && !poll) toast(`Could not load the exports: ${e.message}`, true);
      return;
    }
    if (seq !== exportsSeq) return;
    state.exports = list;
    renderExports();
  }

  function renderExports() {
    const body = clear($("exports-body"));
    for (const x of state.exports) {
      const status = h(
        "div",
        { class: "status-cell" },
        h(
          "span",
          { class: `badge ${EXPORT_BADGES[x.status] || "queued"}`, dataset: { state: x.status } },
          EXPORT_LABELS[x.status] || x.status,
        ),
        x.files && x.status === "done"
          ? h("span", { class: "cell-sub" }, plural(x.files.total, "file"))
          : null,
        x.error ? h("span", { class: "reason" }, x.error) : null,
      );
      body.append(
        h(
          "tr",
          { dataset: { id: x.id } },
          h("td", { class: "nowrap", title: fmtStamp(x.createdAt) }, ago(x.createdAt)),
          h("td", {}, x.project),
          h("td", { class: "mono" }, x.participant),
          h("td", {}, x.event || "—"),
          h("td", {}, x.layout),
          h("td", {}, x.source === "quarantine" ? "Pseudonymized now" : "Transfer"),
          h("td", {}, status),
          h("td", { class: "num nowrap" }, fmtSize(x.size)),
          h("td", {}, x.requestedBy || ""),
          h(
            "td",
            {},
            x.download
              ? h(
                  "a",
                  { class: "btn btn-small", href: x.download, download: x.fileName || "", rel: "noopener" },
                  "Download",
                )
              : null,
          ),
        ),
      );
    }
    $("exports-empty").hidden = state.exports.length > 0;
    const running = state.exports.filter((x) => x.status === "queued" || x.status === "building").length;
    $("count-exports").textContent = running ? String(running) : "";
    $("count-exports").title = "Exports being built";
  }

  async function loadNoAssignDestinations() {
    try {
      state.noAssignDestinations = await api("GET", "/api/noassign/destinations");
    } catch {
      state.noAssignDestinations = [];
    }
    const sel = clear($("n-dest"));
    for (const d of state.noAssignDestinations)
      sel.append(h("option", { value: d.name }, `${d.name} (${d.aeTitle})`));
    $("n-forward-row").hidden = state.noAssignDestinations.length === 0;
  }

  /** The study and the project/participant/event chosen in the assignment form, or null. */
  function chosenTarget() {
    const d = state.selectedDetail;
    const project = $("a-project").value;
    const participant = $("a-participant").value.trim();
    const e = chosenEvent();
    if (!d || !projectByName(project) || !state.participantOk || !e.ok) return null;
    return {
      studyInstanceUid: d.studyInstanceUid,
      project,
      participant,
      ...(e.event ? { event: e.event } : {}),
    };
  }

  function updateOutButtons() {
    const ready = chosenTarget() !== null;
    $("x-export").disabled = !ready;
    $("n-download").disabled = !ready;
    $("n-forward").disabled = !ready || !$("n-dest").value;
  }

  function targetLabel(t) {
    return `${t.project} · ${t.participant}${t.event ? ` · ${t.event}` : ""}`;
  }

  async function runOut(btn, fn) {
    $("x-error").textContent = "";
    $("x-result").textContent = "";
    const t = chosenTarget();
    if (!t) return;
    btn.disabled = true;
    try {
      await fn(t);
    } catch (e) {
      $("x-error").textContent = e.message;
    } finally {
      updateOutButtons();
    }
  }

  function onExport() {
    return runOut($("x-export"), async (t) => {
      const layout = $("x-layout").value;
      await api("POST", "/api/exports", { ...t, layout });
      toast(`Export requested: ${targetLabel(t)} (${layout})`);
      closeDrawer();
      setView("exports");
    });
  }

  function onNoAssignDownload() {
    return runOut($("n-download"), async (t) => {
      $("x-result").textContent = "Pseudonymizing…";
      const headers = { Accept: "application/zip", "Content-Type": "application/json" };
      if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
      const res = await fetch("/api/noassign", {
        method: "POST",
        headers,
        body: JSON.stringify(t),
        credentials: "same-origin",
        cache: "no-store",
      });
      if (!res.ok) {
        let msg = res.statusText;
        try {
          msg = (await res.json()).error || msg;
        } catch {
          // not JSON
        }
        if (res.status === 401) signedOut("Your session has ended. Please sign in again.");
        $("x-result").textContent = "";
        throw new ApiError(res.status, msg);
      }
      const m = /filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "");
      const url = URL.createObjectURL(await res.blob());
      const a = h("a", { href: url, download: m ? m[1] : "noassign.zip", hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      $("x-result").textContent = `Pseudonymized ZIP downloaded (${targetLabel(t)}).`;
    });
  }

  function onNoAssignForward() {
    return runOut($("n-forward"), async (t) => {
      const destination = $("n-dest").value;
      $("x-result").textContent = `Pseudonymizing and sending to ${destination}…`;
      const r = await api("POST", "/api/noassign/forward", { ...t, destination });
      $("x-result").textContent =
        `Sent ${r.sent} of ${plural(r.files, "image")} to ${r.destination} (${r.peer})${
          r.failed ? `; ${r.failed} failed` : ""
        }.`;
      toast(`NoAssign: ${plural(r.sent, "image")} sent to ${r.destination}`, r.failed > 0);
    });
  }

  // ---------- audit ----------

  async function loadAudit() {
    let list;
    try {
      list = await api("GET", "/api/audit?limit=200");
    } catch (e) {
      if (e.status !== 401) toast(`Could not load the audit log: ${e.message}`, true);
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
          h(
            "td",
            { class: "mono cell-sub" },
            a.requestId ? `${a.requestId.slice(0, 10)}… run ${a.run || 1}` : a.detail || "",
          ),
        ),
      );
    }
    $("audit-empty").hidden = list.length > 0;
  }

  // ---------- polling ----------

  let timer;
  let tick = 0;
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      tick++;
      if (state.me && !document.hidden) {
        // Transfers every 2 s while shown (10 s otherwise, for the running count); studies every 10 s.
        if (state.view === "transfers" || tick % 5 === 0) await loadTransfers(true);
        if (state.view === "studies" && tick % 5 === 0) await loadStudies(true);
        if (
          state.view === "exports" &&
          state.exports.some((x) => x.status === "queued" || x.status === "building")
        )
          await loadExports(true);
      }
      if (state.me) schedule();
    }, 2000);
  }

  // ---------- wiring ----------

  function wire() {
    $("login-form").addEventListener("submit", onLogin);
    $("sign-out").addEventListener("click", onSignOut);
    for (const tab of document.querySelectorAll(".tab"))
      tab.addEventListener("click", () => setView(tab.dataset.view));
    const reload = debounce(() => loadStudies(), 250);
    $("f-q").addEventListener("input", reload);
    for (const id of ["f-from", "f-to", "f-ae", "f-assigned"])
      $(id).addEventListener("change", () => loadStudies());
    $("study-filters").addEventListener("submit", (e) => e.preventDefault());
    $("f-clear").addEventListener("click", () => {
      $("study-filters").reset();
      void loadStudies();
    });
    $("d-close").addEventListener("click", closeDrawer);
    $("drawer-scrim").addEventListener("click", closeDrawer);
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !$("drawer").hidden && !$("confirm").open) closeDrawer();
    });
    $("a-project").addEventListener("change", onProjectChange);
    $("a-participant").addEventListener("input", validateParticipant);
    $("a-event").addEventListener("change", updateReview);
    $("a-event-text").addEventListener("input", updateReview);
    $("assign-form").addEventListener("submit", onReview);
    $("c-send").addEventListener("click", onSend);
    $("t-project").addEventListener("change", () => loadTransfers());
    $("c-preview").addEventListener("click", () => onCoupling(false));
    $("c-apply").addEventListener("click", () => onCoupling(true));
    $("c-file").addEventListener("change", () => ($("c-apply").disabled = true));
    $("c-text").addEventListener("input", () => ($("c-apply").disabled = true));
    $("audit-refresh").addEventListener("click", loadAudit);
    $("exports-refresh").addEventListener("click", () => loadExports());
    $("x-export").addEventListener("click", onExport);
    $("n-download").addEventListener("click", onNoAssignDownload);
    $("n-forward").addEventListener("click", onNoAssignForward);
    $("n-dest").addEventListener("change", updateOutButtons);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden && state.me)
        void (state.view === "transfers" ? loadTransfers(true) : loadStudies(true));
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot);
  else void boot();
})();
