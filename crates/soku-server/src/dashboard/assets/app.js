// The dashboard's one script. Every user-supplied string reaches the page through
// textContent, never as HTML. No key or token is stored in localStorage or sessionStorage:
// the ID token for /v1/api-keys lives in a variable of this page only.
"use strict";

const $ = (id) => document.getElementById(id);

function csrf() {
  const m = document.querySelector('meta[name="csrf-token"]');
  return m ? m.content : "";
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function show(id, text) {
  const e = $(id);
  if (!e) return;
  e.textContent = text || "";
  e.hidden = !text;
}

async function call(path, { method = "GET", body, token, headers = {} } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (method !== "GET") h["X-CSRF-Token"] = csrf();
  if (token) h.Authorization = "Bearer " + token;
  const r = await fetch(path, {
    method,
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  if (r.status === 204) return null;
  const data = await r.json().catch(() => null);
  if (!r.ok) {
    const err = new Error((data && data.error && data.error.message) || "Request failed (" + r.status + ").");
    err.status = r.status;
    throw err;
  }
  return data;
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString();
}

function badge(status) {
  return el("span", { class: "badge s-" + String(status).replace(/[^a-z_]/g, "") }, String(status).replace(/_/g, " "));
}

// The ID token of the API-keys page: fetched with the session, kept in memory.
let pageToken = null;
async function idToken(fresh) {
  if (!pageToken || fresh) {
    const t = await call("/dashboard/api/token", { method: "POST" });
    pageToken = t.idToken;
  }
  return pageToken;
}
async function withToken(path, opts = {}) {
  try {
    return await call(path, { ...opts, token: await idToken(false) });
  } catch (e) {
    if (e.status !== 401) throw e;
    return call(path, { ...opts, token: await idToken(true) });
  }
}

// Sign in and out.
// Firebase email and password sign-in through the Firebase Auth REST API (no SDK, nothing
// from a CDN); the server names the endpoint and the project's Web API key.
async function firebaseSignIn(email, password) {
  const { firebaseKey, firebaseUrl } = document.body.dataset;
  const r = await fetch(firebaseUrl + "/v1/accounts:signInWithPassword?key=" + encodeURIComponent(firebaseKey), {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password, returnSecureToken: true }),
  });
  const data = await r.json().catch(() => null);
  if (!r.ok || !data || !data.idToken) {
    const code = data && data.error && data.error.message;
    throw new Error(code === "INVALID_LOGIN_CREDENTIALS" || code === "INVALID_PASSWORD" || code === "EMAIL_NOT_FOUND"
      ? "The email or password is incorrect."
      : "Firebase sign-in failed" + (code ? ": " + code : "") + ".");
  }
  return data.idToken;
}

function initLogin() {
  if (document.body.dataset.firebaseKey) $("provider").hidden = false;
  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    show("login-error", "");
    $("sign-in").disabled = true;
    try {
      const provider = document.querySelector('input[name="provider"]:checked').value;
      const email = $("email").value;
      const password = $("password").value;
      const idToken = provider === "firebase"
        ? await firebaseSignIn(email, password)
        : (await call("/v1/auth/login", { method: "POST", body: { email, password } })).idToken;
      await call("/dashboard/session", { method: "POST", token: idToken });
      location.assign("/posts");
    } catch (e) {
      show("login-error", e.message);
    } finally {
      $("sign-in").disabled = false;
    }
  });
}

function initSignOut() {
  const b = $("sign-out");
  if (!b) return;
  b.addEventListener("click", async () => {
    try {
      await call("/dashboard/signout", { method: "POST" });
    } finally {
      location.assign("/login");
    }
  });
}

// Settings > API Keys.
// One cell of the "Access" column: scopes and allowed addresses, with the whole list on hover.
function accessCell(k) {
  const scopes = k.scopes ? k.scopes.join(", ") : "Full access";
  const ips = k.allowedIps ? k.allowedIps.join(", ") : "Any address";
  return el("td", { class: "wrap" },
    el("div", { class: "clip", title: scopes }, scopes),
    el("div", { class: "clip note", title: ips }, ips),
    k.expiresAt && k.status === "active" ? el("div", { class: "note" }, "Expires " + when(k.expiresAt)) : null,
  );
}

