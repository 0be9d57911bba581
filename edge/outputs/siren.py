"""``type = "siren"``: a siren switched by a relay on a GPIO pin (``drivers.outputs.Signal``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edge.outputs.gpio import SignalOutputConfig, signal_output

__all__ = ["OUTPUT", "SirenOutputConfig"]


class SirenOutputConfig(SignalOutputConfig):
    """A siren (a motor or electronic one, on a relay or contactor): sounds the patterns."""

    type: Literal["siren"] = Field(description="Output kind.")


OUTPUT = signal_output(SirenOutputConfig)
