// Small helpers shared by the console's pages. Everything from the server is set as text or as an
// element property, never as markup.

// el("div", {class: "x", onclick: f, dataset: {id}}, child, "text", ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "style" && typeof value === "object") Object.assign(node.style, value);
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

// 1.2 s, 3 min 4 s, 2 h 5 min
export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.floor(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function since(iso, now = Date.now()) {
  return iso ? duration(now - Date.parse(iso)) : "—";
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

// A status as a coloured pill.
export function pill(status) {
  return el("span", { class: `pill status-${String(status || "unknown").replace(/[^a-z_]/gi, "")}` }, status || "unknown");
}

// The server's own words for a failed call: "Its message (code)".
export function problem(error) {
  if (!error) return "";
  const code = error.code ? ` (${error.code})` : "";
  return `${error.message || String(error)}${code}`;
}

export function notice(text, kind = "error") {
  return el("p", { class: kind, role: kind === "error" ? "alert" : "status" }, text);
}

export async function copy(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

// Who holds a browser's controller lock (`agent`, `human`, `none`), in the same words on every page.
const HOLDER_WORDS = {
  agent: "a script (CDP client, task or API call)",
  human: "a person",
  none: "nobody",
};
export function holderWords(holder) {
  return HOLDER_WORDS[holder] || String(holder || "nobody");
}
