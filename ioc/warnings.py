"""Warnings at the centre: a CAP alert issued to the nodes it concerns, updated, cancelled, its receipts kept.

:meth:`Warnings.reach` decides which nodes a warning goes to before it is issued (the operator sees
the count): the nodes a label selector picks (``ioc.selectors``; none: every node), and when the
alert has areas, of those only the stations whose reported place it covers, and every vessel
(a vessel decides on board with its own GPS). :meth:`Warnings.issue` stores the alert and its
targets and queues one ``warning`` command per target (``ioc.commands``: its body the alert's
JSON, its expiry the alert's), in one transaction; :meth:`Warnings.update` and
:meth:`Warnings.cancel` send an Update or a Cancel referring to the original to the original's
targets. Each is one entry of the audit log (``warning.issue``, ``warning.update``,
``warning.cancel``; ``target`` the warning's identifier, the targets counted in ``details``).

The nodes answer with ``warning_receipt`` records (``sync.records.WarningReceipt``), which the
receiver hands to :meth:`Warnings.from_receipts`: per warning and device it keeps the times of
delivered, first sounded, last silenced (and why), displayed, acknowledged (and by whom),
cancelled, expired and refused (and why), and whether the node was inside the area, with its
position; a batch received twice changes nothing. A node's own sounding (a local alarm, or an
operator by hand), identified ``local:<device>:<alarm-or-hand>:<ms>``, becomes a warning of origin
``local`` at its first receipt. Where the nodes are comes from their status
(:meth:`Warnings.from_status`: ``"location": {"lat", "lon"}`` for a station at a fixed place,
``"mobile": true`` for a vessel; the newest status by the node's clock wins).

Tables: migration 12 (``ioc.schema``).

Example::

    warnings = Warnings(Database("sqlite:///ioc.db"))
    identifier = new_identifier("ioc@hue", now)
    alert = Alert.make(identifier, "ioc@hue", now, "Alert", [info], [area], now + 6 * 3600_000)
    [t.device for t in warnings.reach(alert, "kind=flood-station")]    # before issuing
    issued = warnings.issue(alert, "kind=flood-station", "lan", now)
    warnings.unacknowledged(alert.identifier, now + 600_000)            # flagged: no one acknowledged
"""

from __future__ import annotations

import builtins
import dataclasses
import json
import logging
import secrets
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from common.errors import IocEdgeError
from ioc.audit import audit
from ioc.commands import MAX_TTL_S, CommandQueue
from ioc.db import Cursor, Database, now_ms
from ioc.labels import NodeLabels
from ioc.selectors import Selector, devices_matching, parse
from ioc.web.csvout import csv_rows, local_time
from sync.records import NodeStatus, WarningReceipt
from sync.warnings import Alert
from sync.wire import Batch, WireError

__all__ = [
    "KIND",
    "Issued",
    "Place",
    "StoredWarning",
    "Target",
    "TargetReceipt",
    "WarningError",
    "Warnings",
    "default_sender",
    "new_identifier",
    "receipts_csv",
    "warnings_csv",
]

log = logging.getLogger(__name__)

KIND = "warning"
"""The command kind that carries an alert to a node."""
LOCAL_PREFIX = "local:"
"""The identifiers of a node's own soundings: ``local:<device>:<alarm-or-hand>:<ms>``."""
MAX_ACK_WITHIN_S = 7 * 86_400
WHY_STATION = "station inside"
WHY_VESSEL = "vessel: decides on board"
_RECEIPT_EVENTS = (
    "delivered",
    "located",
    "sounded",
    "silenced",
    "displayed",
    "acknowledged",
    "cancelled",
    "expired",
    "refused",
)
_FIRST = {  # receipt event: the column keeping its first time
    "delivered": "delivered_ms",
    "sounded": "sounded_ms",
    "displayed": "displayed_ms",
    "acknowledged": "acknowledged_ms",
    "cancelled": "cancelled_ms",
    "expired": "expired_ms",
    "refused": "refused_ms",
}
UTC = ZoneInfo("UTC")
_BESIDE = {"acknowledged": "acknowledged_by", "refused": "refused_why"}
"""Who acknowledged, why refused: kept with the first time of the event."""


class WarningError(IocEdgeError, ValueError):
    """A warning that cannot be issued, updated or cancelled; the message starts with the field."""


