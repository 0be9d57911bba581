"""``type = "sds011"``: a Nova Fitness SDS011 particulate sensor (``drivers.sds011``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from common.config import Section
from drivers.sds011 import Sds011
from edge.devices.particulate import DutyCycleConfig, particulate_sensor
from edge.devices.transport import TransportConfig, uart_baudrate

__all__ = ["DEVICE", "Sds011DriverConfig"]


class Sds011DriverConfig(Section):
    """A Nova Fitness SDS011 particulate sensor (UART, 9600 8N1): PM2.5 and PM10."""

    type: Literal["sds011"] = Field(description="Driver kind.")
    transport: Annotated[TransportConfig, AfterValidator(uart_baudrate("SDS011", 9600))] = Field(
        description="Where the sensor's bytes come from (a serial port at 9600 baud)."
    )
    duty: DutyCycleConfig | None = Field(
        None, description="Duty cycle; absent, the sensor runs continuously."
    )


DEVICE = particulate_sensor(
    Sds011DriverConfig,
    Sds011,
    "SDS011",
    ("pm25", "pm10"),
    """Decode FILE (a capture from `ioc-edge record`, or a raw byte dump) through the SDS011
    parser: one JSON Reading a line on stdout, then the rejected and ignored frames by
    reason on stderr.

    Example: ioc-edge decode sds011 pm-1.cap | head
    """,
)
