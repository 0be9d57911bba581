"""GPIO sensors on gpiozero's mock pins: rain tips, debouncing, echo timing, float changes, pins."""

from __future__ import annotations

import doctest
import math
import threading
import time
from collections import Counter

import pytest
from gpiozero import Button, GPIOPinInUse
from gpiozero.pins.mock import MockFactory, MockTriggerPin
from helpers import wait_for

import drivers.gpio
from common.clock import Clock
from drivers.gpio import Debouncer, FloatSwitch, RainGauge, WaterLevel, check_distance
from drivers.gpiomock import echo_time, exact_sonar
from edge.devices.float_switch import FloatSwitchDriverConfig
from edge.devices.rain_gauge import RainGaugeDriverConfig
from edge.devices.water_level import WaterLevelDriverConfig
from sync.records import Reading, TimeSource

# gpiozero warns on every DistanceSensor without pigpio, and from its sampling thread on
# every sample without echo: expected here
pytestmark = [
    pytest.mark.filterwarnings("ignore::gpiozero.PWMSoftwareFallback"),
    pytest.mark.filterwarnings("ignore::gpiozero.DistanceSensorNoEcho"),
]

WALL_S = 1_700_000_000.25
WALL_MS = 1_700_000_000_250
NTP = int(TimeSource.NTP)
SLACK_M = 0.25
"""How much farther than true MockTriggerPin's echo may read: its pulse is a sleep(), never early but
late by the scheduler's delay (~0.2 ms idle: 3 cm; 1.5 ms, 25 cm, on a loaded machine)."""


