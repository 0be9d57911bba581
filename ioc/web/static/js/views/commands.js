// A node's commands on the nodes page: what waits, what the node answered, and for operators the buttons
// that issue more (POST /api/v1/nodes/{device}/commands).
import { api } from "../api.js";
import { h, replace } from "../dom.js";

/**
 * The commands an operator issues from the page, one button each: kinds the nodes run
 * (edge/command_kinds.py) without a body. A new kind is one more entry.
 */
export const COMMAND_BUTTONS = [
  { kind: "ping", label: "Ping", title: "The node answers with its version, store epoch and uptime." },
  { kind: "status", label: "Status now", title: "The node answers with its status as of now." },
];

/** A command's state at the centre: [dot class, label]. */
const STATES = {
  queued: ["warn", "Queued"],
  sent: ["warn", "Sent"],
  delivered: ["warn", "Delivered"],
  applied: ["ok", "Applied"],
  refused: ["bad", "Refused"],
  expired: ["bad", "Expired"],
};
const REFRESH_MS = 3000; // answers arrive on the node's uplink: the list is fetched again while shown
const ANSWER_CHARS = 400;
const BODY_CHARS = 120;

/**
 * The section under the nodes table: the picked node's commands, newest first, with their states and
 * the node's answers; for an operator, buttons issuing a command to it (a viewer sees none).
 * Example: const panel = new CommandsPanel(ctx); root.append(panel.el); panel.show("vessel-042");
 */
export class CommandsPanel {
  constructor(ctx) {
    this.ctx = ctx;
    this.device = null;
    this.timer = null;
    this.error = h("p", { class: "message error", role: "alert", hidden: true });
    this.buttons = COMMAND_BUTTONS.map((b) => h("button", { type: "button", title: b.title, disabled: true,
      dataset: { kind: b.kind }, on: { click: () => this.issue(b.kind) } }, b.label));
    const tools = ctx.isOperator
      ? h("div", { class: "toolbar", id: "command-buttons" }, this.buttons)
      : h("p", { class: "muted", id: "commands-viewer-note" },
        "Signed in as a viewer: issuing commands needs an operator.");
    this.title = h("h2", {}, "Commands");
    this.body = h("div", { id: "commands-body" }, h("p", { class: "empty" }, "Pick a node to see its commands."));
    this.el = h("section", { class: "panel", id: "commands", "aria-live": "polite" },
      this.title, tools, this.error, this.body);
  }

  show(device) {
    this.device = device || null;
    this.title.textContent = device ? `Commands to ${device}` : "Commands";
    for (const b of this.buttons) b.disabled = !device;
    this.error.hidden = true;
    clearInterval(this.timer);
    this.timer = null;
    if (!device) return;
    this.timer = setInterval(() => this.load(), REFRESH_MS);
    this.load();
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async load() {
    const device = this.device;
    if (!device) return;
    try {
      const page = await api(`/api/v1/nodes/${encodeURIComponent(device)}/commands`);
      if (this.device === device) replace(this.body, this.render(device, page.items));
    } catch (err) {
      if (this.device === device) {
        replace(this.body, h("p", { class: "message error", role: "alert" },
          `Could not load the commands: ${err.message}`));
      }
    }
  }

  async issue(kind) {
    const device = this.device;
    this.error.hidden = true;
    this.buttons.forEach((b) => (b.disabled = true));
    try {
      await api(`/api/v1/nodes/${encodeURIComponent(device)}/commands`, { method: "POST", body: { kind } });
    } catch (err) {
      this.error.textContent = `Could not issue ${kind} to ${device}: ${err.message}`;
      this.error.hidden = false;
    } finally {
      this.buttons.forEach((b) => (b.disabled = !this.device));
    }
    await this.load();
  }

  render(device, items) {
    if (!items.length) return h("p", { class: "empty" }, `No commands to ${device} yet.`);
    const fmt = this.ctx.fmt;
    return h("div", { class: "table-wrap" }, h("table", { id: "commands-list" },
      h("thead", {}, h("tr", {}, ["Seq", "Command", "State", "Issued", "Answer"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, items.map((c) => {
        const [dot, label] = STATES[c.state] ?? ["warn", c.state];
        const body = Object.keys(c.body).length ? shorten(JSON.stringify(c.body), BODY_CHARS) : "";
        return h("tr", { dataset: { seq: c.seq, state: c.state } },
          h("td", { class: "num" }, String(c.seq)),
          h("th", { scope: "row" }, c.kind, body && h("code", { class: "detail" }, body)),
          h("td", { class: "nowrap state" }, h("span", { class: `dot ${dot}` }), " ", label,
            c.reason && h("span", { class: "detail" }, c.reason),
            c.sent_count > 0 && h("span", { class: "detail" }, `sent ${c.sent_count}×`)),
          h("td", { class: "nowrap" }, fmt.dateTime(c.issued_ms), h("span", { class: "detail" }, `by ${c.issuer}`)),
          h("td", { class: "answer" }, c.result_ms !== null ? fmt.dateTime(c.result_ms) : "–",
            c.details && h("code", { class: "detail" }, shorten(c.details, ANSWER_CHARS))));
      }))));
  }
}

/** A body or a node's answer as one short line: compact JSON when it is JSON, cut at `max` characters. */
function shorten(text, max) {
  let line = text;
  try {
    line = JSON.stringify(JSON.parse(text));
  } catch {
    // a refusal's message, not JSON: shown as it is
  }
  return line.length > max ? `${line.slice(0, max)}…` : line;
}
