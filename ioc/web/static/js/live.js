// The live stream (/api/v1/live, server-sent events): rows newly stored, by stream.
import { toLogin } from "./api.js";

export const STREAMS = ["position", "alarm", "count", "event", "summary", "status"];

/**
 * One EventSource shared by every view; views subscribe to stream names.
 * Example: const off = live.on("position", (items) => draw(items)); ... off();
 * `onState` gets "connecting" | "live" | "down"; `onResume` fires after a reconnect, when views must
 * refetch what they show (events sent while the stream was down are not replayed).
 */
export class Live {
  constructor(url = "/api/v1/live") {
    this.url = url;
    this._handlers = new Map(STREAMS.map((s) => [s, new Set()]));
    this._stateHandlers = new Set();
    this._resumeHandlers = new Set();
    this._source = null;
    this._retry = null;
    this._wasDown = false;
    this.state = "connecting";
  }

  start() {
    this._connect();
  }

  stop() {
    clearTimeout(this._retry);
    this._source?.close();
    this._source = null;
  }

  on(stream, fn) {
    this._handlers.get(stream).add(fn);
    return () => this._handlers.get(stream).delete(fn);
  }

  onState(fn) {
    this._stateHandlers.add(fn);
    fn(this.state);
    return () => this._stateHandlers.delete(fn);
  }

  onResume(fn) {
    this._resumeHandlers.add(fn);
    return () => this._resumeHandlers.delete(fn);
  }

  _setState(state) {
    this.state = state;
    for (const fn of this._stateHandlers) fn(state);
  }

  _connect() {
    const source = new EventSource(this.url);
    this._source = source;
    source.addEventListener("open", () => {
      this._setState("live");
      if (this._wasDown) for (const fn of this._resumeHandlers) fn();
      this._wasDown = false;
    });
    source.addEventListener("error", () => {
      this._wasDown = true;
      // CONNECTING: the browser retries by itself. CLOSED (an HTTP error such as 401): retry ourselves, slowly.
      if (source.readyState === EventSource.CLOSED) {
        this._setState("down");
        source.close();
        // The stream also ends with the session (signed out elsewhere, expired): then sign in again.
        fetch("/api/v1/me", { credentials: "same-origin" }).then((r) => r.status === 401 && toLogin(), () => null);
        this._retry = setTimeout(() => this._connect(), 5000);
      } else {
        this._setState("connecting");
      }
    });
    for (const stream of STREAMS) {
      source.addEventListener(stream, (ev) => this._dispatch(stream, ev.data));
    }
  }

  _dispatch(stream, data) {
    let items;
    try {
      items = JSON.parse(data).items ?? [];
    } catch {
      console.warn(`live: ${stream} event is not JSON`);
      return;
    }
    for (const fn of this._handlers.get(stream)) fn(items);
  }
}
