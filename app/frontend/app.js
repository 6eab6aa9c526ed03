// The page uses the backend API: create a session, upload a file through a presigned
// URL (with progress), list the session's uploads. Where the API is comes from
// /config.json ({"apiBase": "https://..."}), written beside the page where it is served.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { api: null, session: null };

function fail(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

async function call(method, path, body) {
  let response;
  try {
    response = await fetch(`${state.api}${path}`, {
      method,
      headers: body ? { "content-type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (error) {
    throw new Error(`the API cannot be reached from this page (${error.message})`);
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data.message || `the API answered ${response.status}`);
  }
  return data;
}

function put(grant, file) {
  // XMLHttpRequest, not fetch: it reports upload progress.
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(grant.method || "PUT", grant.uploadUrl);
    for (const [name, value] of Object.entries(grant.headers || {})) {
      request.setRequestHeader(name, value);
    }
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) {
        $("progress").value = Math.round((100 * event.loaded) / event.total);
      }
    };
    request.onload = () => (request.status >= 200 && request.status < 300
      ? resolve() : reject(new Error(`the upload was refused (${request.status})`)));
    request.onerror = () => reject(new Error("the upload could not reach the storage (network or CORS)"));
    request.send(file);
  });
}

async function listUploads() {
  const { uploads } = await call("GET", `/sessions/${state.session}/uploads`);
  const list = $("uploads");
  list.replaceChildren();
  if (!uploads.length) {
    list.innerHTML = '<li class="muted">Nothing uploaded yet.</li>';
    return;
  }
  for (const item of uploads) {
    const entry = document.createElement("li");
    entry.textContent = `${item.key.split("/").pop()} (${item.size} bytes)`;
    entry.dataset.key = item.key;
    list.append(entry);
  }
}

async function startSession() {
  $("error").hidden = true;
  try {
    const created = await call("POST", "/sessions", {});
    state.session = created.sessionId;
    $("session").textContent = `Session ${state.session}`;
    $("file").disabled = false;
    $("upload").disabled = false;
    await listUploads();
  } catch (error) {
    fail(`Could not start a session: ${error.message}`);
  }
}

async function upload(event) {
  event.preventDefault();
  $("error").hidden = true;
  const file = $("file").files[0];
  if (!file) {
    fail("Choose a photo or a video first.");
    return;
  }
  $("upload").disabled = true;
  $("progress").hidden = false;
  $("progress").value = 0;
  $("upload-status").textContent = `Uploading ${file.name}...`;
  try {
    const grant = await call("POST", `/sessions/${state.session}/uploads`,
      { filename: file.name, contentType: file.type || "application/octet-stream", size: file.size });
    await put(grant, file);
    $("progress").value = 100;
    $("upload-status").textContent = `Uploaded ${file.name}.`;
    await listUploads();
  } catch (error) {
    $("upload-status").textContent = "";
    fail(`Could not upload ${file.name}: ${error.message}`);
  } finally {
    $("upload").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  $("start").addEventListener("click", startSession);
  $("upload-form").addEventListener("submit", upload);
  try {
    const config = await (await fetch("/config.json", { cache: "no-store" })).json();
    state.api = config.apiBase.replace(/\/$/, "");
  } catch (error) {
    $("start").disabled = true;
    fail("This page has no /config.json naming its API (apiBase).");
  }
});
