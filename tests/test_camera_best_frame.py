"""An event's snapshot is the track's best frame up to the event, people in that frame blurred, and
the frames kept for it stay bounded: scripted tracks over real frames, then the real model on the
bicycle and the pedestrian crossing the middle of bikes.mp4."""

from __future__ import annotations

import random

import cv2
import numpy as np
import pytest

from common.clock import Clock
from drivers.camera import Frame
from inference.camera import EventRule, FramePipeline
from inference.counting import CountingLine
from inference.detector import Detector
from inference.snapshot import BestFrames, view_quality
from inference.types import Box, Track

SIZE = (640, 272)


def decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return image


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)


def detail_kept(image: np.ndarray, original: np.ndarray, box: Box) -> float:
    """Correlation, inside ``box``, of the fine structure (what a blur of sigma 2 removes) of
    ``image`` with that of ``original``: about 1 when kept, about 0 when pixelated away."""
    x1, y1, x2, y2 = (round(v) for v in box)
    x1, y1 = max(0, x1), max(0, y1)

    def detail(im: np.ndarray) -> np.ndarray:
        g = grey(im)
        return (g - cv2.GaussianBlur(g, (0, 0), 2))[y1:y2, x1:x2].ravel()

    return float(np.corrcoef(detail(image), detail(original))[0, 1])


def closest_frame(jpeg: bytes, frames: list[np.ndarray], candidates: range) -> int:
    """The frame of ``candidates`` the snapshot looks most like (mean absolute grey difference)."""
    image = grey(decode(jpeg))
    return min(candidates, key=lambda i: float(np.abs(image - grey(frames[i])).mean()))


def test_the_best_view_is_kept_not_the_last_nor_a_predicted_or_cut_off_one(frames):
    best = BestFrames()
    script = [
        Track(1, "car", 0.60, (100, 60, 160, 120)),  # quality 0.6 x 3600 = 2160
        Track(1, "car", 0.90, (100, 60, 180, 140)),  # 0.9 x 6400 = 5760: the best
        Track(1, "car", 0.50, (90, 50, 190, 150)),  # 0.5 x 10000 = 5000
        Track(1, "car", 0.95, (0, 60, 110, 160)),  # 0.95 x 11000 = 10450, cut off by the edge: 5225
        Track(1, "car", 0.99, (50, 0, 640, 272), missed=1),  # predicted: a guess, never kept
        Track(1, "car", 0.70, (100, 60, 180, 140)),  # 4480
    ]
    for index, track in enumerate(script):
        best.update(index, frames[index], [track], people=[])
    shot = best.shot(1)
    assert (shot.frame, shot.box, shot.score, shot.quality) == (1, (100, 60, 180, 140), 0.90, 5760.0)
    assert shot.scale == 1.0 and np.array_equal(shot.image, frames[1])
    # a tie does not replace: the earliest of equal views stays
    best.update(6, frames[6], [Track(1, "car", 0.90, (100, 60, 180, 140))], people=[])
    assert best.shot(1).frame == 1
    assert closest_frame(shot.jpeg(30_000), frames, range(7)) == 1


def test_only_wanted_tracks_are_followed_and_a_track_gone_is_dropped(frames):
    best = BestFrames(wanted=lambda track: track.label != "tie")
    car, tie = Track(1, "car", 0.8, (10, 10, 50, 50)), Track(2, "tie", 0.9, (60, 60, 90, 120))
    best.update(0, frames[0], [car, tie], people=[])
    assert (best.shot(1).frame, best.shot(2), len(best)) == (0, None, 1)
    best.update(1, frames[1], [tie], people=[])
    assert (best.shot(1), len(best), best.frames_kept, best.bytes_kept) == (None, 0, 0, 0)


def test_kept_frames_never_outnumber_the_live_tracks(frames):
    rng = random.Random(5)
    best = BestFrames()
    live: dict[int, Track] = {}
    next_id = 1
    most = 0
    for index in range(300):
        for track_id in [i for i in live if rng.random() < 0.05]:
            del live[track_id]
        if rng.random() < 0.3:
            live[next_id], next_id = Track(next_id, "car", 0.5, (0, 0, 1, 1)), next_id + 1
        for track_id in live:
            x, y, w, h = rng.uniform(0, 500), rng.uniform(0, 200), rng.uniform(5, 140), rng.uniform(5, 70)
            live[track_id] = Track(
                track_id, "car", rng.uniform(0.3, 1.0), (x, y, x + w, y + h), rng.random() < 0.2
            )
        tracks = list(live.values())
        best.update(index, frames[index % len(frames)], tracks, people=[])
        assert best.frames_kept <= len(best) <= len(tracks)
        assert best.bytes_kept == best.frames_kept * frames[0].nbytes
        most = max(most, best.frames_kept)
    assert most >= 5  # the sequence did keep several frames at once
    best.update(300, frames[0], [], people=[])
    assert (len(best), best.frames_kept, best.bytes_kept) == (0, 0, 0)


