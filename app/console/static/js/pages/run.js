// A run's page: the replay beside a timeline that puts the run's pages, network requests (a waterfall with
// status and timing), console messages and errors, CDP command counts, agent steps, human take-overs and
// control changes on one time axis. Clicking an item (or the overview) seeks the replay to that moment.
// Below: the trace's spans as a tree, and the run's files with downloads. While the run goes on, its
// events arrive live and the replay shows the newest frame; when its browser stops or dies, the page
// says so and switches to the recording once it is made.
//
// Public API only: GET /v1/runs/{id}; GET /v1/events?run=&order=asc in pages of 200 (the timeline is
// drawn after the first page and fills in as the others come); GET /v1/runs/{id}/stream (SSE, from the
// last event loaded); GET /v1/runs/{id}/recordings (the video through its signed downloadUrl), or a
// replay link (POST /v1/runs/{id}/recording) where the server made frames only; GET /v1/runs/{id}/thumbnail
// while the run is active; GET /v1/runs/{id}/trace; GET /v1/files?runId= and their content.
//
// A run may have tens of thousands of events: the overview is one canvas, and the list below it is
// virtual (only the rows in view exist as elements).
import * as api from "../api.js";
import { clear, duration, el, notice, pill, problem, when } from "../util.js";

const EVENT_PAGE = 200;
const ROW = 26;
const LANES = [
  ["pages", "Pages", "#2f6fed"],
  ["network", "Network", "#0e9f6e"],
  ["console", "Console", "#b7791f"],
  ["cdp", "CDP", "#7c3aed"],
  ["agent", "Agent", "#db2777"],
  ["control", "Control", "#0891b2"],
  ["other", "Other", "#98a2b3"],
];
const LANE = Object.fromEntries(LANES.map(([key, label, colour], i) => [key, { label, colour, index: i }]));
const ERROR = "#c8332b";
const WARN = "#d69e2e";

const offset = (ms) => (ms < 0 ? "−" : "+") + (Math.abs(ms) < 60000 ? `${(Math.abs(ms) / 1000).toFixed(2)} s` : duration(Math.abs(ms)));
const short = (text, n = 160) => (text && text.length > n ? `${text.slice(0, n)}…` : text || "");

// One event as timeline items: network events pair up into one request item.
class Timeline {
  constructor(startMs) {
    this.t0 = startMs;
    this.items = [];
    this.requests = new Map();
    this.ids = new Set();
    this.counts = { errors: 0, cdp: 0 };
    this.twins = new Map(); // "open|page", "close|page", "nav|page|url" -> the item both reports share
    this.dirty = false;
  }

