// Warnings (issue 16): compose a CAP warning with its area drawn on the map, see how many nodes it reaches,
// issue it (operators), then follow its receipts per target live; flagged targets (not acknowledged in
// time) one click away; cancel and update. #/warnings lists and composes, #/warnings?id=ID shows one.
import { api } from "../api.js";
import { coalesce, h, replace } from "../dom.js";
import { Graticule, loadLeaflet } from "../map.js";

const HUE = [16.4637, 107.5909];
const POLL_MS = 2000; // receipts arrive on the nodes' uplinks: the page asks again this often
const PATTERNS = ["storm", "flood-2", "flood-3", "tsunami", "exercise"]; // the nodes' defaults (edge.outputs)
const SEVERITIES = ["Extreme", "Severe", "Moderate", "Minor", "Unknown"];
const URGENCIES = ["Immediate", "Expected", "Future", "Past", "Unknown"];
const CERTAINTIES = ["Observed", "Likely", "Possible", "Unlikely", "Unknown"];
const STATUSES = ["Actual", "Exercise", "Test"];
const AREA_STYLE = { color: "#ff6b5f", weight: 2, fillOpacity: 0.15 };

/** A select of `values`, `value` chosen; `labels` maps a value to its text. */
function select(id, values, value, labels = {}) {
  return h("select", { id }, values.map((v) => h("option", { value: v, selected: v === value }, labels[v] ?? v)));
}

function field(label, control) {
  return h("label", { class: "field" }, h("span", {}, label), control);
}

/**
 * The area drawn on the map: click points then "Close polygon", or "Circle" then click its centre (radius
 * from the km field). `onChange` after every shape added or cleared.
 */
class AreaDrawer {
  constructor(L, map, onChange) {
    Object.assign(this, { L, map, onChange, mode: null, open: [], polygons: [], circles: [] });
    this.layer = L.layerGroup().addTo(map);
    this.openLine = L.polyline([], { ...AREA_STYLE, dashArray: "4 4" }).addTo(this.layer);
    this.radius = h("input", { id: "w-radius", type: "number", min: 0.1, step: 0.1, value: 20, size: 5 });
    this.polygonButton = h("button", { type: "button", id: "w-draw-polygon", "aria-pressed": "false",
      on: { click: () => this.setMode(this.mode === "polygon" ? null : "polygon") } }, "Draw polygon");
    this.closeButton = h("button", { type: "button", id: "w-close-polygon", disabled: true,
      on: { click: () => this.closePolygon() } }, "Close polygon");
    this.circleButton = h("button", { type: "button", id: "w-draw-circle", "aria-pressed": "false",
      on: { click: () => this.setMode(this.mode === "circle" ? null : "circle") } }, "Circle");
    this.el = h("div", { class: "toolbar", id: "w-area-tools" }, this.polygonButton, this.closeButton,
      this.circleButton, h("label", {}, "Radius km", this.radius),
      h("button", { type: "button", on: { click: () => this.clear() } }, "Clear area"));
    this.onClick = (e) => this.click(e.latlng);
    map.on("click", this.onClick);
  }

  setMode(mode) {
    this.mode = mode;
    this.polygonButton.setAttribute("aria-pressed", String(mode === "polygon"));
    this.circleButton.setAttribute("aria-pressed", String(mode === "circle"));
    this.map.getContainer().classList.toggle("drawing", mode !== null);
  }

  click({ lat, lng }) {
    const point = [round(lat), round(lng)];
    if (this.mode === "polygon") {
      this.open.push(point);
      this.openLine.setLatLngs(this.open);
      this.closeButton.disabled = this.open.length < 3;
    } else if (this.mode === "circle") {
      const km = Number(this.radius.value);
      if (!(km > 0)) return;
      this.circles.push([...point, km]);
      this.L.circle(point, { ...AREA_STYLE, radius: km * 1000 }).addTo(this.layer);
      this.setMode(null);
      this.onChange();
    }
  }