def default_sender() -> str:
    """The centre's CAP ``sender`` unless told otherwise: ``ioc@<hostname>``."""
    return f"ioc@{socket.gethostname()}"


def new_identifier(sender: str, at_ms: int) -> str:
    """A CAP identifier made by the centre: ``ioc-<sender's host>-<UTC yyyymmddHHMMSS>-<6 hex>``.

    >>> new_identifier("ioc@hue.gov.vn", 1_790_000_000_000)[:-6]
    'ioc-hue.gov.vn-20260921141320-'
    """
    host = sender.rpartition("@")[2] or "centre"
    stamp = local_time(at_ms - at_ms % 1000, UTC) or ""
    digits = "".join(c for c in stamp[:19] if c.isdigit())
    return f"ioc-{host}-{digits}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class Place:
    """Where a node reports it is: a station's fixed ``lat``/``lon`` (None: not reported), ``mobile``
    for a node with a GPS (a vessel), as of its status of ``reported_ms`` (the node's clock)."""

    device: str
    lat: float | None
    lon: float | None
    mobile: bool
    reported_ms: int


@dataclass(frozen=True)
class Target:
    """A node a warning goes to, and ``why``: its labels (``labels district=phu-vang``, ``every
    node``), ``station inside`` (its reported place is in the area) or ``vessel: decides on board``."""

    device: str
    why: str
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class Issued:
    """What :meth:`Warnings.issue`, ``update`` or ``cancel`` sent: the alert, its targets, and the
    seq of each target's ``warning`` command (by device)."""

    alert: Alert
    targets: list[Target]
    commands: dict[str, int]


@dataclass(frozen=True)
class StoredWarning:
    """A warning as the centre holds it (a row of ``warnings``, with its receipts counted).

    CAP's fields as a list shows them (``event``, ``urgency``, ``severity``, ``certainty``,
    ``headline``: the Vietnamese info's, else the first; ``area_desc`` the areas' joined by "; ").
    ``state``: ``active``, ``updated`` (``superseded_by`` the Update), ``cancelled``, ``sent`` (a
    Cancel's own), ``local`` (a node's own sounding, ``device`` its node). ``refers_to``: the
    identifier an Update or Cancel changes. ``targets``, ``delivered``, ``sounded`` and
    ``acknowledged`` count its targets, and those that reported each.
    """

    identifier: str
    sender: str
    sent_ms: int
    status: str
    msg_type: str
    refers_to: str
    event: str
    urgency: str
    severity: str
    certainty: str
    headline: str
    area_desc: str
    pattern: str
    expires_ms: int | None
    selector: str
    issuer: str
    issued_ms: int
    ack_within_s: int
    state: str
    changed_ms: int | None
    changed_by: str
    superseded_by: str
    origin: str
    device: str
    targets: int
    delivered: int
    sounded: int
    acknowledged: int
    alert_json: str

    def alert(self) -> Alert | None:
        """The CAP alert the centre sent (None: a node's own sounding, which has none)."""
        return Alert.from_json(json.loads(self.alert_json)) if self.alert_json else None

    def state_at(self, at_ms: int) -> str:
        """The state, ``expired`` for an active warning whose expiry has come."""
        expired = self.state == "active" and self.expires_ms is not None and self.expires_ms <= at_ms
        return "expired" if expired else self.state


@dataclass(frozen=True)
class TargetReceipt:
    """What became of a warning at one target: its command (``command_seq``, ``command_state`` at
    the centre: queued, sent, delivered, applied, refused, expired) and the node's receipts.

    Times are the node's (UTC ms), None until reported: ``delivered_ms``, ``sounded_ms`` (first),
    ``silenced_ms`` (last, ``silenced_why``), ``displayed_ms``, ``acknowledged_ms`` (first,
    ``acknowledged_by``), ``cancelled_ms``, ``expired_ms``, ``refused_ms`` (``refused_why``).
    ``inside``: 1 in the area, 0 outside, None unknown, with the position (``lat``, ``lon``) of the
    receipt that said so (``position_ms``). ``outputs``: per output, its first ``sounded_ms`` and
    last ``silenced_ms`` and ``silenced_why``. ``ack_due_ms``: when an acknowledgement is due
    (None: none is expected: a node's own sounding, a cancelled warning).
    """

    identifier: str
    device: str
    why: str
    command_seq: int | None
    command_state: str | None
    delivered_ms: int | None
    sounded_ms: int | None
    silenced_ms: int | None
    silenced_why: str
    displayed_ms: int | None
    acknowledged_ms: int | None
    acknowledged_by: str
    cancelled_ms: int | None
    expired_ms: int | None
    refused_ms: int | None
    refused_why: str
    inside: int | None
    lat: float | None
    lon: float | None
    position_ms: int | None
    outputs: dict[str, dict[str, Any]]
    receipt_ms: int | None
    ack_due_ms: int | None

    def flagged(self, at_ms: int) -> bool:
        """Not acknowledged when it was due (a node that reported itself outside owes none)."""
        return (
            self.ack_due_ms is not None
            and at_ms >= self.ack_due_ms
            and self.acknowledged_ms is None
            and self.inside != 0
        )


