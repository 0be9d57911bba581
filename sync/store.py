"""The node's SQLite store: everything it records waits here until the IOC has acknowledged it.

Records are kept in chunks: one row per stream per commit, holding that
commit's records packed with msgpack and compressed with zstd. A row per
record would cost a B-tree insert and ~160 bytes written to the SD card per
record; a chunk costs one insert and ~10-30 bytes a record (``bench/store.py``).

Each stream has a sequence counter (table ``seqs``) that only moves up, in the
same transaction as the chunk it numbers: a record's ``seq`` is assigned when
it is committed and never handed out twice, even after the newest records
were acknowledged and deleted (a reused number would make the IOC throw the
new record away as a duplicate). The store's ``epoch`` is drawn when the file
is created, so a wiped or re-flashed node starts a new epoch the IOC can tell
from the old one.

When the store reaches ``max_bytes`` (enforced with ``PRAGMA max_page_count``,
which is per connection, so every :class:`Store` sets it) or the disk is full,
a write makes room by deleting the oldest chunks of streams of lower priority
than its own; when there are none, the incoming records are dropped. Either
way the count lands in :meth:`Store.drops`, never silently.

A stream with ``archive`` (the track log) is also written to ``a_<stream>`` in the same
transaction. Acks, discards and making room never touch the archive; only
:meth:`Store.prune_archive` does, by age. ``ioc-edge track export`` reads it.

Table ``commands`` is the node's own record of the centre's commands it took (``edge.commands``):
a command's state changes in the same transaction as the result record it sends.

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

import json
import logging
import os
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import msgpack
import zstandard

from common.errors import IocEdgeError
from drivers.base import Outage
from sync.wire import STREAMS, Ack, Batch, InvalidRecords, Stream, decode_batch, encode_batch

log = logging.getLogger(__name__)


class StoreError(IocEdgeError, OSError):
    """The store file cannot be opened or is not an ioc-edge store."""


@dataclass(frozen=True)
class StoredCommand:
    """A command from the centre as the node's store keeps it: what the node did with it.

    ``state`` is ``delivered`` from the moment the node took it to run (``Store.begin_command``)
    until it is finished (``Store.finish_command``) as ``applied`` or ``refused`` with a ``reason``;
    ``details`` is the result's JSON text. Kept across restarts, so a command is never run twice.

    Example::

        >>> StoredCommand(3, "9f0c2a1b3d4e5f60", "ping", "delivered", "", "", 1700000000000).finished
        False
    """

    seq: int
    epoch: str
    kind: str
    state: str
    reason: str
    details: str
    received_ms: int

    @property
    def finished(self) -> bool:
        return self.state != "delivered"


RECENT_COMMANDS = 5
"""How many of the latest commands the store's status lists."""


@dataclass(frozen=True)
class StoreStatus:
    """What :meth:`Store.status` reports: what ``ioc-edge status`` shows and the metrics export.

    ``epoch``: the store's (16 hex digits); ``backlog``: records waiting for the IOC's ack, per
    stream; ``kept_local``: records kept on the node only; ``last_ack_ms``: when the IOC's last ack
    arrived (None: never); ``drops``: records dropped by retention; ``counters``: group -> reason
    -> count (``reject.gps``...), ``drop`` aside. As of the runtime's last status report:
    ``failed_drivers``, drivers that could not start, with why; ``outages``, sources delivering
    nothing, with why and since when; ``facts``, what components told that report (``link``,
    ``track``). ``commands``: the centre's latest commands and what became of them.

    Example::

        >>> StoreStatus(epoch="9f0c2a1b3d4e5f60", size_bytes=4096, backlog={"position": 2}, kept_local={},
        ...             last_ack_ms=None, drops={}).counters
        {}
    """

    epoch: str
    size_bytes: int
    backlog: Mapping[str, int]
    kept_local: Mapping[str, int]
    last_ack_ms: int | None
    drops: Mapping[str, int]
    counters: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    failed_drivers: Mapping[str, str] = field(default_factory=dict)
    outages: Mapping[str, Outage] = field(default_factory=dict)
    facts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    commands: tuple[StoredCommand, ...] = ()


_COMMAND_COLUMNS = "seq, epoch, kind, state, reason, details, received_ms"


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "full" in str(exc)


