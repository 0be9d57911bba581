"""The centre's side of signed commands: a durable queue per device, and the one dispatcher that sends it.

A command is issued into the database (:class:`CommandQueue`, table ``commands``) with the next
sequence number of its device, and waits there: a node that is offline, or not yet heard of, gets
it when it is. The :class:`Dispatcher` (inside ``ioc-center run``) signs each waiting command for
the device's current store epoch and publishes it on the device's command topic, again and again
with backoff until the node's result arrives on the uplink (the receiver hands it to
:meth:`CommandQueue.results`) or the command expires: a broker's PUBACK is not delivery, just as on
the uplink. Among several receivers exactly one dispatches: the holder of a lease in the database
(:class:`Lease`), which another takes over once it lapses.

States at the centre: ``queued`` (not yet published), ``sent`` (published, no answer yet),
``delivered`` (the node verified and accepted it), ``applied``, ``refused`` (the node's reason
and details), ``expired`` (no final result before its expiry; reason ``not_sent``, ``no_answer``
or ``no_result``). A final result the node reports after the centre gave up still counts: it
tells what happened.

Example::

    queue = CommandQueue(Database("sqlite:///ioc.db"))
    seq = queue.issue("vessel-042", "ping", {}, "lan", ttl_s=3600, now_ms=now_ms())
    queue.get("vessel-042", seq).state          # 'queued', later 'sent', 'delivered', 'applied'
"""

from __future__ import annotations

import builtins
import json
import logging
import math
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.component import Component
from common.errors import IocEdgeError
from ioc import audit
from ioc.db import Cursor, Database, now_ms
from provisioning.commands import WARNING_SIGNER, purpose_of
from provisioning.tls import TlsFiles, client_context
from sync.commands import Command, command_topic, encode_command
from sync.records import CommandResult
from sync.wire import Batch, WireError

if TYPE_CHECKING:
    from provisioning.commands import CommandSigner

__all__ = ["CommandError", "CommandQueue", "Dispatcher", "Due", "Lease", "QueuedCommand", "retry_delay_ms"]

log = logging.getLogger(__name__)

STATES = ("queued", "sent", "delivered", "applied", "refused", "expired")
PENDING = ("queued", "sent")
"""What the dispatcher publishes (again): no answer from the node yet."""
MAX_TTL_S = 30 * 86_400
MAX_BODY_BYTES = 64 * 1024
"""A body's compact JSON; escaped inside the payload with the signer's chain, well within
``sync.commands.MAX_COMMAND_BYTES``."""
DISPATCHER_LEASE = "dispatcher"
_ISSUE_ATTEMPTS = 50
_PROBE_EPOCH = "0" * 16
"""Stands for the epoch a command is signed for later, when it is checked as it is issued."""

# What a node's result may replace: "delivered" only what has had no answer; a final result
# anything but another final result (the first one stands; a repeat is the same).
_REPLACES = {"delivered": ("sent",), "applied": ("sent", "delivered", "expired")}
_REPLACES["refused"] = _REPLACES["applied"]


class CommandError(IocEdgeError, ValueError):
    """A command that cannot be issued (its device id, kind, body, issuer or lifetime)."""


@dataclass(frozen=True)
class QueuedCommand:
    """One command as the centre holds it (a row of ``commands``).

    ``epoch`` is the node store epoch it was last signed for (None until first sent);
    ``reason`` and ``details`` come from the node's result (``details`` JSON text) or its expiry.
    """

    device: str
    seq: int
    kind: str
    body: dict[str, Any]
    issuer: str
    issued_ms: int
    expires_ms: int
    state: str
    reason: str
    details: str
    epoch: str | None
    sent_count: int
    next_try_ms: int
    last_sent_ms: int | None
    result_ms: int | None

    @classmethod
    def from_row(cls, row: dict) -> QueuedCommand:
        return cls(**{**row, "body": json.loads(row["body"])})


@dataclass(frozen=True)
class Due:
    """A command to publish now, and the epoch to sign it for: its device's latest."""

    command: QueuedCommand
    epoch: str


_COLUMNS = ", ".join(f"c.{name}" for name in QueuedCommand.__dataclass_fields__)


