"""The IOC's database of synced records (SQLite by default; the URL chooses).

One table per stream, ``rec_<stream>``, keyed on (device, epoch, seq): the
database itself refuses a second copy of a record, so several receivers can
share the load without de-duplicating among themselves. ``epochs`` remembers
when each store epoch of a device was first seen, which orders a device's
records across re-flashes.

Example::

    >>> db = Database("sqlite:///:memory:")
    >>> db.rejects()
    {}
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from edge.errors import IocEdgeError
from sync.records import TimeSource
from sync.wire import STREAMS, Batch

_PY_TYPES = {"int": int, "fixed": float, "text": str, "blob": bytes}


class DatabaseError(IocEdgeError, ValueError):
    """The database URL is not one the IOC can use."""


def sqlite_path(url: str) -> str:
    """The file of a ``sqlite:///path`` URL (a bare path is taken as one too)."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///") :]
    if "://" in url:
        raise DatabaseError(f"unsupported database URL {url!r}: use sqlite:///path/to/ioc.db")
    return url


class Database:
    """The central store; safe to share between threads (one lock around one connection)."""

    def __init__(self, url: str) -> None:
        path = sqlite_path(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        self.db = sqlite_utils.Database(conn)
        self._lock = threading.Lock()
        with conn:
            for stream in STREAMS.values():
                cols = {"device": str, "epoch": str, "seq": int}
                cols |= {c.name: _PY_TYPES[c.kind] for c in stream.columns}
                cols["received_ms"] = int
                self.db[f"rec_{stream.name}"].create(cols, pk=("device", "epoch", "seq"), if_not_exists=True)
            self.db["epochs"].create(
                {"device": str, "epoch": str, "first_seen_ms": int},
                pk=("device", "epoch"),
                if_not_exists=True,
            )
            self.db["devices"].create({"device": str, "last_seen_ms": int}, pk="device", if_not_exists=True)
            self.db["rejects"].create({"reason": str, "count": int}, pk="reason", if_not_exists=True)
        # Column names quoted: one may be an SQL keyword ("group").
        quoted = {s.name: ", ".join(f'"{n}"' for n in s.names) for s in STREAMS.values()}
        self._insert = {
            s.name: f"INSERT OR IGNORE INTO rec_{s.name} "
            f"(device, epoch, seq, {quoted[s.name]}, received_ms) "
            f"VALUES ({', '.join('?' * (len(s.names) + 4))})"
            for s in STREAMS.values()
        }

    def store(self, batch: Batch) -> int:
        """Commit ``batch``; returns how many records were new (the rest were duplicates)."""
        now = time.time_ns() // 1_000_000
        rows = [
            (batch.device, batch.epoch, seq, *record, now)
            for seq, record in zip(batch.seqs, batch.records, strict=True)
        ]
        with self._lock, self.db.conn as conn:
            before = conn.total_changes
            conn.executemany(self._insert[batch.stream], rows)
            new = conn.total_changes - before
            conn.execute(
                "INSERT OR IGNORE INTO epochs (device, epoch, first_seen_ms) VALUES (?, ?, ?)",
                [batch.device, batch.epoch, now],
            )
            conn.execute(
                "INSERT OR REPLACE INTO devices (device, last_seen_ms) VALUES (?, ?)", [batch.device, now]
            )
        return new

    def count_reject(self, reason: str) -> None:
        with self._lock, self.db.conn as conn:
            conn.execute(
                "INSERT INTO rejects (reason, count) VALUES (?, 1) "
                "ON CONFLICT (reason) DO UPDATE SET count = count + 1",
                [reason],
            )

    def rejects(self) -> dict[str, int]:
        """Payloads refused so far, by reason."""
        with self._lock:
            return dict(self.db.conn.execute("SELECT reason, count FROM rejects").fetchall())

    def count(self, stream: str) -> int:
        """Records of ``stream`` stored, all devices together."""
        with self._lock:
            return self.db[f"rec_{STREAMS[stream].name}"].count

    def dump(self, stream: str, device: str | None = None) -> Iterator[dict]:
        """Stored records of ``stream`` as dicts, per device in epoch order, then in seq order."""
        if stream not in STREAMS:
            raise DatabaseError(f"unknown stream {stream!r}: expected one of {sorted(STREAMS)}")
        where, params = ("WHERE r.device = ?", [device]) if device else ("", [])
        sql = (
            f"SELECT r.* FROM rec_{stream} r JOIN epochs e ON e.device = r.device AND e.epoch = r.epoch "
            f"{where} ORDER BY r.device, e.first_seen_ms, r.epoch, r.seq"
        )
        with self._lock:
            cur = self.db.conn.execute(sql, params)
            names = [d[0] for d in cur.description]
            rows = cur.fetchall()
        for row in rows:
            record = dict(zip(names, row, strict=True))
            record["tsrc"] = TimeSource(record["tsrc"]).name.lower()
            yield record

    def close(self) -> None:
        self.db.conn.close()
