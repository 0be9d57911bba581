// Dates and times in the centre's time zone (settings.timezone), whatever the browser's own zone is.
import { h } from "./dom.js";

const FALLBACK_ZONE = "Asia/Ho_Chi_Minh";
const MAX_DATE_MS = 8.64e15; // the furthest a JavaScript Date reaches either side of 1970
export const INVALID_TIME = "invalid time";

/**
 * Whether `ms` is a time a Date can hold. An older centre may have stored one that is not (2^62 ms):
 * shown as INVALID_TIME, it must never throw and empty the page around it.
 */
export function validTime(ms) {
  return typeof ms === "number" && Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS;
}

/**
 * Formats UTC milliseconds in one IANA time zone.
 * Example: new TimeFormat("Asia/Ho_Chi_Minh").dateTime(Date.UTC(2024, 0, 1)) === "2024-01-01 07:00:00"
 */
export class TimeFormat {
  constructor(timeZone) {
    this.timeZone = TimeFormat.valid(timeZone) ? timeZone : FALLBACK_ZONE;
    if (this.timeZone !== timeZone) console.warn(`settings.timezone ${timeZone} is unknown; using ${FALLBACK_ZONE}`);
    this._format = new Intl.DateTimeFormat("en-GB", {
      timeZone: this.timeZone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    });
  }

  static valid(zone) {
    try {
      new Intl.DateTimeFormat("en", { timeZone: zone });
      return Boolean(zone);
    } catch {
      return false;
    }
  }

  _parts(ms) {
    return Object.fromEntries(this._format.formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  }

  /** "2024-05-01 14:03:07" */
  dateTime(ms) {
    if (ms === null || ms === undefined) return "–";
    if (!validTime(ms)) return INVALID_TIME;
    const p = this._parts(ms);
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
  }

  /** "14:03:07" */
  time(ms) {
    if (!validTime(ms)) return INVALID_TIME;
    const p = this._parts(ms);
    return `${p.hour}:${p.minute}:${p.second}`;
  }

  /** The time only when `ms` is today in the centre's zone, else the date and time. */
  short(ms, now = Date.now()) {
    if (ms === null || ms === undefined) return "–";
    if (!validTime(ms)) return INVALID_TIME;
    const a = this._parts(ms);
    const b = this._parts(now);
    const sameDay = a.year === b.year && a.month === b.month && a.day === b.day;
    return sameDay ? this.time(ms) : this.dateTime(ms);
  }
}

/** "45 s", "12 min", "3 h", "2 d" since `ms`. */
export function ago(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return "never";
  if (!validTime(ms)) return INVALID_TIME;
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/** Time ranges the pages offer, in milliseconds. */
export const RANGES = [
  { label: "1 hour", ms: 3600e3 },
  { label: "6 hours", ms: 6 * 3600e3 },
  { label: "24 hours", ms: 24 * 3600e3 },
  { label: "7 days", ms: 7 * 24 * 3600e3 },
];

/**
 * An element showing how long ago `ms` was ("12 s ago"), kept current by `refreshAges`: a tick rewrites
 * these texts only, not the tables around them (focus and selection stay).
 */
export function agoSpan(ms, suffix = " ago") {
  return h("span", { class: "ago", dataset: { ms: ms ?? "", suffix } }, `${ago(ms)}${ms === null ? "" : suffix}`);
}

/** Rewrite every agoSpan under `root`. */
export function refreshAges(root, now = Date.now()) {
  for (const el of root.querySelectorAll("span.ago")) {
    const ms = el.dataset.ms === "" ? null : Number(el.dataset.ms);
    el.textContent = `${ago(ms, now)}${ms === null ? "" : el.dataset.suffix}`;
  }
}
