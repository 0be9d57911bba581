"""A camera on the node: frames in; counts per interval and events with a snapshot out. No video leaves.

:class:`FramePipeline` is the per-frame work, without threads: motion gate,
detector, tracker, counting lines, zones and event rules. :class:`Camera` is
the component around it (Frigate style): a thread that reads the source,
feeds the pipeline, hands counts and events to the sink, and emits the counts
when each interval ends. A camera that is absent or fails is reopened with
backoff by its :class:`~drivers.camera.CameraSource` and counted once per
outage in ``health``; the rest of the node runs on.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
import zoneinfo
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from drivers.camera import CameraSource, Frame
from drivers.transport import EndOfStream, TransportError
from edge.clock import Clock
from inference.counting import ClassGroups, CountingLine, LineCounter, Zone, ZoneEvent, ZoneWatcher
from inference.detector import Detector
from inference.motion import MotionGate
from inference.snapshot import snapshot
from inference.tracker import Tracker
from inference.types import Box, Crossing, Detection, Track
from sync.records import Count, Event

log = logging.getLogger(__name__)

Sink = Callable[[str, list], None]


@dataclass(frozen=True)
class EventRule:
    """One event rule (see ``edge.config.CameraEventConfig``)."""

    name: str
    kind: str
    groups: frozenset[str] = frozenset()
    zone: str | None = None
    line: str | None = None
    direction: str | None = None
    threshold: int = 0
    hours: tuple[int, int] | None = None
    cooldown_s: float = 60.0

    def applies_at(self, hour: int) -> bool:
        """Whether local ``hour`` lies in [from, to), a range that may wrap past midnight."""
        if self.hours is None:
            return True
        start, end = self.hours
        return start <= hour < end if start <= end else hour >= start or hour < end

    def wants(self, group: str | None) -> bool:
        return not self.groups or group in self.groups


class FramePipeline:
    """Per-frame work: gate, detect, track, count, watch zones, and decide events.

    ``process`` returns the events of the frame (with their snapshots);
    ``take_counts`` the crossings counted since the last call (and the
    ``count_above`` events they trigger).
    """

    def __init__(
        self,
        name: str,
        detector: Detector,
        clock: Clock,
        *,
        gate: MotionGate | None = None,
        lines: list[CountingLine] | None = None,
        zones: list[Zone] | None = None,
        groups: ClassGroups | None = None,
        rules: list[EventRule] | None = None,
        blur_people: bool = True,
        snapshot_max_bytes: int = 30_000,
        timezone: str = "Asia/Ho_Chi_Minh",
    ) -> None:
        self.name, self.detector, self.clock, self.gate = name, detector, clock, gate
        self.groups = groups or ClassGroups()
        self.tracker = Tracker()
        self.counter = LineCounter(lines or [], self.groups)
        self.zones = ZoneWatcher(zones or [], self.groups)
        self.rules = rules or []
        self.blur_people, self.snapshot_max_bytes = blur_people, snapshot_max_bytes
        self.tz = zoneinfo.ZoneInfo(timezone)
        self.stats: Counter[str] = Counter()
        self._last_event: dict[str, float] = {}
        self._last_frame: np.ndarray | None = None
        self._last_tracks: list[Track] = []
        self.detections: list[Detection] = []

    def process(self, frame: Frame) -> list[Event]:
        self.stats["frames"] += 1
        self._last_frame = frame.image
        if self.gate is None or self.gate.moved(frame.image):
            self.detections = self.detector.detect(frame.image)
            self.stats["inferences"] += 1
            tracks = self.tracker.update(self.detections)
        else:
            self.detections = []
            tracks = self.tracker.update([], ran_detector=False)
        self._last_tracks = tracks
        crossings = self.counter.update(tracks, frame.index)
        entries = [e for e in self.zones.update(tracks, frame.index) if e.kind == "enter"]
        return self._events(crossings, entries, tracks)

    def _events(
        self, crossings: list[Crossing], entries: list[ZoneEvent], tracks: list[Track]
    ) -> list[Event]:
        by_id = {t.track_id: t for t in tracks}
        events = []
        for rule in self.rules:
            if rule.kind == "line_cross":
                hits = [
                    (c.track_id, f"{c.label} crossed {c.line} ({c.direction})")
                    for c in crossings
                    if c.line == rule.line and rule.wants(c.group) and rule.direction in (None, c.direction)
                ]
            elif rule.kind == "zone_enter":
                hits = [
                    (e.track_id, f"{e.label} entered {e.zone}")
                    for e in entries
                    if e.zone == rule.zone and rule.wants(e.group)
                ]
            else:
                continue
            for track_id, message in hits:
                if (event := self._event(rule, by_id.get(track_id), message)) is not None:
                    events.append(event)
        return events

    def take_counts(self, start_ms: int, interval_s: int) -> tuple[list[Count], list[Event]]:
        stamp = self.clock.now()
        totals = self.counter.take_counts()
        counts = [
            Count(
                start_ms,
                stamp.tsrc,
                stamp.clock_ms,
                self.name,
                key.line,
                key.group,
                key.direction,
                interval_s,
                n,
            )
            for key, n in sorted(totals.items())
        ]
        events = []
        for rule in self.rules:
            if rule.kind == "count_above":
                n = sum(v for k, v in totals.items() if k.line == rule.line and rule.wants(k.group))
                if n > rule.threshold:
                    message = f"{n} crossed {rule.line} in {interval_s} s (more than {rule.threshold})"
                    if (event := self._event(rule, None, message)) is not None:
                        events.append(event)
        return counts, events

    def _event(self, rule: EventRule, track: Track | None, message: str) -> Event | None:
        now = time.monotonic()
        stamp = self.clock.now()
        hour = datetime.datetime.fromtimestamp(stamp.ts_ms / 1000, self.tz).hour
        if not rule.applies_at(hour) or now - self._last_event.get(rule.name, -1e9) < rule.cooldown_s:
            return None
        if self._last_frame is None:
            return None
        self._last_event[rule.name] = now
        people: list[Box] = (
            [t.box for t in self._last_tracks if t.label == "person"] if self.blur_people else []
        )
        jpeg = snapshot(
            self._last_frame,
            boxes_to_blur=people,
            highlight=track.box if track else None,
            max_bytes=self.snapshot_max_bytes,
        )
        box = [int(v) for v in track.box] if track else [0, 0, 0, 0]
        self.stats["events"] += 1
        return Event(
            *stamp,
            self.name,
            rule.name,
            track.label if track else "",
            track.track_id if track else 0,
            round(track.score, 3) if track else 0.0,
            *box,
            message,
            jpeg,
        )


class Camera:
    """The camera component: reads ``source``, runs ``pipeline``, emits counts every ``interval_s``.

    Exposes ``rejects``, ``ignored``, ``health`` and ``records`` like the
    other drivers, for the node's status report.

    Example::

        camera = Camera("street", CameraSource("street.mp4"), pipeline, recorder.append, Clock())
        camera.start()
        ...
        camera.stop()
    """

    def __init__(
        self,
        name: str,
        source: CameraSource,
        pipeline: FramePipeline,
        sink: Sink,
        clock: Clock,
        interval_s: int = 60,
    ) -> None:
        self.name, self.source, self.pipeline, self.sink, self.clock = name, source, pipeline, sink, clock
        self.interval_s = interval_s
        self.rejects: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.health: Counter[str] = Counter()
        self.records = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._interval_start: int | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.source.close()

    def _emit(self, stream: str, records: list) -> None:
        if records:
            self.records += len(records)
            self.sink(stream, records)

    def _run(self) -> None:
        failing = False
        try:
            while not self._stop.is_set():
                try:
                    frame = self.source.read(timeout=0.5)
                except EndOfStream:
                    log.info("event=end_of_stream driver=%s", self.name)
                    break
                except TransportError as exc:
                    if not failing:
                        self.health["transport_lost"] += 1
                        log.warning("event=camera_error driver=%s error=%r", self.name, str(exc))
                    failing = True
                    continue
                if frame is None:
                    self._maybe_flush_counts()
                    continue
                if failing:
                    failing = False
                    self.health["transport_recovered"] += 1
                    log.info("event=camera_recovered driver=%s", self.name)
                self._emit("event", self.pipeline.process(frame))
                self._maybe_flush_counts()
        except Exception:
            log.exception("event=camera_crashed driver=%s", self.name)
        finally:
            self._flush_counts()
        self.ignored["frames_without_inference"] = (
            self.pipeline.stats["frames"] - self.pipeline.stats["inferences"]
        )

    def _maybe_flush_counts(self) -> None:
        now = self.clock.now().ts_ms
        width = self.interval_s * 1000
        start = now - now % width
        if self._interval_start is None:
            self._interval_start = start
        elif start != self._interval_start:
            self._flush_counts()
            self._interval_start = start

    def _flush_counts(self) -> None:
        if self._interval_start is None:
            return
        counts, events = self.pipeline.take_counts(self._interval_start, self.interval_s)
        self._emit("count", counts)
        self._emit("event", events)
