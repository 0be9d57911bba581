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

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from edge.errors import IocEdgeError
from ioc.schema import MIGRATIONS, SQLITE
from sync.records import TimeSource
from sync.wire import STREAMS, Batch

log = logging.getLogger(__name__)


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
    """The central store; safe to share between threads (one lock around one connection).

    Queries are written once in the SQL both engines understand, with ``?``
    placeholders; :meth:`fetch` and :meth:`execute` are what the dashboard and
    the API build on.
    """

    def __init__(self, url: str) -> None:
        path = sqlite_path(url)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.dialect = SQLITE
        self.conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self._lock = threading.Lock()
        self.migrate()
        # Column names quoted: one is an SQL keyword ("group").
        quoted = {s.name: ", ".join(f'"{n}"' for n in s.names) for s in STREAMS.values()}
        self._insert = {
            s.name: f"INSERT INTO rec_{s.name} (device, epoch, seq, {quoted[s.name]}, received_ms) "
            f"VALUES ({', '.join('?' * (len(s.names) + 4))}) ON CONFLICT DO NOTHING"
            for s in STREAMS.values()
        }

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """A cursor inside one transaction: committed on leaving, rolled back on an exception."""
        with self._lock:
            cur = self.conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def migrate(self) -> None:
        """Apply the migrations of :mod:`ioc.schema` this database has not seen, each in its transaction."""
        with self.transaction() as cur:
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS schema_version (version {self.dialect.int} PRIMARY KEY, "
                f"name {self.dialect.text} NOT NULL, applied_ms {self.dialect.int} NOT NULL)"
            )
        for version, name, statements in MIGRATIONS:
            with self.transaction() as cur:
                cur.execute("SELECT 1 FROM schema_version WHERE version = ?", [version])
                if cur.fetchone():
                    continue
                for sql in statements(self.dialect):
                    cur.execute(sql)
                cur.execute(
                    "INSERT INTO schema_version (version, name, applied_ms) VALUES (?, ?, ?)",
                    [version, name, time.time_ns() // 1_000_000],
                )
                log.info("event=migrated version=%d name=%s", version, name)

    @property
    def schema_version(self) -> int:
        return self.fetch("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")[0]["v"]

    def fetch(self, sql: str, params: Sequence = ()) -> list[dict]:
        """Rows of a query as dicts (``?`` placeholders)."""
        with self._lock:
            cur = self.conn.execute(sql, list(params))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def execute(self, sql: str, params: Sequence = ()) -> int:
        """Run one statement in its own transaction; returns the rows it changed."""
        with self.transaction() as cur:
            cur.execute(sql, list(params))
            return cur.rowcount

    def store(self, batch: Batch) -> int:
        """Commit ``batch``; returns how many records were new (the rest were duplicates)."""
        now = time.time_ns() // 1_000_000
        rows = [
            (batch.device, batch.epoch, seq, *record, now)
            for seq, record in zip(batch.seqs, batch.records, strict=True)
        ]
        with self.transaction() as cur:
            before = self.conn.total_changes
            cur.executemany(self._insert[batch.stream], rows)
            new = self.conn.total_changes - before
            cur.execute(
                "INSERT INTO epochs (device, epoch, first_seen_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [batch.device, batch.epoch, now],
            )
            cur.execute(
                "INSERT INTO devices (device, last_seen_ms) VALUES (?, ?) "
                "ON CONFLICT (device) DO UPDATE SET last_seen_ms = excluded.last_seen_ms",
                [batch.device, now],
            )
        return new

    def count_reject(self, reason: str) -> None:
        self.execute(
            "INSERT INTO rejects (reason, count) VALUES (?, 1) "
            "ON CONFLICT (reason) DO UPDATE SET count = rejects.count + 1",
            [reason],
        )

    def rejects(self) -> dict[str, int]:
        """Payloads refused so far, by reason."""
        return {r["reason"]: r["count"] for r in self.fetch("SELECT reason, count FROM rejects")}

    def count(self, stream: str) -> int:
        """Records of ``stream`` stored, all devices together."""
        return self.fetch(f"SELECT COUNT(*) AS n FROM rec_{STREAMS[stream].name}")[0]["n"]

    def dump(self, stream: str, device: str | None = None) -> Iterator[dict]:
        """Stored records of ``stream`` as dicts, per device in epoch order, then in seq order."""
        if stream not in STREAMS:
            raise DatabaseError(f"unknown stream {stream!r}: expected one of {sorted(STREAMS)}")
        where, params = ("WHERE r.device = ?", [device]) if device else ("", [])
        sql = (
            f"SELECT r.* FROM rec_{stream} r JOIN epochs e ON e.device = r.device AND e.epoch = r.epoch "
            f"{where} ORDER BY r.device, e.first_seen_ms, r.epoch, r.seq"
        )
        for record in self.fetch(sql, params):
            record["tsrc"] = TimeSource(record["tsrc"]).name.lower()
            yield record

    def close(self) -> None:
        self.conn.close()
