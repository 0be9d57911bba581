"""CameraSource: the street video from shared/, and fake captures for the failures of live cameras."""

from __future__ import annotations

import doctest
import errno

import cv2
import numpy as np
import pytest

import drivers.camera
from common.errors import IocEdgeError
from drivers.camera import CameraError, CameraSource, EndOfStream, Frame

IMAGE = np.zeros((4, 6, 3), np.uint8)


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class FakeCapture:
    """A capture that delivers ``frames`` frames (``None``: forever), then fails forever.

    Each read advances ``clock`` by ``grab_s`` (the time a grab takes, or hangs).
    """

    def __init__(self, frames: int | None, clock: FakeClock, grab_s: float = 0.0, opened: bool = True):
        self.left, self.clock, self.grab_s, self.opened = frames, clock, grab_s, opened
        self.reads = 0
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.reads += 1
        self.clock.t += self.grab_s
        if self.left is None or self.left > 0:
            if self.left is not None:
                self.left -= 1
            return True, IMAGE
        return False, None

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        self.released = True


class FakeOpener:
    """Hands out the given captures in turn and records what it was asked to open."""

    def __init__(self, *captures: FakeCapture) -> None:
        self.captures = list(captures)
        self.calls: list[tuple[object, int, list[int]]] = []

    def __call__(self, target: object, api: int, params: list[int]) -> FakeCapture:
        self.calls.append((target, api, params))
        return self.captures.pop(0)


@pytest.fixture
def bikes(shared_dir):
    path = shared_dir / "media" / "bikes.mp4"
    if not path.exists():
        pytest.skip(f"{path} not found")
    return str(path)


def read_all(camera: CameraSource, limit: int = 10_000) -> tuple[list[Frame], str]:
    """The frames up to the end of the stream, and the end's message."""
    frames = []
    with pytest.raises(EndOfStream) as info:
        for _ in range(limit):
            frame = camera.read(timeout=1.0)
            if frame is not None:
                frames.append(frame)
    return frames, str(info.value)


def test_video_file_delivers_every_frame_then_end_of_stream(bikes):
    camera = CameraSource(bikes)
    assert not camera.is_open  # opened lazily
    frames, end = read_all(camera)
    assert end == f"end of video file {bikes}"
    assert [f.index for f in frames] == list(range(250))
    assert frames[0].image.shape == (272, 640, 3) and frames[0].image.dtype == np.uint8
    assert frames[1].source_pos_ms == 40.0
    assert frames[-1].source_pos_ms == 9960.0
    assert camera.stats == {"frames": 250}
    with pytest.raises(EndOfStream):  # and stays ended
        camera.read(timeout=0.1)
    camera.close()


def test_fps_cap_samples_the_video_by_its_timestamps(bikes):
    camera = CameraSource(bikes, fps=5)
    frames, _ = read_all(camera)
    assert abs(len(frames) - 50) <= 1
    assert camera.stats["skipped"] == 250 - len(frames)
    assert camera.stats["frames"] == len(frames)
    assert [f.source_pos_ms for f in frames[:4]] == [0.0, 200.0, 400.0, 600.0]
    gaps = np.diff([f.source_pos_ms for f in frames])
    assert gaps.min() >= 200.0 - 0.5


def test_fps_above_the_video_rate_skips_nothing(bikes):
    camera = CameraSource(bikes, fps=60)
    assert len(read_all(camera)[0]) == 250
    assert camera.stats["skipped"] == 0


def test_loop_starts_the_video_again(bikes):
    camera = CameraSource(bikes, loop=True)
    frames = [f for f in (camera.read(timeout=1.0) for _ in range(300)) if f is not None]
    assert len(frames) == 300
    assert frames[-1].index == 299
    assert frames[250].source_pos_ms == 0.0
    assert frames[260].source_pos_ms == 400.0
    assert camera.stats["loops"] == 1
    assert camera.stats["reopens"] == 0