_COUNTED = {"delivered": "delivered_ms", "sounded": "sounded_ms", "acknowledged": "acknowledged_ms"}
"""The fields of :class:`StoredWarning` that count its targets with a receipt, and of which."""
_WARNING_COLUMNS = [
    f.name for f in dataclasses.fields(StoredWarning) if f.name not in _COUNTED and f.name != "alert_json"
]
_SELECT_WARNING = (
    f"SELECT {', '.join(f'w.{c}' for c in _WARNING_COLUMNS)}, "
    + ", ".join(
        f"(SELECT COUNT(t.{column}) FROM warning_targets t WHERE t.identifier = w.identifier) AS {name}"
        for name, column in _COUNTED.items()
    )
    + ", w.alert AS alert_json FROM warnings w"
)
_RECEIPT_COLUMNS = [f.name for f in dataclasses.fields(TargetReceipt)][:-1]
_SELECT_RECEIPT = (
    "SELECT "
    + ", ".join(
        "c.state AS command_state" if name == "command_state" else f"t.{name}" for name in _RECEIPT_COLUMNS
    )
    + ", w.issued_ms, w.ack_within_s, w.state AS warning_state FROM warning_targets t "
    "JOIN warnings w ON w.identifier = t.identifier "
    "LEFT JOIN commands c ON c.device = t.device AND c.seq = t.command_seq"
)


