"""Captures: a device's raw bytes with the time each chunk arrived, recorded and replayed.

A replay of a plain byte dump can only guess the timing (``baudrate / 10`` bytes a second);
a capture keeps it, so a particulate sensor that sends a frame a second, sleeps for four
minutes and wakes up again replays exactly so, at any ``speed``.

The file format (version 1), documented here because it is the contract:

- one header line of ASCII text, ending in ``\\n``::

      # ioc-edge capture v1 device=/dev/ttyUSB0 baudrate=9600 started=2026-03-01T08:00:00.000Z

  ``device`` is percent-encoded (no spaces), ``baudrate`` is ``0`` when unknown (a
  pseudo-terminal), ``started`` is the wall clock (UTC) when recording began. Readers
  ignore keys they do not know, so later versions can add some;
- then one record per chunk read from the device: an 8-byte little-endian unsigned
  offset in microseconds since the recording started (monotonic clock, so a wall clock
  stepped by NTP does not disturb it), a 4-byte little-endian unsigned length, and that
  many bytes.

A record cut short at the end of the file (power lost while recording) is ignored, not an
error: everything before it replays, and ``CaptureTransport.truncated`` says so.

Example::

    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "pm.cap")
    >>> with CaptureWriter(path, device="/dev/ttyUSB1", baudrate=9600) as capture:
    ...     capture.write(b"\\xaa\\xc0")
    >>> with CaptureTransport(path, speed=0) as replay:
    ...     replay.header.device, replay.read(timeout=1)
    ('/dev/ttyUSB1', b'\\xaa\\xc0')
"""

from __future__ import annotations

import datetime
import errno
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal
from urllib.parse import quote, unquote

from drivers.transport import FAST_CHUNK, EndOfStream, ReplayTransport, Transport, TransportError

__all__ = [
    "MAGIC",
    "CaptureHeader",
    "CaptureStats",
    "CaptureTransport",
    "CaptureWriter",
    "is_capture",
    "open_recording",
    "record",
]

MAGIC = b"# ioc-edge capture v1"
"""How every capture file starts."""

RECORD = struct.Struct("<QI")
"""A record's head: offset in microseconds, length in bytes."""

MAX_RECORD = 1 << 24
"""Longest chunk a reader accepts (16 MiB): a longer length can only be a damaged file."""

MAX_HEADER = 4096


@dataclass(frozen=True)
class CaptureHeader:
    """What the header line of a capture says."""

    device: str
    baudrate: int
    started: str
    """ISO 8601 UTC time the recording began, as written."""


