// Cameras: counts per line and class group over time, and the latest events with their snapshots.
import { api, fetchAll, unseen } from "../api.js";
import { bucketFor, bucketSeries, TimeChart } from "../chart.js";
import { coalesce, h, num, replace } from "../dom.js";
import { RANGES } from "../time.js";

const EVENTS_SHOWN = 24;

function cameraKey(it) {
  return `${it.device}/${it.camera}`;
}

export class View {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.rangeMs = RANGES[1].ms;
    this.camera = ""; // "" = every camera
    this.counts = [];
    this.events = [];
    this.error = h("p", { class: "message error", role: "alert", hidden: true });
    this.cameraSelect = h("select", { id: "camera", on: { change: (e) => this.setCamera(e.target.value) } });
    const range = h("select", { on: { change: (e) => this.setRange(Number(e.target.value)) } },
      RANGES.map((r) => h("option", { value: r.ms, selected: r.ms === this.rangeMs }, r.label)));
    const chartEl = h("div", { class: "chart", role: "img", "aria-label": "Counts per line and class group" });
    this.totals = h("div", { class: "table-wrap" });
    this.eventList = h("div", { class: "events", id: "events", "aria-live": "polite" });
    root.append(
      h("div", { class: "toolbar" }, h("label", {}, "Camera", this.cameraSelect), h("label", {}, "Last", range)),
      this.error,
      h("section", { class: "panel", "aria-labelledby": "counts-title" },
        h("h2", { id: "counts-title" }, "Counts per line and class group"), chartEl, this.totals),
      h("section", { class: "panel", "aria-labelledby": "events-title" },
        h("h2", { id: "events-title" }, "Latest events"), this.eventList));
    this.chart = new TimeChart(chartEl, ctx.fmt, { yLabel: "objects", bars: false });
    this.redraw = coalesce(() => this.renderCounts(), 1000);
  }

  start() {
    this.offs = [
      this.ctx.live.on("count", (items) => {
        this.counts.push(...unseen(this.counts, items));
        this.redraw();
      }),
      this.ctx.live.on("event", (items) => this.onEvents(items)),
      this.ctx.live.onResume(() => this.load()),
    ];
    this.load();
  }

  stop() {
    this.offs.forEach((off) => off());
    this.redraw.cancel();
    this.chart.destroy();
  }

  setCamera(key) {
    this.camera = key;
    this.load();
  }

  setRange(ms) {
    this.rangeMs = ms;
    this.load();
  }

  /** Query parameters of the chosen camera ("device/camera"). */
  filter() {
    if (!this.camera) return {};
    const cut = this.camera.indexOf("/"); // device ids have no "/"; a camera's name might
    return { device: this.camera.slice(0, cut), camera: this.camera.slice(cut + 1) };
  }

  async load() {
    try {
      const from = Math.round(Date.now() - this.rangeMs);
      const [counts, events] = await Promise.all([
        fetchAll("/api/v1/counts", { ...this.filter(), from, order: "desc" }), // a capped range keeps its end
        api("/api/v1/events", { params: { ...this.filter(), limit: EVENTS_SHOWN } }),
      ]);
      this.counts = counts;
      this.events = events.items;
      this.error.hidden = true;
    } catch (err) {
      this.error.textContent = `Could not load the cameras: ${err.message}`;
      this.error.hidden = false;
    }
    this.renderCameras();
    this.renderCounts();
    this.renderEvents();
  }

  matches(it) {
    return !this.camera || cameraKey(it) === this.camera;
  }

  renderCameras() {
    const keys = new Set([...this.counts, ...this.events].map(cameraKey));
    if (this.camera) keys.add(this.camera);
    replace(this.cameraSelect, h("option", { value: "" }, "All cameras"),
      [...keys].sort().map((k) => h("option", { value: k, selected: k === this.camera }, k)));
  }

  renderCounts() {
    const since = Date.now() - this.rangeMs;
    this.counts = this.counts.filter((it) => it.ts_ms >= since && this.matches(it));
    const label = (it) => `${this.camera ? "" : `${cameraKey(it)} `}${it.line} · ${it.group}`;
    const { xs, series } = bucketSeries(this.counts, bucketFor(this.rangeMs), label, (it) => it.count);
    this.chart.set(xs, series);
    this.renderTotals();
  }

  /** Totals in the range per line and group, each direction apart. */
  renderTotals() {
    const rows = new Map();
    const directions = new Set();
    for (const it of this.counts) {
      const k = `${cameraKey(it)}\u0000${it.line}\u0000${it.group}`;
      directions.add(it.direction);
      const row = rows.get(k) ?? {};
      row[it.direction] = (row[it.direction] ?? 0) + it.count;
      rows.set(k, row);
    }
    if (!rows.size) return replace(this.totals, h("p", { class: "empty" }, "No counts in this range."));
    const dirs = [...directions].sort();
    replace(this.totals, h("table", { id: "count-totals" },
      h("caption", { class: "visually-hidden" }, "Totals in the range"),
      h("thead", {}, h("tr", {}, ["Camera", "Line", "Group", ...dirs, "Total"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, [...rows].sort((a, b) => a[0].localeCompare(b[0])).map(([k, row]) => {
        const [camera, line, group] = k.split("\u0000");
        const sum = Object.values(row).reduce((a, b) => a + b, 0);
        return h("tr", {}, h("td", {}, camera), h("th", { scope: "row" }, line), h("td", {}, group),
          dirs.map((d) => h("td", { class: "num" }, num(row[d] ?? 0))), h("td", { class: "num" }, num(sum)));
      }))));
  }

  onEvents(items) {
    const fresh = unseen(this.events, items).filter((it) => this.matches(it));
    if (!fresh.length) return;
    this.events = [...fresh, ...this.events].sort((a, b) => b.ts_ms - a.ts_ms).slice(0, EVENTS_SHOWN);
    this.renderEvents();
  }

  renderEvents() {
    if (!this.events.length) return replace(this.eventList, h("p", { class: "empty" }, "No events."));
    const fmt = this.ctx.fmt;
    replace(this.eventList, this.events.map((e) => {
      const when = fmt.dateTime(e.ts_ms);
      const alt = `${e.label} on ${cameraKey(e)} at ${when}`;
      return h("article", { class: "event", dataset: { id: `${e.device}/${e.epoch}/${e.seq}` } },
        e.snapshot_url
          ? h("a", { href: e.snapshot_url, target: "_blank", rel: "noopener" },
            h("img", { src: e.snapshot_url, alt, loading: "lazy", width: 320, height: 240 }))
          : null,
        h("div", { class: "caption" },
          h("strong", {}, `${e.label} ${num(e.score * 100)}%`), " · ", e.rule,
          h("div", { class: "muted" }, `${cameraKey(e)} · ${when}`),
          e.message ? h("div", {}, e.message) : null));
    }));
  }
}
