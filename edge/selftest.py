"""The technician's hardware self-test: is every part of this node working, and if not, what to do.

Each check is a small function returning a :class:`CheckResult` (PASS, FAIL or SKIP, what was seen,
and on failure what to do); :class:`Selftest` runs them in the order a technician fixes things:
config, store, clock, serial sensors, GPS, cameras and their model, GPIO inputs, the broker and the
IOC's end-to-end ack. Each check waits at most ``seconds`` for its part.

Example::

    results = Selftest("edge.toml", seconds=5).run()
    for r in results:
        print(r.line())
"""

from __future__ import annotations

import contextlib
import datetime
import json
import secrets
import shutil
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from common.clock import SANE_WALL_MS, Clock
from common.errors import IocEdgeError
from drivers.base import RecordSource
from edge.command_kinds import CommandFailed, NodeContext
from edge.commissioning import Commissioner, Outcome
from edge.config import NodeConfig, load_config
from edge.devices import DEVICE_TYPES
from edge.devices.base import FAIL, PASS, SKIP, CheckContext, CheckResult
from edge.health import Watched
from edge.runtime import open_store, store_path
from edge.status import counts_text
from sync.records import NodeStatus, Position, TimeSource
from sync.store import Store
from sync.wire import Ack, Batch, WireError, ack_topic, decode_ack, encode_batch, up_topic

if TYPE_CHECKING:
    from edge.reconfig import ConfigFiles
    from edge.runtime import Node
    from sync.uplink import MqttUplink

__all__ = ["FAIL", "PASS", "SKIP", "CheckResult", "LiveNode", "LiveSelftest", "Selftest", "selftest_command"]

CLOCK_TOLERANCE_S = 5.0
"""Largest difference between GPS time and the system clock that passes."""

MIN_FREE_BYTES = 64 * 1024 * 1024
"""Free space the store's file system needs at least, whatever the store's cap."""


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_store(config: NodeConfig) -> CheckResult:
    """The store opens, takes a write, and its file system has room for it to grow to its cap."""
    path = store_path(config)
    try:
        store = open_store(config)
        try:
            store.set_meta("selftest", str(int(time.time())))
            size = store.size_bytes()
        finally:
            store.close()
    except (IocEdgeError, OSError) as exc:
        hint = (
            f"check that {path.parent} exists and belongs to the node's user, and that the disk is not full"
        )
        return CheckResult("store", FAIL, f"{path}: {exc}", hint)
    free = shutil.disk_usage(path.parent).free
    need = max(MIN_FREE_BYTES, config.store.max_bytes - size)
    detail = f"{path} writable, {free / 2**20:.0f} MiB free"
    if free < need:
        hint = f"free at least {need / 2**20:.0f} MiB on {path.parent} or lower store.max_bytes"
        return CheckResult("store", FAIL, f"{detail} (needs {need / 2**20:.0f} MiB)", hint)
    return CheckResult("store", PASS, detail)


def check_clock(clock: Clock, gps: Position | None, tolerance_s: float = CLOCK_TOLERANCE_S) -> CheckResult:
    """The system clock is after 2020 and, when the GPS has a fix, within ``tolerance_s`` of GPS time."""
    wall_ms = clock.now().clock_ms
    if wall_ms < SANE_WALL_MS:
        hint = "set the time: enable NTP (timedatectl set-ntp true), fit an RTC, or get a GPS fix"
        return CheckResult("clock", FAIL, f"system clock reads {_iso(wall_ms)}, before 2020", hint)
    if gps is None or gps.tsrc != TimeSource.GPS:
        return CheckResult("clock", PASS, f"{_iso(wall_ms)} (no GPS time to compare)")
    offset_s = (gps.clock_ms - gps.ts_ms) / 1000
    detail = f"{_iso(wall_ms)}, {offset_s:+.1f} s from GPS time"
    if abs(offset_s) > tolerance_s:
        hint = "the system clock is wrong: enable NTP or set it (date -s) from the GPS time"
        return CheckResult("clock", FAIL, detail, hint)
    return CheckResult("clock", PASS, detail)


