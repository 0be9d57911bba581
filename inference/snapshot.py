"""Event snapshots: a small JPEG of the best frame of an object, with the people in it made unrecognisable.

A snapshot travels over a metered cellular link and ends up in front of operators, so it is
small (it fits ``max_bytes``) and private: every box to blur is pixelated to a few coarse
blocks before anything else happens to the frame but scaling it down, so no later step
(JPEG) can undo it.

:class:`BestFrames` keeps, for each live track, a private copy of the frame where the object
was seen best, so an event shows the object at its clearest rather than at the moment a rule
fired (often as it leaves the picture).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from inference.types import Box, Track

__all__ = ["MIN_BYTES", "BestFrames", "Shot", "private_copy", "snapshot", "view_quality"]

MIN_BYTES = 2_000
"""Smallest ``max_bytes`` accepted: a JPEG's headers alone take about 600 bytes."""

BLOCKS = 8
"""Pixel blocks along the longer side of a blurred box: a face gets two or three of them."""

PAD = 0.08
"""Fraction of a box's size added on each side before blurring: detector boxes are tight."""

QUALITY_MAX, QUALITY_MIN = 90, 20
HIGHLIGHT_BGR = (0, 0, 255)
MIN_WIDTH = 16

EDGE_PX = 2
"""A box this close to the frame's border is cut off by it: the object is partly out of view."""

CUT_OFF_WEIGHT = 0.5
"""How much a cut-off view counts against a whole one of the same size and score."""


def private_copy(
    image: np.ndarray, boxes_to_blur: list[Box], max_width: int = 640
) -> tuple[np.ndarray, float]:
    """A copy of ``image`` scaled down to ``max_width`` if wider, every box of ``boxes_to_blur`` pixelated.

    Returns the copy and the scale from ``image`` to it (1.0 when not scaled). Boxes are in
    pixels of ``image``; each is clipped, enlarged by ``PAD`` on each side and pixelated to at
    most ``BLOCKS`` blocks along its longer side (scaling first: the same blocks, less work).
    ``image`` is not changed.

    Raises ``ValueError`` when ``image`` is not a non-empty uint8 BGR or grey image or
    ``max_width`` is below ``MIN_WIDTH``.

    Example::

        >>> copy, scale = private_copy(np.zeros((480, 1280, 3), np.uint8), [(0, 0, 90, 200)])
        >>> copy.shape, scale
        ((240, 640, 3), 0.5)
    """
    if max_width < MIN_WIDTH:
        raise ValueError(f"max_width must be at least {MIN_WIDTH}, not {max_width}")
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected a uint8 BGR or grey image, not {image.dtype} of shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"the image is empty (shape {image.shape})")
    height, width = image.shape[:2]
    scale = min(1.0, max_width / width)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        private = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    else:
        private = image.copy()
    for box in boxes_to_blur:
        _pixelate(private, _scaled(box, scale))
    return private, scale


def view_quality(track: Track, frame_size: tuple[int, int]) -> float:
    """How well ``track`` is seen in a frame of ``(width, height)``: score × box area, halved when cut off.

    A bigger box shows more of the object (it is nearer), a higher score means a clearer view;
    a box touching the frame's border (within ``EDGE_PX``) shows only part of the object and
    counts ``CUT_OFF_WEIGHT`` as much.

    >>> view_quality(Track(1, "car", 0.8, (100, 50, 200, 100)), (640, 272))
    4000.0
    >>> view_quality(Track(1, "car", 0.8, (0, 50, 100, 100)), (640, 272))
    2000.0
    """
    width, height = frame_size
    x1, y1, x2, y2 = track.box
    area = max(0.0, min(x2, width) - max(x1, 0)) * max(0.0, min(y2, height) - max(y1, 0))
    cut_off = x1 <= EDGE_PX or y1 <= EDGE_PX or x2 >= width - EDGE_PX or y2 >= height - EDGE_PX
    return track.score * area * (CUT_OFF_WEIGHT if cut_off else 1.0)