def test_loop_with_fps_restarts_the_sampling(bikes):
    camera = CameraSource(bikes, loop=True, fps=5)
    frames = [f for f in (camera.read(timeout=1.0) for _ in range(60)) if f is not None]
    assert [f.source_pos_ms for f in frames[49:52]] == [9800.0, 0.0, 200.0]


def test_missing_file_raises_and_retries_after_the_backoff(tmp_path):
    clock = FakeClock()
    path = tmp_path / "absent.mp4"
    camera = CameraSource(str(path), backoff_min_s=1.0, backoff_max_s=8.0, monotonic=clock)
    with pytest.raises(CameraError) as info:
        camera.read(timeout=0)
    assert str(info.value) == f"video file {path} not found: check the camera's source in the config"
    assert info.value.errno == errno.ENOENT
    assert isinstance(info.value, IocEdgeError) and isinstance(info.value, OSError)
    assert camera.stats["open_failures"] == 1
    # the first delay is drawn from [0.5, 1.0]: no new attempt before 0.5 s, one after 1.0 s
    clock.t = 0.49
    assert camera.read(timeout=0) is None
    assert camera.stats["open_failures"] == 1
    clock.t = 1.0
    with pytest.raises(CameraError):
        camera.read(timeout=0)
    assert camera.stats["open_failures"] == 2
    # the second delay doubles: from [1.0, 2.0]
    clock.t = 1.99
    assert camera.read(timeout=0) is None
    clock.t = 3.0
    with pytest.raises(CameraError):
        camera.read(timeout=0)
    assert camera.stats["open_failures"] == 3


def test_camera_absent_at_start_is_picked_up_later():
    clock = FakeClock()
    absent, present = FakeCapture(None, clock, opened=False), FakeCapture(None, clock)
    opener = FakeOpener(absent, present)
    camera = CameraSource(0, backoff_min_s=1.0, opener=opener, monotonic=clock)
    with pytest.raises(CameraError) as info:
        camera.read(timeout=0)
    assert str(info.value) == (
        "cannot open camera device 0 (/dev/video0): check that it is plugged in "
        "and that the node's user is in the 'video' group"
    )
    assert absent.released
    clock.t = 1.0
    frame = camera.read(timeout=0)
    assert frame is not None and frame.index == 0 and frame.source_pos_ms is None
    assert opener.calls == [(0, cv2.CAP_ANY, []), (0, cv2.CAP_ANY, [])]  # devices get no parameters
    assert camera.stats == {"open_failures": 1, "frames": 1}


def test_device_index_as_a_string_and_stream_url_without_password():
    clock = FakeClock()
    opener = FakeOpener(FakeCapture(None, clock))
    camera = CameraSource("2", opener=opener, monotonic=clock)
    camera.read(timeout=0)
    assert opener.calls[0][0] == 2

    opener = FakeOpener(FakeCapture(None, clock, opened=False))
    camera = CameraSource("rtsp://admin:hunter2@10.0.0.7:554/stream1", stall_s=3, opener=opener)
    with pytest.raises(CameraError) as info:
        camera.read(timeout=0)
    assert str(info.value) == (
        "cannot open video stream rtsp://admin:***@10.0.0.7:554/stream1: check the URL and the "
        "credentials, and that the camera is on and reachable"
    )
    assert repr(camera) == "CameraSource('rtsp://admin:***@10.0.0.7:554/stream1')"
    assert opener.calls[0][2] == [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        3000,
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        3000,
        cv2.CAP_PROP_N_THREADS,
        1,
    ]