class AckProbe:
    """Connects to the broker as the node, publishes one status batch and waits for the IOC's ack.

    The batch is of a store epoch of its own, so it can never stand in for a record of the node's store.
    """

    def __init__(self, config: NodeConfig, clock: Clock, seconds: float) -> None:
        self.config, self.clock, self.seconds = config, clock, seconds
        self.acks: list[Ack] = []
        self.connack: Any = None
        self.log_error = ""

    def run(self) -> CheckResult:
        cfg, device = self.config.uplink, self.config.node.device_id
        where = f"{cfg.host}:{cfg.port}"
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=device, protocol=mqtt.MQTTv5)
        if cfg.tls is not None:
            from provisioning.tls import client_context

            try:
                client.tls_set_context(client_context(cfg.tls))
            except IocEdgeError as exc:
                return CheckResult("broker", FAIL, str(exc), "provision the node again (ioc-edge provision)")
        try:
            client.on_connect = lambda c, u, f, reason, p: setattr(self, "connack", reason)
            client.on_message = self._on_message
            client.on_log = self._on_log
            client.connect(cfg.host, cfg.port, cfg.keepalive_s)
        except (IocEdgeError, OSError) as exc:
            hint = "check the network, uplink.host and uplink.port, and that the IOC's broker runs"
            return CheckResult("broker", FAIL, f"{where} unreachable: {exc}", hint)
        try:
            return self._exchange(client, device, where)
        finally:
            client.disconnect()
            client.loop(timeout=0.1)

    def _exchange(self, client: mqtt.Client, device: str, where: str) -> CheckResult:
        cfg = self.config.uplink
        deadline = time.monotonic() + self.seconds
        if (
            not self._loop_until(client, lambda: self.connack is not None, deadline)
            or self.connack.is_failure
        ):
            reason = self.connack or self.log_error or "closed before CONNACK"
            hint = "the broker refused the node: provision it again (ioc-edge provision) or ask the IOC"
            return CheckResult("broker", FAIL, f"{where} refused the connection: {reason}", hint)
        client.subscribe(ack_topic(cfg.topic_prefix, device), qos=1)
        epoch = secrets.token_hex(8)
        body = json.dumps({"selftest": True}, sort_keys=True)
        batch = Batch(device, epoch, "status", [1], [NodeStatus(*self.clock.now(), body)])
        started = time.monotonic()
        client.publish(
            up_topic(cfg.topic_prefix, device, "status"), encode_batch(batch, cfg.compression), qos=1
        )
        if not self._loop_until(client, lambda: any(a.epoch == epoch for a in self.acks), deadline):
            hint = "the broker took the batch but the IOC did not ack: is its receiver running (ioc-center)?"
            return CheckResult(
                "broker", FAIL, f"{where} connected, no ack from the IOC in {self.seconds:g} s", hint
            )
        took = time.monotonic() - started
        tls = "mutual TLS" if cfg.tls is not None else "plain MQTT"
        return CheckResult("broker", PASS, f"{where} over {tls}, IOC ack in {took:.2f} s")

    def _loop_until(self, client: mqtt.Client, done: Callable[[], bool], deadline: float) -> bool:
        while not done():
            if time.monotonic() >= deadline or client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return done()
        return True

    def _on_message(self, client: mqtt.Client, userdata: Any, message: Any) -> None:
        with contextlib.suppress(WireError):  # not an ack: the wait goes on
            self.acks.append(decode_ack(message.payload))

    def _on_log(self, client: mqtt.Client, userdata: Any, level: int, buf: str) -> None:
        if level == mqtt.MQTT_LOG_ERR and not self.log_error:
            self.log_error = buf  # paho says why a TLS handshake failed only here


