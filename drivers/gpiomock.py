"""Mock pins for the GPIO sensors, shipped in the package (as gpiozero ships its own) for tests and demos.

gpiozero's ``MockTriggerPin`` makes its echo pulse with ``sleep()``, which runs
late on a busy machine (decimetres of water level); :class:`ExactEchoPin`
stamps its falling edge exactly, so the level a test or the demo sets is the
level the node reads.

Example::

    >>> from gpiozero.pins.mock import MockFactory
    >>> factory = MockFactory()
    >>> echo = exact_sonar(factory, distance_m=1.5, trigger=23, echo=24)
    >>> echo.distance_m = 1.2      # the river rises 30 cm
"""

from __future__ import annotations

from gpiozero.pins.mock import MockFactory, MockPin, MockTriggerPin

SPEED_OF_SOUND = 343.26
"""m/s, the figure gpiozero's DistanceSensor uses."""


def echo_time(distance_m: float) -> float:
    """The echo pulse of a surface ``distance_m`` away (there and back)."""
    return 2 * distance_m / SPEED_OF_SOUND


class ExactEchoPin(MockPin):
    """An echo pin whose pulse lasts exactly as long as a surface ``distance_m`` away says.

    gpiozero measures the pulse between the ticks of the echo's rising and falling edges.
    MockTriggerPin makes the pulse with sleep(), which runs late on a busy machine (by
    milliseconds under load: decimetres); this pin stamps its falling edge at rise + the
    pulse, so the distance gpiozero computes is exact.
    """

    _last_change: float  # MockPin's tick of the last edge (gpiozero ships no types to say so)

    def __init__(self, factory, info, distance_m: float = 1.0) -> None:
        super().__init__(factory, info)
        self.distance_m = distance_m
        self._rise = 0.0

    def _change_state(self, value: bool) -> bool:
        changed = super()._change_state(value)
        if changed and value:
            self._rise = self._last_change
        elif changed:
            self._last_change = self._rise + echo_time(self.distance_m)  # the tick gpiozero is given
        return changed


def exact_sonar(factory: MockFactory, distance_m: float, trigger: int = 23, echo: int = 24) -> ExactEchoPin:
    """Mock pins of a sensor looking at a surface ``distance_m`` away (made before the device)."""
    echo_pin = factory.pin(echo, pin_class=ExactEchoPin, distance_m=distance_m)
    factory.pin(trigger, pin_class=MockTriggerPin, echo_pin=echo_pin, echo_time=0.001)
    return echo_pin
