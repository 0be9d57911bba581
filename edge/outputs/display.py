"""``type = "display"``: an LED signboard or a cabin display on a serial line
(``drivers.outputs.TextDisplay``; the framing is ``drivers.outputs.screen``'s)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from common.config import Section
from edge.devices.transport import TransportConfig
from edge.outputs.base import OutputContext, OutputType

__all__ = ["OUTPUT", "DisplayOutputConfig"]


class DisplayOutputConfig(Section):
    """A text display: each warning replaces its screen with lines of UTF-8 text."""

    type: Literal["display"] = Field(description="Output kind.")
    transport: TransportConfig = Field(description="The serial line of the display (or a pty).")


def build(name: str, cfg: DisplayOutputConfig, ctx: OutputContext) -> Any:
    from drivers.outputs import TextDisplay

    return TextDisplay(ctx.transport(name, cfg.transport))


OUTPUT = OutputType(DisplayOutputConfig, "display", build)
