"""Snapshots of a real street frame: size limits, privacy blur, highlight, scaling."""

from __future__ import annotations

import doctest

import cv2
import numpy as np
import pytest

import inference.snapshot
from inference.snapshot import PAD, snapshot

PERSON = (220, 0, 470, 272)
"""The pedestrian walking through frame 200 of bikes.mp4 (legs and coat), as a detector boxes it."""


@pytest.fixture(scope="module")
def frame(shared_dir) -> np.ndarray:
    """Frame 200 of the street video: a pedestrian, a bicycle, cobbles (plenty of detail)."""
    path = shared_dir / "media" / "bikes.mp4"
    if not path.exists():
        pytest.skip(f"{path} not found")
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, 200)
    ok, image = capture.read()
    capture.release()
    assert ok
    return image


def decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not a JPEG"
    return image


def grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)


def detail(image: np.ndarray) -> np.ndarray:
    """What a Gaussian blur of sigma 2 removes: the fine structure that makes a face a face."""
    g = grey(image)
    return g - cv2.GaussianBlur(g, (0, 0), 2)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def gradient_p75(image: np.ndarray) -> float:
    """75th percentile of neighbour differences: ~0 for flat blocks whatever their edges."""
    g = grey(image)
    steps = np.concatenate([np.abs(np.diff(g, axis=1)).ravel(), np.abs(np.diff(g, axis=0)).ravel()])
    return float(np.percentile(steps, 75))


def region(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x1, y1, x2, y2 = box
    return image[y1:y2, x1:x2]


@pytest.mark.parametrize("max_bytes", [30_000, 8_000, 3_000])
def test_fits_max_bytes_and_decodes(frame, max_bytes):
    jpeg = snapshot(frame, boxes_to_blur=[PERSON], max_bytes=max_bytes)
    assert len(jpeg) <= max_bytes
    assert jpeg[:3] == b"\xff\xd8\xff"
    image = decode(jpeg)
    height, width = image.shape[:2]
    if max_bytes == 30_000:
        assert (height, width) == (272, 640)  # fits at full size by lowering the quality
    else:
        assert width < 640  # this frame needs scaling down as well to fit 8 kB
        assert height == pytest.approx(width * 272 / 640, abs=1)


def test_uses_the_best_quality_that_fits(frame):
    # the budget is used, not wasted: a larger budget gives a larger (better) JPEG
    small = snapshot(frame, boxes_to_blur=[], max_bytes=20_000)
    large = snapshot(frame, boxes_to_blur=[], max_bytes=60_000)
    assert 18_000 <= len(small) <= 20_000
    assert len(large) > 30_000


def test_blurred_box_loses_its_detail(frame):
    plain = decode(snapshot(frame, boxes_to_blur=[]))
    private = decode(snapshot(frame, boxes_to_blur=[PERSON]))
    original = region(detail(frame), PERSON)
    # without blur the snapshot keeps the fine structure; with it, none is left
    assert correlation(original, region(detail(plain), PERSON)) > 0.9
    assert abs(correlation(original, region(detail(private), PERSON))) < 0.1
    assert gradient_p75(region(frame, PERSON)) >= 3
    assert gradient_p75(region(private, PERSON)) <= 1
    # coarse blocks: at most 8 distinct columns of colour across the box
    columns = np.unique(region(grey(private), PERSON)[100], return_counts=True)[1]
    assert (columns >= 6).sum() <= 9  # JPEG adds a few odd pixels at block edges


def test_pixels_outside_the_blurred_boxes_are_unchanged(frame):
    box = (300, 120, 400, 270)
    private = decode(snapshot(frame, boxes_to_blur=[box]))
    # outside the padded box and the JPEG blocks it touches (16 px)
    margin_x, margin_y = (box[2] - box[0]) * PAD + 16, (box[3] - box[1]) * PAD + 16
    outside = np.ones(frame.shape[:2], bool)
    outside[
        max(0, int(box[1] - margin_y)) : int(box[3] + margin_y),
        max(0, int(box[0] - margin_x)) : int(box[2] + margin_x),
    ] = False
    diff = np.abs(private.astype(int) - frame.astype(int))[outside]
    assert diff.mean() < 3.0
    assert np.percentile(diff, 99) < 20


def test_boxes_are_clipped_to_the_image(frame):
    boxes = [(-50.0, -40.0, 60.5, 80.2), (600, 200, 900, 400), (700, 0, 800, 100), (10, 10, 10, 50)]
    private = decode(snapshot(frame, boxes_to_blur=boxes))
    assert private.shape == (272, 640, 3)
    assert gradient_p75(private[0:80, 0:60]) <= 1


def test_highlight_draws_a_red_rectangle(frame):
    image = decode(snapshot(frame, boxes_to_blur=[], highlight=(100, 60, 200, 200)))
    for y, x in [(60, 150), (200, 150), (130, 100), (130, 200)]:
        b, g, r = image[y, x].astype(int)
        assert r > 180 and b < 60 and g < 60, (y, x, image[y, x])


def test_wider_frames_are_scaled_down_to_max_width(frame):
    wide = cv2.resize(frame, (1280, 544))
    image = decode(snapshot(wide, boxes_to_blur=[], highlight=(200, 120, 400, 400), max_bytes=100_000))
    assert image.shape == (272, 640, 3)
    b, g, r = image[60, 150].astype(int)  # the highlight scaled with the frame
    assert r > 180 and b < 60 and g < 60
    assert decode(snapshot(frame, boxes_to_blur=[], max_width=320, max_bytes=100_000)).shape == (136, 320, 3)


def test_input_is_not_changed(frame):
    before = frame.copy()
    snapshot(frame, boxes_to_blur=[PERSON], highlight=PERSON, max_bytes=4_000)
    assert np.array_equal(frame, before)


def test_grey_images():
    image = (np.indices((120, 200)).sum(axis=0) % 7 * 30).astype(np.uint8)
    out = cv2.imdecode(np.frombuffer(snapshot(image, boxes_to_blur=[(0, 0, 50, 50)]), np.uint8), -1)
    assert out.shape == (120, 200)


def test_bad_arguments(frame):
    with pytest.raises(ValueError) as info:
        snapshot(frame, boxes_to_blur=[], max_bytes=1_999)
    assert str(info.value) == "max_bytes must be at least 2000, not 1999"
    with pytest.raises(ValueError) as info:
        snapshot(frame.astype(np.float32), boxes_to_blur=[])
    assert str(info.value) == "expected a uint8 BGR or grey image, not float32 of shape (272, 640, 3)"
    assert len(snapshot(frame, boxes_to_blur=[], max_bytes=2_000)) <= 2_000


def test_docstring_examples_run():
    result = doctest.testmod(inference.snapshot, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
