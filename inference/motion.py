"""A cheap motion gate in front of the detector: skip inference while nothing in the view changes.

:class:`MotionGate` shrinks each frame to a small blurred grayscale image (160 pixels wide by
default) and compares it with a background that follows the scene slowly (a running average,
``cv2.accumulateWeighted``). Shrinking, the grey conversion and the blur divide the sensor noise
by about four (sigma 30 grey levels -> at most 17 < ``threshold`` 25), so a static scene with noise
stays quiet, while a cyclist crossing changes far more
than ``min_area_fraction`` of the image. It costs about 0.1 ms a frame on 640x272
(``bench/camera_detector.py`` prints the figure).
"""

from __future__ import annotations

import cv2
import numpy as np

from common.errors import IocEdgeError
from inference.detector import FrameError, check_frame
from inference.types import Box

__all__ = ["FrameError", "MotionGate", "MotionGateError"]


class MotionGateError(IocEdgeError, ValueError):
    """A :class:`MotionGate` setting is out of range."""


class MotionGate:
    """Say whether a frame differs from the recent background enough to be worth detecting on.

    ``threshold`` is the grey-level change (0..255, after shrinking and blurring) from which a pixel
    counts as changed; ``min_area_fraction`` the fraction of changed pixels from which the frame
    counts as moved; ``learning_rate`` how fast the background takes in the scene (0.05: a parked
    car becomes background after a few seconds at 10 fps). The first frame, and the first after
    the frame size changes, always counts as moved.

    After each :meth:`moved` call :attr:`regions` gives the bounding boxes of the changed areas in
    the frame's pixels (largest first, worked out on first access), and :attr:`changed_fraction`
    the fraction of the image that changed.

    Raises :class:`~inference.detector.FrameError` for anything but an ``H x W x 3`` uint8 frame,
    and :class:`MotionGateError` for settings out of range.

    Example::

        >>> import numpy as np
        >>> gate = MotionGate()
        >>> still = np.full((272, 640, 3), 90, np.uint8)
        >>> gate.moved(still), gate.moved(still)
        (True, False)
        >>> walker = still.copy()
        >>> walker[100:220, 300:340] = 200
        >>> gate.moved(walker), gate.regions
        (True, [(292.0, 92.0, 348.0, 228.0)])
    """

    def __init__(
        self,
        threshold: int = 25,
        min_area_fraction: float = 0.005,
        downscale_width: int = 160,
        *,
        blur: int = 5,
        learning_rate: float = 0.05,
    ) -> None:
        if not 1 <= threshold <= 255:
            raise MotionGateError(f"threshold must be 1..255 grey levels, got {threshold}")
        if not 0.0 <= min_area_fraction < 1.0:
            raise MotionGateError(f"min_area_fraction must be in [0, 1), got {min_area_fraction}")
        if downscale_width < 16:
            raise MotionGateError(f"downscale_width must be at least 16 pixels, got {downscale_width}")
        if blur < 1 or blur % 2 == 0:
            raise MotionGateError(f"blur must be an odd kernel size, got {blur}")
        if not 0.0 < learning_rate <= 1.0:
            raise MotionGateError(f"learning_rate must be in (0, 1], got {learning_rate}")
        self.threshold = threshold
        self.min_area_fraction = min_area_fraction
        self.downscale_width = downscale_width
        self.blur = blur
        self.learning_rate = learning_rate
        self.changed_fraction = 1.0
        self._mask: np.ndarray | None = None
        self._regions: list[Box] | None = []
        self._frame_shape: tuple[int, int] | None = None
        self._small_size = (0, 0)
        self._scale = (1.0, 1.0)
        self._background = np.empty(0, np.float32)

    def reset(self) -> None:
        """Forget the background: the next frame counts as moved."""
        self._frame_shape = None

    def _small_gray(self, frame: np.ndarray) -> np.ndarray:
        # Shrink first, then convert: 16x fewer pixels to convert. INTER_LINEAR, not INTER_AREA: 25 us
        # against 175 us on 640x272, and after the blur it leaves nearly the same noise (sigma 30 on the
        # frame -> at most 17 grey levels here against 14)
        small = cv2.resize(frame, self._small_size, interpolation=cv2.INTER_LINEAR)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(gray, (self.blur, self.blur), 0) if self.blur > 1 else gray

    def moved(self, frame_bgr: np.ndarray) -> bool:
        """True when ``frame_bgr`` changed enough against the background; updates the background."""
        check_frame(frame_bgr)
        height, width = frame_bgr.shape[:2]
        if (height, width) != self._frame_shape:
            small_w = min(width, self.downscale_width)
            self._small_size = (small_w, max(1, round(height * small_w / width)))
            self._scale = (width / self._small_size[0], height / self._small_size[1])
            self._background = self._small_gray(frame_bgr).astype(np.float32)
            self._frame_shape = (height, width)
            self._regions = [(0.0, 0.0, float(width), float(height))]
            self.changed_fraction = 1.0
            return True
        gray = self._small_gray(frame_bgr)
        diff = cv2.absdiff(gray, self._background.astype(np.uint8))
        _, mask = cv2.threshold(diff, self.threshold, 255, cv2.THRESH_BINARY)
        changed = cv2.countNonZero(mask)
        cv2.accumulateWeighted(gray, self._background, self.learning_rate)
        self.changed_fraction = changed / mask.size
        moved = self.changed_fraction > self.min_area_fraction
        # the regions are worked out only when asked for: the contours cost more than the rest
        self._mask, self._regions = (mask, None) if moved else (None, [])
        return moved

    @property
    def regions(self) -> list[Box]:
        """Bounding boxes of what changed in the last frame :meth:`moved` saw, in frame pixels.

        Largest first; the whole frame after a first frame, empty when the frame did not move.
        """
        if self._regions is None:
            assert self._mask is not None, "moved() keeps the mask whenever it leaves the regions to work out"
            self._regions = self._find_regions(self._mask)
        return self._regions

    def _find_regions(self, mask: np.ndarray) -> list[Box]:
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        sx, sy = self._scale
        height, width = self._frame_shape or (0, 0)
        boxes = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            # one small pixel of margin: the blur spreads a change by about a pixel each side
            boxes.append(
                (
                    float(max(0.0, (x - 1) * sx)),
                    float(max(0.0, (y - 1) * sy)),
                    float(min(width, (x + w + 1) * sx)),
                    float(min(height, (y + h + 1) * sy)),
                )
            )
        boxes.sort(key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
        return boxes
