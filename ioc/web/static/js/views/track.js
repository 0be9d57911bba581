// A vessel's signed track log on the nodes page: how far each chain is verified, and what was flagged.
import { api } from "../api.js";
import { h, replace } from "../dom.js";

/** A flag's kind: [dot class, label]. A break or a bad signature means records cannot be trusted. */
const KINDS = {
  break: ["bad", "Break"],
  bad_signature: ["bad", "Bad signature"],
  gap: ["warn", "Gap"],
  new_chain: ["warn", "New chain"],
};

/**
 * The section under the nodes table: for the node picked (a click on its row, or the commissioning
 * list), its track chains and their flags (breaks, gaps, bad signatures, new chains).
 * Example: const panel = new TrackPanel(ctx); root.append(panel.el); panel.show("vessel-042");
 */
export class TrackPanel {
  constructor(ctx) {
    this.ctx = ctx;
    this.device = null;
    this.body = h("div", { id: "track-body" }, h("p", { class: "empty" }, "Pick a node to see its track log."));
    this.el = h("section", { class: "panel", id: "track", "aria-live": "polite" }, h("h2", {}, "Track log"), this.body);
  }

  async show(device) {
    this.device = device || null;
    if (!device) return;
    try {
      const track = await api(`/api/v1/nodes/${encodeURIComponent(device)}/track`);
      if (this.device === device) replace(this.body, this.render(track));
    } catch (err) {
      if (this.device === device) {
        const text = `Could not load the track log: ${err.message}`;
        replace(this.body, h("p", { class: "message error", role: "alert" }, text));
      }
    }
  }

  render(t) {
    if (!t.chains.length) return h("p", { class: "empty" }, `No track log from ${t.device}.`);
    const fmt = this.ctx.fmt;
    const chains = t.chains.map((c) => h("p", { class: "track-chain", dataset: { epoch: c.epoch } },
      h("span", { class: `dot ${c.verified_idx >= 0 ? "ok" : "warn"}` }), " Chain ", h("code", {}, c.epoch), ": ",
      h("strong", {}, c.verified_idx >= 0 ? `verified to record ${c.verified_idx}` : "nothing verified yet"),
      c.newest_idx !== null ? `; newest received: record ${c.newest_idx}` : "",
      c.last_ts_ms !== null ? ` (followed to ${fmt.dateTime(c.last_ts_ms)})` : "",
      c.waiting > 0 ? `; ${c.waiting} waiting for a signature` : "", "; ",
      c.ca_checked ? "signatures checked against the device CA"
        : h("span", { class: "warn-text" }, "CA not checked (the centre has no CA configured)")));
    const flags = t.flags.length
      ? h("div", { class: "table-wrap" }, h("table", { id: "track-flags" },
        h("thead", {}, h("tr", {}, ["Flag", "Record", "Time", "Detail"].map((x) => h("th", { scope: "col" }, x)))),
        h("tbody", {}, t.flags.map((f) => {
          const [dot, label] = KINDS[f.kind] ?? ["warn", f.kind];
          return h("tr", { dataset: { kind: f.kind } },
            h("td", { class: "nowrap" }, h("span", { class: `dot ${dot}` }), " ", label),
            h("td", { class: "num" }, String(f.idx)),
            h("td", { class: "nowrap" }, f.ts_ms !== null ? fmt.dateTime(f.ts_ms) : "–"),
            h("td", {}, f.detail));
        }))))
      : h("p", { class: "muted" }, "No breaks, gaps or bad signatures.");
    return [...chains, flags];
  }
}
