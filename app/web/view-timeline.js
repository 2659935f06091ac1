"use strict";
// The view page's timeline: a run's trace (`/view/trace`) drawn as a waterfall. One row a span, nested
// under its parent (the server sends them depth first, each with its depth), one bar a span placed on
// the run's time (from its start to its end, or to now while it runs), coloured by kind, its duration
// beside the bar and everything about it on hover. Plain DOM: no library, no build step.
(function () {
  const KINDS = {
    run: { label: "Run", colour: "#6b7fa8" },
    command: { label: "Command", colour: "#e0883a" },
    connection: { label: "CDP session", colour: "#2ecc71" },
    invocation: { label: "Agent", colour: "#a66bd6" },
    step: { label: "Step", colour: "#1abc9c" },
    llm_call: { label: "LLM call", colour: "#e84393" },
    artifact: { label: "File", colour: "#f1c40f" },
  };
  const OTHER = { label: "Other", colour: "#95a5a6" };

  function duration(ms) {
    if (ms === null || ms === undefined) return "";
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
    const s = Math.round(ms / 1000);
    if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
    return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }

  // A tick's offset: round numbers without trailing zeros (+2 s, +1.5 s, +250 ms, +2m 00s).
  function tickLabel(ms) {
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${Number((ms / 1000).toFixed(3))} s`;
    return duration(ms);
  }

  // A round tick interval (1, 2 or 5 times a power of ten, in ms) giving at most about `count` ticks.
  function tickStep(total, count) {
    const raw = total / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
    return 10 * power;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const pct = (x) => `${Math.max(0, Math.min(100, x)).toFixed(3)}%`;

  // Draw `data` (what /view/trace answers) into `box`, its legend into `legendBox` (else atop `box`);
  // returns what it drew, for the page's state.
  function render(box, data, legendBox) {
    box.textContent = "";
    if (legendBox) legendBox.textContent = "";
    const spans = data.spans || [];
    if (!spans.length) {
      box.append(el("div", "tl-empty", "No spans yet."));
      return { spans: 0, bars: 0, kinds: [] };
    }
    const now = Date.parse(data.now) || Date.now();
    const endOf = (s) => (s.finishedAt ? Date.parse(s.finishedAt) : now);
    let t0 = Date.parse(data.startedAt || spans[0].startedAt);
    let t1 = data.finishedAt ? Date.parse(data.finishedAt) : now;
    for (const s of spans) {
      t0 = Math.min(t0, Date.parse(s.startedAt));
      t1 = Math.max(t1, endOf(s));
    }
    const total = Math.max(t1 - t0, 1);

    const kinds = [...new Set(spans.map((s) => s.kind))];
    const legend = el("div", "tl-legend");
    for (const kind of kinds) {
      const k = KINDS[kind] || OTHER;
      const item = el("span", "tl-key", k.label);
      const swatch = el("i");
      swatch.style.background = k.colour;
      item.prepend(swatch);
      legend.append(item);
    }
    legend.append(el("span", "tl-total", `${duration(total)}${data.finishedAt ? "" : " so far"}`));
    (legendBox || box).append(legend);

    const grid = el("div", "tl-grid");
    const axis = el("div", "tl-row tl-axis");
    axis.append(el("div", "tl-label"));
    const scale = el("div", "tl-track");
    const step = tickStep(total, 6);
    for (let t = 0; t <= total + 1e-6; t += step) {
      const tick = el("span", "tl-tick", t === 0 ? "0" : `+${tickLabel(t)}`);
      tick.style.left = pct((t / total) * 100);
      if (t / total > 0.93) tick.classList.add("end");
      scale.append(tick);
    }
    axis.append(scale);
    grid.append(axis);

    let bars = 0;
    for (const s of spans) {
      const k = KINDS[s.kind] || OTHER;
      const start = Date.parse(s.startedAt);
      const end = endOf(s);
      const ms = s.durationMs !== null && s.durationMs !== undefined ? s.durationMs : end - start;
      const row = el("div", `tl-row tl-span ${s.status}`);
      row.dataset.kind = s.kind;
      row.dataset.spanId = s.id;
      const offset = start - t0;
      row.title = [
        `${s.name} (${k.label})`,
        `status: ${s.status}${s.error ? ` (${s.error})` : ""}`,
        `starts at +${duration(offset) || "0 ms"}`,
        s.finishedAt ? `duration: ${duration(ms)}` : `running for ${duration(ms)}`,
      ].join("\n");

      const label = el("div", "tl-label");
      label.style.paddingLeft = `${6 + Math.min(s.depth || 0, 8) * 14}px`;
      if (s.depth) label.append(el("span", "tl-branch", "└"));
      label.append(el("span", "tl-name", s.name));
      row.append(label);

      const track = el("div", "tl-track");
      const left = (offset / total) * 100;
      const width = ((end - start) / total) * 100;
      const instant = s.finishedAt && end - start <= 0;
      const bar = el("div", `tl-bar${instant ? " instant" : ""}${s.finishedAt ? "" : " open"}`);
      bar.style.left = pct(left);
      bar.style.background = k.colour;
      if (!instant) bar.style.width = pct(width);
      track.append(bar);
      bars += 1;

      const text = instant ? "" : s.finishedAt ? duration(ms) : `${duration(ms)}…`;
      if (text) {
        const label2 = el("span", "tl-dur", text);
        if (left + width > 82 && width > 14) {
          label2.classList.add("inside");  // a long bar reaching the end: its duration inside it
          label2.style.left = `calc(${pct(left)} + 6px)`;
        } else if (left + width > 82) {
          label2.style.right = `calc(${pct(100 - left)} + 6px)`;
        } else {
          label2.style.left = `calc(${pct(left + width)} + 6px)`;
        }
        track.append(label2);
      }
      row.append(track);
      grid.append(row);
    }
    box.append(grid);
    if (data.truncated) box.append(el("div", "tl-empty", "Only the first spans are shown."));
    return { spans: spans.length, bars, kinds };
  }

  window.ViewTimeline = { render, duration, KINDS };
})();
