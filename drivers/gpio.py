"""Sensors on GPIO pins, read through gpiozero: rain gauge, water level, float switch.

Each component takes its pins and an optional gpiozero ``pin_factory`` (the default is
gpiozero's; tests and demos pass :class:`gpiozero.pins.mock.MockFactory`, so they run the
same code as the field) and produces :class:`~sync.records.Reading` records on the
``reading`` stream, with ``sensor`` = the component's name:

- :class:`RainGauge`: a tipping bucket's reed switch; one ``rain_mm`` reading per tip;
- :class:`WaterLevel`: an ultrasonic range finder (HC-SR04, JSN-SR04T) looking down at
  the river; a ``water_level_m`` reading every ``interval_s``;
- :class:`FloatSwitch`: a float switch; a ``float_high`` reading (1.0 / 0.0) per change.

The gpiozero devices are created by ``start()`` and closed by ``stop()``, which releases
their pins. Each component is a :class:`~drivers.base.RecordSource` like
:class:`drivers.base.Driver`: it counts what it threw away in ``rejects`` (input that is
wrong) and ``ignored`` (input that is valid but of no use), by reason, and the records it
produced in ``records``:

- ``ignored["bounce"]``: a rain gauge's switch closing again within ``bounce_s`` of its
  last edge (contact bounce, not a tip);
- ``rejects["no_echo"]``: a water level measurement without an echo (nothing received
  since the last measurement, or the echo came at or beyond ``max_distance_m``);
- ``rejects["out_of_range"]``: a distance that cannot be (below zero, not a number).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import ClassVar

from gpiozero import Button, Device, DigitalInputDevice, DistanceSensor, GPIOZeroError
from gpiozero.pins import Factory

from common.clock import Clock
from drivers.base import DriverStartError, Sink, SourceComponent
from sync.records import Reading

__all__ = ["Debouncer", "FloatSwitch", "GpioSensor", "RainGauge", "WaterLevel", "check_distance"]

log = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 5.0
"""Longest wait in ``stop()`` for a component's thread (a measurement takes under 0.2 s)."""


class GpioSensor(SourceComponent):
    """A component reading sensors on GPIO pins through gpiozero devices.

    ``GpioSensor(name, sink, clock, pin_factory=None)``: :meth:`start` opens the devices and
    runs the component's thread, :meth:`stop` ends it and closes them (which releases their
    pins). Records go to ``sink("reading", records)``, from whatever thread noticed them:
    gpiozero calls its event handlers from a thread of its own, so the sink must be
    thread-safe.

    Subclasses must override ``_open()``: create their gpiozero devices with
    ``pin_factory=self.pin_factory``, set their event handlers and return them. They emit
    with ``self._emit(quantity, value)``, which stamps the reading with the clock's time
    right now. A subclass that polls overrides ``_run`` (see :class:`WaterLevel`); by default
    the thread only waits for :meth:`stop`, so ``running`` means the same for every sensor.

    Counters, read by the node's status report: ``rejects`` and ``ignored`` (reason ->
    count), ``records`` (records produced); ``health`` stays empty (no transport to lose).
    """

    stream: ClassVar[str] = "reading"

    def __init__(self, name: str, sink: Sink, clock: Clock, pin_factory: Factory | None = None) -> None:
        super().__init__(name, f"gpio-{name}")
        self.sink = sink
        self.clock = clock
        self.pin_factory = pin_factory
        self._devices: list[Device] = []
        # gpiozero's handler thread, a polling thread and start() may all emit: one at a time,
        # so the counters stay right and the records of one sensor reach the sink in order
        self._lock = threading.Lock()

    def _open(self) -> list[Device]:
        """Create the gpiozero devices and set their handlers (subclasses override)."""
        raise NotImplementedError

    def start(self) -> None:
        """Open the devices, then run the thread; raises :class:`~drivers.base.DriverStartError`
        naming gpiozero's error (``GPIOPinInUse``, ``PinInvalidPin``...)."""
        if self._devices:
            raise RuntimeError(f"{self.name} is already started")
        try:
            self._devices = self._open()
        except GPIOZeroError as exc:
            raise DriverStartError(f"{type(exc).__name__}: {exc}") from exc
        super().start()

    def stop(self, timeout: float | None = JOIN_TIMEOUT_S) -> None:
        """End the thread (at once: it waits on the stop event), then close the devices, releasing
        their pins; harmless when not started."""
        super().stop(timeout)

    def _run(self) -> None:
        # gpiozero's own thread calls the handlers: nothing to do here but be stopped
        self._stop.wait()

    def _after_stop(self) -> None:
        devices, self._devices = self._devices, []
        for device in devices:
            try:
                device.close()
            except Exception:
                # the other devices must still be closed, and stop() is called on the way out
                log.exception("event=gpio_close_failed sensor=%s device=%r", self.name, device)

    def _emit(self, quantity: str, value: float) -> Reading:
        with self._lock:
            stamp = self.clock.now()
            reading = Reading(stamp.ts_ms, stamp.tsrc, stamp.clock_ms, self.name, quantity, value)
            self.records += 1
            self.sink(self.stream, [reading])
        return reading