def test_file_opencv_cannot_decode(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("not a video")
    with pytest.raises(CameraError) as info:
        CameraSource(str(path)).read(timeout=0)
    assert str(info.value) == f"cannot open video file {path}: OpenCV cannot decode it; is it a video?"


def test_stalled_stream_is_reopened_after_stall_s():
    clock = FakeClock()
    first, second = FakeCapture(0, clock), FakeCapture(0, clock)
    opener = FakeOpener(first, second)
    camera = CameraSource("rtsp://cam/1", stall_s=5.0, opener=opener, monotonic=clock)
    for t in (0.0, 1.0, 4.9):
        clock.t = t
        assert camera.read(timeout=0) is None
    assert len(opener.calls) == 1 and camera.stats["reopens"] == 0
    clock.t = 5.0
    assert camera.read(timeout=0) is None
    assert first.released
    assert len(opener.calls) == 2
    assert camera.stats["reopens"] == 1
    # the watchdog counts from the new open
    clock.t = 9.9
    assert camera.read(timeout=0) is None
    assert camera.stats["reopens"] == 1


def test_hung_grab_is_reopened_in_the_same_read():
    clock = FakeClock()
    hung, fresh = FakeCapture(0, clock, grab_s=6.0), FakeCapture(None, clock)
    opener = FakeOpener(hung, fresh)
    camera = CameraSource("rtsp://cam/1", stall_s=5.0, opener=opener, monotonic=clock)
    frame = camera.read(timeout=0.1)
    assert frame is not None and frame.index == 0
    assert camera.stats["reopens"] == 1 and hung.released


def test_stream_failing_mid_way_is_reopened_and_frames_resume():
    clock = FakeClock()
    failing, fresh = FakeCapture(3, clock), FakeCapture(None, clock)
    opener = FakeOpener(failing, fresh)
    camera = CameraSource("http://cam/video.mjpg", stall_s=2.0, opener=opener, monotonic=clock)
    assert [camera.read(timeout=0).index for _ in range(3)] == [0, 1, 2]
    clock.t = 1.0
    assert camera.read(timeout=0) is None
    clock.t = 2.0
    frame = camera.read(timeout=0)
    assert frame is not None and frame.index == 3
    assert camera.stats == {"frames": 4, "reopens": 1}


def test_live_fps_cap_uses_the_monotonic_clock():
    clock = FakeClock()
    capture = FakeCapture(None, clock, grab_s=0.04)  # a 25 fps camera
    camera = CameraSource(0, fps=5, opener=FakeOpener(capture), monotonic=clock)
    delivered = 0
    while clock.t < 10.0:
        delivered += camera.read(timeout=1.0) is not None
    assert abs(delivered - 50) <= 1
    assert camera.stats["frames"] == delivered
    assert camera.stats["skipped"] == capture.reads - delivered


def test_closed_source_refuses_to_read():
    clock = FakeClock()
    capture = FakeCapture(None, clock)
    camera = CameraSource(0, opener=FakeOpener(capture), monotonic=clock)
    with camera:
        camera.read(timeout=0)
    assert capture.released
    with pytest.raises(CameraError) as info:
        camera.read(timeout=0)
    assert str(info.value) == "camera 0 (/dev/video0) is closed"


def test_bad_arguments():
    with pytest.raises(ValueError) as info:
        CameraSource(0, fps=0)
    assert str(info.value) == "fps must be > 0 or None, not 0"
    with pytest.raises(ValueError) as info:
        CameraSource(0, stall_s=0)
    assert str(info.value) == "stall_s must be > 0, not 0"
    with pytest.raises(ValueError) as info:
        CameraSource(0, decode_threads=-1)
    assert str(info.value) == "decode_threads must be >= 0, not -1"


def test_decode_threads_reach_ffmpeg(bikes):
    captures = []

    def opener(*args):
        captures.append(cv2.VideoCapture(*args))
        return captures[-1]

    for threads in (1, 2):
        camera = CameraSource(bikes, decode_threads=threads, opener=opener)
        assert camera.read(timeout=1.0) is not None
        assert captures[-1].get(cv2.CAP_PROP_N_THREADS) == threads
        camera.close()


def test_docstring_examples_run():
    result = doctest.testmod(drivers.camera, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
