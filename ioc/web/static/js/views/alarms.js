// Alarms: open ones first, newest on top; operators acknowledge them, everyone sees who did and when.
import { api } from "../api.js";
import { coalesce, h, num, replace } from "../dom.js";

const PAGE = 200;

/** A raised alarm (state 1 on the wire); the API may also spell it "raised". */
function raised(alarm) {
  return alarm.state === 1 || alarm.state === "raised" || alarm.state === true;
}

/** The alarm list, refetched on every alarm event (raises, clears, acks; the server orders it) and every 30 s. */
export class View {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.state = "open";
    this.items = [];
    this.nextOffset = null;
    this.known = null; // ids already shown: new ones flash
    this.filters = ["open", "all"].map((state) =>
      h("button", { type: "button", "aria-pressed": String(state === this.state), dataset: { state },
        on: { click: () => this.setState(state) } }, state === "open" ? "Open alarms" : "All alarms"));
    this.error = h("p", { class: "message error", role: "alert", hidden: true });
    this.body = h("tbody");
    this.more = h("button", { type: "button", hidden: true, on: { click: () => this.load(true) } }, "Show older");
    const heads = ["Time", "Node", "Source", "Kind", "State", "Value", "Message", "Acknowledged", ""];
    root.append(
      h("div", { class: "toolbar", role: "group", "aria-label": "Which alarms" }, this.filters,
        ctx.isOperator ? null : h("span", { class: "muted", id: "viewer-note" },
          "Signed in as a viewer: acknowledging alarms needs an operator.")),
      this.error,
      h("div", { class: "panel table-wrap" }, h("table", { id: "alarms" },
        h("caption", { class: "visually-hidden" }, "Alarms, open first, newest on top"),
        h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col" }, t)))), this.body)),
      h("p", {}, this.more));
    this.refresh = coalesce(() => this.load(), 500);
  }

  start() {
    this.offs = [this.ctx.live.on("alarm", this.refresh), this.ctx.live.onResume(this.refresh)];
    this.timer = setInterval(this.refresh, 30000);
    this.load();
  }

  stop() {
    this.offs.forEach((off) => off());
    clearInterval(this.timer);
    this.refresh.cancel();
  }

  setState(state) {
    this.state = state;
    for (const b of this.filters) b.setAttribute("aria-pressed", String(b.dataset.state === state));
    this.known = null;
    this.load();
  }

  async load(more = false) {
    const offset = more ? this.nextOffset : 0;
    const limit = more ? PAGE : Math.max(PAGE, this.items.length);
    try {
      const page = await api("/api/v1/alarms", { params: { state: this.state, limit: Math.min(limit, 1000), offset } });
      this.items = more ? this.items.concat(page.items) : page.items;
      this.nextOffset = page.next_offset ?? null;
      this.error.hidden = true;
    } catch (err) {
      this.error.textContent = `Could not load the alarms: ${err.message}`;
      this.error.hidden = false;
    }
    this.render();
  }

  render() {
    this.more.hidden = this.nextOffset === null;
    if (!this.items.length) {
      const text = this.state === "open" ? "No open alarms." : "No alarms.";
      replace(this.body, h("tr", {}, h("td", { colspan: 9, class: "empty" }, text)));
      this.known = new Set();
      return;
    }
    const known = this.known;
    replace(this.body, this.items.map((a) => this.row(a, known !== null && !known.has(a.id))));
    this.known = new Set(this.items.map((a) => a.id));
  }

  row(a, fresh) {
    const fmt = this.ctx.fmt;
    const classes = [a.open ? "open" : "", fresh ? "fresh" : ""].join(" ").trim();
    return h("tr", { class: classes || null, dataset: { id: a.id, device: a.device } },
      h("td", { class: "nowrap" }, fmt.dateTime(a.ts_ms)),
      h("th", { scope: "row" }, a.device),
      h("td", {}, a.source),
      h("td", {}, a.kind),
      h("td", { class: raised(a) ? "state-off" : "state-on" }, raised(a) ? "Raised" : "Cleared",
        h("span", { class: "detail" }, a.open ? "open" : a.cleared_ms ? `cleared ${fmt.short(a.cleared_ms)}` : null)),
      h("td", { class: "num" }, num(a.value, 2)),
      h("td", {}, a.message),
      h("td", { class: "acked" }, a.acked_by
        ? [a.acked_by, h("span", { class: "detail" }, fmt.dateTime(a.acked_ms)),
          a.note ? h("span", { class: "detail" }, a.note) : null]
        : h("span", { class: "muted" }, "not yet")),
      h("td", {}, this.ackButton(a)));
  }

  ackButton(a) {
    if (a.acked_by || !raised(a)) return null;
    const label = `Acknowledge ${a.kind} on ${a.device}`;
    if (!this.ctx.isOperator) {
      return h("button", { type: "button", class: "ack", disabled: true, "aria-label": label,
        title: "Only operators can acknowledge alarms" }, "Acknowledge");
    }
    const button = h("button", { type: "button", class: "ack primary", "aria-label": label }, "Acknowledge");
    button.addEventListener("click", () => this.ack(a, button));
    return button;
  }

  async ack(a, button) {
    button.disabled = true;
    button.textContent = "Acknowledging…";
    try {
      const done = await api(`/api/v1/alarms/${a.id.split("/").map(encodeURIComponent).join("/")}/ack`,
        { method: "POST" });
      Object.assign(a, { acked_by: done.acked_by, acked_ms: done.acked_ms });
      this.render();
      this.refresh();
    } catch (err) {
      button.disabled = false;
      button.textContent = "Acknowledge";
      this.error.textContent = `Could not acknowledge ${a.kind} on ${a.device}: ${err.detail ?? err.message}`;
      this.error.hidden = false;
    }
  }
}
