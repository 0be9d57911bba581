"""Event snapshots: a small JPEG of the frame with the people in it made unrecognisable.

A snapshot travels over a metered cellular link and ends up in front of operators, so it is
small (it fits ``max_bytes``) and private: every box to blur is pixelated to a few coarse
blocks before anything else happens to the frame, so no later step (scaling, JPEG) can undo it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from inference.types import Box

__all__ = ["MIN_BYTES", "snapshot"]

MIN_BYTES = 2_000
"""Smallest ``max_bytes`` accepted: a JPEG's headers alone take about 600 bytes."""

BLOCKS = 8
"""Pixel blocks along the longer side of a blurred box: a face gets two or three of them."""

PAD = 0.08
"""Fraction of a box's size added on each side before blurring: detector boxes are tight."""

QUALITY_MAX, QUALITY_MIN = 90, 20
HIGHLIGHT_BGR = (0, 0, 255)
MIN_WIDTH = 16


def snapshot(
    image: np.ndarray,
    *,
    boxes_to_blur: list[Box],
    highlight: Box | None = None,
    max_bytes: int = 30_000,
    max_width: int = 640,
) -> bytes:
    """A JPEG of ``image`` (BGR or grey, uint8) of at most ``max_bytes`` bytes.

    Each box of ``boxes_to_blur`` (``(x1, y1, x2, y2)`` in pixels of ``image``, clipped to it,
    enlarged by ``PAD`` on each side) is pixelated to at most ``BLOCKS`` blocks along its
    longer side; ``highlight``, if given, gets a red rectangle around it. The frame is scaled
    down to ``max_width`` if wider, then the JPEG quality is lowered (binary search from 90
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
    if max_width < MIN_WIDTH:
        raise ValueError(f"max_width must be at least {MIN_WIDTH}, not {max_width}")
    if image.dtype != np.uint8 or not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)):
        raise ValueError(f"expected a uint8 BGR or grey image, not {image.dtype} of shape {image.shape}")
    if image.size == 0:
        raise ValueError(f"the image is empty (shape {image.shape})")
    private = image.copy()
    for box in boxes_to_blur:
        _pixelate(private, box)
    height, width = private.shape[:2]
    scale = min(1.0, max_width / width)
    while True:
        scaled = _render(private, scale, highlight)
        jpeg, smallest = _best_quality(scaled, max_bytes)
        if jpeg is not None:
            return jpeg
        # the area goes with the size, roughly: aim a little below what would fit
        scale *= min(0.9, max(0.5, math.sqrt(max_bytes / smallest) * 0.95))
        if width * scale < MIN_WIDTH or height * scale < 1:
            raise ValueError(f"cannot fit a {width}x{height} snapshot in {max_bytes} bytes")


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
