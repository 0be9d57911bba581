"""What the UART particulate sensors (``sds011``, ``pms5003``) share: the duty cycle, how they are
built and self-tested (``drivers.particulate``)."""

from __future__ import annotations

import contextlib
from typing import Any, Protocol

from pydantic import Field

from common.config import Section
from drivers.particulate import DutyCycledDriver
from drivers.transport import TransportError
from edge.devices.base import (
    FAIL,
    PASS,
    SERIAL,
    BuildContext,
    CheckContext,
    CheckResult,
    Decoder,
    DeviceType,
    first_records,
)
from edge.devices.transport import TransportConfig, ends_by_itself, open_transport
from edge.health import Watched
from edge.status import counts_text

__all__ = ["DutyCycleConfig", "particulate_sensor"]


class DutyCycleConfig(Section):
    """``[drivers.NAME.duty]`` of a particulate sensor: sleep between work periods to save the laser.

    Each cycle: wake the sensor, discard ``warmup_s`` of readings (the fan and laser settle),
    keep ``work_s`` of readings, then put it to sleep for ``sleep_s``.
    """

    work_s: float = Field(30, description="Readings kept per cycle, once warmed up (seconds).", ge=1, le=3600)
    warmup_s: float = Field(
        30, description="Readings discarded after waking while fan and laser settle (seconds).", ge=0, le=600
    )
    sleep_s: float = Field(
        240, description="Laser and fan off between work periods (seconds).", ge=0, le=86_400
    )


class SensorConfig(Protocol):
    """The config of a UART particulate sensor (its model adds its ``type`` and its baud rate check)."""

    type: Any
    transport: TransportConfig
    duty: DutyCycleConfig | None


def particulate_sensor(
    config: type[Any], driver: type[DutyCycledDriver], model: str, quantities: tuple[str, ...], help: str
) -> DeviceType:
    """The device type of the UART particulate sensor ``driver`` (``model``: its name for people)."""

    def build(name: str, cfg: SensorConfig, ctx: BuildContext) -> Watched:
        sensor = driver(name, ctx.transport(name, cfg.transport), ctx.sink, ctx.clock, duty=cfg.duty)
        duty = cfg.duty
        # a duty-cycled sensor is silent while it sleeps and warms up
        quiet_s = duty.sleep_s + duty.warmup_s if duty else 0.0
        return Watched(sensor, cfg.type, quiet_s, ends_by_itself(cfg.transport))

    def check(name: str, cfg: SensorConfig, ctx: CheckContext) -> list[CheckResult]:
        """The sensor delivers a valid frame within ``ctx.seconds``: silent or garbage otherwise."""
        label = f"sensor {name}"
        try:
            transport = open_transport(cfg.transport)
        except TransportError as exc:
            return [CheckResult(label, FAIL, str(exc), f"check drivers.{name}.transport and the cable")]
        parser = driver.parser_class(name, ctx.clock)
        with transport:
            # A sensor left asleep by a duty cycle sends nothing; a replay cannot take the command.
            with contextlib.suppress(TransportError):
                transport.write(driver.wake_command)
            read, readings = first_records(transport, parser, ctx.seconds)
        if readings:
            return [CheckResult(label, PASS, f"{model} frames valid ({read} bytes in)")]
        if not read:
            hint = f"silent: check the {model}'s power and that its TX goes to the node's RX on this port"
            return [CheckResult(label, FAIL, f"no byte in {ctx.seconds:g} s", hint)]
        hint = f"garbage: wrong baud rate? the {model} speaks 9600 8N1; check the port's settings and wiring"
        rejects = counts_text(parser.rejects, ", ")
        return [CheckResult(label, FAIL, f"{read} bytes, no valid frame (rejects: {rejects})", hint)]

    return DeviceType(config, build, check, SERIAL, quantities, decoder=Decoder(driver.parser_class, help))
