"""What the camera pipeline passes between its stages: detections, tracks and crossings.

Boxes are ``(x1, y1, x2, y2)`` in pixels of the original frame.
"""

from __future__ import annotations

from dataclasses import dataclass

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Detection:
    """One object the detector found in one frame."""

    label: str
    class_id: int
    score: float
    box: Box


@dataclass(frozen=True, slots=True)
class Track:
    """An object followed across frames: ``track_id`` is stable while it stays in view.

    ``missed`` counts the frames since the detector last saw it (its box is then predicted).
    """

    track_id: int
    label: str
    score: float
    box: Box
    missed: int = 0

    @property
    def anchor(self) -> tuple[float, float]:
        """The point that crosses lines and enters zones: the bottom centre (where it touches the ground)."""
        x1, _, x2, y2 = self.box
        return ((x1 + x2) / 2, y2)


@dataclass(frozen=True, slots=True)
class Crossing:
    """A track crossing a counting line, ``direction`` ``"in"`` or ``"out"`` as its config names them."""

    line: str
    track_id: int
    label: str
    group: str
    direction: str
    frame: int
