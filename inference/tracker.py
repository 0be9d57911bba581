"""Multi-object tracking: one stable identity per object across the frames of one camera.

ByteTrack-like: detections the detector is sure of are matched to tracks first, then the doubtful ones
may only keep existing tracks alive (an occluded car scores low but is still the same car); boxes of
tracks the detector missed are predicted at constant velocity so that the object keeps its identity.

Why our own and not a library: norfair pins numpy<2 and pulls scipy, filterpy and rich; supervision's
ByteTrack pulls matplotlib, av, pillow and scipy; motpy has not been released since 2021; scipy alone is
a 35 MB wheel. On a 512 MB board a greedy match on IoU over the handful of objects in a frame is enough,
and none of them knows a frame the detector skipped because nothing moved.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from inference.types import Box, Detection, Track

__all__ = ["Tracker", "greedy_match", "iou_matrix"]

# Weight of a new velocity measurement: box edges jitter by a few pixels from frame to frame, so one
# measurement alone would throw the prediction off; a half-life of one frame still follows a turn.
_VELOCITY_SMOOTHING = 0.5


def iou_matrix(
    a: Sequence[Box | np.ndarray] | np.ndarray, b: Sequence[Box | np.ndarray] | np.ndarray
) -> np.ndarray:
    """Intersection over union of every box of ``a`` with every box of ``b``, shape ``(len(a), len(b))``.

    >>> iou_matrix([(0, 0, 10, 10)], [(0, 0, 10, 10), (5, 0, 15, 10), (20, 20, 30, 30)]).round(3).tolist()
    [[1.0, 0.333, 0.0]]
    """
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    boxes_a = np.asarray(a, dtype=float)[:, None, :]
    boxes_b = np.asarray(b, dtype=float)[None, :, :]
    width = np.minimum(boxes_a[..., 2], boxes_b[..., 2]) - np.maximum(boxes_a[..., 0], boxes_b[..., 0])
    height = np.minimum(boxes_a[..., 3], boxes_b[..., 3]) - np.maximum(boxes_a[..., 1], boxes_b[..., 1])
    intersection = np.clip(width, 0, None) * np.clip(height, 0, None)

    def area(boxes: np.ndarray) -> np.ndarray:
        width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
        return np.clip(width, 0, None) * np.clip(height, 0, None)

    union = area(boxes_a) + area(boxes_b) - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Pairs ``(row, column)``, best IoU first, each row and column at most once, IoU at least ``threshold``.

    Greedy instead of Hungarian: the two differ only when several boxes overlap about equally, where
    neither is reliably right, and the optimal one needs scipy.

    >>> greedy_match(np.array([[0.9, 0.5], [0.8, 0.1]]), 0.3)
    [(0, 0)]
    """
    rows, columns = np.nonzero((iou >= threshold) & (iou > 0))
    order = np.argsort(-iou[rows, columns], kind="stable")
    used_rows: set[int] = set()
    used_columns: set[int] = set()
    pairs = []
    for k in order:
        row, column = int(rows[k]), int(columns[k])
        if row not in used_rows and column not in used_columns:
            used_rows.add(row)
            used_columns.add(column)
            pairs.append((row, column))
    return pairs


class _TrackState:
    """The mutable state of one track; the tracker hands out frozen :class:`Track` snapshots of it."""

    __slots__ = ("box", "hits", "missed", "observed", "score", "track_id", "velocity", "votes")

    def __init__(self, detection: Detection) -> None:
        self.track_id: int | None = None  # given on confirmation, so tentative noise uses up no ids
        self.observed = np.asarray(detection.box, dtype=float)  # the last box the detector saw
        self.box = self.observed.copy()  # observed, or predicted while missed
        self.velocity = np.zeros(4)  # change of each box edge per detector frame
        self.hits = 1
        self.missed = 0
        self.score = detection.score
        self.votes = {detection.label: detection.score}

    def predict(self) -> np.ndarray:
        """The box expected in the next detector frame, moving on at the last velocity."""
        box = self.observed + self.velocity * (self.missed + 1)
        # A shrinking box extrapolated for long would turn inside out: keep it at least a pixel wide.
        centre = (box[:2] + box[2:]) / 2
        half = np.maximum((box[2:] - box[:2]) / 2, 0.5)
        return np.concatenate([centre - half, centre + half])

    def hit(self, detection: Detection) -> None:
        box = np.asarray(detection.box, dtype=float)
        measured = (box - self.observed) / (self.missed + 1)
        if self.hits == 1:
            self.velocity = measured  # the first measurement replaces the guess of standing still
        else:
            self.velocity = _VELOCITY_SMOOTHING * measured + (1 - _VELOCITY_SMOOTHING) * self.velocity
        self.observed = box
        self.box = box
        self.hits += 1
        self.missed = 0
        self.score = detection.score
        # Votes weighted by score: a detector flickering car/truck settles on what it says most surely.
        self.votes[detection.label] = self.votes.get(detection.label, 0.0) + detection.score

    def miss(self) -> None:
        self.box = self.predict()
        self.missed += 1

    @property
    def label(self) -> str:
        return max(self.votes, key=self.votes.__getitem__)

    def snapshot(self) -> Track:
        assert self.track_id is not None
        x1, y1, x2, y2 = (float(v) for v in self.box)
        return Track(self.track_id, self.label, self.score, (x1, y1, x2, y2), self.missed)


