"""One contract for a source of records: every driver, GPIO sensor and camera is a RecordSource, and
the health verdict and the metrics read the sources the runtime names, each with its stall rule."""

from __future__ import annotations

from gpiozero import Button
from gpiozero.pins.mock import MockFactory
from helpers import wait_for
from prometheus_client import CollectorRegistry, generate_latest

from common.clock import Clock
from common.component import Component
from drivers.base import RecordSource, SourceComponent
from drivers.camera import CameraSource
from drivers.gpio import FloatSwitch, RainGauge, WaterLevel
from drivers.nmea import NmeaGps
from drivers.sds011 import Sds011
from drivers.transport import MemoryTransport
from edge.health import PipelineHealth, Watched
from edge.metrics import NodeCollector, NodeFigures
from inference.camera import Camera, FramePipeline
from sync.store import Store


def discard(stream: str, records: list) -> None:
    """A sink for sources whose records the test does not look at."""


def idle_camera(name: str, source: str, clock: Clock, loop: bool = False) -> Camera:
    """A camera that is never started: its detector never runs, so it has none."""
    pipeline = FramePipeline(name, None, clock)  # type: ignore[arg-type]
    return Camera(name, CameraSource(source, loop=loop), pipeline, discard, clock)


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def every_kind(factory: MockFactory) -> list[RecordSource]:
    """One source of each shape: drivers on a transport, GPIO sensors, a camera (never started)."""
    clock = Clock()
    return [
        NmeaGps("gps", MemoryTransport(b""), discard, clock),
        Sds011("pm", MemoryTransport(b""), discard, clock),
        RainGauge("rain", discard, clock, pin=17, pin_factory=factory),
        WaterLevel(
            "river", discard, clock, trigger_pin=23, echo_pin=24, mount_height_m=5.0, pin_factory=factory
        ),
        FloatSwitch("float", discard, clock, pin=22, pin_factory=factory),
        idle_camera("street", "street.mp4", clock),
    ]


def test_every_driver_gpio_sensor_and_camera_is_a_component_with_the_counters_of_a_record_source():
    sources = every_kind(MockFactory())
    for source in sources:
        assert isinstance(source, SourceComponent) and isinstance(source, Component), source.name
        counters = (source.rejects, source.ignored, source.health, source.passed)
        assert (counters, source.records, source.outage, source.activity, source.running) == (
            ({}, {}, {}, {}),
            0,
            None,
            0,
            False,
        ), source.name


def test_a_gpio_sensor_runs_as_a_component_and_releases_its_pin_when_stopped():
    factory, got = MockFactory(), []
    gauge = RainGauge("rain", lambda stream, rs: got.extend(rs), Clock(), pin=17, pin_factory=factory)
    gauge.start()
    assert gauge.running and gauge._thread is not None and gauge._thread.name == "gpio-rain"
    factory.pin(17).drive_low()
    assert (gauge.records, gauge.activity, [r.quantity for r in got]) == (1, 1, ["rain_mm"])
    gauge.stop()
    assert not gauge.running
    Button(17, pin_factory=factory).close()  # the pin is free again: no GPIOPinInUse


