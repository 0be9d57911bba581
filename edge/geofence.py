"""Geofences: permitted fishing zones and forbidden areas, watched on the node as positions come.

A zone is an area in lon/lat (WGS 84, GeoJSON order): polygons, each an outer ring and its
holes. Each position with a valid fix is measured against each zone: how many metres it is
*beyond* the boundary, on the side that should raise the alarm (outside a ``permitted`` zone,
inside a ``forbidden`` area; negative on the right side). The distance is taken in a local
projection of the zone: equirectangular about its centre, with the lengths of a degree on the
WGS 84 ellipsoid there (off by under 0.3 % at the edges of a zone 100 km across at Hue's
latitude, where a degree of longitude shrinks). A zone's alarm is raised once the boat is
beyond the boundary by more than ``hysteresis_m`` and cleared once it is back on the right side
by as much, so a boat on the line neither raises nor clears: one raise, one clear.

Alarms (:class:`~sync.records.Alarm`, the alarm lane: sent ahead of any backlog) carry the
zone's name as ``source``, ``kind`` ``geofence_left`` (a permitted zone) or
``geofence_entered`` (a forbidden area), ``state`` 1 raised / 0 cleared, ``value`` the metres
beyond the boundary (negative in a clear: how far back) and an operator's message, stamped
with the time of the fix that decided it.

Geometry is shapely's (GEOS): about 5 MB more in the node's memory, which is why this module is
imported only by nodes that have geofences.

Example::

    >>> square = [[(107.50, 16.60), (107.56, 16.60), (107.56, 16.64), (107.50, 16.64), (107.50, 16.60)]]
    >>> fence = Geofence("tam-giang", "permitted", [square], hysteresis_m=50)
    >>> [round(m) for m in fence.beyond([16.62, 16.62], [107.53, 107.5650])]
    [-2213, 533]
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import shapely

from sync.records import Alarm, Position

if TYPE_CHECKING:
    from edge.config import GeofenceConfig
    from sync.recorder import Recorder
    from sync.store import Store

__all__ = [
    "Area",
    "Geofence",
    "GeofenceMonitor",
    "check_area",
    "depth_m",
    "load_geojson",
    "metres_per_degree",
    "monitor_for",
    "read_ring",
    "step",
]

Ring = list[tuple[float, float]]
"""Closed: the first point repeated at the end, (lon, lat) each."""
Area = list[list[Ring]]
"""Polygons, each its outer ring then its holes."""
Sink = Callable[[str, list], None]

VALID_FIX = frozenset({None, 1, 2, 3, 4, 5})
"""GGA qualities that count (None: from RMC alone, status A); 6 (dead reckoning), 7 (manual) and
8 (simulation) are no measured position."""
STATE_KEY = "geofences_raised"
"""The store's metadata key holding the raised zones, so a restart neither raises twice nor
forgets to clear."""

_REASONS = {
    "Self-intersection": "edges cross at {at}: check the order of the points (a ring must not cross "
    "itself, and the polygons of one zone must not overlap)",
    "Ring Self-intersection": "the ring touches itself at {at}: check the order of the points",
    "Hole lies outside shell": "a hole lies outside its polygon at {at}",
    "Nested shells": "one polygon lies inside another at {at}: make the inner one a hole, or join them",
    "Interior is disconnected": "holes cut the polygon in two at {at}: make it two polygons",
}
"""GEOS's reasons for an invalid area, in words and with what to do."""


def _where(parts: Sequence[str]) -> str:
    return ", ".join(parts) + ": " if parts else ""


def _point(p: tuple[float, float]) -> str:
    return f"[{p[0]:g}, {p[1]:g}]"


