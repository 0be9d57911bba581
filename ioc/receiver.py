"""The central receiver: validates, de-duplicates and stores what the nodes send, then acks it."""

from __future__ import annotations

import hashlib
import logging
import socket
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ioc.admission import Admitted, Bounds, Limits, OverQuota
from ioc.commands import CommandQueue
from ioc.commissioning import CommissioningCheck
from ioc.db import Database
from ioc.desired import DesiredConfigs
from ioc.enrolment import CachedRegister, Register
from ioc.labels import NodeLabels
from ioc.track import GAP_S, TrackCheck
from ioc.warnings import Warnings
from provisioning import pki
from provisioning.revocation import CrlFile
from provisioning.tls import TlsFiles, client_context
from sync.wire import Ack, Batch, WireError, ack_topic, decode_batch, encode_ack, parse_up_topic

log = logging.getLogger(__name__)


def _each(*checks: Callable[[Batch], None]) -> Callable[[Batch], None]:
    """One check of a stream that runs ``checks`` in turn."""

    def check(batch: Batch) -> None:
        for each in checks:
            each(batch)

    return check


class Receiver:
    """Subscribes to every node's uplink through a shared subscription and stores what arrives.

    Several receivers with the same ``group`` split the traffic between them;
    the database's key on (device, epoch, seq) keeps one copy of each record
    whichever of them stores it. A payload that fails validation is counted
    under its reason (``Database.rejects``) and dropped; it never stops the
    receiver or other devices' traffic. With ``tls`` (the identity ``ioc-center broker-config``
    wrote: :meth:`TlsFiles.receiver`) it connects to the broker's centre listener over mutual TLS.
    ``checks`` run on each stored batch of their stream before the ack (signed records' verdicts,
    the commands' results: :meth:`ioc.commands.CommandQueue.results`; idempotent, since a batch
    whose check failed is not acked and comes again);
    commissioning records and track chains (``ioc.track``) are judged against ``tls.ca``, the device
    CA (without ``tls``: the chain alone), and with ``crls`` a signature made or received after its
    certificate's revocation is bad. With ``register`` (``ioc.enrolment``), a batch of a device
    id the register does not hold is refused (``not_enrolled``, ``revoked``) and not acked: the node
    keeps it and sends it again, so a device enrolled later loses nothing.

    Example::

        receiver = Receiver(Database("sqlite:///ioc.db"), "127.0.0.1", 1883)
        receiver.start()
        ...
        receiver.stop()
    """

    def __init__(
        self,
        db: Database,
        host: str,
        port: int,
        *,
        prefix: str = "ioc/v1",
        group: str = "ioc-center",
        client_id: str | None = None,
        tls: TlsFiles | None = None,
        track_gap_s: float = GAP_S,
        register: Register | None = None,
        limits: Limits | None = None,
        crls: CrlFile | None = None,
    ) -> None:
        self.db = db
        self.host, self.port, self.prefix, self.group = host, port, prefix, group
        self.stats: Counter[str] = Counter()
        self.bounds = Bounds(limits)
        self.register = CachedRegister(register) if register is not None else None
        self.client_id = client_id or f"ioc-center-{socket.gethostname()}"
        if tls is not None:
            # Client ids are the broker's across listeners, and whoever holds a signer can mint a device
            # certificate of any name: one named like a receiver would take its session over. So the id
            # carries what only the centre holds: a digest of the receivers' certificate, which no device
            # ever sees.
            self.client_id += "." + hashlib.sha256(Path(tls.cert).read_bytes()).hexdigest()[:16]
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        if tls is not None:
            self._client.tls_set_context(client_context(tls, "--tls"))
        device_ca = pki.load_certificates(tls.ca)[0] if tls is not None else None
        # A signed record proves its device only with the certificate the register holds for it.
        enrolled = self.register.enrolled if self.register is not None else None
        track = TrackCheck(db, device_ca, track_gap_s, crls=crls, enrolled=enrolled)
        desired = DesiredConfigs(db)
        warnings = Warnings(db)
        self.checks: dict[str, Callable[[Batch], None]] = {
            "commissioning": CommissioningCheck(db, device_ca, crls=crls, enrolled=enrolled),
            "track": track,
            "track_sig": track,
            # The nodes' answers move their commands on (ioc.commands); stored first, so nothing is lost.
            # ... and those of a pushed config carry the text it runs (ioc.desired).
            "command_result": _each(CommandQueue(db).results, desired.from_results),
            # A node's status reports its labels, which the centre's selectors match (ioc.labels).
            # ... and the version of its config file: desired vs reported (ioc.desired).
            # ... and where it is (a station's place, a vessel), which warnings' areas reach (ioc.warnings).
            "status": _each(NodeLabels(db).from_status, desired.from_status, warnings.from_status),
            # What became of each warning at the node: delivered, sounded, acknowledged ... (ioc.warnings).
            "warning_receipt": warnings.from_receipts,
        }
        self._client.max_inflight_messages_set(100)
        # paho annotates the delays as int but waits a float's seconds: the first retry after half a second.
        self._client.reconnect_delay_set(0.5, 15)  # type: ignore[arg-type]
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self.subscribed = threading.Event()
        """Set once the broker has confirmed the subscription: from then on nothing sent is missed."""
        self._client.on_message = self._on_message

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 24 * 3600
        self._client.connect_async(self.host, self.port, 30, clean_start=False, properties=props)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("event=receiver_refused reason=%s", reason_code)
            return
        client.subscribe(f"$share/{self.group}/{self.prefix}/+/up/+", qos=1)
        log.info("event=receiver_connected host=%s port=%d", self.host, self.port)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if not any(rc.is_failure for rc in reason_codes):
            self.subscribed.set()

    def _on_message(self, client, userdata, message) -> None:
        try:
            ack = self.handle(message.topic, message.payload)
        except Exception:
            # A database failure must not kill paho's thread; without an ack the node sends again.
            self.stats["errors"] += 1
            log.exception("event=store_failed topic=%s", message.topic)
            return
        if ack is not None:
            device = message.topic.split("/")[-3]
            client.publish(ack_topic(self.prefix, device), encode_ack(ack), qos=1)

    def handle(self, topic: str, payload: bytes) -> Ack | None:
        """Validate and store one uplink message; the ack to send, or None when it was rejected."""
        try:
            device, stream = parse_up_topic(self.prefix, topic)
            # Before decoding: what a device the centre does not hold sends costs no more than a lookup.
            refusal = self.register.refusal(device) if self.register else None
            if refusal:
                raise WireError(refusal, f"{device} holds no active certificate in the enrolment register")
            batch = decode_batch(payload)
            if batch.device != device:
                raise WireError("device_mismatch", f"payload of {batch.device!r} on the topic of {device!r}")
            if batch.stream != stream:
                raise WireError("stream_mismatch", f"{batch.stream!r} records on the topic of {stream!r}")
            admitted = self.bounds.admit(batch)
        except (WireError, OverQuota) as exc:
            self.stats[f"reject.{exc.reason}"] += 1
            self.db.count_reject(exc.reason)
            log.warning("event=reject topic=%s reason=%s detail=%s", topic, exc.reason, exc)
            return None
        kept = self._count_refused(topic, admitted)
        new = self.db.store(kept) if kept.seqs else 0
        check = self.checks.get(batch.stream)
        if check is not None and kept.seqs:
            check(kept)
        self.stats["batches"] += 1
        self.stats["records"] += new
        self.stats["duplicates"] += len(kept.seqs) - new
        # Per stream too, for the centre's metrics (ioc.metrics).
        self.stats[f"records.{batch.stream}"] += new
        self.stats[f"duplicates.{batch.stream}"] += len(kept.seqs) - new
        # The whole batch, refused records too: the node would send those again for ever.
        return Ack(batch.epoch, batch.stream, batch.seqs[0], batch.seqs[-1])

    def _count_refused(self, topic: str, admitted: Admitted) -> Batch:
        """Count the records the bounds refused (``ioc.admission``), by reason; the batch left to store."""
        for reason, n in admitted.refused.items():
            self.stats[f"reject.{reason}"] += n
            self.db.count_reject(reason, n)
        if admitted.refused:
            reasons = ",".join(f"{r}:{n}" for r, n in sorted(admitted.refused.items()))
            log.warning("event=reject_records topic=%s reasons=%s first=%s", topic, reasons, admitted.why)
        return admitted.batch
