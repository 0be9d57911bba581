"""Online track thinning: the live ``position`` stream keeps the points that matter to the track's shape.

On an expensive link (a satellite modem billed by the byte) a vessel sends only the points needed to
draw its track within ``tolerance_m`` metres, and one at least every ``max_interval_s`` (Vietnamese
rules: a fishing vessel at sea reports its position at least every two hours). Every position is
still in the node's track log, which reaches the IOC whole once a cheap link is up.

The algorithm is an opening window (a streaming Douglas-Peucker): the last kept point is the
*anchor*; the points received since wait in a window. When a new point arrives and some point of
the window would lie further than ``tolerance_m`` from the segment anchor -> new point, the point
before the new one is kept and becomes the anchor. So every point dropped lies within
``tolerance_m`` of the segment between the kept points around it. Distances are measured in an
equirectangular projection around the anchor: over the few kilometres of a window at Vietnam's
latitudes it differs from the sphere by well under a metre (about L² tan(lat) / 8R: 0.2 m for a
6 km window at 16° N).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from common.component import Component
from sync.records import Position

if TYPE_CHECKING:
    from edge.config import LinkProfileConfig

__all__ = ["LiveTrack", "TrackThinner"]

METRES_PER_DEGREE = 6_371_008.8 * math.pi / 180
"""On the mean Earth sphere (IUGG mean radius)."""


class TrackThinner:
    """Keeps the points of a track needed to draw it within ``tolerance_m``, one point at a time.

    :meth:`add` takes the next point and returns the points it decided to keep (none, or the point
    before it; the very first point is kept at once); :meth:`flush` keeps the newest point (the end
    of a track, a pause). Guarantees, for the points given and those returned:

    - every point lies within ``tolerance_m`` of the polyline of the kept points;
    - the first point is kept, and after :meth:`flush` the last one too;
    - two consecutive kept points are at most ``max_interval_s`` apart, unless nothing came between;
    - at most ``max_window`` points wait (a boat adrift for hours does not grow memory): a full
      window keeps its newest point.

    ``tolerance_m`` 0 keeps every point. Raises ``ValueError`` naming the argument when one is out
    of range.

    Example::

        >>> thinner = TrackThinner(tolerance_m=10, max_interval_s=3600)
        >>> straight = [Position(i * 1000, 1, i * 1000, 16.5 + i * 1e-4, 107.6) for i in range(100)]
        >>> kept = [k for p in straight for k in thinner.add(p)] + thinner.flush()
        >>> [k.ts_ms for k in kept]
        [0, 99000]
    """

    def __init__(self, tolerance_m: float, max_interval_s: float, max_window: int = 1024) -> None:
        if not tolerance_m >= 0:
            raise ValueError(f"tolerance_m {tolerance_m!r} is negative; expected >= 0")
        if not max_interval_s > 0:
            raise ValueError(f"max_interval_s {max_interval_s!r} is not positive; expected > 0")
        if max_window < 1:
            raise ValueError(f"max_window {max_window!r} is below 1; expected >= 1")
        self.tolerance_m = float(tolerance_m)
        self.max_interval_s = float(max_interval_s)
        self.max_window = max_window
        self._anchor: Position | None = None
        self._window: list[Position] = []
        # The window's coordinates, kept alongside so each check is one vectorised pass.
        self._lat = np.empty(max_window)
        self._lon = np.empty(max_window)

    @property
    def waiting(self) -> int:
        """Points received since the last kept one, not decided yet."""
        return len(self._window)

    def add(self, point: Position) -> list[Position]:
        """Take the next point; return the points kept because of it (at most one)."""
        if self._anchor is None or self.tolerance_m == 0:
            self._anchor = point
            return [point]
        kept = []
        if self._window and (
            len(self._window) == self.max_window
            or point.ts_ms - self._anchor.ts_ms > self.max_interval_s * 1000
            or not self._fits(self._anchor, point)
        ):
            kept.append(self._advance())
        self._lat[len(self._window)] = point.lat
        self._lon[len(self._window)] = point.lon
        self._window.append(point)
        return kept

    def flush(self) -> list[Position]:
        """Keep the newest point, if it is not kept yet: the end of the track as known so far."""
        return [self._advance()] if self._window else []

    def retune(self, tolerance_m: float, max_interval_s: float) -> list[Position]:
        """Go on with new figures (another link): the point waiting is kept first, as by :meth:`flush`."""
        kept = self.flush()
        self.tolerance_m, self.max_interval_s = float(tolerance_m), float(max_interval_s)
        return kept

    def _advance(self) -> Position:
        """The newest point of the window becomes the anchor (kept); the window empties."""
        self._anchor = self._window[-1]
        self._window.clear()
        return self._anchor

    def _fits(self, anchor: Position, point: Position) -> bool:
        """Whether every point of the window lies within the tolerance of segment ``anchor`` -> ``point``."""
        n = len(self._window)
        k = METRES_PER_DEGREE * math.cos(math.radians(anchor.lat))
        # Longitude differences wrapped to [-180, 180): a track across the antimeridian stays short.
        x = ((self._lon[:n] - anchor.lon + 180) % 360 - 180) * k
        y = (self._lat[:n] - anchor.lat) * METRES_PER_DEGREE
        px = ((point.lon - anchor.lon + 180) % 360 - 180) * k
        py = (point.lat - anchor.lat) * METRES_PER_DEGREE
        length2 = px * px + py * py
        t = np.clip((x * px + y * py) / length2, 0.0, 1.0) if length2 > 0 else 0.0
        dx, dy = x - t * px, y - t * py
        return bool(np.max(dx * dx + dy * dy) <= self.tolerance_m * self.tolerance_m)


class LiveTrack(Component):
    """The live ``position`` stream: positions thinned with the active link profile, to ``sink``.

    ``profile`` returns the active profile (``edge.link.LinkMonitor.profile``: its
    ``thin_tolerance_m`` and ``max_interval_s``); when it changes, the point waiting is kept and
    thinning goes on with the new figures. The newest point is also kept when no position came for
    ``idle_s`` (a GPS that lost its fix: the last known position must not wait for the next fix)
    and when the component stops. ``stats`` counts positions ``in`` and ``live`` (kept).

    Example::

        live = LiveTrack(lambda: monitor.profile, recorder.append)
        live.start()
        live.add(positions)      # from the GPS driver; the kept ones go to recorder.append("position", ...)
        live.stop()              # keeps the last point
    """

    def __init__(
        self,
        profile: Callable[[], LinkProfileConfig],
        sink: Callable[[str, list], None],
        idle_s: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("live-track")
        self._profile, self._sink, self.idle_s, self._monotonic = profile, sink, idle_s, monotonic
        current = profile()
        self._thinner = TrackThinner(current.thin_tolerance_m, current.max_interval_s)
        self._last_add = monotonic()
        # Held while thinning and handing over, so a flush cannot overtake points being added.
        self._lock = threading.Lock()
        self.stats: Counter[str] = Counter()

    def add(self, points: list[Position]) -> None:
        """Thin ``points`` (in time order) and send what is kept to the sink."""
        with self._lock:
            kept = self._retune()
            for point in points:
                kept += self._thinner.add(point)
            self._last_add = self._monotonic()
            self.stats["in"] += len(points)
            self._send(kept)

    def _run(self) -> None:
        while not self._stop.wait(min(1.0, self.idle_s)):
            self.tick()

    def tick(self) -> None:
        """Apply a profile change, and keep the newest point if no position came for ``idle_s``."""
        with self._lock:
            kept = self._retune()
            if self._monotonic() - self._last_add >= self.idle_s:
                kept += self._thinner.flush()
            self._send(kept)

    def _after_stop(self) -> None:
        with self._lock:
            self._send(self._thinner.flush())

    def _retune(self) -> list[Position]:
        current = self._profile()
        wanted = (float(current.thin_tolerance_m), float(current.max_interval_s))
        if wanted == (self._thinner.tolerance_m, self._thinner.max_interval_s):
            return []
        return self._thinner.retune(*wanted)

    def _send(self, kept: list[Position]) -> None:
        if kept:
            self.stats["live"] += len(kept)
            self._sink("position", kept)
