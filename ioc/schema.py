"""The IOC database's schema as numbered migrations, applied in order at start.

Each migration is a function of the :class:`Dialect` that returns its SQL
statements, so one list serves SQLite and PostgreSQL: the statements differ
only in type names. ``schema_version`` records what was applied; a migration
once released is never edited (a change is a new migration), because a
centre's database already ran the old one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sync.wire import STREAMS


@dataclass(frozen=True)
class Dialect:
    """Type names of one database engine."""

    name: str
    int: str
    real: str
    text: str
    blob: str


SQLITE = Dialect("sqlite", "INTEGER", "REAL", "TEXT", "BLOB")
POSTGRESQL = Dialect("postgresql", "BIGINT", "DOUBLE PRECISION", "TEXT", "BYTEA")


def _records(d: Dialect) -> list[str]:
    """One table per synced stream keyed on (device, epoch, seq), so the database refuses duplicates."""
    kinds = {"int": d.int, "fixed": d.real, "text": d.text, "blob": d.blob}
    statements = []
    for stream in STREAMS.values():
        # Column names quoted: one is an SQL keyword ("group").
        columns = ", ".join(f'"{c.name}" {kinds[c.kind]}' for c in stream.columns)
        statements.append(
            f"CREATE TABLE IF NOT EXISTS rec_{stream.name} (device {d.text} NOT NULL, "
            f"epoch {d.text} NOT NULL, seq {d.int} NOT NULL, {columns}, received_ms {d.int} NOT NULL, "
            "PRIMARY KEY (device, epoch, seq))"
        )
    return statements + [
        f"CREATE TABLE IF NOT EXISTS epochs (device {d.text} NOT NULL, epoch {d.text} NOT NULL, "
        f"first_seen_ms {d.int} NOT NULL, PRIMARY KEY (device, epoch))",
        f"CREATE TABLE IF NOT EXISTS devices (device {d.text} PRIMARY KEY, last_seen_ms {d.int} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS rejects (reason {d.text} PRIMARY KEY, count {d.int} NOT NULL)",
    ]


Migration = Callable[[Dialect], list[str]]

MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "records", _records),
]
"""(version, name, statements): append only, versions increasing."""
