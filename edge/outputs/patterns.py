"""Named signal patterns, ``[patterns.NAME]``, with Hue's civil-defence signals as the defaults.

Hue's sirens sound fixed signals ordered by civil defence (issue 16; the city's regulation on its
warning sirens, as reported when the system was first sounded in October 2025): blasts of a set
length with gaps between them, the whole repeated. The regulation gives the blasts, their length, the
gap (``off_s``) and how many times at most the signal is repeated; the pause between repeats is ours
(:data:`PAUSE_S`). A config may override a default (the whole table) or add its own.

Example::

    >>> patterns({"drill": PatternConfig(on_s=2, off_s=0, blasts=1)})["drill"]
    Pattern(on_s=2.0, off_s=0.0, blasts=1, repeat=1, pause_s=0.0)
    >>> patterns({})["storm"].duration_s
    360.0
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import Field, ValidationInfo, field_validator

from common.config import Section
from drivers.outputs import Pattern

__all__ = ["DEFAULT_PATTERNS", "PAUSE_S", "PatternConfig", "patterns"]

PAUSE_S = 60.0
"""Between two repeats of a signal: long enough that nobody counts the next blasts with the last."""


class PatternConfig(Section):
    """``[patterns.NAME]``: ``blasts`` of ``on_s`` with ``off_s`` between, ``repeat`` times with
    ``pause_s`` between repeats."""

    on_s: float = Field(description="Length of one blast (seconds).", gt=0, le=600, examples=[20])
    off_s: float = Field(description="Gap between two blasts (seconds).", ge=0, le=600, examples=[10])
    blasts: int = Field(description="Blasts in one signal.", ge=1, le=20, examples=[3])
    repeat: int = Field(1, description="How many times the signal is sounded.", ge=1, le=10)
    pause_s: float = Field(
        0.0, description="Pause between two repeats (seconds).", ge=0, le=3600, validate_default=True
    )

    @field_validator("blasts")
    @classmethod
    def _blasts_apart(cls, value: int, info: ValidationInfo) -> int:
        if value > 1 and info.data.get("off_s") == 0:
            raise ValueError(f"{value} blasts without a gap are one blast; set off_s > 0")
        return value

    @field_validator("pause_s")
    @classmethod
    def _repeats_apart(cls, value: float, info: ValidationInfo) -> float:
        if value == 0 and info.data.get("repeat", 1) > 1:
            raise ValueError(f"repeat = {info.data['repeat']} needs a pause between repeats; set pause_s > 0")
        return value

    def pattern(self) -> Pattern:
        """The pattern a :class:`drivers.outputs.Sounding` plays."""
        return Pattern(self.on_s, self.off_s, self.blasts, self.repeat, self.pause_s)


DEFAULT_PATTERNS: dict[str, PatternConfig] = {
    # Storm or tropical depression: 3 blasts of 20 s, 10 s apart, up to 3 times.
    "storm": PatternConfig(on_s=20, off_s=10, blasts=3, repeat=3, pause_s=PAUSE_S),
    # Flood above alarm level II (or likely to reach III): 2 blasts of 10 s, 10 s apart, up to 2 times.
    "flood-2": PatternConfig(on_s=10, off_s=10, blasts=2, repeat=2, pause_s=PAUSE_S),
    # Flood above alarm level III, an emergency storm or a tsunami: 5 blasts of 30 s, 5 s apart, 3 times.
    "flood-3": PatternConfig(on_s=30, off_s=5, blasts=5, repeat=3, pause_s=PAUSE_S),
    "tsunami": PatternConfig(on_s=30, off_s=5, blasts=5, repeat=3, pause_s=PAUSE_S),
    # A drill: one short blast, unlike any real signal.
    "exercise": PatternConfig(on_s=3, off_s=0, blasts=1),
}
"""Hue's signals by name (see the module); ``[patterns.NAME]`` overrides or adds to them."""


def patterns(configured: Mapping[str, PatternConfig]) -> dict[str, Pattern]:
    """Every pattern a node knows: the defaults, overridden and added to by its ``[patterns.NAME]``."""
    return {name: cfg.pattern() for name, cfg in {**DEFAULT_PATTERNS, **configured}.items()}
