"""The node's runtime: starts the components in order, stops them in reverse.

Data flows one way: drivers -> recorder (the store) -> uplink -> IOC. The
status reporter only reads the others' counters and writes the node's own
status record, which syncs like any other.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

from common.clock import Clock
from common.component import Component
from common.notify import SdNotify, ServiceWatchdog
from drivers.base import DriverStartError, Outage, RecordSource
from drivers.transport import ReopeningTransport, Transport
from edge.alarms import AlarmEngine, Rule
from edge.config import NodeConfig
from edge.control import CONTROL_SOCKET, ControlServer
from edge.devices import DEVICE_TYPES
from edge.devices.base import BuildContext
from edge.devices.camera import CameraDriverConfig
from edge.devices.transport import TransportConfig, open_transport
from edge.health import PipelineHealth, Watched
from edge.link import LinkMonitor
from edge.metrics import NodeFigures, NodeMetrics
from edge.outputs.bank import OutputBank
from edge.outputs.base import OutputContext
from edge.summary import Summarizer
from edge.warnings import WarningDesk
from sync.recorder import Recorder
from sync.records import NodeStatus
from sync.store import Store
from sync.uplink import MqttUplink
from sync.wire import STREAMS

if TYPE_CHECKING:
    from edge.commands import CommandInbox
    from edge.geofence import GeofenceMonitor
    from edge.reconfig import Supervisor
    from edge.thinning import LiveTrack
    from edge.track import TrackLog
    from inference.camera import Camera

log = logging.getLogger(__name__)

VERSION = "0.1.0"

T = TypeVar("T")


def store_path(config: NodeConfig) -> Path:
    """Where the node's store lives: ``store.path`` under ``node.state_dir`` unless absolute."""
    return config.node.state_dir / config.store.path


def open_store(config: NodeConfig) -> Store:
    """A new connection to the node's store, with its size cap."""
    return Store(store_path(config), max_bytes=config.store.max_bytes, synchronous=config.store.synchronous)


def _reader(source: RecordSource, read: Callable[[RecordSource], T]) -> Callable[[], T]:
    """``read(source)`` each time it is called: binds each source of a loop to its own reader (the
    ``lambda d=d:`` idiom does too, but mypy cannot type a lambda's default argument)."""
    return lambda: read(source)


class StatusReporter(Component):
    """Every ``interval_s``, saves the components' counters and records a ``status`` record.

    Counters are saved as increments, so they keep adding up across restarts
    of the node; the status record carries the backlog, drops and the
    counters of this run, for the IOC's view of the node, and the drivers
    that deliver nothing now (``outages``: each one's error and since when),
    and the state of components that have one to tell (``facts``: the link
    profile in force, how far the track log is chained and signed).
    """

    def __init__(
        self,
        store: Store,
        recorder: Recorder,
        sources: dict[str, Callable[[], Counter[str]]],
        clock: Clock,
        interval_s: float,
        failed: dict[str, str] | None = None,
        outages: dict[str, Callable[[], Outage | None]] | None = None,
        facts: Mapping[str, Callable[[], object]] | None = None,
        config_version: Callable[[], str] | None = None,
    ) -> None:
        super().__init__("status")
        self.config_version = config_version
        self.store, self.recorder, self.sources, self.clock = store, recorder, sources, clock
        self.failed = failed if failed is not None else {}
        self.outages = outages or {}
        self.facts = facts or {}
        self.interval_s = interval_s
        self._saved: dict[str, Counter[str]] = {name: Counter() for name in sources}

    def _after_stop(self) -> None:
        self.report()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.report()

    def report(self) -> None:
        current = {name: Counter(read()) for name, read in self.sources.items()}
        outages = {name: asdict(o) for name, read in self.outages.items() if (o := read()) is not None}
        facts = {name: read() for name, read in self.facts.items()}
        for name, counts in current.items():
            delta = counts - self._saved[name]
            if delta:
                self.recorder.add_counts(name, dict(delta))
            self._saved[name] = counts
        body = {
            "version": VERSION,
            "epoch": self.store.epoch,
            "backlog": self.store.backlog(),
            "drops": self.store.drops(),
            "counters": {name: dict(c) for name, c in current.items() if c},
            "failed_drivers": self.failed,
            "outages": outages,
            **facts,
        }
        if self.config_version is not None:  # the config file's now: an edit on site shows as drift
            body["config_version"] = self.config_version()
        # Kept in the store's metadata too, for `ioc-edge status` on the node itself.
        self.store.set_meta("failed_drivers", json.dumps(self.failed, sort_keys=True))
        self.store.set_meta("outages", json.dumps(outages, sort_keys=True))
        self.store.set_meta("facts", json.dumps(facts, sort_keys=True))
        stamp = self.clock.now()
        self.recorder.append("status", [NodeStatus(*stamp, json.dumps(body, sort_keys=True))])