class Tracker:
    """Follows the objects of one camera from frame to frame and gives each a stable ``track_id``.

    Time is counted in frames where the detector ran: ``max_missed``, the velocity and the
    confirmation are all per detector frame.

    - ``iou_threshold``: least IoU between a track's predicted box and a detection to match them.
    - ``min_hits``: detections in consecutive detector frames before a track is reported (confirmed);
      a track missed before that is dropped, so one-frame false positives never get an id.
    - ``max_missed``: a confirmed track survives up to this many consecutive detector frames without a
      detection (its box predicted at constant velocity, ``Track.missed`` > 0) and is dropped after.
    - ``high_score``: detections at least this sure are matched first and may start tracks.
    - ``low_score``: detections between this and ``high_score`` only keep existing tracks alive;
      below it they are ignored.

    Ids start at 1, follow the order of confirmation and are never reused.

    >>> from inference.types import Detection
    >>> tracker = Tracker(min_hits=2)
    >>> tracker.update([Detection("car", 2, 0.9, (0, 0, 40, 20))])
    []
    >>> [(t.track_id, t.label, t.box) for t in tracker.update([Detection("car", 2, 0.9, (4, 0, 44, 20))])]
    [(1, 'car', (4.0, 0.0, 44.0, 20.0))]
    >>> [(t.track_id, t.box, t.missed) for t in tracker.update([])]  # missed: predicted 4 px further
    [(1, (8.0, 0.0, 48.0, 20.0), 1)]

    Raises ``ValueError`` on a parameter out of range.
    """

    def __init__(
        self,
        max_missed: int = 15,
        iou_threshold: float = 0.3,
        min_hits: int = 2,
        high_score: float = 0.5,
        low_score: float = 0.1,
    ) -> None:
        if max_missed < 0:
            raise ValueError(f"max_missed must be at least 0, not {max_missed}")
        if not 0 < iou_threshold <= 1:
            raise ValueError(f"iou_threshold must be in (0, 1], not {iou_threshold}")
        if min_hits < 1:
            raise ValueError(f"min_hits must be at least 1, not {min_hits}")
        if not 0 <= low_score <= high_score <= 1:
            raise ValueError(f"need 0 <= low_score <= high_score <= 1, not {low_score} and {high_score}")
        self.max_missed = max_missed
        self.iou_threshold = iou_threshold
        self.min_hits = min_hits
        self.high_score = high_score
        self.low_score = low_score
        self._tracks: list[_TrackState] = []
        self._ids = itertools.count(1)

    def update(self, detections: Sequence[Detection], ran_detector: bool = True) -> list[Track]:
        """Takes one frame's detections and returns the confirmed tracks, by id.

        ``ran_detector=False`` is for a frame the detector skipped because the motion gate saw nothing
        move: the tracks are returned as they are, neither moved by their velocity nor aged. Nothing
        moved, so predicting would carry a stopped car away from where it stands, and ageing would drop
        a parked car after ``max_missed`` quiet frames. ``update([])`` with the detector run is
        different: the detector looked and saw nothing, so the tracks are predicted and age.

        Raises ``ValueError`` when detections are given with ``ran_detector=False``.
        """
        if not ran_detector:
            if detections:
                raise ValueError(
                    f"{len(detections)} detections given for a frame where the detector did not run"
                )
            return self._confirmed()
        high = [d for d in detections if d.score >= self.high_score]
        low = [d for d in detections if self.low_score <= d.score < self.high_score]
        unmatched_high = self._associate(high, low)
        self._tracks = [t for t in self._tracks if self._alive(t)]
        self._tracks.extend(_TrackState(d) for d in unmatched_high)
        for track in self._tracks:
            if track.track_id is None and track.hits >= self.min_hits:
                track.track_id = next(self._ids)
        return self._confirmed()

    def _associate(self, high: list[Detection], low: list[Detection]) -> list[Detection]:
        """Matches tracks to sure detections, then the rest to doubtful ones; returns the sure ones left."""
        predicted = [t.predict() for t in self._tracks]
        waiting, unmatched_high = self._match(predicted, list(range(len(self._tracks))), high)
        waiting, _ = self._match(predicted, waiting, low)
        for i in waiting:
            self._tracks[i].miss()
        return unmatched_high

    def _match(
        self, predicted: list[np.ndarray], waiting: list[int], detections: list[Detection]
    ) -> tuple[list[int], list[Detection]]:
        """Updates the waiting tracks that match a detection; returns the tracks and detections left."""
        iou = iou_matrix([predicted[i] for i in waiting], [d.box for d in detections])
        pairs = greedy_match(iou, self.iou_threshold)
        for row, column in pairs:
            self._tracks[waiting[row]].hit(detections[column])
        rows = {row for row, _ in pairs}
        columns = {column for _, column in pairs}
        return (
            [i for k, i in enumerate(waiting) if k not in rows],
            [d for k, d in enumerate(detections) if k not in columns],
        )

    def _alive(self, track: _TrackState) -> bool:
        if track.track_id is None:
            return track.missed == 0
        return track.missed <= self.max_missed

    def _confirmed(self) -> list[Track]:
        return sorted(
            (t.snapshot() for t in self._tracks if t.track_id is not None), key=lambda t: t.track_id
        )