  closePolygon() {
    if (this.open.length < 3) return;
    this.polygons.push(this.open);
    this.L.polygon(this.open, AREA_STYLE).addTo(this.layer);
    this.open = [];
    this.openLine.setLatLngs([]);
    this.closeButton.disabled = true;
    this.setMode(null);
    this.onChange();
  }

  clear() {
    Object.assign(this, { open: [], polygons: [], circles: [] });
    this.layer.clearLayers();
    this.openLine = this.L.polyline([], { ...AREA_STYLE, dashArray: "4 4" }).addTo(this.layer);
    this.closeButton.disabled = true;
    this.onChange();
  }

  /** The API's areas: one, named `desc`, or none when nothing is drawn. */
  areas(desc) {
    if (!this.polygons.length && !this.circles.length) return [];
    return [{ area_desc: desc || "Drawn area", polygons: this.polygons, circles: this.circles }];
  }

  remove() {
    this.map.off("click", this.onClick);
    this.layer.remove();
  }
}

function round(degrees) {
  return Math.round(degrees * 1e5) / 1e5; // about a metre: enough for a warning's area
}

/** Draw an alert's areas (its JSON) on `layer`; their bounds, or null. */
function drawAreas(L, layer, alert) {
  const shapes = (alert?.areas ?? []).flatMap((a) => [
    ...a.polygons.map((ring) => L.polygon(ring, AREA_STYLE)),
    ...a.circles.map(([lat, lon, km]) => L.circle([lat, lon], { ...AREA_STYLE, radius: km * 1000 })),
  ]);
  shapes.forEach((s) => s.addTo(layer));
  return shapes.length ? L.featureGroup(shapes).getBounds() : null;
}

/** The form of a warning's content (empty, or an original's for an Update) and what it reads back. */
class WarningForm {
  constructor(original, { update = false } = {}) {
    const vi = original?.infos.find((i) => i.language.startsWith("vi")) ?? original?.infos[0];
    const en = original?.infos.find((i) => i.language.startsWith("en"));
    const text = (id, value = "", rows = 0) => rows
      ? h("textarea", { id, rows }, value)
      : h("input", { id, value, autocomplete: "off" });
    this.c = {
      event: text("w-event", vi?.event), eventEn: text("w-event-en", en?.event),
      headline: text("w-headline", vi?.headline), headlineEn: text("w-headline-en", en?.headline),
      description: text("w-description", vi?.description, 2), descriptionEn: text("w-description-en", en?.description, 2),
      instruction: text("w-instruction", vi?.instruction, 2), instructionEn: text("w-instruction-en", en?.instruction, 2),
      severity: select("w-severity", SEVERITIES, vi?.severity ?? "Severe"),
      urgency: select("w-urgency", URGENCIES, vi?.urgency ?? "Immediate"),
      certainty: select("w-certainty", CERTAINTIES, vi?.certainty ?? "Likely"),
      status: select("w-status", STATUSES, original?.status ?? "Actual"),
      pattern: select("w-pattern", ["", ...PATTERNS], original?.pattern ?? "storm", { "": "none: shown only" }),
      expires: h("input", { id: "w-expires", type: "number", min: 0.1, step: "any", value: 6, size: 4 }),
      selector: h("input", { id: "w-selector", placeholder: "every node", autocomplete: "off" }),
      ackWithin: h("input", { id: "w-ack-within", type: "number", min: 0, step: "any", value: 10, size: 4 }),
      areaDesc: text("w-area-desc", original?.areas[0]?.area_desc),
    };
    const c = this.c;
    c.event.required = true;
    this.el = h("div", { class: "warning-form" },
      h("div", { class: "form-grid" },
        field("Event (vi)", c.event), field("Event (en)", c.eventEn),
        field("Headline (vi)", c.headline), field("Headline (en)", c.headlineEn),
        field("Description (vi)", c.description), field("Description (en)", c.descriptionEn),
        field("Instruction (vi)", c.instruction), field("Instruction (en)", c.instructionEn)),
      h("div", { class: "toolbar" }, field("Severity", c.severity), field("Urgency", c.urgency),
        field("Certainty", c.certainty), field("Status", c.status), field("Pattern", c.pattern),
        field("Expires in (h)", c.expires)),
      h("div", { class: "toolbar" }, update ? null : field("Labels", c.selector),
        field("Acknowledge within (min)", c.ackWithin), field("Area name", c.areaDesc)));
  }

