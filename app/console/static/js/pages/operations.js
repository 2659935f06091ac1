// The operations page: capacity (slots used and free), the admission queue, the account's running
// browsers against its limit, and the last hour's browser starts with their latency as a small chart.
// One public route gives it all: GET /v1/operations (the figures /metrics counts, read from the database
// so every server process answers the same, and open to any API key of the account). Refreshed every
// few seconds while the tab is visible.
import * as api from "../api.js";
import { clear, duration, el, problem } from "../util.js";

const REFRESH_MS = 5000;
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const seconds = (value) => (value === null || value === undefined ? "—" : duration(value * 1000));

function card(title, big, ...rest) {
  return el("div", { class: "panel card" }, el("div", { class: "card-title muted" }, title), el("div", { class: "big" }, big), ...rest);
}

function meter(used, total, label) {
  const bar = el("div", { class: "meter-fill" });
  const share = total > 0 ? Math.min(1, used / total) : 0;
  bar.style.width = `${Math.round(share * 100)}%`;
  bar.classList.toggle("full", share >= 1);
  bar.classList.toggle("high", share >= 0.8 && share < 1);
  return el("div", { class: "meter", role: "meter", "aria-label": label, "aria-valuemin": 0, "aria-valuemax": total, "aria-valuenow": used }, bar);
}