@dataclass(frozen=True, slots=True, eq=False)
class Shot:
    """The best view of one track so far: a private copy of its frame and its box there.

    ``image`` is scaled by ``scale`` from the frame (people already pixelated) and may be
    shared with the shots of other tracks taken in the same frame; ``box`` and ``score`` are
    the track's in the frame's own pixels; ``quality`` is :func:`view_quality`.
    """

    frame: int
    image: np.ndarray
    scale: float
    box: Box
    score: float
    quality: float

    def jpeg(self, max_bytes: int) -> bytes:
        """The snapshot: this shot with the track's box highlighted, at most ``max_bytes``."""
        return snapshot(
            self.image, boxes_to_blur=[], highlight=_scaled(self.box, self.scale), max_bytes=max_bytes
        )


class BestFrames:
    """The frame where each live track was seen best (:func:`view_quality`), up to now.

    Feed it every frame with the tracker's tracks; it keeps one :class:`Shot` per live track
    that ``wanted`` accepts, taken from frames where the track was observed (a predicted box
    is a guess), replaced when a later frame shows it strictly better, and forgotten as soon
    as the track leaves the tracker's list. Memory stays bounded: at most one private copy per
    live track, each at most ``max_width`` pixels wide (640 x 360 x 3 bytes = 0.7 MB for a 16:9
    camera), and tracks improving in the same frame share one copy.

    ``people`` given to :meth:`update` are pixelated in the copy (pass ``[]`` to keep them):
    the people of *that* frame, so a snapshot never shows a person unblurred who was there
    when it was taken.

    Example::

        best = BestFrames(wanted=lambda track: track.label != "person")
        for frame in frames:
            tracks = tracker.update(detector.detect(frame))
            best.update(index, frame, tracks, people=[t.box for t in tracks if t.label == "person"])
            ...
            jpeg = best.shot(track_id).jpeg(max_bytes=30_000)

    Raises ``ValueError`` (from :func:`private_copy`) for a frame that is not a uint8 image.
    """

    def __init__(self, wanted: Callable[[Track], bool] = lambda track: True, max_width: int = 640) -> None:
        self.wanted = wanted
        self.max_width = max_width
        self._shots: dict[int, Shot] = {}

    def update(self, index: int, image: np.ndarray, tracks: list[Track], people: list[Box]) -> None:
        """Take frame ``index`` with its ``tracks``: drop the shots of tracks gone, keep better views."""
        live = {t.track_id for t in tracks}
        for track_id in self._shots.keys() - live:
            del self._shots[track_id]
        size = (image.shape[1], image.shape[0])
        copy: tuple[np.ndarray, float] | None = None  # made once, for all the tracks seen better here
        for track in tracks:
            if track.missed or not self.wanted(track):
                continue
            quality = view_quality(track, size)
            kept = self._shots.get(track.track_id)
            if kept is not None and quality <= kept.quality:
                continue
            if copy is None:
                copy = private_copy(image, people, self.max_width)
            self._shots[track.track_id] = Shot(index, copy[0], copy[1], track.box, track.score, quality)

    def shot(self, track_id: int) -> Shot | None:
        """The best view of track ``track_id`` so far, or ``None`` if none is kept."""
        return self._shots.get(track_id)

    def __len__(self) -> int:
        """Tracks with a shot kept."""
        return len(self._shots)

    @property
    def frames_kept(self) -> int:
        """Distinct frame copies held (never more than ``len(self)``)."""
        return len({id(s.image) for s in self._shots.values()})

    @property
    def bytes_kept(self) -> int:
        """Memory held by the frame copies."""
        return sum({id(s.image): s.image.nbytes for s in self._shots.values()}.values())


