// Time-series charts (uPlot) in the centre's time zone, sized to their container, styled for the dark theme.
import uPlot from "/static/vendor/uplot-1.6.32/uPlot.esm.js";

import { colourAt } from "./dom.js";
import { validTime } from "./time.js";

const AXIS = { stroke: "#a3b1bf", grid: { stroke: "#2f3b49", width: 1 }, ticks: { stroke: "#2f3b49" } };

/**
 * A uPlot chart of series sharing one time axis (x in seconds, as uPlot wants).
 * Example: const c = new TimeChart(el, fmt, { yLabel: "AQI" }); c.set([ts], [{ label: "pm25", values }]);
 * Options: yLabel, bars (draw bars, for amounts per interval), bands ([{from, to, color}] drawn behind the
 * series), lines ([{value, color, label}] horizontal thresholds), height.
 */
export class TimeChart {
  constructor(el, fmt, options = {}) {
    this.el = el;
    this.fmt = fmt;
    this.options = options;
    this.plot = null;
    this.labels = null;
    this.resize = new ResizeObserver(() => this.plot?.setSize(this._size()));
    this.resize.observe(el);
  }

  _size() {
    return { width: Math.max(200, this.el.clientWidth), height: this.options.height ?? 260 };
  }

  /** Draw `xs` (UTC ms) against each series' `values` (null = no data); rebuilt when the series change. */
  set(xs, series) {
    const data = [xs.map((ms) => ms / 1000), ...series.map((s) => s.values)];
    const labels = series.map((s) => s.label).join("\n");
    if (this.plot && labels === this.labels) {
      this.plot.setData(data);
      return;
    }
    this.plot?.destroy();
    this.labels = labels;
    this.plot = new uPlot(this._opts(series), data, this.el);
  }

  _opts(series) {
    const { bars, bands, lines, yLabel } = this.options;
    const tz = this.fmt.timeZone;
    return {
      ...this._size(),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), tz),
      cursor: { drag: { x: false, y: false } },
      scales: { y: { range: (u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 1, this._ceiling())] } },
      axes: [{ ...AXIS, values: (u, splits) => this._ticks(splits) }, { ...AXIS, label: yLabel, size: 60 }],
      series: [
        { label: "Time", value: (u, ts) => (ts === null ? "–" : this.fmt.dateTime(ts * 1000)) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color ?? colourAt(i),
          fill: bars ? `${s.color ?? colourAt(i)}99` : undefined,
          width: 2,
          spanGaps: false,
          paths: bars ? uPlot.paths.bars({ size: [0.8, 40] }) : undefined,
          points: bars ? { show: false } : { size: 5 }, // uPlot shows points only where they are sparse
        })),
      ],
      hooks: {
        drawClear: bands ? [(u) => drawBands(u, bands)] : [],
        draw: lines ? [(u) => drawLines(u, lines)] : [],
      },
    };
  }

  /** 24-hour clock in the centre's zone; the date where the day changes (and on the first tick). */
  _ticks(splits) {
    const span = (splits.at(-1) - splits[0]) * 1000;
    let day = null;
    return splits.map((ts) => {
      const [date, time] = this.fmt.dateTime(ts * 1000).split(" ");
      const dayMonth = date.slice(8, 10) + "/" + date.slice(5, 7);
      if (span > 4 * 86400e3) return dayMonth;
      const label = day !== date ? `${time.slice(0, 5)}\n${dayMonth}` : time.slice(0, 5);
      day = date;
      return label;
    });
  }

  /** Thresholds stay in view even when the data is below them. */
  _ceiling() {
    return Math.max(0, ...(this.options.lines ?? []).map((l) => l.value * 1.1));
  }

  destroy() {
    this.resize.disconnect();
    this.plot?.destroy();
  }
}

function drawBands(u, bands) {
  const { ctx, bbox } = u;
  ctx.save();
  for (const b of bands) {
    const top = u.valToPos(Math.min(b.to, u.scales.y.max), "y", true);
    const bottom = u.valToPos(Math.max(b.from, u.scales.y.min), "y", true);
    if (bottom <= top) continue;
    ctx.fillStyle = b.color;
    ctx.globalAlpha = 0.18;
    ctx.fillRect(bbox.left, top, bbox.width, bottom - top);
  }
  ctx.restore();
}

function drawLines(u, lines) {
  const { ctx, bbox } = u;
  ctx.save();
  ctx.setLineDash([8, 6]);
  ctx.lineWidth = 2;
  ctx.font = `${12 * devicePixelRatio}px system-ui, sans-serif`;
  ctx.textAlign = "left"; // uPlot leaves the axis labels' alignment behind
  ctx.textBaseline = "bottom";
  for (const l of lines) {
    const y = Math.round(u.valToPos(l.value, "y", true));
    ctx.strokeStyle = l.color;
    ctx.fillStyle = l.color;
    ctx.beginPath();
    ctx.moveTo(bbox.left, y);
    ctx.lineTo(bbox.left + bbox.width, y);
    ctx.stroke();
    ctx.fillText(l.label, bbox.left + 6, y - 5);
  }
  ctx.restore();
}

/**
 * Aligned columns for a chart: `value(item)` per series `key(item)` in buckets of `bucketMs`, summed
 * (amounts: counts, rain) or averaged (`mean`: levels, AQI). Items without a valid time are left out.
 */
export function bucketSeries(items, bucketMs, key, value, { mean = false } = {}) {
  const times = new Set();
  const acc = new Map();
  for (const it of items) {
    const v = value(it);
    if (v === null || v === undefined || !validTime(it.ts_ms)) continue; // a time no axis can place
    const t = Math.floor(it.ts_ms / bucketMs) * bucketMs;
    const k = key(it);
    times.add(t);
    if (!acc.has(k)) acc.set(k, new Map());
    const [sum, n] = acc.get(k).get(t) ?? [0, 0];
    acc.get(k).set(t, [sum + v, n + 1]);
  }
  const xs = [...times].sort((a, b) => a - b);
  const series = [...acc.keys()].sort().map((k) => ({
    label: k,
    values: xs.map((t) => {
      const cell = acc.get(k).get(t);
      return cell ? (mean ? cell[0] / cell[1] : cell[0]) : null;
    }),
  }));
  return { xs, series };
}

/** Bucket width for a range: about 60-300 points across the chart. */
export function bucketFor(rangeMs) {
  const steps = [60e3, 5 * 60e3, 15 * 60e3, 3600e3, 3 * 3600e3];
  return steps.find((s) => rangeMs / s <= 300) ?? steps[steps.length - 1];
}
