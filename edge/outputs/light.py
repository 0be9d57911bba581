"""``type = "light"``: a warning light (a beacon, a strobe) on a GPIO pin (``drivers.outputs.Signal``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.outputs.gpio import SignalOutputConfig, signal_output

__all__ = ["OUTPUT", "LightOutputConfig"]


class LightOutputConfig(SignalOutputConfig):
    """A warning light switched by a relay: flashes the patterns with the sirens."""

    type: Literal["light"] = Field(description="Output kind.")


OUTPUT = signal_output(LightOutputConfig)