// A niceish axis maximum: 1, 2, 5 x 10^n at or above `value`.
function nice(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

// Starts per minute as bars (started, and failed on top), the minute's median latency as a line on its
// own axis (right). Every mark has a <title> with its numbers.
function chart(starts) {
  const W = 1300, H = 230, left = 40, right = 60, top = 26, bottom = 26;
  const width = W - left - right, height = H - top - bottom;
  const buckets = starts.buckets;
  const n = buckets.length || 1;
  const slot = width / n;
  const countMax = nice(Math.max(1, ...buckets.map((b) => b.started + b.failed)));
  const latencyMax = nice(Math.max(0.1, ...buckets.map((b) => b.p50Seconds || 0)));
  const y = (count) => top + height - (count / countMax) * height;
  const ly = (s) => top + height - (s / latencyMax) * height;
  const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  const grid = [0, 0.5, 1].map((f) => svg("g", {},
    svg("line", { class: "grid", x1: left, x2: left + width, y1: top + height * (1 - f), y2: top + height * (1 - f) }),
    svg("text", { class: "axis", x: left - 6, y: top + height * (1 - f) + 4, "text-anchor": "end" }, String(Math.round(countMax * f * 10) / 10)),
    svg("text", { class: "axis latency", x: left + width + 6, y: top + height * (1 - f) + 4 }, seconds(latencyMax * f))));
  const bars = buckets.map((b, i) => {
    const x = left + i * slot + 1;
    const w = Math.max(1, slot - 2);
    const label = `${time(b.start)}: ${b.started} started, ${b.failed} failed` + (b.p50Seconds !== null ? `, median ${seconds(b.p50Seconds)}, max ${seconds(b.maxSeconds)}` : "");
    const parts = [svg("title", {}, label), svg("rect", { class: "hit", x: x - 1, y: top, width: slot, height })];
    if (b.started) parts.push(svg("rect", { class: "bar started", x, y: y(b.started), width: w, height: y(0) - y(b.started) }));
    if (b.failed) parts.push(svg("rect", { class: "bar failed", x, y: y(b.started + b.failed), width: w, height: y(b.started) - y(b.started + b.failed) }));
    return svg("g", { class: "bucket" }, parts);
  });
  const points = buckets.map((b, i) => (b.p50Seconds === null ? null : [left + (i + 0.5) * slot, ly(b.p50Seconds)]));
  const segments = [];
  let current = [];
  for (const p of points) {
    if (p) current.push(p);
    else if (current.length) { segments.push(current); current = []; }
  }
  if (current.length) segments.push(current);
  const line = segments.map((seg) => svg("polyline", { class: "latency", points: seg.map((p) => p.join(",")).join(" ") }));
  const dots = points.filter(Boolean).map(([cx, cy]) => svg("circle", { class: "latency", cx, cy, r: 2.5 }));
  const ticks = [0, Math.floor(n / 4), Math.floor(n / 2), Math.floor((3 * n) / 4), n - 1].filter((i, k, all) => buckets[i] && all.indexOf(i) === k)
    .map((i) => svg("text", { class: "axis", x: left + (i + 0.5) * slot, y: H - 8, "text-anchor": "middle" }, time(buckets[i].start)));

  return svg("svg", { class: "starts-chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `Browser starts per minute over the last hour: ${starts.started} started, ${starts.failed} failed` },
    svg("title", {}, "Browser starts per minute (bars) and their median latency (line)"),
    grid, bars, line, dots, ticks,
    svg("text", { class: "axis", x: left - 6, y: top - 12 }, "starts / min"),
    svg("text", { class: "axis latency", x: W - 2, y: top - 12, "text-anchor": "end" }, "median latency"));
}

export default async function render(root) {
  const state = { timer: null, gone: false, busy: false };
  const updated = el("span", { class: "muted small", id: "operations-updated" });
  const cards = el("div", { class: "cards" });
  const chartBox = el("div", { class: "panel chart-box" });
  root.append(
    el("div", { class: "page-head" }, el("h1", {}, "Operations"), el("span", { class: "spacer" }), updated),
    cards,
    el("h2", {}, "Browser starts, last hour"),
    chartBox,
    el("p", { class: "muted small" },
      "Capacity and the queue are the deployment's (as ", el("a", { href: "/pressure", target: "_blank", rel: "noopener" }, "/pressure"),
      " gives them); the starts are your account's. Latency runs from a slot granted to the browser running, as ",
      el("code", {}, "bctrl_browser_start_seconds"), " measures it; Prometheus scrapes the same counters per process at ",
      el("code", {}, "/metrics"), "."));

  function paint(ops) {
    const c = ops.capacity, q = ops.queue, a = ops.account, s = ops.starts;
    clear(cards).append(
      card("Capacity", el("span", { id: "capacity" }, `${c.used} / ${c.total}`),
        el("div", { class: "muted small" }, "slots in use"), meter(c.used, c.total, "Slots in use"),
        el("div", { class: "small" }, `${c.free} free`, c.warm ? ` · ${c.warm} warm` : "")),
      card("Queue", el("span", { id: "queue" }, `${q.depth}`),
        el("div", { class: "muted small" }, `starts waiting (at most ${q.max})`), meter(q.depth, q.max, "Queued starts"),
        el("div", { class: "small" }, q.depth ? `oldest waiting ${seconds(q.oldestWaitSeconds)}` : "nobody waiting")),
      card("Your browsers", el("span", { id: "account-running" }, a.limit === null ? `${a.running}` : `${a.running} / ${a.limit}`),
        el("div", { class: "muted small" }, a.limit === null ? "running (no account limit)" : "running of your account's limit"),
        a.limit === null ? null : meter(a.running, a.limit, "Your running browsers")),
      card("Starts, last hour", el("span", { id: "starts-total" }, `${s.started}`),
        el("div", { class: "muted small" }, `started · ${s.failed} failed${s.pending ? ` · ${s.pending} starting` : ""}`)),
      card("Start latency", el("span", { id: "latency-p50" }, seconds(s.latency.p50Seconds)),
        el("div", { class: "muted small" }, "median"),
        el("div", { class: "small" }, `p95 ${seconds(s.latency.p95Seconds)} · max ${seconds(s.latency.maxSeconds)}`)));
    clear(chartBox).append(chart(s),
      el("div", { class: "legend small muted" },
        el("span", { class: "key started" }), "started", el("span", { class: "key failed" }), "failed",
        el("span", { class: "key latency" }), "median latency"));
  }

  async function refresh() {
    if (state.gone || state.busy || document.visibilityState !== "visible") return;
    state.busy = true;
    try {
      const ops = await api.get("/v1/operations");
      if (state.gone) return;
      paint(ops);
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      updated.classList.remove("error");
    } catch (error) {
      if (error.status === 401 || state.gone) return;
      updated.textContent = `Could not refresh: ${problem(error)}`;
      updated.classList.add("error");
      if (!cards.childElementCount) throw error;
    } finally {
      state.busy = false;
    }
  }

  const onVisibility = () => { if (document.visibilityState === "visible") refresh(); };
  document.addEventListener("visibilitychange", onVisibility);
  try {
    await refresh();
  } catch (error) {
    document.removeEventListener("visibilitychange", onVisibility);
    throw error;
  }
  state.timer = setInterval(refresh, REFRESH_MS);
  return () => {
    state.gone = true;
    clearInterval(state.timer);
    document.removeEventListener("visibilitychange", onVisibility);
  };
}
