// A node's desired config on the nodes page: the one the centre wants it to run (ioc-center config push or
// adopt) against the one it reports running, and their diff.
import { api } from "../api.js";
import { h, replace } from "../dom.js";

/** Where a node's config stands: [dot class, text]. */
function verdict(c) {
  if (!c.desired) return ["warn", "Not managed from the centre: no config was pushed or adopted."];
  if (!c.reported) return ["warn", "The node has not reported its config yet."];
  if (c.drift) return ["bad", "Drift: the node runs another config than the desired one."];
  return ["ok", "In sync: the node runs the desired config."];
}

/**
 * The section under the nodes table: for the node picked, its desired and reported config versions,
 * the push's command, and the diff when the node's text is known. Read-only: pushes and adoptions are
 * ioc-center config's.
 * Example: const panel = new ConfigPanel(ctx); root.append(panel.el); panel.show("vessel-042");
 */
export class ConfigPanel {
  constructor(ctx) {
    this.ctx = ctx;
    this.device = null;
    this.body = h("div", { id: "config-body" }, h("p", { class: "empty" }, "Pick a node to see its config."));
    this.el = h("section", { class: "panel", id: "config", "aria-live": "polite" },
      h("h2", {}, "Configuration"), this.body);
  }

  async show(device) {
    this.device = device || null;
    if (!device) return;
    try {
      const config = await api(`/api/v1/nodes/${encodeURIComponent(device)}/config`);
      if (this.device === device) replace(this.body, this.render(config));
    } catch (err) {
      if (this.device === device) {
        replace(this.body, h("p", { class: "message error", role: "alert" },
          `Could not load the config: ${err.message}`));
      }
    }
  }

  render(c) {
    if (!c.desired && !c.reported) {
      return h("p", { class: "empty" }, `No config pushed to ${c.device}, and none reported by it yet.`);
    }
    const fmt = this.ctx.fmt;
    const [dot, text] = verdict(c);
    const d = c.desired;
    const how = d && (d.command_seq === null ? "adopted" : "pushed");
    const command = c.command && ` (command ${c.command.seq}: ${c.command.state}` +
      `${c.command.reason ? `, ${c.command.reason}` : ""})`;
    return [
      h("p", { dataset: { drift: String(c.drift) } }, h("span", { class: `dot ${dot}` }), " ", h("strong", {}, text)),
      h("p", { id: "config-desired" }, "Desired: ", d
        ? [h("code", {}, d.version.slice(0, 12)), ` ${how} by ${d.issuer} at ${fmt.dateTime(d.issued_ms)}`, command]
        : "–"),
      h("p", { id: "config-reported" }, "Reported: ", c.reported
        ? [h("code", {}, c.reported.slice(0, 12)), ` at ${fmt.dateTime(c.reported_ms)}`]
        : "–"),
      c.diff && h("pre", { class: "diff", id: "config-diff" }, c.diff.replace(/\n$/, "").split("\n").map((line) =>
        h("span", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "" }, `${line}\n`))),
    ];
  }
}
