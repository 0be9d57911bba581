// Building DOM nodes without innerHTML: device names, messages and labels come from the field and are
// never parsed as HTML.

/**
 * An element with attributes and children, e.g. h("td", { class: "num" }, "12").
 * Attributes: `class`, `dataset` (object), `on` ({event: handler}), booleans (true = present), others as strings.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(el.dataset, value);
    else if (name === "on") for (const [ev, fn] of Object.entries(value)) el.addEventListener(ev, fn);
    else if (name === "style") Object.assign(el.style, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A number with `digits` decimals, or "–" for null. */
export function num(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Number(value).toFixed(digits);
}

/** Call `fn` at most once per `ms`, at the end of the quiet time: many live events, one refetch. */
export function coalesce(fn, ms) {
  let timer = null;
  const run = () => {
    timer = null;
    fn();
  };
  const schedule = () => {
    if (timer === null) timer = setTimeout(run, ms);
  };
  schedule.cancel = () => {
    clearTimeout(timer);
    timer = null;
  };
  return schedule;
}

/** A stable colour per name (vessels, series), from a palette readable on the dark background. */
const PALETTE = ["#5aa9ff", "#ffb347", "#7ee081", "#ff7eb6", "#c39bff", "#4fd1c5", "#ffd166", "#ff8a65",
  "#a0c4ff", "#b9fbc0"];

export function colourOf(name) {
  let hash = 0;
  for (const ch of name) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

/** The n-th colour of the palette (series in one chart stay distinct). */
export function colourAt(i) {
  return PALETTE[i % PALETTE.length];
}
