// The browsers page: the account's browsers (running first), each with its status, space, location, who
// holds control, uptime and a live thumbnail; stop, start, open the live view, revoke connections, copy
// the CDP URL. The list refreshes itself every few seconds while the tab is visible.
//
// Everything is the public current-generation API: GET /v1/browsers and /v1/spaces, POST /v1/browsers,
// .../start, .../stop, .../connections/revoke, and GET /v1/browsers/{id} for a fresh CDP URL. The
// thumbnail is the run's watch-only live view (currentRun.connections.liveViewReadOnlyUrl): its socket
// sends the screencast's frames when the page changes, and the newest is drawn at most every few seconds.
import * as api from "../api.js";
import { clear, copy, el, holderWords, notice, pill, problem, since, when } from "../util.js";

const REFRESH_MS = 2500;
const SPACES_MS = 30000;
const THUMB_MS = 3000;
const RETRY_MS = 15000;
const HOLDER_HELP = {
  agent: "An API call, a task or a CDP client (Playwright, Puppeteer) holds the controller lock",
  human: "A person took control through a live view",
  none: "Nobody holds the controller lock: the next CDP client, API call or viewer may take it",
};

// One watch-only live socket per running browser: the newest frame is kept, the image is updated at
// most every THUMB_MS. Opened only while the page is visible.
class Thumbnail {
  constructor(img, note) {
    this.img = img;
    this.note = note;
    this.ws = null;
    this.token = null;
    this.latest = null;
    this.shown = null;
    this.timer = null;
    this.closedAt = 0;
  }

  watch(liveUrl) {
    let token = null;
    try { token = new URL(liveUrl, location.origin).searchParams.get("token"); } catch { /* no link */ }
    if (!token) return this.close();
    if (token === this.token && this.ws) return;
    // A socket the server closed (the run ending, the link revoked) is not reopened at every refresh.
    if (token === this.token && Date.now() - this.closedAt < RETRY_MS) return;
    this.close();
    this.token = token;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/v1/live/socket?token=${encodeURIComponent(token)}`);
    this.ws = ws;
    ws.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      if (msg.type === "frame") {
        const first = this.latest === null;
        this.latest = msg.data;
        if (first) this.paint();
      } else if (msg.type === "state" && msg.state === "no_page") {
        this.note.textContent = "no page open";
      }
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.closedAt = Date.now();
    };
    this.timer = setInterval(() => this.paint(), THUMB_MS);
  }

  paint() {
    if (!this.latest || this.latest === this.shown) return;
    this.shown = this.latest;
    this.img.src = `data:image/jpeg;base64,${this.latest}`;
    this.img.hidden = false;
    this.note.textContent = "";
  }

  close() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onclose = null;
      ws.close();
    }
    this.token = null;
    this.closedAt = 0;
  }
}

function statusOf(browser) {
  const run = browser.currentRun;
  if (browser.status !== "running" || !run) return "idle";
  if (run.status === "active") return "running";
  return run.status; // starting, stopping, standby
}

export default async function render(root) {
  const state = { spaces: new Map(), rows: new Map(), timer: null, spacesAt: 0, busy: false, gone: false, filter: "" };
  const messages = el("div", { class: "messages", "aria-live": "polite" });
  const updated = el("span", { class: "muted small", id: "browsers-updated" });
  const spaceFilter = el("select", { id: "space-filter", "aria-label": "Space", onchange: () => { state.filter = spaceFilter.value; refresh(); } });
  const newSpace = el("select", { id: "new-space" }); // named by its visible label ("in space")
  const newName = el("input", { id: "new-name", placeholder: "name (optional)", maxlength: 200, "aria-label": "Name of the new browser" });
  const create = el("button", { class: "primary", type: "submit" }, "Start a browser");
  const form = el("form", { class: "new-browser", onsubmit: (event) => { event.preventDefault(); startNew(); } },
    newName, el("label", { class: "muted", for: "new-space" }, "in space"), newSpace, create);
  const body = el("tbody");
  const table = el("table", { class: "list browsers" },
    el("thead", {}, el("tr", {},
      el("th", { class: "thumb-col" }, "Screen"), el("th", {}, "Browser"), el("th", {}, "Status"), el("th", {}, "Space"),
      el("th", {}, "Location"), el("th", {}, "Control"), el("th", {}, "Uptime"), el("th", { class: "actions-col" }, "Actions"))),
    body);
  const empty = el("p", { class: "empty muted", hidden: true }, "No browsers yet. Start one here, or with POST /v1/browsers.");

  root.append(
    el("div", { class: "page-head" }, el("h1", {}, "Browsers"), el("span", { class: "spacer" }), updated),
    el("div", { class: "toolbar" }, el("label", { class: "muted", for: "space-filter" }, "Space"), spaceFilter,
      el("span", { class: "spacer" }), form),
    messages, table, empty);

  function say(text, kind = "error") {
    clear(messages).append(notice(text, kind));
  }

  async function loadSpaces() {
    const spaces = await api.all("/v1/spaces", {}, { max: 500 });
    state.spaces = new Map(spaces.map((s) => [s.id, s]));
    state.spacesAt = Date.now();
    const keepFilter = spaceFilter.value;
    const keepNew = newSpace.value;
    clear(spaceFilter).append(el("option", { value: "" }, "All spaces"),
      ...spaces.map((s) => el("option", { value: s.id }, s.name || s.id)));
    clear(newSpace).append(...spaces.map((s) => el("option", { value: s.id }, s.name || s.id)));
    spaceFilter.value = state.spaces.has(keepFilter) ? keepFilter : "";
    if (state.spaces.has(keepNew)) newSpace.value = keepNew;
    else {
      const preferred = spaces.find((s) => s.isDefault || s.default) || spaces[0];
      if (preferred) newSpace.value = preferred.id;
    }
  }

  function spaceCell(spaceId) {
    const space = state.spaces.get(spaceId);
    return el("a", { href: `#/runs?space=${encodeURIComponent(spaceId)}`, title: spaceId }, space ? (space.name || spaceId) : spaceId);
  }

