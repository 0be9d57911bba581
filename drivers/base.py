"""The driver component: a thread that turns a transport's bytes into records.

Drivers are the first stage of the node (drivers -> store -> uplink): they hand their records
to a ``sink`` and never call into a later stage.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from common.backoff import Backoff
from common.clock import Clock
from common.component import Component
from common.errors import IocEdgeError
from drivers.transport import EndOfStream, Transport, TransportError

__all__ = [
    "Driver",
    "DriverStartError",
    "Outage",
    "Parser",
    "RecordSource",
    "Sink",
    "SourceComponent",
    "decode",
]

log = logging.getLogger(__name__)


class DriverStartError(IocEdgeError, RuntimeError):
    """A driver could not take its device at start (a GPIO pin in use, no GPIO library): the node
    reports it and runs on without that driver."""


Sink = Callable[[str, list[Any]], None]
"""``sink(stream, records)``: receives each batch of records (NamedTuples of ``stream``)."""

READ_TIMEOUT_S = 0.2
"""Longest wait in one read: also how quickly ``stop()`` is noticed."""

RETRY_MIN_S, RETRY_MAX_S = 0.5, 30.0


@dataclass(frozen=True)
class Outage:
    """Why a source delivers nothing, and since when (``ts_ms`` of the node's clock).

    ``error`` says what failed and what to check, e.g. ``video file street.mp4 not found:
    check the camera's source in the config``.
    """

    error: str
    since_ms: int


class RecordSource(Protocol):
    """The contract of every source of records on a node (drivers, GPIO sensors, cameras): what the
    runtime starts and stops, and what the status report, the health verdict and the metrics read.

    Counters (reason -> count; read from other threads, so readers copy them first):
    ``rejects`` (input refused), ``ignored`` (valid input of no use), ``health`` (the device's
    outages: ``transport_lost``, ``transport_recovered``), ``passed`` (input passed on as it came:
    the GPS's AIS sentences). ``records`` counts the records produced; ``activity`` is a figure
    that moves whenever input reaches the source (the health's sign of life); ``outage`` says why
    the source delivers nothing now, if it knows (None otherwise); ``failing`` is its transport's error
    while the device is away (set before ``transport_lost`` counts the outage; None once it reads again).
    """

    name: str
    rejects: Counter[str]
    ignored: Counter[str]
    health: Counter[str]
    passed: Counter[str]
    records: int
    outage: Outage | None
    failing: str | None

    @property
    def running(self) -> bool: ...

    @property
    def activity(self) -> int: ...

    def start(self) -> None: ...

    def stop(self, timeout: float | None = ...) -> None: ...


class SourceComponent(Component):
    """A :class:`~common.component.Component` with the counters of a :class:`RecordSource`, all zero.

    The base of :class:`Driver`, the GPIO sensors and the camera: each counts into these and
    overrides ``activity`` when something else shows its input (a camera's frames).
    """

    def __init__(self, name: str, thread_name: str) -> None:
        super().__init__(thread_name)
        self.name = name
        self.rejects: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.health: Counter[str] = Counter()
        self.passed: Counter[str] = Counter()
        self.records = 0
        self.outage: Outage | None = None
        # the transport's error while its device is away (None when it reads): a rollback or a self-test
        # names the port and what failed, not only that something did
        self.failing: str | None = None

    @property
    def activity(self) -> int:
        """Everything made of the input: records, rejects and ignored."""
        # Copies (a C-level dict copy under the GIL): the source's thread may add a reason meanwhile.
        return self.records + sum(Counter(self.rejects).values()) + sum(Counter(self.ignored).values())


class Driver(SourceComponent):
    """A long-running component reading one device through a transport.

    ``Driver(name, transport, sink, clock)``: :meth:`start` runs a thread that reads the
    transport and passes what it read to :meth:`feed`; the records it returns go to
    ``sink(self.stream, records)``. The thread ends on :meth:`stop` or when the transport
    reports :class:`~drivers.transport.EndOfStream` (then :meth:`flush` gets the last word).
    A :class:`~drivers.transport.TransportError` is logged once and the read retried with a
    growing delay. The driver does not close the transport: whoever opened it does.

    Subclasses must set ``stream`` (the record stream's name) and override ``feed(data)``
    (bytes in, list of records out; it must not raise on bad input: count it in ``rejects``
    by reason, or in ``ignored`` for input that is valid but of no use). They may override
    ``flush()`` (records still pending at the end of the stream; default none), ``tick()``
    (called in the driver's thread after every read, data or not, before ``feed`` gets the
    data: timers such as a sensor's duty cycle; it returns records too, default none) and
    ``at_end()`` (called once in the driver's thread when it ends, after ``flush``: e.g. put
    the sensor to sleep; default nothing). Neither may raise on what the device does.

    Counters, read by the node's status report: ``rejects`` and ``ignored`` (reason ->
    count), ``records`` (records produced).

    Example (the sink gets the stream's name and the records)::

        >>> from drivers.transport import MemoryTransport
        >>> class Echo(Driver):
        ...     stream = "echo"
        ...
        ...     def feed(self, data):
        ...         return [data]
        >>> received = []
        >>> echo = Echo("echo", MemoryTransport(b"hi"), lambda *batch: received.append(batch), Clock())
        >>> echo.start()
        >>> echo.join()
        >>> received, echo.records
        ([('echo', [b'hi'])], 1)
    """

    stream: ClassVar[str] = ""

    def __init__(self, name: str, transport: Transport, sink: Sink, clock: Clock) -> None:
        super().__init__(name, f"driver-{name}")
        self.transport = transport
        self.sink = sink
        self.clock = clock

    def feed(self, data: bytes) -> list[Any]:
        """Bytes from the transport in, records out (subclasses override)."""
        raise NotImplementedError

    def flush(self) -> list[Any]:
        """Records still pending at the end of the stream."""
        return []

    def tick(self) -> list[Any]:
        """Called after every read (at least every ``READ_TIMEOUT_S`` while the transport works)."""
        return []

    def at_end(self) -> None:
        """Called once when the thread ends (stop or end of stream), after :meth:`flush`."""

    def stop(self, timeout: float | None = 5.0) -> None:
        """Ask the thread to end and wait for it (at most a read timeout plus the sink's time)."""
        super().stop(timeout)

    def _emit(self, records: list[Any]) -> None:
        if records:
            self.records += len(records)
            self.sink(self.stream, records)

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            # a bug, not bad input (feed must not raise on that): say so loudly and stop
            log.exception("event=driver_crashed driver=%s", self.name)

    def _loop(self) -> None:
        backoff = Backoff(RETRY_MIN_S, RETRY_MAX_S)
        while not self._stop.is_set():
            try:
                data = self.transport.read(timeout=READ_TIMEOUT_S)
            except EndOfStream as exc:
                log.info(
                    "event=end_of_stream driver=%s transport=%s reason=%r",
                    self.name,
                    self.transport,
                    str(exc),
                )
                break
            except TransportError as exc:
                delay = backoff.next()
                lost = self.failing is None
                if self.failing != str(exc):  # once per distinct failure, not once per retry
                    log.warning(
                        "event=transport_error driver=%s error=%r retry_s=%.1f", self.name, str(exc), delay
                    )
                    self.failing = str(exc)
                if lost:  # once per outage, however long it lasts; counted after failing is set
                    self.health["transport_lost"] += 1
                self._stop.wait(delay)
                continue
            if self.failing is not None:
                log.info("event=transport_recovered driver=%s", self.name)
                self.health["transport_recovered"] += 1
                self.failing = None
                backoff.reset()
            self._emit(self.tick())
            if data:
                self._emit(self.feed(data))
        self._emit(self.flush())
        self.at_end()


class Parser(Protocol):
    """A pure parser: bytes in, records out, a last word, and what it rejected and ignored, by reason."""

    rejects: Counter[str]
    ignored: Counter[str]

    def feed(self, data: bytes) -> list[Any]: ...

    def flush(self) -> list[Any]: ...


def decode(parser: Parser, transport: Transport, timeout: float = 1.0) -> Iterator[Any]:
    """Every record ``parser`` makes of ``transport`` until its :class:`EndOfStream` (replays, tools)."""
    while True:
        try:
            data = transport.read(timeout)
        except EndOfStream:
            break
        yield from parser.feed(data)
    yield from parser.flush()