function keyRow(k) {
  const active = k.status === "active";
  const rotated = active && k.replacedBy;
  const label = k.name || "—";
  return el("tr", { "data-key-id": k.id, "data-status": k.status, class: active ? null : "muted" },
    el("td", {}, el("div", { class: "clip name", title: label }, label), el("div", { class: "note" }, k.mode + " · created " + when(k.createdAt))),
    el("td", {}, el("code", { class: "clip", title: k.preview }, k.preview)),
    el("td", {}, badge(k.status), rotated ? el("div", { class: "note" }, "rotated; stops " + when(k.expiresAt)) : null),
    accessCell(k),
    el("td", {}, el("div", {}, when(k.lastUsedAt)), el("div", { class: "note clip", title: k.lastUsedIp || "" }, k.lastUsedIp || "")),
    el("td", { class: "actions" },
      active && !rotated ? el("button", { class: "small rotate", type: "button", onclick: () => confirmRotate(k) }, "Rotate") : null,
      active ? el("button", { class: "danger small revoke", type: "button", onclick: () => confirmRevoke(k) }, "Revoke") : null,
    ),
  );
}

async function loadKeys() {
  show("keys-error", "");
  const body = document.querySelector("#keys tbody");
  try {
    const data = await withToken("/v1/api-keys");
    const keys = data.apiKeys || [];
    body.replaceChildren(...keys.map(keyRow));
    $("keys-empty").hidden = keys.length > 0;
  } catch (e) {
    show("keys-error", e.message);
  }
}

let revoking = null;
function confirmRevoke(k) {
  revoking = k;
  $("confirm-text").textContent =
    "“" + (k.name || k.preview) + "” (" + k.preview + ") stops working at once. This cannot be undone.";
  $("confirm-dialog").showModal();
}

let rotating = null;
function confirmRotate(k) {
  rotating = k;
  $("rotate-text").textContent =
    "A new key replaces “" + (k.name || k.preview) + "” (" + k.preview + ") with the same name, mode, access and addresses.";
  $("rotate-dialog").showModal();
}

function showNewKey(k) {
  $("new-key").textContent = k.apiKey;
  $("copy-state").textContent = "";
  $("key-dialog").showModal();
}

// The creation request from the form: expiry, scopes and addresses only when chosen.
function keyRequest() {
  const body = { name: $("key-name").value, mode: $("key-mode").value };
  const expiry = $("key-expiry").value;
  if (expiry === "date") {
    const day = $("key-expiry-date").value;
    if (!day) throw new Error("Choose the expiry date.");
    body.expiresAt = new Date(day + "T23:59:59").toISOString();
  } else if (expiry) {
    body.expiresAt = new Date(Date.now() + Number(expiry) * 86400e3).toISOString();
  }
  if (document.querySelector('input[name="access"]:checked').value === "restricted") {
    body.scopes = [...document.querySelectorAll('input[name="scope"]:checked')].map((c) => c.value);
    if (!body.scopes.length) throw new Error("Choose at least one scope, or full access.");
  }
  const ips = $("key-ips").value.split(/[\s,]+/).filter(Boolean);
  if (ips.length) body.allowedIps = ips;
  return body;
}

function initKeys() {
  for (const r of document.querySelectorAll('input[name="access"]')) {
    r.addEventListener("change", () => ($("scope-list").hidden = r.value !== "restricted" || !r.checked));
  }
  $("key-expiry").addEventListener("change", () => ($("key-expiry-date-label").hidden = $("key-expiry").value !== "date"));
  $("create-key").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    show("keys-error", "");
    $("create-key-submit").disabled = true;
    try {
      const k = await withToken("/v1/api-keys", { method: "POST", body: keyRequest() });
      showNewKey(k);
      // Back to the defaults, so that the next key does not inherit this one's restrictions.
      $("create-key").reset();
      $("scope-list").hidden = true;
      $("key-expiry-date-label").hidden = true;
      await loadKeys();
    } catch (e) {
      show("keys-error", e.message);
    } finally {
      $("create-key-submit").disabled = false;
    }
  });
  $("copy-key").addEventListener("click", async () => {
    const text = $("new-key").textContent;
    try {
      await navigator.clipboard.writeText(text);
      $("copy-state").textContent = "Copied.";
    } catch {
      const range = document.createRange();
      range.selectNodeContents($("new-key"));
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      $("copy-state").textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  });
  $("key-dialog-close").addEventListener("click", () => {
    $("new-key").textContent = "";
    $("key-dialog").close();
  });
  $("key-dialog").addEventListener("close", () => ($("new-key").textContent = ""));
  $("confirm-cancel").addEventListener("click", () => $("confirm-dialog").close());
  $("confirm-revoke").addEventListener("click", async () => {
    const k = revoking;
    $("confirm-dialog").close();
    if (!k) return;
    try {
      await withToken("/v1/api-keys/" + encodeURIComponent(k.id), { method: "DELETE" });
    } catch (e) {
      show("keys-error", e.message);
    }
    await loadKeys();
  });
  $("rotate-cancel").addEventListener("click", () => $("rotate-dialog").close());
  $("rotate-confirm").addEventListener("click", async () => {
    const k = rotating;
    $("rotate-dialog").close();
    if (!k) return;
    try {
      const created = await withToken("/v1/api-keys/" + encodeURIComponent(k.id) + "/rotate", {
        method: "POST",
        body: { gracePeriodHours: Number($("rotate-grace").value) },
      });
      showNewKey(created);
    } catch (e) {
      show("keys-error", e.message);
    }
    await loadKeys();
  });
  loadKeys();
}

