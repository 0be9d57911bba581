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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from common.clock import SANE_WALL_MS, Clock
from common.errors import IocEdgeError
from edge.config import NodeConfig, load_config
from edge.devices import DEVICE_TYPES
from edge.devices.base import FAIL, PASS, SKIP, CheckContext, CheckResult
from edge.runtime import open_store, store_path
from sync.records import NodeStatus, Position, TimeSource
from sync.wire import Ack, Batch, WireError, ack_topic, decode_ack, encode_batch, up_topic

__all__ = ["FAIL", "PASS", "SKIP", "CheckResult", "Selftest"]

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
