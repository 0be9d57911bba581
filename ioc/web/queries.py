"""Read queries of the dashboard's API over :meth:`Database.fetch`, written once for SQLite and PostgreSQL.

Portable SQL only (``?`` placeholders, no engine-specific functions): a
status body's JSON is parsed here in Python. Every list is a
:class:`Listing` of items (plain dicts, the JSON the API answers) with the
offset of the next page, or None on the last one.

Example::

    >>> from ioc.db import Database
    >>> db = Database("sqlite:///:memory:")
    >>> POSITIONS.list(db, {"device": "vessel-042"}, TimeRange(), Page(10, 0))
    Listing(items=[], next_offset=None)
"""

from __future__ import annotations

import base64
import builtins
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

from ioc import audit
from ioc.admission import FIELD_BYTES, json_object
from ioc.commands import QueuedCommand
from ioc.db import Database
from ioc.web.aqi import band, vn_aqi


@dataclass(frozen=True)
class TimeRange:
    """``start_ms <= ts_ms < end_ms`` (UTC ms); None leaves that end open."""

    start_ms: int | None = None
    end_ms: int | None = None

    def where(self, column: str) -> tuple[list[str], list[object]]:
        """The clauses and their parameters; callers add theirs (of any type) to both lists."""
        clauses: list[str] = []
        params: list[object] = []
        if self.start_ms is not None:
            clauses.append(f"{column} >= ?")
            params.append(self.start_ms)
        if self.end_ms is not None:
            clauses.append(f"{column} < ?")
            params.append(self.end_ms)
        return clauses, params


@dataclass(frozen=True)
class Page:
    """``limit`` rows from ``offset``; a limit of None means every row (CSV exports)."""

    limit: int | None
    offset: int = 0

    def sql(self) -> tuple[str, list[int]]:
        # One row more than asked: whether it comes back says if there is a next page.
        if self.limit is None:
            # OFFSET alone is not SQLite's, LIMIT ALL / -1 not portable: a limit no list reaches.
            return (" LIMIT ? OFFSET ?", [2**62, self.offset]) if self.offset else ("", [])
        return " LIMIT ? OFFSET ?", [self.limit + 1, self.offset]


@dataclass
class Listing:
    """One page of a list endpoint."""

    items: list[dict]
    next_offset: int | None = None


def _page(rows: list[dict], page: Page, to_item: Callable[[dict], dict]) -> Listing:
    more = page.limit is not None and len(rows) > page.limit
    rows = rows[: page.limit] if more else rows
    return Listing([to_item(r) for r in rows], page.offset + len(rows) if more else None)