class Warnings:
    """The centre's warnings, their targets and receipts, and the nodes' places (see the module's
    docstring); on SQLite or PostgreSQL. Times are passed in (``now_ms``), so rules are tested
    without waiting."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.queue = CommandQueue(db)

    # -- targets ------------------------------------------------------------------------------------

    def reach(self, alert: Alert, selector: str | Selector | None) -> builtins.list[Target]:
        """The nodes ``alert`` goes to with ``selector`` (None: every node), by device, each with why.

        Raises :class:`ioc.selectors.SelectorError` for a selector that does not parse.
        """
        chosen = parse(selector) if isinstance(selector, str) else selector
        if chosen is not None:
            devices = devices_matching(self.db, chosen)
        else:
            devices = [n.device for n in NodeLabels(self.db).nodes()]
        places = {p.device: p for p in self.places()}
        if not alert.areas:
            why = f"labels {chosen}" if chosen is not None else "every node"
            return [Target(d, why, *_position(places.get(d))) for d in devices]
        targets = []
        for device in devices:
            place = places.get(device)
            if place is None:
                continue
            if place.mobile:
                targets.append(Target(device, WHY_VESSEL, place.lat, place.lon))
            elif place.lat is not None and place.lon is not None and alert.covers(place.lat, place.lon):
                targets.append(Target(device, WHY_STATION, place.lat, place.lon))
        return targets

    def places(self) -> builtins.list[Place]:
        """Where every node last reported it is, by device."""
        rows = self.db.fetch("SELECT device, lat, lon, mobile, reported_ms FROM node_places ORDER BY device")
        return [Place(**{**r, "mobile": bool(r["mobile"])}) for r in rows]

    # -- issue, update, cancel -----------------------------------------------------------------------

    def issue(
        self,
        alert: Alert,
        selector: str | Selector | None,
        issuer: str,
        now_ms: int,
        ack_within_s: int = 600,
    ) -> Issued:
        """Send ``alert`` (msg_type Alert) to the nodes :meth:`reach` gives, audited ``warning.issue``.

        ``ack_within_s``: a target that has not acknowledged that long after issue is flagged.
        Raises :class:`WarningError` (``identifier``: issued already; ``msg_type``; ``expires_ms``:
        past, or further than a command may wait; ``targets``: no node to reach; ``ack_within_s``).
        """
        if alert.msg_type != "Alert":
            raise WarningError(
                f"msg_type: issue sends an Alert, not an {alert.msg_type}: an Update or a Cancel refers to "
                "the warning it changes (update, cancel)"
            )
        chosen = parse(selector) if isinstance(selector, str) else selector
        targets = self.reach(alert, chosen)
        if not targets:
            what = f"labels {chosen}" if chosen is not None else "no selector"
            where = "; nodes in its areas: stations by their reported place, vessels" if alert.areas else ""
            raise WarningError(f"targets: no node to reach ({what}{where})")
        return self._send(alert, targets, str(chosen or ""), issuer, now_ms, ack_within_s, None)

    def update(
        self, identifier: str, alert: Alert, issuer: str, now_ms: int, ack_within_s: int | None = None
    ) -> Issued:
        """Send ``alert``'s content as an Update of warning ``identifier`` to its targets, audited
        ``warning.update``: ``alert`` (its own new identifier) is made an Update referring to the
        original, which becomes ``updated``. ``ack_within_s``: the original's unless given.

        Raises :class:`WarningError`: ``identifier`` unknown, cancelled, updated already (update the
        newer one), expired, or a node's own; the new alert's ``identifier`` issued already.
        """
        original = self.in_force(identifier, now_ms)
        previous = original.alert()
        assert previous is not None  # in_force refuses a node's own sounding, the only one without
        try:
            update = dataclasses.replace(alert, msg_type="Update", references=(previous.reference(),))
        except WireError as exc:
            raise WarningError(str(exc).removeprefix(f"{exc.reason}: ")) from None
        within = original.ack_within_s if ack_within_s is None else ack_within_s
        return self._send(
            update, self._targets(identifier), original.selector, issuer, now_ms, within, original
        )

    def cancel(self, identifier: str, issuer: str, now_ms: int, note: str = "") -> Issued:
        """Send a Cancel of warning ``identifier`` (referring to it, from its sender) to its targets,
        audited ``warning.cancel``; the warning becomes ``cancelled``.

        Raises :class:`WarningError` as :meth:`update` does (a second cancel: ``identifier``, cancelled).
        """
        original = self.in_force(identifier, now_ms)
        previous = original.alert()
        assert previous is not None  # as in update
        try:
            cancel = Alert.make(
                new_identifier(previous.sender, now_ms),
                previous.sender,
                now_ms,
                "Cancel",
                previous.infos,
                previous.areas,
                previous.expires_ms,
                status=previous.status,
                references=[previous.reference()],
                note=note,
            )
        except WireError as exc:
            raise WarningError(str(exc).removeprefix(f"{exc.reason}: ")) from None
        return self._send(cancel, self._targets(identifier), original.selector, issuer, now_ms, 0, original)

    def in_force(self, identifier: str, now_ms: int) -> StoredWarning:
        """Warning ``identifier``, which an Update or Cancel may change at ``now_ms``.

        Raises :class:`WarningError` (``identifier: ...``) for one unknown, a node's own, a Cancel,
        cancelled, updated (naming the Update, the one to change) or expired.
        """
        warning = self.get(identifier)
        if warning is None:
            raise WarningError(f"identifier: no warning {identifier!r} was issued here")
        if warning.origin == "local":
            raise WarningError(
                f"identifier: {identifier} is {warning.device}'s own sounding, not the centre's"
            )
        if warning.msg_type == "Cancel":
            raise WarningError(f"identifier: {identifier} is a Cancel (of {warning.refers_to})")
        if warning.state == "cancelled":
            raise WarningError(
                f"identifier: {identifier} was cancelled already, at {_iso(warning.changed_ms)} by "
                f"{warning.changed_by or '?'}"
            )
        if warning.state == "updated":
            raise WarningError(
                f"identifier: {identifier} was updated by {warning.superseded_by}: change that one"
            )
        if warning.state_at(now_ms) == "expired":
            raise WarningError(f"identifier: {identifier} expired at {_iso(warning.expires_ms)}")
        return warning

    def _targets(self, identifier: str) -> builtins.list[Target]:
        rows = self.db.fetch(
            "SELECT device, why, lat, lon FROM warning_targets "
            "WHERE identifier = ? AND command_seq IS NOT NULL ORDER BY device",
            [identifier],
        )
        return [Target(**r) for r in rows]

    def _send(
        self,
        alert: Alert,
        targets: builtins.list[Target],
        selector: str,
        issuer: str,
        now_ms: int,
        ack_within_s: int,
        original: StoredWarning | None,
    ) -> Issued:
        """Store ``alert`` and its targets, change ``original``'s state, queue the commands: one
        transaction; then audit it."""
        if not 0 <= ack_within_s <= MAX_ACK_WITHIN_S:
            raise WarningError(f"ack_within_s: {ack_within_s} is not 0..{MAX_ACK_WITHIN_S} s")
        if alert.expires_ms <= now_ms:
            raise WarningError(f"expires_ms: {_iso(alert.expires_ms)} is past (now {_iso(now_ms)})")
        ttl_s = max(1.0, (alert.expires_ms - now_ms) / 1000)
        if ttl_s > MAX_TTL_S:
            raise WarningError(
                f"expires_ms: {_iso(alert.expires_ms)} is more than {MAX_TTL_S // 86_400} days away, "
                "longer than a command waits for a node"
            )
        info = alert.info("vi")
        body = alert.to_json()
        action = f"warning.{alert.msg_type.lower().replace('alert', 'issue')}"
        with self.db.transaction() as cur:
            if not _insert_warning(cur, alert, selector, issuer, now_ms, ack_within_s, len(targets)):
                raise WarningError(f"identifier: {alert.identifier} was issued already")
            if original is not None:
                cur.execute(
                    "UPDATE warnings SET state = ?, changed_ms = ?, changed_by = ?, superseded_by = ? "
                    "WHERE identifier = ? AND state = 'active'",
                    [
                        "cancelled" if alert.msg_type == "Cancel" else "updated",
                        now_ms,
                        issuer,
                        alert.identifier,
                        original.identifier,
                    ],
                )
                if cur.rowcount != 1:  # another operator changed it meanwhile: nothing of this is kept
                    raise WarningError(f"identifier: {original.identifier} was changed meanwhile: look again")
            try:
                seqs = self.queue.issue_many(
                    [t.device for t in targets], KIND, body, issuer, ttl_s, now_ms, cur
                )
            except IocEdgeError as exc:
                raise WarningError(f"targets: {exc}") from None
            cur.executemany(
                "INSERT INTO warning_targets (identifier, device, why, command_seq, silenced_why, "
                "acknowledged_by, refused_why, lat, lon, outputs) "
                "VALUES (?, ?, ?, ?, '', '', '', ?, ?, '{}')",
                [(alert.identifier, t.device, t.why, seqs[t.device], t.lat, t.lon) for t in targets],
            )
        details = (
            {
                "event": info.event,
                "severity": info.severity,
                "status": alert.status,
                "targets": len(targets),
                "expires_ms": alert.expires_ms,
            }
            | ({"select": selector} if selector else {})
            | ({"refers_to": original.identifier} if original else {})
        )
        audit(
            self.db,
            issuer,
            action,
            alert.identifier,
            details,
            f"queued to {len(targets)} nodes",
            at_ms=now_ms,
        )
        log.info(
            "event=%s identifier=%s targets=%d issuer=%s",
            action.replace(".", "_"),
            alert.identifier,
            len(targets),
            issuer,
        )
        return Issued(alert, targets, seqs)

    # -- reading -------------------------------------------------------------------------------------

    def get(self, identifier: str) -> StoredWarning | None:
        """Warning ``identifier`` (None: unknown)."""
        rows = self.db.fetch(f"{_SELECT_WARNING} WHERE w.identifier = ?", [identifier])
        return StoredWarning(**rows[0]) if rows else None

    def list(
        self, since_ms: int | None = None, origin: str | None = None, limit: int | None = None
    ) -> builtins.list[StoredWarning]:
        """The warnings newest first (issued from ``since_ms`` on; of ``origin`` ``centre`` or
        ``local``; the newest ``limit``)."""
        clauses: builtins.list[str] = []
        params: builtins.list[object] = []
        if since_ms is not None:
            clauses.append("w.issued_ms >= ?")
            params.append(since_ms)
        if origin is not None:
            clauses.append("w.origin = ?")
            params.append(origin)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        most = f" LIMIT {int(limit)}" if limit is not None else ""
        rows = self.db.fetch(
            f"{_SELECT_WARNING}{where} ORDER BY w.issued_ms DESC, w.identifier{most}", params
        )
        return [StoredWarning(**r) for r in rows]

    def receipts(self, identifier: str) -> builtins.list[TargetReceipt]:
        """What became of warning ``identifier`` at each of its targets, by device ([]: unknown)."""
        rows = self.db.fetch(f"{_SELECT_RECEIPT} WHERE t.identifier = ? ORDER BY t.device", [identifier])
        return [_receipt(r) for r in rows]

    def unacknowledged(self, identifier: str, now_ms: int) -> builtins.list[TargetReceipt]:
        """The targets of ``identifier`` flagged at ``now_ms``: not acknowledged ``ack_within_s`` after
        issue (:meth:`TargetReceipt.flagged`)."""
        return [r for r in self.receipts(identifier) if r.flagged(now_ms)]

    # -- what the nodes report -----------------------------------------------------------------------

    def from_status(self, batch: Batch) -> None:
        """Keep where the newest status of ``batch`` says the node is (the receiver's check of
        ``status``): ``location`` ``{lat, lon}`` and ``mobile``; a status without them says the node
        has no fixed place and no GPS. A status older by the node's clock than the one kept changes
        nothing."""
        newest = max((NodeStatus._make(r) for r in batch.records), key=lambda s: s.ts_ms)
        try:
            body = json.loads(newest.body)
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        location = body.get("location")
        lat = lon = None
        if (
            isinstance(location, dict)
            and _degrees(location.get("lat"), 90)
            and _degrees(location.get("lon"), 180)
        ):
            lat, lon = float(location["lat"]), float(location["lon"])
        self.db.execute(
            "INSERT INTO node_places (device, lat, lon, mobile, reported_ms, seen_ms) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (device) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, "
            "mobile = excluded.mobile, reported_ms = excluded.reported_ms, seen_ms = excluded.seen_ms "
            "WHERE node_places.reported_ms <= excluded.reported_ms",
            [batch.device, lat, lon, int(body.get("mobile") is True), newest.ts_ms, now_ms()],
        )

    def from_receipts(self, batch: Batch) -> None:
        """Keep the receipts of a stored ``warning_receipt`` batch (the receiver's check): per
        identifier, one transaction. Idempotent: first times are minima, last ones maxima."""
        by_identifier: dict[str, builtins.list[WarningReceipt]] = {}
        for record in batch.records:
            receipt = WarningReceipt._make(record)
            by_identifier.setdefault(receipt.identifier, []).append(receipt)
        for identifier, receipts in by_identifier.items():
            with self.db.transaction() as cur:
                if not self._known(cur, identifier, batch.device, receipts[0]):
                    log.warning(
                        "event=warning_receipt_unknown device=%s identifier=%s", batch.device, identifier
                    )
                    continue
                # The row locked first (an upsert that changes nothing), so receivers at once take turns.
                cur.execute(
                    "INSERT INTO warning_targets (identifier, device, why, command_seq, silenced_why, "
                    "acknowledged_by, refused_why, outputs) VALUES (?, ?, ?, NULL, '', '', '', '{}') "
                    "ON CONFLICT (identifier, device) DO UPDATE SET why = warning_targets.why",
                    [identifier, batch.device, "not targeted"],
                )
                cur.execute(
                    f"SELECT {', '.join(_KEPT)} FROM warning_targets WHERE identifier = ? AND device = ?",
                    [identifier, batch.device],
                )
                row = cur.fetchone()
                assert row is not None  # made just above
                kept = _fold(dict(zip(_KEPT, row, strict=True)), receipts)
                cur.execute(
                    f"UPDATE warning_targets SET {', '.join(f'{k} = ?' for k in _KEPT)} "
                    "WHERE identifier = ? AND device = ?",
                    [*(kept[k] for k in _KEPT), identifier, batch.device],
                )

    @staticmethod
    def _known(cur: Cursor, identifier: str, device: str, first: WarningReceipt) -> bool:
        """Whether warning ``identifier`` is the centre's, or a node's own sounding (made now)."""
        cur.execute("SELECT 1 FROM warnings WHERE identifier = ?", [identifier])
        if cur.fetchone():
            return True
        if not identifier.startswith(LOCAL_PREFIX):
            return False
        parts = identifier.split(":")
        what = parts[2] if len(parts) == 4 else identifier
        sent = int(parts[3]) if len(parts) == 4 and parts[3].isdigit() else first.ts_ms
        pattern = _detail(first.details, "pattern")
        cur.execute(
            "INSERT INTO warnings (identifier, sender, sent_ms, status, msg_type, refers_to, event, urgency, "
            "severity, certainty, headline, area_desc, pattern, expires_ms, selector, issuer, issued_ms, "
            "ack_within_s, state, changed_ms, changed_by, superseded_by, origin, device, targets, alert) "
            "VALUES (?, ?, ?, 'Actual', 'Alert', '', ?, 'Immediate', 'Unknown', 'Observed', '', '', ?, NULL, "
            "'', ?, ?, 0, 'local', NULL, '', '', 'local', ?, 1, '') ON CONFLICT DO NOTHING",
            [identifier, device, sent, what, pattern, first.by, sent, device],
        )
        cur.execute(
            "INSERT INTO warning_targets (identifier, device, why, command_seq, silenced_why, "
            "acknowledged_by, refused_why, outputs) VALUES (?, ?, 'local', NULL, '', '', '', '{}') "
            "ON CONFLICT DO NOTHING",
            [identifier, device],
        )
        log.info("event=warning_local identifier=%s device=%s", identifier, device)
        return True


def _insert_warning(
    cur: Cursor, alert: Alert, selector: str, issuer: str, now_ms: int, ack_within_s: int, targets: int
) -> bool:
    """Insert the centre's ``alert`` into ``warnings``; False when its identifier is there already."""
    info = alert.info("vi")
    cur.execute(
        "INSERT INTO warnings (identifier, sender, sent_ms, status, msg_type, refers_to, event, urgency, "
        "severity, certainty, headline, area_desc, pattern, expires_ms, selector, issuer, issued_ms, "
        "ack_within_s, state, changed_ms, changed_by, superseded_by, origin, device, targets, alert) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '', '', 'centre', '', ?, ?) "
        "ON CONFLICT DO NOTHING",
        [
            alert.identifier,
            alert.sender,
            alert.sent_ms,
            alert.status,
            alert.msg_type,
            ",".join(alert.refers_to()),
            info.event,
            info.urgency,
            info.severity,
            info.certainty,
            info.headline,
            "; ".join(a.area_desc for a in alert.areas),
            alert.pattern,
            alert.expires_ms,
            selector,
            issuer,
            now_ms,
            ack_within_s,
            "sent" if alert.msg_type == "Cancel" else "active",
            targets,
            json.dumps(alert.to_json(), ensure_ascii=False),
        ],
    )
    return cur.rowcount == 1


_KEPT = (
    "delivered_ms",
    "sounded_ms",
    "silenced_ms",
    "silenced_why",
    "displayed_ms",
    "acknowledged_ms",
    "acknowledged_by",
    "cancelled_ms",
    "expired_ms",
    "refused_ms",
    "refused_why",
    "inside",
    "lat",
    "lon",
    "position_ms",
    "outputs",
    "receipt_ms",
)
"""The receipt columns of ``warning_targets``, which :func:`_fold` computes."""


def _fold(kept: dict[str, Any], receipts: Iterable[WarningReceipt]) -> dict[str, Any]:
    """``kept`` (a target's receipt columns) with ``receipts`` folded in: the same whatever their
    order and however often each comes (first times the least, last ones the greatest, a tie kept)."""
    kept = dict(kept)
    outputs: dict[str, dict[str, Any]] = json.loads(kept["outputs"] or "{}")
    for r in receipts:
        if r.event not in _RECEIPT_EVENTS:
            log.warning("event=warning_receipt_ignored identifier=%s event=%r", r.identifier, r.event)
            continue
        kept["receipt_ms"] = max(kept["receipt_ms"] or r.ts_ms, r.ts_ms)
        if r.event in _FIRST:
            column = _FIRST[r.event]
            if kept[column] is None or r.ts_ms < kept[column]:
                kept[column] = r.ts_ms
                if r.event in _BESIDE:
                    kept[_BESIDE[r.event]] = r.by if r.event == "acknowledged" else _why(r)
        if r.event == "sounded" and r.output:
            out = outputs.setdefault(r.output, {})
            out["sounded_ms"] = min(out.get("sounded_ms", r.ts_ms), r.ts_ms)
        if r.event == "silenced":
            if kept["silenced_ms"] is None or r.ts_ms > kept["silenced_ms"]:
                kept["silenced_ms"], kept["silenced_why"] = r.ts_ms, _why(r)
            if r.output:
                out = outputs.setdefault(r.output, {})
                if r.ts_ms > out.get("silenced_ms", -1):
                    out["silenced_ms"], out["silenced_why"] = r.ts_ms, _why(r)
        if r.inside is not None and (kept["position_ms"] is None or r.ts_ms > kept["position_ms"]):
            kept["inside"], kept["lat"], kept["lon"], kept["position_ms"] = r.inside, r.lat, r.lon, r.ts_ms
    kept["outputs"] = json.dumps(outputs, sort_keys=True)
    return kept


def _why(receipt: WarningReceipt) -> str:
    """Why a receipt's step happened: ``by``, and the ``reason`` (a silence's) or ``why`` (a refusal's)
    its details give (``centre: cancelled``)."""
    reason = _detail(receipt.details, "reason") or _detail(receipt.details, "why")
    return f"{receipt.by}: {reason}" if reason else receipt.by


def _detail(details: str, key: str) -> str:
    """The text ``key`` of a receipt's details (a JSON object), '' when it has none."""
    try:
        value = json.loads(details).get(key) if details else None
    except (ValueError, AttributeError):
        return ""
    return value if isinstance(value, str) else ""


def _receipt(row: dict[str, Any]) -> TargetReceipt:
    issued_ms, within, state = row.pop("issued_ms"), row.pop("ack_within_s"), row.pop("warning_state")
    due = issued_ms + within * 1000 if within and state in ("active", "updated") else None
    return TargetReceipt(**{**row, "outputs": json.loads(row["outputs"] or "{}")}, ack_due_ms=due)


def _position(place: Place | None) -> tuple[float | None, float | None]:
    return (place.lat, place.lon) if place is not None else (None, None)


def _degrees(value: object, most: float) -> bool:
    return type(value) in (int, float) and -most <= value <= most  # type: ignore[operator]


def _iso(ms: int | None) -> str:
    return (local_time(ms, UTC) or "?") if ms is not None else "?"


WARNING_CSV_KEYS = (
    "identifier",
    "ts_ms",
    "msg_type",
    "refers_to",
    "status",
    "state",
    "origin",
    "device",
    "event",
    "severity",
    "urgency",
    "certainty",
    "headline",
    "area_desc",
    "pattern",
    "sent",
    "expires",
    "selector",
    "issuer",
    "targets",
    "delivered",
    "sounded",
    "acknowledged",
)
RECEIPT_CSV_KEYS = (
    "identifier",
    "device",
    "why",
    "command_seq",
    "command_state",
    "delivered",
    "sounded",
    "silenced",
    "silenced_why",
    "displayed",
    "acknowledged",
    "acknowledged_by",
    "cancelled",
    "expired",
    "refused",
    "refused_why",
    "inside",
    "lat",
    "lon",
    "flagged",
)


def warnings_csv(warnings: Iterable[StoredWarning], now_ms: int, zone: ZoneInfo = UTC) -> Iterator[str]:
    """The warnings as CSV (``ts_ms`` when issued, and ``time_local``; ``state`` at ``now_ms``), with
    the dashboard's neutralising of formula-like text (``ioc.web.csvout``)."""
    items = (
        {
            **w.__dict__,
            "ts_ms": w.issued_ms,
            "state": w.state_at(now_ms),
            "sent": local_time(w.sent_ms, zone),
            "expires": local_time(w.expires_ms, zone),
        }
        for w in warnings
    )
    return csv_rows(items, WARNING_CSV_KEYS, zone)


def receipts_csv(receipts: Iterable[TargetReceipt], now_ms: int, zone: ZoneInfo = UTC) -> Iterator[str]:
    """One warning's receipts as CSV, one row per target, times in ``zone`` (ISO 8601), ``flagged``
    at ``now_ms`` (1: not acknowledged when due)."""
    times = [
        e for e in _RECEIPT_EVENTS if e != "located"
    ]  # located has no time: it moves inside and the place
    items = (
        {
            **r.__dict__,
            **{t: local_time(getattr(r, f"{t}_ms"), zone) for t in times},
            "flagged": int(r.flagged(now_ms)),
        }
        for r in receipts
    )
    return csv_rows(items, RECEIPT_CSV_KEYS, zone)
