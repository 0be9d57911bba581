"""A camera on the node: frames in; counts per interval and events with a snapshot out. No video leaves.

:class:`FramePipeline` is the per-frame work, without threads: motion gate,
detector, tracker, counting lines, zones and event rules. :class:`Camera` is
the component around it (Frigate style): a thread that reads the source,
feeds the pipeline, hands counts and events to the sink, and emits the counts
when each interval ends. A camera that is absent or fails is reopened with
backoff by its :class:`~drivers.camera.CameraSource` and counted once per
outage in ``health``; ``Camera.outage`` says why, for ``ioc-edge status``;
the rest of the node runs on.
"""

from __future__ import annotations

import datetime
import logging
import math
import queue
import time
import zoneinfo
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

from common.clock import Clock
from drivers.base import Outage, SourceComponent
from drivers.camera import CameraSource, Frame
from drivers.transport import EndOfStream, TransportError
from inference.counting import ClassGroups, CountingLine, LineCounter, Zone, ZoneEvent, ZoneWatcher
from inference.detector import Detector
from inference.motion import MotionGate
from inference.snapshot import BestFrames, snapshot
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


PEOPLE = frozenset({"person"})
"""Labels blurred in snapshots when ``blur_people``."""

TRACK_RULES = frozenset({"line_cross", "zone_enter"})
"""Rule kinds whose events are about one track (and show its best frame)."""