def _where(clauses: Sequence[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def _or_keys(keys: Sequence[tuple[str, str, int]], prefix: str) -> tuple[str, list]:
    """``(device, epoch, seq) IN keys`` written as ORs (row values are not portable to every engine)."""
    clause = " OR ".join(f"({prefix}device = ? AND {prefix}epoch = ? AND {prefix}seq = ?)" for _ in keys)
    return f"({clause})", [v for key in keys for v in key]


@dataclass(frozen=True)
class RecordList:
    """A list endpoint over one ``rec_<stream>`` table: equality filters, a time range, pages.

    ``columns`` are selected (quoted: one is the keyword ``group``), ``filters``
    are the columns a caller may filter on, ``to_item`` turns a row into the
    API's item.
    """

    stream: str
    columns: tuple[str, ...]
    filters: tuple[str, ...]
    to_item: Callable[[dict], dict] = dict
    default_order: Literal["asc", "desc"] = "asc"

    @property
    def select(self) -> str:
        return ", ".join(f'"{c}"' for c in ("device", "epoch", "seq", "ts_ms", *self.columns))

    def list(
        self,
        db: Database,
        filters: dict[str, str | None],
        times: TimeRange,
        page: Page,
        order: Literal["asc", "desc"] | None = None,
    ) -> Listing:
        clauses, params = [], []
        for name, value in filters.items():
            if name not in self.filters:
                raise KeyError(name)
            if value is not None:
                clauses.append(f'"{name}" = ?')
                params.append(value)
        more, more_params = times.where("ts_ms")
        direction = (order or self.default_order).upper()
        paging, paging_params = page.sql()
        sql = (
            f"SELECT {self.select} FROM rec_{self.stream}{_where(clauses + more)} "
            f"ORDER BY ts_ms {direction}, device, epoch, seq {direction}{paging}"
        )
        return _page(db.fetch(sql, params + more_params + paging_params), page, self.to_item)

    # builtins.list: in this class's body, ``list`` is the method above.
    def arrived(self, db: Database, since_ms: int, limit: int) -> builtins.list[dict]:
        """Rows stored after ``since_ms`` (their ``received_ms``), oldest first, with ``received_ms``."""
        sql = (
            f"SELECT {self.select}, received_ms FROM rec_{self.stream} WHERE received_ms > ? "
            "ORDER BY received_ms, device, epoch, seq LIMIT ?"
        )
        return db.fetch(sql, [since_ms, limit])


def _event_item(row: dict) -> dict:
    box = [row.pop(k) for k in ("x1", "y1", "x2", "y2")]
    row["box"] = box
    row["snapshot_url"] = f"/api/v1/events/{row['device']}/{row['epoch']}/{row['seq']}/snapshot.jpg"
    return row


def _summary_item(row: dict) -> dict:
    aqi = vn_aqi(row["quantity"], row["mean"])
    row["aqi"] = aqi
    row["aqi_band"] = band(aqi).key if aqi is not None else None
    return row


POSITIONS = RecordList(
    "position",
    ("tsrc", "lat", "lon", "speed_kn", "course_deg", "fix", "sats", "hdop", "alt_m"),
    ("device",),
)
COUNTS = RecordList(
    "count", ("tsrc", "camera", "line", "group", "direction", "interval_s", "count"), ("device", "camera")
)
EVENTS = RecordList(
    "event",
    ("tsrc", "camera", "rule", "label", "track_id", "score", "x1", "y1", "x2", "y2", "message"),
    ("device", "camera"),
    _event_item,
    default_order="desc",
)
SUMMARIES = RecordList(
    "summary",
    (
        "tsrc", "sensor", "quantity", "interval_s", "count", "mean", "min", "max", "trimmed_mean", "total",
        "rejected",
    ),
    ("device", "sensor", "quantity"),
    _summary_item,
)  # fmt: skip


def snapshot(db: Database, device: str, epoch: str, seq: int) -> bytes | None:
    """The JPEG of one event, or None when there is no such event."""
    rows = db.fetch(
        "SELECT jpeg FROM rec_event WHERE device = ? AND epoch = ? AND seq = ?", [device, epoch, seq]
    )
    return bytes(rows[0]["jpeg"]) if rows else None


# --- alarms -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmFilter:
    """Which alarm records: ``open_only``: the open alarms' raises; ``keys``: exactly these records."""

    open_only: bool = False
    device: str | None = None
    keys: tuple[tuple[str, str, int], ...] = ()
    identity: tuple[str, str, str] | None = None
    """(device, source, kind) with ``cleared_ms``: the raises one clear record closed."""
    cleared_ms: int | None = None


# An alarm is one (device, source, kind): a node raises and clears it on its rule's or zone's
# transitions only. A raise (state 1) is cleared by a later record of the same alarm with state 0;
# cleared_ms is the time of the first such record. A raise right after a raise of the same alarm
# (``is_repeat``) is the node saying again what it said (its alarm rules forget their state when it
# restarts), not a second alarm: the alarm stays open from its first raise, whose ack holds.
_ALARMS = """
SELECT t.*, CASE WHEN {open} THEN 1 ELSE 0 END AS is_open FROM (
  SELECT r.device, r.epoch, r.seq, r.ts_ms, r.tsrc, r.source, r.kind, r.state, r.value, r.message,
    (SELECT MIN(c.ts_ms) FROM rec_alarm c
      WHERE r.state = 1 AND c.device = r.device AND c.source = r.source AND c.kind = r.kind AND c.state = 0
        AND (c.ts_ms > r.ts_ms OR (c.ts_ms = r.ts_ms AND c.epoch = r.epoch AND c.seq > r.seq))) AS cleared_ms,
    COALESCE((SELECT p.state FROM rec_alarm p
      WHERE r.state = 1 AND p.device = r.device AND p.source = r.source AND p.kind = r.kind
        AND (p.ts_ms < r.ts_ms OR (p.ts_ms = r.ts_ms AND p.epoch = r.epoch AND p.seq < r.seq))
      ORDER BY p.ts_ms DESC, p.seq DESC LIMIT 1), 0) AS is_repeat,
    a.acked_by, a.acked_ms, a.note
  FROM rec_alarm r LEFT JOIN alarm_acks a ON a.device = r.device AND a.epoch = r.epoch AND a.seq = r.seq
  {inner}
) t{outer}
ORDER BY is_open DESC, t.ts_ms DESC, t.device, t.epoch, t.seq DESC"""
_OPEN = "t.state = 1 AND t.cleared_ms IS NULL AND t.is_repeat = 0"
"""An open alarm's raise: not cleared, and not a repeat of a raise of the same alarm."""


def alarms(db: Database, which: AlarmFilter, times: TimeRange, page: Page) -> Listing:
    """Alarm records, open raises first, then newest first; each with whether it is open and its ack."""
    inner, params = times.where("r.ts_ms")
    outer: list[str] = []
    if which.device is not None:
        inner.append("r.device = ?")
        params.append(which.device)
    if which.keys:
        clause, key_params = _or_keys(which.keys, "r.")
        inner.append(clause)
        params += key_params
    if which.identity is not None:
        inner.append("r.device = ? AND r.source = ? AND r.kind = ? AND r.state = 1")
        params += list(which.identity)
    outer_params: list = []
    if which.open_only:
        outer.append(_OPEN)
    if which.cleared_ms is not None:
        outer.append("t.cleared_ms = ?")
        outer_params.append(which.cleared_ms)
    paging, paging_params = page.sql()
    sql = _ALARMS.format(inner=_where(inner), outer=_where(outer), open=_OPEN) + paging
    return _page(db.fetch(sql, params + outer_params + paging_params), page, _alarm_item)


def open_alarms(db: Database) -> int:
    """How many alarms are open: what the dashboard's badge shows (from the open alarms' list) and
    the demo prints.

    >>> db = Database("sqlite:///:memory:")
    >>> open_alarms(db)
    0
    """
    return len(alarms(db, AlarmFilter(open_only=True), TimeRange(), Page(None)).items)


def _alarm_item(row: dict) -> dict:
    row["id"] = f"{row['device']}/{row['epoch']}/{row['seq']}"
    row["open"] = bool(row.pop("is_open"))
    del row["is_repeat"]
    return row


class AckRefused(Exception):
    """An acknowledgement that cannot be recorded; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def acknowledge(db: Database, device: str, epoch: str, seq: int, username: str, note: str) -> dict:
    """Record that ``username`` acknowledged the raise record (device, epoch, seq); the first ack stays.

    Returns ``{id, acked_by, acked_ms, note}`` of the ack on record; raises
    :class:`AckRefused` (404) for no such alarm, (409) for a clear record.
    """
    key = f"{device}/{epoch}/{seq}"
    rows = db.fetch(
        "SELECT state FROM rec_alarm WHERE device = ? AND epoch = ? AND seq = ?", [device, epoch, seq]
    )
    if not rows:
        raise AckRefused(404, f"no alarm {key}")
    if rows[0]["state"] != 1:
        raise AckRefused(409, f"alarm record {key} is a clear (state 0): acknowledge the raise it clears")
    db.execute(
        "INSERT INTO alarm_acks (device, epoch, seq, acked_by, acked_ms, note) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        [device, epoch, seq, username, time.time_ns() // 1_000_000, note],
    )
    ack = db.fetch(
        "SELECT acked_by, acked_ms, note FROM alarm_acks WHERE device = ? AND epoch = ? AND seq = ?",
        [device, epoch, seq],
    )[0]
    return {"id": key, **ack}


def acks_arrived(db: Database, since_ms: int, limit: int) -> list[dict]:
    """Acknowledgements recorded after ``since_ms``, oldest first."""
    return db.fetch(
        "SELECT device, epoch, seq, acked_ms FROM alarm_acks WHERE acked_ms > ? "
        "ORDER BY acked_ms, device, epoch, seq LIMIT ?",
        [since_ms, limit],
    )


# --- nodes and vessels -------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeView:
    """How nodes are shown: online when heard within ``online_after_s``."""

    online_after_s: int
    clock: Callable[[], float] = field(default=time.time)

    def nodes(self, db: Database, devices: Iterable[str] | None = None) -> list[dict]:
        """Every device that ever sent something (or those of ``devices``), with its latest status."""
        clauses, params = [], []
        if devices is not None:
            wanted = sorted(set(devices))
            if not wanted:
                return []
            clauses.append(f"d.device IN ({', '.join('?' * len(wanted))})")
            params += wanted
        sql = (
            "SELECT d.device, d.last_seen_ms, s.ts_ms AS status_ts_ms, s.tsrc, s.body, d.latest_epoch FROM "
            "(SELECT d.device, d.last_seen_ms, "
            "(SELECT MAX(q.received_ms) FROM rec_status q WHERE q.device = d.device) AS newest, "
            "(SELECT e.epoch FROM epochs e WHERE e.device = d.device ORDER BY e.first_seen_ms DESC, e.epoch "
            f"LIMIT 1) AS latest_epoch FROM devices d{_where(clauses)}) d "
            "LEFT JOIN rec_status s ON s.device = d.device AND s.received_ms = d.newest "
            "ORDER BY d.device, s.ts_ms DESC, s.seq DESC"
        )
        now_ms = int(self.clock() * 1000)
        items: dict[str, dict] = {}
        for row in db.fetch(sql, params):
            # Two statuses stored in one batch share their arrival time: the newest (first) wins.
            items.setdefault(row["device"], self._node(row, now_ms))
        return list(items.values())

    def _node(self, row: dict, now_ms: int) -> dict:
        body = _status_body(row["body"])
        counters = _dict(body.get("counters"))
        return {
            "device": row["device"],
            "online": now_ms - row["last_seen_ms"] <= self.online_after_s * 1000,
            "last_seen_ms": row["last_seen_ms"],
            "epoch": body.get("epoch") if isinstance(body.get("epoch"), str) else row["latest_epoch"],
            "status_ts_ms": row["status_ts_ms"],
            "tsrc": row["tsrc"],
            "version": body.get("version") if isinstance(body.get("version"), str) else None,
            "backlog": _dict(body.get("backlog")),
            "drops": _dict(body.get("drops")),
            "rejects": {
                name.removeprefix("reject."): _dict(value)
                for name, value in counters.items()
                if name.startswith("reject.")
            },
            "failed_drivers": _dict(body.get("failed_drivers")),
            "counters": counters,
        }

    def vessels(self, db: Database) -> list[dict]:
        """The latest position of every device that sent positions, with its age."""
        # The newest time of each device first (one index lookup each), then its rows at that time;
        # MATERIALIZED keeps SQLite from folding it into a scan of every position.
        rows = db.fetch(
            "WITH m AS MATERIALIZED (SELECT d.device, (SELECT MAX(q.ts_ms) FROM rec_position q "
            "WHERE q.device = d.device) AS newest FROM devices d) "
            "SELECT p.device, p.epoch, p.seq, p.ts_ms, p.tsrc, p.lat, p.lon, p.speed_kn, p.course_deg, "
            "p.fix, p.sats, p.hdop FROM m JOIN rec_position p ON p.device = m.device AND p.ts_ms = m.newest "
            "ORDER BY p.device, p.seq DESC"
        )
        now_ms = int(self.clock() * 1000)
        items: dict[str, dict] = {}
        for row in rows:
            row["age_s"] = round((now_ms - row["ts_ms"]) / 1000, 1)
            items.setdefault(row["device"], row)
        return list(items.values())


def heard(db: Database, device: str) -> bool:
    """Whether ``device`` ever sent the centre anything."""
    return bool(db.fetch("SELECT 1 FROM devices WHERE device = ?", [device]))


# --- commands to the nodes ---------------------------------------------------------------------

_COMMAND_COLUMNS = ", ".join(QueuedCommand.__dataclass_fields__)


def commands(db: Database, device: str, page: Page) -> Listing:
    """``device``'s commands in the centre's queue (``ioc.commands``), newest first."""
    limit, params = page.sql()
    rows = db.fetch(
        f"SELECT {_COMMAND_COLUMNS} FROM commands WHERE device = ? ORDER BY seq DESC{limit}",
        [device, *params],
    )
    return _page(rows, page, lambda row: asdict(QueuedCommand.from_row(row)))


def command_snapshot(db: Database, device: str, seq: int) -> bytes | None:
    """The JPEG a ``snapshot`` command of ``device`` brought back, or None: no such command, another kind,
    not applied (yet), or an answer without a JPEG."""
    rows = db.fetch(
        "SELECT details FROM commands "
        "WHERE device = ? AND seq = ? AND kind = 'snapshot' AND state = 'applied'",
        [device, seq],
    )
    try:
        answer = json.loads(rows[0]["details"]) if rows else None
        return base64.b64decode(answer["jpeg_base64"], validate=True) if answer else None
    except (ValueError, TypeError, KeyError):
        return None  # the node's answer is its own: an odd one is no JPEG, not an error of the centre


# --- the audit log --------------------------------------------------------------------------------


def audit_log(db: Database, device: str | None, since_ms: int | None, page: Page) -> Listing:
    """The audit log (``ioc.audit``), newest first: of ``device``, from ``since_ms`` on."""
    clauses, params = audit.filters(device, since_ms)
    limit, paging = page.sql()
    rows = db.fetch(
        f"SELECT {audit.SELECT} FROM audit_log{_where(clauses)} ORDER BY id DESC{limit}",
        [*params, *paging],
    )
    return _page(rows, page, lambda row: {**row, "details": json.loads(row["details"])})


def _status_body(text: str | None) -> dict:
    # A node's own report: read what is there, never fail the whole list on one odd body. Within the
    # receiver's bounds only: an older centre may hold one too deep to parse, too large to answer, or
    # with a NaN no JSON answer can carry.
    try:
        return json_object(text, max_bytes=FIELD_BYTES["status", "body"]) if text else {}
    except ValueError:
        return {}


def _dict(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def rejects(db: Database) -> list[dict]:
    """Payloads the centre refused, by reason."""
    return [{"reason": k, "count": v} for k, v in sorted(db.rejects().items())]


def chunks(fetch_page: Callable[[Page], Listing], start: int = 0, size: int = 5000) -> Iterator[dict]:
    """Every item of a list from offset ``start``, fetched ``size`` at a time (CSV exports of a range)."""
    offset: int | None = start
    while offset is not None:
        listing = fetch_page(Page(size, offset))
        yield from listing.items
        offset = listing.next_offset