  add(event) {
    if (this.ids.has(event.id)) return;
    this.ids.add(event.id);
    const t = Date.parse(event.time) - this.t0;
    const d = event.data || {};
    const type = event.type;
    const push = (lane, text, extra = {}) => {
      const item = { t, lane, text, type, id: event.id, severity: event.outcome === "failed" ? "error" : "", ...extra };
      if (item.severity === "error") this.counts.errors += 1;
      this.items.push(item);
      return item;
    };
    this.dirty = true;
    if (event.category === "network" && type.startsWith("network.") && d.requestId !== undefined) {
      const key = `${event.pageId || ""}|${d.requestId}`;
      if (type === "network.request") {
        const open = this.requests.get(key);
        if (open && open.end === null) return; // a redirect: the chain stays one row
        const item = push("network", `${d.method || ""} ${short(d.url, 300)}`, { url: d.url, method: d.method, end: null, status: null, severity: "" });
        this.requests.set(key, item);
        return;
      }
      let item = this.requests.get(key);
      if (!item || item.end !== null) {
        item = push("network", `${d.method || ""} ${short(d.url, 300)}`, { url: d.url, method: d.method, end: null, status: null });
        item.t = t - (d.durationMs || 0);
      }
      item.end = t;
      item.status = d.status ?? null;
      item.error = type === "network.failed" ? d.errorText || "failed" : null;
      item.ms = d.durationMs;
      if (type === "network.failed" || (d.status && d.status >= 400)) {
        if (item.severity !== "error") this.counts.errors += 1;
        item.severity = "error";
      }
      this.requests.delete(key);
      return;
    }
    // A page opened, navigated or closed through the API is reported twice: by the browser (page.*) and
    // by the API call (pages.*). One row says it, with the API's URL when the browser's was blank.
    const bare = (url) => String(url || "").replace(/#.*$/, "").replace(/\/$/, "");
    const page = event.pageId || d.targetId || "";
    const twin = (key, text, byApi) => {
      const seen = page ? this.twins.get(key) : null;
      if (seen && Math.abs(seen.t - t) < 15000) {
        if (byApi && !seen.byApi) { seen.text = `${text} (through the API)`; seen.byApi = true; }
        return;
      }
      const item = push("pages", byApi ? `${text} (through the API)` : text, { url: d.url, byApi });
      this.twins.set(key, item);
    };
    if (type === "page.created" || type === "pages.opened") return void twin(`open|${page}`, `Page opened ${short(d.url)}`, type === "pages.opened");
    if (type === "page.closed" || type === "pages.closed") return void twin(`close|${page}`, `Page closed ${short(d.url)}`, type === "pages.closed");
    if (type === "page.navigated" || (type === "pages.navigated" && !d.error)) return void twin(`nav|${page}|${bare(d.url)}`, `Navigated to ${short(d.url, 300)}`, type === "pages.navigated");
    if (type === "pages.navigated") return void push("pages", `Navigation to ${short(d.url, 300)} failed: ${d.error}`, { severity: "error" });
    if (type === "page.load") return void push("pages", `Loaded ${short(d.url, 300)}`);
    if (type === "pages.activated") return void push("pages", "Page brought to the front (through the API)");
    if (type.startsWith("pages.")) return void push("pages", `${type} (through the API)`);
    if (type.startsWith("dialog.")) return void push("pages", `${type} ${short(d.message || d.url || "")}`);
    // What a client set up (where downloads go) is configuration, not something a page did.
    if (type === "download.behavior") return void push("other", `Downloads: ${d.behavior || "default"}${d.downloadPath ? ` to ${short(d.downloadPath, 120)}` : ""}`);
    if (type.startsWith("download.")) return void push("pages", `${type} ${short(d.filename || d.suggestedFilename || d.url || d.name || "")}`);
    if (type === "console.message") {
      const severity = d.level === "error" ? "error" : d.level === "warning" ? "warn" : "";
      if (severity === "error") this.counts.errors += 1;
      return void push("console", `console.${d.level || "log"}: ${short(d.text, 400)}`, { severity });
    }
    if (type === "page.error") return void push("console", `Uncaught: ${short(d.message, 400)}`, { severity: "error" });
    if (type === "connection.command") {
      const total = d.total || 0;
      this.counts.cdp += total;
      const top = (d.methods || []).slice().sort((a, b) => (b.count || 0) - (a.count || 0)).slice(0, 3)
        .map((m) => `${m.method} ×${m.count}`).join(", ");
      return void push("cdp", `${total} CDP command${total === 1 ? "" : "s"}${top ? `: ${top}` : ""}`, { count: total });
    }
    if (event.category === "connection") return void push("cdp", `${type}${d.clientName ? ` (${d.clientName})` : ""}`);
    if (type === "control.changed") {
      const who = d.actor === "human" ? "a person" : d.actor || "";
      return void push("control", `Control → ${d.holder || d.kind || "none"}${who ? ` (by ${who})` : ""}${d.reason ? `: ${d.reason}` : ""}`, { severity: d.actor === "human" ? "human" : "" });
    }
    if (event.category === "human" || type.startsWith("live.")) {
      const words = { "live.takeover": "A person took control", "live.handback": "The person gave control back", "live.opened": "A live view opened", "live.closed": "A live view closed" };
      if (type === "live.input") {
        const what = d.action === "type" ? `typed ${d.chars || 0} characters` : d.action === "click" ? `clicked (${d.button || "left"})` : d.action || "input";
        return void push("control", `A person ${what} in the live view`, { severity: "human" });
      }
      return void push("control", words[type] || type, { severity: type === "live.takeover" ? "human" : "" });
    }
    if (event.category === "agent") return void push("agent", `${type}${d.name || d.tool || d.action ? `: ${d.name || d.tool || d.action}` : ""}${d.instruction ? ` ${short(d.instruction, 120)}` : ""}`);
    if (event.category === "control") return void push("control", type);
    push("other", `${type}${d.reason ? `: ${d.reason}` : d.message ? `: ${short(d.message)}` : ""}`);
  }

  sorted() {
    if (this.dirty) {
      this.items.sort((a, b) => a.t - b.t);
      this.dirty = false;
    }
    return this.items;
  }
}

export default async function render(root, params) {
  const controller = new AbortController();
  const { signal } = controller;
  const timers = new Set();
  const blobs = [];
  const later = (fn, ms) => { const id = setTimeout(() => { timers.delete(id); fn(); }, ms); timers.add(id); };
  const runPath = `/v1/runs/${encodeURIComponent(params.runId)}`;

  // A page shown in place of this one while the run was read (the router cleared the root) keeps it.
  const placeholder = el("p", { class: "muted" }, "Loading the run…");
  root.append(placeholder);
  let run;
  try {
    run = await api.get(runPath, {}, { signal });
  } catch (error) {
    if (!placeholder.isConnected || error.name === "AbortError" || error.status === 401) throw error;
    // A wrong or deleted run id: the server's words in place of the placeholder, and the way back.
    placeholder.replaceWith(notice(problem(error)), el("a", { href: "#/runs" }, "← Runs"));
    return () => controller.abort();
  }
  if (!placeholder.isConnected) {
    controller.abort();
    return () => {};
  }
  placeholder.remove();
  const t0 = Date.parse(run.startedAt || run.createdAt);
  const timeline = new Timeline(t0);
  const spanOf = () => Math.max(1000, (run.endedAt ? Date.parse(run.endedAt) : Date.now()) - t0, ...timeline.items.map((i) => i.end ?? i.t));

  // --- header ---
  const statusBox = el("span", {}, pill(run.status));
  const facts = el("div", { class: "run-facts muted small" });
  const banner = el("div", { class: "run-banner", role: "status" });
  let endedHere = false; // the run ended while this page was open: its banner says so
  const browserPath = `#/browsers/${encodeURIComponent(run.resourceId)}/live`;
  const liveLink = el("a", { class: "button", href: browserPath }, "Open live view");
  let browserName = null; // from GET /v1/browsers/{id}; the id's start until it comes (or if it is gone)
  function drawFacts() {
    clear(statusBox).append(pill(run.status));
    const s = run.stats || {};
    clear(facts).append(
      `Browser `,
      el("a", { href: browserPath, class: `run-browser${browserName ? "" : " mono"}`, title: run.resourceId }, browserName || run.resourceId.slice(0, 13)),
      ` (`, el("a", { href: `#/runs?browser=${encodeURIComponent(run.resourceId)}` }, "its runs"), `)`,
      ` · started ${when(run.startedAt)} · ${duration((run.endedAt ? Date.parse(run.endedAt) : Date.now()) - t0)}${run.endedAt ? "" : " so far"}`,
      ` · ${s.pagesVisited ?? 0} pages · ${s.requests ?? 0} requests · ${s.errors ?? timeline.counts.errors} errors · ${timeline.counts.cdp.toLocaleString()} CDP command${timeline.counts.cdp === 1 ? "" : "s"}`,
      run.endReason ? ` · ended: ${run.endReason}` : "",
    );
    liveLink.hidden = !["active", "starting"].includes(run.status);
    if (run.status === "failed" && !endedHere) {
      const why = (run.warnings || []).map((w) => w.message).filter(Boolean).join("; ");
      banner.replaceChildren(notice(`This run failed${run.endReason ? ` (${run.endReason})` : ""}${why ? `: ${why}` : ""}. Its browser is gone; what it recorded is below.`));
    }
  }
  root.append(
    el("div", { class: "run-head" },
      el("a", { href: "#/runs", class: "small" }, "← Runs"),
      el("h1", {}, "Run ", el("span", { class: "mono run-id" }, run.id)), statusBox, el("span", { class: "spacer" }), liveLink),
    facts,
    banner,
  );

  // --- the replay ---
  const replayBox = el("div", { class: "run-replay panel" });
  const replayNote = el("div", { class: "run-replay-note muted small" });
  const replay = { mode: "none", seek: () => false, now: () => null, offsetMs: 0 };
  let liveTimer = null;

  function showLatestFrame() {
    replay.mode = "live";
    const img = el("img", { class: "run-frame", alt: "The browser's newest frame" });
    clear(replayBox).append(img, replayNote);
    replayNote.textContent = "Live: the browser's newest frame. The replay can be sought when the run has ended.";
    replay.seek = () => false;
    replay.now = () => Date.now() - t0;
    const tick = async () => {
      if (replay.mode !== "live") return;
      try {
        const blob = await (await api.raw(`${runPath}/thumbnail`, { signal, accept: "image/jpeg" })).blob();
        const url = URL.createObjectURL(blob);
        blobs.push(url);
        const old = img.src;
        img.src = url;
        if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      } catch (error) {
        if (error.name === "AbortError") return;
      }
      liveTimer = later(tick, 2000);
    };
    tick();
  }

  async function showRecording(attempt = 0) {
    let recording = null;
    try {
      recording = (await api.get(`${runPath}/recordings`, {}, { signal })).data?.[0] || null;
    } catch (error) {
      if (error.name === "AbortError") return;
      clear(replayBox).append(notice(`The recording could not be read: ${problem(error)}`));
      return;
    }
    if (!recording) {
      replay.mode = "none";
      clear(replayBox).append(el("div", { class: "run-empty muted" }, run.recording?.enabled === false ? "This run was not recorded." : "There is no recording for this run."));
      return;
    }
    if (["queued", "running"].includes(recording.status)) {
      clear(replayBox).append(el("div", { class: "run-empty muted" }, "The video is being made…"));
      if (attempt < 90) later(() => showRecording(attempt + 1), 2000);
      return;
    }
    if (recording.status === "succeeded" && recording.downloadUrl && (recording.contentType || "").startsWith("video/")) {
      const link = new URL(recording.downloadUrl, location.origin);
      const video = el("video", { class: "run-video", controls: true, preload: "auto", muted: true, playsInline: true });
      video.src = link.pathname + link.search; // same origin as the console, whatever the public URL says
      replay.mode = "video";
      replay.video = video;
      // The video starts at the first recorded frame; the recording's duration counts from the run's start.
      video.addEventListener("loadedmetadata", () => {
        if (Number.isFinite(video.duration) && recording.durationMs) replay.offsetMs = Math.max(0, recording.durationMs - video.duration * 1000);
        drawOverview();
      });
      let refreshed = 0;
      video.addEventListener("error", async () => {
        // The signed link lasts 5 minutes: a later range request may need a fresh one.
        if (refreshed++ > 3) return;
        const at = video.currentTime;
        try {
          const again = (await api.get(`${runPath}/recordings`, {}, { signal })).data?.[0];
          if (!again?.downloadUrl) return;
          const u = new URL(again.downloadUrl, location.origin);
          video.src = u.pathname + u.search;
          video.currentTime = at;
        } catch { /* the page says nothing more than the video element does */ }
      });
      video.addEventListener("timeupdate", () => drawOverview());
      replay.seek = (t) => {
        const seconds = Math.max(0, (t - replay.offsetMs) / 1000);
        video.currentTime = Number.isFinite(video.duration) ? Math.min(seconds, video.duration) : seconds;
        return true;
      };
      replay.now = () => video.currentTime * 1000 + replay.offsetMs;
      const download = el("a", { href: video.src, download: `run-${run.id}.webm`, class: "small" }, "Download video");
      clear(replayBox).append(video, el("div", { class: "run-replay-note muted small" }, `Recording ${duration(recording.durationMs)} · `, download));
      return;
    }
    // Frames only (no ffmpeg on the server), or a failed video: the replay page plays the frames.
    try {
      const link = await api.post(`${runPath}/recording`, {}, { signal });
      const url = new URL(link.url, location.origin);
      url.searchParams.set("activity", "0");
      const frame = el("iframe", { class: "run-iframe", src: url.pathname + url.search, title: "Replay" });
      replay.mode = "frames";
      replay.seek = (t) => {
        const player = frame.contentWindow && frame.contentWindow.__replay;
        if (!player || !player.loaded) return false;
        player.seek(t);
        return true;
      };
      replay.now = () => frame.contentWindow?.__replay?.t ?? null;
      const why = recording.status === "failed" ? `The video failed (${problem(recording.error)}); the frames are shown.` : "";
      clear(replayBox).append(frame, el("div", { class: "run-replay-note muted small" }, why));
    } catch (error) {
      if (error.name === "AbortError") return;
      clear(replayBox).append(notice(`The replay could not be opened: ${problem(error)}`));
    }
  }

  // --- the timeline ---
  const chips = el("div", { class: "run-chips", role: "toolbar" });
  let lane = "all";
  let search = "";
  const laneNames = [["all", "All"], ...LANES.map(([k, label]) => [k, label]), ["errors", "Errors"]];
  for (const [key, label] of laneNames) {
    chips.append(el("button", { type: "button", class: `chip${key === lane ? " on" : ""}`, dataset: { lane: key }, onclick: (e) => {
      lane = key;
      for (const b of chips.querySelectorAll(".chip")) b.classList.toggle("on", b === e.currentTarget);
      refilter();
    } }, label));
  }
  const find = el("input", { type: "search", class: "run-find", placeholder: "Filter by text", "aria-label": "Filter the timeline" });
  find.addEventListener("input", () => { search = find.value.toLowerCase(); refilter(); });
  const loadState = el("span", { class: "muted small run-load" });
  const overview = el("canvas", { class: "run-overview", height: LANES.length * 16 + 22 });
  const scroller = el("div", { class: "run-list", tabindex: "0" });
  const spacer = el("div", { class: "run-list-spacer" });
  const rowsBox = el("div", { class: "run-list-rows" });
  scroller.append(spacer, rowsBox);
  const seekNote = el("div", { class: "muted small run-seek-note" });

  let visible = [];
  let selected = null;
  function refilter() {
    const all = timeline.sorted();
    visible = all.filter((item) =>
      (lane === "all" || (lane === "errors" ? item.severity === "error" : item.lane === lane)) &&
      (!search || item.text.toLowerCase().includes(search)));
    spacer.style.height = `${visible.length * ROW}px`;
    drawRows();
    drawOverview();
  }

  function seekTo(item) {
    selected = item;
    const done = replay.seek(item.t);
    seekNote.textContent = done ? `Replay at ${offset(item.t)}: ${short(item.text, 90)}` : replay.mode === "live" ? "The run is still going: the replay can be sought when it has ended." : "No replay to seek.";
    drawRows();
    drawOverview();
  }

  function drawRows() {
    const top = scroller.scrollTop;
    const height = scroller.clientHeight || 480;
    const first = Math.max(0, Math.floor(top / ROW) - 5);
    const last = Math.min(visible.length, Math.ceil((top + height) / ROW) + 5);
    const total = spanOf();
    const nodes = [];
    for (let i = first; i < last; i++) {
      const item = visible[i];
      const info = LANE[item.lane];
      const row = el("div", {
        class: `run-row lane-${item.lane}${item.severity ? ` sev-${item.severity}` : ""}${item === selected ? " selected" : ""}`,
        dataset: { lane: item.lane, type: item.type, index: String(i) },
        title: item.text,
        onclick: () => seekTo(item),
      },
      el("span", { class: "run-row-t" }, offset(item.t)),
      el("span", { class: "run-row-lane" }, info.label),
      el("span", { class: "run-row-text" }, item.text));
      row.style.top = `${i * ROW}px`;
      if (item.lane === "network") {
        const fall = el("span", { class: "run-fall" });
        const bar = el("i", { class: item.end === null ? "open" : "" });
        const left = (item.t / total) * 100;
        const width = (((item.end ?? total) - item.t) / total) * 100;
        bar.style.left = `${Math.max(0, Math.min(100, left))}%`;
        bar.style.width = `${Math.max(0.4, Math.min(100 - left, width))}%`;
        fall.append(bar);
        row.append(
          el("span", { class: `run-row-status${item.status >= 400 || item.error ? " bad" : ""}` }, item.error ? "failed" : item.status === null ? "…" : String(item.status)),
          el("span", { class: "run-row-ms" }, item.ms !== undefined && item.ms !== null ? duration(item.ms) : ""),
          fall,
        );
      }
      nodes.push(row);
    }
    rowsBox.replaceChildren(...nodes);
  }
  scroller.addEventListener("scroll", () => requestAnimationFrame(drawRows), { passive: true });

  function drawOverview() {
    const ratio = window.devicePixelRatio || 1;
    const width = overview.clientWidth || 600;
    const height = LANES.length * 16 + 22;
    if (overview.width !== Math.round(width * ratio)) overview.width = Math.round(width * ratio);
    overview.height = Math.round(height * ratio);
    const g = overview.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);
    const labelW = 64;
    const plot = width - labelW - 8;
    const total = spanOf();
    const x = (t) => labelW + Math.max(0, Math.min(1, t / total)) * plot;
    g.font = "11px system-ui, sans-serif";
    g.textBaseline = "middle";
    LANES.forEach(([, label], i) => {
      g.fillStyle = i % 2 ? "#fafbfc" : "#f3f5f8";
      g.fillRect(labelW, i * 16, plot, 16);
      g.fillStyle = "#667085";
      g.fillText(label, 4, i * 16 + 8);
    });
    const items = timeline.sorted();
    for (const item of items) {
      const info = LANE[item.lane];
      const y = info.index * 16;
      g.fillStyle = item.severity === "error" ? ERROR : item.severity === "warn" ? WARN : info.colour;
      if (item.lane === "network") {
        const x0 = x(item.t);
        const x1 = Math.max(x0 + 1.5, x(item.end ?? total));
        g.globalAlpha = 0.55;
        g.fillRect(x0, y + 4, x1 - x0, 8);
        g.globalAlpha = 1;
      } else {
        g.fillRect(x(item.t) - 1, y + 2, item.severity === "error" ? 3 : 2, 12);
      }
    }
    // The axis.
    const axisY = LANES.length * 16;
    g.fillStyle = "#667085";
    const step = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600].map((s) => s * 1000).find((s) => total / s <= 8) || 7200000;
    for (let t = 0; t <= total; t += step) {
      g.fillRect(x(t), axisY, 1, 4);
      g.fillText(t === 0 ? "0" : offset(t), Math.min(x(t) + 2, width - 50), axisY + 13);
    }
    // Where the replay is, and the chosen item.
    const now = replay.now();
    if (now !== null && now !== undefined && replay.mode !== "live") {
      g.fillStyle = "#111827";
      g.fillRect(x(now), 0, 2, axisY);
    }
    if (selected) {
      g.strokeStyle = "#111827";
      g.strokeRect(x(selected.t) - 3, LANE[selected.lane].index * 16 + 1, 6, 14);
    }
  }
  overview.addEventListener("click", (e) => {
    const rect = overview.getBoundingClientRect();
    const labelW = 64;
    const total = spanOf();
    const t = ((e.clientX - rect.left - labelW) / (rect.width - labelW - 8)) * total;
    // The nearest shown item at or after that moment: the list scrolls to it and the replay seeks.
    let lo = 0, hi = visible.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (visible[mid].t < t) lo = mid + 1; else hi = mid; }
    const item = visible[Math.min(lo, visible.length - 1)];
    if (item) {
      scroller.scrollTop = Math.max(0, Math.min(lo, visible.length - 1) * ROW - 60);
      seekTo(item);
    } else if (replay.seek(Math.max(0, t))) drawOverview();
  });

  // --- the trace and the files ---
  const traceBox = el("div", { class: "run-trace panel" }, el("span", { class: "muted small" }, "Loading the trace…"));
  const filesBox = el("div", { class: "run-files panel" }, el("span", { class: "muted small" }, "Loading the files…"));

  root.append(
    el("div", { class: "run-main" },
      el("section", { class: "run-left" }, replayBox, seekNote),
      el("section", { class: "run-right panel" },
        el("div", { class: "run-tl-head" }, el("h2", {}, "Timeline"), loadState),
        overview,
        el("div", { class: "run-tl-tools" }, chips, find),
        scroller)),
    el("div", { class: "run-below" },
      el("section", {}, el("h2", {}, "Trace"), traceBox),
      el("section", {}, el("h2", {}, "Files"), filesBox)),
  );
  drawFacts();
  window.addEventListener("resize", drawOverview);

  // Events: the first page, then the page is ready; the rest fill in behind.
  let lastId = null;
  let loaded = 0;
  let redraw = false;
  const schedule = () => {
    if (redraw) return;
    redraw = true;
    requestAnimationFrame(() => { redraw = false; refilter(); drawFacts(); });
  };
  async function history() {
    let cursor = null;
    const expected = run.stats?.events;
    for (;;) {
      const page = await api.get("/v1/events", { run: run.id, order: "asc", limit: EVENT_PAGE, cursor }, { signal });
      for (const event of page.data || []) { timeline.add(event); lastId = event.id; }
      loaded += (page.data || []).length;
      loadState.textContent = page.hasMore ? `Loading events… ${loaded.toLocaleString()}${expected ? ` of ~${expected.toLocaleString()}` : ""}` : `${loaded.toLocaleString()} events`;
      if (cursor === null) {
        refilter();
        drawFacts(); // the header's counts from the timeline (CDP commands, errors) agree with it
        root.dataset.ready = "1";
        performance.mark("console-ready");
      } else schedule();
      if (!page.hasMore || !page.nextCursor) break;
      cursor = page.nextCursor;
    }
  }

  async function follow() {
    let failures = 0;
    while (!signal.aborted && !run.endedAt) {
      try {
        await api.stream(`${runPath}/stream`, {
          query: { include: "events", after: lastId || undefined },
          signal,
          onEvent: (frame) => {
            const data = frame.data || {};
            failures = 0;
            if (data.type === "runtime.event" && data.event) {
              timeline.add(data.event);
              lastId = data.event.id;
              loaded += 1;
              loadState.textContent = `${loaded.toLocaleString()} events · live`;
              schedule();
            } else if (data.type === "run.ended") {
              ended(data);
            } else if (data.error) {
              loadState.textContent = `The live stream stopped: ${problem(data.error)}`;
            }
          },
        });
      } catch (error) {
        if (error.name === "AbortError" || signal.aborted) return;
        failures += 1;
        loadState.textContent = `The live stream broke (${problem(error)}); retrying…`;
        if (error.status === 404) return;
      }
      if (run.endedAt || signal.aborted) return;
      await new Promise((resolve) => later(resolve, Math.min(10000, 1000 * 2 ** failures)));
    }
  }

  async function ended(frame) {
    endedHere = true;
    try { run = await api.get(runPath, {}, { signal }); } catch { /* the frame says enough */ }
    if (!run.endedAt) run.endedAt = frame.timestamp;
    drawFacts();
    const failed = (frame.status || run.status) === "failed";
    banner.replaceChildren(notice(
      failed ? `The browser died or failed while this page was open${run.endReason ? ` (${run.endReason})` : ""}. The run has ended.`
        : `The run ended while this page was open${run.endReason ? ` (${run.endReason})` : ""}.`,
      failed ? "error" : "info"));
    loadState.textContent = `${loaded.toLocaleString()} events`;
    replay.mode = "none";
    showRecording();
    schedule();
  }

  async function trace() {
    try {
      const spans = await api.all(`${runPath}/trace`, { order: "asc" }, { signal, max: 2000 });
      drawTrace(spans);
    } catch (error) {
      if (error.name !== "AbortError") clear(traceBox).append(notice(`The trace could not be read: ${problem(error)}`));
    }
  }

  function drawTrace(spans) {
    clear(traceBox);
    if (!spans.length) return void traceBox.append(el("span", { class: "muted small" }, "No spans."));
    const children = new Map();
    const ids = new Set(spans.map((s) => s.id));
    for (const s of spans) {
      const parent = s.parentId && ids.has(s.parentId) ? s.parentId : null;
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(s);
    }
    const order = [];
    const walk = (parent, depth) => {
      for (const s of children.get(parent) || []) {
        order.push([s, depth]);
        walk(s.id, depth + 1);
      }
    };
    walk(null, 0);
    const end = Math.max(spanOf(), ...spans.map((s) => (s.finishedAt ? Date.parse(s.finishedAt) : Date.now()) - t0));
    const LIMIT = 400;
    const rows = order.slice(0, LIMIT).map(([s, depth]) => {
      const start = Date.parse(s.startedAt) - t0;
      const stop = (s.finishedAt ? Date.parse(s.finishedAt) : Date.now()) - t0;
      const bar = el("i", { class: `kind-${s.kind}${s.status === "failed" ? " failed" : ""}${s.finishedAt ? "" : " open"}` });
      bar.style.left = `${Math.max(0, (start / end) * 100)}%`;
      bar.style.width = `${Math.max(0.4, ((stop - start) / end) * 100)}%`;
      const label = el("span", { class: "run-span-name" }, depth ? "└ " : "", s.name);
      label.style.paddingLeft = `${Math.min(depth, 10) * 14}px`;
      return el("div", {
        class: "run-span",
        title: `${s.name} (${s.kind}, ${s.status})\nstarts at ${offset(start)}\n${s.finishedAt ? `took ${duration(s.durationMs ?? stop - start)}` : "still running"}`,
        onclick: () => seekTo({ t: start, lane: "other", text: s.name, type: `span.${s.kind}` }),
      }, label, el("span", { class: "run-span-kind muted small" }, s.kind), el("span", { class: "run-span-track" }, bar),
      el("span", { class: "run-span-ms small" }, s.finishedAt ? duration(s.durationMs ?? stop - start) : "…"));
    });
    traceBox.append(...rows);
    if (order.length > LIMIT) traceBox.append(el("div", { class: "muted small" }, `${order.length - LIMIT} more spans are not shown (GET ${runPath}/trace has them all).`));
  }

  async function files() {
    try {
      const list = await api.all("/v1/files", { runId: run.id }, { signal, max: 500 });
      clear(filesBox);
      if (!list.length) return void filesBox.append(el("span", { class: "muted small" }, "This run has no files."));
      filesBox.append(el("table", { class: "list run-files-table" },
        el("thead", {}, el("tr", {}, ["Name", "Kind", "Size", "Made", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, list.map((f) => el("tr", {},
          el("td", { class: "mono small" }, f.filename),
          el("td", {}, f.type || f.source),
          el("td", { class: "num" }, `${(f.sizeBytes / 1024).toFixed(f.sizeBytes < 10240 ? 1 : 0)} KiB`),
          el("td", { class: "small" }, when(f.createdAt)),
          el("td", {}, el("button", { type: "button", onclick: (e) => download(f, e.currentTarget) }, "Download")))))));
    } catch (error) {
      if (error.name !== "AbortError") clear(filesBox).append(notice(`The files could not be listed: ${problem(error)}`));
    }
  }

  async function download(file, button) {
    button.disabled = true;
    try {
      const blob = await (await api.raw(file.downloadUrl, { signal })).blob();
      const url = URL.createObjectURL(blob);
      blobs.push(url);
      const a = el("a", { href: url, download: file.filename });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (error) {
      if (error.name !== "AbortError") button.after(notice(problem(error)));
    } finally {
      button.disabled = false;
    }
  }

  const active = !run.endedAt && ["active", "starting", "stopping"].includes(run.status);
  if (active) showLatestFrame();
  else showRecording();
  trace();
  files();
  api.get(`/v1/browsers/${encodeURIComponent(run.resourceId)}`, {}, { signal }).then((browser) => {
    browserName = browser.name || null;
    drawFacts();
  }, () => { /* a deleted browser: its id stays */ });
  // Not awaited: leaving the page while thousands of events load aborts them (the cleanup below).
  history().then(() => { if (active) follow(); }, (error) => {
    if (error.name === "AbortError") return;
    loadState.replaceChildren(notice(`The events could not be read: ${problem(error)}`));
    root.dataset.ready = "1";
  });

  return () => {
    controller.abort();
    replay.mode = "gone";
    for (const id of timers) clearTimeout(id);
    window.removeEventListener("resize", drawOverview);
    for (const url of blobs) URL.revokeObjectURL(url);
    if (liveTimer) clearTimeout(liveTimer);
  };
}
