"""A warning to 1,000 targets, centre -> nodes -> centre, over mutual TLS on loopback.

The real path (bench/commands.py's: a private mosquitto with mutual TLS against a fresh device CA, no
ACL; the centre's receiver and dispatcher as ``ioc-center run`` makes them, on SQLite):
``Warnings.issue`` -> the command queue -> the dispatcher, signing with the CA's warning signer ->
mosquitto -> each node's uplink -> its command inbox (verifies) -> its warning desk -> its siren
(``[outputs.siren]`` on a gpiozero ``MockFactory``, a short pattern) -> the receipts, recorded in the
node's store -> its uplink -> the receiver -> the receipts hook (``Warnings.from_receipts``).

``--nodes`` real nodes (``edge.runtime.Node``, each with its own device id, identity, store and
connection; no drivers, a siren and nothing else) in ``--node-processes`` processes. Each node records
its first status at once (the centre learns its epoch, which a command is signed for, and its place),
then every minute as by default. One warning to every node (no area, no selector: the whole fleet),
timed per target from just before ``Warnings.issue`` to its receipt stored at the centre (the
receiver's hook for ``warning_receipt``, wrapped here to note the time): ``delivered`` and ``sounded``
(``all_*_s``: the last target's; ``*_median_s``, ``*_p99_s``: per target). Target: every node
delivered within 5 s.

``--light``: light targets (:class:`LightTarget`) in place of real nodes, for a fleet of 1,000 on
a small machine. Each target's part of the path is the node's own code: its SQLite store, its
``MqttUplink`` (its own paho client and session, mutual TLS with its own certificate; the uplink's
``step`` sends the store's batches with ``encode_batch`` and applies the receiver's acks), its
``CommandInbox.handle`` with a ``CommandVerifier``, its ``WarningDesk.receive`` sounding a siren of an
``OutputBank`` on a ``MockFactory`` pin, its ``StatusReporter``. What is not the node's: no recorder
thread (a receipt is written to the store at once, as the node's recorder commits the alarm lane), no
inbox thread (a command is handled in paho's thread), no desk tick (expiries), no uplink loop polling
20 times a second (paho's own loop, blocked on the socket, and the uplink's round run when something
happened, plus every :data:`TICK_S` for its first round and ack timeouts), no status thread (one timer
per process), no control socket, no supervisor; a dropped connection is taken up again by paho's
loop with the same client, where the uplink makes a new one.

Bytes on the wire, counted by a client of its own subscribed to ``#`` (payloads; MQTT and TLS framing
not counted), per target: the signed command as published (copies the dispatcher sent again included),
the node's ``warning_receipt`` and ``command_result`` batches, and the centre's acks of them
(``wire_bytes_per_target``: their sum; each part on its own line).

Baseline, same broker, before the nodes start: a bare paho QoS 1 publish of a payload of the signed
command's size to each target's command topic, received by one paho client per target, subscribed in
processes as the nodes run (``raw_publish_all_received_s``, ``raw_bytes_per_target``).

Example: ``.venv/bin/python bench/warnings.py --light --nodes 1000 --node-processes 8``
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import cast

import paho.mqtt.client as mqtt
from _common import figure
from commands import Pki, node_file, p99, wait
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion

from common.clock import Clock
from drivers.transport import Transport
from edge.commands import CommandInbox
from edge.config import NodeConfig, load_config
from edge.outputs.bank import OutputBank
from edge.outputs.base import OutputContext
from edge.runtime import VERSION, Node, StatusReporter, open_store
from edge.warnings import WarningDesk
from ioc.broker import PrivateBroker, free_port
from ioc.commands import Dispatcher
from ioc.db import Database, now_ms
from ioc.receiver import Receiver
from ioc.warnings import Warnings, new_identifier
from provisioning.commands import WARNING_SIGNER, CommandSigner, CommandVerifier
from provisioning.pki import load_certificates
from provisioning.tls import TlsFiles, client_context
from sync.commands import Command, command_topic, encode_command
from sync.recorder import Recorder
from sync.records import WarningReceipt
from sync.store import Store
from sync.uplink import MqttUplink
from sync.warnings import Alert, Info
from sync.wire import STREAMS, Batch, decode_ack

SIREN = """
[outputs.siren]
type = "siren"
pin = 17

