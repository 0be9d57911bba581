"""The node's Prometheus metrics: the components' own counters, read when Prometheus scrapes.

Nothing is counted twice and no hot loop is instrumented (the store writes over a million
records a second): :class:`NodeCollector` reads the counters the drivers, the recorder, the
uplink and the store already keep, at scrape time, from the components the runtime names in a
:class:`NodeFigures`. :class:`~common.metrics_server.MetricsServer`
serves a registry with prometheus_client's own HTTP server; :class:`NodeMetrics` is the node's
component that ties them together. The metric names are listed in docs/metrics.md (``ioc_edge_*``).

Example::

    >>> from prometheus_client import CollectorRegistry, generate_latest
    >>> registry = CollectorRegistry()
    >>> registry.register(ThermalCollector("ioc_edge", Path("/nonexistent")))
    >>> generate_latest(registry)    # a board without thermal zones: no metric, no error
    b''
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from common.metrics_server import MetricsServer
from drivers.base import RecordSource
from edge.health import PipelineHealth, Watched
from sync.store import Store, StoreError, StoreStatus

if TYPE_CHECKING:
    from inference.camera import Camera
    from sync.recorder import Recorder
    from sync.uplink import MqttUplink

__all__ = ["NodeCollector", "NodeFigures", "NodeMetrics", "ThermalCollector"]

log = logging.getLogger(__name__)

THERMAL_ROOT = Path("/sys/class/thermal")

UPLINK_COUNTERS = {
    "sent_batches": "Batches published (first sends and resends).",
    "sent_records": "Records published.",
    "sent_bytes": "Payload bytes published.",
    "acked_records": "Records the IOC acknowledged and the node deleted.",
    "resent_batches": "Batches sent again after ack_timeout_s without an ack.",
    "bad_acks": "Acks that could not be read.",
    "connects": "Connections accepted by the broker.",
    "connect_attempts": "Connection attempts.",
    "store_errors": "Rounds the uplink skipped because the store failed.",
}
"""``MqttUplink.stats`` keys exported as ``ioc_edge_uplink_<key>_total``."""


class ThermalCollector(Collector):
    """``<prefix>_cpu_temperature_celsius{zone, type}`` from the kernel's thermal zones, if any.

    A board without ``/sys/class/thermal/thermal_zone*`` (or a zone that cannot be read at
    the moment) gives no sample and no error. See the module's example.
    """

    def __init__(self, prefix: str, root: Path = THERMAL_ROOT) -> None:
        self.prefix, self.root = prefix, root

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            f"{self.prefix}_cpu_temperature_celsius",
            "Temperature of each thermal zone the kernel exposes (the SoC on a Raspberry Pi).",
            labels=["zone", "type"],
        )
        for zone in sorted(self.root.glob("thermal_zone*")):
            try:
                millidegrees = int((zone / "temp").read_text().strip())
                kind = (zone / "type").read_text().strip() if (zone / "type").exists() else ""
            except (OSError, ValueError):
                continue  # a zone whose sensor is asleep or broken (EINVAL, ENODATA) has no figure now
            family.add_metric([zone.name, kind], millidegrees / 1000)
        if family.samples:
            yield family


def _counter(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]]) -> Metric:
    family = CounterMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _gauge(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _by_reason(
    drivers: Iterable[RecordSource], counts: Callable[[RecordSource], Counter[str]]
) -> list[tuple[list[str], float]]:
    """``(driver, reason) -> count`` rows of each driver's Counter ``counts(driver)``."""
    return [
        ([d.name, reason], n)
        for d in drivers
        for reason, n in sorted(Counter(counts(d)).items())  # a copy: the driver adds keys
    ]


@dataclass(frozen=True)
class NodeFigures:
    """What the node's metrics read, named by the runtime: the node's identity, its sources of
    records (the cameras among them again, for their pipeline's figures), its recorder and uplink
    (None when the node runs without) and the store's size cap."""

    device_id: str
    site: str
    store_max_bytes: int
    sources: Sequence[Watched]
    cameras: Sequence[Camera]
    recorder: Recorder | None
    uplink: MqttUplink | None


