"""Counting lines, zones and class groups, on scripted boxes run through the tracker (no video)."""

from __future__ import annotations

import doctest
import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import inference.counting
from inference.counting import (
    DEFAULT_GROUPS,
    ClassGroups,
    CountingLine,
    LineCounter,
    Zone,
    ZoneEvent,
    ZoneWatcher,
)
from inference.tracker import Tracker
from inference.types import Crossing, Detection, Track

# Drawn left to right at y = 200: "in" is downwards in the picture.
GATE = CountingLine("gate", (100, 200), (500, 200))
QUAY = Zone("quay", [(100, 100), (300, 100), (300, 300), (100, 300)])


def det(
    x: float, y: float, label: str = "person", score: float = 0.9, w: float = 40, h: float = 80
) -> Detection:
    """A detection whose anchor (bottom centre) is at ``(x, y)``."""
    return Detection(label, 0, score, (x - w / 2, y - h, x + w / 2, y))


def track(track_id: int, x: float, y: float, label: str = "person", missed: int = 0) -> Track:
    """A track whose anchor is at ``(x, y)``."""
    return Track(track_id, label, 0.9, (x - 20, y - 80, x + 20, y), missed)


def walk(start: tuple[float, float], end: tuple[float, float], frames: int) -> list[tuple[float, float]]:
    """Anchors evenly spaced from ``start`` to ``end`` over ``frames`` frames."""
    return [
        (start[0] + (end[0] - start[0]) * i / (frames - 1), start[1] + (end[1] - start[1]) * i / (frames - 1))
        for i in range(frames)
    ]


def count(frames: Sequence[Sequence[Detection]], lines: Sequence[CountingLine] = (GATE,)) -> list[Crossing]:
    """Every crossing of the detections of each frame, through a tracker and a line counter."""
    tracker, counter = Tracker(), LineCounter(lines)
    crossings = []
    for i, detections in enumerate(frames):
        crossings += counter.update(tracker.update(detections), frame_index=i)
    return crossings


def summary(crossings: Sequence[Crossing]) -> list[tuple[int, str, str]]:
    return [(c.track_id, c.group, c.direction) for c in crossings]


def test_docstring_examples_run():
    result = doctest.testmod(inference.counting)
    assert result.attempted > 0
    assert result.failed == 0


# Class groups


def test_default_groups_map_coco_labels_and_ignore_unknown_ones():
    groups = ClassGroups()
    assert [groups.group_of(label) for label in ("car", "bus", "truck", "motorbike", "bicycle")] == [
        "vehicles"
    ] * 5
    assert (groups.group_of("person"), groups.group_of("boat")) == ("people", "boats")
    assert (groups.group_of("motorcycle"), groups.group_of("dog"), groups.group_of("")) == (None, None, None)
    assert groups.names == tuple(DEFAULT_GROUPS) == ("vehicles", "people", "boats")


def test_custom_groups():
    groups = ClassGroups({"cycles": {"bicycle", "motorbike"}})
    assert (groups.group_of("bicycle"), groups.group_of("car")) == ("cycles", None)


def test_label_in_two_groups_is_refused():
    with pytest.raises(ValueError) as error:
        ClassGroups({"vehicles": ["car"], "cars": ["car"]})
    assert (
        str(error.value) == "label 'car' is in groups 'vehicles' and 'cars': a label counts in one group only"
    )


def test_labels_as_a_bare_string_are_refused():
    with pytest.raises(ValueError) as error:
        ClassGroups({"people": "person"})
    assert str(error.value) == "group 'people': labels must be a set of strings, not the string 'person'"


# Line geometry


def test_in_is_the_right_of_a_to_b_as_drawn_on_the_image():
    assert (GATE.signed_distance((300, 210)), GATE.signed_distance((300, 190))) == (10.0, -10.0)
    reversed_gate = CountingLine("gate", GATE.b, GATE.a)
    assert reversed_gate.crossing((300, 190), (300, 210)) == "out"
    assert GATE.crossing((300, 190), (300, 210)) == "in"


def test_direction_names_come_from_the_line():
    line = CountingLine("bridge", (0, 0), (0, 100), in_name="westbound", out_name="eastbound")
    # Drawn downwards: its right on the image is towards smaller x.
    assert (line.crossing((10, 50), (-10, 50)), line.crossing((-10, 50), (10, 50))) == (
        "westbound",
        "eastbound",
    )


