// Environment: particulate matter with the VN_AQI colour bands, rain, and river levels against their thresholds.
import { fetchAll, unseen } from "../api.js";
import { AqiBands } from "../aqi.js";
import { bucketFor, bucketSeries, TimeChart } from "../chart.js";
import { coalesce, h, num, replace } from "../dom.js";
import { ago, RANGES } from "../time.js";

const PM = { pm25: "PM2.5", pm10: "PM10" };
const RAIN = "rain_mm";
const LEVEL = "water_level_m";

/** Latest summary with a value per device/sensor/quantity. */
function latest(items) {
  const out = new Map();
  for (const it of items) {
    if (it.count === 0) continue;
    const k = `${it.device}/${it.sensor}/${it.quantity}`;
    if (!out.has(k) || out.get(k).ts_ms < it.ts_ms) out.set(k, it);
  }
  return out;
}

/** [name, value] pairs by name. */
function byName(a, b) {
  return a[0].localeCompare(b[0]);
}

function panel(id, title, ...children) {
  return h("section", { class: "panel", id, "aria-labelledby": `${id}-title` },
    h("h2", { id: `${id}-title` }, title), ...children);
}

export class View {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.bands = new AqiBands(ctx.settings.aqi_bands);
    this.thresholds = ctx.settings.water_level_thresholds ?? {};
    this.rangeMs = RANGES[2].ms;
    this.items = [];
    this.error = h("p", { class: "message error", role: "alert", hidden: true });
    this.airTiles = h("div", { class: "grid" });
    this.rainTiles = h("div", { class: "grid" });
    this.levelTiles = h("div", { class: "grid" });
    const charts = {
      air: h("div", { class: "chart", role: "img", "aria-label": "AQI over time" }),
      rain: h("div", { class: "chart", role: "img", "aria-label": "Rain per interval" }),
      level: h("div", { class: "chart", role: "img", "aria-label": "Water level over time" }),
    };
    const range = h("select", { on: { change: (e) => this.setRange(Number(e.target.value)) } },
      RANGES.map((r) => h("option", { value: r.ms, selected: r.ms === this.rangeMs }, r.label)));
    root.append(
      h("div", { class: "toolbar" }, h("label", {}, "Last", range)),
      this.error,
      panel("air", "Air: particulate matter and VN_AQI", this.airTiles, this.legend(), charts.air),
      panel("rain", "Rain", this.rainTiles, charts.rain),
      panel("level", "Water level", this.levelTiles, charts.level));
    this.charts = {
      air: new TimeChart(charts.air, ctx.fmt, { yLabel: "AQI", bands: this.bands.chartBands() }),
      rain: new TimeChart(charts.rain, ctx.fmt, { yLabel: "mm", bars: true }),
      level: new TimeChart(charts.level, ctx.fmt, { yLabel: "m", lines: this.thresholdLines() }),
    };
    this.redraw = coalesce(() => this.render(), 1000);
  }

  start() {
    this.offs = [
      this.ctx.live.on("summary", (items) => {
        this.items.push(...unseen(this.items, items));
        this.redraw();
      }),
      this.ctx.live.onResume(() => this.load()),
    ];
    this.timer = setInterval(this.redraw, 30000); // ages and the range's start move on
    this.load();
  }

  stop() {
    this.offs.forEach((off) => off());
    clearInterval(this.timer);
    this.redraw.cancel();
    Object.values(this.charts).forEach((c) => c.destroy());
  }

  setRange(ms) {
    this.rangeMs = ms;
    this.load();
  }

  async load() {
    try {
      // Newest first: should the range hold more than fetchAll's cap, the part left out is the oldest.
      const from = Math.round(Date.now() - this.rangeMs);
      this.items = await fetchAll("/api/v1/summaries", { from, order: "desc" });
      this.error.hidden = true;
    } catch (err) {
      this.error.textContent = `Could not load the summaries: ${err.message}`;
      this.error.hidden = false;
    }
    this.render();
  }

  render() {
    const since = Date.now() - this.rangeMs;
    this.items = this.items.filter((it) => it.ts_ms >= since);
    const last = latest(this.items);
    const bucket = bucketFor(this.rangeMs);
    const key = (it) => `${it.device}/${it.sensor}`;
    this.renderAir(last);
    this.renderRain(since);
    this.renderLevel(last);
    const pm = this.items.filter((it) => it.quantity in PM);
    const air = bucketSeries(pm, bucket, (it) => `${key(it)} ${PM[it.quantity]}`, (it) => it.aqi, { mean: true });
    this.charts.air.set(air.xs, air.series);
    const rain = bucketSeries(this.items.filter((it) => it.quantity === RAIN), bucket, key, (it) => it.total);
    this.charts.rain.set(rain.xs, rain.series);
    const levels = this.items.filter((it) => it.quantity === LEVEL);
    const level = bucketSeries(levels, bucket, key, (it) => it.mean, { mean: true });
    this.charts.level.set(level.xs, level.series);
  }

  renderAir(last) {
    const now = Date.now();
    const sensors = new Map();
    for (const it of last.values()) {
      if (!(it.quantity in PM)) continue;
      const k = `${it.device}/${it.sensor}`;
      sensors.set(k, { ...sensors.get(k), [it.quantity]: it });
    }
    if (!sensors.size) return replace(this.airTiles, h("p", { class: "empty" }, "No particulate readings in this range."));
    replace(this.airTiles, [...sensors].sort(byName).map(([name, q]) =>
      h("div", { class: "tile", dataset: { sensor: name } }, h("h3", {}, name),
        Object.keys(PM).filter((k) => q[k]).map((k) => this.pmLine(q[k])),
        h("div", { class: "muted" }, `${ago(Math.max(...Object.values(q).map((i) => i.ts_ms)), now)} ago`))));
  }

  pmLine(it) {
    const band = this.bands.of(it.aqi_band ?? it.aqi) ?? this.bands.of(it.aqi);
    return h("div", { class: "pm", dataset: { quantity: it.quantity } },
      h("span", { class: "value" }, num(it.mean, 1)), h("span", { class: "unit" }, `µg/m³ ${PM[it.quantity]}`), " ",
      band ? h("span", { class: "aqi", style: { background: band.color, color: AqiBands.textOn(band.color) },
        title: `VN_AQI ${it.aqi}: ${band.label_en}` }, `AQI ${num(it.aqi)} · ${band.label_vi}`) : null);
  }

  renderRain(since) {
    const hourAgo = Date.now() - 3600e3;
    const sums = new Map();
    for (const it of this.items) {
      if (it.quantity !== RAIN) continue;
      const k = `${it.device}/${it.sensor}`;
      const [hour, range] = sums.get(k) ?? [0, 0];
      sums.set(k, [hour + (it.ts_ms >= hourAgo ? it.total : 0), range + it.total]);
    }
    if (!sums.size) return replace(this.rainTiles, h("p", { class: "empty" }, "No rain gauge in this range."));
    const hours = Math.round((Date.now() - since) / 3600e3);
    replace(this.rainTiles, [...sums].sort(byName).map(([name, [hour, range]]) =>
      h("div", { class: "tile", dataset: { sensor: name } }, h("h3", {}, name),
        h("div", {}, h("span", { class: "value" }, num(hour, 1)), h("span", { class: "unit" }, "mm last hour")),
        h("div", { class: "muted" }, `${num(range, 1)} mm in ${hours} h`))));
  }

  renderLevel(last) {
    const now = Date.now();
    const levels = [...last.values()].filter((it) => it.quantity === LEVEL).sort((a, b) =>
      `${a.device}/${a.sensor}`.localeCompare(`${b.device}/${b.sensor}`));
    if (!levels.length) return replace(this.levelTiles, h("p", { class: "empty" }, "No water level in this range."));
    replace(this.levelTiles, levels.map((it) => {
      const t = this.threshold(it);
      const state = !t ? "" : it.mean >= t.alarm ? "alarm" : it.mean >= t.warn ? "warning" : "normal";
      const cls = { alarm: "bad-text", warning: "warn-text", normal: "state-on" }[state] ?? "";
      return h("div", { class: "tile", dataset: { sensor: `${it.device}/${it.sensor}`, state } },
        h("h3", {}, `${it.device}/${it.sensor}`),
        h("div", {}, h("span", { class: `value ${cls}` }, num(it.mean, 2)), h("span", { class: "unit" }, "m"),
          state ? h("span", { class: cls }, ` ${state}`) : null),
        h("div", { class: "muted" }, t ? `warn ${num(t.warn, 2)} m · alarm ${num(t.alarm, 2)} m` : "no thresholds set"),
        h("div", { class: "muted" }, `${ago(it.ts_ms, now)} ago`));
    }));
  }

  /** Thresholds are set per sensor name (the driver's name on the node), or per "device/sensor". */
  threshold(it) {
    return this.thresholds[`${it.device}/${it.sensor}`] ?? this.thresholds[it.sensor] ?? null;
  }

  thresholdLines() {
    return Object.entries(this.thresholds).flatMap(([sensor, t]) => [
      { value: t.warn, color: "#f0b429", label: `${sensor} warn ${t.warn} m` },
      { value: t.alarm, color: "#ff6b5f", label: `${sensor} alarm ${t.alarm} m` },
    ]);
  }

  legend() {
    return h("div", { class: "legend", "aria-label": "VN_AQI bands" }, this.bands.bands.map((b) =>
      h("span", { class: "aqi", style: { background: b.color, color: AqiBands.textOn(b.color) } },
        `${b.min}–${b.max} ${b.label_vi} (${b.label_en})`)));
  }
}