def read_ring(points: Any, where: Sequence[str] = ()) -> Ring:
    """``[[lon, lat], ...]`` checked: numbers in range, at least 3 corners, closed.

    Raises ValueError saying which point is wrong and how, e.g. that a latitude beyond 90 means
    the pair is in (lat, lon) order rather than GeoJSON's (lon, lat).
    """
    if not isinstance(points, list | tuple) or not all(
        isinstance(p, list | tuple)
        and len(p) in (2, 3)  # GeoJSON allows an altitude
        and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in p)
        for p in points
    ):
        raise ValueError(f"{_where(where)}expected a list of [lon, lat] points (numbers)")
    ring = [(float(p[0]), float(p[1])) for p in points]
    for number, (lon, lat) in enumerate(ring, start=1):
        if abs(lat) > 90:
            raise ValueError(
                f"{_where([*where, f'point {number}'])}latitude {lat:g} is beyond ±90: "
                "expected [lon, lat] (GeoJSON order); are the two swapped?"
            )
        if abs(lon) > 180:
            raise ValueError(f"{_where([*where, f'point {number}'])}longitude {lon:g} is beyond ±180")
    corners = len(set(ring))
    if corners < 3:
        raise ValueError(f"{_where(where)}{corners} distinct point(s); expected at least 3 corners")
    if ring[0] != ring[-1]:
        raise ValueError(
            f"{_where(where)}the ring is not closed: its last point {_point(ring[-1])} is not its first "
            f"{_point(ring[0])}; repeat the first point at the end"
        )
    return ring


def _polygon(rings: Any, where: list[str]) -> list[Ring]:
    if not isinstance(rings, list) or not rings:
        raise ValueError(f"{_where(where)}expected a list of rings (the outer one, then any holes)")
    names = ["outer ring"] + [f"hole {n}" for n in range(1, len(rings))]
    return [read_ring(ring, [*where, name]) for ring, name in zip(rings, names, strict=True)]


def _geometry(geometry: Any, where: list[str]) -> Area:
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    if kind == "Polygon":
        return [_polygon(geometry.get("coordinates"), where)]
    if kind == "MultiPolygon":
        polygons = geometry.get("coordinates")
        if not isinstance(polygons, list) or not polygons:
            raise ValueError(f"{_where(where)}expected a list of polygons in 'coordinates'")
        return [_polygon(p, [*where, f"polygon {n}"]) for n, p in enumerate(polygons, start=1)]
    if kind is None:
        raise ValueError(f"{_where(where)}expected a GeoJSON object with a 'type'")
    raise ValueError(f"{_where(where)}a {kind} is not an area; expected a Polygon or a MultiPolygon")


def area_from_geojson(obj: Any) -> Area:
    """The polygons of a GeoJSON Polygon, MultiPolygon, Feature or FeatureCollection of those.

    Raises ValueError naming the feature, polygon, ring and point that is wrong.
    """
    kind = obj.get("type") if isinstance(obj, dict) else None
    if kind == "Feature":
        return _geometry(obj.get("geometry"), [])
    if kind == "FeatureCollection":
        features = obj.get("features")
        if not isinstance(features, list) or not features:
            raise ValueError("expected a non-empty list of 'features'")
        area: Area = []
        for number, feature in enumerate(features, start=1):
            where = [f"feature {number}"]
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise ValueError(f"{_where(where)}expected a Feature")
            area += _geometry(feature.get("geometry"), where)
        return area
    return _geometry(obj, [])