class Debouncer:
    """Tells a switch's real closings from contact bounce: the pure part of :class:`RainGauge`.

    :meth:`edge` is told every edge (closing or opening) with its time in seconds; it
    returns True for a closing that came after at least ``bounce_s`` without any edge.
    Bounce is a burst of edges at both ends of a closing; a closing after a quiet line is a
    new one, however short it is.

    Example::

        >>> debounce = Debouncer(0.05)
        >>> [debounce.edge(t, closed) for t, closed in [(0.0, True), (0.002, False), (0.004, True)]]
        [True, False, False]
        >>> debounce.edge(0.100, False), debounce.edge(0.101, True), debounce.edge(1.0, True)
        (False, False, True)
    """

    def __init__(self, bounce_s: float) -> None:
        self.bounce_s = bounce_s
        self._last: float | None = None

    def edge(self, t: float, closed: bool) -> bool:
        """Whether the edge at ``t`` (seconds, monotonic) is a real closing."""
        quiet = self._last is None or t - self._last >= self.bounce_s
        self._last = t
        return closed and quiet


class RainGauge(GpioSensor):
    """A tipping-bucket rain gauge: each tip closes a reed switch and is ``mm_per_tip`` of rain.

    Each tip becomes one ``rain_mm`` reading of ``mm_per_tip``, stamped when the switch
    closed; ``tips`` counts them. A closing within ``bounce_s`` of the switch's previous
    edge is contact bounce: counted in ``ignored["bounce"]``, not a tip. With ``pull_up``
    (the default) the switch connects the pin to ground.

    Bounce is filtered here, not by gpiozero's ``bounce_time``: what that does depends on
    the pin backend (lgpio and pigpio wait for the level to stay stable for the whole
    period, so they would drop a tip whose closing is shorter than ``bounce_s``; the mock
    pins ignore it), and only edges close together are bounce.

    Example::

        >>> from gpiozero.pins.mock import MockFactory
        >>> factory, got = MockFactory(), []
        >>> clock = Clock(wall=lambda: 0.0, synced=lambda: False)   # booted without RTC: 1970
        >>> gauge = RainGauge("rain", lambda stream, rs: got.extend(rs), clock, pin=17, pin_factory=factory)
        >>> gauge.start()
        >>> reed = factory.pin(17)
        >>> reed.drive_low(); reed.drive_high(); reed.drive_low()   # a tip, bouncing
        >>> reed.drive_high()
        >>> gauge.tips, gauge.ignored["bounce"]
        (1, 1)
        >>> got
        [Reading(ts_ms=0, tsrc=3, clock_ms=0, sensor='rain', quantity='rain_mm', value=0.2)]
        >>> gauge.stop()
    """

    def __init__(
        self,
        name: str,
        sink: Sink,
        clock: Clock,
        *,
        pin: int | str,
        mm_per_tip: float = 0.2,
        bounce_s: float = 0.05,
        pull_up: bool = True,
        pin_factory: Factory | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, sink, clock, pin_factory)
        self.pin = pin
        self.mm_per_tip = mm_per_tip
        self.pull_up = pull_up
        self.tips = 0
        self._debounce = Debouncer(bounce_s)
        self._monotonic = monotonic

    def _open(self) -> list[Device]:
        button = Button(self.pin, pull_up=self.pull_up, pin_factory=self.pin_factory)
        # both edges: bounce shows on the opening too (see Debouncer)
        button.when_pressed = self._closed
        button.when_released = self._opened
        return [button]

    def _closed(self) -> None:
        if self._debounce.edge(self._monotonic(), True):
            self.tips += 1
            self._emit("rain_mm", self.mm_per_tip)
        else:
            self.ignored["bounce"] += 1

    def _opened(self) -> None:
        self._debounce.edge(self._monotonic(), False)