class Selftest:
    """Runs every check of a node's config in order; each waits at most ``seconds`` for its part.

    The checks of the drivers are their device types' (``edge.devices``), in the order of their
    stages (serial sensors, GPS, cameras, GPIO) and then of the config.

    ``clock`` (the node's :class:`~common.clock.Clock`) and ``pin_factory`` (gpiozero's; None picks
    the board's) are the node's. After :meth:`run`, ``config`` is the node's config (None when it
    is invalid), for the commissioning record (``edge.commissioning``).

    Example::

        >>> results = Selftest("missing.toml").run()
        >>> [(r.name, r.status) for r in results]
        [('config', 'FAIL')]
    """

    def __init__(
        self,
        config_path: str | Path,
        seconds: float = 5.0,
        clock: Clock | None = None,
        pin_factory: Any = None,
    ) -> None:
        self.config_path = Path(config_path)
        self.seconds = seconds
        self.clock = clock or Clock()
        self.pin_factory = pin_factory
        self.config: NodeConfig | None = None

    def run(self) -> list[CheckResult]:
        """The results, one per check; only the config check when the config is invalid."""
        try:
            config = load_config(self.config_path)
        except IocEdgeError as exc:
            hint = f"fix {self.config_path} (ioc-edge config check {self.config_path}) and run again"
            return [CheckResult("config", FAIL, str(exc).replace("\n", "; "), hint)]
        self.config = config
        drivers = config.drivers
        results = [CheckResult("config", PASS, f"{self.config_path} valid ({len(drivers)} drivers)")]
        results.append(check_store(config))
        ctx = CheckContext(self.clock, self.seconds, self.pin_factory)
        devices = [(name, cfg, DEVICE_TYPES[cfg.type]) for name, cfg in drivers.items()]
        fixes = (d.gps_time(name, cfg, ctx) for name, cfg, d in devices if d.gps_time is not None)
        results.append(check_clock(self.clock, next((fix for fix in fixes if fix is not None), None)))
        for name, cfg, device in sorted(devices, key=lambda d: d[2].check_stage):
            results += device.check(name, cfg, ctx)
        if config.uplink.enabled:
            results.append(AckProbe(config, self.clock, self.seconds).run())
        else:
            results.append(CheckResult("broker", SKIP, "uplink.enabled is false"))
        return results


SELFTEST_SECONDS = 5.0
"""How long the ``selftest`` command watches the running node's drivers and uplink, unless it says."""
SELFTEST_MAX_S = 30.0
"""The longest a ``selftest`` command may ask for: the inbox runs nothing else meanwhile."""
SELFTEST_MAX_BYTES = 60 * 1024
"""The most the ``selftest`` command's details may take (the centre keeps 64 KiB of them)."""
TEXT_MAX = 400
"""The most characters of a check's detail or hint in the command's details."""
POLL_S = 0.1


@dataclass(frozen=True)
class LiveNode:
    """What the live self-test reads of a running node (:class:`edge.runtime.Node`): its ``config``
    and ``clock``, its sources as it runs them (``watched``), the drivers that did not start
    (``failed``), its ``uplink`` (None: ``uplink.enabled`` is false), a connection to its ``store`` of
    the calling thread, and the config file ``ioc-edge run``'s supervisor runs it from (None: none).

    Example::

        live = LiveNode.of(node, store)
    """

    config: NodeConfig
    clock: Clock
    watched: Sequence[Watched]
    failed: Mapping[str, str]
    uplink: MqttUplink | None
    store: Store
    config_files: ConfigFiles | None = None
    held: frozenset[str] = frozenset()
    """The streams the link profile in force keeps in the store: no ack is due for them."""

    @classmethod
    def of(cls, node: Node, store: Store) -> LiveNode:
        files = node.supervisor.files if node.supervisor is not None else None
        held = node.link.held() if node.link is not None else frozenset()
        return cls(node.config, node.clock, node.watched, node.failed, node.uplink, store, files, held)

    def unsent(self) -> int:
        """Records the uplink sends and the IOC has not acked yet (not those kept on the node or held)."""
        raw = self.config.uplink.send_raw
        counts = self.store.backlog()
        return sum(
            n
            for name, n in counts.items()
            if (self.store.streams[name].synced or (raw and name == "reading")) and name not in self.held
        )


@dataclass(frozen=True)
class _Seen:
    """A source's figures at one moment: what moved during the watch."""

    activity: int
    records: int
    rejects: Counter[str]


def _seen(source: RecordSource) -> _Seen:
    return _Seen(source.activity, source.records, Counter(source.rejects))


