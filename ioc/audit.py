"""The centre's audit log: who did what, to which node, when, and with what result.

Every command issued (``ioc-center command send``, the web API), every label an operator sets or
removes (``ioc.labels``), every config pushed or adopted is one entry, written by :func:`audit`
(table ``audit_log``). An entry that issued a command (``command.send``, ``config.push``) holds
its seq (``command_seq``; ``target`` is its device), and the command's outcome replaces that
entry's result as the node answers or the command expires (:func:`command_outcome`, called by
``ioc.commands`` in the same transaction): one entry per command, whose result is where the
command stands (``queued``, ``sent``, ``delivered``, ``applied``, ``refused: reason``,
``expired: reason``).

Example::

    >>> from ioc.db import Database
    >>> db = Database("sqlite:///:memory:")
    >>> audit(db, "lan", "label.set", "buoy-7", {"district": "phu-vang"}, "ok", at_ms=1_700_000_000_000)
    1
    >>> [(e.user, e.action, e.target, e.result) for e in entries(db)]
    [('lan', 'label.set', 'buoy-7', 'ok')]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from ioc.db import Cursor, Database, now_ms
from ioc.web.csvout import csv_rows

__all__ = ["COMMAND_SEND", "AuditEntry", "audit", "command_outcome", "csv_text", "entries"]

COMMAND_SEND = "command.send"
"""The action of a command's entry; the others: ``label.set``, ``label.remove``, ``config.push``,
``config.adopt``."""
CSV_KEYS = ("id", "ts_ms", "user", "action", "target", "command_seq", "result", "details")


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit log; ``details`` is what was asked (a command's kind and body, the labels)."""

    id: int
    at_ms: int
    user: str
    action: str
    target: str
    details: dict[str, Any]
    result: str
    command_seq: int | None


def audit(
    db: Database,
    user: str,
    action: str,
    target: str,
    details: dict[str, Any],
    result: str,
    *,
    command_seq: int | None = None,
    at_ms: int | None = None,
) -> int:
    """Record that ``user`` did ``action`` to ``target`` (a device id), with ``result``; the entry's id.

    ``command_seq``: the command the action issued to ``target``, whose outcome later replaces ``result``.
    """
    with db.transaction() as cur:
        cur.execute(
            "INSERT INTO audit_log (at_ms, username, action, target, details, result, command_seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [
                now_ms() if at_ms is None else at_ms,
                user,
                action,
                target,
                # ASCII escapes: a body's unpaired surrogate (valid JSON) cannot be stored as UTF-8 text
                json.dumps(details, sort_keys=True),
                result,
                command_seq,
            ],
        )
        row = cur.fetchone()
    assert row is not None  # RETURNING gives the row just inserted
    return row[0]


def command_outcome(cur: Cursor, device: str, seq: int, state: str, reason: str) -> None:
    """Make the entry that issued command ``seq`` of ``device`` tell where it stands (in the caller's
    transaction)."""
    cur.execute(
        "UPDATE audit_log SET result = ? WHERE target = ? AND command_seq = ?",
        [f"{state}: {reason}" if reason else state, device, seq],
    )


SELECT = "id, at_ms, username AS user, action, target, details, result, command_seq"
"""The columns of an entry, as :class:`AuditEntry` names them (the CLI's and the API's queries)."""


def filters(device: str | None, since_ms: int | None) -> tuple[list[str], list[object]]:
    """``(clauses, params)`` choosing the entries of ``device`` from ``since_ms`` on (None: any)."""
    clauses: list[str] = []
    params: list[object] = []
    if device is not None:
        clauses.append("target = ?")
        params.append(device)
    if since_ms is not None:
        clauses.append("at_ms >= ?")
        params.append(since_ms)
    return clauses, params


def entries(
    db: Database, device: str | None = None, since_ms: int | None = None, limit: int | None = None
) -> list[AuditEntry]:
    """The log oldest first (of ``device``, from ``since_ms`` on; the latest ``limit`` of them)."""
    where, params = filters(device, since_ms)
    newest = f" LIMIT {int(limit)}" if limit is not None else ""
    rows = db.fetch(
        f"SELECT {SELECT} FROM audit_log WHERE {' AND '.join(where or ['1 = 1'])} ORDER BY id DESC{newest}",
        params,
    )
    return [AuditEntry(**{**row, "details": json.loads(row["details"])}) for row in reversed(rows)]


def csv_text(log: Iterable[AuditEntry]) -> Iterator[str]:
    """The entries as CSV (``ts_ms`` and its UTC ``time_local``); text a spreadsheet would run as a
    formula is neutralised as in the dashboard's exports (``ioc.web.csvout``)."""
    items = ({**e.__dict__, "ts_ms": e.at_ms} for e in log)
    return csv_rows(items, CSV_KEYS, ZoneInfo("UTC"))
