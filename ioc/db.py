"""The IOC's database of synced records: SQLite by default, PostgreSQL for a real centre; the URL chooses.

One table per stream, ``rec_<stream>``, keyed on (device, epoch, seq): the
database itself refuses a second copy of a record, so several receivers can
share the load without de-duplicating among themselves. ``epochs`` remembers
when each store epoch of a device was first seen, which orders a device's
records across re-flashes.

What differs between the engines (connecting, placeholders, how concurrent
migrations are serialised) is an :class:`Engine`; every query is written once.

Example::

    >>> db = Database("sqlite:///:memory:")
    >>> db.rejects()
    {}
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from common.errors import IocEdgeError
from ioc.schema import MIGRATIONS, POSTGRESQL, SQLITE, Dialect
from sync.records import TimeSource
from sync.wire import STREAMS, Batch

log = logging.getLogger(__name__)

URL_FORMS = "sqlite:///path/to/ioc.db or postgresql://user@host:port/dbname"


class DatabaseError(IocEdgeError, ValueError):
    """The database URL is not one the IOC can use, or its server cannot be reached."""


class Cursor(Protocol):
    """The DB-API cursor :meth:`Database.transaction` yields, taking ``?`` placeholders on every engine."""

    rowcount: int
    description: Any

    def execute(self, sql: str, params: Sequence = ..., /) -> Any: ...
    def executemany(self, sql: str, rows: Sequence[Sequence], /) -> Any: ...
    def fetchone(self) -> tuple | None: ...
    def fetchall(self) -> list[tuple]: ...


def redact(url: str) -> str:
    """``url`` without its password, fit for a message or a log."""
    return re.sub(r"^([a-z]+://[^:/@]*):[^@/]*@", r"\1:***@", url)


class Engine:
    """What differs between database engines; :class:`Database` holds everything else.

    A subclass sets ``dialect`` and implements :meth:`connect`; it may
    override ``begin``, :meth:`cursor`, :meth:`lock_schema` and :meth:`broken`.
    """

    dialect: Dialect
    begin = "BEGIN"
    """How a write transaction starts."""

    def __init__(self, url: str) -> None:
        self.url = url

    def connect(self) -> Any:
        """A DB-API connection in autocommit mode (transactions are explicit); DatabaseError if none."""
        raise NotImplementedError

    def cursor(self, conn: Any) -> Cursor:
        return conn.cursor()

    def lock_schema(self, cur: Cursor) -> None:
        """Serialise migrations between processes until the transaction ends."""

    def broken(self, conn: Any) -> bool:
        """Whether the connection is lost (the next use reconnects)."""
        return False


class SqliteEngine(Engine):
    """A SQLite file (WAL, full sync); ``BEGIN IMMEDIATE`` takes the write lock up front."""

    dialect = SQLITE
    # Migrations need no lock of their own: IMMEDIATE already lets one writer in at a time.
    begin = "BEGIN IMMEDIATE"

    def connect(self) -> sqlite3.Connection:
        path = self.url[len("sqlite:///") :] if self.url.startswith("sqlite:///") else self.url
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
            _switch_to_wal(conn)
        except (OSError, sqlite3.Error) as exc:
            raise DatabaseError(
                f"cannot open {self.url}: {exc}; check that its directory is writable"
            ) from None
        conn.execute("PRAGMA synchronous=FULL")
        return conn


def now_ms() -> int:
    """The centre's clock, UTC ms: when a record was received, a schema migrated (tests replace it)."""
    return time.time_ns() // 1_000_000


def _switch_to_wal(conn: sqlite3.Connection, timeout_s: float = 30.0) -> None:
    # Receivers opening a new file at once: switching it to WAL can fail at once with "database is
    # locked" (SQLite's busy timeout does not cover that lock); a moment later another has done it.
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# What pyformat looks at: quoted strings and names, comments (all skipped whole), '?' and '%'.
_SQL_TOKENS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|\?|%", re.DOTALL)


