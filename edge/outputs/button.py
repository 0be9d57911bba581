"""``type = "button"``: the acknowledge button on a GPIO pin (``drivers.outputs.AckButton``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from common.config import Section
from edge.devices.gpio import Pin
from edge.outputs.base import OutputContext, OutputType

__all__ = ["OUTPUT", "ButtonOutputConfig"]


class ButtonOutputConfig(Section):
    """A push button a person on site presses to acknowledge a warning."""

    type: Literal["button"] = Field(description="Output kind.")
    pin: Pin = Field(description="GPIO of the button: BCM number or a name like 'GPIO5'.", examples=[5])
    pull_up: bool = Field(True, description="Internal pull-up (button to ground) rather than pull-down.")
    bounce_s: float = Field(
        0.05, description="Presses this soon after the last are contact bounce.", ge=0, le=1
    )


def build(name: str, cfg: ButtonOutputConfig, ctx: OutputContext) -> Any:
    from drivers.outputs import AckButton

    return AckButton(cfg.pin, pull_up=cfg.pull_up, bounce_s=cfg.bounce_s, pin_factory=ctx.pin_factory)


OUTPUT = OutputType(ButtonOutputConfig, "button", build)
