// The public API as the console calls it: the current generation (BCTRL-Version 2026-10-03), the key from
// this tab's session storage in the Authorization header (never in a URL), errors as ApiError with the
// envelope's code and message, so a page can show the server's own words.
export const VERSION = "2026-10-03";
const STORE = "bctrl.console.key";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || "";
    this.details = details || {};
  }
}

export function key() {
  return sessionStorage.getItem(STORE);
}

export function remember(value) {
  sessionStorage.setItem(STORE, value);
}

export function forget() {
  sessionStorage.removeItem(STORE);
}

function url(path, query) {
  const u = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => u.searchParams.append(name, v));
    else u.searchParams.set(name, value);
  }
  return u;
}

function headers(extra) {
  const h = { "BCTRL-Version": VERSION, Accept: "application/json", ...(extra || {}) };
  const k = key();
  if (k) h.Authorization = `Bearer ${k}`;
  return h;
}

async function failure(response) {
  let body = {};
  try { body = await response.json(); } catch { /* not JSON: the status says it */ }
  const error = body.error || {};
  const failed = new ApiError(response.status, error.code, error.message || body.detail || response.statusText, error.details);
  // A key revoked or expired while the console is open: the app shows the sign-in form with the reason.
  if (response.status === 401) window.dispatchEvent(new CustomEvent("console:unauthorized", { detail: failed }));
  return failed;
}

// One call. `query` becomes the query string; `body` is sent as JSON. Answers the parsed JSON (or null
// for an empty answer); throws ApiError for any status >= 400.
export async function request(method, path, { query, body, signal, headers: extra } = {}) {
  const init = { method, headers: headers(extra), signal };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url(path, query), init);
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, query, options) => request("GET", path, { ...options, query });
export const post = (path, body, options) => request("POST", path, { ...options, body });
export const patch = (path, body, options) => request("PATCH", path, { ...options, body });
export const del = (path, options) => request("DELETE", path, options);

// A binary or text body (a recording, a file, /metrics) with the key; answers the Response.
export async function raw(path, { query, signal, accept } = {}) {
  const response = await fetch(url(path, query), { headers: headers(accept ? { Accept: accept } : {}), signal });
  if (!response.ok) throw await failure(response);
  return response;
}

// Every page of a list (`data`, `hasMore`, `nextCursor`, sent back as `cursor`): at most `max` items.
export async function all(path, query = {}, { max = 1000, signal } = {}) {
  const items = [];
  let q = { limit: 100, ...query };
  for (;;) {
    const page = await get(path, q, { signal });
    items.push(...(page.data || []));
    if (!page.hasMore || !page.nextCursor || items.length >= max) break;
    q = { ...q, cursor: page.nextCursor };
  }
  return items.slice(0, max);
}

// Server-sent events over fetch (EventSource cannot send the Authorization header). Calls
// onEvent({event, data, id}) for each frame, `data` parsed as JSON when it is JSON; resolves when the
// stream ends, rejects with ApiError on a refusal. Abort with `signal`.
export async function stream(path, { query, signal, onEvent }) {
  const response = await fetch(url(path, query), { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      const frame = { event: "message", data: "", id: null };
      const lines = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith(":")) continue;
        const at = line.indexOf(":");
        const field = at < 0 ? line : line.slice(0, at);
        const text = at < 0 ? "" : line.slice(at + 1).replace(/^ /, "");
        if (field === "event") frame.event = text;
        else if (field === "id") frame.id = text;
        else if (field === "data") lines.push(text);
      }
      if (!lines.length) continue;
      frame.data = lines.join("\n");
      try { frame.data = JSON.parse(frame.data); } catch { /* plain text */ }
      onEvent(frame);
    }
  }
}