class CommandQueue:
    """The commands of every device, in the centre's database (SQLite or PostgreSQL).

    Times are passed in (``now_ms``), so the queue's rules are tested without waiting.

    Example::

        >>> queue = CommandQueue(Database("sqlite:///:memory:"))
        >>> queue.issue("vessel-042", "ping", {}, "lan", 3600, 1_700_000_000_000)
        1
        >>> queue.issue("vessel-042", "selftest", {}, "lan", 3600, 1_700_000_000_000)
        2
        >>> [(c.seq, c.kind, c.state) for c in queue.list("vessel-042")]
        [(1, 'ping', 'queued'), (2, 'selftest', 'queued')]
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def issue(
        self, device: str, kind: str, body: dict[str, Any], issuer: str, ttl_s: float, now_ms: int
    ) -> int:
        """Queue a command for ``device``; its seq, the device's highest so far plus one.

        Safe with several writers at once: on PostgreSQL two may pick the same seq, and the one
        that commits second tries the next. Raises :class:`CommandError` naming what is wrong.
        """
        text, expires_ms = self._checked(device, kind, body, issuer, ttl_s, now_ms)
        for _ in range(_ISSUE_ATTEMPTS):
            with self.db.transaction() as cur:
                seq = self._insert(cur, device, kind, text, issuer, now_ms, expires_ms)
                if seq is not None:
                    return seq
        raise CommandError(f"{device}: {_ISSUE_ATTEMPTS} other writers took the next seq first; try again")

    def issue_many(
        self,
        devices: Iterable[str],
        kind: str,
        body: dict[str, Any],
        issuer: str,
        ttl_s: float,
        now_ms: int,
        cur: Cursor | None = None,
    ) -> dict[str, int]:
        """Queue the same command for each of ``devices`` in one transaction; each device's seq.

        One transaction rather than one per device: 1,000 commands took 0.8 s on PostgreSQL one by
        one, 0.26 s so. ``cur``: the caller's transaction, so that what it writes beside
        (a warning and its targets) is kept or lost with the commands. Every device is checked
        before anything is written (:class:`CommandError` naming what is wrong); devices are taken
        in sorted order, so that two writers at once wait for each other and never deadlock.
        """
        checked = {d: self._checked(d, kind, body, issuer, ttl_s, now_ms) for d in sorted(set(devices))}
        if cur is None:
            with self.db.transaction() as own:
                return self._issue_each(own, checked, kind, issuer, now_ms)
        return self._issue_each(cur, checked, kind, issuer, now_ms)

    def _issue_each(
        self, cur: Cursor, checked: dict[str, tuple[str, int]], kind: str, issuer: str, now_ms: int
    ) -> dict[str, int]:
        seqs = {}
        for device, (text, expires_ms) in checked.items():
            # In one transaction too: PostgreSQL's next statement sees the seq another writer committed.
            for _ in range(_ISSUE_ATTEMPTS):
                seq = self._insert(cur, device, kind, text, issuer, now_ms, expires_ms)
                if seq is not None:
                    seqs[device] = seq
                    break
            else:
                raise CommandError(
                    f"{device}: {_ISSUE_ATTEMPTS} other writers took the next seq first; try again"
                )
        return seqs

    @staticmethod
    def _checked(
        device: str, kind: str, body: dict[str, Any], issuer: str, ttl_s: float, now_ms: int
    ) -> tuple[str, int]:
        """The body's JSON text and the expiry of a command, checked; CommandError naming what is wrong."""
        if not 1 <= ttl_s <= MAX_TTL_S:
            raise CommandError(f"ttl: {ttl_s} s is not 1..{MAX_TTL_S} s")
        expires_ms = now_ms + round(ttl_s * 1000)
        try:
            # Checked as the dispatcher will build it, so that whatever is queued can be signed.
            Command(device, _PROBE_EPOCH, 1, kind, body, issuer, now_ms, expires_ms)
        except WireError as exc:
            raise CommandError(str(exc).removeprefix(f"{exc.reason}: ")) from None
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if len(text.encode()) > MAX_BODY_BYTES:
            raise CommandError(f"body: {len(text.encode())} bytes of JSON, more than {MAX_BODY_BYTES}")
        return text, expires_ms

    @staticmethod
    def _insert(
        cur: Cursor, device: str, kind: str, text: str, issuer: str, now_ms: int, expires_ms: int
    ) -> int | None:
        """Insert the command with ``device``'s next seq; the seq, or None when another writer took it."""
        cur.execute("SELECT COALESCE(MAX(seq), 0) FROM commands WHERE device = ?", [device])
        row = cur.fetchone()
        assert row is not None  # an aggregate always gives a row
        seq = row[0] + 1
        cur.execute(
            "INSERT INTO commands (device, seq, kind, body, issuer, issued_ms, expires_ms, state, "
            "reason, details, epoch, sent_count, next_try_ms, last_sent_ms, result_ms) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', '', '', NULL, 0, ?, NULL, NULL) "
            "ON CONFLICT DO NOTHING",
            [device, seq, kind, text, issuer, now_ms, expires_ms, now_ms],
        )
        if cur.rowcount != 1:
            return None
        log.info("event=command_issued device=%s seq=%d kind=%s issuer=%s", device, seq, kind, issuer)
        return seq

    def get(self, device: str, seq: int) -> QueuedCommand | None:
        rows = self.db.fetch(
            f"SELECT {_COLUMNS} FROM commands c WHERE c.device = ? AND c.seq = ?", [device, seq]
        )
        return QueuedCommand.from_row(rows[0]) if rows else None

    def list(self, device: str | None = None) -> builtins.list[QueuedCommand]:
        """Every command (of ``device``), by device and seq."""
        where, params = ("WHERE c.device = ?", [device]) if device else ("", [])
        rows = self.db.fetch(f"SELECT {_COLUMNS} FROM commands c {where} ORDER BY c.device, c.seq", params)
        return [QueuedCommand.from_row(row) for row in rows]

    def due(self, now_ms: int, limit: int) -> builtins.list[Due]:
        """Up to ``limit`` commands to publish now: queued or sent, not expired, their retry time come,
        for a device the centre has heard (a device never heard stays queued: no epoch to sign for)."""
        latest = (
            "SELECT e.epoch FROM epochs e WHERE e.device = c.device "
            "ORDER BY e.first_seen_ms DESC, e.epoch DESC LIMIT 1"
        )
        rows = self.db.fetch(
            f"SELECT {_COLUMNS}, ({latest}) AS latest_epoch FROM commands c "
            "WHERE c.state IN ('queued', 'sent') AND c.expires_ms > ? AND c.next_try_ms <= ? "
            "AND EXISTS (SELECT 1 FROM epochs e WHERE e.device = c.device) "
            "ORDER BY c.next_try_ms, c.device, c.seq LIMIT ?",
            [now_ms, now_ms, limit],
        )
        due = []
        for row in rows:
            epoch = row.pop("latest_epoch")
            due.append(Due(QueuedCommand.from_row(row), epoch))
        return due

    def sent(self, device: str, seq: int, now_ms: int, next_try_ms: int, epoch: str) -> bool:
        """Record that the command was published, signed for ``epoch``; next try at ``next_try_ms``.

        False when an answer came meanwhile (the command is no longer waiting).
        """
        return bool(
            self.db.execute(
                "UPDATE commands SET state = 'sent', epoch = ?, sent_count = sent_count + 1, "
                "last_sent_ms = ?, next_try_ms = ? "
                "WHERE device = ? AND seq = ? AND state IN ('queued', 'sent')",
                [epoch, now_ms, next_try_ms, device, seq],
            )
        )

    def result(
        self, device: str, epoch: str, seq: int, state: str, reason: str, details: str, now_ms: int
    ) -> bool:
        """Apply a node's result; True when it changed the command.

        Ignored: a result for another epoch than the command was last signed for (a wiped node's,
        or an answer to an older signing), ``delivered`` after any answer, a final result after
        another, and a state that is not a result's.
        """
        with self.db.transaction() as cur:
            return self._result(cur, device, epoch, seq, state, reason, details, now_ms)

    def results(self, batch: Batch) -> None:
        """Apply a stored batch of the ``command_result`` stream in one transaction (the receiver's check)."""
        now = now_ms()
        with self.db.transaction() as cur:
            for r in map(CommandResult._make, batch.records):
                self._result(cur, batch.device, batch.epoch, r.command_seq, r.state, r.reason, r.details, now)

    def _result(
        self, cur: Cursor, device: str, epoch: str, seq: int, state: str, reason: str, details: str, now: int
    ) -> bool:
        replaces = _REPLACES.get(state)
        if replaces is None:
            log.warning("event=command_result_ignored device=%s seq=%d state=%r", device, seq, state)
            return False
        cur.execute(
            "UPDATE commands SET state = ?, reason = ?, details = ?, result_ms = ? "
            f"WHERE device = ? AND seq = ? AND epoch = ? AND state IN ({', '.join('?' * len(replaces))})",
            [state, reason, details, now, device, seq, epoch, *replaces],
        )
        changed = cur.rowcount == 1
        if changed:
            audit.command_outcome(cur, device, seq, state, reason)
            log.info("event=command_result device=%s seq=%d state=%s reason=%s", device, seq, state, reason)
        return changed

    def unsigned(self, device: str, seq: int, message: str, now_ms: int) -> None:
        """Refuse a waiting command at the centre (``no_signer``): no credential here signs its kind."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE commands SET state = 'refused', reason = 'no_signer', details = ?, result_ms = ? "
                "WHERE device = ? AND seq = ? AND state IN ('queued', 'sent')",
                [json.dumps({"message": message}), now_ms, device, seq],
            )
            if cur.rowcount == 1:
                audit.command_outcome(cur, device, seq, "refused", "no_signer")

    def expire(self, now_ms: int) -> int:
        """Mark the commands without a final result whose expiry has come; how many."""
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE commands SET state = 'expired', result_ms = ?, reason = CASE state "
                "WHEN 'queued' THEN 'not_sent' WHEN 'sent' THEN 'no_answer' ELSE 'no_result' END "
                "WHERE state IN ('queued', 'sent', 'delivered') AND expires_ms <= ? "
                "RETURNING device, seq, reason",
                [now_ms, now_ms],
            )
            expired = cur.fetchall()
            for device, seq, reason in expired:
                audit.command_outcome(cur, device, seq, "expired", reason)
        return len(expired)


class Lease:
    """A named lease in the database: one holder at a time, until it lapses unless renewed.

    :meth:`hold` takes the lease when it is free or has lapsed, and renews it when this holder has
    it, at most every third of ``ttl_ms`` (so a holder touches the database rarely). :meth:`held`
    answers without the database, and only until two thirds of the lease: the last third is the
    margin for a slow tick and for clocks that differ between the centre's machines, before
    another holder may take it.

    Example::

        lease = Lease(db, "dispatcher", "ioc-center-a#3f2a", ttl_ms=10_000)
        if lease.hold(now_ms()) and lease.held(now_ms()):
            ...  # act alone
    """

    def __init__(self, db: Database, name: str, holder: str, ttl_ms: int) -> None:
        self.db, self.name, self.holder, self.ttl_ms = db, name, holder, ttl_ms
        self._until_ms = 0
        self._renew_at_ms = 0

    def hold(self, now_ms: int) -> bool:
        """Take or renew the lease as due; whether this holder has it at ``now_ms``."""
        if now_ms < self._renew_at_ms:
            return self.held(now_ms)
        taken = self.db.execute(
            "INSERT INTO leases (name, holder, until_ms) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_ms = excluded.until_ms "
            "WHERE leases.holder = excluded.holder OR leases.until_ms <= ?",
            [self.name, self.holder, now_ms + self.ttl_ms, now_ms],
        )
        if taken and not self._until_ms:
            log.info("event=lease_taken name=%s holder=%s", self.name, self.holder)
        elif not taken and self._until_ms:
            log.warning("event=lease_lost name=%s holder=%s", self.name, self.holder)
        self._until_ms = now_ms + self.ttl_ms if taken else 0
        self._renew_at_ms = now_ms + self.ttl_ms // 3
        return bool(taken)

    def held(self, now_ms: int) -> bool:
        """Whether this holder may act at ``now_ms`` (as of its last :meth:`hold`)."""
        return now_ms < self._until_ms - self.ttl_ms // 3

    def release(self) -> None:
        """Give the lease up, so that another takes it at once (a clean stop)."""
        self.db.execute("DELETE FROM leases WHERE name = ? AND holder = ?", [self.name, self.holder])
        self._until_ms = self._renew_at_ms = 0


def retry_delay_ms(sent_count: int, min_ms: int, max_ms: int) -> int:
    """How long after its ``sent_count``-th publish (0: the first) a command is published again.

    >>> [retry_delay_ms(n, 2000, 60_000) for n in range(7)]
    [2000, 4000, 8000, 16000, 32000, 60000, 60000]
    """
    return min(max_ms, min_ms * 2 ** min(sent_count, 32))


class Dispatcher(Component):
    """Publishes the waiting commands, signed, to their nodes, while it holds the dispatcher's lease.

    Every ``tick_s`` (the lease taken or renewed as due): commands past their expiry are marked
    expired, then each due command (:meth:`CommandQueue.due`) is signed for its device's latest
    epoch, with ``signer`` (a command signer) or, for a warning, ``warning_signer``
    (``provisioning.commands.purpose_of``; a kind whose signer this centre lacks is refused at once,
    ``no_signer``), and published at QoS 1 on the device's command topic, and published
    again ``retry_min_s`` later, doubling up to ``retry_max_s``, until the node answers or the
    command expires. Each copy carries an MQTT message expiry of its retry delay, so a broker
    holding them for an offline node keeps about one. Only the lease's holder publishes (the lease
    lasts ``lease_s``; another dispatcher takes it once it lapses), and :meth:`stop` releases it.
    ``stats["published"]`` counts publishes. With ``tls`` it connects as the receivers do.

    Example::

        dispatcher = Dispatcher(db, CommandSigner.load(key, cert), "127.0.0.1", 1883)
        dispatcher.start()
        ...
        dispatcher.stop()
    """

    def __init__(
        self,
        db: Database,
        signer: CommandSigner,
        host: str,
        port: int,
        *,
        warning_signer: CommandSigner | None = None,
        prefix: str = "ioc/v1",
        client_id: str = "ioc-center.commands",
        tls: TlsFiles | None = None,
        lease_s: float = 10.0,
        retry_min_s: float = 2.0,
        retry_max_s: float = 60.0,
        # Half a tick, on average, is what a command waits here before it is sent: at 0.2 s it was
        # half of bench/commands.py's round trip (203 ms median; 102 ms at 0.05 s). A tick with
        # nothing due is two short queries (about 0.03 ms on SQLite), so 20 a second cost nothing.
        tick_s: float = 0.05,
        batch: int = 100,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        super().__init__("dispatcher")
        self.queue = CommandQueue(db)
        self.signers = {s.purpose.unit: s for s in (signer, warning_signer) if s is not None}
        self.host, self.port, self.prefix = host, port, prefix
        self.tick_s, self.batch, self.clock = tick_s, batch, clock
        self.retry_min_ms, self.retry_max_ms = round(retry_min_s * 1000), round(retry_max_s * 1000)
        # A holder of its own per run: a restarted process waits for its old lease like any other.
        self.lease = Lease(db, DISPATCHER_LEASE, f"{client_id}#{uuid.uuid4().hex[:8]}", round(lease_s * 1000))
        self.stats: Counter[str] = Counter()
        self.connected = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if tls is not None:
            self._client.tls_set_context(client_context(tls, "--tls"))
        self._client.max_inflight_messages_set(100)
        self._client.reconnect_delay_set(1, 15)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = lambda *args: self.connected.clear()

    def start(self) -> None:
        self._client.connect_async(self.host, self.port, 30)
        self._client.loop_start()
        super().start()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("event=dispatcher_refused reason=%s", reason_code)
            return
        self.connected.set()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except Exception:
                # A database away must not end dispatching: the next tick tries again.
                self.stats["errors"] += 1
                log.exception("event=dispatch_failed")

    def _after_stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        try:
            self.lease.release()
        except Exception:
            log.exception("event=lease_release_failed")  # it lapses by itself

    def tick(self) -> int:
        """One round: the lease, the expiries, then the due commands; how many were published."""
        now = self.clock()
        if not self.lease.hold(now):
            return 0
        self.stats["expired"] += self.queue.expire(now)
        if not self.connected.is_set():
            return 0  # nothing counts as sent while the broker is away
        published = 0
        for due in self.queue.due(now, self.batch):
            # Checked before each publish: a tick that took long may have outlived the lease.
            if not self.lease.held(self.clock()) or not self._publish(due):
                break
            published += 1
        return published

    def _publish(self, due: Due) -> bool:
        c = due.command
        command = Command(c.device, due.epoch, c.seq, c.kind, c.body, c.issuer, c.issued_ms, c.expires_ms)
        delay_ms = retry_delay_ms(c.sent_count, self.retry_min_ms, self.retry_max_ms)
        props = Properties(PacketTypes.PUBLISH)
        props.MessageExpiryInterval = max(1, math.ceil(min(delay_ms, c.expires_ms - self.clock()) / 1000))
        purpose = purpose_of(c.kind)
        signer = self.signers.get(purpose.unit)
        if signer is None:
            self.stats["no_signer"] += 1
            option = (
                "--warning-key/--warning-cert"
                if purpose is WARNING_SIGNER
                else "--command-key/--command-cert"
            )
            self.queue.unsigned(
                c.device,
                c.seq,
                f"this centre has no {purpose.what.removeprefix('a ')}: run with {option}",
                self.clock(),
            )
            log.warning("event=command_unsigned device=%s seq=%d kind=%s", c.device, c.seq, c.kind)
            return True  # answered: the round goes on
        payload = encode_command(signer.sign(command))
        info = self._client.publish(command_topic(self.prefix, c.device), payload, qos=1, properties=props)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            log.warning("event=dispatch_not_sent device=%s seq=%d rc=%d", c.device, c.seq, info.rc)
            return False
        self.stats["published"] += 1
        # The next try counted from this publish, not from the round's start: a slow round (the
        # database) does not bring the next copy closer.
        now = self.clock()
        self.queue.sent(c.device, c.seq, now, now + delay_ms, due.epoch)
        log.info(
            "event=command_sent device=%s seq=%d epoch=%s try=%d",
            c.device,
            c.seq,
            due.epoch,
            c.sent_count + 1,
        )
        return True