def load_geojson(path: Path) -> Area:
    """The area in GeoJSON file ``path``, checked; raises ValueError starting with the file's name."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
        area = area_from_geojson(obj)
        check_area(area)
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return area


def _shape(area: Area) -> shapely.MultiPolygon:
    return shapely.MultiPolygon([shapely.Polygon(rings[0], rings[1:]) for rings in area])


def check_area(area: Area) -> None:
    """Raises ValueError when the rings cross, touch or overlap (GEOS's validity), saying where."""
    reason = shapely.is_valid_reason(_shape(area))
    if reason == "Valid Geometry":
        return
    found = re.fullmatch(r"(.*?)\[(\S+) (\S+)\]", reason)
    if not found:
        raise ValueError(f"not a valid area: {reason}")
    text, lon, lat = found.groups()
    at = _point((float(lon), float(lat)))
    raise ValueError(_REASONS.get(text, f"not a valid area: {text.lower()} at {{at}}").format(at=at))


def _projected(area: Area) -> tuple[shapely.MultiPolygon, np.ndarray, np.ndarray]:
    """The area in metres about its centre, the centre (lon, lat) and the metres per degree there."""
    shape = _shape(area)
    lon_min, lat_min, lon_max, lat_max = shape.bounds
    origin = np.array([(lon_min + lon_max) / 2, (lat_min + lat_max) / 2])
    scale = np.array(metres_per_degree(origin[1]))
    return shapely.transform(shape, lambda xy: (xy - origin) * scale), origin, scale


def depth_m(area: Area) -> float:
    """How far inside ``area`` a point can be, in metres: the radius of the largest circle within it.

    >>> depth_m([[[(107.5, 16.6), (107.6, 16.6), (107.6, 16.601), (107.5, 16.601), (107.5, 16.6)]]])
    55.3...
    """
    return shapely.maximum_inscribed_circle(_projected(area)[0]).length


class Geofence:
    """One zone: its name, ``kind`` (``permitted`` or ``forbidden``), area and hysteresis.

    ``area`` is checked by the config (:func:`read_ring`, :func:`check_area`); here it is
    projected once, about its centre, into metres.

    Example::

        >>> square = [[(107.5, 16.6), (107.6, 16.6), (107.6, 16.7), (107.5, 16.7), (107.5, 16.6)]]
        >>> reserve = Geofence("hai-van", "forbidden", [square], hysteresis_m=20)
        >>> [round(m) for m in reserve.beyond([16.65, 16.65], [107.55, 107.61])]
        [5334, -1067]
    """

    def __init__(
        self, name: str, kind: Literal["permitted", "forbidden"], area: Area, hysteresis_m: float = 50.0
    ) -> None:
        self.name, self.kind, self.hysteresis_m = name, kind, hysteresis_m
        self._shape, self._origin, self._scale = _projected(area)
        self._boundary = self._shape.boundary
        shapely.prepare(self._shape)
        shapely.prepare(self._boundary)

    def beyond(self, lats: Sequence[float], lons: Sequence[float]) -> list[float]:
        """Metres beyond the boundary on the alarm's side, for each point (negative: the right side)."""
        xy = (np.column_stack([lons, lats]) - self._origin) * self._scale
        inside = shapely.contains_xy(self._shape, xy[:, 0], xy[:, 1])
        metres = shapely.distance(self._boundary, shapely.points(xy))
        alarm_side = ~inside if self.kind == "permitted" else inside
        return np.where(alarm_side, metres, -metres).tolist()


def metres_per_degree(lat: float) -> tuple[float, float]:
    """Metres per degree of longitude and of latitude at ``lat`` on the WGS 84 ellipsoid.

    >>> [round(m, 1) for m in metres_per_degree(15.0)]
    [107550.5, 110648.7]
    """
    phi = math.radians(lat)
    lon = 111_412.84 * math.cos(phi) - 93.5 * math.cos(3 * phi) + 0.118 * math.cos(5 * phi)
    lat_m = 111_132.92 - 559.82 * math.cos(2 * phi) + 1.175 * math.cos(4 * phi) - 0.0023 * math.cos(6 * phi)
    return lon, lat_m


def step(raised: bool, beyond_m: float, hysteresis_m: float) -> str | None:
    """``"raise"``, ``"clear"`` or None (no change) for a point ``beyond_m`` beyond the boundary.

    >>> [step(False, m, 50) for m in (10, 49, 51)], [step(True, m, 50) for m in (0, -49, -51)]
    ([None, None, 'raise'], [None, None, 'clear'])
    """
    if not raised and beyond_m > hysteresis_m:
        return "raise"
    if raised and beyond_m < -hysteresis_m:
        return "clear"
    return None


def _where_words(p: Position) -> str:
    return f"{abs(p.lat):.4f} {'N' if p.lat >= 0 else 'S'} {abs(p.lon):.4f} {'E' if p.lon >= 0 else 'W'}"


_WORDS = {
    ("permitted", "raise"): "left permitted zone {name} by {m:.0f} m at {at}",
    ("permitted", "clear"): "back in permitted zone {name}, {m:.0f} m inside, at {at}",
    ("forbidden", "raise"): "entered forbidden area {name} by {m:.0f} m at {at}",
    ("forbidden", "clear"): "left forbidden area {name}, {m:.0f} m out, at {at}",
}
KINDS = {"permitted": "geofence_left", "forbidden": "geofence_entered"}
"""The alarm's ``kind`` by the zone's."""


class GeofenceMonitor:
    """Measures each position against the zones and sends an alarm when a zone's state changes.

    ``sink("alarm", alarms)`` receives them (the recorder's ``append``). ``raised``: the zones
    whose alarm was up when the node last stopped; ``on_change(raised)`` gets the new set after
    every change, to be kept for the next start. Without a saved state the first position
    decides: outside a permitted zone at start raises. ``feed`` may be called from any thread.
    ``counts``: ``raised``, ``cleared``, ``no_fix`` (positions skipped).

    Example (a boat inside its permitted zone, then 533 m out of it)::

        >>> square = [[(107.50, 16.60), (107.56, 16.60), (107.56, 16.64), (107.50, 16.64), (107.50, 16.60)]]
        >>> alarms = []
        >>> monitor = GeofenceMonitor(
        ...     [Geofence("tam-giang", "permitted", [square], hysteresis_m=50)],
        ...     lambda stream, batch: alarms.extend(batch),  # the recorder's append in a node
        ... )
        >>> t = 1700000000000
        >>> inside, out = Position(t, 1, t, 16.62, 107.53, fix=1), Position(t, 1, t, 16.62, 107.565, fix=1)
        >>> monitor.feed([inside, out])
        >>> [(a.kind, a.state, a.message) for a in alarms]
        [('geofence_left', 1, 'left permitted zone tam-giang by 533 m at 16.6200 N 107.5650 E')]
        >>> monitor.raised
        {'tam-giang'}
    """

    def __init__(
        self,
        fences: Iterable[Geofence],
        sink: Sink,
        raised: Iterable[str] = (),
        on_change: Callable[[set[str]], None] | None = None,
    ) -> None:
        self.fences = list(fences)
        self.sink, self.on_change = sink, on_change
        names = {f.name for f in self.fences}
        self.raised = {name for name in raised if name in names}  # a zone since removed is forgotten
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def feed(self, positions: Sequence[Position]) -> None:
        """Check ``positions`` (in time order); alarms for the zones whose state they change."""
        fixes = [p for p in positions if p.fix in VALID_FIX]
        if len(fixes) < len(positions):
            self.counts["no_fix"] += len(positions) - len(fixes)
        if not fixes:
            return
        lats, lons = [p.lat for p in fixes], [p.lon for p in fixes]
        alarms: list[Alarm] = []
        with self._lock:
            for fence in self.fences:
                up = fence.name in self.raised
                for p, metres in zip(fixes, fence.beyond(lats, lons), strict=True):
                    change = step(up, metres, fence.hysteresis_m)
                    if change is not None:
                        up = change == "raise"
                        alarms.append(self._alarm(fence, change, p, metres))
                if up:
                    self.raised.add(fence.name)
                else:
                    self.raised.discard(fence.name)
            if alarms:
                alarms.sort(key=lambda a: a.ts_ms)  # zone by zone above: back in time order
                self.counts.update("raised" if a.state else "cleared" for a in alarms)
                self.sink("alarm", alarms)
                if self.on_change is not None:
                    self.on_change(set(self.raised))

    @staticmethod
    def _alarm(fence: Geofence, change: str, p: Position, metres: float) -> Alarm:
        words = _WORDS[(fence.kind, change)].format(name=fence.name, m=abs(metres), at=_where_words(p))
        return Alarm(
            p.ts_ms, p.tsrc, p.clock_ms, fence.name, KINDS[fence.kind], int(change == "raise"), metres, words
        )


def monitor_for(zones: Mapping[str, GeofenceConfig], recorder: Recorder, store: Store) -> GeofenceMonitor:
    """The node's monitor of its ``[geofences]``: alarms and the state through ``recorder``.

    The state (which zones are raised) is read from ``store``'s metadata, where the recorder
    saved it at the last change, after the alarm's record.
    """
    fences = [Geofence(name, zone.kind, zone.area(), zone.hysteresis_m) for name, zone in zones.items()]
    saved = json.loads(store.meta(STATE_KEY) or "[]")
    return GeofenceMonitor(
        fences,
        recorder.append,
        saved,
        lambda raised: recorder.set_meta(STATE_KEY, json.dumps(sorted(raised))),
    )