def check_distance(distance_m: float, *, mount_height_m: float, max_distance_m: float) -> str | None:
    """Why a measured distance gives no water level (a ``rejects`` key), or None if it does.

    gpiozero reports an echo that came too late (or the sensor's own "nothing there"
    pulse) as exactly ``max_distance_m``: that is ``no_echo``, not a river at the bottom of
    the range. A level outside ``[mount_height_m - max_distance_m, mount_height_m]``
    cannot be measured by this sensor: ``out_of_range``.

    Example::

        >>> check_distance(1.2, mount_height_m=5.0, max_distance_m=4.0) is None
        True
        >>> check_distance(4.0, mount_height_m=5.0, max_distance_m=4.0)
        'no_echo'
    """
    if distance_m >= max_distance_m:
        return "no_echo"
    level = mount_height_m - distance_m
    if not mount_height_m - max_distance_m <= level <= mount_height_m:  # also refuses nan
        return "out_of_range"
    return None


class _Sonar(DistanceSensor):
    """gpiozero's DistanceSensor, also counting the samples that had an echo.

    DistanceSensor samples in a thread of its own and keeps the median of its last
    ``queue_len`` samples, silently dropping samples without echo: alone, a sensor that
    died would go on reading its last distance, or 0 m (a full river) before its first
    echo. ``echoes`` lets :class:`WaterLevel` tell.
    """

    echoes = 0  # a class default: gpiozero refuses attributes first set after __init__

    def _read(self) -> float | None:
        value = super()._read()
        if value is not None:
            self.echoes += 1
        return value


