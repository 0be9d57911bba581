"""The MQTT uplink: sends the store's records to the IOC and deletes them once the IOC acked them.

The store is the only truth. paho keeps its in-flight QoS 1 messages in
memory only, and a broker restarted without persistence forgets what it
PUBACKed, so a batch leaves the store only when the IOC's end-to-end ack
(published after its database commit) arrives. On every (re)connection the
uplink sends everything still in the store again, and a batch whose ack
does not come within ``ack_timeout_s`` is sent again; the IOC de-duplicates
on (device, epoch, stream, seq). Each connection is made by a new paho
client: a reused one would also resend, on its own, what the broker had not
PUBACKed when the link dropped, so each such batch would cross a metered
link twice after a reconnection.

Alarms (priority 0) are sent before anything else and are not held back by
the in-flight window, so an alarm never waits behind a backlog.

On an expensive link some streams wait in the store (``held``: the link
profile's ``hold``, see ``edge.link``) and go once a cheap link is up.

With ``on_command``, the uplink also reads the node's command topic (``sync.commands``) on the same
connection and session, so commands published while the node was away wait at the broker for it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Collection

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from common.backoff import Backoff
from common.component import Component
from provisioning.tls import client_context
from sync.commands import command_topic
from sync.store import Store
from sync.wire import Ack, Batch, InvalidRecords, WireError, ack_topic, decode_ack, encode_batch, up_topic

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600
"""How long the broker keeps the node's session (its ack subscription and queued acks) while it is away."""


