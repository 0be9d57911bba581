"""``type = "pms5003"``: a Plantower PMS5003 / PMS7003 particulate sensor (``drivers.pms5003``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from common.config import Section
from drivers.pms5003 import Pms5003
from edge.devices.particulate import DutyCycleConfig, particulate_sensor
from edge.devices.transport import TransportConfig, uart_baudrate

__all__ = ["DEVICE", "Pms5003DriverConfig"]


class Pms5003DriverConfig(Section):
    """A Plantower PMS5003 / PMS7003 particulate sensor (UART, 9600 8N1): PM1, PM2.5 and PM10."""

    type: Literal["pms5003"] = Field(description="Driver kind.")
    transport: Annotated[TransportConfig, AfterValidator(uart_baudrate("PMS5003", 9600))] = Field(
        description="Where the sensor's bytes come from (a serial port at 9600 baud)."
    )
    duty: DutyCycleConfig | None = Field(
        None, description="Duty cycle; absent, the sensor runs continuously."
    )


DEVICE = particulate_sensor(
    Pms5003DriverConfig,
    Pms5003,
    "PMS5003",
    ("pm1", "pm25", "pm10"),
    """Decode FILE (a capture from `ioc-edge record`, or a raw byte dump) through the
    PMS5003/PMS7003 parser: one JSON Reading a line on stdout, then the rejected and
    ignored frames by reason on stderr.

    Example: ioc-edge decode pms5003 pm-2.cap | head
    """,
)
