// A node's commands on the nodes page: what waits, what the node answered, and for operators the buttons
// that issue more (POST /api/v1/nodes/{device}/commands).
import { api } from "../api.js";
import { h, replace } from "../dom.js";

/**
 * The commands an operator issues from the page, one button each: kinds the nodes run
 * (edge/command_kinds.py). `camera`: the body names the camera typed beside the buttons (none: the
 * node's only camera). A new kind is one more entry.
 */
export const COMMAND_BUTTONS = [
  { kind: "ping", label: "Ping", title: "The node answers with its version, store epoch and uptime." },
  { kind: "status", label: "Status now", title: "The node answers with its status as of now." },
  { kind: "snapshot", label: "Snapshot", camera: true,
    title: "The camera's next frame, people pixelated (the camera named beside, or the node's only one)." },
  { kind: "selftest", label: "Self-test",
    title: "The node tests itself as it runs; its signed commissioning record follows on its uplink." },
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
const CAMERA_RE = /^[A-Za-z0-9_.-]{1,64}$/; // a camera's name as the node's config allows it

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
      dataset: { kind: b.kind }, on: { click: () => this.issue(b) } }, b.label));
    // The node's cameras as the centre knows them: the names in its recent counts and events.
    this.cameras = h("datalist", { id: "command-cameras" });
    this.camera = h("input", { id: "command-camera", list: "command-cameras", size: 12, autocomplete: "off",
      placeholder: "its only one", pattern: CAMERA_RE.source.slice(1, -1) });
    const tools = ctx.isOperator
      ? h("div", { class: "toolbar", id: "command-buttons" }, this.buttons,
        h("label", {}, "Camera ", this.camera), this.cameras)
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
    if (this.ctx.isOperator) this.loadCameras(device);
  }

  async loadCameras(device) {
    const params = { device, limit: 200, order: "desc" };
    const pages = await Promise.all(["counts", "events"].map((list) =>
      api(`/api/v1/${list}`, { params }).catch(() => ({ items: [] }))));
    if (this.device !== device) return;
    const names = [...new Set(pages.flatMap((p) => p.items.map((r) => r.camera)))].sort();
    replace(this.cameras, names.map((name) => h("option", { value: name })));
    this.camera.value = names.length === 1 ? names[0] : "";
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

  async issue(button) {
    const device = this.device;
    const kind = button.kind;
    const camera = this.camera.value.trim();
    this.error.hidden = true;
    if (button.camera && camera && !CAMERA_RE.test(camera)) {
      this.error.textContent = `Camera ${JSON.stringify(camera)}: letters, digits, _ . - only, 64 at most.`;
      this.error.hidden = false;
      return;
    }
    const body = button.camera && camera ? { camera } : {};
    this.buttons.forEach((b) => (b.disabled = true));
    try {
      await api(`/api/v1/nodes/${encodeURIComponent(device)}/commands`, { method: "POST", body: { kind, body } });
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
            c.kind === "snapshot" && c.state === "applied" ? snapshot(device, c)
              : c.details && h("code", { class: "detail" }, shorten(c.details, ANSWER_CHARS))));
      }))));
  }
}

/** A snapshot command's JPEG, served decoded by the API (its answer holds it as base64: too long to show). */
function snapshot(device, c) {
  const url = `/api/v1/nodes/${encodeURIComponent(device)}/commands/${c.seq}/snapshot.jpg`;
  const alt = `Snapshot of ${c.body.camera ?? "the camera"} on ${device}`;
  return h("a", { class: "detail", href: url, target: "_blank", rel: "noopener" },
    h("img", { class: "command-snapshot", src: url, alt, loading: "lazy", width: 320 }));
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