// Settings > Audit log.
const AUDIT_LABELS = {
  "api_key.created": "Key created",
  "api_key.rotated": "Key rotated",
  "api_key.revoked": "Key revoked",
  "api_key.updated": "Key changed",
  "api_key.leaked": "Key reported leaked (revoked)",
  "api_key.used_from_new_ip": "Key used from a new address",
  "api_key.denied_ip": "Key refused: address not allowed",
  "session.signed_in": "Signed in",
  "session.sign_in_failed": "Sign-in failed",
  "session.signed_out": "Signed out",
};

// The event's details as short "name: value" text.
function auditDetails(d) {
  return Object.entries(d || {})
    .filter(([, v]) => v !== null && v !== undefined && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => k + ": " + (Array.isArray(v) ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : String(v)))
    .join(" · ");
}

let auditCursor = null;
async function loadAudit(more) {
  show("audit-error", "");
  try {
    const q = "/v1/audit-events?limit=50" + (more && auditCursor ? "&cursor=" + encodeURIComponent(auditCursor) : "");
    const data = await withToken(q);
    const rows = (data.events || []).map((e) => {
      const details = auditDetails(e.details);
      return el("tr", { "data-type": e.type, class: e.type === "api_key.denied_ip" || e.type === "api_key.leaked" || e.type === "session.sign_in_failed" ? "attention" : null },
        el("td", {}, when(e.at)),
        el("td", {}, AUDIT_LABELS[e.type] || e.type),
        el("td", {}, e.keyId ? el("code", { class: "clip", title: e.keyId }, e.keyId) : "—"),
        el("td", {}, el("div", {}, e.ip || "—"), el("div", { class: "note clip", title: e.userAgent || "" }, e.userAgent || "")),
        el("td", { class: "wrap" }, el("div", { class: "clip2", title: details }, details)),
      );
    });
    const body = document.querySelector("#audit tbody");
    if (more) body.append(...rows);
    else body.replaceChildren(...rows);
    auditCursor = data.nextCursor;
    $("audit-more").hidden = !auditCursor;
    $("audit-empty").hidden = body.children.length > 0;
  } catch (e) {
    show("audit-error", e.message);
  }
}

function initAudit() {
  $("audit-more").addEventListener("click", () => loadAudit(true));
  loadAudit(false);
}

// Posts.
let postsTab = "history";
function safeLink(url) {
  try {
    const u = new URL(url);
    return u.protocol === "https:" || u.protocol === "http:" ? u.href : null;
  } catch {
    return null;
  }
}

