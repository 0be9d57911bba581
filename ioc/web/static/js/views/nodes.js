// Nodes: online or not, last seen, what waits on the node, epoch, time source, drops, rejects, version.
import { api } from "../api.js";
import { coalesce, h, replace } from "../dom.js";
import { agoSpan, refreshAges } from "../time.js";
import { CommandsPanel } from "./commands.js";
import { CommissioningPanel } from "./commissioning.js";
import { ConfigPanel } from "./config.js";
import { TrackPanel } from "./track.js";

const TSRC = { 1: ["GPS", ""], 2: ["NTP", ""], 3: ["free-running", "warn-text"] };

/** Counters as [name, n] pairs; nested ones ({gps: {checksum: 2}}) flattened to "gps checksum". */
function flatten(counts, prefix = "") {
  return Object.entries(counts ?? {}).flatMap(([k, v]) =>
    v !== null && typeof v === "object" ? flatten(v, `${prefix}${k} `) : [[`${prefix}${k}`, Number(v) || 0]]);
}

function total(counts) {
  return flatten(counts).reduce((a, [, n]) => a + n, 0);
}

/** "position 120 · status 2" for the non-zero counters. */
function breakdown(counts) {
  return flatten(counts)
    .filter(([, n]) => n)
    .map(([k, n]) => `${k} ${n}`)
    .join(" · ");
}

function counterCell(counts, cls = "") {
  const n = total(counts);
  return h("td", { class: "num" }, h("span", { class: n ? cls : "" }, String(n)),
    breakdown(counts) && h("span", { class: "detail" }, breakdown(counts)));
}

/**
 * The nodes table: a node's row is replaced by each status the live stream brings; the whole list is
 * refetched every 10 s (online turns offline with time, and new nodes appear).
 */
export class View {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.nodes = [];
    this.summary = h("div", { class: "summary", "aria-live": "polite" });
    this.body = h("tbody");
    this.error = h("p", { class: "message error", role: "alert", hidden: true });
    const heads = ["Status", "Node", "Last seen", "Backlog", "Drops", "Rejects", "Failed drivers", "Time source",
      "Epoch", "Version"];
    root.append(this.summary, this.error, h("div", { class: "panel table-wrap" }, h("table", { id: "nodes" },
      h("caption", { class: "visually-hidden" }, "Edge nodes, offline first"),
      h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col" }, t)))), this.body)));
    this.commissioning = new CommissioningPanel(ctx);
    this.track = new TrackPanel(ctx);
    this.commands = new CommandsPanel(ctx);
    this.config = new ConfigPanel(ctx);
    this.commissioning.picker.addEventListener("change", () => this.pick(this.commissioning.picker.value));
    root.append(this.commissioning.el, this.commands.el, this.config.el, this.track.el);
    this.refresh = coalesce(() => this.load(), 1000);
  }

  start() {
    this.offs = [this.ctx.live.on("status", (items) => this.update(items)), this.ctx.live.onResume(this.refresh)];
    this.timers = [setInterval(this.refresh, 10000), setInterval(() => refreshAges(this.body), 1000)];
    this.load();
  }

  stop() {
    this.offs.forEach((off) => off());
    this.timers.forEach(clearInterval);
    this.refresh.cancel();
    this.commands.stop();
  }

  /** The node whose commands, config and track log the panels show (the commissioning panel shows itself). */
  pick(device) {
    this.commands.show(device);
    this.config.show(device);
    this.track.show(device);
  }

  update(items) {
    const byDevice = new Map(this.nodes.map((n) => [n.device, n]));
    for (const n of items) byDevice.set(n.device, n);
    this.nodes = sortNodes([...byDevice.values()]);
    this.render();
  }

  async load() {
    try {
      const { items } = await api("/api/v1/nodes");
      this.nodes = sortNodes(items);
      this.error.hidden = true;
    } catch (err) {
      this.error.textContent = `Could not load the nodes: ${err.message}`;
      this.error.hidden = false;
    }
    this.render();
  }

  render() {
    const online = this.nodes.filter((n) => n.online).length;
    const waiting = this.nodes.reduce((a, n) => a + total(n.backlog), 0);
    replace(this.summary,
      figure(`${online} / ${this.nodes.length}`, "nodes online", "nodes-online"),
      figure(String(this.nodes.length - online), "offline", "nodes-offline"),
      figure(String(waiting), "records waiting on nodes", "nodes-backlog"));
    if (!this.nodes.length) {
      replace(this.body, h("tr", {}, h("td", { colspan: 10, class: "empty" }, "No node has reported yet.")));
      return;
    }
    replace(this.body, this.nodes.map((n) => this.row(n)));
    this.commissioning.setDevices(this.nodes.map((n) => n.device));
  }

  row(n) {
    const [tsrc, tsrcClass] = TSRC[n.tsrc] ?? ["–", ""];
    const failed = Object.entries(n.failed_drivers ?? {});
    return h("tr", { class: n.online ? "" : "offline", dataset: { device: n.device },
      on: { click: () => { this.commissioning.show(n.device); this.pick(n.device); } } },
      h("td", { class: "nowrap" }, h("span", { class: `dot ${n.online ? "ok" : "bad"}` }), " ",
        h("span", { class: n.online ? "state-on" : "state-off" }, n.online ? "Online" : "Offline")),
      h("th", { scope: "row" }, n.device),
      h("td", { class: "nowrap" }, agoSpan(n.last_seen_ms),
        h("span", { class: "detail" }, this.ctx.fmt.dateTime(n.last_seen_ms))),
      counterCell(n.backlog, "warn-text"),
      counterCell(n.drops, "bad-text"),
      counterCell(n.rejects, "warn-text"),
      h("td", {}, failed.length
        ? failed.map(([name, why]) => h("span", { class: "detail bad-text" }, `${name}: ${describe(why)}`))
        : h("span", { class: "muted" }, "none")),
      h("td", { class: tsrcClass }, tsrc),
      h("td", {}, h("code", {}, n.epoch ?? "–")),
      h("td", {}, n.version ?? "–"));
  }
}

/** Offline nodes first (they need someone), then by name. */
function sortNodes(nodes) {
  return nodes.sort((a, b) => a.online - b.online || a.device.localeCompare(b.device));
}

function figure(value, label, id) {
  return h("div", { id }, h("div", { class: "figure" }, value), h("div", { class: "label" }, label));
}

/** A failed driver's reason: a message, or the object the node sent. */
function describe(why) {
  return typeof why === "string" ? why : JSON.stringify(why);
}
