// The live page of a browser: its picture (the server's live page in a frame, opened to watch through the
// current run's standing input link), its tabs and the URL of the one shown, who controls it, and Take
// control / Give back. A refused take-over shows the server's own reason (who holds control, until when).
// Everything comes from the public API: GET /v1/browsers/{id} (the run's live-view links),
// GET /v1/browsers/{id}/control (who holds it), and the live page's socket (tabs, URL, control).
import * as api from "../api.js";
import { el, holderWords, pill, problem, when } from "../util.js";

const MODES = {
  view: "Watching (this link cannot take control)",
  available: "Watching",
  controlling: "You control the browser",
};
const STATES = {
  connecting: "Connecting…", live: "Live", no_page: "No page open", ended: "Ended", expired: "Link expired",
  revoked: "Link revoked", invalid: "Link invalid", lost: "Disconnected",
};
const POLL_MS = 4000;

// The live page's address on this origin, opened to watch first and without its own header (options
// in the fragment: they stay in the browser).
function frameSource(link) {
  const u = new URL(link, location.origin);
  return `${u.pathname}${u.search}#start=watch&embed=console`;
}

export default async function render(root, params) {
  const browserId = params.browserId;
  const heading = el("h1", {}, "Live view");
  root.append(heading);
  let browser;
  try {
    browser = await api.get(`/v1/browsers/${encodeURIComponent(browserId)}`);
  } catch (error) {
    root.append(el("p", { class: "error", role: "alert" }, problem(error)), el("a", { href: "#/browsers" }, "← Browsers"));
    return undefined;
  }
  const run = browser.currentRun;
  heading.replaceChildren("Live view · ", browser.name || browser.id, " ", pill(browser.status));
  const links = el("p", { class: "live-links muted small" }, el("a", { href: "#/browsers" }, "← Browsers"));
  if (run) links.append(" · ", el("a", { href: `#/runs/${encodeURIComponent(run.id)}`, class: "run-link" }, `Run ${run.id}`));
  root.append(links);
  if (!run || !run.connections) {
    root.append(el("p", { class: "live-ended", role: "status" }, "This browser is not running: there is nothing live to watch."));
    return undefined;
  }

  // --- the layout ---
  const stateText = el("span", { class: "live-state", dataset: { state: "connecting" } }, STATES.connecting);
  const modeText = el("span", { class: "live-mode" }, "");
  const holderText = el("span", { class: "live-holder muted" }, "");
  const take = el("button", { class: "primary live-take", type: "button", disabled: true }, "Take control");
  const giveBack = el("button", { class: "live-giveback", type: "button", hidden: true }, "Give control back");
  const refusal = el("div", { class: "live-refusal", role: "alert", hidden: true });
  const note = el("div", { class: "live-note", role: "status", hidden: true });
  const urlText = el("span", { class: "live-url mono", title: "" }, "—");
  const tabCount = el("span", { class: "live-tab-count muted small" }, "");
  const tabs = el("ol", { class: "live-tabs" });
  const frame = el("iframe", {
    class: "live-frame",
    title: "The browser, live",
    src: frameSource(run.connections.liveViewUrl),
    allow: "clipboard-read; clipboard-write",
  });

  root.append(
    el("div", { class: "toolbar live-toolbar" }, stateText, modeText, el("span", { class: "spacer" }), holderText, take, giveBack),
    refusal,
    note,
    el(
      "div",
      { class: "live-layout" },
      el("aside", { class: "panel live-side" }, el("h2", {}, "Tabs ", tabCount), tabs),
      el(
        "section",
        { class: "live-main" },
        el("div", { class: "live-urlbar" }, el("span", { class: "muted small" }, "URL"), urlText),
        el("div", { class: "live-screen" }, frame),
      ),
    ),
  );

  // --- what the live page says ---
  let viewer = { state: "connecting", control: "view", tabs: [], pending: false };

  function showRefusal(refused) {
    refusal.replaceChildren();
    refusal.hidden = !refused;
    if (!refused) return;
    // The server's message may already name the holder's id and the time its hold ends (in UTC): the
    // line below adds only what it leaves out, so no fact is said twice.
    const message = refused.message || "";
    const facts = [];
    if (refused.holder) facts.push(`Held by ${holderWords(refused.holder)}`);
    if (refused.holderKind && refused.holderId && !message.includes(refused.holderId)) facts.push(`${refused.holderKind} ${refused.holderId}`);
    if (refused.until && !/\buntil\b/.test(message)) facts.push(`until ${when(refused.until)}`);
    refusal.append(
      el("strong", {}, "Take control was refused. "),
      el("span", { class: "live-refusal-message" }, refused.message || "The server refused."),
      facts.length ? el("div", { class: "small live-refusal-facts" }, facts.join(" · ")) : null,
    );
  }

  function drawTabs(list) {
    tabs.replaceChildren(
      ...list.map((tab) =>
        el(
          "li",
          { class: tab.current ? "current" : "", title: tab.url || "" },
          el("span", { class: "tab-title" }, tab.title || "Untitled"),
          el("span", { class: "tab-url mono small muted" }, tab.url || ""),
          tab.current ? el("span", { class: "tab-shown small" }, "shown") : null,
        ),
      ),
    );
    if (!list.length) tabs.append(el("li", { class: "muted" }, "No tab is open."));
    tabCount.textContent = `(${list.length})`;
  }

  function draw() {
    stateText.textContent = STATES[viewer.state] || viewer.state;
    stateText.dataset.state = viewer.state;
    const ended = ["ended", "expired", "revoked", "invalid", "lost"].includes(viewer.state);
    modeText.textContent = ended ? "" : viewer.pending ? "Asking…" : MODES[viewer.control] || "";
    take.hidden = viewer.control === "controlling";
    take.disabled = ended || viewer.pending || viewer.control !== "available";
    giveBack.hidden = viewer.control !== "controlling";
    giveBack.disabled = viewer.pending;
    urlText.textContent = viewer.url || "—";
    urlText.title = viewer.title || "";
    drawTabs(viewer.tabs || []);
    showRefusal(viewer.refused);
    const message = !viewer.refused && viewer.message ? viewer.message : "";
    note.textContent = message;
    note.hidden = !message;
  }

  function onMessage(event) {
    if (event.source !== frame.contentWindow || event.origin !== location.origin) return;
    const data = event.data || {};
    if (data.source !== "bctrl-live") return;
    const changed = data.control !== viewer.control || JSON.stringify(data.refused) !== JSON.stringify(viewer.refused);
    viewer = data;
    draw();
    if (changed) poll(); // who holds it changed (or a refusal named the holder): say so now
  }
  window.addEventListener("message", onMessage);

  function command(name) {
    if (!frame.contentWindow) return;
    frame.contentWindow.postMessage({ source: "bctrl-console", command: name }, location.origin);
  }
  take.addEventListener("click", () => {
    viewer = { ...viewer, pending: true, refused: null, message: null };
    draw();
    command("takeover");
  });
  giveBack.addEventListener("click", () => {
    viewer = { ...viewer, pending: true };
    draw();
    command("handback");
  });

  // --- who holds control, from the API (the live page knows only its own part) ---
  async function poll() {
    try {
      const control = await api.get(`/v1/browsers/${encodeURIComponent(browserId)}/control`);
      holderText.textContent = `In control: ${holderWords(control.holder)}`;
      holderText.dataset.holder = control.holder;
    } catch (error) {
      if (error.code === "runtime.not_active" || error.status === 409) {
        holderText.textContent = "The browser stopped";
        holderText.dataset.holder = "none";
      } else {
        holderText.textContent = problem(error);
      }
    }
  }
  await poll();
  const timer = setInterval(poll, POLL_MS);
  draw();

  return () => {
    clearInterval(timer);
    window.removeEventListener("message", onMessage);
    frame.src = "about:blank"; // closes the live page's socket: a person in control gives it back
  };
}
