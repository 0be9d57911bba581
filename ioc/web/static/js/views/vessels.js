// Vessels: tracks on a map (tiles from settings.tile_url, or a plain background with a graticule when the
// centre is offline), each vessel's last position and its age; new positions arrive from the live stream.
import { api, fetchAll } from "../api.js";
import { colourOf, h, num, replace } from "../dom.js";
import { agoSpan, RANGES, refreshAges } from "../time.js";
import { Graticule, loadLeaflet } from "../map.js";

const HUE = [16.4637, 107.5909];
const STALE_MS = 5 * 60e3; // a vessel silent this long is marked stale (amber), twice that lost (red)
const MAX_POINTS = 30000; // per vessel and load: a day at one fix a second would be too much for a wall screen

/** One vessel: its track, its marker and its last fix. */
class Vessel {
  constructor(L, layer, device) {
    this.device = device;
    this.colour = colourOf(device);
    this.points = [];
    this.seen = new Set(); // ts_ms of the points: the live stream may repeat what a fetch already brought
    this.last = null;
    this.line = L.polyline([], { color: this.colour, weight: 3, opacity: 0.85, interactive: false }).addTo(layer);
    this.marker = L.circleMarker(HUE, { radius: 7, color: "#0e1318", weight: 2, fillColor: this.colour,
      fillOpacity: 1 });
    this.marker.bindTooltip(device, { permanent: true, direction: "right", offset: [8, 0],
      className: "vessel-label" });
  }

  /** Add fixes (any order, repeats ignored); the track stays in time order and within the range. */
  add(fixes, layer, sinceMs) {
    const fresh = [];
    for (const f of fixes) {
      if (f.lat === null || f.lon === null || this.seen.has(f.ts_ms)) continue;
      this.seen.add(f.ts_ms);
      fresh.push(f);
    }
    if (!fresh.length) return;
    fresh.sort((a, b) => a.ts_ms - b.ts_ms);
    const appendOnly = !this.points.length || fresh[0].ts_ms >= this.points.at(-1).ts_ms;
    this.points.push(...fresh);
    if (!appendOnly) this.points.sort((a, b) => a.ts_ms - b.ts_ms);
    // Points older than the range go, except the last one: a vessel silent for a day still shows where it was.
    const first = this.points.findIndex((p) => p.ts_ms >= sinceMs);
    const cut = first === -1 ? this.points.length - 1 : first;
    if (cut > 0) for (const p of this.points.splice(0, cut)) this.seen.delete(p.ts_ms);
    if (appendOnly && cut <= 0) for (const f of fresh) this.line.addLatLng([f.lat, f.lon]);
    else this.line.setLatLngs(this.points.map((p) => [p.lat, p.lon]));
    this.last = this.points.at(-1);
    this.marker.setLatLng([this.last.lat, this.last.lon]);
    if (!layer.hasLayer(this.marker)) this.marker.addTo(layer);
  }

  remove(layer) {
    layer.removeLayer(this.line);
    layer.removeLayer(this.marker);
  }
}

/** The row class of a fix this old: "" fresh, "stale" (amber), "offline" (red). */
function staleness(ageMs) {
  return ageMs > 2 * STALE_MS ? "offline" : ageMs > STALE_MS ? "stale" : "";
}

/** "7.5 kn · 80° · 9 sats": what the fix says about the vessel's motion and its quality. */
function motion(p) {
  const parts = [];
  if (p.speed_kn !== null && p.speed_kn !== undefined) parts.push(`${num(p.speed_kn, 1)} kn`);
  if (p.course_deg !== null && p.course_deg !== undefined) parts.push(`${num(p.course_deg, 0)}°`);
  if (p.sats !== null && p.sats !== undefined) parts.push(`${p.sats} sats`);
  return parts.join(" · ") || "no speed or course";
}

