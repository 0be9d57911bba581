// A node's commissioning record on the nodes page: its latest signed self-test and the centre's verdict.
import { api, ApiError } from "../api.js";
import { h, replace } from "../dom.js";

/** The centre's verdict on the record's signature: [dot class, label]. */
const VERDICTS = {
  valid: ["ok", "Signature valid"],
  invalid: ["bad", "Signature INVALID: do not trust this record"],
  unsigned: ["warn", "Unsigned: the node had no identity"],
  unchecked: ["warn", "Signature not checked"],
};

const STATUS_CLASS = { PASS: "state-on", FAIL: "state-off", SKIP: "muted" };

/**
 * The section under the nodes table: pick a node (a click on its row, or the list) to see the
 * self-test it was commissioned with, who ran it, and whether the record's signature holds.
 * Example: const panel = new CommissioningPanel(ctx); root.append(panel.el); panel.show("vessel-042");
 */
export class CommissioningPanel {
  constructor(ctx) {
    this.ctx = ctx;
    this.device = null;
    this.picker = h("select", { id: "commissioning-device", on: { change: () => this.show(this.picker.value) } });
    this.body = h("div", { id: "commissioning-body" },
      h("p", { class: "empty" }, "Pick a node to see its commissioning record."));
    this.el = h("section", { class: "panel", id: "commissioning", "aria-live": "polite" },
      h("h2", {}, "Commissioning"),
      h("div", { class: "toolbar" }, h("label", {}, "Node", this.picker)),
      this.body);
  }

  /** The devices the picker offers (the nodes table's). */
  setDevices(devices) {
    const names = ["", ...devices];
    if (names.join("\n") === [...this.picker.options].map((o) => o.value).join("\n")) return;
    replace(this.picker, names.map((d) => h("option", { value: d }, d || "–")));
    this.picker.value = this.device ?? "";
  }

  async show(device) {
    this.device = device || null;
    this.picker.value = device ?? "";
    if (!device) return;
    try {
      const record = await api(`/api/v1/nodes/${encodeURIComponent(device)}/commissioning`);
      if (this.device === device) replace(this.body, this.render(record));
    } catch (err) {
      if (this.device !== device) return;
      replace(this.body, err instanceof ApiError && err.status === 404
        ? h("p", { class: "empty" }, `No commissioning record from ${device} yet: run ioc-edge selftest on it.`)
        : h("p", { class: "message error", role: "alert" }, `Could not load the record: ${err.message}`));
    }
  }

  render(r) {
    const [dot, label] = VERDICTS[r.verdict] ?? ["warn", r.verdict];
    const report = r.report ?? {};
    const fmt = this.ctx.fmt;
    // The time signed in the record: the wire's is not signed, and a replayed old self-test carries a new one.
    const when = r.signed_ms !== null && r.signed_ms !== undefined
      ? `${fmt.dateTime(r.signed_ms)} (${report.time_source ?? "?"} time, as signed)`
      : `${fmt.dateTime(r.ts_ms)} (not signed)`;
    return [
      h("p", { dataset: { verdict: r.verdict } }, h("span", { class: `dot ${dot}` }), " ",
        h("strong", {}, label), " — ", h("span", { class: "muted" }, r.detail)),
      r.time_mismatch && h("p", { class: "message error", role: "alert", id: "commissioning-replay" },
        h("strong", {}, "Times do not match the signed record: "), r.time_mismatch),
      h("p", {},
        `Self-test ${report.passed ? "passed" : "FAILED"} at ${when}`,
        ` by ${report.operator ?? "unknown"}; version ${report.version ?? "–"}; site ${report.site || "–"};`,
        ` received ${fmt.dateTime(r.received_ms)}.`),
      h("div", { class: "table-wrap" }, h("table", { id: "commissioning-checks" },
        h("thead", {}, h("tr", {}, ["Status", "Check", "Detail"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, (report.checks ?? []).map((c) => h("tr", {},
          h("td", { class: STATUS_CLASS[c.status] ?? "" }, c.status),
          h("th", { scope: "row" }, c.name),
          h("td", {}, c.detail, c.hint && h("span", { class: "detail warn-text" }, c.hint))))))),
    ];
  }
}