class Sink:
    """Collects what a component hands to its sink, from any thread."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[Reading]]] = []
        self._lock = threading.Lock()

    def __call__(self, stream: str, records: list[Reading]) -> None:
        with self._lock:
            self.batches.append((stream, records))

    @property
    def readings(self) -> list[Reading]:
        with self._lock:
            return [r for _, batch in self.batches for r in batch]


@pytest.fixture
def factory():
    """A private mock pin factory (never gpiozero's global Device.pin_factory)."""
    mock = MockFactory()
    yield mock
    mock.close()


@pytest.fixture
def clock() -> Clock:
    """A clock the kernel calls synchronised, stuck at WALL_S."""
    return Clock(wall=lambda: WALL_S, synced=lambda: True)


def reading(sensor: str, quantity: str, value: float) -> Reading:
    return Reading(WALL_MS, NTP, WALL_MS, sensor, quantity, value)


class FakeTime:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# --- rain gauge ---


def test_rain_tips_become_mm_stamped_by_the_clock(factory, clock):
    sink, now = Sink(), FakeTime()
    gauge = RainGauge("rain", sink, clock, pin=17, mm_per_tip=0.5, pin_factory=factory, monotonic=now)
    gauge.start()
    reed = factory.pin(17)
    for _ in range(4):
        now.t += 60.0  # a tip a minute
        reed.drive_low()
        now.t += 0.1
        reed.drive_high()
    gauge.stop()
    assert sink.batches == [("reading", [reading("rain", "rain_mm", 0.5)])] * 4
    assert (gauge.tips, gauge.records, gauge.ignored, gauge.rejects) == (4, 4, Counter(), Counter())
    assert sum(r.value for r in sink.readings) == 4 * 0.5


def test_rain_bounces_within_bounce_s_do_not_count(factory, clock):
    sink, now = Sink(), FakeTime()
    gauge = RainGauge("rain", sink, clock, pin=17, bounce_s=0.05, pin_factory=factory, monotonic=now)
    gauge.start()
    reed = factory.pin(17)

    def edges(*steps: tuple[float, bool]) -> None:
        for dt, closed in steps:
            now.t += dt
            reed.drive_low() if closed else reed.drive_high()

    edges((0.0, True), (0.002, False), (0.002, True), (0.003, False), (0.001, True))  # closing, bouncing
    edges((0.2, False), (0.001, True), (0.001, False))  # opening, bouncing: not a new tip
    edges((0.049, True), (0.01, False))  # 49 ms after the last edge: still bounce
    edges((0.06, True), (0.2, False))  # 60 ms of quiet: a tip
    edges((5.0, True), (0.001, False))  # a 1 ms closing after a quiet line: a tip
    gauge.stop()
    assert (gauge.tips, gauge.ignored, gauge.records) == (3, Counter(bounce=4), 3)
    assert sink.readings == [reading("rain", "rain_mm", 0.2)] * 3


def test_rain_bounces_debounced_in_real_time(factory, clock):
    sink = Sink()
    gauge = RainGauge("rain", sink, clock, pin=17, bounce_s=0.05, pin_factory=factory)
    gauge.start()
    reed = factory.pin(17)
    for _ in range(3):
        for _ in range(3):  # microseconds apart: bounce
            reed.drive_low()
            reed.drive_high()
        time.sleep(0.06)
    gauge.stop()
    assert (gauge.tips, gauge.ignored["bounce"]) == (3, 6)
    assert sink.readings == [reading("rain", "rain_mm", 0.2)] * 3


def test_rain_switch_to_3v3_without_pull_up(factory, clock):
    sink = Sink()
    gauge = RainGauge("rain", sink, clock, pin=17, pull_up=False, pin_factory=factory)
    gauge.start()
    reed = factory.pin(17)
    assert reed.pull == "down"
    reed.drive_high()  # closing, to 3.3 V
    reed.drive_low()
    gauge.stop()
    assert gauge.tips == 1


def test_debouncer_counts_closings_after_a_quiet_line():
    closed, opened = True, False
    edges = [(0.0, closed), (0.01, opened), (0.02, closed), (0.5, opened), (0.549, closed), (0.65, closed)]
    debounce = Debouncer(0.05)
    assert [debounce.edge(t, c) for t, c in edges] == [True, False, False, False, False, True]
    no_debounce = Debouncer(0.0)
    assert [no_debounce.edge(t, c) for t, c in edges] == [True, False, True, False, True, True]


# --- water level ---


def fresh(level: WaterLevel) -> None:
    """Wait until the sensor's whole median window was sampled after now (+1: one may be in flight)."""
    target = level.echoes + level.queue_len + 1
    wait_for(lambda: level.echoes >= target, timeout=5, what=f"{target} echoes")


def water_level(sink, clock, factory, **kwargs) -> WaterLevel:
    options = dict(trigger_pin=23, echo_pin=24, mount_height_m=5.0, interval_s=3600, queue_len=3)
    return WaterLevel("river", sink, clock, pin_factory=factory, **(options | kwargs))


def test_water_level_from_an_echo_of_gpiozeros_mock_trigger(factory, clock):
    # as gpiozero's own test: the trigger pin answers with an echo pulse of echo_time (a sleep)
    factory.pin(23, pin_class=MockTriggerPin, echo_pin=factory.pin(24), echo_time=echo_time(1.5))
    sink = Sink()
    level = water_level(sink, clock, factory)
    level.start()
    fresh(level)
    got = level.measure()
    level.stop()
    assert sink.readings == [got]
    assert got[:5] == (WALL_MS, NTP, WALL_MS, "river", "water_level_m")
    assert 3.5 - SLACK_M <= got.value <= 3.5
    assert (level.records, level.rejects) == (1, Counter())


def test_water_level_from_an_exact_echo(factory, clock):
    exact_sonar(factory, 1.5)
    sink = Sink()
    level = water_level(sink, clock, factory)
    level.start()
    fresh(level)
    assert level.measure() == reading("river", "water_level_m", 3.5)
    level.stop()
    assert sink.readings == [reading("river", "water_level_m", 3.5)]


def test_water_level_ramp_gives_rising_levels(factory, clock):
    echo = exact_sonar(factory, 3.0)
    sink = Sink()
    level = water_level(sink, clock, factory, mount_height_m=4.2)
    level.start()
    for distance in [3.0, 2.5, 2.0, 1.25, 0.4]:  # the river rising towards the sensor
        echo.distance_m = distance
        fresh(level)
        level.measure()
    level.stop()
    assert [r.value for r in sink.readings] == [1.2, 1.7, 2.2, 2.95, 3.8]


def test_water_level_without_echo_is_counted(factory, clock):
    factory.pin(23)  # a plain pin: the trigger fires, nothing ever echoes
    sink = Sink()
    level = water_level(sink, clock, factory)
    level.start()
    time.sleep(0.3)
    assert level.measure() is None
    assert level.measure() is None
    level.stop()
    assert (level.echoes, level.rejects, level.records, sink.readings) == (0, Counter(no_echo=2), 0, [])


def test_water_level_echo_beyond_max_distance_is_no_echo(factory, clock):
    exact_sonar(factory, 6.5)  # the HC-SR04's "nothing there" pulse: ~38 ms
    sink = Sink()
    level = water_level(sink, clock, factory, max_distance_m=4.0)
    level.start()
    fresh(level)
    assert level.measure() is None
    assert level.echoes >= 4
    level.stop()
    assert (level.rejects, sink.readings) == (Counter(no_echo=1), [])


def test_water_level_sensor_that_dies_is_not_read_as_its_last_distance(factory, clock):
    exact_sonar(factory, 1.0)
    trigger = factory.pin(23)
    sink = Sink()
    level = water_level(sink, clock, factory)
    level.start()
    fresh(level)
    assert level.measure() is not None
    trigger.echo_pin = factory.pin(25)  # the echo wire breaks: gpiozero keeps its old samples
    time.sleep(0.15)  # a sample in flight may still have had its echo
    level.measure()
    time.sleep(0.3)
    rejects_before = level.rejects["no_echo"]
    assert level.measure() is None
    level.stop()
    assert level.rejects["no_echo"] == rejects_before + 1


def test_water_level_loop_reads_every_interval_and_stops_at_once(factory, clock):
    exact_sonar(factory, 2.0)
    sink = Sink()
    level = water_level(sink, clock, factory, interval_s=0.2)
    level.start()
    assert level.running
    wait_for(lambda: len(sink.readings) >= 3, timeout=5, what="3 readings")
    level.stop()
    assert not level.running
    assert {(r.sensor, r.quantity) for r in sink.readings} == {("river", "water_level_m")}
    assert {r.value for r in sink.readings} == {3.0}

    slow = water_level(Sink(), clock, factory, interval_s=3600)
    slow.start()
    started = time.monotonic()
    slow.stop()  # does not wait out the interval
    assert time.monotonic() - started < 1.0
    assert not slow.running


@pytest.mark.parametrize(
    ("distance", "reason"),
    [
        (1.2, None),
        (0.0, None),
        (3.999, None),
        (4.0, "no_echo"),
        (4.5, "no_echo"),
        (-0.1, "out_of_range"),
        (math.nan, "out_of_range"),
    ],
)
def test_check_distance(distance, reason):
    assert check_distance(distance, mount_height_m=5.0, max_distance_m=4.0) == reason


# --- float switch ---


def test_float_switch_reports_its_state_at_start_and_every_change(factory, clock):
    sink = Sink()
    switch = FloatSwitch("float", sink, clock, pin=27, pin_factory=factory)
    switch.start()
    float_pin = factory.pin(27)
    float_pin.drive_low()  # the water lifts the float: the switch closes to ground
    float_pin.drive_low()  # no change, no reading
    float_pin.drive_high()
    switch.stop()
    assert sink.readings == [reading("float", "float_high", v) for v in (0.0, 1.0, 0.0)]
    assert switch.records == 3


def test_float_switch_without_pull_up(factory, clock):
    sink = Sink()
    switch = FloatSwitch("float", sink, clock, pin=27, pull_up=False, pin_factory=factory)
    switch.start()
    factory.pin(27).drive_high()
    switch.stop()
    assert [r.value for r in sink.readings] == [0.0, 1.0]


# --- pins, start and stop ---


@pytest.mark.parametrize("kind", ["rain", "level", "float"])
def test_stop_closes_the_devices_and_releases_the_pins(factory, clock, kind):
    sink = Sink()
    if kind == "rain":
        sensor, pins = RainGauge("s", sink, clock, pin=17, pin_factory=factory), [17]
    elif kind == "float":
        sensor, pins = FloatSwitch("s", sink, clock, pin=17, pin_factory=factory), [17]
    else:
        exact_sonar(factory, 1.0, trigger=17, echo=18)
        sensor, pins = water_level(sink, clock, factory, trigger_pin=17, echo_pin=18), [17, 18]
    sensor.start()
    assert sensor.running
    for pin in pins:
        with pytest.raises(GPIOPinInUse) as exc:
            Button(pin, pin_factory=factory)
        assert str(exc.value).startswith(f"pin GPIO{pin} is already in use by <gpiozero.")
    sensor.stop()
    assert not sensor.running
    for pin in pins:
        Button(pin, pin_factory=factory).close()
    records = sensor.records
    factory.pin(17).drive_low()  # nobody listens any more
    assert sensor.records == records
    sensor.stop()  # a second stop is harmless


def test_start_twice_and_measure_before_start_raise(factory, clock):
    gauge = RainGauge("rain", Sink(), clock, pin=17, pin_factory=factory)
    gauge.start()
    with pytest.raises(RuntimeError) as exc:
        gauge.start()
    assert str(exc.value) == "rain is already started"
    gauge.stop()
    with pytest.raises(RuntimeError) as exc:
        water_level(Sink(), clock, factory).measure()
    assert str(exc.value) == "river is not started"


def test_components_take_their_config_sections(factory, clock):
    """The runtime builds them as ``Kind(name, sink, clock, **section.model_dump(exclude={"type"}))``."""
    sections = [
        (RainGauge, RainGaugeDriverConfig(type="rain_gauge", pin="GPIO17", mm_per_tip=0.3)),
        (
            WaterLevel,
            WaterLevelDriverConfig(type="water_level", trigger_pin=23, echo_pin=24, mount_height_m=6),
        ),
        (FloatSwitch, FloatSwitchDriverConfig(type="float_switch", pin=27, pull_up=False)),
    ]
    for kind, section in sections:
        sensor = kind("s", Sink(), clock, pin_factory=factory, **section.model_dump(exclude={"type"}))
        sensor.start()
        sensor.stop()
    assert (sensor.pin, sensor.pull_up) == (27, False)


def test_docstring_examples_run():
    result = doctest.testmod(drivers.gpio, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
