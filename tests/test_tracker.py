"""Tracker: identities kept across missed and skipped frames, ByteTrack's two stages, ids never reused."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import inference.tracker
from inference.tracker import Tracker, greedy_match, iou_matrix
from inference.types import Detection


def det(
    x: float, y: float, label: str = "person", score: float = 0.9, w: float = 40, h: float = 80
) -> Detection:
    """A detection whose anchor (bottom centre) is at ``(x, y)``."""
    return Detection(label, 0, score, (x - w / 2, y - h, x + w / 2, y))


def test_docstring_examples_run():
    result = doctest.testmod(inference.tracker)
    assert result.attempted > 0
    assert result.failed == 0


def test_iou_matrix_of_no_boxes_has_the_right_shape():
    assert iou_matrix([], [(0, 0, 1, 1)]).shape == (0, 1)
    assert iou_matrix([(0, 0, 1, 1)], []).shape == (1, 0)


def test_iou_matrix_of_degenerate_boxes_is_zero():
    assert iou_matrix([(0, 0, 0, 0)], [(0, 0, 0, 0)]).tolist() == [[0.0]]


def test_greedy_match_takes_the_best_pair_first_and_each_once():
    iou = np.array([[0.5, 0.6], [0.9, 0.4]])
    assert greedy_match(iou, 0.3) == [(1, 0), (0, 1)]


def test_greedy_match_never_pairs_disjoint_boxes():
    assert greedy_match(np.zeros((2, 2)), 0.3) == []


def test_track_confirmed_after_min_hits_with_id_1():
    tracker = Tracker(min_hits=3)
    assert tracker.update([det(100, 100)]) == []
    assert tracker.update([det(102, 100)]) == []
    tracks = tracker.update([det(104, 100)])
    assert [(t.track_id, t.label, t.missed, t.anchor) for t in tracks] == [(1, "person", 0, (104.0, 100.0))]


def test_min_hits_1_reports_a_track_at_once():
    assert [t.track_id for t in Tracker(min_hits=1).update([det(100, 100)])] == [1]


def test_tentative_track_missed_once_is_dropped_without_using_an_id():
    tracker = Tracker(min_hits=2)
    tracker.update([det(100, 100)])
    assert tracker.update([]) == []
    tracker.update([det(300, 100)])
    assert [t.track_id for t in tracker.update([det(300, 100)])] == [1]


def test_missed_track_is_predicted_at_constant_velocity_and_keeps_its_id():
    tracker = Tracker()
    for x in (100, 105, 110):
        tracker.update([det(x, 100)])
    predicted = [tracker.update([]) for _ in range(3)]
    assert [(t[0].track_id, t[0].anchor, t[0].missed) for t in predicted] == [
        (1, (115.0, 100.0), 1),
        (1, (120.0, 100.0), 2),
        (1, (125.0, 100.0), 3),
    ]
    # Found again where the prediction expects it, after a gap the box alone would not bridge (no overlap).
    tracks = tracker.update([det(130, 100)])
    assert [(t.track_id, t.anchor, t.missed) for t in tracks] == [(1, (130.0, 100.0), 0)]


def test_velocity_after_a_gap_is_per_frame():
    tracker = Tracker()
    for x in (100, 105):
        tracker.update([det(x, 100)])
    tracker.update([])
    tracker.update([])
    tracker.update([det(120, 100)])  # 15 px over 3 frames: still 5 px a frame
    assert tracker.update([])[0].anchor == (125.0, 100.0)


def test_track_kept_for_max_missed_frames_then_dropped():
    tracker = Tracker(max_missed=3)
    tracker.update([det(100, 100)])
    tracker.update([det(100, 100)])
    assert [len(tracker.update([])) for _ in range(4)] == [1, 1, 1, 0]


def test_track_found_again_after_exactly_max_missed_frames():
    tracker = Tracker(max_missed=3)
    tracker.update([det(100, 100)])
    tracker.update([det(100, 100)])
    for _ in range(3):
        tracker.update([])
    assert [(t.track_id, t.missed) for t in tracker.update([det(100, 100)])] == [(1, 0)]


def test_ids_are_never_reused_after_a_track_is_dropped():
    tracker = Tracker(max_missed=1)
    seen = []
    for _ in range(3):
        tracker.update([det(100, 100)])
        seen.append(tracker.update([det(100, 100)])[0].track_id)
        tracker.update([])
        assert tracker.update([]) == []
    assert seen == [1, 2, 3]


def test_skipped_frames_neither_move_nor_age_tracks():
    tracker = Tracker(max_missed=2)
    for x in (100, 110, 120):
        before = tracker.update([det(x, 100)])
    for _ in range(10):
        assert tracker.update([], ran_detector=False) == before
    # The velocity survives the skip: the next detector frame still expects the object 10 px further.
    assert [(t.track_id, t.anchor) for t in tracker.update([])] == [(1, (130.0, 100.0))]


def test_skipped_frame_with_detections_is_refused():
    with pytest.raises(ValueError) as error:
        Tracker().update([det(100, 100)], ran_detector=False)
    assert str(error.value) == "1 detections given for a frame where the detector did not run"


def test_low_score_detection_keeps_a_track_but_starts_none():
    tracker = Tracker(max_missed=1)
    tracker.update([det(100, 100)])
    tracker.update([det(100, 100)])
    for _ in range(5):
        tracks = tracker.update([det(100, 100, score=0.3), det(400, 100, score=0.3)])
        assert [(t.track_id, t.missed, t.score) for t in tracks] == [(1, 0, 0.3)]


def test_detection_below_low_score_is_ignored():
    tracker = Tracker(max_missed=1)
    tracker.update([det(100, 100)])
    tracker.update([det(100, 100)])
    assert [t.missed for t in tracker.update([det(100, 100, score=0.05)])] == [1]


def test_sure_detections_are_matched_before_doubtful_ones():
    tracker = Tracker(min_hits=1)
    tracker.update([det(100, 100)])
    # The doubtful box overlaps more, but the sure one wins the track; the doubtful one starts nothing.
    tracks = tracker.update([det(101, 100, score=0.2), det(110, 100, score=0.8)])
    assert [(t.track_id, t.anchor) for t in tracks] == [(1, (110.0, 100.0))]


def test_label_is_the_score_weighted_majority():
    tracker = Tracker()
    labels = []
    # Two doubtful "truck" votes (0.6) do not outweigh one sure "car" (0.9); a third (1.0) does.
    for label, score in [("car", 0.9), ("truck", 0.3), ("truck", 0.3), ("truck", 0.4)]:
        labels.append(
            [t.label for t in tracker.update([det(100, 100, label=label, score=score, w=80, h=60)])]
        )
    assert labels == [[], ["car"], ["car"], ["truck"]]


def test_two_objects_keep_their_ids_when_passing_each_other_closely():
    tracker = Tracker()
    history: dict[int, list[float]] = {}
    for i in range(40):
        tracks = tracker.update([det(200, 50 + 5 * i, w=50), det(240, 250 - 5 * i, w=50)])
        for t in tracks:
            history.setdefault(t.track_id, []).append(t.anchor[1])
    assert sorted(history) == [1, 2]
    assert history[1] == [50.0 + 5 * i for i in range(1, 40)]
    assert history[2] == [250.0 - 5 * i for i in range(1, 40)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_missed": -1}, "max_missed must be at least 0, not -1"),
        ({"iou_threshold": 0}, "iou_threshold must be in (0, 1], not 0"),
        ({"min_hits": 0}, "min_hits must be at least 1, not 0"),
        ({"low_score": 0.6, "high_score": 0.5}, "need 0 <= low_score <= high_score <= 1, not 0.6 and 0.5"),
    ],
)
def test_parameters_out_of_range_are_refused(kwargs, message):
    with pytest.raises(ValueError) as error:
        Tracker(**kwargs)
    assert str(error.value) == message