export class View {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.rangeMs = RANGES[0].ms;
    this.vessels = new Map();
    this.fitted = false;
    this.mapEl = h("div", { class: "map", id: "vessel-map", role: "region", "aria-label": "Map of vessel tracks" });
    this.body = h("tbody");
    this.error = h("p", { class: "message error", role: "alert", hidden: true });
    const range = h("select", { id: "vessel-range", on: { change: (e) => this.setRange(Number(e.target.value)) } },
      RANGES.slice(0, 3).map((r) => h("option", { value: r.ms }, r.label)));
    root.append(
      h("div", { class: "toolbar" },
        h("label", {}, "Tracks of the last", range),
        h("button", { type: "button", on: { click: () => this.fit() } }, "Show all vessels"),
        h("span", { class: "muted", id: "vessel-count" })),
      this.error,
      h("div", { class: "vessels" }, this.mapEl,
        h("div", { class: "panel vessel-list" }, h("table", { id: "vessels" },
          h("caption", { class: "visually-hidden" }, "Vessels and their last position"),
          h("thead", {}, h("tr", {}, ["Vessel", "Last position", "Age"].map((t) =>
            h("th", { scope: "col" }, t)))), this.body))));
  }

  async start() {
    this.offs = [
      this.ctx.live.on("position", (items) => this.onPositions(items)),
      this.ctx.live.onResume(() => this.load()),
    ];
    this.timer = setInterval(() => this.tick(), 1000);
    try {
      this.L = await loadLeaflet();
    } catch (err) {
      this.showError(err);
      return;
    }
    if (this.stopped) return;
    this.initMap();
    this.load();
  }

  stop() {
    this.stopped = true;
    this.offs.forEach((off) => off());
    clearInterval(this.timer);
    this.graticule?.remove();
    this.map?.remove();
  }

  initMap() {
    const L = this.L;
    // No zoom animation: a map removed mid-animation (the operator switched pages) throws when it ends, and a
    // wall screen gains nothing from it.
    this.map = L.map(this.mapEl, { preferCanvas: true, worldCopyJump: true, zoomSnap: 0.5, zoomAnimation: false,
      zoomControl: false, attributionControl: false }).setView(HUE, 11);
    // Controls at the top right: the graticule's labels run along the left and bottom edges.
    L.control.zoom({ position: "topright" }).addTo(this.map);
    L.control.attribution({ position: "topright" }).addTo(this.map);
    const url = this.ctx.settings.tile_url;
    if (url) {
      L.tileLayer(url, { maxZoom: 19, attribution: this.ctx.settings.tile_attribution ?? "" }).addTo(this.map);
    } else {
      this.mapEl.classList.add("plain");
      this.graticule = new Graticule(L, this.map);
    }
    this.layer = L.layerGroup().addTo(this.map);
  }

  setRange(ms) {
    this.rangeMs = ms;
    this.load();
  }

  async load() {
    if (!this.map || this.stopped) return;
    const since = Date.now() - this.rangeMs;
    try {
      const { items } = await api("/api/v1/vessels");
      const tracks = await Promise.all(items.map((v) =>
        // Newest first: when a long track hits the cap, what is left out is its oldest part.
        fetchAll("/api/v1/positions", { device: v.device, from: Math.round(since), order: "desc" }, MAX_POINTS)));
      for (const v of this.vessels.values()) v.remove(this.layer);
      this.vessels.clear();
      // The vessel's last fix too: it may be older than the range, or beyond the points fetched.
      items.forEach((v, i) => this.vessel(v.device).add([...tracks[i], v], this.layer, since));
      this.error.hidden = true;
    } catch (err) {
      this.showError(err);
    }
    if (this.stopped) return; // the operator left while the tracks were loading
    this.renderList();
    if (!this.fitted && this.vessels.size) {
      this.fit();
      this.fitted = true;
    }
  }

  vessel(device) {
    if (!this.vessels.has(device)) this.vessels.set(device, new Vessel(this.L, this.layer, device));
    return this.vessels.get(device);
  }

  onPositions(items) {
    if (!this.map) return;
    const since = Date.now() - this.rangeMs;
    const byDevice = new Map();
    for (const p of items) byDevice.set(p.device, [...(byDevice.get(p.device) ?? []), p]);
    for (const [device, fixes] of byDevice) this.vessel(device).add(fixes, this.layer, since);
    this.renderList();
    if (!this.fitted) {
      this.fit();
      this.fitted = true;
    }
  }

  fit() {
    const all = [...this.vessels.values()].flatMap((v) => v.points.map((p) => [p.lat, p.lon]));
    if (all.length) this.map.fitBounds(this.L.latLngBounds(all), { padding: [40, 40], maxZoom: 15 });
  }

  focus(vessel) {
    if (vessel.last) this.map.setView([vessel.last.lat, vessel.last.lon], Math.max(this.map.getZoom(), 14));
  }

  /** Ages move on by themselves: rewrite them and the rows' stale marks, leave the rest (and focus) alone. */
  tick() {
    const now = Date.now();
    refreshAges(this.body, now);
    for (const row of this.body.rows) if (row.dataset.ts) row.className = staleness(now - Number(row.dataset.ts));
  }

  renderList() {
    const now = Date.now();
    const list = [...this.vessels.values()].filter((v) => v.last).sort((a, b) => a.device.localeCompare(b.device));
    document.getElementById("vessel-count").textContent = `${list.length} vessel${list.length === 1 ? "" : "s"}`;
    if (!list.length) {
      replace(this.body, h("tr", {}, h("td", { colspan: 3, class: "empty" }, "No vessel has reported a position.")));
      return;
    }
    replace(this.body, list.map((v) => {
      const p = v.last;
      return h("tr", { class: staleness(now - p.ts_ms), dataset: { device: v.device, points: v.points.length, ts: p.ts_ms } },
        h("th", { scope: "row" }, h("span", { class: "swatch", style: { background: v.colour } }),
          h("button", { type: "button", class: "link", title: "Show on the map", on: { click: () => this.focus(v) } },
            v.device)),
        h("td", { class: "nowrap" }, h("span", { class: "position" }, `${num(p.lat, 5)}, ${num(p.lon, 5)}`),
          h("span", { class: "detail" }, motion(p))),
        h("td", { class: "nowrap", title: this.ctx.fmt.dateTime(p.ts_ms) }, agoSpan(p.ts_ms, ""),
          h("span", { class: "detail" }, this.ctx.fmt.short(p.ts_ms, now))));
    }));
  }

  showError(err) {
    this.error.textContent = `Could not load the vessels: ${err.message}`;
    this.error.hidden = false;
  }
}
