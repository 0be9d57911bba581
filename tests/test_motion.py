"""Motion gate: quiet on a static scene with sensor noise, awake on the street video, cheap."""

from __future__ import annotations

import doctest

import cv2
import numpy as np
import pytest

import inference.motion
from inference.motion import FrameError, MotionGate, MotionGateError

# The waiting cyclist of bikes.mp4 (see tests/test_detector.py for how the box was read off frame 120)
CYCLIST = (341.0, 9.0, 488.0, 272.0)


def noisy(frame: np.ndarray, sigma: float, count: int, seed: int = 3) -> list[np.ndarray]:
    """``count`` copies of ``frame`` with independent gaussian sensor noise of ``sigma`` grey levels."""
    rng = np.random.default_rng(seed)
    base = frame.astype(np.float32)
    return [np.clip(base + rng.normal(0, sigma, base.shape), 0, 255).astype(np.uint8) for _ in range(count)]


def overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_static_scene_with_noise_is_not_motion(frames):
    gate = MotionGate()
    flags = [gate.moved(f) for f in noisy(frames[120], sigma=15, count=100)]
    # only the first frame counts (well inside the 5 % allowance)
    assert flags == [True] + [False] * 99
    assert gate.regions == []
    assert gate.changed_fraction == 0.0


def test_strong_noise_stays_under_the_allowance(frames):
    gate = MotionGate()
    flags = [gate.moved(f) for f in noisy(frames[30], sigma=30, count=100)]
    assert sum(flags) <= 5
    assert flags[0] is True


def test_cyclist_frames_are_motion(frames):
    gate = MotionGate()
    flags = [gate.moved(f) for f in frames[110:136]]
    assert flags == [True] * 26
    assert gate.changed_fraction > 0.02
    assert any(overlaps(region, CYCLIST) for region in gate.regions)


def test_first_frame_and_new_size_count_as_motion(frames):
    gate = MotionGate()
    assert gate.moved(frames[120]) is True
    assert gate.regions == [(0.0, 0.0, 640.0, 272.0)]
    assert gate.moved(frames[120]) is False
    small = cv2.resize(frames[120], (320, 136))
    assert gate.moved(small) is True
    assert gate.regions == [(0.0, 0.0, 320.0, 136.0)]
    assert gate.moved(small) is False
    gate.reset()
    assert gate.moved(small) is True


def test_regions_locate_the_change_in_frame_pixels():
    gate = MotionGate()
    still = np.full((272, 640, 3), 90, np.uint8)
    gate.moved(still)
    walker = still.copy()
    walker[100:220, 300:340] = 200
    box = (300, 100, 340, 220)
    assert gate.moved(walker) is True
    [region] = gate.regions
    # the region holds the change and is at most a few shrunken pixels (4 frame pixels each) larger
    assert region[0] <= box[0] and region[1] <= box[1] and region[2] >= box[2] and region[3] >= box[3]
    assert all(abs(r - b) <= 12 for r, b in zip(region, box, strict=True))


def test_settings_out_of_range_are_refused():
    with pytest.raises(MotionGateError) as err:
        MotionGate(threshold=0)
    assert str(err.value) == "threshold must be 1..255 grey levels, got 0"
    with pytest.raises(MotionGateError) as err:
        MotionGate(min_area_fraction=1.5)
    assert str(err.value) == "min_area_fraction must be in [0, 1), got 1.5"
    with pytest.raises(MotionGateError) as err:
        MotionGate(blur=4)
    assert str(err.value) == "blur must be an odd kernel size, got 4"
    assert isinstance(err.value, ValueError)


def test_frame_must_be_bgr_uint8():
    with pytest.raises(FrameError) as err:
        MotionGate().moved(np.zeros((272, 640, 4), np.uint8))
    assert str(err.value) == (
        "expected a BGR frame (H x W x 3 uint8 array), got a uint8 array of shape (272, 640, 4)"
    )


def test_docstring_example_runs():
    result = doctest.testmod(inference.motion, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
