"""What the GPIO outputs (``siren``, ``light``, ``button``) share: their pins, and the signal type of
a siren or a light (``drivers.outputs.Signal``)."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, Field

from common.config import Section
from edge.devices.gpio import Pin
from edge.outputs.base import OutputContext, OutputType

__all__ = ["SignalOutputConfig", "pins_of", "signal_output"]

_PIN_CHECKS = get_args(Pin)[1:]


def pins_of(section: BaseModel) -> dict[str, int | str]:
    """The GPIO pins a config section (a driver's or an output's) takes: ``{field: pin}``.

    Pins are as the config normalised them: ``"GPIO17"`` is 17, a header pin (``"BOARD11"``) stays
    a name, so a header pin and its GPIO number are not recognised as one pin here (gpiozero refuses
    the second when the node takes them).

    Example::

        >>> from edge.devices.water_level import WaterLevelDriverConfig
        >>> sonar = {"type": "water_level", "trigger_pin": 23, "echo_pin": "GPIO24", "mount_height_m": 5.0}
        >>> pins_of(WaterLevelDriverConfig(**sonar))
        {'trigger_pin': 23, 'echo_pin': 24}
    """
    fields = type(section).model_fields
    return {
        name: getattr(section, name)
        for name, field in fields.items()
        if any(check in field.metadata for check in _PIN_CHECKS)
    }


class SignalOutputConfig(Section):
    """The keys of a siren or a light: its pin and the level that switches it on."""

    pin: Pin = Field(
        description="GPIO of the relay's input: BCM number or a name like 'GPIO17'.", examples=[17]
    )
    active_high: bool = Field(
        True, description="On is a high pin; false for a relay board switching on a low input."
    )


def signal_output(config: type[SignalOutputConfig]) -> OutputType:
    """The output type of a signal (siren or light) whose config model is ``config``."""

    def build(name: str, cfg: SignalOutputConfig, ctx: OutputContext) -> Any:
        from drivers.outputs import Signal

        return Signal(cfg.pin, active_high=cfg.active_high, pin_factory=ctx.pin_factory)

    return OutputType(config, "signal", build)