def _runs(seqs: Sequence[int]) -> list[list[int]]:
    """``[1, 2, 3, 7, 8]`` -> ``[[1, 3], [7, 2]]``: holes left by acks and discards stay cheap."""
    runs: list[list[int]] = []
    for q in seqs:
        if runs and runs[-1][0] + runs[-1][1] == q:
            runs[-1][1] += 1
        else:
            runs.append([q, 1])
    return runs


def _table(name: str, columns: str) -> str:
    return f'CREATE TABLE IF NOT EXISTS "{name}" (\n   {columns}\n)'


def _index(table: str, column: str) -> str:
    return f'CREATE INDEX IF NOT EXISTS "idx_{table}_{column}"\n    ON "{table}" ("{column}")'


def _schema(streams: Iterable[Stream]) -> list[str]:
    """The store's tables and indexes, each created only when missing."""
    ddl = [
        _table("meta", '"key" TEXT PRIMARY KEY,\n   "value" TEXT'),
        _table(
            "counters", '"grp" TEXT,\n   "name" TEXT,\n   "count" INTEGER,\n   PRIMARY KEY ("grp", "name")'
        ),
        _table("seqs", '"stream" TEXT PRIMARY KEY,\n   "last" INTEGER'),
        # The centre's commands this node took (edge.commands): never run one twice, even after a restart.
        _table(
            "commands",
            '"seq" INTEGER PRIMARY KEY,\n   "epoch" TEXT NOT NULL,\n   "kind" TEXT NOT NULL,\n   '
            '"state" TEXT NOT NULL,\n   "reason" TEXT NOT NULL,\n   "details" TEXT NOT NULL,\n   '
            '"received_ms" INTEGER NOT NULL',
        ),
    ]
    for s in streams:
        # id: the first seq the chunk was written with; lo..hi: the seqs it still holds.
        chunk = '"lo" INTEGER NOT NULL,\n   "hi" INTEGER NOT NULL,\n   "n" INTEGER NOT NULL,\n   '
        times = '"ts_min" INTEGER,\n   "ts_max" INTEGER,\n   '
        ddl += [
            _table(f"k_{s.name}", f'"id" INTEGER PRIMARY KEY,\n   {chunk}{times}"body" BLOB NOT NULL'),
            _index(f"k_{s.name}", "hi"),
        ]
        if s.archive:
            # The same chunks again, which acks and making room never delete: only age.
            # wire 1: a compacted chunk, its body a wire batch (compact_archive).
            ddl += [
                _table(
                    f"a_{s.name}",
                    f'"id" INTEGER PRIMARY KEY,\n   "n" INTEGER NOT NULL,\n   {times}'
                    '"wire" INTEGER NOT NULL DEFAULT 0,\n   "body" BLOB NOT NULL',
                ),
                _index(f"a_{s.name}", "ts_max"),
            ]
    return ddl


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
            self._create_schema(conn)
            if max_bytes is not None:
                page = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count={max(max_bytes // page, 16)}")
            self.epoch: str = conn.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()[0]
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from None
        self.conn = conn
        self._unsaved_drops: Counter[str] = Counter()
        self._full = False
        self._inserted = 0
        self._zc = zstandard.ZstdCompressor(level=1)
        self._zd = zstandard.ZstdDecompressor()

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        # Plain DDL (as sqlite-utils wrote it before, so old and new stores have the same schema):
        # sqlite-utils imports numpy, click and pluggy, ~7 MB of a 512 MB node's memory for a schema.
        for ddl in _schema(self.streams.values()):
            conn.execute(ddl)
        conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", [secrets.token_hex(8)])
        for s in self.streams.values():
            conn.execute("INSERT OR IGNORE INTO seqs (stream, last) VALUES (?, 0)", [s.name])

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        # The connection is in autocommit mode (isolation_level=None), where ``with conn:`` does not
        # open a transaction: a chunk and its seq counter must commit together, or not at all.
        # IMMEDIATE takes the write lock up front, waiting (busy timeout) for the other connection;
        # a deferred transaction that read first would fail at once with "database is locked".
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._rollback()
            raise
        self.conn.execute("COMMIT")

    # -- chunks ----------------------------------------------------------------------------------

    def _pack(self, runs: list[list[int]], rows: Sequence[tuple]) -> bytes:
        """A chunk's body: its seqs as runs ``[[start, count], ...]`` and its rows."""
        return self._zc.compress(msgpack.packb([runs, rows], use_bin_type=True))

    def _unpack(self, body: bytes) -> tuple[list[int], list]:
        runs, rows = msgpack.unpackb(self._zd.decompress(body), use_list=True)
        return [q for start, count in runs for q in range(start, start + count)], rows

    def _insert_chunk(self, stream: str, rows: Sequence[tuple]) -> None:
        self._inserted += 1  # see version(): even one rolled back only costs a reader a needless read
        (last,) = self.conn.execute("SELECT last FROM seqs WHERE stream = ?", [stream]).fetchone()
        first, hi = last + 1, last + len(rows)
        stamps = [r[0] for r in rows]
        body = self._pack([[first, len(rows)]], rows)
        self.conn.execute(
            f"INSERT INTO k_{stream} (id, lo, hi, n, ts_min, ts_max, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [first, first, hi, len(rows), min(stamps), max(stamps), body],
        )
        if self.streams[stream].archive:
            self.conn.execute(
                f"INSERT INTO a_{stream} (id, n, ts_min, ts_max, body) VALUES (?, ?, ?, ?, ?)",
                [first, len(rows), min(stamps), max(stamps), body],
            )
        self.conn.execute("UPDATE seqs SET last = ? WHERE stream = ?", [hi, stream])

    def _rewrite(self, stream: str, chunk_id: int, seqs: list[int], rows: list) -> None:
        """Keep only ``seqs``/``rows`` of a chunk (the rest was acknowledged or discarded)."""
        # Delete, then insert: an UPDATE of the body takes new pages before it frees the old ones,
        # which a full store does not have.
        (ts_min, ts_max) = self.conn.execute(
            f"DELETE FROM k_{stream} WHERE id = ? RETURNING ts_min, ts_max", [chunk_id]
        ).fetchone()
        if seqs:
            self.conn.execute(
                f"INSERT INTO k_{stream} (id, lo, hi, n, ts_min, ts_max, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [chunk_id, seqs[0], seqs[-1], len(seqs), ts_min, ts_max, self._pack(_runs(seqs), rows)],
            )

    def _remove(self, stream: str, lo: int, hi: int, drop: Callable[[int], bool]) -> int:
        """Delete the records between ``lo`` and ``hi`` for which ``drop(seq)``; returns how many went."""
        removed = 0
        chunks = self.conn.execute(
            f"SELECT id, body FROM k_{stream} WHERE hi >= ? AND lo <= ? ORDER BY id", [lo, hi]
        ).fetchall()
        for chunk_id, body in chunks:
            seqs, rows = self._unpack(body)
            kept = [(q, r) for q, r in zip(seqs, rows, strict=True) if not drop(q)]
            removed += len(seqs) - len(kept)
            if len(kept) != len(seqs):
                self._rewrite(stream, chunk_id, [q for q, _ in kept], [r for _, r in kept])
        return removed

    # -- writing -----------------------------------------------------------------------------------

    def write(self, batches: Mapping[str, Sequence[tuple]]) -> None:
        """Commit records of several streams in one transaction, making room when the store is full.

        Records are tuples in the stream's column order (the NamedTuples of
        ``sync.records``). Never raises for a full store or disk: what could not
        be kept is counted in :meth:`drops`.
        """
        try:
            with self._transaction():
                for name, rows in batches.items():
                    if rows:
                        self._insert_chunk(name, rows)
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
                with self._transaction():
                    self._insert_chunk(stream.name, rows)
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
            self._evict(victim)

    def _victim(self, priority: int) -> Stream | None:
        """The lowest-priority stream below ``priority`` that still holds records."""
        for s in reversed(self._by_priority):
            if s.priority <= priority:
                return None
            if self.conn.execute(f"SELECT 1 FROM k_{s.name} LIMIT 1").fetchone():
                return s
        return None

    def _evict(self, stream: Stream, chunks: int = 8) -> None:
        with self._transaction():
            rows = self.conn.execute(
                f"DELETE FROM k_{stream.name} WHERE id IN "
                f"(SELECT id FROM k_{stream.name} ORDER BY id LIMIT ?) RETURNING n",
                [chunks],
            ).fetchall()
        count = sum(n for (n,) in rows)
        self._unsaved_drops[stream.name] += count
        log.debug("event=store_evict stream=%s records=%d reason=full", stream.name, count)

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
            with self._transaction():
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
            with self._transaction():
                self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", [key, value])
        except sqlite3.OperationalError as exc:
            self._rollback()
            if not _is_full(exc):
                raise

    # -- the centre's commands (edge.commands) ----------------------------------------------------

    def command(self, seq: int) -> StoredCommand | None:
        """What the node did with the centre's command ``seq`` (None: never taken)."""
        row = self.conn.execute(f"SELECT {_COMMAND_COLUMNS} FROM commands WHERE seq = ?", [seq]).fetchone()
        return StoredCommand(*row) if row else None

    def commands(self, limit: int | None = None, unfinished: bool = False) -> list[StoredCommand]:
        """The latest ``limit`` commands (None: all), newest first; ``unfinished``: only those begun
        and never finished."""
        where = "WHERE state = 'delivered'" if unfinished else ""
        rows = self.conn.execute(
            f"SELECT {_COMMAND_COLUMNS} FROM commands {where} ORDER BY seq DESC LIMIT ?",
            [-1 if limit is None else limit],  # SQLite: a negative LIMIT is none
        )
        return [StoredCommand(*row) for row in rows]

    def begin_command(
        self, seq: int, kind: str, received_ms: int, records: Mapping[str, Sequence[tuple]]
    ) -> None:
        """Record that command ``seq`` (of this store's epoch) is taken to run, with ``records`` (its
        ``delivered`` result) in the same transaction. Raises ``sqlite3.IntegrityError`` when ``seq``
        was taken before: a command is begun once."""
        self._commit_command(
            "INSERT INTO commands (seq, epoch, kind, state, reason, details, received_ms) "
            "VALUES (?, ?, ?, 'delivered', '', '', ?)",
            [seq, self.epoch, kind, received_ms],
            records,
        )

    def finish_command(
        self, seq: int, state: str, reason: str, details: str, records: Mapping[str, Sequence[tuple]]
    ) -> None:
        """Record what became of command ``seq`` (``applied`` or ``refused``), with ``records`` (its
        final result) in the same transaction."""
        self._commit_command(
            "UPDATE commands SET state = ?, reason = ?, details = ? WHERE seq = ?",
            [state, reason, details, seq],
            records,
        )

    def _commit_command(self, sql: str, params: list, records: Mapping[str, Sequence[tuple]]) -> None:
        # One transaction: a command's state and the result the centre waits for are never apart
        # (a crash between them would leave the centre waiting for a result the node has forgotten).
        try:
            with self._transaction():
                self.conn.execute(sql, params)
                for name, rows in records.items():
                    self._insert_chunk(name, rows)
            return
        except sqlite3.OperationalError as exc:
            self._rollback()
            if not _is_full(exc):
                raise
        # A full store: the state alone (a few bytes), then the records as write() makes room for them.
        with self._transaction():
            self.conn.execute(sql, params)
        self.write(records)

    # -- reading and acknowledging ---------------------------------------------------------------

    def read(self, stream: str, after: int, limit: int) -> tuple[list[int], list[tuple]]:
        """Up to ``limit`` records of ``stream`` with ``seq > after``: their seqs and the records."""
        make = self.streams[stream].record._make
        picked = list(islice(self._scan(stream, after), max(limit, 0)))
        return [q for q, _ in picked], [make(row) for _, row in picked]

    def _scan(self, stream: str, after: int) -> Iterator[tuple[int, list]]:
        cur = self.conn.execute(f"SELECT body FROM k_{stream} WHERE hi > ? ORDER BY id", [after])
        for (body,) in cur:
            seqs, rows = self._unpack(body)
            for s, row in zip(seqs, rows, strict=True):
                if s > after:
                    yield s, row

    def acknowledge(self, acks: Iterable[Ack]) -> int:
        """Delete what the IOC acknowledged (acks of another epoch are ignored); returns records deleted.

        Whole chunks inside an acked range go first, in one transaction. A chunk
        across a range's edge is then rewritten without the acked records; on a
        full store that may fail, and the chunk stays whole: the IOC ignores
        the records it already has when they come again.
        """
        acks = [a for a in acks if a.epoch == self.epoch and a.stream in self.streams]
        deleted = 0
        with self._transaction():
            for ack in acks:
                gone = self.conn.execute(
                    f"DELETE FROM k_{ack.stream} WHERE lo >= ? AND hi <= ? RETURNING n", [ack.first, ack.last]
                ).fetchall()
                deleted += sum(n for (n,) in gone)
        self.set_meta("last_ack_ms", str(time.time_ns() // 10**6))
        for ack in acks:
            try:
                with self._transaction():
                    deleted += self._remove(
                        ack.stream, ack.first, ack.last, range(ack.first, ack.last + 1).__contains__
                    )
            except sqlite3.OperationalError as exc:
                if not _is_full(exc):
                    raise
        return deleted

    def discard(self, stream: str, seqs: Sequence[int]) -> None:
        """Delete records that can never be sent (invalid values); counted under ``invalid``."""
        if not seqs:
            return
        with self._transaction():
            gone = set(seqs)
            removed = self._remove(stream, min(gone), max(gone), gone.__contains__)
        self.add_counts("invalid", {stream: removed})

    def expire(self, stream: str, keep_s: float) -> int:
        """Delete records of ``stream`` older than ``keep_s`` before its newest one; counted as ``expired``.

        Age is measured against the newest record rather than the clock, which
        may be wrong (a node booted at 1970 that later got GPS time).
        """
        with self._transaction():
            gone = self.conn.execute(
                f"DELETE FROM k_{stream} WHERE ts_max < (SELECT max(ts_max) FROM k_{stream}) - ? RETURNING n",
                [int(keep_s * 1000)],
            ).fetchall()
        count = sum(n for (n,) in gone)
        if count:
            self.add_counts("expired", {stream: count})
        return count

    # -- the archive (streams with ``archive``) -----------------------------------------------------

    def archived(
        self, stream: str, after: int = 0, newest_first: bool = False, stamped: tuple[int, int] | None = None
    ) -> Iterator[tuple[list, list]]:
        """The archive's chunks of ``stream`` holding seqs above ``after``: (seqs, records) each.

        In seq order, or newest first (to find the end of a long archive quickly); ``stamped``
        ``(from_ms, to_ms)``: only chunks holding records stamped in that range.
        """
        make = self.streams[stream].record._make
        where, params = "id + n > ?", [after + 1]
        if stamped is not None:
            where, params = where + " AND ts_max >= ? AND ts_min < ?", [*params, *stamped]
        order = "DESC" if newest_first else ""
        cur = self.conn.execute(
            f"SELECT wire, body FROM a_{stream} WHERE {where} ORDER BY id {order}", params
        )
        for wire, body in cur:
            if wire:
                batch = decode_batch(body)
                yield batch.seqs, batch.records
            else:
                seqs, rows = self._unpack(body)
                yield seqs, [make(r) for r in rows]

    def compact_archive(self, stream: str, records: int = 3600) -> int:
        """Re-pack the archive's newer chunks of ``stream`` into chunks of ``records``; returns how many.

        The recorder commits every second or so: at one fix a second an archived chunk holds one
        record and costs ~140 bytes. A compacted chunk is a wire batch (columnar, delta-coded,
        ~6 bytes a position): five years at 1 Hz fit in about a gigabyte. Only runs of chunks that
        fill ``records`` are re-packed (the newest wait for more); a run the wire cannot encode, or
        a store too full to rewrite it, stays as it is.
        """
        pending = self.conn.execute(f"SELECT id, n FROM a_{stream} WHERE wire = 0 ORDER BY id").fetchall()
        done, first, size, end = 0, None, 0, None
        for chunk_id, n in pending:
            if first is None or chunk_id != end:  # seqs not contiguous (a chunk kept whole): start over
                first, size = chunk_id, 0
            size, end = size + n, chunk_id + n
            if size >= records:
                done += self._compact(stream, first, chunk_id)
                first = None
        return done

    def _compact(self, stream: str, first: int, last: int) -> bool:
        seqs: list[int] = []
        rows: list = []
        for _, body in self.conn.execute(
            f"SELECT id, body FROM a_{stream} WHERE id >= ? AND id <= ? AND wire = 0 ORDER BY id",
            [first, last],
        ):
            q, r = self._unpack(body)
            seqs += q
            rows += r
        records = [self.streams[stream].record._make(r) for r in rows]
        try:
            body = encode_batch(Batch("archive", self.epoch, stream, seqs, records))
        except InvalidRecords:
            return False
        stamps = [r[0] for r in rows]
        try:
            with self._transaction():
                self.conn.execute(
                    f"DELETE FROM a_{stream} WHERE id >= ? AND id <= ? AND wire = 0", [first, last]
                )
                self.conn.execute(
                    f"INSERT INTO a_{stream} (id, n, ts_min, ts_max, wire, body) VALUES (?, ?, ?, ?, 1, ?)",
                    [first, len(seqs), min(stamps), max(stamps), body],
                )
            return True
        except sqlite3.OperationalError as exc:
            if not _is_full(exc):
                raise
            return False

    def prune_archive(self, stream: str, keep_s: float, now_ms: int) -> int:
        """Delete archived chunks of ``stream`` older than ``keep_s`` (counted as ``pruned``).

        Age counts from the newest record or ``now_ms`` (the node's clock), whichever is earlier:
        one record stamped years ahead (a receiver's week rollover) or a clock at 2099 cannot empty
        the archive, and a clock at 1970 prunes nothing. A chunk goes only when its newest record
        is past ``keep_s``, so no record goes before its time.
        """
        with self._transaction():
            gone = self.conn.execute(
                f"DELETE FROM a_{stream} WHERE ts_max < min((SELECT max(ts_max) FROM a_{stream}), ?) - ? "
                "RETURNING n",
                [now_ms, int(keep_s * 1000)],
            ).fetchall()
        count = sum(n for (n,) in gone)
        if count:
            self.add_counts("pruned", {stream: count})
        return count

    def last_seq(self, stream: str) -> int:
        """The highest seq ever assigned in ``stream`` (0 before the first record)."""
        return self.conn.execute("SELECT last FROM seqs WHERE stream = ?", [stream]).fetchone()[0]

    # -- reporting -------------------------------------------------------------------------------

    def backlog(self) -> dict[str, int]:
        """Records waiting for the IOC's ack, per stream."""
        return {
            name: self.conn.execute(f"SELECT coalesce(sum(n), 0) FROM k_{name}").fetchone()[0]
            for name in self.streams
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

    def status(self) -> StoreStatus:
        """The store's :class:`StoreStatus`; ``failed_drivers``, ``outages`` and ``facts`` as the
        runtime's last status report left them in the metadata (none before the first).

        >>> import tempfile, os
        >>> store = Store(os.path.join(tempfile.mkdtemp(), "store.db"))
        >>> store.set_meta("outages", '{"cam": {"error": "no frames", "since_ms": 5}}')
        >>> status = store.status()
        >>> status.kept_local, status.last_ack_ms, status.outages
        ({'reading': 0}, None, {'cam': Outage(error='no frames', since_ms=5)})
        """
        groups = [r[0] for r in self.conn.execute("SELECT DISTINCT grp FROM counters ORDER BY grp")]
        counts = self.backlog()
        outages = json.loads(self.meta("outages") or "{}")
        return StoreStatus(
            epoch=self.epoch,
            size_bytes=self.size_bytes(),
            backlog={k: v for k, v in counts.items() if self.streams[k].synced},
            kept_local={k: v for k, v in counts.items() if not self.streams[k].synced},
            last_ack_ms=int(v) if (v := self.meta("last_ack_ms")) else None,
            drops=self.drops(),
            counters={g: self.counters(g) for g in groups if g != "drop"},
            failed_drivers=json.loads(self.meta("failed_drivers") or "{}"),
            outages={name: Outage(**o) for name, o in outages.items()},
            facts=json.loads(self.meta("facts") or "{}"),
            commands=tuple(self.commands(RECENT_COMMANDS)),
        )

    def version(self) -> tuple[int, int]:
        """What changes whenever records may have been added: SQLite's ``PRAGMA data_version`` (moved
        by another connection's commit) and this connection's own inserts. The same value twice
        means nothing new to read in between (the uplink's idle rounds read no stream)."""
        return self.conn.execute("PRAGMA data_version").fetchone()[0], self._inserted

    def close(self) -> None:
        self.conn.close()
