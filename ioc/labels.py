"""The nodes' labels at the centre: what each node reports, and what operators set over it.

A node's labels (district, kind, site, fleet, ...) come from its config (``[node] labels``, set
at provisioning) in each of its status records: the receiver hands every stored status batch to
:meth:`NodeLabels.from_status`, which keeps the labels of the newest status (by epoch, then seq:
a status arriving late never undoes a newer one). An operator sets labels at the centre
(:meth:`NodeLabels.set`, ``ioc-center node label``): for the same key the centre's value wins
over the node's, and removing it lets the node's show again. Selectors (``ioc.selectors``) match
the labels in force.

Example::

    >>> from ioc.db import Database
    >>> labels = NodeLabels(Database("sqlite:///:memory:"))
    >>> labels.set("buoy-7", {"district": "phu-vang"}, now_ms=1_700_000_000_000)
    >>> labels.of("buoy-7")
    {'district': Label(value='phu-vang', source='centre')}
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from common.errors import IocEdgeError
from common.fields import MAX_LABELS, check_label
from ioc.db import Cursor, Database, now_ms
from sync.records import NodeStatus
from sync.wire import Batch

__all__ = ["IN_FORCE", "Label", "LabelError", "LabelledNode", "NodeLabels"]

log = logging.getLogger(__name__)

IN_FORCE = (
    "(l.source = 'centre' OR NOT EXISTS (SELECT 1 FROM node_labels c "
    "WHERE c.device = l.device AND c.key = l.key AND c.source = 'centre'))"
)
"""SQL: row ``l`` of ``node_labels`` is in force (the centre's, or the node's with none of the centre's)."""


class LabelError(IocEdgeError, ValueError):
    """A label that cannot be set: its key or value (the message names which)."""


@dataclass(frozen=True)
class Label:
    """A label's value in force, and who set it (``node`` or ``centre``)."""

    value: str
    source: str


@dataclass(frozen=True)
class LabelledNode:
    """A node as ``ioc-center node list`` shows it: when last heard (None: never) and its labels in force."""

    device: str
    last_seen_ms: int | None
    labels: dict[str, Label]


class NodeLabels:
    """The ``node_labels`` table of the centre's database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def set(self, device: str, labels: dict[str, str], now_ms: int) -> None:
        """Set the centre's labels of ``device`` (each key replaced); LabelError for a bad key or value."""
        for key, value in labels.items():
            try:
                check_label(key, value)
            except ValueError as exc:
                raise LabelError(str(exc)) from None
        with self.db.transaction() as cur:
            cur.executemany(
                "INSERT INTO node_labels (device, key, value, source, set_ms) VALUES (?, ?, ?, 'centre', ?) "
                "ON CONFLICT (device, key, source) "
                "DO UPDATE SET value = excluded.value, set_ms = excluded.set_ms",
                [(device, key, value, now_ms) for key, value in sorted(labels.items())],
            )

    def remove(self, device: str, keys: Iterable[str]) -> list[str]:
        """Remove the centre's labels ``keys`` of ``device`` (the node's show again); the keys removed."""
        removed = []
        with self.db.transaction() as cur:
            for key in sorted(set(keys)):
                cur.execute(
                    "DELETE FROM node_labels WHERE device = ? AND key = ? AND source = 'centre'",
                    [device, key],
                )
                if cur.rowcount:
                    removed.append(key)
        return removed

    def of(self, device: str) -> dict[str, Label]:
        """The labels in force of ``device``, by key."""
        return self.every(device).get(device, {})

    def every(self, device: str | None = None) -> dict[str, dict[str, Label]]:
        """The labels in force of every device (or of ``device``), by device then key."""
        where, params = ("AND l.device = ?", [device]) if device else ("", [])
        rows = self.db.fetch(
            f"SELECT l.device, l.key, l.value, l.source FROM node_labels l WHERE {IN_FORCE} {where} "
            "ORDER BY l.device, l.key",
            params,
        )
        out: dict[str, dict[str, Label]] = {}
        for row in rows:
            out.setdefault(row["device"], {})[row["key"]] = Label(row["value"], row["source"])
        return out

    def nodes(self, devices: Iterable[str] | None = None) -> list[LabelledNode]:
        """Every node the centre has heard or labelled (or just ``devices``), by device id."""
        labels = self.every()
        seen = {
            r["device"]: r["last_seen_ms"] for r in self.db.fetch("SELECT device, last_seen_ms FROM devices")
        }
        chosen = sorted(set(seen) | set(labels)) if devices is None else sorted(devices)
        return [LabelledNode(d, seen.get(d), labels.get(d, {})) for d in chosen]

    def from_status(self, batch: Batch) -> None:
        """Keep the labels the newest status of ``batch`` reports (the receiver's check of ``status``).

        A status without labels (a node older than labels) changes nothing; a label that breaks the
        rules is left out and logged, the others kept.
        """
        seq, record = max(zip(batch.seqs, batch.records, strict=True))
        try:
            reported = json.loads(NodeStatus._make(record).body).get("labels")
        except (ValueError, AttributeError):
            return  # the admission bounds checked the body is JSON; an object too is not their rule
        if not isinstance(reported, dict):
            return
        labels = {}
        for key, value in list(reported.items())[:MAX_LABELS]:
            try:
                check_label(key, value)
            except (ValueError, TypeError):
                log.warning("event=label_refused device=%s key=%r", batch.device, key)
                continue
            labels[key] = value
        with self.db.transaction() as cur:
            # The device's row locked first (an upsert that changes nothing): two receivers holding two
            # of its status batches then decide one after the other, each on what the other committed.
            cur.execute(
                "INSERT INTO label_reports (device, epoch, seq) VALUES (?, '', -1) "
                "ON CONFLICT (device) DO UPDATE SET seq = label_reports.seq",
                [batch.device],
            )
            if self._newer(cur, batch.device, batch.epoch, seq):
                self._replace_reported(cur, batch.device, batch.epoch, seq, labels)

    @staticmethod
    def _newer(cur: Cursor, device: str, epoch: str, seq: int) -> bool:
        """Whether status (epoch, seq) is newer than the one whose labels are held (epoch ``''``: none
        yet), epochs ordered as first seen (``ioc.db``: the batch's epoch is stored before this runs)."""
        cur.execute("SELECT epoch, seq FROM label_reports WHERE device = ?", [device])
        held = cur.fetchone()
        assert held is not None  # from_status made it
        if held[0] == epoch:
            return seq > held[1]
        cur.execute(
            "SELECT epoch FROM epochs WHERE device = ? AND epoch IN (?, ?) "
            "ORDER BY first_seen_ms DESC, epoch DESC",
            [device, epoch, held[0]],
        )
        latest = cur.fetchone()
        return latest is not None and latest[0] == epoch

    @staticmethod
    def _replace_reported(cur: Cursor, device: str, epoch: str, seq: int, labels: dict[str, str]) -> None:
        cur.execute("DELETE FROM node_labels WHERE device = ? AND source = 'node'", [device])
        now = now_ms()
        cur.executemany(
            "INSERT INTO node_labels (device, key, value, source, set_ms) VALUES (?, ?, ?, 'node', ?)",
            [(device, key, value, now) for key, value in sorted(labels.items())],
        )
        cur.execute(
            "INSERT INTO label_reports (device, epoch, seq) VALUES (?, ?, ?) "
            "ON CONFLICT (device) DO UPDATE SET epoch = excluded.epoch, seq = excluded.seq",
            [device, epoch, seq],
        )