function renderPost(p, mode) {
  const text = (p.post && p.post.content && p.post.content.text) || "(no text)";
  const targets = el("ul", { class: "targets" },
    ...(p.targets || []).map((t) => {
      const href = t.platformPostUrl && safeLink(t.platformPostUrl);
      return el("li", { class: "target", "data-target": t.targetId, "data-status": t.status },
        el("span", { class: "platform" }, t.platform),
        badge(t.status),
        href ? el("a", { href, target: "_blank", rel: "noopener noreferrer" }, "View post")
             : t.platformPostUrl ? el("code", { class: "small" }, t.platformPostUrl) : null,
        t.error ? el("span", { class: "target-error" }, t.error.message) : null,
      );
    }),
  );
  const canCancel = p.status === "scheduled";
  return el("li", { class: "post", "data-post-id": p.id, "data-status": p.status },
    el("div", { class: "row spread" },
      el("div", {}, badge(p.status), " ", el("span", { class: "when" },
        p.scheduledTime ? "for " + when(p.scheduledTime) : when(p.createdAt))),
      canCancel ? el("button", { class: "danger small cancel", type: "button", onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          await call("/dashboard/api/posts/" + encodeURIComponent(p.id) + "/cancel?mode=" + mode, { method: "POST" });
        } catch (e) {
          show("posts-error", e.message);
        }
        loadPosts();
      } }, "Cancel") : null,
    ),
    el("p", { class: "text" }, text),
    targets,
  );
}

async function loadPosts() {
  show("posts-error", "");
  const mode = $("list-mode").value;
  const q = "?mode=" + mode + "&limit=50" + (postsTab === "scheduled" ? "&status=scheduled" : "");
  try {
    const data = await call("/dashboard/api/posts" + q);
    const list = data.posts || [];
    $("posts").replaceChildren(...list.map((p) => renderPost(p, mode)));
    $("posts-empty").hidden = list.length > 0;
  } catch (e) {
    show("posts-error", e.message);
  }
}

// The live accounts the composer can name, one checkbox each.
async function loadComposeAccounts() {
  const box = $("compose-accounts");
  const legend = box.querySelector("legend");
  if ($("compose-mode").value !== "live") {
    box.replaceChildren(legend);
    box.hidden = true;
    return;
  }
  try {
    const data = await call("/dashboard/api/accounts?mode=live");
    const list = (data.accounts || []).filter((a) => a.status === "active");
    box.replaceChildren(legend, ...list.map((a) =>
      el("label", {},
        el("input", { type: "checkbox", name: "account", value: a.accountId, "data-platform": a.platform }),
        " " + a.platform + ": " + (a.displayName || a.accountId) + (a.username ? " (@" + a.username + ")" : ""),
      )));
    box.hidden = list.length === 0;
  } catch (e) {
    show("compose-error", e.message);
  }
}

// Media: uploads with progress (XMLHttpRequest reports upload progress; fetch does not), the
// list with thumbnails for images, delete.
function mediaLabel(m) {
  const dims = m.width && m.height ? m.width + "×" + m.height : "";
  const secs = m.durationSeconds ? m.durationSeconds.toFixed(1) + " s" : "";
  const size = m.size < 1048576 ? Math.max(1, Math.round(m.size / 1024)) + " KB"
    : (m.size / 1048576).toFixed(1) + " MB";
  return [m.kind, m.mimeType, dims, secs, size].filter(Boolean).join(" · ");
}

function sameOrigin(url) {
  try {
    return new URL(url, location.href).origin === location.origin ? url : null;
  } catch {
    return null;
  }
}

function uploadFile(file, mode, row) {
  return new Promise((resolve) => {
    const bar = row.querySelector("progress");
    const note = row.querySelector(".upload-status");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/dashboard/api/media?mode=" + encodeURIComponent(mode));
    xhr.setRequestHeader("X-CSRF-Token", csrf());
    xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (ev) => {
      if (ev.lengthComputable) bar.value = ev.loaded / ev.total;
    });
    xhr.addEventListener("load", () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { data = null; }
      if (xhr.status === 201 && data) {
        bar.value = 1;
        row.dataset.state = "done";
        note.textContent = "uploaded: " + mediaLabel(data);
      } else {
        row.dataset.state = "failed";
        note.textContent = (data && data.error && data.error.message) || "Upload failed (" + xhr.status + ").";
        note.className = "upload-status error";
      }
      resolve();
    });
    xhr.addEventListener("error", () => {
      row.dataset.state = "failed";
      note.textContent = "The upload was interrupted.";
      note.className = "upload-status error";
      resolve();
    });
    xhr.send(file);
  });
}

