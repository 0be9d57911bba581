"""Counting rules over tracks: lines crossed, zones entered and left, labels grouped for the IOC.

Pure geometry and bookkeeping, without configuration or I/O: the camera pipeline builds these objects
from its config and feeds them the tracker's output frame by frame.

Only observed positions count (``Track.missed == 0``): a predicted box is a guess, and a track lost as
it leaves the picture glides on and would cross lines the object never reached. The last observed
anchor is kept, so an object the detector missed while it crossed is counted when it is seen again on
the other side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, NamedTuple

import cv2
import numpy as np

from inference.types import Crossing, Track

__all__ = [
    "DEFAULT_GROUPS",
    "ClassGroups",
    "CountKey",
    "CountingLine",
    "LineCounter",
    "OccupancyKey",
    "Zone",
    "ZoneEvent",
    "ZoneWatcher",
]

Point = tuple[float, float]

# The COCO labels of the detector: it says "motorbike", not "motorcycle".
DEFAULT_GROUPS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "vehicles": frozenset({"car", "bus", "truck", "motorbike", "bicycle"}),
        "people": frozenset({"person"}),
        "boats": frozenset({"boat"}),
    }
)


class ClassGroups:
    """Maps the detector's labels to the groups the IOC counts; a label in no group is not counted.

    >>> groups = ClassGroups()
    >>> groups.group_of("motorbike"), groups.group_of("person"), groups.group_of("dog")
    ('vehicles', 'people', None)
    >>> groups.names
    ('vehicles', 'people', 'boats')

    Raises ``ValueError`` when a label is in two groups or a group's labels are a bare string.
    """

    def __init__(self, mapping: Mapping[str, Iterable[str]] = DEFAULT_GROUPS) -> None:
        self._group_of: dict[str, str] = {}
        for group, labels in mapping.items():
            if isinstance(labels, str):
                # {"people": "person"} would otherwise make groups of the letters p, e, r, s, o, n.
                raise ValueError(
                    f"group {group!r}: labels must be a set of strings, not the string {labels!r}"
                )
            for label in labels:
                if label in self._group_of:
                    raise ValueError(
                        f"label {label!r} is in groups {self._group_of[label]!r} and {group!r}: "
                        "a label counts in one group only"
                    )
                self._group_of[label] = group
        self.names: tuple[str, ...] = tuple(mapping)

    def group_of(self, label: str) -> str | None:
        """The group of ``label``, or ``None`` when it is in none."""
        return self._group_of.get(label)


class CountKey(NamedTuple):
    """Key of :meth:`LineCounter.take_counts`; equal to the plain tuple ``(line, group, direction)``."""

    line: str
    group: str
    direction: str


class OccupancyKey(NamedTuple):
    """Key of :meth:`ZoneWatcher.occupancy`; equal to the plain tuple ``(zone, group)``."""

    zone: str
    group: str


@dataclass(frozen=True)
class CountingLine:
    """A counting segment from ``a`` to ``b``, in pixels of the frame.

    Direction: a track crossing from the left of ``a → b`` to its right, as the arrow is seen drawn on
    the image (y pointing down), goes ``in_name``; the other way goes ``out_name``. For a line drawn left
    to right, "in" is downwards in the picture. Swap ``a`` and ``b`` to swap the directions.

    A crossing counts only through the segment itself, not its extension, and only once the anchor is
    at least ``margin_px`` past the line: an anchor jittering on the line stays in the band between
    and counts nothing.

    >>> line = CountingLine("gate", (0, 100), (200, 100))
    >>> line.crossing((50, 90), (60, 110)), line.crossing((60, 110), (50, 90))
    ('in', 'out')
    >>> line.crossing((250, 90), (250, 110)) is None  # beside the end of the segment
    True

    Raises ``ValueError`` when ``a`` and ``b`` are the same point or ``margin_px`` is negative.
    """

    name: str
    a: Point
    b: Point
    in_name: str = "in"
    out_name: str = "out"
    margin_px: float = 4.0

    def __post_init__(self) -> None:
        if tuple(self.a) == tuple(self.b):
            raise ValueError(f"counting line {self.name!r}: a and b are the same point {tuple(self.a)}")
        if self.margin_px < 0:
            raise ValueError(
                f"counting line {self.name!r}: margin_px must be at least 0, not {self.margin_px}"
            )

    def signed_distance(self, point: Point) -> float:
        """Distance of ``point`` from the line, positive on the "in" side (the right of ``a → b``)."""
        (ax, ay), (bx, by) = self.a, self.b
        dx, dy = bx - ax, by - ay
        return ((dx * (point[1] - ay)) - (dy * (point[0] - ax))) / math.hypot(dx, dy)

    def side(self, point: Point) -> int:
        """``1`` on the "in" side past the margin, ``-1`` on the "out" side past it, ``0`` within it."""
        distance = self.signed_distance(point)
        if distance >= self.margin_px and distance > 0:
            return 1
        if distance <= -self.margin_px and distance < 0:
            return -1
        return 0

    def crossing(self, start: Point, end: Point) -> str | None:
        """The direction of a move from ``start`` to ``end`` through the segment, or ``None``.

        Both ends must be past the margin on opposite sides, and the straight move must meet the line
        between ``a`` and ``b``.
        """
        start_side, end_side = self.side(start), self.side(end)
        if start_side == 0 or end_side == 0 or start_side == end_side:
            return None
        d_start, d_end = self.signed_distance(start), self.signed_distance(end)
        along_move = d_start / (d_start - d_end)
        hit = (start[0] + along_move * (end[0] - start[0]), start[1] + along_move * (end[1] - start[1]))
        (ax, ay), (bx, by) = self.a, self.b
        dx, dy = bx - ax, by - ay
        along_line = ((hit[0] - ax) * dx + (hit[1] - ay) * dy) / (dx * dx + dy * dy)
        if not 0 <= along_line <= 1:
            return None
        return self.in_name if end_side > 0 else self.out_name


class LineCounter:
    """Counts tracks crossing lines, by line, group and direction.

    Feed it every track the tracker reports, every frame; a track missing from the list is forgotten.

    >>> from inference.types import Track
    >>> counter = LineCounter([CountingLine("gate", (0, 100), (200, 100))])
    >>> counter.update([Track(1, "car", 0.9, (40, 50, 60, 90))], frame_index=0)
    []
    >>> counter.update([Track(1, "car", 0.9, (40, 70, 60, 110))], frame_index=1)
    [Crossing(line='gate', track_id=1, label='car', group='vehicles', direction='in', frame=1)]
    >>> counter.take_counts()[("gate", "vehicles", "in")]
    1

    Raises ``ValueError`` when two lines have the same name.
    """

    def __init__(self, lines: Sequence[CountingLine], groups: ClassGroups | None = None) -> None:
        names = [line.name for line in lines]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"counting lines named {duplicates} more than once: names must be unique")
        self.lines = tuple(lines)
        self.groups = groups if groups is not None else ClassGroups()
        # Per line, per track: the last anchor observed clear of the line's margin.
        self._last: dict[str, dict[int, Point]] = {line.name: {} for line in self.lines}
        self._counts = self._zero_counts()

    def update(self, tracks: Sequence[Track], frame_index: int) -> list[Crossing]:
        """The crossings of this frame, in the order of lines then tracks; adds them to the counts."""
        present = {track.track_id for track in tracks}
        crossings = []
        for line in self.lines:
            last = self._last[line.name]
            for track_id in last.keys() - present:
                del last[track_id]
            for track in tracks:
                if track.missed or line.side(track.anchor) == 0:
                    continue
                previous = last.get(track.track_id)
                last[track.track_id] = track.anchor
                direction = line.crossing(previous, track.anchor) if previous is not None else None
                group = self.groups.group_of(track.label)
                if direction is None or group is None:
                    continue
                crossings.append(
                    Crossing(line.name, track.track_id, track.label, group, direction, frame_index)
                )
                self._counts[CountKey(line.name, group, direction)] += 1
        return crossings

    def take_counts(self) -> dict[CountKey, int]:
        """The counts since the last call, every line, group and direction present (0 for none); resets.

        Zeros are there so that a quiet interval reports "nobody crossed" rather than nothing.
        """
        counts, self._counts = self._counts, self._zero_counts()
        return counts

    def _zero_counts(self) -> dict[CountKey, int]:
        return {
            CountKey(line.name, group, direction): 0
            for line in self.lines
            for group in self.groups.names
            for direction in (line.in_name, line.out_name)
        }


@dataclass(frozen=True)
class Zone:
    """A polygon of the frame, in pixels; a track is in it when its anchor is.

    Entering needs the anchor ``margin_px`` inside the edge and leaving ``margin_px`` outside it, so
    that an anchor jittering on the edge does not enter and leave again and again.

    >>> quay = Zone("quay", [(0, 0), (100, 0), (100, 50), (0, 50)])
    >>> quay.contains((10, 10)), quay.contains((10, 60)), quay.presence((10, 49))
    (True, False, None)

    Raises ``ValueError`` on a polygon of fewer than 3 points or a negative margin.
    """

    name: str
    polygon: Sequence[Point]
    margin_px: float = 4.0
    _contour: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.polygon) < 3:
            raise ValueError(
                f"zone {self.name!r}: a polygon needs at least 3 points, not {len(self.polygon)}"
            )
        if self.margin_px < 0:
            raise ValueError(f"zone {self.name!r}: margin_px must be at least 0, not {self.margin_px}")
        object.__setattr__(self, "polygon", tuple((float(x), float(y)) for x, y in self.polygon))
        object.__setattr__(self, "_contour", np.array(self.polygon, dtype=np.float32).reshape(-1, 1, 2))

    def signed_distance(self, point: Point) -> float:
        """Distance of ``point`` from the edge, positive inside."""
        return cv2.pointPolygonTest(self._contour, (float(point[0]), float(point[1])), True)

    def contains(self, point: Point) -> bool:
        """Whether ``point`` is inside or on the edge."""
        return self.signed_distance(point) >= 0

    def presence(self, point: Point) -> bool | None:
        """``True`` inside past the margin, ``False`` outside past it, ``None`` within the margin."""
        distance = self.signed_distance(point)
        if distance >= self.margin_px and distance > 0:
            return True
        if distance <= -self.margin_px and distance < 0:
            return False
        return None


@dataclass(frozen=True, slots=True)
class ZoneEvent:
    """A track entering or leaving a zone."""

    zone: str
    track_id: int
    label: str
    group: str
    kind: Literal["enter", "leave"]
    frame: int


@dataclass(frozen=True, slots=True)
class _Occupant:
    label: str
    group: str


class ZoneWatcher:
    """Tells when tracks enter and leave zones, and how many of each group are in each zone.

    Feed it every track the tracker reports, every frame: a track missing from the list has been
    dropped by the tracker and leaves the zones it was in, so occupancy does not creep up. A track
    keeps the label and group it entered with until it leaves, so enter and leave events pair up.

    >>> from inference.types import Track
    >>> watcher = ZoneWatcher([Zone("quay", [(0, 0), (100, 0), (100, 50), (0, 50)])])
    >>> [e.kind for e in watcher.update([Track(1, "boat", 0.8, (10, 0, 30, 20))], frame=0)]
    ['enter']
    >>> watcher.occupancy()[("quay", "boats")]
    1
    >>> [e.kind for e in watcher.update([], frame=1)]
    ['leave']

    Raises ``ValueError`` when two zones have the same name.
    """

    def __init__(self, zones: Sequence[Zone], groups: ClassGroups | None = None) -> None:
        names = [zone.name for zone in zones]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"zones named {duplicates} more than once: names must be unique")
        self.zones = tuple(zones)
        self.groups = groups if groups is not None else ClassGroups()
        self._inside: dict[str, dict[int, _Occupant]] = {zone.name: {} for zone in self.zones}

    def update(self, tracks: Sequence[Track], frame: int) -> list[ZoneEvent]:
        """The events of this frame, in the order of zones, then leaves of vanished tracks, then tracks."""
        present = {track.track_id for track in tracks}
        events = []
        for zone in self.zones:
            inside = self._inside[zone.name]
            for track_id in sorted(inside.keys() - present):
                gone = inside.pop(track_id)
                events.append(ZoneEvent(zone.name, track_id, gone.label, gone.group, "leave", frame))
            for track in tracks:
                if track.missed:
                    continue
                presence = zone.presence(track.anchor)
                occupant = inside.get(track.track_id)
                if presence is False and occupant is not None:
                    del inside[track.track_id]
                    events.append(
                        ZoneEvent(zone.name, track.track_id, occupant.label, occupant.group, "leave", frame)
                    )
                group = self.groups.group_of(track.label)
                if presence is True and occupant is None and group is not None:
                    inside[track.track_id] = _Occupant(track.label, group)
                    events.append(ZoneEvent(zone.name, track.track_id, track.label, group, "enter", frame))
        return events

    def occupancy(self) -> dict[OccupancyKey, int]:
        """How many tracks of each group are in each zone now, every zone and group present."""
        counts = {OccupancyKey(zone.name, group): 0 for zone in self.zones for group in self.groups.names}
        for zone_name, inside in self._inside.items():
            for occupant in inside.values():
                counts[OccupancyKey(zone_name, occupant.group)] += 1
        return counts
