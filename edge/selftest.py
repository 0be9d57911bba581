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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from common.clock import SANE_WALL_MS, Clock
from common.errors import IocEdgeError
from drivers import pms5003, sds011
from drivers.base import DriverStartError
from drivers.nmea import NmeaParser
from drivers.particulate import FrameParser
from drivers.transport import EndOfStream, Transport, TransportError, open_transport
from edge.config import NodeConfig, load_config
from edge.runtime import GPIO_TYPES, open_store, store_path
from sync.records import NodeStatus, Position, TimeSource
from sync.wire import Ack, Batch, WireError, ack_topic, decode_ack, encode_batch, up_topic

__all__ = ["FAIL", "PASS", "SKIP", "CheckResult", "Selftest"]

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"

CLOCK_TOLERANCE_S = 5.0
"""Largest difference between GPS time and the system clock that passes."""

MIN_FREE_BYTES = 64 * 1024 * 1024
"""Free space the store's file system needs at least, whatever the store's cap."""

SENSORS: dict[str, tuple[type[FrameParser], Callable[[], bytes], str]] = {
    "sds011": (sds011.Sds011Parser, sds011.work_command, "SDS011"),
    "pms5003": (pms5003.Pms5003Parser, pms5003.wakeup_command, "PMS5003"),
}
"""Serial particulate sensors by config type: their parser, the command that wakes them, their name."""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``status`` is PASS, FAIL or SKIP; ``hint`` says what to do on FAIL.

    Example::

        >>> CheckResult("clock", "PASS", "2026-11-25T14:20:00Z").line()
        'PASS  clock: 2026-11-25T14:20:00Z'
    """

    name: str
    status: str
    detail: str
    hint: str = ""

    def line(self) -> str:
        """One line for a terminal: status, name, what was seen and, on failure, what to do."""
        text = f"{self.status}  {self.name}: {self.detail}"
        return f"{text} -> {self.hint}" if self.hint else text


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none"


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


def _first_records(transport: Transport, parser: Any, seconds: float) -> tuple[int, list[Any]]:
    """Feed ``parser`` from ``transport`` until it makes records or ``seconds`` pass: (bytes, records)."""
    deadline = time.monotonic() + seconds
    read, records = 0, []
    while not records and (left := deadline - time.monotonic()) > 0:
        try:
            data = transport.read(min(left, 0.2))
        except EndOfStream:
            break
        read += len(data)
        records = parser.feed(data)
    return read, records


def check_sensor(name: str, cfg: Any, clock: Clock, seconds: float) -> CheckResult:
    """A serial particulate sensor delivers a valid frame within ``seconds``: silent or garbage otherwise."""
    parser_type, wake, model = SENSORS[cfg.type]
    label = f"sensor {name}"
    try:
        transport = open_transport(cfg.transport)
    except TransportError as exc:
        return CheckResult(label, FAIL, str(exc), f"check drivers.{name}.transport and the cable")
    parser = parser_type(name, clock)
    with transport:
        # A sensor left asleep by a duty cycle sends nothing; a replay cannot take the command.
        with contextlib.suppress(TransportError):
            transport.write(wake())
        read, readings = _first_records(transport, parser, seconds)
    if readings:
        return CheckResult(label, PASS, f"{model} frames valid ({read} bytes in)")
    if not read:
        hint = f"silent: check the {model}'s power and that its TX goes to the node's RX on this port"
        return CheckResult(label, FAIL, f"no byte in {seconds:g} s", hint)
    hint = f"garbage: wrong baud rate? the {model} speaks 9600 8N1; check the port's settings and wiring"
    return CheckResult(
        label, FAIL, f"{read} bytes, no valid frame (rejects: {_counts(parser.rejects)})", hint
    )


class GpsProbe:
    """Reads an NMEA receiver until its first valid fix (once; the clock and GPS checks share it)."""

    def __init__(self, name: str, cfg: Any, clock: Clock, seconds: float) -> None:
        self.name, self.cfg, self.clock, self.seconds = name, cfg, clock, seconds
        self.error: str | None = None
        self.fix: Position | None = None
        self.read = 0
        self.parser = NmeaParser(clock)
        self._done = False

    def run(self) -> GpsProbe:
        if self._done:
            return self
        self._done = True
        try:
            transport = open_transport(self.cfg.transport)
        except TransportError as exc:
            self.error = str(exc)
            return self
        with transport:
            self.read, fixes = _first_records(transport, self.parser, self.seconds)
        self.fix = fixes[0] if fixes else None
        return self


def check_gps(probe: GpsProbe) -> CheckResult:
    """The GPS receiver reports a valid fix within the probe's time."""
    label = f"gps {probe.name}"
    if probe.error:
        return CheckResult(label, FAIL, probe.error, f"check drivers.{probe.name}.transport and the cable")
    if probe.fix is not None:
        fix = probe.fix
        return CheckResult(label, PASS, f"fix at {fix.lat:.5f}, {fix.lon:.5f} ({fix.sats or '?'} satellites)")
    parser = probe.parser
    if not probe.read:
        hint = "silent: check the receiver's power and that its TX goes to the node's RX on this port"
        return CheckResult(label, FAIL, f"no byte in {probe.seconds:g} s", hint)
    if parser.sentences <= parser.rejects.total():
        hint = "garbage: wrong baud rate? most receivers speak 4800 or 9600; check the port's settings"
        return CheckResult(label, FAIL, f"no valid sentence (rejects: {_counts(parser.rejects)})", hint)
    hint = "put the antenna under open sky (a cold start can take minutes), then run the self-test again"
    return CheckResult(label, FAIL, f"no fix in {probe.seconds:g} s ({parser.sentences} sentences)", hint)