  /** The body of POST /api/v1/warnings (or .../update), with `areas` (the drawn ones, or the original's). */
  body(areas) {
    const c = this.c;
    const v = (el) => el.value.trim();
    const en = v(c.eventEn) || v(c.headlineEn) || v(c.descriptionEn) || v(c.instructionEn);
    return {
      vi: { event: v(c.event), headline: v(c.headline), description: v(c.description), instruction: v(c.instruction) },
      en: en ? { event: v(c.eventEn) || v(c.event), headline: v(c.headlineEn), description: v(c.descriptionEn),
        instruction: v(c.instructionEn) } : null,
      severity: c.severity.value, urgency: c.urgency.value, certainty: c.certainty.value, status: c.status.value,
      pattern: c.pattern.value,
      expires_in_s: Math.round(Number(c.expires.value) * 3600),
      ack_within_s: Math.round(Number(c.ackWithin.value) * 60),
      areas,
    };
  }
}

/** A receipt time as a cell: the time in the centre's zone, "–" before it came. */
function timeCell(fmt, ms, ...details) {
  return h("td", { class: "nowrap" }, ms === null ? "–" : fmt.time(ms), ...details);
}

export class View {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.id = new URLSearchParams(location.hash.split("?")[1] ?? "").get("id");
    this.error = h("p", { class: "message error", role: "alert", hidden: true });
    this.mapEl = h("div", { class: "map", id: "warning-map", role: "region", "aria-label": "Map of the warning's area" });
    this.side = h("div", { class: "panel warning-side" });
    root.append(this.error, h("div", { class: "warnings" }, this.side, this.mapEl));
    this.below = h("div", {});
    root.append(this.below);
  }

  async start() {
    try {
      this.L = await loadLeaflet();
    } catch (err) {
      this.showError(err);
      return;
    }
    if (this.stopped) return;
    this.initMap();
    if (this.id) this.startDetail();
    else this.startList();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    this.reach?.cancel();
    this.drawer?.remove();
    this.graticule?.remove();
    this.map?.remove();
  }

  initMap() {
    const L = this.L;
    this.map = L.map(this.mapEl, { zoomSnap: 0.5, zoomAnimation: false, zoomControl: false,
      attributionControl: false, doubleClickZoom: false }).setView(HUE, 9);
    L.control.zoom({ position: "topright" }).addTo(this.map);
    const url = this.ctx.settings.tile_url;
    if (url) L.tileLayer(url, { maxZoom: 19 }).addTo(this.map);
    else {
      this.mapEl.classList.add("plain");
      this.graticule = new Graticule(L, this.map);
    }
    this.stations = L.layerGroup().addTo(this.map);
    this.areaLayer = L.layerGroup().addTo(this.map);
    this.loadPlaces();
  }

  /** The stations with a reported place, as dots; `reached` (devices) drawn filled. */
  async loadPlaces() {
    try {
      this.places = (await api("/api/v1/places")).items.filter((p) => p.lat !== null && p.lon !== null);
    } catch (err) {
      this.showError(err);
      return;
    }
    this.drawStations(new Set());
  }

  drawStations(reached) {
    if (!this.places || this.stopped) return;
    this.stations.clearLayers();
    for (const p of this.places) {
      this.L.circleMarker([p.lat, p.lon], { radius: 6, color: "#0e1318", weight: 2, interactive: false,
        fillColor: reached.has(p.device) ? "#ffd166" : "#5aa9ff", fillOpacity: 1 })
        .bindTooltip(p.device, { permanent: true, direction: "right", offset: [8, 0], className: "vessel-label" })
        .addTo(this.stations);
    }
  }

  // -- the list and the composer ------------------------------------------------------------------

  startList() {
    this.list = h("tbody");
    replace(this.below, h("div", { class: "panel table-wrap" },
      h("div", { class: "toolbar" }, h("h2", {}, "Warnings"),
        h("a", { href: "/api/v1/warnings.csv", download: "warnings.csv" }, "Download CSV")),
      h("table", { id: "warnings" }, h("thead", {}, h("tr", {}, ["Issued", "Warning", "State", "Targets",
        "Delivered", "Sounded", "Acknowledged"].map((t) => h("th", { scope: "col" }, t)))), this.list)));
    if (this.ctx.isOperator) this.compose();
    else replace(this.side, h("p", { class: "muted", id: "warnings-viewer-note" },
      "Signed in as a viewer: issuing warnings needs an operator."));
    this.timer = setInterval(() => this.loadList(), POLL_MS);
    this.loadList();
  }

  compose(original = null) {
    const update = original !== null;
    this.form = new WarningForm(original?.alert ?? null, { update });
    if (update) this.form.c.ackWithin.value = original.warning.ack_within_s / 60;
    this.reach = coalesce(() => update || this.loadReach(), 300); // an Update goes to the original's targets
    if (!this.drawer) this.drawer = new AreaDrawer(this.L, this.map, this.reach);
    this.reachEl = h("p", { id: "w-reach", role: "status" }, update ? "Goes to the original's targets." : "Reach: …");
    this.reachList = h("p", { class: "muted", id: "w-reach-list" });
    const submit = h("button", { type: "submit", class: "primary", id: update ? "w-send-update" : "w-issue" },
      update ? "Send update" : "Issue");
    const form = h("form", { id: "warning-compose", on: { submit: (e) => { e.preventDefault(); this.send(original); } } },
      h("h2", {}, update ? `Update ${original.warning.identifier}` : "New warning"), this.form.el,
      h("p", { class: "muted" }, update ? "Draw an area to replace the original's; none drawn keeps it."
        : "Draw the area on the map, or pick the nodes by their labels."),
      this.drawer.el, this.reachEl, this.reachList, h("div", { class: "toolbar" }, submit));
    replace(this.side, form);
    if (!update) this.form.c.selector.addEventListener("input", this.reach);
    if (!update) this.loadReach();
  }

  async loadReach() {
    const body = { areas: this.drawer.areas(this.form.c.areaDesc.value.trim()),
      selector: this.form.c.selector.value.trim() || null };
    try {
      const reach = await api("/api/v1/warnings/reach", { method: "POST", body });
      if (this.stopped) return;
      this.reachEl.textContent = `Reach: ${reach.count} node${reach.count === 1 ? "" : "s"}`;
      this.reachList.textContent = reach.targets.map((t) => `${t.device} (${t.why})`).join(", ");
      this.drawStations(new Set(reach.targets.map((t) => t.device)));
    } catch (err) {
      this.reachEl.textContent = `Reach: ${err.detail ?? err.message}`;
      this.reachList.textContent = "";
    }
  }

  async send(original) {
    const drawn = this.drawer.areas(this.form.c.areaDesc.value.trim());
    const body = this.form.body(original && !drawn.length ? original.alert.areas : drawn);
    let path = "/api/v1/warnings";
    if (original) {
      path = `/api/v1/warnings/${encodeURIComponent(original.warning.identifier)}/update`;
      delete body.selector;
    } else body.selector = this.form.c.selector.value.trim() || null;
    this.error.hidden = true;
    try {
      const sent = await api(path, { method: "POST", body });
      location.hash = `#/warnings?id=${encodeURIComponent(sent.warning.identifier)}`;
    } catch (err) {
      this.showError(err, original ? "Not updated" : "Not issued");
    }
  }

  async loadList() {
    try {
      const page = await api("/api/v1/warnings", { params: { limit: 100 } });
      if (this.stopped) return;
      const fmt = this.ctx.fmt;
      if (!page.items.length) {
        replace(this.list, h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No warnings yet.")));
        return;
      }
      replace(this.list, page.items.map((w) => h("tr", { dataset: { identifier: w.identifier, state: w.state } },
        h("td", { class: "nowrap" }, fmt.dateTime(w.issued_ms), h("span", { class: "detail" }, `by ${w.issuer}`)),
        h("th", { scope: "row" }, h("a", { href: `#/warnings?id=${encodeURIComponent(w.identifier)}` },
          `${w.event}${w.headline ? `: ${w.headline}` : ""}`), h("span", { class: "detail" },
          `${w.msg_type} · ${w.severity} · ${w.status}${w.origin === "local" ? ` · ${w.device}'s own` : ""}`)),
        h("td", {}, w.state), h("td", { class: "num" }, w.targets), h("td", { class: "num" }, w.delivered),
        h("td", { class: "num" }, w.sounded), h("td", { class: "num" }, w.acknowledged))));
    } catch (err) {
      this.showError(err);
    }
  }

  // -- one warning and its receipts ---------------------------------------------------------------

  startDetail() {
    this.unackedOnly = false;
    this.head = h("div", { id: "warning-head" });
    this.receipts = h("tbody");
    this.allButton = h("button", { type: "button", id: "w-all", "aria-pressed": "true",
      on: { click: () => this.filter(false) } }, "All");
    this.unackedButton = h("button", { type: "button", id: "w-unacked", "aria-pressed": "false",
      on: { click: () => this.filter(true) } }, "Unacknowledged");
    const path = `/api/v1/warnings/${encodeURIComponent(this.id)}`;
    replace(this.side, this.head);
    replace(this.below, h("div", { class: "panel table-wrap" },
      h("div", { class: "toolbar" }, h("h2", {}, "Receipts"), this.allButton, this.unackedButton,
        h("a", { href: `${path}/receipts.csv`, download: "receipts.csv" }, "Download CSV"),
        h("a", { href: `${path}/cap.xml`, download: "warning.xml", id: "w-cap" }, "CAP XML"),
        h("a", { href: "#/warnings" }, "All warnings")),
      h("table", { id: "w-receipts" }, h("thead", {}, h("tr", {}, ["Target", "Command", "Delivered", "Sounded",
        "Displayed", "Acknowledged", "Ended", "Inside"].map((t) => h("th", { scope: "col" }, t)))), this.receipts)));
    this.timer = setInterval(() => this.loadDetail(), POLL_MS);
    this.loadDetail();
  }

  filter(unackedOnly) {
    this.unackedOnly = unackedOnly;
    this.allButton.setAttribute("aria-pressed", String(!unackedOnly));
    this.unackedButton.setAttribute("aria-pressed", String(unackedOnly));
    if (this.shown) this.renderReceipts(this.shown);
  }

  async loadDetail() {
    let shown;
    try {
      shown = await api(`/api/v1/warnings/${encodeURIComponent(this.id)}`);
    } catch (err) {
      if (!this.stopped) this.showError(err);
      return;
    }
    if (this.stopped) return;
    this.error.hidden = true;
    const first = !this.shown;
    this.shown = shown;
    if (first) {
      const bounds = drawAreas(this.L, this.areaLayer, shown.alert);
      if (bounds) this.map.fitBounds(bounds, { padding: [30, 30], maxZoom: 12 });
      this.renderHead(shown);
    } else if (this.state !== shown.warning.state) this.renderHead(shown);
    this.drawStations(new Set(shown.receipts.map((r) => r.device)));
    this.renderReceipts(shown);
  }

  renderHead({ warning: w, alert }) {
    if (this.composing) return; // the operator is writing an Update: leave the form alone
    this.state = w.state;
    const fmt = this.ctx.fmt;
    const canChange = this.ctx.isOperator && w.state === "active" && w.origin === "centre" && w.msg_type !== "Cancel";
    this.note = h("input", { id: "w-cancel-note", placeholder: "why (optional)", autocomplete: "off" });
    replace(this.head,
      h("h2", {}, `${w.event}${w.headline ? `: ${w.headline}` : ""}`),
      h("p", {}, h("span", { id: "w-state", class: `warning-state ${w.state}` }, w.state), " ",
        h("code", {}, w.identifier)),
      h("p", { class: "muted" }, `${w.msg_type} · ${w.status} · ${w.severity} · ${w.urgency} · pattern ${w.pattern || "none"}`,
        h("br"), `Issued ${fmt.dateTime(w.issued_ms)} by ${w.issuer}`, h("br"),
        w.expires_ms !== null ? `Expires ${fmt.dateTime(w.expires_ms)}` : "",
        w.refers_to ? h("span", {}, h("br"), "Changes ", h("a", { href: `#/warnings?id=${encodeURIComponent(w.refers_to)}` }, w.refers_to)) : null,
        w.superseded_by ? h("span", {}, h("br"), `${w.state === "updated" ? "Updated" : "Cancelled"} by `,
          h("a", { href: `#/warnings?id=${encodeURIComponent(w.superseded_by)}` }, w.superseded_by)) : null),
      w.area_desc ? h("p", {}, `Area: ${w.area_desc}`) : null,
      alert?.infos.map((i) => h("p", { lang: i.language }, i.description, i.instruction ? h("br") : null, i.instruction)),
      h("p", { id: "w-counts" }),
      canChange ? h("div", { class: "toolbar" },
        h("button", { type: "button", id: "w-update", on: { click: () => this.startUpdate() } }, "Update"),
        this.note,
        h("button", { type: "button", id: "w-cancel", on: { click: () => this.cancel() } }, "Cancel warning")) : null);
  }

  startUpdate() {
    this.composing = true;
    this.compose(this.shown);
  }

  async cancel() {
    try {
      await api(`/api/v1/warnings/${encodeURIComponent(this.id)}/cancel`, { method: "POST",
        body: { note: this.note.value.trim() } });
      await this.loadDetail();
    } catch (err) {
      this.showError(err, "Not cancelled");
    }
  }

  renderReceipts({ warning: w, receipts, unacknowledged }) {
    const fmt = this.ctx.fmt;
    this.unackedButton.textContent = `Unacknowledged (${unacknowledged})`;
    const counts = document.getElementById("w-counts");
    if (counts) counts.textContent = `${w.targets} targets · ${w.delivered} delivered · ${w.sounded} sounded · ${w.acknowledged} acknowledged`;
    const rows = this.unackedOnly ? receipts.filter((r) => r.flagged) : receipts;
    if (!rows.length) {
      replace(this.receipts, h("tr", {}, h("td", { colspan: 8, class: "empty" },
        this.unackedOnly ? "Every target has acknowledged, or none is due yet." : "No targets.")));
      return;
    }
    replace(this.receipts, rows.map((r) => {
      const ended = [["cancelled", r.cancelled_ms], ["expired", r.expired_ms], ["refused", r.refused_ms],
        ["silenced", r.silenced_ms]].find(([, ms]) => ms !== null);
      const outputs = Object.keys(r.outputs).sort().join(", ");
      return h("tr", { class: r.flagged ? "flagged" : "", dataset: { device: r.device, flagged: r.flagged,
        delivered: r.delivered_ms !== null, acknowledged: r.acknowledged_ms !== null } },
      h("th", { scope: "row" }, r.device, h("span", { class: "detail" }, r.why),
        r.flagged ? h("span", { class: "detail bad-text" }, "not acknowledged in time") : null),
      h("td", { class: "nowrap" }, r.command_state ?? "–"),
      timeCell(fmt, r.delivered_ms),
      timeCell(fmt, r.sounded_ms, outputs && h("span", { class: "detail" }, outputs)),
      timeCell(fmt, r.displayed_ms),
      timeCell(fmt, r.acknowledged_ms, r.acknowledged_by && h("span", { class: "detail" }, `by ${r.acknowledged_by}`)),
      ended ? timeCell(fmt, ended[1], h("span", { class: "detail" },
        ended[0] === "silenced" ? r.silenced_why : ended[0] === "refused" ? `refused: ${r.refused_why}` : ended[0]))
        : h("td", {}, "–"),
      h("td", {}, { 1: "inside", 0: "outside" }[r.inside] ?? "–"));
    }));
  }

  showError(err, what = "Could not load") {
    this.error.textContent = `${what}: ${err.detail ?? err.message}`;
    this.error.hidden = false;
  }
}
