// The Attach page: uploads a slide in 8 MiB chunks to /api/wsi/uploads; after a network error it asks
// the server how many bytes arrived and resumes there.
"use strict";
/* global document, Option */

const CHUNK = 8 * 1024 * 1024;
const RETRIES = 5;
const $ = (id) => document.getElementById(id);
let csrf = null;
let projects = [];

async function api(method, url, body, type = "application/json") {
  const headers = {};
  if (csrf) headers["X-CSRF-Token"] = csrf;
  if (body !== undefined) headers["Content-Type"] = type;
  const res = await fetch(url, {
    method,
    headers,
    body: type === "application/json" && body !== undefined ? JSON.stringify(body) : body,
    credentials: "same-origin",
  });
  const data = await res.json().catch(() => ({}));
  return { status: res.status, data };
}

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}

function showProgress(offset, size) {
  const pct = size ? Math.floor((offset / size) * 100) : 0;
  $("progress").value = pct;
  $("percent").textContent = `${pct} %`;
}

function fillEvents() {
  const p = projects.find((x) => x.name === $("project").value);
  const select = $("event");
  select.replaceChildren(new Option("(none)", ""));
  for (const e of (p && p.events) || []) select.add(new Option(e, e));
}

async function start() {
  const s = await api("GET", "/api/session");
  if (s.status === 401) {
    $("login").hidden = false;
    return;
  }
  csrf = s.data.csrfToken;
  $("login").hidden = true;
  projects = (await api("GET", "/api/projects")).data;
  const select = $("project");
  select.replaceChildren(...projects.map((p) => new Option(p.name, p.name)));
  fillEvents();
  $("attach").hidden = false;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** PUT the file from `offset` on; a network error or 409 resumes from the server's offset. */
async function send(id, file, offset) {
  let failures = 0;
  while (offset < file.size) {
    const end = Math.min(offset + CHUNK, file.size);
    try {
      const r = await api(
        "PUT",
        `/api/wsi/uploads/${id}?offset=${offset}`,
        file.slice(offset, end),
        "application/octet-stream",
      );
      if (r.status === 200) {
        offset = r.data.offset;
        failures = 0;
      } else if (r.status === 409 && typeof r.data.offset === "number") offset = r.data.offset;
      else throw new Error(r.data.error || `HTTP ${r.status}`);
    } catch (e) {
      if (++failures > RETRIES) throw e;
      setStatus(`Connection problem; retrying (${failures}/${RETRIES})…`);
      await sleep(1000 * failures);
      const s = await api("GET", `/api/wsi/uploads/${id}`).catch(() => null);
      if (s && s.status === 200) offset = s.data.offset;
    }
    showProgress(offset, file.size);
  }
}

async function upload(ev) {
  ev.preventDefault();
  const file = $("file").files[0];
  if (!file) return;
  const metadata = {};
  for (const input of document.querySelectorAll("[data-meta]")) {
    if (input.value.trim()) metadata[input.dataset.meta] = input.value.trim();
  }
  const dot = file.name.lastIndexOf(".");
  const body = {
    project: $("project").value,
    participant: $("participant").value.trim(),
    ...($("event").value ? { event: $("event").value } : {}),
    extension: dot >= 0 ? file.name.slice(dot) : "",
    size: file.size,
    metadata,
  };
  $("start").disabled = true;
  showProgress(0, file.size);
  try {
    const created = await api("POST", "/api/wsi/uploads", body);
    if (created.status !== 201) throw new Error(created.data.error || `HTTP ${created.status}`);
    setStatus("Uploading…");
    await send(created.data.id, file, 0);
    setStatus(`Upload ${created.data.id} complete; conversion queued.`);
  } catch (e) {
    setStatus(`Upload failed: ${e.message}`, true);
  } finally {
    $("start").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("project").addEventListener("change", fillEvents);
  $("attach").addEventListener("submit", upload);
  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await api("POST", "/api/session", {
      user: $("login-user").value.trim(),
      password: $("login-password").value,
    });
    if (r.status !== 200) $("login-error").textContent = r.data.error || "sign-in failed";
    else start();
  });
  start().catch((e) => setStatus(e.message, true));
});