async function loadMedia() {
  show("media-error", "");
  const mode = $("media-mode").value;
  try {
    const data = await call("/dashboard/api/media?limit=100&mode=" + mode);
    const list = data.media || [];
    $("media").replaceChildren(...list.map((m) => {
      const src = m.kind === "image" ? sameOrigin(m.url) : null;
      return el("li", { class: "media-item", "data-media-id": m.id, "data-kind": m.kind },
        src ? el("img", { class: "thumb", src, alt: "", loading: "lazy" })
            : el("div", { class: "thumb video" }, m.kind === "video" ? "▶ video" : m.kind),
        el("div", { class: "media-facts" }, mediaLabel(m)),
        el("code", { class: "small media-url" }, m.url),
        el("button", { class: "danger small delete", type: "button", onclick: async (ev) => {
          ev.target.disabled = true;
          try {
            await call("/dashboard/api/media/" + encodeURIComponent(m.id) + "/delete?mode=" + mode, { method: "POST" });
          } catch (e) {
            show("media-error", e.message);
          }
          loadMedia();
        } }, "Delete"),
      );
    }));
    $("media-empty").hidden = list.length > 0;
  } catch (e) {
    show("media-error", e.message);
  }
}

function initMedia() {
  $("media-mode").addEventListener("change", loadMedia);
  $("media-refresh").addEventListener("click", loadMedia);
  $("media-file").addEventListener("change", async () => {
    const files = [...$("media-file").files];
    const mode = $("media-mode").value;
    for (const file of files) {
      const row = el("li", { class: "upload", "data-state": "uploading" },
        el("span", { class: "upload-name" }, file.name),
        el("progress", { max: 1, value: 0 }),
        el("span", { class: "upload-status" }, "uploading…"));
      $("uploads").prepend(row);
      await uploadFile(file, mode, row);
    }
    $("media-file").value = "";
    loadMedia();
  });
  loadMedia();
}

// The composer's media: the user's uploads in the composer's mode, one checkbox each.
async function loadComposeMedia() {
  const box = $("compose-uploads");
  const legend = box.querySelector("legend");
  try {
    const data = await call("/dashboard/api/media?limit=100&mode=" + $("compose-mode").value);
    const list = data.media || [];
    box.replaceChildren(legend, ...list.map((m) =>
      el("label", { class: "pick" },
        el("input", { type: "checkbox", name: "upload", value: m.url, "data-kind": m.kind, "data-media-id": m.id }),
        m.kind === "image" && sameOrigin(m.url) ? el("img", { class: "thumb small", src: sameOrigin(m.url), alt: "" }) : null,
        " " + mediaLabel(m))));
    box.hidden = list.length === 0;
  } catch (e) {
    show("compose-error", e.message);
  }
}

function initPosts() {
  const tabs = { history: $("tab-history"), scheduled: $("tab-scheduled") };
  for (const [name, b] of Object.entries(tabs)) {
    b.addEventListener("click", () => {
      postsTab = name;
      for (const [n, t] of Object.entries(tabs)) t.setAttribute("aria-selected", String(n === name));
      loadPosts();
    });
  }
  $("list-mode").addEventListener("change", loadPosts);
  $("compose-mode").addEventListener("change", () => {
    loadComposeAccounts();
    loadComposeMedia();
  });
  loadComposeAccounts();
  loadComposeMedia();
  // TikTok asks who may see the post (it has no default): the choice shows when TikTok is ticked.
  const tiktokBox = document.querySelector('input[name="platform"][value="tiktok"]');
  tiktokBox.addEventListener("change", () => { $("compose-tiktok").hidden = !tiktokBox.checked; });
  // Snapchat posts a Story unless told otherwise.
  const snapBox = document.querySelector('input[name="platform"][value="snapchat"]');
  snapBox.addEventListener("change", () => { $("compose-snapchat").hidden = !snapBox.checked; });
  $("refresh").addEventListener("click", loadPosts);
  $("composer").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    show("compose-error", "");
    show("compose-result", "");
    // A ticked account names its platform's target; other ticked platforms use their default.
    const accounts = [...document.querySelectorAll('input[name="account"]:checked')].map((i) => ({
      platform: i.dataset.platform,
      accountId: i.value,
    }));
    const platforms = [...document.querySelectorAll('input[name="platform"]:checked')]
      .map((i) => i.value)
      .filter((p) => !accounts.some((a) => a.platform === p));
    const content = { text: $("compose-text").value, platform: [...platforms, ...accounts] };
    const picked = [...document.querySelectorAll('input[name="upload"]:checked')];
    const media = [
      ...picked.map((i) => i.value),
      ...$("compose-media").value.split("\n").map((s) => s.trim()).filter(Boolean),
    ];
    if (media.length) content.mediaUrls = media;
    if ($("compose-media-type").value) content.mediaType = $("compose-media-type").value;
    else if (picked.some((i) => i.dataset.kind === "video")) content.mediaType = "video";
    const request = { post: { content } };
    const targetsTiktok = content.platform.some((p) => (p.platform || p) === "tiktok");
    const options = {};
    if (targetsTiktok && $("compose-tiktok-privacy").value) {
      options.tiktok = { privacyLevel: $("compose-tiktok-privacy").value };
    }
    const targetsSnapchat = content.platform.some((p) => (p.platform || p) === "snapchat");
    if (targetsSnapchat && $("compose-snapchat-type").value !== "story") {
      options.snapchat = { postType: $("compose-snapchat-type").value };
    }
    if (Object.keys(options).length) request.post.options = options;
    if ($("compose-when").value) {
      const at = new Date($("compose-when").value); // the browser's time zone
      if (isNaN(at)) return show("compose-error", "The publishing time is not a valid date.");
      request.scheduledTime = at.toISOString(); // sent as UTC
    }
    const mode = $("compose-mode").value;
    $("compose-submit").disabled = true;
    try {
      const r = await call("/dashboard/api/posts", { method: "POST", body: { mode, request } });
      show("compose-result", (r.scheduledTime ? "Scheduled" : "Accepted") + ": " + r.postSubmissionId);
      $("compose-text").value = "";
      $("list-mode").value = mode;
      loadPosts();
    } catch (e) {
      show("compose-error", e.message);
    } finally {
      $("compose-submit").disabled = false;
    }
  });
  loadPosts();
  // Targets change state as the engine works: keep the list fresh while the page is open.
  setInterval(() => { if (!document.hidden) loadPosts(); }, 3000);
}