class MqttUplink(Component):
    """Sends the store's backlog over MQTT v5 (QoS 1, persistent session, client id = device id).

    ``config`` is the node's ``[uplink]`` section (``edge.config.UplinkConfig``; with ``tls``,
    mutual TLS: a missing or unusable key or certificate raises ``PkiError`` here, naming the file);
    ``send`` the streams to send (default: those the wire format marks synced); ``held`` returns
    those to leave in the store for now (the link profile's ``hold``; default none).
    ``on_command`` takes each payload of the node's command topic; it runs in the uplink's thread,
    so it must be quick (``edge.commands.CommandInbox.offer`` queues it). ``stats`` counts batches
    and records sent, resent and acked.

    Example::

        uplink = MqttUplink(Store("store.db"), "vessel-042", UplinkConfig(host="127.0.0.1"))
        uplink.start()
        ...
        uplink.stop()
    """

    def __init__(
        self,
        store: Store,
        device_id: str,
        config,
        send: set[str] | None = None,
        held: Callable[[], Collection[str]] = frozenset,
        on_command: Callable[[bytes], None] | None = None,
    ) -> None:
        super().__init__("uplink")
        self.store = store
        self.device_id = device_id
        self.config = config
        self.stats: Counter[str] = Counter()
        self.connected = False
        # By default the synced streams; ``send`` names them explicitly (raw readings too, say).
        chosen = [s for s in store.streams.values() if (s.name in send if send is not None else s.synced)]
        self._streams = sorted(chosen, key=lambda s: s.priority)
        self._held = held
        self._on_command = on_command
        self._command_topic = command_topic(config.topic_prefix, device_id)
        self._cursor: dict[str, int] = {}
        self._inflight: dict[tuple[str, int, int], float] = {}
        # (the store's version, the held streams) at the last full round; None: read next round
        self._read_at: tuple[tuple[int, int], frozenset[str]] | None = None
        self._acks: list[Ack] = []
        self._last_error = ""
        self._backoff = Backoff(config.backoff_min_s, config.backoff_max_s)
        # Read once: after `ioc-edge provision --rotate` the node is restarted to present the new key.
        tls = getattr(config, "tls", None)
        self._tls = client_context(tls) if tls is not None else None
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.device_id, protocol=mqtt.MQTTv5)
        if self._tls is not None:
            client.tls_set_context(self._tls)
        client.max_inflight_messages_set(self.config.max_inflight + 16)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_log = self._on_log
        return client

    # -- paho callbacks (run in the uplink's own thread, inside client.loop) ---------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("event=uplink_refused reason=%s", reason_code)
            return
        self.connected = True
        self._backoff.reset()
        self.stats["unreachable"] = 0
        self.stats["refused"] = 0
        self.stats["connects"] += 1
        client.subscribe(ack_topic(self.config.topic_prefix, self.device_id), qos=1)
        if self._on_command is not None:
            client.subscribe(self._command_topic, qos=1)
        # Whatever was in flight may be lost with the old connection: send it all again.
        self._cursor = {s.name: 0 for s in self._streams}
        self._inflight.clear()
        self._read_at = None
        log.info("event=uplink_connected host=%s port=%d", self.config.host, self.config.port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected and not self._stop.is_set():
            log.warning("event=uplink_lost reason=%s", reason_code)
        self.connected = False

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self._command_topic:
            if self._on_command is not None:
                self._on_command(message.payload)
            return
        try:
            self._acks.append(decode_ack(message.payload))
        except WireError as exc:
            self.stats["bad_acks"] += 1
            log.warning("event=bad_ack topic=%s error=%s", message.topic, exc)

    def _on_log(self, client, userdata, level, buf) -> None:
        # paho reports why a socket failed only here (e.g. the broker's TLS alert): the first error
        # since the last connection attempt is the cause, what follows its consequences.
        if level == mqtt.MQTT_LOG_ERR and not self._last_error:
            self._last_error = buf

    def _refused(self) -> None:
        """The link closed before the broker accepted the node: a refused certificate, most likely."""
        if self.stats["refused"] == 0:
            log.warning(
                "event=uplink_refused host=%s port=%d error=%s",
                self.config.host,
                self.config.port,
                self._last_error or "closed before CONNACK",
            )
        self.stats["refused"] += 1

    # -- the loop --------------------------------------------------------------------------------

    def _run(self) -> None:
        linked = False  # a socket is open (CONNACK may still be on its way; see self.connected)
        while not self._stop.is_set():
            if not linked:
                linked = self._connect()
                if not linked:
                    self._stop.wait(self._backoff.next())
                    continue
            if self._client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                if not self.connected:
                    self._refused()
                linked = self.connected = False
                self._stop.wait(self._backoff.next())
                continue
            if self.connected:
                try:
                    self.step(time.monotonic())
                except sqlite3.Error:
                    # The store may be busy or full for a while; the next round tries again.
                    self.stats["store_errors"] += 1
                    log.exception("event=uplink_store_error")
                    self._stop.wait(self._backoff.next())
        if self.connected:
            self._client.disconnect()
            self._client.loop(timeout=0.1)

    def _connect(self) -> bool:
        first = self.stats["connect_attempts"] == 0
        self.stats["connect_attempts"] += 1
        self._last_error = ""
        if not first:
            self._client = self._make_client()  # see the module docstring: no resend by paho
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        try:
            # clean_start=False: the broker keeps the session (the ack subscription, acks queued
            # while the node was away) across connections; paho's default would wipe it each time.
            cfg = self.config
            self._client.connect(cfg.host, cfg.port, cfg.keepalive_s, clean_start=False, properties=props)
            return True
        except OSError as exc:
            if first or self.stats["unreachable"] == 0:
                log.warning(
                    "event=uplink_unreachable host=%s port=%d error=%s",
                    self.config.host,
                    self.config.port,
                    exc,
                )
            self.stats["unreachable"] += 1
            return False

    def step(self, now: float) -> None:
        """One round: apply acks, resend what timed out, send what the window allows.

        The streams are read only when something may have changed since the last full round: records
        were added (:meth:`Store.version`: the recorder's, a command's result), acks freed the window,
        a batch timed out, the held streams changed, or a publish could not be queued. An idle node
        then costs one pragma a round, not a query per stream (20 rounds a second).
        """
        changed = False
        if self._acks:
            acks, self._acks = self._acks, []
            for ack in acks:
                self._inflight.pop((ack.stream, ack.first, ack.last), None)
            self.stats["acked_records"] += self.store.acknowledge(acks)
            changed = True
        for key, deadline in list(self._inflight.items()):
            if deadline < now and key in self._inflight:
                self._resend(key[0])
                changed = True
        held = frozenset(self._held())
        version = self.store.version()
        if not changed and (version, held) == self._read_at:
            return
        self._read_at = (version, held)
        for stream in self._streams:
            if stream.name in held:
                continue  # left in the store until a link profile without the hold is in force
            while stream.priority == 0 or len(self._inflight) < self.config.max_inflight:
                if not self._send_one(stream.name, now):
                    break

    def _resend(self, stream: str) -> None:
        keys = [k for k in self._inflight if k[0] == stream]
        self._cursor[stream] = min(k[1] for k in keys) - 1
        for k in keys:
            del self._inflight[k]
        self.stats["resent_batches"] += len(keys)
        log.info("event=ack_timeout stream=%s batches=%d action=resend", stream, len(keys))

    def _send_one(self, stream: str, now: float) -> bool:
        limit = min(
            self.config.batch_records, self.store.streams[stream].max_batch or self.config.batch_records
        )
        seqs, records = self.store.read(stream, self._cursor.get(stream, 0), limit)
        if not seqs:
            return False
        try:
            payload = encode_batch(
                Batch(self.device_id, self.store.epoch, stream, seqs, records), self.config.compression
            )
        except InvalidRecords as exc:
            # A record the IOC must refuse would block its stream for ever: set it aside, counted.
            bad = [seqs[i] for i in exc.rows]
            self.store.discard(stream, bad)
            log.warning("event=invalid_records stream=%s count=%d error=%s", stream, len(bad), exc)
            return True
        info = self._client.publish(
            up_topic(self.config.topic_prefix, self.device_id, stream), payload, qos=1
        )
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._read_at = None  # not queued: read again next round
            return False
        self._inflight[(stream, seqs[0], seqs[-1])] = now + self.config.ack_timeout_s
        self._cursor[stream] = seqs[-1]
        self.stats["sent_batches"] += 1
        self.stats["sent_records"] += len(seqs)
        self.stats["sent_bytes"] += len(payload)
        return True