class WaterLevel(GpioSensor):
    """The river's level under an ultrasonic range finder mounted ``mount_height_m`` above the datum.

    Every ``interval_s`` (the first after one interval) a ``water_level_m`` reading of
    ``mount_height_m - distance``, in metres to the millimetre; ``distance`` is gpiozero's
    median of the last ``queue_len`` samples (it samples about 15 times a second).
    Measurements without a fresh echo and impossible distances produce no reading: see the
    module docstring for ``rejects``. :meth:`measure` takes one measurement now.

    Example (the mock trigger pin echoes ``echo_time`` seconds, here for a surface 1 m
    below a sensor mounted 5 m above the datum; a thread times the mock echo, so on a busy
    machine it comes late and the surface reads a little low)::

        >>> from gpiozero.pins.mock import MockFactory, MockTriggerPin
        >>> factory, got = MockFactory(), []
        >>> echo = factory.pin(24)
        >>> trigger = factory.pin(23, pin_class=MockTriggerPin, echo_pin=echo, echo_time=2 * 1.0 / 343.26)
        >>> level = WaterLevel("river", lambda stream, rs: got.extend(rs), Clock(),
        ...                    trigger_pin=23, echo_pin=24, mount_height_m=5.0, pin_factory=factory)
        >>> level.start()
        >>> time.sleep(0.3)
        >>> reading = level.measure()
        >>> reading.quantity, 3.5 < reading.value <= 4.0
        ('water_level_m', True)
        >>> level.stop()
    """

    def __init__(
        self,
        name: str,
        sink: Sink,
        clock: Clock,
        *,
        trigger_pin: int | str,
        echo_pin: int | str,
        mount_height_m: float,
        max_distance_m: float = 4.0,
        interval_s: float = 10.0,
        pin_factory: Factory | None = None,
        queue_len: int = 9,
    ) -> None:
        super().__init__(name, sink, clock, pin_factory)
        self.trigger_pin = trigger_pin
        self.echo_pin = echo_pin
        self.mount_height_m = mount_height_m
        self.max_distance_m = max_distance_m
        self.interval_s = interval_s
        self.queue_len = queue_len
        self._sonar: _Sonar | None = None
        self._echoes_seen = 0

    def _open(self) -> list[Device]:
        # partial: reading the distance must never block (gpiozero would wait for a full queue,
        # forever if the sensor is dead); _Sonar.echoes says whether there is anything to read
        self._sonar = _Sonar(
            echo=self.echo_pin,
            trigger=self.trigger_pin,
            queue_len=self.queue_len,
            max_distance=self.max_distance_m,
            threshold_distance=self.max_distance_m / 2,  # unused; the default 0.3 m fails below it
            partial=True,
            pin_factory=self.pin_factory,
        )
        self._echoes_seen = 0
        return [self._sonar]

    def _after_stop(self) -> None:
        super()._after_stop()
        self._sonar = None

    @property
    def echoes(self) -> int:
        """Samples with an echo since :meth:`start` (0 when stopped)."""
        return self._sonar.echoes if self._sonar is not None else 0

    def measure(self) -> Reading | None:
        """Measure now: the reading (also sent to the sink), or None (counted in ``rejects``)."""
        sonar = self._sonar
        if sonar is None:
            raise RuntimeError(f"{self.name} is not started")
        echoes = sonar.echoes
        if echoes == self._echoes_seen:  # nothing heard since the last measurement
            self.rejects["no_echo"] += 1
            return None
        self._echoes_seen = echoes
        distance = sonar.distance
        reason = check_distance(
            distance, mount_height_m=self.mount_height_m, max_distance_m=self.max_distance_m
        )
        if reason is not None:
            self.rejects[reason] += 1
            return None
        return self._emit("water_level_m", round(self.mount_height_m - distance, 3))

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                self.measure()
        except Exception:
            # a bug, not a bad echo (those are counted): say so loudly and stop
            log.exception("event=gpio_sensor_crashed sensor=%s", self.name)


class FloatSwitch(GpioSensor):
    """A float switch: ``float_high`` 1.0 when the water lifts the float, 0.0 when it drops.

    One reading of the state at :meth:`start`, then one per change, each stamped when it
    was seen. "High" is the switch closed (gpiozero's *active*): with ``pull_up`` (the
    default) the switch connects the pin to ground.

    Example::

        >>> from gpiozero.pins.mock import MockFactory
        >>> factory, got = MockFactory(), []
        >>> switch = FloatSwitch("float", lambda stream, rs: got.extend(rs), Clock(),
        ...                      pin=22, pin_factory=factory)
        >>> switch.start()
        >>> factory.pin(22).drive_low()   # the water lifts the float: the switch closes
        >>> [r.value for r in got]
        [0.0, 1.0]
        >>> switch.stop()
    """

    def __init__(
        self,
        name: str,
        sink: Sink,
        clock: Clock,
        *,
        pin: int | str,
        pull_up: bool = True,
        pin_factory: Factory | None = None,
    ) -> None:
        super().__init__(name, sink, clock, pin_factory)
        self.pin = pin
        self.pull_up = pull_up

    def _open(self) -> list[Device]:
        switch = DigitalInputDevice(self.pin, pull_up=self.pull_up, pin_factory=self.pin_factory)
        switch.when_activated = self._rose
        switch.when_deactivated = self._dropped
        # after the handlers are set, so no change is missed (at worst one is reported twice)
        self._emit("float_high", 1.0 if switch.is_active else 0.0)
        return [switch]

    def _rose(self) -> None:
        self._emit("float_high", 1.0)

    def _dropped(self) -> None:
        self._emit("float_high", 0.0)