def test_move_within_the_margin_is_no_crossing():
    assert [GATE.side((300, y)) for y in (195, 196, 197, 200, 203, 204, 205)] == [-1, -1, 0, 0, 0, 1, 1]
    assert GATE.crossing((300, 197), (300, 203)) is None


def test_move_beside_either_end_of_the_segment_is_no_crossing():
    assert (GATE.crossing((99, 190), (99, 210)), GATE.crossing((501, 210), (501, 190))) == (None, None)
    assert (GATE.crossing((100, 190), (100, 210)), GATE.crossing((500, 210), (500, 190))) == ("in", "out")


def test_diagonal_move_counts_where_it_meets_the_line():
    # From (40, 140) to (160, 260): meets y = 200 at x = 100, the segment's end.
    assert GATE.crossing((40, 140), (160, 260)) == "in"
    assert GATE.crossing((30, 140), (150, 260)) is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: CountingLine("gate", (1, 2), (1, 2)),
            "counting line 'gate': a and b are the same point (1, 2)",
        ),
        (
            lambda: CountingLine("gate", (0, 0), (1, 0), margin_px=-1),
            "counting line 'gate': margin_px must be at least 0, not -1",
        ),
        (
            lambda: LineCounter([GATE, GATE]),
            "counting lines named ['gate'] more than once: names must be unique",
        ),
        (lambda: Zone("quay", [(0, 0), (1, 1)]), "zone 'quay': a polygon needs at least 3 points, not 2"),
        (
            lambda: Zone("quay", [(0, 0), (1, 0), (0, 1)], margin_px=-2),
            "zone 'quay': margin_px must be at least 0, not -2",
        ),
        (lambda: ZoneWatcher([QUAY, QUAY]), "zones named ['quay'] more than once: names must be unique"),
    ],
)
def test_bad_geometry_is_refused(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert str(error.value) == message


# Line counting through the tracker


def test_walking_across_counts_once_in_and_back_once_out():
    path = walk((300, 100), (300, 300), 40) + walk((300, 300), (300, 100), 40)[1:]
    crossings = count([[det(x, y)] for x, y in path])
    assert [(c.line, c.track_id, c.label, c.group, c.direction, c.frame) for c in crossings] == [
        ("gate", 1, "person", "people", "in", 21),  # y = 207.7, the first anchor 4 px past the line
        ("gate", 1, "person", "people", "out", 60),
    ]


def test_jitter_on_the_line_counts_nothing():
    # The anchor oscillates 1-2 px around the line, inside the 4 px margin.
    frames = [[det(300, 200 + dy)] for dy in [-10, -6] + [1, -2, 2, -1] * 20]
    assert count(frames) == []


def test_jitter_on_the_line_then_going_on_counts_once():
    frames = [[det(300, 200 + dy)] for dy in [-10, -6] + [1, -2, 2, -1] * 20 + [6, 10]]
    assert summary(count(frames)) == [(1, "people", "in")]


def test_jitter_around_the_margin_counts_at_most_once():
    # Jitter of 2 px around y = 204, the edge of the margin: in and out of the band, but on one side.
    # Two frames before the line first: the tracker reports a track from its second detection on.
    frames = [[det(300, 190)]] * 2 + [[det(300, 204 + dy)] for dy in [2, -2, 1, -1] * 20]
    assert summary(count(frames)) == [(1, "people", "in")]


def test_object_missed_around_the_line_keeps_its_id_and_counts_once():
    path = walk((300, 100), (300, 300), 40)
    # Frames 18-22 missing: the anchor is at y = 192 before them and y = 213 after.
    frames = [[] if 18 <= i <= 22 else [det(x, y)] for i, (x, y) in enumerate(path)]
    tracker, counter = Tracker(), LineCounter([GATE])
    ids, crossings = set(), []
    for i, detections in enumerate(frames):
        tracks = tracker.update(detections)
        ids |= {t.track_id for t in tracks}
        crossings += counter.update(tracks, frame_index=i)
    assert ids == {1}
    assert [(c.track_id, c.direction, c.frame) for c in crossings] == [(1, "in", 23)]


def test_predicted_positions_do_not_count():
    counter = LineCounter([GATE])
    assert counter.update([track(1, 300, 190)], frame_index=0) == []
    assert counter.update([track(1, 300, 210, missed=1)], frame_index=1) == []
    assert summary(counter.update([track(1, 300, 215)], frame_index=2)) == [(1, "people", "in")]


def test_two_objects_side_by_side_crossing_opposite_ways_are_both_counted():
    down = walk((280, 100), (280, 300), 40)
    up = walk((320, 300), (320, 100), 40)
    frames = [[det(*a, w=50), det(*b, label="car", w=50)] for a, b in zip(down, up, strict=True)]
    assert sorted(summary(count(frames))) == [(1, "people", "in"), (2, "vehicles", "out")]


def test_passing_beside_the_end_of_the_segment_is_not_counted():
    frames = [[det(x, y)] for x, y in walk((540, 100), (540, 300), 40)]
    assert count(frames) == []


def test_unknown_labels_are_not_counted():
    frames = [[det(x, y, label="dog")] for x, y in walk((300, 100), (300, 300), 40)]
    assert count(frames) == []


def test_take_counts_lists_every_key_and_resets():
    counter = LineCounter([GATE], ClassGroups({"people": {"person"}, "boats": {"boat"}}))
    counter.update([track(1, 300, 190), track(2, 250, 190), track(3, 200, 210)], frame_index=0)
    counter.update([track(1, 300, 210), track(2, 250, 210), track(3, 200, 190)], frame_index=1)
    assert counter.take_counts() == {
        ("gate", "people", "in"): 2,
        ("gate", "people", "out"): 1,
        ("gate", "boats", "in"): 0,
        ("gate", "boats", "out"): 0,
    }
    assert set(counter.take_counts().values()) == {0}


def test_a_dropped_track_is_forgotten():
    counter = LineCounter([GATE])
    counter.update([track(1, 300, 190)], frame_index=0)
    counter.update([], frame_index=1)
    # Same id on the other side (a caller that reused ids): no previous anchor, so no crossing.
    assert counter.update([track(1, 300, 210)], frame_index=2) == []


def test_skipped_detector_frames_change_nothing():
    tracker, counter = Tracker(), LineCounter([GATE])
    path = walk((300, 100), (300, 300), 40)
    crossings = []
    for i, (x, y) in enumerate(path):
        crossings += counter.update(tracker.update([det(x, y)]), frame_index=2 * i)
        # Between every two detector frames a quiet one the motion gate skipped.
        crossings += counter.update(tracker.update([], ran_detector=False), frame_index=2 * i + 1)
    assert [(c.track_id, c.direction, c.frame) for c in crossings] == [(1, "in", 42)]


@settings(max_examples=150, deadline=None)
@given(
    heading=st.floats(-1.2, 1.2),
    through=st.floats(0.1, 0.9),
    before=st.floats(5, 150),
    after=st.floats(6, 150),
    speed=st.floats(2, 10),
    inwards=st.booleans(),
    line_angle=st.floats(0, 2 * math.pi),
    gaps=st.lists(st.integers(0, 15), max_size=6),
)
def test_a_straight_path_across_with_missed_frames_counts_exactly_once(
    heading, through, before, after, speed, inwards, line_angle, gaps
):
    """Any straight walk through the segment counts once, in its direction, however the detector misses.

    The path crosses at ``through`` along the segment, ``heading`` radians off the line's normal, from
    ``speed + before`` px off the line to ``after`` px past it (perpendicular distances, so that the
    second frame, where the tracker first reports the track, is clear of the margin). ``gaps`` are runs of
    missed frames (at most ``max_missed`` = 15 each) spread over the walk; the first two frames (to
    confirm the track) and the last (to see it past the line) are always detected.
    """
    a = (320.0, 240.0)
    b = (a[0] + 300 * math.cos(line_angle), a[1] + 300 * math.sin(line_angle))
    line = CountingLine("line", a, b)
    # The normal towards the "in" side (the right of a -> b on the image, y down).
    normal = (-math.sin(line_angle), math.cos(line_angle))
    sign = 1 if inwards else -1
    direction = (
        sign * (normal[0] * math.cos(heading) - normal[1] * math.sin(heading)),
        sign * (normal[0] * math.sin(heading) + normal[1] * math.cos(heading)),
    )
    hit = (a[0] + through * (b[0] - a[0]), a[1] + through * (b[1] - a[1]))
    along_before, along_after = (speed + before) / math.cos(heading), after / math.cos(heading)
    start = (hit[0] - along_before * direction[0], hit[1] - along_before * direction[1])
    end = (hit[0] + along_after * direction[0], hit[1] + along_after * direction[1])
    frames = max(3, math.ceil((along_before + along_after) / speed) + 1)
    path = walk(start, end, frames)

    seen = [True] * frames
    position = 2
    for gap in gaps:
        for i in range(position, min(position + gap, frames - 1)):
            seen[i] = False
        position += gap + 1
    detections = [[det(x, y)] if visible else [] for (x, y), visible in zip(path, seen, strict=True)]

    assert summary(count(detections, [line])) == [(1, "people", "in" if inwards else "out")]


# Zones


def test_zone_contains_inside_and_edge_not_outside():
    assert [QUAY.contains(p) for p in [(200, 200), (100, 200), (99, 200), (200, 301)]] == [
        True,
        True,
        False,
        False,
    ]


def test_zone_presence_has_a_margin_on_both_sides_of_the_edge():
    presence = [QUAY.presence((x, 200)) for x in (95, 96, 97, 100, 103, 104, 105)]
    assert presence == [False, False, None, None, None, True, True]


def test_walking_through_a_zone_enters_and_leaves_once():
    watcher, tracker = ZoneWatcher([QUAY]), Tracker()
    events = []
    for i, (x, y) in enumerate(walk((50, 200), (350, 200), 61)):
        events += watcher.update(tracker.update([det(x, y)]), frame=i)
    assert events == [
        ZoneEvent("quay", 1, "person", "people", "enter", 11),
        ZoneEvent("quay", 1, "person", "people", "leave", 51),
    ]


def test_jitter_on_the_zone_edge_enters_and_leaves_once_at_most():
    watcher = ZoneWatcher([QUAY])
    events = []
    for i, dx in enumerate([-2, 2, -1, 1] * 10 + [10, -10]):
        events += watcher.update([track(1, 100 + dx, 200)], frame=i)
    assert [(e.kind, e.frame) for e in events] == [("enter", 40), ("leave", 41)]


def test_occupancy_counts_by_group_and_a_dropped_track_leaves():
    watcher = ZoneWatcher([QUAY])
    events = watcher.update(
        [track(1, 150, 150), track(2, 200, 200, label="boat"), track(3, 250, 250), track(4, 400, 200)],
        frame=0,
    )
    assert [(e.track_id, e.kind) for e in events] == [(1, "enter"), (2, "enter"), (3, "enter")]
    assert watcher.occupancy() == {
        ("quay", "vehicles"): 0,
        ("quay", "people"): 2,
        ("quay", "boats"): 1,
    }
    events = watcher.update([track(1, 150, 150)], frame=1)
    assert events == [
        ZoneEvent("quay", 2, "boat", "boats", "leave", 1),
        ZoneEvent("quay", 3, "person", "people", "leave", 1),
    ]
    assert watcher.occupancy()[("quay", "people")] == 1


def test_predicted_positions_neither_enter_nor_leave():
    watcher = ZoneWatcher([QUAY])
    watcher.update([track(1, 200, 200)], frame=0)
    assert watcher.update([track(1, 400, 200, missed=3)], frame=1) == []
    assert watcher.update([track(2, 200, 200, missed=1)], frame=2) == [
        ZoneEvent("quay", 1, "person", "people", "leave", 2)
    ]


def test_a_track_leaves_with_the_label_it_entered_with():
    watcher = ZoneWatcher([QUAY])
    watcher.update([track(1, 200, 200, label="car")], frame=0)
    events = watcher.update([track(1, 400, 200, label="person")], frame=1)
    assert events == [ZoneEvent("quay", 1, "car", "vehicles", "leave", 1)]


def test_unknown_labels_do_not_enter():
    watcher = ZoneWatcher([QUAY])
    assert watcher.update([track(1, 200, 200, label="dog")], frame=0) == []
    assert set(watcher.occupancy().values()) == {0}
