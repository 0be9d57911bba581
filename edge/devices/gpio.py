"""What the GPIO sensors (``rain_gauge``, ``water_level``, ``float_switch``) share: pins, and how
they are built and self-tested (``drivers.gpio``, imported when one is built: gpiozero and its pin
libraries are for nodes with GPIO sensors)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator

from drivers.base import DriverStartError
from edge.devices.base import FAIL, GPIO, PASS, BuildContext, CheckContext, CheckResult, DeviceType
from edge.health import Watched

__all__ = ["BCM_PINS", "Pin", "gpio_sensor"]

BCM_PINS = 54
"""GPIO numbers of the Raspberry Pi's SoC (BCM numbering): 0..53."""

_PIN_NAME = re.compile(r"^(?:(GPIO|BCM)(\d{1,2})|(?:BOARD|J8:|P1:)(\d{1,2}))$")


def _check_pin(value: Any) -> int | str:
    """A BCM number (``17``, ``"GPIO17"``, ``"BCM17"`` -> 17) or a header pin (``"BOARD11"``, ``"J8:11"``)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a pin; expected a BCM number (e.g. 17) or a name like 'GPIO17'")
    if isinstance(value, str):
        found = _PIN_NAME.match(value)
        if not found:
            raise ValueError(
                f"{value!r} is not a pin name; expected e.g. 'GPIO17', 'BCM17', 'BOARD11' or 'J8:11'"
            )
        if found.group(3) is not None:
            if not 1 <= int(found.group(3)) <= 40:
                raise ValueError(f"{value!r} is not a header pin; expected a physical pin 1..40")
            return value  # physical numbering: gpiozero maps it to the GPIO
        number = int(found.group(2))
    else:
        number = value
    if not 0 <= number < BCM_PINS:
        raise ValueError(f"{value!r} is not a GPIO number; expected 0..{BCM_PINS - 1}")
    return number


Pin = Annotated[int | str, BeforeValidator(_check_pin)]


def gpio_sensor(
    config: type[Any],
    driver: str,
    quantities: tuple[str, ...],
    quiet_s: Callable[[Any], float | None],
    every_interval: tuple[str, ...] = (),
) -> DeviceType:
    """The device type of the GPIO sensor class ``driver`` of ``drivers.gpio``.

    ``quiet_s(cfg)`` is its stall rule (see :class:`~edge.health.Watched`): None for a sensor that
    reports only when something happens, which is never silent.
    """

    def make(name: str, cfg: Any, sink: Any, clock: Any, pin_factory: Any) -> Any:
        from drivers import gpio

        return getattr(gpio, driver)(
            name, sink, clock, pin_factory=pin_factory, **cfg.model_dump(exclude={"type"})
        )

    def build(name: str, cfg: Any, ctx: BuildContext) -> Watched:
        return Watched(make(name, cfg, ctx.sink, ctx.clock, ctx.pin_factory), cfg.type, quiet_s(cfg))

    def check(name: str, cfg: Any, ctx: CheckContext) -> list[CheckResult]:
        """The sensor opens its pins and reads them (gpiozero, with the node's pin factory)."""
        sensor = make(name, cfg, lambda stream, records: None, ctx.clock, ctx.pin_factory)
        try:
            sensor.start()
        except DriverStartError as exc:
            hint = "check the pin numbers, that no other program holds them, and the node's 'gpio' group"
            return [CheckResult(f"gpio {name}", FAIL, str(exc), hint)]
        sensor.stop()
        return [CheckResult(f"gpio {name}", PASS, f"{cfg.type} pins readable")]

    return DeviceType(config, build, check, GPIO, quantities, every_interval)