class FramePipeline:
    """Per-frame work: gate, detect, track, count, watch zones, and decide events.

    ``process`` returns the events of the frame; ``take_counts`` the crossings
    counted since the last call (and the ``count_above`` events they trigger).

    An event about a track (``line_cross``, ``zone_enter``) shows the track's best
    frame up to the event (:class:`~inference.snapshot.BestFrames`: score × box
    area, halved for a box cut off by the frame's border) with the track's box
    highlighted; the event's box and score are the track's in that frame. Only
    tracks some such rule may want are followed, so a camera without them keeps
    no frame. A ``count_above`` event shows the last frame. With ``blur_people``
    every person detected or tracked in the frame shown is pixelated.

    ``monotonic`` times the rules' cooldowns (tests pass their own).

    Example::

        pipeline = FramePipeline("street", Detector("yolox_nano.onnx"), Clock(), lines=[line])
        events = pipeline.process(frame)          # every frame
        counts, more = pipeline.take_counts(start_ms, 60)   # as each interval ends
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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.detector, self.clock, self.gate = name, detector, clock, gate
        self.groups = groups or ClassGroups()
        self.tracker = Tracker()
        self.counter = LineCounter(lines or [], self.groups)
        self.zones = ZoneWatcher(zones or [], self.groups)
        self.rules = rules or []
        self.blur_people, self.snapshot_max_bytes = blur_people, snapshot_max_bytes
        self.tz = zoneinfo.ZoneInfo(timezone)
        self.monotonic = monotonic
        self.stats: Counter[str] = Counter()
        self.best = BestFrames(wanted=self._followed)
        self.detections: list[Detection] = []
        """The detector's output for the last frame (empty when the gate skipped it)."""
        self.tracks: list[Track] = []
        """The tracker's confirmed tracks after the last frame."""
        self._last_event: dict[str, float] = {}
        self._last_frame: np.ndarray | None = None
        self._frames_since_counts = 0

    def process(self, frame: Frame) -> list[Event]:
        """Run ``frame`` through the stages; returns the events it raised."""
        self.stats["frames"] += 1
        self._frames_since_counts += 1
        self._last_frame = frame.image
        if self.gate is None or self.gate.moved(frame.image):
            started = time.perf_counter_ns()
            self.detections = self.detector.detect(frame.image)
            self.stats["inference_ns"] += time.perf_counter_ns() - started  # for the metrics
            self.stats["inferences"] += 1
            self.tracks = self.tracker.update(self.detections)
        else:
            self.detections = []
            self.tracks = self.tracker.update([], ran_detector=False)
        self.best.update(frame.index, frame.image, self.tracks, self.people())
        crossings = self.counter.update(self.tracks, frame.index)
        entries = [e for e in self.zones.update(self.tracks, frame.index) if e.kind == "enter"]
        return self._events(crossings, entries)

    def _followed(self, track: Track) -> bool:
        group = self.groups.group_of(track.label)
        return group is not None and any(r.kind in TRACK_RULES and r.wants(group) for r in self.rules)

    def people(self) -> list[Box]:
        """Boxes blurred in a snapshot of the last frame (none unless ``blur_people``): every person the
        detector found in it, a track or not yet (a passer-by seen once is still someone), and every
        person track, observed or predicted."""
        if not self.blur_people:
            return []
        found = [d.box for d in self.detections if d.label in PEOPLE]
        return found + [t.box for t in self.tracks if t.label in PEOPLE]

    def _events(self, crossings: list[Crossing], entries: list[ZoneEvent]) -> list[Event]:
        by_id = {t.track_id: t for t in self.tracks}
        hour = self._hour(self.clock.now().ts_ms)
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
                if self._due(rule, hour):
                    events.append(self._track_event(rule, by_id[track_id], message))
        return events

    def take_counts(self, start_ms: int, interval_s: int) -> tuple[list[Count], list[Event]]:
        """The counts of the interval from ``start_ms`` and its ``count_above`` events; resets the counts.

        An interval without a single frame (the camera was away) gives no counts at all rather
        than zeros: the IOC must not read an outage as an empty street. A ``count_above`` rule's
        ``hours`` are judged at the interval's start, when the crossings it counts began.
        """
        totals = self.counter.take_counts()
        frames, self._frames_since_counts = self._frames_since_counts, 0
        if not frames:
            return [], []
        stamp = self.clock.now()
        counts = [
            Count(start_ms, stamp.tsrc, stamp.clock_ms, self.name, *key, interval_s, n)
            for key, n in sorted(totals.items())
        ]
        hour = self._hour(start_ms)
        events = []
        for rule in self.rules:
            if rule.kind != "count_above":
                continue
            n = sum(
                v
                for k, v in totals.items()
                if k.line == rule.line and rule.wants(k.group) and rule.direction in (None, k.direction)
            )
            if n > rule.threshold and self._due(rule, hour):
                # "3 crossed mid ...", "3 people and vehicles crossed mid ..."
                what = f" {' and '.join(sorted(rule.groups))}" if rule.groups else ""
                way = f" ({rule.direction})" if rule.direction else ""
                message = f"{n}{what} crossed {rule.line}{way} in {interval_s} s (more than {rule.threshold})"
                events.append(self._frame_event(rule, message))
        return counts, events

    def _hour(self, ts_ms: int) -> int:
        return datetime.datetime.fromtimestamp(ts_ms / 1000, self.tz).hour

    def _due(self, rule: EventRule, hour: int) -> bool:
        """Whether ``rule`` may fire now (its hours, its cooldown); if so, starts its cooldown."""
        now = self.monotonic()
        if not rule.applies_at(hour) or now - self._last_event.get(rule.name, -math.inf) < rule.cooldown_s:
            return False
        self._last_event[rule.name] = now
        return True

    def _track_event(self, rule: EventRule, track: Track, message: str) -> Event:
        # Rules fire on observed tracks of a group they want: ``best`` has just seen this one.
        shot = self.best.shot(track.track_id)
        assert shot is not None, f"no best frame kept for track {track.track_id}"
        jpeg = shot.jpeg(self.snapshot_max_bytes)
        return self._record(rule, track.label, track.track_id, round(shot.score, 3), shot.box, message, jpeg)

    def last_snapshot(self, max_bytes: int) -> bytes | None:
        """A JPEG of the last frame, at most ``max_bytes``, every person in it pixelated as in an event's
        snapshot (:meth:`people`); None before the first frame. Call it from the thread that calls
        :meth:`process` (the frame and its people's boxes change together there)."""
        if self._last_frame is None:
            return None
        return snapshot(self._last_frame, boxes_to_blur=self.people(), max_bytes=max_bytes)

    def _frame_event(self, rule: EventRule, message: str) -> Event:
        jpeg = self.last_snapshot(self.snapshot_max_bytes)
        assert jpeg is not None, "an interval with frames has a last frame"
        return self._record(rule, "", 0, 0.0, (0, 0, 0, 0), message, jpeg)

    def _record(
        self, rule: EventRule, label: str, track_id: int, score: float, box: Box, message: str, jpeg: bytes
    ) -> Event:
        self.stats["events"] += 1
        x1, y1, x2, y2 = (int(v) for v in box)
        return Event(
            *self.clock.now(), self.name, rule.name, label, track_id, score, x1, y1, x2, y2, message, jpeg
        )