@functools.lru_cache(maxsize=256)
def pyformat(sql: str) -> str:
    """``sql`` with ``?`` placeholders turned into psycopg's ``%s`` and every literal ``%`` doubled.

    A ``?`` inside a quoted string, a quoted name or a comment is left alone.

    >>> pyformat("SELECT '?', x FROM t WHERE y LIKE 'a%' AND z = ?")
    "SELECT '?', x FROM t WHERE y LIKE 'a%%' AND z = %s"
    """
    return _SQL_TOKENS.sub(lambda m: "%s" if m.group() == "?" else m.group().replace("%", "%%"), sql)


class QmarkCursor:
    """A psycopg cursor that takes ``?`` placeholders, as sqlite3's does; the rest is psycopg's."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence = ()) -> QmarkCursor:
        # Parameters always passed (maybe none), so that psycopg always undoes the doubled '%'.
        self._cursor.execute(pyformat(sql), list(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence]) -> QmarkCursor:
        self._cursor.executemany(pyformat(sql), rows)
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class PostgresEngine(Engine):
    """A PostgreSQL database through psycopg 3; migrations take a transaction-scoped advisory lock."""

    dialect = POSTGRESQL
    SCHEMA_LOCK = 0x10C_5C4E3A
    """The advisory lock key that serialises migrations: any constant other programs do not use."""

    def connect(self) -> Any:
        try:
            import psycopg
            from psycopg.adapt import Loader
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:
            raise DatabaseError(
                f"{redact(self.url)} needs psycopg: pip install 'ioc-edge[ioc]' (or psycopg[binary])"
            ) from None
        try:
            params: dict[str, Any] = conninfo_to_dict(self.url)  # psycopg.connect's keyword arguments
            params.setdefault("connect_timeout", 10)
            conn = psycopg.connect(autocommit=True, **params)
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split())
            raise DatabaseError(
                f"cannot connect to {redact(self.url)}: {reason} (check that PostgreSQL runs there and "
                "accepts this user from this host, and that the database exists: createdb DBNAME)"
            ) from None

        # Defined here because psycopg is optional (the ioc extra).
        class NumberLoader(Loader):
            """``numeric`` (what SUM and AVG of integers give) as SQLite gives it: int, else float."""

            def load(self, data: bytes | bytearray | memoryview) -> int | float:
                text = bytes(data).decode()
                try:
                    return int(text)
                except ValueError:
                    return float(text)

        conn.adapters.register_loader("numeric", NumberLoader)
        return conn

    def cursor(self, conn: Any) -> Cursor:
        return QmarkCursor(conn.cursor())

    def lock_schema(self, cur: Cursor) -> None:
        # Even CREATE TABLE IF NOT EXISTS fails when two sessions run it at once: lock first.
        cur.execute("SELECT pg_advisory_xact_lock(?)", [self.SCHEMA_LOCK])

    def broken(self, conn: Any) -> bool:
        return conn.closed or conn.broken


def engine_for(url: str) -> Engine:
    """The engine of a database URL (a bare path is a SQLite file); DatabaseError for any other scheme."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme in ("postgresql", "postgres"):
        return PostgresEngine(url)
    if scheme == "" or url.startswith("sqlite:///"):
        return SqliteEngine(url)
    raise DatabaseError(f"unsupported database URL {redact(url)!r}: use {URL_FORMS}")