  function controlCell(run) {
    if (!run) return el("span", { class: "muted" }, "—");
    const holder = run.control?.holder || "none";
    const help = HOLDER_HELP[holder] ? `${HOLDER_HELP[holder]}. ` : "";
    return el("span", { class: `holder holder-${holder}`, title: `${help}Since ${when(run.control?.since)}.` }, holderWords(holder));
  }

  async function act(button, work, done) {
    button.disabled = true;
    try {
      const result = await work();
      if (done) say(done(result), "ok");
      await refresh();
    } catch (error) {
      if (error.status === 401) return;
      say(problem(error));
    } finally {
      button.disabled = false;
    }
  }

  function confirmStop(entry, browser) {
    const cell = entry.actions;
    const yes = el("button", { class: "danger confirm-stop", type: "button" }, "Stop it");
    const no = el("button", { type: "button" }, "Cancel");
    const ask = el("span", { class: "confirm" }, el("span", {}, `Stop ${browser.name}? Its profile is saved.`), yes, no);
    entry.confirming = true;
    clear(cell).append(ask);
    no.addEventListener("click", () => { entry.confirming = false; paintActions(entry, entry.browser); });
    yes.addEventListener("click", () => act(yes, async () => {
      try {
        return await api.post(`/v1/browsers/${encodeURIComponent(browser.id)}/stop`, {}, { query: { wait: 30 } });
      } finally {
        entry.confirming = false;
      }
    }, () => `Stopped ${browser.name}: its run ended and its profile was saved.`));
  }

  async function copyCdp(button, browser) {
    await act(button, async () => {
      // Read fresh: the run's connection is issued on read (a new one after a revocation).
      const fresh = await api.get(`/v1/browsers/${encodeURIComponent(browser.id)}`);
      const url = fresh.currentRun?.connections?.cdpUrl;
      if (!url) throw new Error("This browser has no CDP URL: it is not running");
      const copied = await copy(url);
      const field = el("input", { class: "cdp-url mono", readonly: true, value: url, "aria-label": "CDP URL", onfocus: (e) => e.target.select() });
      clear(messages).append(el("p", { class: "ok", role: "status" },
        copied ? "CDP URL copied. Hand it to Playwright's connect_over_cdp or Puppeteer's connect: " : "Copy this CDP URL: ", field));
      return null;
    });
  }

  function paintActions(entry, browser) {
    if (entry.confirming) return;
    const cell = clear(entry.actions);
    const id = encodeURIComponent(browser.id);
    const status = statusOf(browser);
    if (browser.status === "running") {
      const live = el("a", { class: "button", href: `#/browsers/${id}/live` }, "Live view");
      const cdp = el("button", { type: "button", class: "copy-cdp" }, "Copy CDP URL");
      const revoke = el("button", { type: "button", class: "revoke" }, "Revoke connections");
      const stop = el("button", { type: "button", class: "danger stop", disabled: status === "stopping" }, "Stop");
      cdp.addEventListener("click", () => copyCdp(cdp, browser));
      revoke.addEventListener("click", () => act(revoke,
        () => api.post(`/v1/browsers/${id}/connections/revoke`, {}),
        () => `Connections of ${browser.name} revoked: open CDP sockets were closed; a new CDP URL is issued.`));
      stop.addEventListener("click", () => confirmStop(entry, browser));
      cell.append(live, cdp, revoke, stop);
    } else {
      const start = el("button", { type: "button", class: "start" }, "Start");
      start.addEventListener("click", () => act(start,
        () => api.post(`/v1/browsers/${id}/start`, {}, { query: { wait: 0 } }),
        () => `Starting ${browser.name}…`));
      cell.append(start);
    }
  }

