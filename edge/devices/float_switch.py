"""``type = "float_switch"``: a float switch on a GPIO pin (``drivers.gpio.FloatSwitch``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from common.config import Section
from edge.devices.gpio import Pin, gpio_sensor

__all__ = ["DEVICE", "FloatSwitchDriverConfig"]


class FloatSwitchDriverConfig(Section):
    """A float switch on a GPIO pin: water above or below its level."""

    type: Literal["float_switch"] = Field(description="Driver kind.")
    pin: Pin = Field(description="GPIO of the switch: BCM number or a name like 'GPIO27'.", examples=[27])
    pull_up: bool = Field(True, description="Internal pull-up (switch to ground) rather than pull-down.")


# It reports only when the water crosses its level: never silent.
DEVICE = gpio_sensor(FloatSwitchDriverConfig, "FloatSwitch", ("float_high",), lambda cfg: None)
