"""``type = "water_level"``: an ultrasonic water level sensor on GPIO (``drivers.gpio.WaterLevel``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from common.config import Section
from edge.devices.gpio import Pin, gpio_sensor

__all__ = ["DEVICE", "WaterLevelDriverConfig"]


class WaterLevelDriverConfig(Section):
    """An ultrasonic distance sensor (HC-SR04 style) pointing down at the water: the water level."""

    type: Literal["water_level"] = Field(description="Driver kind.")
    trigger_pin: Pin = Field(description="GPIO of the trigger input: BCM number or name.", examples=[23])
    echo_pin: Pin = Field(description="GPIO of the echo output: BCM number or name.", examples=[24])
    mount_height_m: float = Field(
        description="Height of the sensor above the gauge's zero (metres).", gt=0, le=50, examples=[5.0]
    )
    max_distance_m: float = Field(4.0, description="Farthest echo measured (metres).", gt=0, le=10)
    interval_s: float = Field(10.0, description="One level reading per interval (seconds).", ge=0.1, le=3600)

    @field_validator("echo_pin")
    @classmethod
    def _distinct_pins(cls, value: int | str, info: ValidationInfo) -> int | str:
        if value == info.data.get("trigger_pin"):
            raise ValueError(f"{value!r} is also the trigger_pin; expected another pin")
        return value


# It reports every interval_s.
DEVICE = gpio_sensor(
    WaterLevelDriverConfig, "WaterLevel", ("water_level_m", "water_rise_m_per_h"), lambda cfg: cfg.interval_s
)