class LiveSelftest:
    """The self-test of a running node, without touching what it holds: each driver judged by its running
    source (started, in outage or away, input arriving within ``seconds``, what it rejected), the broker and
    the IOC by the uplink (connected, acks arriving), the clock against the GPS's newest fix. Opens no
    device and makes no second connection to the broker (the node's client id would push the node's own
    off). The config and store checks are those of :class:`Selftest`.

    Example::

        results = LiveSelftest(LiveNode.of(node, store), seconds=5).run()
    """

    def __init__(self, live: LiveNode, seconds: float = SELFTEST_SECONDS) -> None:
        self.live, self.seconds = live, seconds

    def run(self) -> list[CheckResult]:
        """One result per check, in :class:`Selftest`'s order; waits at most ``seconds``."""
        live = self.live
        results = [self._config(), check_store(live.config)]
        before = {w.source.name: _seen(w.source) for w in live.watched}
        acked = live.uplink.stats["acked_records"] if live.uplink else 0
        took = self._watch(before, acked)
        types = {w.source.name: DEVICE_TYPES[w.type] for w in live.watched}
        fixes = [
            fix
            for w in live.watched
            if (last_fix := types[w.source.name].last_fix) is not None
            and (fix := last_fix(w.source)) is not None
        ]
        results.append(check_clock(live.clock, max(fixes, key=lambda f: f.clock_ms, default=None)))
        ordered = sorted(live.watched, key=lambda w: types[w.source.name].check_stage)
        results += [self._driver(w, before[w.source.name], took) for w in ordered]
        results.append(self._broker(acked, took))
        return results

    def _config(self) -> CheckResult:
        config, files = self.live.config, self.live.config_files
        drivers = f"{len(config.drivers)} drivers"
        if files is None:
            return CheckResult("config", PASS, f"the running config is valid ({drivers}; no config file)")
        try:
            load_config(files.path)
        except IocEdgeError as exc:
            hint = f"fix {files.path} (ioc-edge config check): the node runs the config it started with"
            return CheckResult("config", FAIL, str(exc).replace("\n", "; "), hint)
        trial = files.trial()
        on_trial = f"; config of command {trial.seq} on trial" if trial is not None else ""
        return CheckResult(
            "config", PASS, f"{files.path} valid ({drivers}), version {files.version()[:12]}{on_trial}"
        )

    def _waiting(self, before: Mapping[str, _Seen], acked: int) -> bool:
        """Whether something the checks would see moving has not moved yet."""
        live = self.live
        for w in live.watched:
            source = w.source
            steady = source.name not in live.failed and source.running and source.outage is None
            if steady and w.quiet_s == 0 and source.activity == before[source.name].activity:
                return True
        uplink = live.uplink
        return (
            uplink is not None
            and uplink.connected
            and uplink.stats["acked_records"] == acked
            and live.unsent() > 0
        )

    def _watch(self, before: Mapping[str, _Seen], acked: int) -> float:
        """Seconds watched: until every continuous driver and the uplink moved, at most ``seconds``."""
        started = time.monotonic()
        deadline = started + self.seconds
        while self._waiting(before, acked) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        return time.monotonic() - started

    def _driver(self, watched: Watched, before: _Seen, took: float) -> CheckResult:
        source, name = watched.source, watched.source.name
        label = f"{watched.type} {name}"
        cable = f"check drivers.{name} (its transport, device and cable), then send the restart command"
        if name in self.live.failed:
            return CheckResult(label, FAIL, f"did not start: {self.live.failed[name]}", cable)
        if not source.running:
            if watched.finite:
                return CheckResult(label, SKIP, "its input ended (a file read without loop)")
            return CheckResult(
                label, FAIL, "its thread stopped", "send the restart command; see the node's log"
            )
        if source.outage is not None:
            return CheckResult(
                label, FAIL, f"in outage since {_iso(source.outage.since_ms)}: {source.outage.error}", cable
            )
        health = Counter(source.health)  # a copy: the source's thread counts into it
        lost, back = health["transport_lost"], health["transport_recovered"]
        if lost > back:
            return CheckResult(
                label, FAIL, f"its device is away: {source.failing} (lost {lost} times, back {back})", cable
            )
        now = _seen(source)
        records, rejects = now.records - before.records, now.rejects - before.rejects
        rejected = f"; rejected {counts_text(rejects, ', ')}" if rejects else ""
        if now.activity == before.activity:
            if watched.quiet_s == 0:
                hint = "silent: check the device's power and that its TX reaches the node on this port"
                return CheckResult(label, FAIL, f"running, nothing from it in {took:.1f} s", hint)
            return CheckResult(label, PASS, f"running, quiet for {took:.1f} s (it may stay quiet longer)")
        if not records and rejects.total() == now.activity - before.activity:
            hint = f"garbage: wrong baud rate? check drivers.{name}.transport's settings"
            return CheckResult(label, FAIL, f"running, nothing valid in {took:.1f} s{rejected}", hint)
        return CheckResult(label, PASS, f"running, {records} records in {took:.1f} s{rejected}")

    def _broker(self, acked: int, took: float) -> CheckResult:
        live, uplink = self.live, self.live.uplink
        if uplink is None:
            return CheckResult("broker", SKIP, "uplink.enabled is false")
        cfg, stats = live.config.uplink, Counter(uplink.stats)
        where = f"{cfg.host}:{cfg.port}"
        last = live.store.meta("last_ack_ms")
        last_ack = f"last IOC ack {_iso(int(last))}" if last else "no IOC ack yet"
        if not uplink.connected:
            hint = "check the network, uplink.host and uplink.port, and that the IOC's broker runs"
            tried = f"{stats['connects']} connects, {stats['connect_attempts']} attempts"
            return CheckResult("broker", FAIL, f"{where} not connected ({tried}); {last_ack}", hint)
        tls = "mutual TLS" if cfg.tls is not None else "plain MQTT"
        moved = stats["acked_records"] - acked
        if moved:
            return CheckResult(
                "broker", PASS, f"{where} over {tls}, IOC acked {moved} records in {took:.1f} s"
            )
        waiting = live.unsent()
        if not waiting:
            return CheckResult("broker", PASS, f"{where} over {tls}, nothing waiting; {last_ack}")
        hint = "the broker takes the batches but the IOC does not ack: is its receiver running (ioc-center)?"
        detail = f"{where} connected, {waiting} records waiting, no IOC ack in {took:.1f} s; {last_ack}"
        return CheckResult("broker", FAIL, detail, hint)