class NodeCollector(Collector):
    """Reads a running node's counters (its :class:`NodeFigures`) and its store at scrape time.

    ``open_store`` gives the collector a connection of its own (opened lazily, used under a
    lock: scrapes run in threads of the HTTP server). ``health`` gives ``ioc_edge_healthy``,
    ``version`` the software's version in ``ioc_edge_node_info``.
    """

    def __init__(
        self,
        figures: NodeFigures,
        open_store: Callable[[], Store],
        health: PipelineHealth | None = None,
        version: str = "",
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.figures, self.health, self.version, self.wall_clock = figures, health, version, wall_clock
        self._open_store = open_store
        self._store: Store | None = None
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._store is not None:
                self._store.close()
                self._store = None

    def _store_status(self) -> StoreStatus | None:
        with self._lock:
            if self._closed:
                return None
            try:
                if self._store is None:
                    self._store = self._open_store()
                return self._store.status()
            except (sqlite3.Error, StoreError) as exc:
                # The figures of the store are missing from this scrape; the others still count.
                log.warning("event=metrics_store_failed error=%r", str(exc))
                return None

    def collect(self) -> Iterator[Metric]:
        figures = self.figures
        info = InfoMetricFamily("ioc_edge_node", "The node's identity and software version.")
        info.add_metric([], {"device": figures.device_id, "site": figures.site, "version": self.version})
        yield info
        status = self._store_status()
        if self.health is not None:
            verdict = self.health.check()
            yield _gauge(
                "ioc_edge_healthy",
                "1 while the pipeline progresses (the watchdog is fed).",
                [],
                [([], 1 if verdict.healthy else 0)],
            )
        if status is not None:
            yield from self._store_metrics(status)
        yield from self._driver_metrics()
        yield from self._camera_metrics()
        yield from self._uplink_metrics()

    def _store_metrics(self, status: StoreStatus) -> Iterator[Metric]:
        yield _gauge(
            "ioc_edge_backlog_records",
            "Records waiting in the store for the IOC's end-to-end ack, per stream.",
            ["stream"],
            [([s], n) for s, n in sorted(status.backlog.items())],
        )
        yield _gauge(
            "ioc_edge_local_records",
            "Records kept on the node only (raw readings, unless uplink.send_raw), per stream.",
            ["stream"],
            [([s], n) for s, n in sorted(status.kept_local.items())],
        )
        if status.last_ack_ms is not None:
            acked = status.last_ack_ms / 1000
            yield _gauge(
                "ioc_edge_last_ack_timestamp_seconds", "When the IOC's last ack arrived.", [], [([], acked)]
            )
            yield _gauge(
                "ioc_edge_last_ack_age_seconds",
                "Seconds since the IOC's last ack arrived.",
                [],
                [([], max(self.wall_clock() - acked, 0.0))],
            )
        yield _counter(
            "ioc_edge_dropped_records",
            "Records dropped by retention (store or disk full), per stream.",
            ["stream"],
            [([s], n) for s, n in sorted(status.drops.items())],
        )
        for group, doc in (
            ("invalid", "Records set aside because the IOC would refuse them, per stream."),
            ("expired", "Records kept on the node only, deleted after keep_raw_s, per stream."),
        ):
            rows = [([s], n) for s, n in sorted(status.counters.get(group, {}).items())]
            yield _counter(f"ioc_edge_{group}_records", doc, ["stream"], rows)
        yield _gauge(
            "ioc_edge_store_bytes",
            "Size of the store on disk, write-ahead log included.",
            [],
            [([], status.size_bytes)],
        )
        yield _gauge(
            "ioc_edge_store_max_bytes",
            "The store's size cap (store.max_bytes).",
            [],
            [([], self.figures.store_max_bytes)],
        )

    def _driver_metrics(self) -> Iterator[Metric]:
        watched = self.figures.sources
        drivers = [w.source for w in watched]
        recorder = self.figures.recorder
        if recorder is not None:
            yield _counter(
                "ioc_edge_recorder_committed_records",
                "Records committed to the store.",
                [],
                [([], recorder.committed)],
            )
            yield _counter(
                "ioc_edge_recorder_errors",
                "Commits that failed (their records lost).",
                [],
                [([], recorder.errors)],
            )
        yield _gauge(
            "ioc_edge_driver_running",
            "1 while the driver's thread runs (0: failed to start, crashed, or its replay ended).",
            ["driver", "type"],
            [([w.source.name, w.type], 1 if w.source.running else 0) for w in watched],
        )
        yield _counter(
            "ioc_edge_driver_records",
            "Records a driver produced (rate(): the sensor's frame rate).",
            ["driver", "type"],
            [([w.source.name, w.type], w.source.records) for w in watched],
        )
        yield _counter(
            "ioc_edge_driver_rejects",
            "Input a driver refused, by reason (garbage counts bytes, the rest frames or lines).",
            ["driver", "reason"],
            _by_reason(drivers, lambda d: d.rejects),
        )
        yield _counter(
            "ioc_edge_driver_ignored",
            "Valid input of no use (no fix, warm-up, command replies, bounce), by reason.",
            ["driver", "reason"],
            _by_reason(drivers, lambda d: d.ignored),
        )
        yield _counter(
            "ioc_edge_driver_passed",
            "Input passed on as it came (AIS sentences on a GPS's stream: ais; ais_dropped over the rate).",
            ["driver", "reason"],
            _by_reason(drivers, lambda d: d.passed),
        )
        yield _counter(
            "ioc_edge_driver_transport_events",
            "Outages of a driver's device: transport_lost and transport_recovered, once per outage.",
            ["driver", "event"],
            _by_reason(drivers, lambda d: d.health),
        )

    def _camera_metrics(self) -> Iterator[Metric]:
        cameras = self.figures.cameras
        frames = CounterMetricFamily(
            "ioc_edge_camera_frames", "Frames read and processed.", labels=["camera"]
        )
        inference = SummaryMetricFamily(
            "ioc_edge_camera_inference_seconds",
            "Time in the detector per inference (frames the motion gate passed).",
            labels=["camera"],
        )
        source = CounterMetricFamily(
            "ioc_edge_camera_source_events",
            "Camera source events: skipped (fps cap), reopens (stall watchdog), loops, open_failures.",
            labels=["camera", "event"],
        )
        for camera in cameras:
            stats = Counter(camera.pipeline.stats)
            frames.add_metric([camera.name], stats["frames"])
            inference.add_metric([camera.name], stats["inferences"], stats["inference_ns"] / 1e9)
            for event, n in sorted(Counter(camera.source.stats).items()):
                if event != "frames":
                    source.add_metric([camera.name, event], n)
        yield from (frames, inference, source)

    def _uplink_metrics(self) -> Iterator[Metric]:
        uplink = self.figures.uplink
        if uplink is None:
            return
        yield _gauge(
            "ioc_edge_uplink_connected",
            "1 while the MQTT connection is up.",
            [],
            [([], 1 if uplink.connected else 0)],
        )
        stats = Counter(uplink.stats)
        for key, doc in UPLINK_COUNTERS.items():
            yield _counter(f"ioc_edge_uplink_{key}", doc, [], [([], stats[key])])


class NodeMetrics:
    """The node's metrics component: a :class:`NodeCollector`, the CPU temperature, the process's
    CPU and memory, served by a :class:`MetricsServer` on ``host:port`` (``[metrics]``).

    Example::

        metrics = NodeMetrics(figures, open_store, "127.0.0.1", 9820, health)
        metrics.start()     # http://127.0.0.1:9820/metrics
        ...
        metrics.stop()
    """

    def __init__(
        self,
        figures: NodeFigures,
        open_store: Callable[[], Store],
        host: str,
        port: int,
        health: PipelineHealth | None = None,
        version: str = "",
        thermal_root: Path = THERMAL_ROOT,
    ) -> None:
        self.collector = NodeCollector(figures, open_store, health, version)
        self.registry = CollectorRegistry()
        self.registry.register(self.collector)
        self.registry.register(ThermalCollector("ioc_edge", thermal_root))
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes
        self.server = MetricsServer(self.registry, host, port)

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
        self.collector.close()