def snapshot(
    image: np.ndarray,
    *,
    boxes_to_blur: list[Box],
    highlight: Box | None = None,
    max_bytes: int = 30_000,
    max_width: int = 640,
) -> bytes:
    """A JPEG of ``image`` (BGR or grey, uint8) of at most ``max_bytes`` bytes.

    The frame is scaled down to ``max_width`` if wider and each box of ``boxes_to_blur``
    pixelated (:func:`private_copy`); ``highlight``, if given, gets a red rectangle around it
    (boxes in pixels of ``image``). Then the JPEG quality is lowered (binary search from 90
    down to 20), then the frame scaled down further, until the JPEG fits. ``image`` is not
    changed.

    Raises ``ValueError`` when ``image`` is not a uint8 BGR or grey image or ``max_bytes`` is
    below ``MIN_BYTES``.

    Example::

        >>> frame = np.full((480, 1280, 3), 200, np.uint8)
        >>> jpeg = snapshot(frame, boxes_to_blur=[(100, 50, 160, 200)], max_bytes=8_000)
        >>> len(jpeg) <= 8_000, cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR).shape
        (True, (240, 640, 3))
    """
    if max_bytes < MIN_BYTES:
        raise ValueError(f"max_bytes must be at least {MIN_BYTES}, not {max_bytes}")
    private, first_scale = private_copy(image, boxes_to_blur, max_width)
    if highlight is not None:
        highlight = _scaled(highlight, first_scale)
    height, width = image.shape[:2]
    scale = 1.0
    while True:
        scaled = _render(private, scale, highlight)
        jpeg, smallest = _best_quality(scaled, max_bytes)
        if jpeg is not None:
            return jpeg
        # the area goes with the size, roughly: aim a little below what would fit
        scale *= min(0.9, max(0.5, math.sqrt(max_bytes / smallest) * 0.95))
        if width * first_scale * scale < MIN_WIDTH or height * first_scale * scale < 1:
            raise ValueError(f"cannot fit a {width}x{height} snapshot in {max_bytes} bytes")


def _scaled(box: Box, scale: float) -> Box:
    x1, y1, x2, y2 = box
    return (x1 * scale, y1 * scale, x2 * scale, y2 * scale)


def _pixelate(image: np.ndarray, box: Box) -> None:
    """Replace ``box`` (padded, clipped to ``image``) by coarse blocks of its mean colours, in place."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = box
    pad_x, pad_y = (x2 - x1) * PAD, (y2 - y1) * PAD
    left, top = max(0, math.floor(x1 - pad_x)), max(0, math.floor(y1 - pad_y))
    right, bottom = min(width, math.ceil(x2 + pad_x)), min(height, math.ceil(y2 + pad_y))
    if right <= left or bottom <= top:
        return
    region = image[top:bottom, left:right]
    w, h = right - left, bottom - top
    block = max(w, h) / BLOCKS
    small = cv2.resize(
        region, (max(1, round(w / block)), max(1, round(h / block))), interpolation=cv2.INTER_AREA
    )
    region[...] = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST).reshape(region.shape)


def _render(private: np.ndarray, scale: float, highlight: Box | None) -> np.ndarray:
    height, width = private.shape[:2]
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        out = cv2.resize(private, size, interpolation=cv2.INTER_AREA)
    else:
        out = private.copy() if highlight is not None else private
    if highlight is not None:
        # drawn after scaling, so the line stays visible however small the snapshot gets
        x1, y1, x2, y2 = (round(v * scale) for v in highlight)
        thickness = max(2, round(out.shape[1] / 320))
        color = HIGHLIGHT_BGR if out.ndim == 3 else 255
        cv2.rectangle(out, (x1, y1), (x2, y2), color, thickness)
    return out


def _best_quality(image: np.ndarray, max_bytes: int) -> tuple[bytes | None, int]:
    """The JPEG of the highest quality that fits, or ``None`` and the size at the lowest quality."""
    best: bytes | None = None
    smallest = 0
    low, high = QUALITY_MIN, QUALITY_MAX
    while low <= high:
        quality = (low + high) // 2
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise ValueError(f"OpenCV could not encode a {image.shape} image as JPEG")
        if len(data) <= max_bytes:
            best, low = data.tobytes(), quality + 1
        else:
            smallest, high = len(data), quality - 1
    return best, smallest