def selftest_command(body: Mapping[str, Any], context: NodeContext) -> dict[str, Any]:
    """The ``selftest`` command kind: body ``{"seconds": N}`` (optional, up to :data:`SELFTEST_MAX_S`);
    runs :class:`LiveSelftest` on the running node, records the signed commissioning record as
    ``ioc-edge selftest`` does, and answers ``passed``, ``checks`` and ``commissioning`` (what became
    of the record) in at most :data:`SELFTEST_MAX_BYTES`. Raises :class:`CommandFailed` ``bad_body``,
    or ``no_node`` when the inbox runs without a node."""
    if set(body) - {"seconds"}:
        raise CommandFailed(
            "bad_body", f'selftest takes {{"seconds": N}} or no body; got keys {sorted(body)}'
        )
    seconds = body.get("seconds", SELFTEST_SECONDS)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds <= SELFTEST_MAX_S:
        raise CommandFailed(
            "bad_body", f"seconds: {seconds!r} is not a number of seconds up to {SELFTEST_MAX_S:g}"
        )
    if context.node is None:
        raise CommandFailed("no_node", "the command inbox runs without a node to test")
    live = LiveNode.of(context.node, context.store)
    results = LiveSelftest(live, seconds).run()
    outcome = Commissioner(live.config, live.clock, who=f"centre command {context.seq}").record(results)
    return _bounded(results, outcome)


def _bounded(results: list[CheckResult], outcome: Outcome) -> dict[str, Any]:
    """The answer, every text cut to :data:`TEXT_MAX`; failures first when not every check fits (a node
    of hundreds of drivers), with how many were left out."""
    answer: dict[str, Any] = {
        "passed": all(r.status != FAIL for r in results),
        "commissioning": asdict(outcome),
        "checks": [],
        "left_out": 0,
    }
    size = len(json.dumps(answer))
    cut = [CheckResult(r.name[:TEXT_MAX], r.status, r.detail[:TEXT_MAX], r.hint[:TEXT_MAX]) for r in results]
    for result in sorted(cut, key=lambda r: r.status != FAIL):  # stable: the checks' order otherwise
        entry = asdict(result)
        size += len(json.dumps(entry)) + 2
        if size > SELFTEST_MAX_BYTES:
            answer["left_out"] += 1
        else:
            answer["checks"].append(entry)
    if not answer["left_out"]:
        answer["checks"] = [asdict(r) for r in cut]
    return answer
