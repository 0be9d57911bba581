"""Per-interval summaries of sensor readings: what a node syncs instead of every raw reading.

Raw readings stay in the node's store for ``keep_raw_s``; the IOC gets, per
sensor, quantity and interval, a :class:`~sync.records.Summary`: count, mean,
min, max, a trimmed mean that ignores outliers, the total, and how many frames
the sensor's driver rejected in the interval. Rain becomes mm per interval
(``total``) and mm/h (a ``rain_mm_per_h`` row); water level gets a
``water_rise_m_per_h`` row, the slope of the level over the interval.

The arithmetic is in pure functions (:func:`stats`, :func:`slope_per_hour`);
:class:`Summarizer` only buckets readings by time and hands the summaries on.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from common.clock import Clock
from common.component import Component
from sync.records import Reading, Summary

log = logging.getLogger(__name__)

Sink = Callable[[str, list], None]

MAX_GAP_INTERVALS = 1440
"""Empty intervals filled in after a pause at most (a day of minutes); a longer gap is a clock jump."""

DERIVED = {"rain_mm": "rain_mm_per_h", "water_level_m": "water_rise_m_per_h"}
"""Quantities that get a derived summary row besides their own."""


class Stats(NamedTuple):
    # Hides tuple.count, which nothing calls on Stats; the name is the Summary column it fills.
    count: int  # type: ignore[assignment]
    mean: float | None
    min: float | None
    max: float | None
    trimmed_mean: float | None
    total: float


def stats(values: Sequence[float], trim: float = 0.1) -> Stats:
    """Count, mean, min, max, total and the mean without the ``trim`` fraction at each end.

    >>> stats([1.0, 2.0, 3.0, 4.0, 100.0], trim=0.2)
    Stats(count=5, mean=22.0, min=1.0, max=100.0, trimmed_mean=3.0, total=110.0)
    >>> stats([])
    Stats(count=0, mean=None, min=None, max=None, trimmed_mean=None, total=0.0)
    """
    n = len(values)
    if not n:
        return Stats(0, None, None, None, None, 0.0)
    ordered = sorted(values)
    cut = int(n * trim)
    kept = ordered[cut : n - cut] or ordered
    total = math.fsum(ordered)
    return Stats(n, total / n, ordered[0], ordered[-1], math.fsum(kept) / len(kept), total)


def slope_per_hour(points: Sequence[tuple[int, float]]) -> float | None:
    """Least-squares slope of ``(ts_ms, value)`` points, in value units per hour (None below two points).

    >>> slope_per_hour([(0, 1.0), (1_800_000, 1.25), (3_600_000, 1.5)])
    0.5
    """
    if len(points) < 2:
        return None
    t0 = points[0][0]
    xs = [(t - t0) / 3_600_000 for t, _ in points]
    ys = [v for _, v in points]
    mx, my = math.fsum(xs) / len(xs), math.fsum(ys) / len(ys)
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def summarize(
    sensor: str,
    quantity: str,
    start_ms: int,
    interval_s: int,
    points: Sequence[tuple[int, float]],
    rejected: int,
    trim: float,
    stamp: tuple[int, int, int],
) -> list[Summary]:
    """The summary rows of one sensor's quantity for the interval starting at ``start_ms``."""
    _, tsrc, clock_ms = stamp
    s = stats([v for _, v in points], trim)
    rows = [Summary(start_ms, tsrc, clock_ms, sensor, quantity, interval_s, *s, rejected)]
    derived = DERIVED.get(quantity)
    if derived == "rain_mm_per_h":
        rate = s.total * 3600 / interval_s
        rows.append(
            Summary(start_ms, tsrc, clock_ms, sensor, derived, interval_s, 1, rate, rate, rate, rate, rate, 0)
        )
    elif derived == "water_rise_m_per_h" and (rise := slope_per_hour(points)) is not None:
        rows.append(
            Summary(start_ms, tsrc, clock_ms, sensor, derived, interval_s, 1, rise, rise, rise, rise, rise, 0)
        )
    return rows


class Summarizer(Component):
    """Buckets readings into intervals of ``interval_s`` and emits their summaries when an interval ends.

    ``expected`` names (sensor, quantity) pairs that get a summary every
    interval even without readings (a rain gauge that saw no tip reports 0 mm).
    ``rejects`` maps a sensor to a function returning its driver's reject
    counter; each interval's summary carries the increase.

    Example::

        summarizer = Summarizer(recorder.append, Clock(), interval_s=60)
        summarizer.start()
        summarizer.add([reading, ...])     # the drivers' readings, from any thread
        summarizer.stop()                  # emits the interval under way
    """

    def __init__(
        self,
        sink: Sink,
        clock: Clock,
        interval_s: int = 60,
        trim: float = 0.1,
        expected: Iterable[tuple[str, str]] = (),
        rejects: dict[str, Callable[[], Counter[str]]] | None = None,
    ) -> None:
        super().__init__("summarizer")
        self.sink, self.clock, self.interval_s, self.trim = sink, clock, interval_s, trim
        self.expected = set(expected)
        self.rejects = rejects or {}
        self._seen_rejects: dict[str, int] = {}
        self._lock = threading.Lock()
        # bucket start (ms) -> (sensor, quantity) -> [(ts_ms, value)]
        self._buckets: dict[int, dict[tuple[str, str], list[tuple[int, float]]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._next: int | None = None  # start of the first interval not summarized yet
        self.emitted = 0

    def add(self, readings: Iterable[Reading]) -> None:
        """Take readings (any thread)."""
        width = self.interval_s * 1000
        with self._lock:
            for r in readings:
                self._buckets[r.ts_ms - r.ts_ms % width][(r.sensor, r.quantity)].append((r.ts_ms, r.value))

    def _after_stop(self) -> None:
        self.emit(final=True)

    def _run(self) -> None:
        while not self._stop.wait(min(1.0, self.interval_s / 10)):
            self.emit()

    def emit(self, final: bool = False) -> None:
        """Summarize every interval that has ended by the clock (and the one under way when ``final``)."""
        now = self.clock.now()
        width = self.interval_s * 1000
        current = now.ts_ms - now.ts_ms % width
        if self._next is None or not 0 <= current - self._next <= MAX_GAP_INTERVALS * width:
            # First run, or the clock jumped (a 1970 clock set by GPS): no string of empty intervals.
            self._next = current
        with self._lock:
            due = {b for b in self._buckets if final or b < current}
            if self.expected:
                due |= set(range(self._next, current + (width if final else 0), width))
            buckets = [(b, self._buckets.pop(b, {})) for b in sorted(due)]
        self._next = current
        rows: list[Summary] = []
        for start, series in buckets:
            rejected = self._reject_increase()
            for sensor, quantity in sorted(set(series) | self.expected):
                points = sorted(series.get((sensor, quantity), []))
                rows += summarize(
                    sensor, quantity, start, self.interval_s, points, rejected.get(sensor, 0), self.trim, now
                )
        if rows:
            self.emitted += len(rows)
            self.sink("summary", rows)

    def _reject_increase(self) -> dict[str, int]:
        out = {}
        for sensor, read in self.rejects.items():
            total = sum(read().values())
            out[sensor] = total - self._seen_rejects.get(sensor, 0)
            self._seen_rejects[sensor] = total
        return out
