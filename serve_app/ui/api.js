// The public REST API from the browser: the token and the session key live in this tab's sessionStorage only
// (never in the page's address, links or history); every error is shown as the API words it.

const ROOT = new URL("..", document.baseURI).pathname; // the server's root: /ui/ sits right under it

export const store = {
  get token() { return sessionStorage.getItem("tm.token") || ""; },
  set token(v) { v ? sessionStorage.setItem("tm.token", v) : sessionStorage.removeItem("tm.token"); },
  get key() { return sessionStorage.getItem("tm.key") || ""; },
  set key(v) { v ? sessionStorage.setItem("tm.key", v) : sessionStorage.removeItem("tm.key"); },
};

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export async function api(method, path, { json, form, blob, key } = {}) {
  const headers = {};
  if (store.token) headers.Authorization = `Bearer ${store.token}`;
  const sessionKey = key ?? store.key;
  if (sessionKey) headers["X-Session-Key"] = sessionKey;
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form) body = form;
  const response = await fetch(ROOT + path.replace(/^\//, ""), { method, headers, body, cache: "no-store" });
  if (!response.ok) {
    let detail;
    try { detail = await response.json(); } catch { detail = { message: `${response.status} ${response.statusText}` }; }
    throw new ApiError(response.status, detail);
  }
  return blob ? response : response.json();
}

// A keyed route's path: the key goes where the API takes it, never into the page's own URL.
export const keyed = (route, query = "") => `${route}/${encodeURIComponent(store.key)}${query}`;

export function showError(id, error) {
  const el = document.getElementById(id);
  if (!error) { el.textContent = ""; return; }
  const body = error.body || {};
  const parts = [error.status ? `${error.status}: ${error.message}` : String(error.message || error)];
  if (body.hint) parts.push(`Hint: ${body.hint}`);
  el.textContent = parts.join(" ");
}

// Run an action for a control: its error goes next to it, cleared when it succeeds.
export async function act(errorId, action) {
  showError(errorId, null);
  try { return await action(); } catch (error) { showError(errorId, error); return undefined; }
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value; else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

export function table(caption, headers, rows) {
  const t = el("table", {}, el("caption", { text: caption }));
  t.append(el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col", text: h })))));
  const body = el("tbody");
  for (const row of rows) body.append(el("tr", {}, ...row.map((cell) => (cell instanceof Node ? el("td", {}, cell)
    : el("td", { text: fmt(cell) })))));
  t.append(body);
  return el("div", { class: "scroll" }, t);
}

export function facts(id, pairs) {
  const dl = document.getElementById(id);
  dl.replaceChildren();
  for (const [name, value] of pairs) {
    if (value === undefined || value === null || value === "") continue;
    dl.append(el("dt", { text: name }), el("dd", { text: fmt(value) }));
  }
}

export function fmt(value) {
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(4);
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

export function duration(seconds) {
  if (seconds === undefined || seconds === null) return "";
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
    : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}
