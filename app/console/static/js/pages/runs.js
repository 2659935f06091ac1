// The runs page: the account's runs, newest first, filtered by space, browser, status and time (the
// filters live in the hash, e.g. #/runs?status=ended&space=<id>, so a filtered list can be linked), each
// with its duration, pages visited, requests, errors and a thumbnail of its last recorded frame.
//
// Public API only: GET /v1/runs (pages of 50, `nextCursor`; `stats` counts what the run's browser did),
// GET /v1/runs/{id}/thumbnail (the last frame, fetched with the key and shown as a blob, only for rows on
// screen), GET /v1/spaces and GET /v1/browsers for the filters and the browsers' names.
import * as api from "../api.js";
import { clear, duration, el, notice, pill, problem, when } from "../util.js";

const PAGE = 50;
const STATUSES = ["active", "starting", "stopping", "ended", "failed"];

function hashWith(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const text = q.toString();
  return `#/runs${text ? `?${text}` : ""}`;
}

// A datetime-local value (the user's time) <-> an ISO instant for the API.
function toLocalInput(iso) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function fromLocalInput(value) {
  if (!value) return "";
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

function runDuration(run) {
  if (!run.startedAt) return null;
  const end = run.endedAt ? Date.parse(run.endedAt) : Date.now();
  return end - Date.parse(run.startedAt);
}

export default async function render(root, params) {
  const controller = new AbortController();
  const { signal } = controller;
  const blobs = [];
  const filters = {
    space: params.space || "",
    browser: params.browser || "",
    status: params.status || "",
    from: params.from || "",
    to: params.to || "",
  };
  const names = new Map(); // browser id -> name
  const spaces = new Map(); // space id -> name

  // --- the filters ---
  const spaceSelect = el("select", { id: "runs-space", "aria-label": "Space" }, el("option", { value: "" }, "All spaces"));
  const browserSelect = el("select", { id: "runs-browser", "aria-label": "Browser" }, el("option", { value: "" }, "All browsers"));
  const statusSelect = el(
    "select",
    { id: "runs-status", "aria-label": "Status" },
    el("option", { value: "" }, "Any status"),
    STATUSES.map((s) => el("option", { value: s }, s)),
  );
  statusSelect.value = filters.status;
  const fromInput = el("input", { id: "runs-from", type: "datetime-local", "aria-label": "From", value: filters.from ? toLocalInput(filters.from) : "" });
  const toInput = el("input", { id: "runs-to", type: "datetime-local", "aria-label": "To", value: filters.to ? toLocalInput(filters.to) : "" });
  // Options the server has not listed (yet) still show the chosen filter.
  for (const [select, value] of [[spaceSelect, filters.space], [browserSelect, filters.browser]]) {
    if (value) {
      select.append(el("option", { value }, value));
      select.value = value;
    }
  }
  const apply = () => {
    location.hash = hashWith({
      space: spaceSelect.value,
      browser: browserSelect.value,
      status: statusSelect.value,
      from: fromLocalInput(fromInput.value),
      to: fromLocalInput(toInput.value),
    });
  };
  for (const input of [spaceSelect, browserSelect, statusSelect, fromInput, toInput]) input.addEventListener("change", apply);
  const reset = el("button", { type: "button", onclick: () => { location.hash = "#/runs"; } }, "Clear filters");
  reset.hidden = !Object.values(filters).some(Boolean);

  const count = el("span", { class: "muted small runs-count" });
  const body = el("tbody");
  const table = el(
    "table",
    { class: "list runs-table" },
    el(
      "thead",
      {},
      el("tr", {}, ["", "Run", "Status", "Started", "Duration", "Pages", "Requests", "Errors", "Browser", "Space"].map((h) => el("th", {}, h))),
    ),
    body,
  );
  const more = el("button", { type: "button", class: "runs-more" }, "Load more");
  more.hidden = true;
  const status = el("div", { class: "runs-status" });
  root.append(
    el("div", { class: "runs-head" }, el("h1", {}, "Runs"), count),
    el("div", { class: "toolbar runs-filters" }, spaceSelect, browserSelect, statusSelect,
      el("label", { class: "small muted" }, "From ", fromInput), el("label", { class: "small muted" }, "to ", toInput), reset),
    status,
    table,
    el("div", { class: "runs-foot" }, more),
  );

  // --- thumbnails: fetched only for rows on screen, a few at a time ---
  const queue = [];
  let loadingThumbs = 0;
  const pump = () => {
    while (loadingThumbs < 4 && queue.length) {
      const [img, runId] = queue.shift();
      loadingThumbs += 1;
      api.raw(`/v1/runs/${encodeURIComponent(runId)}/thumbnail`, { signal, accept: "image/jpeg" })
        .then((r) => r.blob())
        .then((blob) => {
          const url = URL.createObjectURL(blob);
          blobs.push(url);
          img.src = url;
          img.classList.add("loaded");
        })
        .catch(() => { img.classList.add("none"); })
        .finally(() => { loadingThumbs -= 1; pump(); });
    }
  };
  const seen = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      seen.unobserve(entry.target);
      queue.push([entry.target, entry.target.dataset.runId]);
    }
    pump();
  }, { rootMargin: "200px" });

  const rows = new Map(); // run id -> its row's cells that change
  function row(run) {
    const stats = run.stats || {};
    const thumb = el("img", { class: "runs-thumb", alt: "", width: 96, height: 54, dataset: { runId: run.id } });
    if (stats.lastFrameAtMs !== null && stats.lastFrameAtMs !== undefined) seen.observe(thumb);
    else thumb.classList.add("none");
    const browserCell = el("td", { class: "runs-browser" }, names.get(run.resourceId) || el("span", { class: "mono small" }, run.resourceId.slice(0, 8)));
    const errors = stats.errors || 0;
    const tr = el(
      "tr",
      { class: "clickable", dataset: { runId: run.id, status: run.status }, onclick: () => { location.hash = `#/runs/${encodeURIComponent(run.id)}`; } },
      el("td", { class: "runs-thumb-cell" }, thumb),
      el("td", {}, el("a", { href: `#/runs/${encodeURIComponent(run.id)}`, class: "mono small runs-id" }, run.id.slice(0, 13)),
        run.endReason ? el("div", { class: "muted small" }, run.endReason) : null),
      el("td", {}, pill(run.status)),
      el("td", { class: "small" }, when(run.startedAt || run.createdAt)),
      el("td", { class: "num" }, duration(runDuration(run)), run.endedAt ? "" : el("span", { class: "muted small" }, " so far")),
      el("td", { class: "num runs-pages" }, String(stats.pagesVisited ?? "—")),
      el("td", { class: "num runs-requests" }, String(stats.requests ?? "—")),
      el("td", { class: `num runs-errors${errors ? " bad" : ""}` }, String(stats.errors ?? "—")),
      browserCell,
      el("td", { class: "small runs-space", dataset: { spaceId: run.spaceId } }, spaces.get(run.spaceId) || ""),
    );
    rows.set(run.id, { browserCell, run });
    return tr;
  }

  let cursor = null;
  let shown = 0;
  let loading = false;
  async function load() {
    if (loading) return;
    loading = true;
    more.disabled = true;
    more.textContent = "Loading…";
    try {
      const query = { limit: PAGE, order: "desc", cursor, spaceId: filters.space, resourceId: filters.browser, status: filters.status, from: filters.from, to: filters.to };
      const page = await api.get("/v1/runs", query, { signal });
      const fragment = document.createDocumentFragment();
      for (const run of page.data || []) fragment.append(row(run));
      body.append(fragment);
      shown += (page.data || []).length;
      cursor = page.hasMore ? page.nextCursor : null;
      more.hidden = !cursor;
      count.textContent = `${shown}${cursor ? "+" : ""} run${shown === 1 ? "" : "s"}`;
      if (!shown) status.replaceChildren(notice(Object.values(filters).some(Boolean) ? "No run matches these filters." : "No runs yet. Start a browser and its run appears here.", "info"));
    } catch (error) {
      if (error.name === "AbortError") return;
      status.replaceChildren(notice(`The runs could not be listed: ${problem(error)}`));
    } finally {
      loading = false;
      more.disabled = false;
      more.textContent = "Load more";
    }
  }
  more.addEventListener("click", load);
  // Infinite scroll: the next page comes when "Load more" scrolls into view.
  const bottom = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && cursor && !loading) load();
  });
  bottom.observe(more);

  await load();
  if (!table.isConnected) { // another page took the root while the first page loaded
    controller.abort();
    seen.disconnect();
    bottom.disconnect();
    return () => {};
  }
  root.dataset.ready = "1";
  performance.mark("console-ready");

  // Names for the filters and the rows, after the first page is drawn.
  api.all("/v1/spaces", {}, { signal, max: 500 }).then((list) => {
    for (const s of list) {
      spaces.set(s.id, s.name);
      if (s.id !== filters.space) spaceSelect.append(el("option", { value: s.id }, s.name));
      else spaceSelect.querySelector(`option[value="${CSS.escape(s.id)}"]`).textContent = s.name;
    }
    for (const cell of body.querySelectorAll("td.runs-space")) cell.textContent = spaces.get(cell.dataset.spaceId) || "";
  }, () => {});
  api.all("/v1/browsers", {}, { signal, max: 1000 }).then((list) => {
    for (const b of list) {
      names.set(b.id, b.name);
      if (b.id !== filters.browser) browserSelect.append(el("option", { value: b.id }, b.name));
      else browserSelect.querySelector(`option[value="${CSS.escape(b.id)}"]`).textContent = b.name;
    }
    for (const { browserCell, run } of rows.values()) if (names.has(run.resourceId)) clear(browserCell).append(names.get(run.resourceId));
  }, () => {});

  return () => {
    controller.abort();
    seen.disconnect();
    bottom.disconnect();
    for (const url of blobs) URL.revokeObjectURL(url);
  };
}
