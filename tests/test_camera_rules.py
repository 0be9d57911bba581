"""count_above rules with the real model on bikes.mp4: the bicycle (frame 192) and the pedestrian (frame
198) crossing the middle line; thresholds, groups, direction, cooldown and hours, and who is blurred."""

from __future__ import annotations

import datetime
import zoneinfo

import cv2
import numpy as np
import pytest

from common.clock import Clock
from drivers.camera import Frame
from inference.camera import EventRule, FramePipeline
from inference.counting import CountingLine
from inference.detector import Detector

TZ = zoneinfo.ZoneInfo("Asia/Ho_Chi_Minh")


def local_ms(hour: int) -> int:
    """1 June 2024 at ``hour``:00 in Hue, in ms since the epoch."""
    return int(datetime.datetime(2024, 6, 1, hour, tzinfo=TZ).timestamp() * 1000)


class Ticks:
    """A monotonic clock for the cooldowns that moves only when the test says."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def detector(shared_dir) -> Detector:
    return Detector(shared_dir / "models" / "yolox_nano.onnx")


def count_above(name: str, threshold: int = 0, cooldown_s: float = 0, **options) -> EventRule:
    return EventRule(name, "count_above", line="mid", threshold=threshold, cooldown_s=cooldown_s, **options)


def crossed(counts) -> dict[tuple[str, str], int]:
    return {(c.group, c.direction): c.count for c in counts if c.count}


def run(pipeline: FramePipeline, frames: list[np.ndarray], first: int, last: int) -> None:
    for index in range(first, last + 1):
        assert pipeline.process(Frame(index, frames[index], None)) == []  # no track rules


def test_count_above_fires_once_per_interval_over_its_threshold_within_cooldown_and_hours(detector, frames):
    ticks = Ticks()
    rules = [
        count_above("busy", cooldown_s=60),
        count_above("crowd", threshold=1),
        count_above("walkers", groups=frozenset({"people"})),
        count_above("night", hours=(18, 6)),
        count_above("inbound", direction="in"),
        count_above("outbound", direction="out", threshold=1),
    ]
    pipeline = FramePipeline(
        "street",
        detector,
        Clock(),
        lines=[CountingLine("mid", (320, 0), (320, 272))],
        rules=rules,
        monotonic=ticks,
    )

    # 12:00, the bicycle crosses: over the threshold of busy only
    run(pipeline, frames, 160, 195)
    counts, events = pipeline.take_counts(local_ms(12), 30)
    assert crossed(counts) == {("vehicles", "out"): 1}
    assert [(e.rule, e.message) for e in events] == [("busy", "1 crossed mid in 30 s (more than 0)")]
    event = events[0]
    assert (event.camera, event.label, event.track_id, event.score) == ("street", "", 0, 0.0)
    assert (event.x1, event.y1, event.x2, event.y2) == (0, 0, 0, 0)
    assert len(event.jpeg) <= 30_000
    assert cv2.imdecode(np.frombuffer(event.jpeg, np.uint8), cv2.IMREAD_COLOR).shape == (272, 640, 3)

    # 19:00, 30 s later, the pedestrian crosses: busy is cooling down; walkers and night fire
    ticks.t = 30
    run(pipeline, frames, 196, 215)
    counts, events = pipeline.take_counts(local_ms(19), 30)
    assert crossed(counts) == {("people", "out"): 1}
    assert [(e.rule, e.message) for e in events] == [
        ("walkers", "1 people crossed mid in 30 s (more than 0)"),
        ("night", "1 crossed mid in 30 s (more than 0)"),
    ]

    # an interval without a frame (the camera was away) gives neither counts nor events
    ticks.t = 100
    assert pipeline.take_counts(local_ms(19), 30) == ([], [])

    # both cross in one interval at 05:00, busy's cooldown is over: crowd and outbound fire, once each
    run(pipeline, frames, 160, 215)
    counts, events = pipeline.take_counts(local_ms(5), 60)
    assert crossed(counts) == {("vehicles", "out"): 1, ("people", "out"): 1}
    assert [(e.rule, e.message) for e in events] == [
        ("busy", "2 crossed mid in 60 s (more than 0)"),
        ("crowd", "2 crossed mid in 60 s (more than 1)"),
        ("walkers", "1 people crossed mid in 60 s (more than 0)"),
        ("night", "2 crossed mid in 60 s (more than 0)"),
        ("outbound", "2 crossed mid (out) in 60 s (more than 1)"),
    ]
    assert pipeline.stats["events"] == 8


def test_hours_are_those_of_the_interval_start_not_of_its_end(detector, frames):
    # An interval from 17:59 to 18:00 is flushed after 18:00: the crossings were not at night.
    pipeline = FramePipeline(
        "street",
        detector,
        Clock(wall=lambda: local_ms(18) / 1000 + 1),
        lines=[CountingLine("mid", (320, 0), (320, 272))],
        rules=[count_above("night", hours=(18, 6)), count_above("dusk", hours=(17, 18))],
    )
    run(pipeline, frames, 160, 215)
    counts, events = pipeline.take_counts(local_ms(18) - 60_000, 60)
    assert crossed(counts) == {("vehicles", "out"): 1, ("people", "out"): 1}
    assert [e.rule for e in events] == ["dusk"]


def test_people_the_detector_found_are_blurred_before_they_are_tracks(detector, frames):
    pipeline = FramePipeline("street", detector, Clock())
    pipeline.process(Frame(0, frames[120], None))
    assert pipeline.tracks == []  # a track needs two frames
    found = [d.box for d in pipeline.detections if d.label == "person"]
    assert len(found) == 1 and pipeline.people() == found
    pipeline.blur_people = False
    assert pipeline.people() == []
