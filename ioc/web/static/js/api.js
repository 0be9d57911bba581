// The JSON API (/api/v1): the session cookie travels with every request; 401 means "sign in again".

/** An error answer: `status` and the server's `detail` (which names the parameter). */
export class ApiError extends Error {
  constructor(status, detail) {
    super(`${status}: ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

/** Go to the sign-in page, coming back to this view afterwards. */
export function toLogin() {
  const next = location.pathname + location.search + location.hash;
  location.assign(`/login.html?next=${encodeURIComponent(next)}`);
}

/** `path?key=value&...` without the null/undefined/"" parameters. */
export function withQuery(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** GET (or `method`) a JSON answer from the API; throws ApiError on 4xx/5xx. */
export async function api(path, { method = "GET", params = {}, body } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(withQuery(path, params), init);
  if (res.status === 401 && path !== "/login") {
    toLogin();
    throw new ApiError(401, "not signed in");
  }
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, typeof data.detail === "string" ? data.detail : res.statusText);
  return data;
}

/** Every item of a paged list endpoint (limit 1000 a page), up to `max` items. */
export async function fetchAll(path, params = {}, max = 20000) {
  const items = [];
  let offset = 0;
  while (offset !== null && items.length < max) {
    const page = await api(path, { params: { ...params, limit: 1000, offset } });
    items.push(...page.items);
    offset = page.next_offset ?? null;
  }
  return items;
}

/** A record's identity (device, store epoch, sequence number), the same in a list and in the live feed. */
export function recordKey(it) {
  return `${it.device}/${it.epoch}/${it.seq}`;
}

/**
 * The records of `items` that `list` lacks: the live feed may repeat a row that a fetch just brought
 * (it looks a few seconds back for rows committed late), and a count added twice is a wrong count.
 */
export function unseen(list, items) {
  const have = new Set(list.map(recordKey));
  return items.filter((it) => !have.has(recordKey(it)));
}