// Accounts.
async function loadAccounts() {
  show("accounts-error", "");
  const mode = $("accounts-mode").value;
  try {
    const data = await call("/dashboard/api/accounts?mode=" + mode);
    const list = data.accounts || [];
    $("accounts").replaceChildren(...list.map((a) =>
      el("li", { class: "account" + (a.status === "needs_reconnect" ? " attention" : ""), "data-status": a.status },
        el("span", { class: "platform" }, a.platform),
        el("span", {}, a.displayName || a.accountId),
        a.username ? el("span", { class: "muted" }, "@" + a.username) : null,
        badge(a.status),
        a.isDefault ? el("span", { class: "note" }, "default") : null,
        a.simulated || a.isDefault ? null : el("button", { class: "small", type: "button", "data-action": "make-default", onclick: async () => {
          try {
            await call("/dashboard/api/accounts/" + encodeURIComponent(a.id) + "/default", { method: "POST" });
          } catch (e) {
            show("accounts-error", e.message);
          }
          loadAccounts();
        } }, "Make default"),
        a.simulated ? null : el("button", { class: "danger small", type: "button", onclick: async () => {
          if (!confirm("Disconnect " + (a.displayName || a.accountId) + "? Posts waiting for it will fail.")) return;
          try {
            await call("/dashboard/api/accounts/" + encodeURIComponent(a.id) + "/disconnect", { method: "POST" });
          } catch (e) {
            show("accounts-error", e.message);
          }
          loadAccounts();
        } }, "Disconnect"),
      )));
    $("accounts-empty").hidden = list.length > 0;
  } catch (e) {
    show("accounts-error", e.message);
  }
}

