"""Frames from a camera: a video file, an RTSP/HTTP stream or a local device, read with OpenCV.

:class:`CameraSource` is to a camera what a :class:`~drivers.transport.Transport` is to a serial
sensor: the driver reads from it with a timeout and cannot tell a replayed file from a live
camera. It opens the source on the first read, opens it again after a failure (with backoff, so
a camera that is absent when the node boots never stops the node), reopens a stream that stopped
delivering frames (a watchdog: OpenCV does not notice a dead RTSP stream by itself), and caps the
frame rate so the detector is not fed more frames than it needs.

Example::

    >>> camera = CameraSource("nothing.mp4")
    >>> camera.read(timeout=0.1)
    Traceback (most recent call last):
    ...
    drivers.camera.CameraError: video file nothing.mp4 not found: check the camera's source in the config
    >>> camera.stats["open_failures"]
    1
"""

from __future__ import annotations

import errno
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import cv2
import numpy as np

from common.backoff import Backoff
from drivers.transport import EndOfStream, TransportError

__all__ = ["CameraError", "CameraSource", "EndOfStream", "Frame"]

FAILED_GRAB_PAUSE_S = 0.05
"""Pause after a live source returned no frame, so a caller looping on read() does not spin."""

DUE_TOLERANCE_MS = 0.5
"""Slack when deciding whether a frame is due: frame times are rounded to the millisecond."""


class CameraError(TransportError):
    """The camera or video cannot be opened or read; the message says which one and what to do.

    A :class:`~drivers.transport.TransportError`, hence an ``IocEdgeError`` and an ``OSError``:
    a driver logs it once and reads again (:class:`CameraSource` paces the new attempts).
    """


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """One frame delivered by a :class:`CameraSource`.

    ``index`` counts the frames delivered before this one (from 0, across reopens and loops);
    ``image`` is BGR, as OpenCV decodes it; ``source_pos_ms`` is the frame's time in a video
    file (restarting at each loop), ``None`` for a live source.
    """

    index: int
    image: np.ndarray
    source_pos_ms: float | None