class Camera(SourceComponent):
    """The camera component: reads ``source``, runs ``pipeline``, emits counts every ``interval_s``.

    A :class:`~drivers.base.RecordSource` like the other drivers: ``rejects``,
    ``ignored``, ``health`` and ``records`` for the node's status report,
    ``activity`` the frames read, and ``outage``: while the
    source cannot be opened or read (absent at start, lost mid-stream) or
    after the camera's thread failed, the :class:`Outage`, else ``None``.
    An outage counts once in ``health`` (``transport_lost``, then
    ``transport_recovered`` with the next frame), however many attempts
    to reopen it takes.

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
        super().__init__(name, f"camera-{name}")
        self.source, self.pipeline, self.sink, self.clock = source, pipeline, sink, clock
        self.interval_s = interval_s
        self._interval_start: int | None = None
        self._snapshots: queue.SimpleQueue[tuple[int, Future[bytes | None]]] = queue.SimpleQueue()

    def snapshot(self, max_bytes: int, timeout_s: float = 5.0) -> bytes:
        """A JPEG (at most ``max_bytes``) of the next frame the camera reads, people pixelated as in its
        events' snapshots; taken by the camera's thread after the pipeline has seen that frame, so the
        boxes blurred are that frame's. Any thread. Raises ``TimeoutError`` when no frame comes within
        ``timeout_s`` (the camera away, or stopped)."""
        future: Future[bytes | None] = Future()
        self._snapshots.put((max_bytes, future))
        try:
            jpeg = future.result(timeout_s)
        except TimeoutError:
            future.cancel()  # the camera's thread skips it if it comes to it later
            raise
        assert jpeg is not None, "taken after a frame"
        return jpeg

    def _take_snapshots(self) -> None:
        while not self._snapshots.empty():
            max_bytes, future = self._snapshots.get_nowait()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self.pipeline.last_snapshot(max_bytes))
            except Exception as exc:  # a bound below the smallest JPEG: the asker learns it
                future.set_exception(exc)

    @property
    def activity(self) -> int:
        """The frames read: a camera watching an empty street still reads them."""
        return self.pipeline.stats["frames"]

    @property
    def finite(self) -> bool:
        """Whether the camera's input ends by itself (a video file read without ``loop``)."""
        return not self.source.live and not self.source.loop

    def _after_stop(self) -> None:
        self.source.close()

    def _emit(self, stream: str, records: list) -> None:
        if records:
            self.records += len(records)
            self.sink(stream, records)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    frame = self.source.read(timeout=0.5)
                except EndOfStream:
                    log.info("event=end_of_stream driver=%s", self.name)
                    break
                except TransportError as exc:
                    self._failed(str(exc))
                    # The interval the camera saw before it failed still ends on time: its counts
                    # must not wait for the camera to come back.
                    self._maybe_flush_counts()
                    continue
                if frame is None:
                    self._maybe_flush_counts()
                    continue
                if self.outage is not None:
                    self.outage = None
                    self.health["transport_recovered"] += 1
                    log.info("event=camera_recovered driver=%s", self.name)
                self._emit("event", self.pipeline.process(frame))
                self._take_snapshots()
                self._maybe_flush_counts()
        except Exception as exc:
            log.exception("event=camera_crashed driver=%s", self.name)
            self.outage = Outage(
                f"the camera's thread stopped on {type(exc).__name__}: {exc}; see the node's log "
                "and restart the node",
                self.clock.now().ts_ms,
            )
        finally:
            self._flush_counts()
        self.ignored["frames_without_inference"] = (
            self.pipeline.stats["frames"] - self.pipeline.stats["inferences"]
        )

    def _failed(self, error: str) -> None:
        """A failed attempt to open or read the source: the first of an outage counts it."""
        if self.outage is None:
            self.health["transport_lost"] += 1
            self.outage = Outage(error, self.clock.now().ts_ms)
        elif self.outage.error != error:  # once per distinct failure, not once per retry
            self.outage = Outage(error, self.outage.since_ms)
        else:
            return
        log.warning("event=camera_error driver=%s error=%r", self.name, error)

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