def check_camera(name: str, cfg: Any, seconds: float) -> tuple[CheckResult, Any]:
    """The camera delivers a frame within ``seconds``: the result, and the frame's image (or None)."""
    from drivers.camera import CameraError  # OpenCV: only for nodes with a camera
    from inference.build import build_source

    label = f"camera {name}"
    hint = f"check drivers.{name}.source, the cable or network, and that the camera is on"
    deadline = time.monotonic() + seconds
    with build_source(cfg) as camera:
        while (left := deadline - time.monotonic()) > 0:
            try:
                frame = camera.read(timeout=left)
            except CameraError as exc:
                return CheckResult(label, FAIL, str(exc), hint), None
            except EndOfStream as exc:
                return CheckResult(label, FAIL, str(exc), hint), None
            if frame is not None:
                height, width = frame.image.shape[:2]
                return CheckResult(label, PASS, f"frame {width}x{height} from {camera.name}"), frame.image
    return CheckResult(label, FAIL, f"no frame from {camera.name} in {seconds:g} s", hint), None


def check_model(name: str, cfg: Any, image: Any, budget_s: float) -> CheckResult:
    """The camera's model loads and detects on one frame within ``budget_s`` (load included)."""
    from inference.build import build_detector  # onnxruntime: only for nodes with a camera
    from inference.detector import ModelError

    label = f"model {name}"
    if image is None:
        return CheckResult(label, SKIP, "no frame from the camera to run the model on")
    started = time.monotonic()
    try:
        detections = build_detector(cfg).detect(image)
    except ModelError as exc:
        hint = f"copy the model onto the node or fix drivers.{name}.model"
        return CheckResult(label, FAIL, str(exc), hint)
    took = time.monotonic() - started
    detail = f"{cfg.model.name} loaded and ran in {took:.2f} s ({len(detections)} detections)"
    if took > budget_s:
        hint = f"too slow for this board: use a smaller model or fewer drivers.{name}.threads competitors"
        return CheckResult(label, FAIL, f"{detail}, over the {budget_s:g} s budget", hint)
    return CheckResult(label, PASS, detail)


def check_gpio(name: str, cfg: Any, clock: Clock, pin_factory: Any) -> CheckResult:
    """The GPIO driver opens its pins and reads them (gpiozero, with the node's pin factory)."""
    from drivers import gpio  # gpiozero: only for nodes with GPIO sensors

    driver_type = getattr(gpio, GPIO_TYPES[cfg.type])
    driver = driver_type(name, lambda stream, records: None, clock, pin_factory=pin_factory,
                         **cfg.model_dump(exclude={"type"}))  # fmt: skip
    try:
        driver.start()
    except DriverStartError as exc:
        hint = "check the pin numbers, that no other program holds them, and the node's 'gpio' group"
        return CheckResult(f"gpio {name}", FAIL, str(exc), hint)
    driver.stop()
    return CheckResult(f"gpio {name}", PASS, f"{cfg.type} pins readable")


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
        gps = [GpsProbe(n, d, self.clock, self.seconds) for n, d in drivers.items() if d.type == "nmea"]
        results.append(check_clock(self.clock, next((p.fix for p in gps if p.run().fix), None)))
        for name, cfg in drivers.items():
            if cfg.type in SENSORS:
                results.append(check_sensor(name, cfg, self.clock, self.seconds))
        results.extend(check_gps(probe.run()) for probe in gps)
        for name, cfg in drivers.items():
            if cfg.type == "camera":
                camera, image = check_camera(name, cfg, self.seconds)
                results += [camera, check_model(name, cfg, image, self.seconds)]
        for name, cfg in drivers.items():
            if cfg.type in GPIO_TYPES:
                results.append(check_gpio(name, cfg, self.clock, self.pin_factory))
        if config.uplink.enabled:
            results.append(AckProbe(config, self.clock, self.seconds).run())
        else:
            results.append(CheckResult("broker", SKIP, "uplink.enabled is false"))
        return results
