"""The node's SQLite store: everything it records waits here until the IOC has acknowledged it.

One table per stream (``s_position``, ``s_alarm`` ...), whose ``seq`` column is
an ``AUTOINCREMENT`` key: SQLite assigns it when the record is committed and
never hands out a number twice, even after the records holding the highest
numbers were deleted. (A plain rowid would reuse the number of the newest
record once it was acked and deleted, and the IOC would then throw the new
record away as a duplicate.) The store's ``epoch`` is drawn when the file is
created, so a wiped or re-flashed node starts a new epoch the IOC can tell
from the old one.

When the store reaches ``max_bytes`` (enforced with ``PRAGMA max_page_count``,
which is per connection, so every :class:`Store` sets it) or the disk is full,
a write makes room by deleting the oldest records of streams of lower
priority than its own; when there are none, the incoming records are
dropped. Either way the count lands in :meth:`Store.drops`, never silently.

Example::

    >>> import tempfile, os
    >>> from sync.records import Position
    >>> store = Store(os.path.join(tempfile.mkdtemp(), "store.db"))
    >>> store.write({"position": [Position(1700000000000, 1, 1700000000000, 16.46, 107.59)]})
    >>> store.read("position", after=0, limit=10)[0]
    [1]
    >>> store.backlog()["position"]
    1
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import sqlite_utils

from edge.errors import IocEdgeError
from sync.wire import STREAMS, Ack, Stream

log = logging.getLogger(__name__)

_SQL_TYPES = {"int": "INTEGER", "fixed": "REAL", "text": "TEXT"}


class StoreError(IocEdgeError, OSError):
    """The store file cannot be opened or is not an ioc-edge store."""


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(exc)


class Store:
    """One connection to the node's store; use one per thread.

    ``max_bytes`` caps the file (``None``: only the disk does); ``synchronous``
    is ``"full"`` (a commit survives a power cut) or ``"normal"`` (it survives
    a crash of the process only).

    Raises :class:`StoreError` when ``path`` cannot be opened as a store.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int | None = None,
        synchronous: str = "full",
        streams: Mapping[str, Stream] = STREAMS,
    ) -> None:
        self.path = Path(path)
        self.streams = dict(streams)
        self._by_priority = sorted(self.streams.values(), key=lambda s: s.priority)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
            self.db = sqlite_utils.Database(conn)
            self._create_schema()
            if max_bytes is not None:
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={max(max_bytes // page, 16)}")
            self.epoch: str = self.db["meta"].get("epoch")["value"]
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None
        self.conn = conn
        self._insert = {
            s.name: f"INSERT INTO s_{s.name} ({', '.join(s.names)}) VALUES ({', '.join('?' * len(s.names))})"
            for s in self.streams.values()
        }
        self._select = {
            s.name: f"SELECT seq, {', '.join(s.names)} FROM s_{s.name} WHERE seq > ? ORDER BY seq LIMIT ?"
            for s in self.streams.values()
        }
        self._unsaved_drops: Counter[str] = Counter()
        self._full = False

    def _create_schema(self) -> None:
        with self.db.conn:
            self.db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
            self.db["counters"].create(
                {"grp": str, "name": str, "count": int}, pk=("grp", "name"), if_not_exists=True
            )
            self.db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", [secrets.token_hex(8)]
            )
            for s in self.streams.values():
                cols = ", ".join(f"{c.name} {_SQL_TYPES[c.kind]}" for c in s.columns)
                self.db.execute(
                    f"CREATE TABLE IF NOT EXISTS s_{s.name} (seq INTEGER PRIMARY KEY AUTOINCREMENT, {cols})"
                )

    # -- writing -----------------------------------------------------------------------------------

    def write(self, batches: Mapping[str, Sequence[tuple]]) -> None:
        """Commit records of several streams in one transaction, making room when the store is full.

        Records are tuples in the stream's column order (the NamedTuples of
        ``sync.records``). Never raises for a full store or disk: what could not
        be kept is counted in :meth:`drops`.
        """
        try:
            self.conn.execute("BEGIN")
            for name, rows in batches.items():
                if rows:
                    self.conn.executemany(self._insert[name], rows)
            self.conn.execute("COMMIT")
            if self._full:
                self._full = False
                log.warning("event=store_room path=%s", self.path)
        except sqlite3.OperationalError as exc:
            self._rollback()
            if not _is_full(exc):
                raise
            if not self._full:
                # Once per episode: a full store writes many times a second.
                self._full = True
                log.warning("event=store_full path=%s action=retention_by_priority", self.path)
            for stream in self._by_priority:
                if batches.get(stream.name):
                    self._write_making_room(stream, batches[stream.name])
        self._save_drops()

    def _write_making_room(self, stream: Stream, rows: Sequence[tuple]) -> None:
        while True:
            try:
                with self.conn:
                    self.conn.executemany(self._insert[stream.name], rows)
                return
            except sqlite3.OperationalError as exc:
                self._rollback()
                if not _is_full(exc):
                    raise
            victim = self._victim(stream.priority)
            if victim is None:
                self._unsaved_drops[stream.name] += len(rows)
                log.debug("event=store_drop stream=%s records=%d reason=full", stream.name, len(rows))
                return
            self._evict(victim, max(2 * len(rows), 1000))

    def _victim(self, priority: int) -> Stream | None:
        """The lowest-priority stream below ``priority`` that still holds records."""
        for s in reversed(self._by_priority):
            if s.priority <= priority:
                return None
            if self.conn.execute(f"SELECT 1 FROM s_{s.name} LIMIT 1").fetchone():
                return s
        return None

    def _evict(self, stream: Stream, count: int) -> None:
        with self.conn:
            cur = self.conn.execute(
                f"DELETE FROM s_{stream.name} WHERE seq IN "
                f"(SELECT seq FROM s_{stream.name} ORDER BY seq LIMIT ?)",
                [count],
            )
        self._unsaved_drops[stream.name] += cur.rowcount
        log.debug("event=store_evict stream=%s records=%d reason=full", stream.name, cur.rowcount)

    def _rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def _save_drops(self) -> None:
        # Counting the drops needs a page or two itself; on a full disk they wait in memory.
        if self._unsaved_drops and self.add_counts("drop", self._unsaved_drops):
            self._unsaved_drops.clear()

    def add_counts(self, group: str, counts: Mapping[str, int]) -> bool:
        """Add ``counts`` to the persistent counters of ``group``; False if the store was too full."""
        try:
            with self.conn:
                self.conn.executemany(
                    "INSERT INTO counters (grp, name, count) VALUES (?, ?, ?) "
                    "ON CONFLICT (grp, name) DO UPDATE SET count = count + excluded.count",
                    [(group, k, v) for k, v in counts.items() if v],
                )
            return True
        except sqlite3.OperationalError as exc:
            self._rollback()
            if not _is_full(exc):
                raise
            return False

    def set_meta(self, key: str, value: str) -> None:
        """Record ``key = value`` in the store's metadata (best effort on a full store)."""
        try:
            with self.conn:
                self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])
        except sqlite3.OperationalError as exc:
            self._rollback()
            if not _is_full(exc):
                raise

    # -- reading and acknowledging ---------------------------------------------------------------

    def read(self, stream: str, after: int, limit: int) -> tuple[list[int], list[tuple]]:
        """Up to ``limit`` records of ``stream`` with ``seq > after``: their seqs and the records."""
        rows = self.conn.execute(self._select[stream], [after, limit]).fetchall()
        return [r[0] for r in rows], [r[1:] for r in rows]

    def acknowledge(self, acks: Iterable[Ack]) -> int:
        """Delete what the IOC acknowledged (acks of another epoch are ignored); returns records deleted."""
        deleted = 0
        with self.conn:
            for ack in acks:
                if ack.epoch == self.epoch and ack.stream in self.streams:
                    cur = self.conn.execute(
                        f"DELETE FROM s_{ack.stream} WHERE seq BETWEEN ? AND ?", [ack.first, ack.last]
                    )
                    deleted += cur.rowcount
            self.conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_ack_ms', ?)",
                [str(time.time_ns() // 10**6)],
            )
        return deleted

    def discard(self, stream: str, seqs: Sequence[int]) -> None:
        """Delete records that can never be sent (invalid values); counted under ``invalid``."""
        with self.conn:
            self.conn.executemany(f"DELETE FROM s_{stream} WHERE seq = ?", [(s,) for s in seqs])
        self.add_counts("invalid", {stream: len(seqs)})

    # -- reporting -------------------------------------------------------------------------------

    def backlog(self) -> dict[str, int]:
        """Records waiting for the IOC's ack, per stream."""
        return {
            name: self.conn.execute(f"SELECT count(*) FROM s_{name}").fetchone()[0] for name in self.streams
        }

    def counters(self, group: str) -> dict[str, int]:
        """The persistent counters of ``group`` (``drop``, ``reject.gps`` ...)."""
        rows = self.conn.execute("SELECT name, count FROM counters WHERE grp = ?", [group])
        return dict(rows.fetchall())

    def drops(self) -> dict[str, int]:
        """Records dropped by the retention policy, per stream (including those not yet saved)."""
        return dict(Counter(self.counters("drop")) + self._unsaved_drops)

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def size_bytes(self) -> int:
        """Bytes the store occupies on disk, its write-ahead log included."""
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

    def status(self) -> dict:
        """What ``ioc-edge status`` shows: epoch, backlog, last ack, drops, rejects, size."""
        groups = [r[0] for r in self.conn.execute("SELECT DISTINCT grp FROM counters ORDER BY grp")]
        return {
            "epoch": self.epoch,
            "backlog": self.backlog(),
            "last_ack_ms": int(v) if (v := self.meta("last_ack_ms")) else None,
            "drops": self.drops(),
            "counters": {g: self.counters(g) for g in groups if g != "drop"},
            "size_bytes": self.size_bytes(),
        }

    def close(self) -> None:
        self.conn.close()