def _header_line(device: str, baudrate: int, started: float) -> bytes:
    stamp = datetime.datetime.fromtimestamp(started, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
    device_text = quote(device, safe="/:._-@+") or "-"
    return MAGIC + f" device={device_text} baudrate={baudrate} started={stamp}Z\n".encode("ascii")


def _parse_header(line: bytes, path: Path) -> CaptureHeader:
    if not line.startswith(MAGIC) or not line.endswith(b"\n"):
        raise TransportError(
            f"{path} is not an ioc-edge capture (no '# ioc-edge capture v1' header line)", errno.EINVAL
        )
    fields: dict[str, str] = {}
    for item in line[len(MAGIC) :].decode("ascii", "replace").split():
        key, _, value = item.partition("=")
        fields[key] = value
    device = fields.get("device", "-")
    baudrate = fields.get("baudrate", "0")
    return CaptureHeader(
        device="" if device == "-" else unquote(device),
        baudrate=int(baudrate) if baudrate.isdigit() else 0,
        started=fields.get("started", ""),
    )


def is_capture(path: str | os.PathLike[str]) -> bool:
    """Whether the file at ``path`` starts like a capture (False when it cannot be read)."""
    try:
        with open(path, "rb") as file:
            return file.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _open(path: Path, mode: Literal["rb", "xb"], what: str) -> BinaryIO:
    try:
        return open(path, mode)  # noqa: SIM115 - the caller closes it
    except FileNotFoundError:
        raise TransportError(f"{what} {path} not found: check the path", errno.ENOENT) from None
    except FileExistsError:
        raise TransportError(f"{what} {path} already exists: choose another name", errno.EEXIST) from None
    except OSError as exc:
        raise TransportError(f"cannot open {what} {path}: {exc.strerror}", exc.errno) from None


class CaptureWriter:
    """Records chunks of bytes, each with its time, into a new capture file.

    Each :meth:`write` is one record, flushed to the operating system at once, so a crash
    loses nothing and a power cut at most the last record. An existing file is never
    overwritten (:class:`~drivers.transport.TransportError`). The clock is injectable.

    Example::

        with CaptureWriter("pm-1.cap", device="/dev/ttyUSB1", baudrate=9600) as capture:
            capture.write(serial_port.read(100))
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        device: str = "",
        baudrate: int = 0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.header = CaptureHeader(device, baudrate, "")
        self.bytes = 0
        self.chunks = 0
        self._monotonic = monotonic
        self._file = _open(self.path, "xb", "capture file")
        line = _header_line(device, baudrate, wall())
        self._file.write(line)
        self._file.flush()
        self.header = _parse_header(line, self.path)
        self._t0 = monotonic()

    def write(self, data: bytes) -> None:
        """Append one chunk, stamped with the time since the recording started."""
        if not data:
            return
        offset_us = max(0, round((self._monotonic() - self._t0) * 1_000_000))
        try:
            self._file.write(RECORD.pack(offset_us, len(data)) + data)
            self._file.flush()
        except (OSError, ValueError) as exc:  # ValueError: written after close
            raise TransportError(f"cannot write capture file {self.path}: {exc}", errno.EIO) from None
        self.bytes += len(data)
        self.chunks += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CaptureTransport(Transport):
    """A capture replayed with its recorded timing, ``speed`` times as fast (0: at once).

    Each recorded chunk is handed out when its time has come (chunks already due are
    joined into one read). At the end the capture starts over if ``loop`` (one average chunk
    interval after the last chunk, so the rhythm goes on), else reads raise
    :class:`~drivers.transport.EndOfStream`. A record cut short at the end of the file is
    skipped and sets ``truncated``. Writes (commands to the replayed sensor) are kept in
    ``written`` and change nothing.

    Raises :class:`~drivers.transport.TransportError` when the file is missing or is not
    a capture.

    Example::

        replay = CaptureTransport("pm-1.cap", speed=10)   # ten times as fast as recorded
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        speed: float = 1.0,
        loop: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0, not {speed}")
        self.path = Path(path)
        self.name = str(self.path)
        self.speed = speed
        self.loop = loop
        self.truncated = False
        """Whether the last record was cut short (and skipped)."""
        self.written = bytearray()
        """Every byte written, in order."""
        self._monotonic = monotonic
        self._file = _open(self.path, "rb", "capture file")
        self.header = _parse_header(self._file.readline(MAX_HEADER), self.path)
        self._start = self._file.tell()
        self._pending: tuple[float, bytes] | None = None  # the next record: (offset s, bytes)
        self._t0 = monotonic()  # when offset 0 is (re)played
        self._last = 0.0  # offset of the last record handed out, for looping
        self._count = 0  # records handed out in this round

    def _next_record(self) -> tuple[float, bytes] | None:
        head = self._file.read(RECORD.size)
        if len(head) < RECORD.size:
            self.truncated = self.truncated or bool(head)
            return None
        offset_us, length = RECORD.unpack(head)
        data = self._file.read(length) if length <= MAX_RECORD else b""
        if len(data) < length or length > MAX_RECORD:
            self.truncated = True
            return None
        return offset_us / 1_000_000, data

    def _peek(self) -> tuple[float, bytes]:
        """The next record, starting over at the end if looping; EndOfStream if none."""
        if self._pending is None:
            self._pending = self._next_record()
            if self._pending is None and self.loop and self._count:
                self._file.seek(self._start)
                # the next round begins one average interval after this round's last record
                interval = self._last / (self._count - 1) if self._count > 1 else 0.0
                self._t0 += (self._last + interval) / self.speed if self.speed else 0.0
                self._count = 0
                self._pending = self._next_record()
            if self._pending is None:
                raise EndOfStream(f"end of capture file {self.path}")
        return self._pending

    def read(self, timeout: float) -> bytes:
        if self._file.closed:
            raise TransportError(f"capture file {self.path} is closed", errno.EBADF)
        if not self.speed:
            return self._take_due(None)
        deadline = self._monotonic() + timeout
        while True:
            offset, _ = self._peek()
            due = self._t0 + offset / self.speed
            now = self._monotonic()
            if now >= due:
                return self._take_due(now)
            if now >= deadline:
                return b""
            time.sleep(min(due, deadline) - now)

    def _take_due(self, now: float | None) -> bytes:
        """The next record and those after it that are due at ``now`` (None: all, up to a size)."""
        out = bytearray()
        while len(out) < FAST_CHUNK:
            try:
                offset, data = self._peek()
            except EndOfStream:
                if out:
                    break
                raise
            if out and now is not None and self._t0 + offset / self.speed > now:
                break
            out += data
            self._pending = None
            self._last = offset
            self._count += 1
        return bytes(out)

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self._file.close()


def open_recording(path: str | os.PathLike[str], speed: float = 0.0, baudrate: int = 9600) -> Transport:
    """A capture (by its header) as a :class:`CaptureTransport`, else the file as a raw byte dump.

    A raw dump is replayed at ``baudrate`` (times ``speed``; 0 = at once) with every byte as
    data, ``#`` lines included. Raises :class:`~drivers.transport.TransportError` when the
    file cannot be opened.
    """
    if is_capture(path):
        return CaptureTransport(path, speed=speed)
    return ReplayTransport(path, speed=speed, baudrate=baudrate, comments=False)


@dataclass
class CaptureStats:
    """What :func:`record` has written so far."""

    bytes: int = 0
    chunks: int = 0
    seconds: float = 0.0


def record(
    transport: Transport,
    writer: CaptureWriter,
    seconds: float | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[CaptureStats], None] | None = None,
    every_s: float = 5.0,
    monotonic: Callable[[], float] = time.monotonic,
) -> CaptureStats:
    """Copy what ``transport`` reads into ``writer`` until ``seconds`` pass, ``stop`` is set or
    the source ends; ``progress`` gets the figures every ``every_s`` seconds.

    A :class:`~drivers.transport.TransportError` (device unplugged) ends the recording and is
    raised; what was recorded until then stays in the file. Ctrl-C (KeyboardInterrupt) is
    the caller's to catch.

    Example::

        with SerialTransport("/dev/ttyUSB1", 9600) as port:
            with CaptureWriter("pm.cap", "/dev/ttyUSB1", 9600) as out:
                record(port, out, seconds=600)
    """
    stats = CaptureStats()
    start = monotonic()
    report_at = start + every_s
    while not (stop is not None and stop.is_set()):
        now = monotonic()
        stats.seconds = now - start
        if seconds is not None and stats.seconds >= seconds:
            break
        if progress is not None and now >= report_at:
            progress(stats)
            report_at = now + every_s
        wait = 0.2 if seconds is None else max(0.0, min(0.2, seconds - stats.seconds))
        try:
            data = transport.read(wait)
        except EndOfStream:
            break
        if data:
            writer.write(data)
            stats.bytes, stats.chunks = writer.bytes, writer.chunks
    stats.seconds = monotonic() - start
    return stats
