// The dashboard shell: who is signed in, the centre's settings, the live stream, and one view at a time
// chosen by the URL's hash (#/nodes, #/cameras, #/environment, #/vessels, #/alarms, #/warnings, #/audit).
import { api } from "./api.js";
import { coalesce, replace, h } from "./dom.js";
import { Live } from "./live.js";
import { TimeFormat } from "./time.js";

const VIEWS = {
  nodes: { title: "Nodes", load: () => import("./views/nodes.js") },
  cameras: { title: "Cameras", load: () => import("./views/cameras.js") },
  environment: { title: "Environment", load: () => import("./views/environment.js") },
  vessels: { title: "Vessels", load: () => import("./views/vessels.js") },
  alarms: { title: "Alarms", load: () => import("./views/alarms.js") },
  warnings: { title: "Warnings", load: () => import("./views/warnings.js") },
  audit: { title: "Audit", load: () => import("./views/audit.js") }, // operators (the API refuses viewers)
};
const DEFAULT_VIEW = "nodes";

/** What every view gets: the user, the settings, the time format and the live stream. */
class Context {
  constructor(me, settings, live) {
    this.me = me;
    this.settings = settings;
    this.fmt = new TimeFormat(settings.timezone);
    this.live = live;
  }

  get isOperator() {
    return this.me.role === "operator";
  }
}

/** The header's open-alarm count, kept current from the live stream. */
class AlarmBadge {
  constructor(el, live) {
    this.el = el;
    this.refresh = coalesce(() => this._load(), 1000);
    live.on("alarm", this.refresh);
    live.onResume(this.refresh);
    setInterval(this.refresh, 30000);
    this._load();
  }

  async _load() {
    const page = await api("/api/v1/alarms", { params: { state: "open", limit: 1000 } });
    const n = page.items.filter((a) => a.open).length;
    this.el.textContent = page.next_offset ? `${n}+` : String(n);
    this.el.classList.toggle("alert", n > 0);
    this.el.title = `${this.el.textContent} open alarm${n === 1 ? "" : "s"}`;
  }
}

/** Mounts the view named by the hash; the previous one is stopped first. */
class Router {
  constructor(root, ctx) {
    this.root = root;
    this.ctx = ctx;
    this.current = null;
    this.seq = 0;
    addEventListener("hashchange", () => this.show());
  }

  name() {
    const name = location.hash.replace(/^#\/?/, "").split("?")[0];
    return name in VIEWS ? name : DEFAULT_VIEW;
  }

  async show() {
    const name = this.name();
    const seq = ++this.seq;
    this.current?.stop();
    this.current = null;
    for (const a of document.querySelectorAll(".nav a")) {
      if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    }
    document.title = `${VIEWS[name].title} · IOC operations`;
    replace(this.root, h("h1", {}, VIEWS[name].title), h("p", { class: "empty" }, "Loading…"));
    const module = await VIEWS[name].load();
    if (seq !== this.seq) return; // the operator moved on meanwhile
    replace(this.root, h("h1", {}, VIEWS[name].title));
    this.current = new module.View(this.root, this.ctx);
    this.current.start();
  }
}

function showLiveState(state) {
  const chip = document.getElementById("live-state");
  const [dot, text] = chip.children;
  dot.className = `dot ${{ live: "ok", connecting: "warn", down: "bad" }[state]}`;
  text.textContent = { live: "live", connecting: "reconnecting", down: "offline" }[state];
  chip.title = state === "live" ? "Updates arrive as they are stored" : "Live updates are interrupted";
}

function startClock(fmt) {
  const el = document.getElementById("clock");
  document.getElementById("zone").textContent = fmt.timeZone;
  const tick = () => (el.textContent = fmt.dateTime(Date.now()));
  tick();
  setInterval(tick, 1000);
}

async function signOut() {
  await fetch("/logout", { method: "POST", credentials: "same-origin" }).catch(() => null);
  location.assign("/login.html");
}

async function main() {
  let me, settings;
  try {
    [me, settings] = await Promise.all([api("/api/v1/me"), api("/api/v1/settings")]);
  } catch (err) {
    if (err.status === 401) return; // api() is already on its way to the sign-in page
    replace(document.getElementById("view"), h("p", { class: "message error", role: "alert" },
      `The IOC server did not answer: ${err.message}. Retrying in 10 s.`));
    setTimeout(main, 10000);
    return;
  }
  const live = new Live();
  const ctx = new Context(me, settings, live);
  document.getElementById("user").textContent = `${me.username} (${me.role})`;
  document.getElementById("sign-out").addEventListener("click", signOut);
  document.getElementById("nav-audit").hidden = !ctx.isOperator;
  live.onState(showLiveState);
  live.start();
  startClock(ctx.fmt);
  new AlarmBadge(document.getElementById("open-alarms"), live);
  new Router(document.getElementById("view"), ctx).show();
}

main(); // a module script runs after the document is parsed