// Connecting: OAuth platforms send the browser to the platform and back to this page
// (?status=connected|error); credential platforms (Bluesky) connect in one call.
async function initConnect() {
  const back = new URLSearchParams(location.search);
  if (back.get("status") === "connected") {
    show("connect-result", "Connected the " + back.get("platform") + " account " + back.get("accountId") + ".");
  } else if (back.get("status") === "error") {
    show("accounts-error", back.get("message") || "The account was not connected.");
  }
  if (back.has("status")) history.replaceState(null, "", location.pathname);
  let platforms = [];
  try {
    platforms = (await call("/dashboard/api/connectable")).platforms || [];
  } catch (e) {
    show("connect-error", e.message);
  }
  $("connect-none").hidden = platforms.length > 0;
  $("connect-form").hidden = platforms.length === 0;
  const select = $("connect-platform");
  select.replaceChildren(...platforms.map((p) => el("option", { value: p.platform, "data-method": p.method }, p.name)));
  const fields = () => {
    const p = select.value;
    $("connect-instance-row").hidden = p !== "mastodon";
    $("connect-credentials").hidden = p !== "bluesky";
  };
  select.addEventListener("change", fields);
  fields();
  $("connect-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    show("connect-error", "");
    const platform = select.value;
    const body = { platform };
    if (platform === "mastodon" && $("connect-instance").value) body.instance = $("connect-instance").value;
    if (platform === "bluesky") {
      body.identifier = $("connect-identifier").value;
      body.appPassword = $("connect-password").value;
    }
    $("connect-submit").disabled = true;
    try {
      const r = await call("/dashboard/api/accounts/connect", { method: "POST", body });
      if (r.authorizationUrl) {
        location.assign(r.authorizationUrl);
        return;
      }
      $("connect-password").value = "";
      show("connect-result", "Connected the " + platform + " account " + (r.account.username || r.account.accountId) + ".");
      $("accounts-mode").value = "live";
      loadAccounts();
    } catch (e) {
      show("connect-error", e.message);
    } finally {
      $("connect-submit").disabled = false;
    }
  });
}

function initAccounts() {
  $("accounts-mode").addEventListener("change", loadAccounts);
  loadAccounts();
  initConnect();
}

// Subscription.
async function initSubscription() {
  const dl = $("subscription");
  try {
    const o = await call("/dashboard/api/overview");
    const s = o.subscription;
    dl.replaceChildren(
      el("dt", {}, "Status"), el("dd", {}, s ? badge(s.status) : "none"),
      el("dt", {}, "Current period ends"), el("dd", {}, s ? when(s.currentPeriodEnd) : "—"),
      el("dt", {}, "API access"), el("dd", {}, o.hasAccess ? "yes" : "no: publishing with API keys is refused until the subscription is active"),
    );
  } catch (e) {
    dl.replaceChildren(el("dd", { class: "error" }, e.message));
  }
}

// ---- Settings > Sessions (begin) ----
// The user's dashboard sessions: sign one out, or all of them (this one included, which
// ends on the sign-in page).
function initSessions() {
  const body = document.querySelector("#sessions tbody");
  const toLogin = () => location.assign("/login");
  // Whether the session is gone (a 401: this one had been ended already).
  async function revoke(path) {
    show("sessions-error", "");
    try {
      await call(path, { method: "POST" });
      return true;
    } catch (e) {
      if (e.status === 401) return true;
      show("sessions-error", e.message);
      return false;
    }
  }
  async function load() {
    show("sessions-error", "");
    try {
      const list = (await call("/dashboard/api/sessions")).sessions || [];
      body.replaceChildren(...list.map((s) =>
        el("tr", { "data-session-id": s.id, class: s.current ? "current" : null },
          el("td", {}, el("span", { title: s.userAgent || "" }, s.device),
            s.current ? el("span", { class: "badge s-current" }, "this session") : null),
          el("td", {}, s.ip || "—"),
          el("td", {}, when(s.createdAt)),
          el("td", {}, when(s.lastSeenAt)),
          el("td", {}, el("button", { class: "danger small revoke", type: "button", onclick: async (ev) => {
            ev.target.disabled = true;
            const gone = await revoke("/dashboard/api/sessions/" + encodeURIComponent(s.id) + "/revoke");
            if (gone && s.current) return toLogin();
            load();
          } }, "Sign out")),
        )));
    } catch (e) {
      if (e.status === 401) return toLogin();
      show("sessions-error", e.message);
    }
  }
  $("sessions-revoke-all").addEventListener("click", async () => {
    $("sessions-revoke-all").disabled = true;
    if (await revoke("/dashboard/api/sessions/revoke-all")) return toLogin();
    $("sessions-revoke-all").disabled = false;
  });
  load();
}
// ---- Settings > Sessions (end) ----

document.addEventListener("DOMContentLoaded", () => {
  initSignOut();
  const init = {
    login: initLogin,
    "api-keys": initKeys,
    audit: initAudit,
    posts: initPosts,
    media: initMedia,
    accounts: initAccounts,
    subscription: initSubscription,
    sessions: initSessions,
  }[document.body.dataset.page];
  if (init) init();
});