[patterns.short]
on_s = 0.5
off_s = 0
blasts = 1
"""
START_S = 300
"""How long the nodes may take to start: a fleet the machine cannot carry never does (see the docs)."""
STEPS = ("delivered", "sounded", "silenced")
"""The receipts timed at the centre: the node has it, its siren started, and stopped (the pattern's end)."""
TICK_S = 0.5
"""How often a light target's uplink runs a round unasked: its connection's first, and ack timeouts."""
WIRE = {"cmd": "command", "up/warning_receipt": "receipts", "up/command_result": "results"}
"""What the wire counter tells apart, by the topic's tail; acks by the stream they ack."""


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def warning_signer(pki_: Pki) -> CommandSigner:
    """The centre's warning signer, of the bench's fresh CA (as ``ioc-center ca warning-signer`` makes it)."""
    key, cert = pki_.ca.issue_command_signer("warnings", pki_.tmp, purpose=WARNING_SIGNER)
    return CommandSigner.load(key, cert)


def storm(at_ms: int) -> Alert:
    """The warning: a storm, in Vietnamese and English, no area (every node it is sent to sounds it)."""
    infos = [
        Info("vi-VN", "Bão", "Immediate", "Severe", "Observed", "Bão số 9", "", "Tàu thuyền vào bờ ngay"),
        Info("en-US", "Storm", "Immediate", "Severe", "Observed", "Typhoon No. 9", "", "All boats to shore"),
    ]
    sender = "ioc@bench"
    return Alert.make(
        new_identifier(sender, at_ms), sender, at_ms, "Alert", infos, [], at_ms + 3_600_000, pattern="short"
    )


def command_size(alert: Alert, signer: CommandSigner) -> int:
    """Bytes of ``alert``'s signed ``warning`` command as the dispatcher publishes it."""
    command = Command(
        "bench-0000", "0" * 16, 1, "warning", alert.to_json(), "bench", alert.sent_ms, alert.expires_ms
    )
    return len(encode_command(signer.sign(command)))


class Arrivals:
    """When each target's receipts were stored at the centre: the receiver's hook for ``warning_receipt``
    (``Warnings.from_receipts``), wrapped to note the time (``time.monotonic``) each step first came."""

    def __init__(self, receiver: Receiver, identifier: str) -> None:
        self.identifier = identifier
        self.at: dict[str, dict[str, float]] = {step: {} for step in STEPS}
        self._check = receiver.checks["warning_receipt"]
        receiver.checks["warning_receipt"] = self._stored

    def _stored(self, batch: Batch) -> None:
        self._check(batch)
        now = time.monotonic()
        for receipt in map(WarningReceipt._make, batch.records):
            if receipt.identifier == self.identifier and receipt.event in self.at:
                self.at[receipt.event].setdefault(batch.device, now)


def mqtt_client(port: int, tls: TlsFiles, client_id: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.tls_set_context(client_context(tls, "bench"))
    return client


def run_nodes(files: list[Path], started: Synchronized, ready: Event, stop: Event) -> None:
    """A process of nodes, each with its siren on a mock pin, until ``stop`` (``started`` counts them
    up); each records its first status at once (the centre needs a node's epoch to sign for it), then
    every minute."""
    nodes = []
    for path in files:
        if stop.is_set():
            break
        node = Node(load_config(path), pin_factory=MockFactory())
        node.start()
        assert node.status is not None
        node.status.report()  # now: its own thread's first is a minute on, so the two never meet
        nodes.append(node)
        with started.get_lock():
            started.value += 1
    ready.set()
    stop.wait()
    stopping = [threading.Thread(target=n.stop) for n in nodes]  # at once: each waits for its threads
    for thread in stopping:
        thread.start()
    for thread in stopping:
        thread.join(60)


class LightRecorder:
    """What a light target lends its warning desk (``append``, the sink of its receipts) and its status
    reporter in place of the node's ``Recorder``: each append written to the store at once (the node's
    recorder commits the alarm lane at once too, and a receipt is all a light target records), then
    ``changed`` called (the target sends it)."""

    def __init__(self, store: Store, lock: threading.RLock, changed: Callable[[], None]) -> None:
        self.store, self.lock, self.changed = store, lock, changed

    def append(self, stream: str, records: list) -> None:
        with self.lock:
            self.store.write({stream: records})
        self.changed()

    def add_counts(self, group: str, counts: dict[str, int]) -> None:
        with self.lock:
            self.store.add_counts(group, counts)


def no_transport(name: str, cfg: object) -> Transport:
    """A light target's outputs are a siren on a mock pin: none opens a transport."""
    raise ValueError(f"outputs.{name}: a light target opens no transport")


class LightTarget:
    """One target of ``--light``: a node's store, command inbox, warning desk (a siren on a
    ``MockFactory`` pin), status reporter and ``MqttUplink`` (its own client, mutual TLS with its own
    certificate), without the node's threads. The uplink's paho client runs paho's own loop
    (``loop_start``: a thread blocked on its socket, not the uplink's 20 rounds a second), and the
    uplink's :meth:`~sync.uplink.MqttUplink.step` runs when something happened: a command handled
    (``CommandInbox.handle`` on this target's store, in paho's thread), a receipt written (a siren's
    thread too), an ack, and on :meth:`tick` (the process's timer: connect, ack timeouts).

    Example::

        target = LightTarget(load_config(path), MockFactory())
        target.connect()
        target.tick()
    """

    def __init__(self, config: NodeConfig, pin_factory: MockFactory) -> None:
        cfg, tls = config, config.uplink.tls
        assert tls is not None
        device = cfg.node.device_id
        clock = Clock()
        self.lock = threading.RLock()  # one store connection: paho's thread, a siren's, the timer's
        self.store = open_store(cfg)
        recorder = LightRecorder(self.store, self.lock, self.tick)
        self.bank = OutputBank(cfg.outputs, cfg.patterns, OutputContext(pin_factory, no_transport, clock))
        self.warnings = WarningDesk(
            device,
            self.bank,
            recorder.append,
            clock,
            lambda: None,
            exercise_pattern=cfg.warnings.exercise_pattern,
        )
        verifier = CommandVerifier(load_certificates(tls.ca)[0], device)
        # the kind ``warning`` reaches the desk as ``node.warnings``: this target is that node
        self.inbox = CommandInbox(lambda: self.store, verifier, clock, device, VERSION, node=cast(Node, self))
        send = {s.name for s in STREAMS.values() if s.synced}
        self.uplink = MqttUplink(self.store, device, cfg.uplink, send, on_command=self._command)
        self._on_message = self.uplink._client.on_message
        self.uplink._client.on_message = self._message
        sources = {"commands": lambda: self.inbox.counts, "warnings": lambda: self.warnings.counts}
        facts = {"warnings": self.warnings.describe, "location": lambda: None, "mobile": lambda: False}
        self.status = StatusReporter(
            self.store, cast(Recorder, recorder), sources, clock, cfg.store.status_interval_s, facts=facts
        )

    def connect(self) -> bool:
        """Connect as the uplink does (its session, mutual TLS) and start paho's loop; False: refused."""
        if not self.uplink._connect():
            return False
        self.uplink._client.loop_start()
        return True

    def tick(self) -> None:
        """One round of the uplink (acks applied, what timed out sent again, what is new sent)."""
        with self.lock:
            if self.uplink.connected:
                self.uplink.step(time.monotonic())

    def report(self) -> None:
        """Record the status as the node's reporter does (the centre learns the epoch and the place)."""
        with self.lock:
            self.status.report()

    def _command(self, payload: bytes) -> None:
        with self.lock:
            self.inbox.counts[self.inbox.handle(self.store, payload)] += 1

    def _message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self._on_message(client, userdata, message)
        self.tick()

    def stop(self) -> None:
        """Disconnect, silence the siren, close the store."""
        self.uplink.connected = False  # a disconnection asked for: the uplink does not log it as lost
        self.uplink._client.disconnect()
        self.uplink._client.loop_stop()
        self.bank.close()
        with self.lock:
            self.store.close()


def run_light(files: list[Path], started: Synchronized, ready: Event, stop: Event) -> None:
    """A process of light targets (:class:`LightTarget`) until ``stop`` (``started`` counts them up):
    each connected and its first status recorded at once, then one timer for all of them (every
    :data:`TICK_S`: the uplinks' rounds; every ``status_interval_s``: their status)."""
    targets = []
    for path in files:
        if stop.is_set():
            break
        target = LightTarget(load_config(path), MockFactory())
        while not target.connect() and not stop.wait(1):
            pass
        target.report()
        targets.append(target)
        with started.get_lock():
            started.value += 1
    ready.set()
    interval_s = targets[0].status.interval_s if targets else 60
    next_status = time.monotonic() + interval_s
    while not stop.wait(TICK_S):
        for target in targets:
            target.tick()
        if time.monotonic() >= next_status:
            next_status += interval_s
            for target in targets:
                target.report()
    for target in targets:
        target.stop()


def count_wire(port: int, tls: TlsFiles, ready: Event, stop: Event, out: Queue) -> None:
    """Payload bytes and messages the broker carries on every topic (``#``) until ``stop``, by kind
    (:data:`WIRE`; acks by the stream they ack; the rest ``other``), and when each device's first
    command passed (``time.monotonic``), put on ``out``."""
    counts: Counter[str] = Counter()
    published: dict[str, float] = {}

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        _, _, device, tail = message.topic.split("/", 3)
        if tail == "cmd":
            published.setdefault(device, time.monotonic())
        kind = WIRE.get(tail, "other")
        if tail == "ack":
            kind = (
                "acks"
                if decode_ack(message.payload).stream in ("warning_receipt", "command_result")
                else kind
            )
        counts[kind] += len(message.payload)
        counts[f"{kind}_messages"] += 1

    client = mqtt_client(port, tls, "bench-wire")
    client.on_message = on_message
    client.on_connect = lambda c, *args: c.subscribe("#", qos=1)
    client.on_subscribe = lambda *args: ready.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()
    out.put((dict(counts), published))


def raw_subscribers(port: int, tls: TlsFiles, topics: list[str], ready: Event, out: Queue) -> None:
    """A paho client per topic, subscribed at QoS 1; once each has a message (or after 60 s), when each
    came (``time.monotonic``, one clock for every process) is put on ``out``."""
    received: dict[str, float] = {}
    subscribed = threading.Semaphore(0)
    clients = []
    for topic in topics:
        client = mqtt_client(port, tls, f"bench-raw-{topic.split('/')[2]}")
        client.on_connect = lambda c, u, f, rc, p, topic=topic: c.subscribe(topic, qos=1)
        client.on_subscribe = lambda *args: subscribed.release()
        client.on_message = lambda c, u, m: received.setdefault(m.topic, time.monotonic())
        client.connect("127.0.0.1", port)
        client.loop_start()
        clients.append(client)
    for _ in topics:
        subscribed.acquire(timeout=60)
    ready.set()
    deadline = time.monotonic() + 60
    while len(received) < len(topics) and time.monotonic() < deadline:
        time.sleep(0.01)
    out.put(received)
    for client in clients:
        client.disconnect()
        client.loop_stop()


def raw_publish(port: int, tls: TlsFiles, topics: list[str], size: int, processes: int) -> float:
    """A bare paho QoS 1 publish of ``size`` bytes to each topic, one client publishing as the
    dispatcher does; seconds from the first publish until every subscriber has its message."""
    spawn = multiprocessing.get_context("spawn")
    out: Queue = spawn.Queue()
    procs = []
    for k in range(processes):
        ready = spawn.Event()
        proc = spawn.Process(target=raw_subscribers, args=(port, tls, topics[k::processes], ready, out))
        proc.start()
        procs.append((proc, ready))
    for _, ready in procs:
        ready.wait(120)
    publisher = mqtt_client(port, tls, "bench-raw-publisher")
    publisher.max_inflight_messages_set(100)  # the dispatcher's
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    payload = b"x" * size
    t0 = time.monotonic()
    for topic in topics:
        publisher.publish(topic, payload, qos=1)
    received: dict[str, float] = {}
    for _ in procs:
        received |= out.get(timeout=120)
    for proc, _ in procs:
        proc.join(60)
    publisher.disconnect()
    publisher.loop_stop()
    if len(received) < len(topics):
        raise SystemExit(
            f"raw baseline: {len(topics) - len(received)} of {len(topics)} subscribers got nothing"
        )
    return max(received.values()) - t0


def start_nodes(
    files: list[Path],
    processes: int,
    stop: Event,
    procs: list[multiprocessing.process.BaseProcess],
    light: bool = False,
) -> None:
    """``files``' nodes (``light``: light targets) in ``processes`` processes (appended to ``procs``),
    until ``stop``; exits saying how many had started when they are not all up within :data:`START_S`."""
    spawn = multiprocessing.get_context("spawn")
    started = spawn.Value("i", 0)
    readies = []
    for k in range(processes):
        ready = spawn.Event()
        proc = spawn.Process(
            target=run_light if light else run_nodes, args=(files[k::processes], started, ready, stop)
        )
        proc.start()
        procs.append(proc)
        readies.append(ready)
    t0 = time.monotonic()
    while not all(r.is_set() for r in readies):
        if time.monotonic() - t0 > START_S:
            raise SystemExit(
                f"{started.value} of {len(files)} nodes started after {START_S} s, load average "
                f"{os.getloadavg()[0]:.0f}: this machine cannot carry that many (see --nodes)"
            )
        time.sleep(5)
        progress(f"{started.value} of {len(files)} nodes started")


def seconds(arrivals: dict[str, float], t0: float) -> list[float]:
    return sorted(at - t0 for at in arrivals.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000, help="targets: nodes, each with a siren")
    parser.add_argument("--node-processes", type=int, default=8, help="processes the nodes run in")
    parser.add_argument(
        "--light", action="store_true", help="light targets (LightTarget), not Nodes: see the docstring"
    )
    args = parser.parse_args()
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        pki_ = Pki(tmp)
        warnings_signer = warning_signer(pki_)
        port = free_port()
        with PrivateBroker(tmp / "broker", port, listeners=pki_.listeners(port)):
            centre_tls = pki_.identity("ioc-centre")
            devices = [f"bench-{i:04d}" for i in range(args.nodes)]
            alert = storm(now_ms())
            size = command_size(alert, warnings_signer)
            progress(f"raw baseline: {args.nodes} subscribers, a {size}-byte publish to each")
            topics = [command_topic("ioc/v1", d) for d in devices]
            raw_s = raw_publish(port, centre_tls, topics, size, args.node_processes)

            db = Database(f"sqlite:///{tmp / 'ioc.db'}")
            receiver = Receiver(db, "127.0.0.1", port, client_id="bench-receiver", tls=centre_tls)
            dispatcher = Dispatcher(
                db, pki_.signer, "127.0.0.1", port, warning_signer=warnings_signer, tls=centre_tls
            )
            arrivals = Arrivals(receiver, alert.identifier)
            receiver.start()
            dispatcher.start()
            assert receiver.subscribed.wait(10)
            progress(f"provisioning {args.nodes} nodes")
            files = []
            for device in devices:
                path = node_file(pki_, device, port)
                path.write_text(
                    path.read_text().replace("status_interval_s = 1\n", "status_interval_s = 60\n") + SIREN
                )
                files.append(path)
            progress(f"starting them in {args.node_processes} processes")
            stop = spawn.Event()
            procs: list[multiprocessing.process.BaseProcess] = []
            try:
                start_nodes(files, args.node_processes, stop, procs, args.light)
                figures = warn_all(db, port, centre_tls, alert, arrivals, devices)
            finally:
                stop.set()
                progress("stopping the nodes")
                for proc in procs:
                    proc.join(120)
                    if proc.is_alive():  # a node that would not stop: its files are about to go
                        proc.terminate()
            dispatcher.stop()
            receiver.stop()
            db.close()

    figure("targets", args.nodes)
    figure("node_processes", args.node_processes)
    figure("light", int(args.light))
    for name, value, unit in figures:
        figure(name, value, unit)
    figure("raw_publish_all_received_s", raw_s, "s")
    figure("raw_bytes_per_target", size, "B")


def warn_all(
    db: Database, port: int, tls: TlsFiles, alert: Alert, arrivals: Arrivals, devices: list[str]
) -> list[tuple[str, float, str]]:
    """Issue ``alert`` to every node once the centre knows them all, wait for every receipt, count the
    wire; the figures as ``(name, value, unit)``. Exits naming what did not come."""
    warnings = Warnings(db)

    def known() -> bool:
        epochs = db.fetch("SELECT COUNT(DISTINCT device) AS n FROM epochs")[0]["n"]
        return epochs >= len(devices) and len(warnings.places()) >= len(devices)

    wait(known, 300, "every node's first status at the centre", poll_s=0.2)
    spawn = multiprocessing.get_context("spawn")
    counted, stop, out = spawn.Event(), spawn.Event(), spawn.Queue()
    counter = spawn.Process(target=count_wire, args=(port, tls, counted, stop, out))
    counter.start()
    counted.wait(30)
    progress(f"issuing the warning to {len(devices)} nodes")
    t0, t0_ms = time.monotonic(), now_ms()
    issued = warnings.issue(alert, None, "bench", t0_ms)
    issue_s = time.monotonic() - t0
    assert len(issued.targets) == len(devices), len(issued.targets)

    def every(step: str) -> Callable[[], bool]:
        return lambda: len(arrivals.at[step]) == len(devices)

    try:
        for step in STEPS:
            wait(every(step), 120, f"every target's {step} receipt", poll_s=0.01)
            progress(f"every target {step}: {max(arrivals.at[step].values()) - t0:.2f} s")
        applied = "SELECT COUNT(*) AS n FROM commands WHERE kind = 'warning' AND state = 'applied'"
        wait(lambda: db.fetch(applied)[0]["n"] == len(devices), 60, "every command applied", poll_s=0.05)
        time.sleep(2)  # the last batches' acks
    finally:
        stop.set()
        counts, first_copies = out.get(timeout=30)
        counter.join(30)
    wire: Counter[str] = Counter(counts)
    receipts = warnings.receipts(alert.identifier)
    missing = [r.device for r in receipts if not (r.delivered_ms and r.sounded_ms and r.silenced_ms)]
    if missing:
        raise SystemExit(f"{len(missing)} targets without every receipt at the centre, first {missing[0]}")
    delivered, sounded = seconds(arrivals.at["delivered"], t0), seconds(arrivals.at["sounded"], t0)
    published = seconds(first_copies, t0)
    # the node's own time of its receipt (the same machine's clock): before its recorder and uplink
    on_node = sorted((r.delivered_ms - t0_ms) / 1000 for r in receipts if r.delivered_ms)
    n = len(devices)
    parts = ("command", "receipts", "results", "acks")
    return [
        ("issue_s", issue_s, "s"),
        ("all_delivered_s", delivered[-1], "s"),
        ("all_sounded_s", sounded[-1], "s"),
        ("delivered_median_s", statistics.median(delivered), "s"),
        ("delivered_p99_s", p99(delivered), "s"),
        ("sounded_median_s", statistics.median(sounded), "s"),
        ("sounded_p99_s", p99(sounded), "s"),
        ("published_median_s", statistics.median(published), "s"),
        ("published_all_s", published[-1], "s"),
        ("node_delivered_median_s", statistics.median(on_node), "s"),
        ("node_delivered_all_s", on_node[-1], "s"),
        ("wire_bytes_per_target", sum(wire[p] for p in parts) / n, "B"),
        *((f"wire_{p}_bytes_per_target", wire[p] / n, "B") for p in parts),
        *((f"wire_{p}_messages_per_target", wire[f"{p}_messages"] / n, "") for p in parts),
    ]


if __name__ == "__main__":
    main()