class Node:
    """An edge node built from its config.

    ``pin_factory`` is gpiozero's (tests and demos pass a ``MockFactory``;
    None picks the board's).

    Example::

        node = Node(load_config("edge.toml"))
        node.start()
        ...
        node.stop()
    """

    def __init__(
        self,
        config: NodeConfig,
        clock: Clock | None = None,
        pin_factory=None,
        supervisor: Supervisor | None = None,
    ) -> None:
        self.config = config
        self.supervisor = supervisor
        """``ioc-edge run``'s (``edge.reconfig``): it knows the config file, and tries pushed configs."""
        self.clock = clock or Clock()
        self.pin_factory = pin_factory
        self.recorder: Recorder | None = None
        self.uplink: MqttUplink | None = None
        self.commands: CommandInbox | None = None
        self.link: LinkMonitor | None = None
        self.live: LiveTrack | None = None
        """The live position stream, thinned for the link; None without ``[link]``: every position."""
        self.drivers: list[RecordSource] = []
        """The sources of records (drivers, GPIO sensors, cameras), in the config's order."""
        self.watched: list[Watched] = []
        """The same, each with its device type and stall rule, for the health and the metrics."""
        self.summarizer: Summarizer | None = None
        self.alarms: AlarmEngine | None = None
        self.geofences: GeofenceMonitor | None = None
        self.status: StatusReporter | None = None
        self.health: PipelineHealth | None = None
        self.metrics: NodeMetrics | None = None
        self.track: TrackLog | None = None
        self.outputs: OutputBank | None = None
        self.warnings: WarningDesk | None = None
        """The warnings in force and the outputs they drive; before the commands, which bring warnings."""
        self.control: ControlServer | None = None
        self.failed: dict[str, str] = {}
        """Drivers that could not start, with why."""
        self._started: list = []
        self._opened: list = []  # transports: the node opens them, so the node closes them

    def start(self) -> None:
        self.init_store()
        self.start_recorder()
        self.start_link()
        self.start_warnings()
        self.start_commands()
        self.start_uplink()
        self.init_drivers()
        self.start_processing()
        self.start_drivers()
        self.start_status()
        self.start_service()
        log.info("event=node_started device=%s drivers=%d", self.config.node.device_id, len(self.drivers))

    def init_store(self) -> None:
        # Open once here so a broken store fails the start with its message, before any thread runs.
        open_store(self.config).close()

    def start_recorder(self) -> None:
        cfg = self.config.store
        keep = {} if self.config.uplink.send_raw else {"reading": self.config.summaries.keep_raw_s}
        self.recorder = Recorder(
            lambda: open_store(self.config), cfg.flush_interval_s, cfg.flush_records, keep
        )
        self._run(self.recorder)

    def start_link(self) -> None:
        """With ``[link]``: the link's profile, and the live track thinned by it."""
        if self.config.link is not None:
            thinning = any(p.thin_tolerance_m for p in self.config.link.profiles.values())
            if thinning and (self.config.track is None or not self.config.track.enabled):
                # Without the track log, the positions thinning drops never reach the IOC.
                log.warning("event=link_thins_without_track_log action=dropped_positions_are_lost")
            # Imported here: the thinning's numpy (~12 MB resident) is for nodes with a link profile.
            from edge.thinning import LiveTrack

            link = self.link = LinkMonitor(self.config.link)
            self._run(link)
            self.live = LiveTrack(lambda: link.profile, self._recorder().append)
            self._run(self.live)

    def start_warnings(self) -> None:
        """The outputs (``[outputs]``), the warning desk that alone drives them, and the local control
        socket through which a person on site sounds, silences and acknowledges (``ioc-edge warn``)."""
        cfg = self.config
        bank = None
        if cfg.outputs:
            bank = self.outputs = OutputBank(
                cfg.outputs, cfg.patterns, OutputContext(self.pin_factory, self.transport_for, self.clock)
            )
            self._opened.append(bank)  # closed last: every pin released, every siren off
            self.failed |= bank.failed
        desk = self.warnings = WarningDesk(
            cfg.node.device_id,
            bank,
            self._recorder().append,
            self.clock,
            self.position,
            alarm_patterns={name: rule.sound for name, rule in cfg.alarms.items() if rule.sound},
            exercise_pattern=cfg.warnings.exercise_pattern,
            ack_silences=cfg.warnings.ack_silences,
            # a station knows its place; a node with a GPS and none waits for a fix, not the others
            fix_wait_s=cfg.warnings.fix_wait_s if self._mobile() else 0.0,
            note=self._note if cfg.track is not None and cfg.track.enabled else None,
        )
        self._run(desk)
        if bank is not None:
            bank.on_ack(desk.pressed)
        try:
            self.control = ControlServer(cfg.node.state_dir / CONTROL_SOCKET, desk.actions())
        except OSError as exc:  # a state directory the node cannot write: warnings still work
            log.error("event=control_socket_failed error=%r", str(exc))
            return
        self._run(self.control)

    def position(self) -> tuple[float, float] | None:
        """Where the node is now: its GPS's last fix, else its installed ``[node] location``, else None."""
        for w, d in zip(self.watched, self.config.drivers.values(), strict=False):
            last_fix = DEVICE_TYPES[d.type].last_fix
            if last_fix is not None and (fix := last_fix(w.source)) is not None:
                return fix.lat, fix.lon
        location = self.config.node.location
        return (location.lat, location.lon) if location is not None else None

    def _mobile(self) -> bool:
        # A node with a GPS and no fixed place moves (a vessel); a station may have a GPS for its clock.
        cfg = self.config
        return cfg.node.location is None and any(DEVICE_TYPES[d.type].gps_time for d in cfg.drivers.values())

    def _note(self, text: str) -> None:
        if self.track is not None:  # started after the desk: a note before it is in the receipts only
            self.track.note(text)

    def start_commands(self) -> None:
        """The centre's signed commands (``[commands]``), verified with the CA of ``[uplink.tls]``."""
        cfg, tls = self.config, self.config.uplink.tls
        if not (cfg.commands.enabled and cfg.uplink.enabled):
            return
        if tls is None:
            log.info("event=commands_off reason=no_uplink_tls action=no_subscription")
            return
        # Imported here: cryptography (verification) is for provisioned nodes.
        from edge.commands import CommandInbox
        from provisioning.commands import CommandVerifier
        from provisioning.pki import load_certificates

        verifier = CommandVerifier(load_certificates(tls.ca)[0], cfg.node.device_id)
        self.commands = CommandInbox(
            lambda: open_store(cfg),
            verifier,
            self.clock,
            cfg.node.device_id,
            VERSION,
            supervisor=self.supervisor,
            link=self.link,
            cameras=self.cameras,
            node=self,
        )
        self._run(self.commands)

    def start_uplink(self) -> None:
        cfg = self.config.uplink
        if cfg.enabled:
            send = {s.name for s in STREAMS.values() if s.synced or (cfg.send_raw and s.name == "reading")}
            held = self.link.held if self.link else frozenset
            on_command = self.commands.offer if self.commands else None
            store = open_store(self.config)
            self.uplink = MqttUplink(store, self.config.node.device_id, cfg, send, held, on_command)
            self._run(self.uplink)

    def init_drivers(self) -> None:
        """Each driver built by its device type's entry in the registry (``edge.devices``)."""
        ctx = BuildContext(self.route, self.clock, self.pin_factory, self.transport_for)
        for name, cfg in self.config.drivers.items():
            watched = DEVICE_TYPES[cfg.type].build(name, cfg, ctx)
            self.watched.append(watched)
            self.drivers.append(watched.source)

    def transport_for(self, name: str, cfg: TransportConfig) -> Transport:
        """The transport of driver ``name``: the node opens it, and closes it at stop. It is opened by
        the driver's first read, so a device absent at boot does not stop the node."""
        transport = ReopeningTransport(lambda: open_transport(cfg), name)
        self._opened.append(transport)
        return transport

    def start_processing(self) -> None:
        cfg = self.config
        expected = [(n, q) for n, d in cfg.drivers.items() for q in DEVICE_TYPES[d.type].every_interval]
        recorder = self._recorder()
        rejects = {d.name: _reader(d, lambda s: s.rejects) for d in self.drivers}
        self.summarizer = Summarizer(
            recorder.append, self.clock, cfg.summaries.interval_s, cfg.summaries.trim, expected, rejects
        )
        self._run(self.summarizer)
        if cfg.geofences:
            # Imported here: shapely adds ~5 MB to the process, for nodes with geofences only.
            from edge.geofence import monitor_for

            with contextlib.closing(open_store(cfg)) as store:
                self.geofences = monitor_for(cfg.geofences, recorder, store)
        rules = [Rule(name, **rule.model_dump()) for name, rule in cfg.alarms.items()]
        self.alarms = AlarmEngine(rules, self._alarm, self.clock)
        self._run(self.alarms)
        self.start_track()

    def start_track(self) -> None:
        """The signed track log, first to see every position (``[track]``)."""
        cfg = self.config.track
        if cfg is not None and cfg.enabled:
            # Imported here: cryptography (signing) is for nodes that keep a track log.
            from edge.track import ARCHIVE_BYTES_PER_S, MONTH_S, TrackLog
            from provisioning.signing import DeviceSigner

            needed = cfg.retention_months * MONTH_S * ARCHIVE_BYTES_PER_S
            if self.config.store.max_bytes < needed:  # a full store drops new track records (counted)
                log.warning(
                    "event=track_store_too_small max_bytes=%d needed_bytes=%d retention_months=%d",
                    self.config.store.max_bytes,
                    needed,
                    cfg.retention_months,
                )

            tls = self.config.uplink.tls
            assert tls is not None, "the config refuses an enabled track log without [uplink.tls]"
            signer = DeviceSigner.load(tls)
            self.track = TrackLog(
                lambda: open_store(self.config),
                self._recorder().append,
                signer,
                self.clock,
                cfg.heartbeat_s,
                cfg.sign_every_s,
                cfg.retention_months * MONTH_S,
            )
            self._run(self.track)

    def route(self, stream: str, records: list) -> None:
        """The drivers' sink: everything to the store; readings also to the summaries and the alarms,
        positions to the geofences."""
        recorder, summarizer, alarms = self.recorder, self.summarizer, self.alarms
        # start() starts the drivers, the only callers, after the stages they feed
        assert recorder is not None and summarizer is not None and alarms is not None, "a driver ran early"
        if stream == "position" and self.track is not None:
            self.track.add(records)
        if stream == "position" and self.live is not None:
            self.live.add(records)  # the live stream, thinned for the link: the live track stores it
        else:
            recorder.append(stream, records)
        if stream == "position" and self.geofences is not None:
            self.geofences.feed(records)
        if stream == "reading":
            summarizer.add(records)
            alarms.feed(records)

    def _alarm(self, stream: str, alarms: list) -> None:
        """The alarm engine's sink: stored, and a rule's pattern sounded at once, link or no link."""
        self._recorder().append(stream, alarms)
        if self.warnings is not None:
            self.warnings.alarms(alarms)

    def start_drivers(self) -> None:
        for driver in self.drivers:
            try:
                self._run(driver)
            except DriverStartError as exc:
                # No GPIO library, a pin in use: the rest of the node runs; status reports it.
                self.failed[driver.name] = str(exc)
                log.error(
                    "event=driver_start_failed driver=%s error=%r", driver.name, self.failed[driver.name]
                )

    def start_status(self) -> None:
        sources: dict[str, Callable[[], Counter[str]]] = {}
        for d in self.drivers:
            # empty counters add nothing to the status (a GPIO sensor has no transport to lose)
            sources[f"reject.{d.name}"] = _reader(d, lambda s: s.rejects)
            sources[f"ignored.{d.name}"] = _reader(d, lambda s: s.ignored)
            sources[f"health.{d.name}"] = _reader(d, lambda s: s.health)
            sources[f"passed.{d.name}"] = _reader(d, lambda s: s.passed)
        if (geofences := self.geofences) is not None:
            sources["geofence"] = lambda: geofences.counts
        if uplink := self.uplink:
            sources["uplink"] = lambda: uplink.stats
        if commands := self.commands:
            sources["commands"] = lambda: commands.counts
        if desk := self.warnings:
            sources["warnings"] = lambda: desk.counts
        if live := self.live:
            sources["live_track"] = lambda: live.stats
        location = self.config.node.location
        mobile = self._mobile()
        self.status = StatusReporter(
            open_store(self.config),
            self._recorder(),
            sources,
            self.clock,
            self.config.store.status_interval_s,
            self.failed,
            {d.name: _reader(d, lambda s: s.outage) for d in self.drivers},
            {
                name: c.describe
                for name, c in (("link", self.link), ("track", self.track), ("warnings", self.warnings))
                if c is not None
            }
            # Always told, none too: the centre's selectors match what the node last reported (ioc.labels),
            # and its area warnings reach the stations it covers and every node that moves (ioc.warnings).
            | {
                "labels": lambda: dict(self.config.node.labels),
                "location": lambda: location.model_dump() if location else None,
                "mobile": lambda: mobile,
            },
            self.supervisor.files.version if self.supervisor else None,
        )
        self._run(self.status)

    def start_service(self) -> None:
        """Last: the pipeline's health, the metrics endpoint, and systemd's READY=1 and watchdog."""
        cfg = self.config
        self.health = PipelineHealth(
            self.watched,
            self.recorder,
            cfg.store.path,
            self.failed,
            stall_s=cfg.watchdog.stall_s,
            status_interval_s=cfg.store.status_interval_s,
            flush_interval_s=cfg.store.flush_interval_s,
        )
        if cfg.metrics.enabled:
            figures = NodeFigures(
                cfg.node.device_id,
                cfg.node.site,
                cfg.store.max_bytes,
                self.watched,
                # the metrics read a camera's pipeline and source figures besides a source's counters
                [
                    cast("Camera", w.source)
                    for w, d in zip(self.watched, cfg.drivers.values(), strict=True)
                    if isinstance(d, CameraDriverConfig)
                ],  # fmt: skip
                self.recorder,
                self.uplink,
            )
            self.metrics = NodeMetrics(
                figures, lambda: open_store(cfg), cfg.metrics.host, cfg.metrics.port, self.health, VERSION
            )
            self._run(self.metrics)
        self._run(ServiceWatchdog(SdNotify(), self.health.check))

    def cameras(self) -> dict[str, Camera]:
        """The node's cameras by name (for the ``snapshot`` command; none until the drivers are built)."""
        configs = self.config.drivers.values()
        return {
            w.source.name: cast("Camera", w.source)
            for w, d in zip(self.watched, configs, strict=False)  # watched grows as the drivers are built
            if isinstance(d, CameraDriverConfig)
        }

    def _recorder(self) -> Recorder:
        # start_recorder() runs first in start(): every later stage records through it
        assert self.recorder is not None, "a stage started before the recorder"
        return self.recorder

    def _run(self, component) -> None:
        component.start()
        self._started.append(component)

    def stop(self) -> None:
        """Stop everything in reverse order; what the drivers produced is committed before the end."""
        while self._started:
            self._started.pop().stop()
        while self._opened:
            self._opened.pop().close()
        if self.uplink:
            self.uplink.store.close()
        if self.status:
            self.status.store.close()
        log.info("event=node_stopped device=%s", self.config.node.device_id)