def test_tracks_seen_better_in_one_frame_share_its_copy(frames):
    best = BestFrames()
    tracks = [Track(i, "car", 0.8, (20 + 60 * i, 40, 70 + 60 * i, 90)) for i in range(1, 6)]
    best.update(0, frames[0], tracks, people=[])
    assert (len(best), best.frames_kept, best.bytes_kept) == (5, 1, frames[0].nbytes)


def test_a_wide_frame_is_kept_scaled_down_and_the_box_highlighted_in_place(frames):
    wide = cv2.resize(frames[120], (1920, 816))
    best = BestFrames()
    best.update(0, wide, [Track(1, "car", 0.8, (600, 300, 1200, 600))], people=[])
    shot = best.shot(1)
    assert (shot.image.shape, shot.scale, shot.box) == ((272, 640, 3), 1 / 3, (600, 300, 1200, 600))
    image = decode(shot.jpeg(30_000))
    for y, x in [(100, 300), (200, 300), (150, 200), (150, 400)]:  # the box's edges, a third of the size
        b, g, r = image[y, x].astype(int)
        assert r > 180 and b < 60 and g < 60, (y, x, image[y, x])


def test_people_of_the_best_frame_are_blurred_not_those_of_later_frames(frames):
    person_then, person_later = (300, 20, 420, 250), (60, 20, 180, 250)
    best = BestFrames()
    best.update(120, frames[120], [Track(1, "car", 0.9, (440, 120, 600, 260))], people=[person_then])
    best.update(130, frames[130], [Track(1, "car", 0.5, (440, 120, 600, 260))], people=[person_later])
    image = decode(best.shot(1).jpeg(30_000))
    assert abs(detail_kept(image, frames[120], person_then)) < 0.1  # pixelated
    assert detail_kept(image, frames[120], person_later) > 0.8  # nobody there in the best frame: as it was
    # the copy kept is private already: no unblurred person is held in memory
    assert abs(detail_kept(best.shot(1).image, frames[120], person_then)) < 0.1


@pytest.fixture(scope="module")
def detector(shared_dir) -> Detector:
    return Detector(shared_dir / "models" / "yolox_nano.onnx")


def test_real_events_show_the_best_frame_up_to_the_event_with_its_people_blurred(detector, frames):
    rule = EventRule("crossing", "line_cross", line="mid", cooldown_s=0)
    pipeline = FramePipeline(
        "street", detector, Clock(), lines=[CountingLine("mid", (320, 0), (320, 272))], rules=[rule]
    )
    seen: dict[int, list[tuple[int, Track]]] = {}  # track id: (frame, track) where it was observed
    people: dict[int, list[Box]] = {}  # frame: the people detected or tracked in it
    events = []
    for index in range(160, 216):
        for event in pipeline.process(Frame(index, frames[index], None)):
            events.append((index, event))
        for track in pipeline.tracks:
            if not track.missed:
                seen.setdefault(track.track_id, []).append((index, track))
        people[index] = [x.box for x in pipeline.detections + pipeline.tracks if x.label == "person"]
        assert pipeline.best.frames_kept <= len(pipeline.tracks)
    assert [(e.label, e.message) for _, e in events] == [
        ("bicycle", "bicycle crossed mid (out)"),
        ("person", "person crossed mid (out)"),
    ]
    best_differs, blurred = False, 0
    for at, event in events:
        views = [(f, t) for f, t in seen[event.track_id] if f <= at]
        frame, track = max(views, key=lambda v: view_quality(v[1], SIZE))  # max keeps the first of ties
        assert (event.x1, event.y1, event.x2, event.y2) == tuple(int(v) for v in track.box)
        assert event.score == round(track.score, 3)
        assert closest_frame(event.jpeg, frames, range(160, at + 1)) == frame
        image = decode(event.jpeg)
        for box in people[frame]:
            assert abs(detail_kept(image, frames[frame], box)) < 0.1, (event.label, frame, box)
        best_differs, blurred = best_differs or frame != at, blurred + len(people[frame])
    assert best_differs, "every best frame was the event's own: the test shows nothing"
    assert blurred, "no person in the best frames: the blur was not checked"
    # the tracks that ended took their frames with them
    live = {t.track_id for t in pipeline.tracks}
    assert all(pipeline.best.shot(track_id) is None for track_id in seen.keys() - live)
