"""Byte transports: where a driver's bytes come from.

A driver reads from a :class:`Transport` it did not open and cannot tell which kind it is
(the idea of gpiozero's pin factories): a serial port, a pseudo-terminal, a replayed capture
or bytes in memory. Tests and demos therefore run the same driver code as the field.

Example::

    >>> with MemoryTransport(b"$GPGGA,...\\r\\n", chunk=4) as transport:
    ...     transport.read(timeout=0.1)
    b'$GPG'
"""

from __future__ import annotations

import errno
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from common.errors import IocEdgeError

__all__ = [
    "EndOfStream",
    "MemoryTransport",
    "PtyTransport",
    "ReopeningTransport",
    "ReplayTransport",
    "SerialTransport",
    "Transport",
    "TransportError",
]

READ_SIZE = 4096
WRITE_TIMEOUT_S = 1.0
"""Longest wait for a device to take a command (a few bytes: only a stuck line takes longer)."""
FAST_CHUNK = 65536
"""Chunk size of a replay at speed 0: large, because then the parser is what is measured."""


class TransportError(IocEdgeError, OSError):
    """The device or file cannot be opened or read; the message says which one and what to do.

    ``errno`` is the operating system's error number when there is one.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code


class EndOfStream(IocEdgeError, EOFError):
    """The source is finished for good (a replay at its end); reading again will not help."""


class Transport:
    """A source of bytes, and for some devices a way to send them commands.

    Subclasses must override :meth:`read` and may override :meth:`write` (the default
    refuses) and :meth:`close` (the default does nothing). A transport is a context manager
    that closes itself.

    ``read(timeout)`` returns the bytes that arrived, at most after ``timeout`` seconds;
    ``b""`` when nothing arrived in that time. It raises :class:`EndOfStream` when the source
    is finished for good and :class:`TransportError` when the device fails (it may recover:
    a driver retries).
    """

    name = "transport"
    """What the transport reads, for messages and logs (a device path, a file name)."""

    def read(self, timeout: float) -> bytes:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        """Send ``data`` to the device (a command to a sensor).

        Raises :class:`TransportError` when the device fails or does not take the bytes in
        time; the default raises it always: "this transport cannot send".
        """
        raise TransportError(f"{self.name}: this transport cannot send", errno.EOPNOTSUPP)

    def close(self) -> None:
        """Release the device or file; reading afterwards is an error."""

    def __enter__(self) -> Transport:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class MemoryTransport(Transport):
    """Bytes held in memory, handed out ``chunk`` bytes per read: for tests and demos.

    More bytes can be pushed while a driver reads (as a device would send them); once the
    data is used up, reads raise :class:`EndOfStream` if ``eof`` is set, else wait for more.
    What a driver writes (its commands) is kept in ``written``.

    Example::

        >>> transport = MemoryTransport(b"abc", chunk=2)
        >>> transport.read(0), transport.read(0)
        (b'ab', b'c')
        >>> transport.write(b"sleep")
        >>> transport.written
        bytearray(b'sleep')
    """

    def __init__(self, data: bytes = b"", chunk: int = 256, eof: bool = True) -> None:
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, not {chunk}")
        self.name = "memory"
        self.chunk = chunk
        self._data = bytearray(data)
        self._eof = eof
        self._ready = threading.Condition()
        self.written = bytearray()
        """Every byte written, in order."""

    def push(self, data: bytes) -> None:
        """Append bytes for the reader, as a device sending more."""
        with self._ready:
            self._data += data
            self._ready.notify_all()

    def finish(self) -> None:
        """Declare the data complete: reads past its end raise :class:`EndOfStream`."""
        with self._ready:
            self._eof = True
            self._ready.notify_all()

    def read(self, timeout: float) -> bytes:
        with self._ready:
            if not self._data and not self._eof:
                self._ready.wait(timeout)
            if not self._data:
                if self._eof:
                    raise EndOfStream("end of the in-memory data")
                return b""
            out = bytes(self._data[: self.chunk])
            del self._data[: self.chunk]
            return out

    def write(self, data: bytes) -> None:
        with self._ready:
            self.written += data


class ReplayTransport(Transport):
    """A capture file replayed at the pace of a serial line: ``baudrate / 10 * speed`` bytes/s.

    ``speed=0`` replays as fast as possible, in large chunks. Leading lines starting with
    ``#`` (the comment header of gpsd-style logs) are skipped unless ``comments`` is false
    (a binary dump); later ``#`` bytes are data. At the end the replay starts over if
    ``loop``, else reads raise :class:`EndOfStream`. Writes (commands to a replayed sensor)
    are kept in ``written`` and change nothing.

    Example::

        replay = ReplayTransport("ublox-8.log", speed=10)   # ten times real time at 4800 baud
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        speed: float = 1.0,
        baudrate: int = 4800,
        loop: bool = False,
        comments: bool = True,
    ) -> None:
        if speed < 0 or baudrate <= 0:
            raise ValueError(f"speed must be >= 0 and baudrate > 0, not {speed} and {baudrate}")
        self.path = Path(path)
        self.name = str(self.path)
        self.rate = baudrate / 10 * speed  # a serial character is 10 bits on the wire (8N1)
        self.loop = loop
        try:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise TransportError(f"replay file {self.path} not found: check the path", errno.ENOENT) from None
        except OSError as exc:
            raise TransportError(f"cannot open replay file {self.path}: {exc.strerror}", exc.errno) from None
        self._start = self._skip_comments() if comments else 0
        self._t0 = time.monotonic()
        self._sent = 0
        self.written = bytearray()
        """Every byte written, in order."""

    def _skip_comments(self) -> int:
        while True:
            pos = self._file.tell()
            line = self._file.readline()
            if not line.startswith(b"#"):
                self._file.seek(pos)
                return pos

    def _next(self, size: int) -> bytes:
        data = self._file.read(size)
        if not data and self.loop:
            self._file.seek(self._start)
            data = self._file.read(size)
        if not data:
            raise EndOfStream(f"end of replay file {self.path}")
        return data

    def read(self, timeout: float) -> bytes:
        if self._file.closed:
            raise TransportError(f"replay file {self.path} is closed", errno.EBADF)
        if not self.rate:
            return self._next(FAST_CHUNK)
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            # pace against the start, not the last read, so slow readers catch up like a UART buffer
            due = int((now - self._t0) * self.rate) - self._sent
            if due > 0:
                data = self._next(min(due, FAST_CHUNK))
                self._sent += len(data)
                return data
            if now >= deadline:
                return b""
            next_byte = self._t0 + (self._sent + 1) / self.rate
            # wake at least 20 ms apart: byte-by-byte reads would cost more than they add
            time.sleep(max(0.0, min(deadline, max(next_byte, now + 0.02)) - now))

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self._file.close()