class CameraSource:
    """A video file, an RTSP/HTTP URL or a local camera (``0`` or ``"0"``: ``/dev/video0``).

    ``read(timeout)`` returns the next :class:`Frame`, or ``None`` when none came in time (or
    the next attempt to open the source is not due yet). It raises :class:`CameraError` when
    the source cannot be opened: the caller logs it and reads again; each new attempt waits
    an exponential backoff with jitter (``backoff_min_s`` doubling up to ``backoff_max_s``),
    and ``read`` never waits longer than ``timeout`` for it. At the end of a video file it
    starts again from the beginning if ``loop``, else raises :class:`EndOfStream`.

    Live sources have a watchdog: one that delivers no frame for ``stall_s`` seconds (reads
    fail, or a grab hangs: FFmpeg streams are opened with ``CAP_PROP_OPEN_TIMEOUT_MSEC`` and
    ``CAP_PROP_READ_TIMEOUT_MSEC`` of ``stall_s``, so a grab on a dead stream returns after at
    most that) is released and opened again. OpenCV's read cannot be interrupted, so on a dead
    stream one ``read`` may block up to ``stall_s`` whatever its ``timeout``.

    With ``fps``, at most ``fps`` frames are delivered per second of *source* time and the
    others skipped: for a file, by the frames' timestamps (a file read as fast as possible is
    still sampled at ``fps``); for a live source, by the ``monotonic`` clock.

    ``decode_threads`` is FFmpeg's decoder threads for files and streams (0: its default, one a
    core). One by default: a camera's frames are small enough for one thread (0.5 ms for 640x272
    H.264), and each further thread holds frames of its own and competes with the detector for
    the same cores.

    ``opener(target, api_preference, params)`` makes the capture (``cv2.VideoCapture``; tests
    pass a fake with ``isOpened()``, ``read()``, ``get()`` and ``release()``). ``stats``
    counts ``frames`` (delivered), ``skipped``, ``reopens`` (by the watchdog), ``loops`` and
    ``open_failures``. URLs are named without their password in messages and logs.

    Example::

        camera = CameraSource("rtsp://user:secret@10.0.0.7/stream1", fps=5)
        while not stop.is_set():
            try:
                frame = camera.read(timeout=0.2)
            except EndOfStream:
                break
            except CameraError as exc:
                log_once(exc)       # the camera is away: read again, the source paces retries
                continue
            if frame is not None:
                detect(frame.image)
        camera.close()
    """

    def __init__(
        self,
        source: str | int,
        *,
        fps: float | None = None,
        loop: bool = False,
        stall_s: float = 5.0,
        decode_threads: int = 1,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
        opener: Callable[..., Any] = cv2.VideoCapture,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if fps is not None and not fps > 0:
            raise ValueError(f"fps must be > 0 or None, not {fps}")
        if not stall_s > 0:
            raise ValueError(f"stall_s must be > 0, not {stall_s}")
        if decode_threads < 0:
            raise ValueError(f"decode_threads must be >= 0, not {decode_threads}")
        self.source = source
        self.fps = fps
        self.loop = loop
        self.stall_s = stall_s
        self.decode_threads = decode_threads
        self._opener = opener
        self._monotonic = monotonic
        self._backoff = Backoff(backoff_min_s, backoff_max_s)
        self._target, self.kind, self.name = _classify(source)
        self.stats: Counter[str] = Counter()
        self._cap: Any = None
        self._closed = False
        self._next_open_at = float("-inf")  # the first read opens at once
        self._last_frame_at = 0.0  # monotonic, for the watchdog
        self._next_due_ms: float | None = None  # when the next frame may be delivered
        self._pos_ms = -1.0  # source time of the last frame read from a file
        self._read_since_open = 0

    @property
    def live(self) -> bool:
        """Whether the source is a stream or a device (it has no end, and it can stall)."""
        return self.kind != "file"

    @property
    def is_open(self) -> bool:
        """Whether the source is open now (false before the first read and while it is away)."""
        return self._cap is not None

    def read(self, timeout: float) -> Frame | None:
        """The next frame, or ``None`` if none came within about ``timeout`` seconds.

        Raises :class:`CameraError` when an attempt to open the source fails (or after
        :meth:`close`) and :class:`EndOfStream` at the end of a file that does not loop.
        """
        if self._closed:
            raise CameraError(f"camera {self.name} is closed", errno.EBADF)
        deadline = self._monotonic() + timeout
        while True:
            if self._cap is None and not self._open_when_due(deadline):
                return None
            ok, image = self._cap.read()
            now = self._monotonic()
            if ok and image is not None:
                self._last_frame_at = now
                self._read_since_open += 1
                pos_ms = self._file_pos_ms() if not self.live else None
                if self._due(now * 1000 if pos_ms is None else pos_ms):
                    return self._deliver(image, pos_ms)
                self.stats["skipped"] += 1
                if now >= deadline:
                    return None
                continue
            if not self.live:
                self._end_of_file()
                continue
            if now - self._last_frame_at >= self.stall_s:
                self._release()
                self.stats["reopens"] += 1
                self._next_open_at = now
                continue
            time.sleep(max(0.0, min(deadline - now, FAILED_GRAB_PAUSE_S)))
            return None

    def close(self) -> None:
        """Release the capture; reading afterwards raises :class:`CameraError`."""
        self._release()
        self._closed = True

    def __enter__(self) -> CameraSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CameraSource({self.name!r})"

    def _open_when_due(self, deadline: float) -> bool:
        now = self._monotonic()
        if now < self._next_open_at:
            time.sleep(max(0.0, min(self._next_open_at, deadline) - now))
            if self._monotonic() < self._next_open_at:
                return False
        try:
            self._cap = self._open()
        except CameraError:
            self.stats["open_failures"] += 1
            self._next_open_at = self._monotonic() + self._backoff.next()
            raise
        self._backoff.reset()
        self._last_frame_at = self._monotonic()  # the watchdog counts from the open
        self._read_since_open = 0
        self._pos_ms = -1.0
        return True

    def _open(self) -> Any:
        # a file's target is its path, a str (_classify); only a device's is an int
        if self.kind == "file" and not Path(str(self._target)).exists():
            raise CameraError(
                f"video file {self.name} not found: check the camera's source in the config", errno.ENOENT
            )
        params: list[int] = []
        if self.kind != "device":
            # FFmpeg honours these; V4L2 may refuse parameters it does not know, so devices get none
            timeout_ms = int(self.stall_s * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
            if self.decode_threads:
                params += [cv2.CAP_PROP_N_THREADS, self.decode_threads]
        try:
            cap = self._opener(self._target, cv2.CAP_ANY, params)
            opened = bool(cap.isOpened())
        except cv2.error:
            cap, opened = None, False
        if opened:
            return cap
        if cap is not None:
            cap.release()
        raise CameraError(_open_failure(self.kind, self.name), errno.EIO)

    def _release(self) -> None:
        if self._cap is not None:
            cap, self._cap = self._cap, None
            cap.release()

    def _end_of_file(self) -> None:
        if not self.loop:
            raise EndOfStream(f"end of video file {self.name}")
        if self._read_since_open == 0:
            raise EndOfStream(f"video file {self.name} has no frame to loop over")
        # opened again rather than seeking to frame 0: works for every container and codec
        self._release()
        self._next_open_at = self._monotonic()
        self._next_due_ms = None  # source time starts again at 0
        self.stats["loops"] += 1

    def _file_pos_ms(self) -> float:
        # CAP_PROP_POS_MSEC is the time of the frame just decoded; some containers report 0
        # throughout, so keep the time moving forward at the nominal rate then
        pos = float(self._cap.get(cv2.CAP_PROP_POS_MSEC))
        if pos <= self._pos_ms:
            rate = float(self._cap.get(cv2.CAP_PROP_FPS))
            pos = self._pos_ms + (1000 / rate if rate > 0 else 40.0)
        self._pos_ms = pos
        return pos

    def _due(self, t_ms: float) -> bool:
        if self.fps is None:
            return True
        period = 1000 / self.fps
        if self._next_due_ms is None:
            self._next_due_ms = t_ms
        if t_ms + DUE_TOLERANCE_MS < self._next_due_ms:
            return False
        # keep to the grid (a late frame does not push the next one back), but after a gap of
        # more than a period start a new grid rather than deliver a burst
        self._next_due_ms += period
        if self._next_due_ms <= t_ms:
            self._next_due_ms = t_ms + period
        return True

    def _deliver(self, image: np.ndarray, pos_ms: float | None) -> Frame:
        frame = Frame(self.stats["frames"], image, pos_ms)
        self.stats["frames"] += 1
        return frame


def _classify(source: str | int) -> tuple[str | int, str, str]:
    """``(what to hand OpenCV, kind, name for messages)``; kind is file, stream or device."""
    if isinstance(source, int) or (source.isascii() and source.isdigit()):
        index = int(source)
        return index, "device", f"{index} (/dev/video{index})"
    if "://" in source:
        return source, "stream", _without_password(source)
    return source, "file", source


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def _open_failure(kind: str, name: str) -> str:
    if kind == "device":
        return (
            f"cannot open camera device {name}: check that it is plugged in "
            "and that the node's user is in the 'video' group"
        )
    if kind == "stream":
        return (
            f"cannot open video stream {name}: check the URL and the credentials, "
            "and that the camera is on and reachable"
        )
    return f"cannot open video file {name}: OpenCV cannot decode it; is it a video?"