  function makeEntry(browser) {
    const img = el("img", { class: "thumb", alt: `Screen of ${browser.name}`, hidden: true });
    const note = el("span", { class: "thumb-note muted small" });
    const cells = {
      thumb: el("td", { class: "thumb-col" }, el("div", { class: "thumb-box" }, img, note)),
      name: el("td"),
      status: el("td"),
      space: el("td"),
      location: el("td"),
      control: el("td"),
      uptime: el("td", { class: "uptime" }),
      actions: el("div", { class: "actions" }),
    };
    const row = el("tr", { dataset: { browserId: browser.id } },
      ...Object.entries(cells).map(([name, cell]) => (name === "actions" ? el("td", {}, cell) : cell)));
    return { row, ...cells, img, note, thumbnail: new Thumbnail(img, note), confirming: false, browser };
  }

  function paint(entry, browser) {
    entry.browser = browser;
    const run = browser.currentRun;
    const status = statusOf(browser);
    entry.row.dataset.status = status;
    clear(entry.name).append(
      el("div", { class: "name" }, browser.name),
      el("div", { class: "muted small mono" }, browser.id),
      run ? el("a", { class: "small", href: `#/runs/${encodeURIComponent(run.id)}` }, "current run") : el("span", { class: "small muted" }, `last used ${when(browser.lastUsedAt)}`));
    clear(entry.status).append(pill(status));
    clear(entry.space).append(spaceCell(browser.spaceId));
    entry.location.textContent = browser.location || "—";
    clear(entry.control).append(controlCell(status === "idle" ? null : run));
    entry.uptime.textContent = status === "idle" ? "—" : since(run?.startedAt);
    entry.uptime.title = run?.startedAt ? `Started ${when(run.startedAt)}` : `Last used ${when(browser.lastUsedAt)}`;
    paintActions(entry, browser);
    const liveUrl = run?.connections?.liveViewReadOnlyUrl;
    if (status === "running" && liveUrl && document.visibilityState === "visible") {
      if (!entry.thumbnail.latest) entry.note.textContent = "waiting for a picture…";
      entry.thumbnail.watch(liveUrl);
    } else {
      entry.thumbnail.close();
      entry.img.hidden = true;
      entry.thumbnail.latest = entry.thumbnail.shown = null;
      entry.note.textContent = status === "idle" ? "idle" : status === "running" ? "paused" : status;
    }
  }

  async function refresh() {
    if (state.gone || state.busy || document.visibilityState !== "visible") return;
    state.busy = true;
    try {
      if (Date.now() - state.spacesAt > SPACES_MS) await loadSpaces();
      const query = state.filter ? { spaceId: state.filter } : {};
      const browsers = await api.all("/v1/browsers", query, { max: 500 });
      if (state.gone) return;
      // Running first, then the newest.
      const rank = (b) => (b.status === "running" ? 0 : 1);
      browsers.sort((a, b) => rank(a) - rank(b) || Date.parse(b.createdAt) - Date.parse(a.createdAt));
      const seen = new Set();
      for (const browser of browsers) {
        seen.add(browser.id);
        let entry = state.rows.get(browser.id);
        if (!entry) {
          entry = makeEntry(browser);
          state.rows.set(browser.id, entry);
        }
        paint(entry, browser);
        body.append(entry.row); // keeps the order; a row already there moves without being rebuilt
      }
      for (const [id, entry] of state.rows) {
        if (seen.has(id)) continue;
        entry.thumbnail.close();
        entry.row.remove();
        state.rows.delete(id);
      }
      empty.hidden = browsers.length > 0;
      table.hidden = browsers.length === 0;
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      updated.classList.remove("error");
    } catch (error) {
      if (error.status === 401 || state.gone) return;
      updated.textContent = `Could not refresh: ${problem(error)}`;
      updated.classList.add("error");
    } finally {
      state.busy = false;
    }
  }

  async function startNew() {
    const body = { spaceId: newSpace.value || undefined };
    const name = newName.value.trim();
    if (name) body.name = name;
    await act(create, () => api.post("/v1/browsers", body, { query: { wait: 0 } }), (made) => {
      newName.value = "";
      return `Started ${made.name}: it appears below and runs in a moment.`;
    });
  }

  function onVisibility() {
    if (document.visibilityState === "visible") refresh();
    else for (const entry of state.rows.values()) entry.thumbnail.close();
  }

  document.addEventListener("visibilitychange", onVisibility);
  await refresh();
  state.timer = setInterval(refresh, REFRESH_MS);
  return () => {
    state.gone = true;
    clearInterval(state.timer);
    document.removeEventListener("visibilitychange", onVisibility);
    for (const entry of state.rows.values()) entry.thumbnail.close();
  };
}