class Database:
    """The central store; safe to share between threads (one lock around one connection).

    ``url`` is ``sqlite:///path/to/ioc.db`` (a bare path too) or
    ``postgresql://user[:password]@host[:port]/dbname``; pending migrations
    are applied on opening. Queries are written once in the SQL both engines
    understand, with ``?`` placeholders; :meth:`fetch` and :meth:`execute` are
    what the dashboard and the API build on. Raises :class:`DatabaseError`
    when the URL is unsupported or the database cannot be reached. A lost
    PostgreSQL connection fails the call in progress; the next call reconnects.

    Example::

        db = Database("postgresql://ioc@db.ioc.local/ioc")
        db.fetch("SELECT device, last_seen_ms FROM devices WHERE last_seen_ms > ?", [since_ms])
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = engine_for(url)
        self.dialect = self._engine.dialect
        self._lock = threading.Lock()
        self._conn = self._engine.connect()
        self.migrate()
        # Column names quoted: one is an SQL keyword ("group").
        quoted = {s.name: ", ".join(f'"{n}"' for n in s.names) for s in STREAMS.values()}
        self._insert = {
            s.name: f"INSERT INTO rec_{s.name} (device, epoch, seq, {quoted[s.name]}, received_ms) "
            f"VALUES ({', '.join('?' * (len(s.names) + 4))}) ON CONFLICT DO NOTHING"
            for s in STREAMS.values()
        }

    @contextmanager
    def _cursor(self) -> Iterator[Cursor]:
        """A cursor on the connection, held alone; a lost connection is replaced first."""
        with self._lock:
            if self._engine.broken(self._conn):
                log.warning("event=db_reconnect url=%s", redact(self.url))
                self._conn = self._engine.connect()
            yield self._engine.cursor(self._conn)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        """A cursor inside one transaction: committed on leaving, rolled back on an exception."""
        with self._cursor() as cur:
            cur.execute(self._engine.begin)
            try:
                yield cur
            except BaseException:
                if not self._engine.broken(self._conn):
                    cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def migrate(self) -> None:
        """Apply the migrations of :mod:`ioc.schema` this database has not seen, each in its transaction.

        Safe when several receivers start at once: each transaction first takes
        the engine's schema lock, so a migration runs once and the others see it.
        """
        with self.transaction() as cur:
            self._engine.lock_schema(cur)
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS schema_version (version {self.dialect.int} PRIMARY KEY, "
                f"name {self.dialect.text} NOT NULL, applied_ms {self.dialect.int} NOT NULL)"
            )
        for version, name, statements in MIGRATIONS:
            with self.transaction() as cur:
                self._engine.lock_schema(cur)
                cur.execute("SELECT 1 FROM schema_version WHERE version = ?", [version])
                if cur.fetchone():
                    continue
                for sql in statements(self.dialect):
                    cur.execute(sql)
                cur.execute(
                    "INSERT INTO schema_version (version, name, applied_ms) VALUES (?, ?, ?)",
                    [version, name, now_ms()],
                )
                log.info("event=migrated version=%d name=%s", version, name)

    @property
    def schema_version(self) -> int:
        return self.fetch("SELECT COALESCE(MAX(version), 0) AS v FROM schema_version")[0]["v"]

    def fetch(self, sql: str, params: Sequence = ()) -> list[dict]:
        """Rows of a query as dicts (``?`` placeholders)."""
        with self._cursor() as cur:
            cur.execute(sql, list(params))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def execute(self, sql: str, params: Sequence = ()) -> int:
        """Run one statement in its own transaction; returns the rows it changed."""
        with self.transaction() as cur:
            cur.execute(sql, list(params))
            return cur.rowcount

    def store(self, batch: Batch) -> int:
        """Commit ``batch``; returns how many records were new (the rest were duplicates)."""
        now = now_ms()
        rows = [
            (batch.device, batch.epoch, seq, *record, now)
            for seq, record in zip(batch.seqs, batch.records, strict=True)
        ]
        # In seq order (a stable sort: of two copies, the first wins), so that two receivers storing
        # overlapping batches take the rows' locks in the same order and never deadlock.
        rows.sort(key=lambda row: row[2])
        with self.transaction() as cur:
            # Skipped conflicts count 0: the sum is the number of new records on both engines.
            cur.executemany(self._insert[batch.stream], rows)
            new = cur.rowcount
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

    def count_reject(self, reason: str, n: int = 1) -> None:
        """Count ``n`` refusals under ``reason`` (a payload, or records one by one: ``ioc.admission``)."""
        self.execute(
            "INSERT INTO rejects (reason, count) VALUES (?, ?) "
            "ON CONFLICT (reason) DO UPDATE SET count = rejects.count + excluded.count",
            [reason, n],
        )

    def rejects(self) -> dict[str, int]:
        """Payloads refused so far, by reason (records, for the reasons of ``ioc.admission``)."""
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
        with self._lock:
            self._conn.close()