class PtyTransport(Transport):
    """The slave side of a pseudo-terminal (a simulator or ``socat`` writes the master side).

    Example::

        pty = PtyTransport("/dev/pts/3")
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = str(path)
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        except FileNotFoundError:
            raise TransportError(
                f"pseudo-terminal {path} not found: is the program that creates it running?", errno.ENOENT
            ) from None
        except OSError as exc:
            raise TransportError(f"cannot open pseudo-terminal {path}: {exc.strerror}", exc.errno) from None
        try:
            tty.setraw(self._fd)  # no line editing, echo or CR/LF translation: the bytes as sent
        except OSError as exc:
            os.close(self._fd)
            raise TransportError(f"{path} is not a terminal: {exc.strerror}", exc.errno) from None

    def read(self, timeout: float) -> bytes:
        if self._fd < 0:
            raise TransportError(f"pseudo-terminal {self.name} is closed", errno.EBADF)
        try:
            ready, _, _ = select.select([self._fd], [], [], timeout)
            if not ready:
                return b""
            data = os.read(self._fd, READ_SIZE)
        except BlockingIOError:
            return b""
        except OSError as exc:
            # EIO: the master side was closed; the device may come back, so not EndOfStream
            raise TransportError(f"pseudo-terminal {self.name} hung up: {exc.strerror}", exc.errno) from None
        if not data:
            raise TransportError(f"pseudo-terminal {self.name} hung up", errno.EIO)
        return data

    def write(self, data: bytes) -> None:
        if self._fd < 0:
            raise TransportError(f"pseudo-terminal {self.name} is closed", errno.EBADF)
        view = memoryview(data)
        deadline = time.monotonic() + WRITE_TIMEOUT_S
        try:
            while view:
                try:
                    view = view[os.write(self._fd, view) :]
                except BlockingIOError:  # the other side does not read: wait, a little
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise TransportError(
                            f"pseudo-terminal {self.name} takes no more bytes", errno.ETIMEDOUT
                        ) from None
                    select.select([], [self._fd], [], left)
        except OSError as exc:
            raise TransportError(f"pseudo-terminal {self.name} hung up: {exc.strerror}", exc.errno) from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class SerialTransport(Transport):
    """A serial port (USB adapter or UART) read with pyserial.

    Example::

        gps = SerialTransport("/dev/ttyUSB0", baudrate=9600)
    """

    def __init__(
        self,
        port: str,
        baudrate: int = 4800,
        bytesize: int = 8,
        parity: str = "N",
        stopbits: int = 1,
    ) -> None:
        import serial  # here, so the other transports work where pyserial is missing

        self.name = port
        self._error = serial.SerialException
        try:
            self._serial = serial.Serial(
                port,
                baudrate=baudrate,
                bytesize=bytesize,
                parity=parity,
                stopbits=stopbits,
                timeout=0,
                write_timeout=WRITE_TIMEOUT_S,
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise _serial_error(port, exc) from None

    def read(self, timeout: float) -> bytes:
        try:
            waiting = self._serial.in_waiting
            if waiting:
                return self._serial.read(waiting)
            self._serial.timeout = timeout
            data = self._serial.read(1)  # blocks until a byte arrives or the timeout
            if data and self._serial.in_waiting:
                data += self._serial.read(self._serial.in_waiting)
            return data
        except (self._error, OSError, TypeError) as exc:
            # pyserial raises TypeError from read() once the port is closed under it
            raise TransportError(
                f"serial port {self.name} failed: {exc}: check the cable", errno.EIO
            ) from None

    def write(self, data: bytes) -> None:
        try:
            self._serial.write(data)
        except (self._error, OSError, TypeError) as exc:  # SerialTimeoutException is a SerialException
            raise TransportError(
                f"serial port {self.name} cannot send: {exc}: check the cable", errno.EIO
            ) from None

    def close(self) -> None:
        self._serial.close()


class ReopeningTransport(Transport):
    """A transport opened on the first read, and opened again after it failed.

    A GPS whose USB-serial adapter is absent when the node boots, or is
    unplugged later, comes back without a restart of the node, and the rest
    of the node (the store, the uplink draining the backlog) runs meanwhile.
    Errors still reach the driver, which logs each once and retries with
    backoff. :class:`EndOfStream` passes through untouched.

    Example::

        >>> t = ReopeningTransport(lambda: MemoryTransport(b"$GP"), name="gps")
        >>> t.read(timeout=0.1)
        b'$GP'
    """

    def __init__(self, opener: Callable[[], Transport], name: str) -> None:
        self._opener = opener
        self._inner: Transport | None = None
        self.name = name

    def read(self, timeout: float) -> bytes:
        if self._inner is None:
            self._inner = self._opener()
        try:
            return self._inner.read(timeout)
        except TransportError:
            self.close()
            raise

    def write(self, data: bytes) -> None:
        if self._inner is None:
            self._inner = self._opener()
        try:
            self._inner.write(data)
        except TransportError:
            self.close()
            raise

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None


def _serial_error(port: str, exc: Exception) -> TransportError:
    code = getattr(exc, "errno", None)
    if code == errno.ENOENT or "No such file" in str(exc):
        text = f"serial port {port} not found: check the cable and `ls /dev/ttyUSB* /dev/ttyACM*`"
    elif code == errno.EACCES or "Permission denied" in str(exc):
        text = f"no permission to open serial port {port}: add the user to the `dialout` group"
    elif code == errno.EBUSY:
        text = f"serial port {port} is busy: another program (gpsd? ModemManager?) holds it"
    else:
        text = f"cannot open serial port {port}: {exc}"
    return TransportError(text, code or errno.EIO)
