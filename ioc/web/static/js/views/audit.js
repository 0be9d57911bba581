// The audit log (operators): who issued which command, pushed or adopted which config, set which label,
// and where each stands now (GET /api/v1/audit); the same as CSV for a report (GET /api/v1/audit.csv).
import { api, withQuery } from "../api.js";
import { h, replace } from "../dom.js";

const PAGE = 100;

/** The log newest first, filtered by node and start time, with older pages on demand. */
export class View {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.items = [];
    this.nextOffset = null;
    this.device = h("input", { id: "audit-device", size: 16, placeholder: "every node", autocomplete: "off" });
    this.since = h("input", { id: "audit-since", type: "datetime-local", step: 1 });
    this.csv = h("a", { id: "audit-csv", href: "/api/v1/audit.csv", download: "audit.csv" }, "Download CSV");
    this.error = h("p", { class: "message error", role: "alert", hidden: true });
    this.body = h("tbody");
    this.more = h("button", { type: "button", hidden: true, on: { click: () => this.load(true) } }, "Show older");
    const filters = h("form", { class: "toolbar", role: "search", "aria-label": "Which entries",
      on: { submit: (ev) => { ev.preventDefault(); this.load(); } } },
    h("label", {}, "Node ", this.device), h("label", {}, "Since ", this.since),
    h("button", { type: "submit" }, "Show"), this.csv);
    this.table = h("div", { class: "panel table-wrap" }, h("table", { id: "audit" },
      h("caption", { class: "visually-hidden" }, "The audit log, newest on top"),
      h("thead", {}, h("tr", {}, ["Time", "User", "Action", "Node", "Details", "Result"]
        .map((t) => h("th", { scope: "col" }, t)))), this.body));
    root.append(filters, this.error, this.table, h("p", {}, this.more));
  }

  start() {
    this.load();
  }

  stop() {}

  /** The filters as query parameters; `since` in the centre's time zone, which the API assumes without one. */
  params() {
    return { device: this.device.value.trim() || null, since: this.since.value || null };
  }

  async load(more = false) {
    const params = this.params();
    this.csv.href = withQuery("/api/v1/audit.csv", params);
    try {
      const page = await api("/api/v1/audit", { params: { ...params, limit: PAGE, offset: more ? this.nextOffset : 0 } });
      this.items = more ? this.items.concat(page.items) : page.items;
      this.nextOffset = page.next_offset ?? null;
      this.error.hidden = true;
    } catch (err) {
      this.items = [];
      this.nextOffset = null;
      this.error.textContent = err.status === 403 ? "The audit log is for operators." : `Could not load the audit log: ${err.message}`;
      this.error.hidden = false;
    }
    this.render();
  }

  render() {
    this.more.hidden = this.nextOffset === null;
    if (!this.items.length) {
      replace(this.body, h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No entries.")));
      return;
    }
    const fmt = this.ctx.fmt;
    replace(this.body, this.items.map((e) => h("tr", { dataset: { id: e.id, action: e.action } },
      h("td", { class: "nowrap" }, fmt.dateTime(e.at_ms)),
      h("td", {}, e.user),
      h("td", { class: "nowrap" }, e.action, e.command_seq !== null && h("span", { class: "detail" }, `command ${e.command_seq}`)),
      h("td", { class: "nowrap" }, e.target),
      h("td", {}, h("code", { class: "detail" }, JSON.stringify(e.details))),
      h("td", { class: "result" }, e.result))));
  }
}