def test_health_reads_the_sources_it_is_given_with_their_stall_rules(tmp_path):
    factory, ticker, clock = MockFactory(), Ticker(), Clock()
    feed = MemoryTransport(eof=False)
    gps = NmeaGps("gps", feed, discard, clock)
    replay = NmeaGps("replay", MemoryTransport(b""), discard, clock)  # ends at once, like a replay
    crashed = NmeaGps("crashed", MemoryTransport(b""), discard, clock)
    broken = NmeaGps("broken", MemoryTransport(b""), discard, clock)  # failed to start: not watched
    gauge = RainGauge("rain", discard, clock, pin=17, pin_factory=factory)
    sources = [
        Watched(gps, "nmea", 30.0),
        Watched(replay, "nmea", 0.0, finite=True),
        Watched(crashed, "nmea", 0.0),
        Watched(broken, "nmea", 0.0),
        Watched(gauge, "rain_gauge", None),
    ]
    for source in (gps, replay, crashed, gauge):
        source.start()
    try:
        replay.join(5)
        crashed.join(5)
        health = PipelineHealth(
            sources,
            None,
            tmp_path / "node.db",
            {"broken": "GPIOPinInUse: pin 5"},
            stall_s=60,
            status_interval_s=50,  # the recorder (none here) may be idle 101 s: not the point
            flush_interval_s=1,
            monotonic=ticker,
        )
        assert health.check().problems == ("driver crashed stopped",)
        assert health.check().detail == "5 drivers, 0 records committed"
        ticker.now += 89  # within stall_s plus the GPS's quiet_s
        assert health.check().problems == ("driver crashed stopped",)
        ticker.now += 2
        assert health.check().problems == ("driver crashed stopped", "every driver silent: gps 91 s")
        feed.push(b"$GPGGA,noise*00\r\n")  # refused input is input too: the device is alive
        wait_for(lambda: gps.activity > 0, 5, "the line read")
        ticker.now += 1
        assert health.check().problems == ("driver crashed stopped",)
    finally:
        for source in (gps, gauge):
            source.stop()


def test_metrics_read_the_sources_and_cameras_the_runtime_names(tmp_path):
    factory, clock = MockFactory(), Clock()
    gps = NmeaGps("gps", MemoryTransport(b"garbage\r\n"), discard, clock)
    gauge = RainGauge("rain", discard, clock, pin=17, pin_factory=factory)
    camera = idle_camera("street", "street.mp4", clock)
    gps.start()
    gps.join(5)
    gauge.start()
    try:
        figures = NodeFigures(
            "dev-1",
            "hanoi",
            123456,
            [Watched(gps, "nmea", 0.0), Watched(gauge, "rain_gauge", None), Watched(camera, "camera", 0.0)],
            [camera],
            None,
            None,
        )
        collector = NodeCollector(figures, lambda: Store(tmp_path / "node.db"), version="9.9")
        registry = CollectorRegistry()
        registry.register(collector)
        text = generate_latest(registry).decode()
        collector.close()
    finally:
        gauge.stop()
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert 'ioc_edge_node_info{device="dev-1",site="hanoi",version="9.9"} 1.0' in lines
    assert "ioc_edge_store_max_bytes 123456.0" in lines
    running = sorted(line for line in lines if line.startswith("ioc_edge_driver_running"))
    assert running == [
        'ioc_edge_driver_running{driver="gps",type="nmea"} 0.0',
        'ioc_edge_driver_running{driver="rain",type="rain_gauge"} 1.0',
        'ioc_edge_driver_running{driver="street",type="camera"} 0.0',
    ]
    assert [line for line in lines if line.startswith("ioc_edge_driver_rejects_total")] == [
        f'ioc_edge_driver_rejects_total{{driver="gps",reason="{reason}"}} {n:.1f}'
        for reason, n in sorted(gps.rejects.items())
    ] and gps.rejects
    # empty counters give no sample: no transport event for the gauge, nothing passed on but by a GPS
    assert not [
        line for line in lines if line.startswith(("ioc_edge_driver_transport", "ioc_edge_driver_passed"))
    ]
    assert 'ioc_edge_camera_frames_total{camera="street"} 0.0' in lines


def test_a_camera_is_watched_by_its_frames_and_ends_only_with_a_file_read_without_loop():
    clock = Clock()
    camera = idle_camera("street", "street.mp4", clock)
    looping = idle_camera("loop", "street.mp4", clock, loop=True)
    live = idle_camera("rtsp", "rtsp://10.0.0.7/s", clock)
    camera.pipeline.stats["frames"] = 7
    camera.records = 100  # counts and events: not the figure the health watches
    assert (camera.activity, camera.finite, looping.finite, live.finite) == (7, True, False, False)
