"""``type = "rain_gauge"``: a tipping-bucket rain gauge on a GPIO pin (``drivers.gpio.RainGauge``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from common.config import Section
from edge.devices.gpio import Pin, gpio_sensor

__all__ = ["DEVICE", "RainGaugeDriverConfig"]


class RainGaugeDriverConfig(Section):
    """A tipping-bucket rain gauge: a reed switch on a GPIO pin closes once per tip."""

    type: Literal["rain_gauge"] = Field(description="Driver kind.")
    pin: Pin = Field(description="GPIO of the switch: BCM number or a name like 'GPIO17'.", examples=[17])
    mm_per_tip: float = Field(0.2, description="Rain per tip of the bucket (millimetres).", gt=0, le=10)
    bounce_s: float = Field(0.05, description="Debounce time of the switch (seconds).", ge=0, le=1)
    pull_up: bool = Field(True, description="Internal pull-up (switch to ground) rather than pull-down.")


# It reports only when the bucket tips: never silent, and 0 mm in an interval without a tip.
DEVICE = gpio_sensor(
    RainGaugeDriverConfig, "RainGauge", ("rain_mm", "rain_mm_per_h"), lambda cfg: None, ("rain_mm",)
)
