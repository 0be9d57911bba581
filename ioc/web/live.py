"""Live updates: rows newly stored, found by following the database, fanned out as server-sent events.

The receivers that store records may be other processes (or other hosts), so
the feed cannot hear about new rows from inside this process: it polls each
table for rows whose ``received_ms`` is newer than what it has seen. A
receiver stamps ``received_ms`` before its transaction commits, so a row can
become visible a little after younger ones; the feed therefore looks back
``lag_s`` behind the newest arrival it has seen and remembers which rows of
that window it already sent. (Receivers on other hosts need clocks within
``lag_s`` of each other: NTP.)

One :class:`LiveFeed` per process polls once a second while someone listens,
whatever the number of listeners; each listener gets an asyncio queue.

Example::

    feed = LiveFeed(db, NodeView(online_after_s=180))
    feed.start()
    queue = feed.subscribe(asyncio.get_running_loop())
    events = await queue.get()        # [("position", [item, ...]), ("alarm", [...])]
    feed.unsubscribe(queue)
    feed.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from common.component import Component
from ioc.db import Database
from ioc.web.queries import (
    COUNTS,
    EVENTS,
    POSITIONS,
    SUMMARIES,
    AlarmFilter,
    NodeView,
    Page,
    RecordList,
    TimeRange,
    acks_arrived,
    alarms,
)

log = logging.getLogger(__name__)

Events = list[tuple[str, list[dict]]]
"""Named batches of items: ``[("position", [...]), ("alarm", [...])]``."""

EVENT_NAMES = ("alarm", "position", "status", "summary", "count", "event")
MAX_QUEUED = 256
"""A listener this many polls behind is cut off; its browser reconnects and reloads what it shows."""
ITEMS_PER_MESSAGE = 500


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Arrivals:
    """Rows of one table that arrived since the last call, counting rows that committed late.

    ``fetch(since_ms, limit)`` returns rows with ``device``, ``epoch``, ``seq``
    and the arrival column ``stamp``, oldest first. The query looks back
    ``lag_ms`` behind the newest arrival seen and asks for as many rows more
    than it already sent from that window, so a burst larger than ``cap`` is
    delivered over several calls rather than stalling.
    """

    fetch: Callable[[int, int], list[dict]]
    lag_ms: int
    watermark: int
    stamp: str = "received_ms"
    cap: int = 2000
    seen: dict[tuple, int] = field(default_factory=dict)

    def new_rows(self) -> list[dict]:
        rows = self.fetch(self.watermark - self.lag_ms, len(self.seen) + self.cap)
        fresh = []
        for row in rows:
            key = (row["device"], row["epoch"], row["seq"])
            if key not in self.seen:
                self.seen[key] = row[self.stamp]
                fresh.append(row)
        if rows:
            self.watermark = max(self.watermark, rows[-1][self.stamp])
        floor = self.watermark - self.lag_ms
        self.seen = {key: stamp for key, stamp in self.seen.items() if stamp > floor}
        return fresh


class LiveFeed(Component):
    """Polls the database for new rows while anyone listens and hands them to every listener.

    Built from the database and the node view; ``start()`` runs the poller
    thread, ``stop()`` ends it and every listener's stream.
    """

    def __init__(self, db: Database, nodes: NodeView, interval_s: float = 1.0, lag_s: float = 5.0) -> None:
        super().__init__("live-feed")
        self.db, self.node_view = db, nodes
        self.interval_s, self.lag_ms = interval_s, int(lag_s * 1000)
        self._listeners: dict[asyncio.Queue, asyncio.AbstractEventLoop] = {}
        self._lock = threading.Lock()
        self._sources: dict[str, Arrivals] | None = None
        self.failures: Counter[str] = Counter()
        """Polls of each kind that failed (its events of that poll were not sent)."""

    def _after_stop(self) -> None:
        with self._lock:
            listeners = list(self._listeners.items())
        for queue, loop in listeners:
            _offer(loop, queue, None)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def subscribe(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue:
        """A queue of :data:`Events` lists (None: the stream ends) fed on ``loop``."""
        queue: asyncio.Queue = asyncio.Queue()
        with self._lock:
            self._listeners[queue] = loop
        if self.stopping:
            queue.put_nowait(None)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._lock:
            self._listeners.pop(queue, None)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with self._lock:
                listeners = list(self._listeners.items())
            if not listeners:
                self._sources = None  # nobody listens: start afresh from the next listener's time
                continue
            try:
                events = self.poll()
            except Exception as exc:  # the database may be down for a while; listeners stay
                log.warning("event=live_poll_failed error=%s", " ".join(str(exc).split()))
                continue
            if events:
                for queue, loop in listeners:
                    _offer(loop, queue, events)

    def poll(self) -> Events:
        """What arrived since the last poll (the first looks ``lag_s`` back from now).

        Each kind on its own: one that fails (its query, a row it cannot read) is logged and counted
        in ``failures``, and the other kinds' events of this poll still go out.
        """
        if self._sources is None:
            self._sources = self._new_sources(now_ms())
        src = self._sources
        kinds: list[tuple[str, Callable[[], list[dict]]]] = [
            ("alarm", lambda: self._alarm_items(src["alarm"].new_rows(), src["ack"].new_rows())),
            ("position", lambda: _items(POSITIONS, src["position"].new_rows())),
            ("status", lambda: self._status_items(src["status"].new_rows())),
            ("summary", lambda: _items(SUMMARIES, src["summary"].new_rows())),
            ("count", lambda: _items(COUNTS, src["count"].new_rows())),
            ("event", lambda: _items(EVENTS, src["event"].new_rows())),
        ]
        events: Events = []
        for name, build in kinds:
            try:
                items = build()
            except Exception as exc:  # sqlite3, psycopg, or a row no reader expected
                self.failures[name] += 1
                log.warning("event=live_poll_failed kind=%s error=%s", name, " ".join(str(exc).split()))
                continue
            if items:
                events.append((name, items))
        return events

    def _new_sources(self, start_ms: int) -> dict[str, Arrivals]:
        def records(stream: str) -> Callable[[int, int], list[dict]]:
            lists = {"position": POSITIONS, "summary": SUMMARIES, "count": COUNTS, "event": EVENTS}
            if stream in lists:
                return lambda since, limit: lists[stream].arrived(self.db, since, limit)
            columns = (
                "device, epoch, seq, ts_ms, source, kind, state"
                if stream == "alarm"
                else "device, epoch, seq"
            )
            return lambda since, limit: self.db.fetch(
                f"SELECT {columns}, received_ms FROM rec_{stream} WHERE received_ms > ? "
                "ORDER BY received_ms, device, epoch, seq LIMIT ?",
                [since, limit],
            )

        sources = {
            name: Arrivals(records(name), self.lag_ms, start_ms)
            for name in ("alarm", "position", "status", "summary", "count", "event")
        }
        sources["ack"] = Arrivals(
            lambda since, limit: acks_arrived(self.db, since, limit), self.lag_ms, start_ms, stamp="acked_ms"
        )
        return sources

    def _status_items(self, statuses: list[dict]) -> list[dict]:
        """The /nodes items of the devices that sent a status."""
        return self.node_view.nodes(self.db, {r["device"] for r in statuses})

    def _alarm_items(self, records: list[dict], acks: list[dict]) -> list[dict]:
        """New alarm records, the raises that new clears closed and newly acknowledged raises, as upserts."""
        found: dict[str, dict] = {}
        keys = [(r["device"], r["epoch"], r["seq"]) for r in records + acks]
        for start in range(0, len(keys), 100):
            which = AlarmFilter(keys=tuple(keys[start : start + 100]))
            found.update((i["id"], i) for i in alarms(self.db, which, TimeRange(), Page(None)).items)
        for clear in (r for r in records if r["state"] == 0):
            which = AlarmFilter(
                identity=(clear["device"], clear["source"], clear["kind"]), cleared_ms=clear["ts_ms"]
            )
            found.update((i["id"], i) for i in alarms(self.db, which, TimeRange(), Page(None)).items)
        return list(found.values())


def _items(kind: RecordList, rows: list[dict]) -> list[dict]:
    for row in rows:
        del row["received_ms"]
    return [kind.to_item(row) for row in rows]


def _offer(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue, events: Events | None) -> None:
    def put() -> None:
        if events is not None and queue.qsize() >= MAX_QUEUED:
            # Too far behind to catch up: end its stream (the browser reconnects and refetches).
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)
            return
        queue.put_nowait(events)

    with contextlib.suppress(RuntimeError):  # that listener's loop is closed: it is gone
        loop.call_soon_threadsafe(put)


def sse_messages(events: Events) -> str:
    """Server-sent event messages for ``events``: ``event: NAME`` and ``data: {"items": [...]}``."""
    out = []
    for name, items in events:
        for start in range(0, len(items), ITEMS_PER_MESSAGE):
            data = json.dumps({"items": items[start : start + ITEMS_PER_MESSAGE]}, separators=(",", ":"))
            out.append(f"event: {name}\ndata: {data}\n\n")
    return "".join(out)
