"""The contract of a device type: what the node needs to know about one kind of device.

A :class:`DeviceType` gathers, in the module of its device type (``edge/devices/<type>.py``):
its config model (the ``[drivers.NAME]`` table, discriminated on ``type``), the quantities its
readings carry, how the node builds its source of records from that config, with its stall
rule (:class:`~edge.health.Watched`), its self-test check, and optionally the decoder of
``ioc-edge decode``. The registry (:data:`edge.devices.DEVICE_TYPES`) lists them.

The node opens transports, never the driver: :meth:`BuildContext.transport` hands a driver a
transport the runtime owns (reopened when the device comes back, closed at stop).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar, get_args

from pydantic import BaseModel

from common.clock import Clock
from drivers.base import Parser, RecordSource, Sink
from drivers.transport import EndOfStream, Transport
from edge.health import Watched
from sync.records import Position

__all__ = [
    "FAIL",
    "PASS",
    "SKIP",
    "BuildContext",
    "CheckContext",
    "CheckResult",
    "Decoder",
    "DeviceType",
    "DriverSection",
    "first_records",
]

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"

C = TypeVar("C", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one self-test check: ``status`` is PASS, FAIL or SKIP; ``hint`` says what to do on FAIL.

    Example::

        >>> CheckResult("clock", "PASS", "2026-11-25T14:20:00Z").line()
        'PASS  clock: 2026-11-25T14:20:00Z'
    """

    name: str
    status: str
    detail: str
    hint: str = ""

    def line(self) -> str:
        """One line for a terminal: status, name, what was seen and, on failure, what to do."""
        text = f"{self.status}  {self.name}: {self.detail}"
        return f"{text} -> {self.hint}" if self.hint else text


@dataclass
class BuildContext:
    """What the runtime lends a device type to build its source: the records' ``sink``, the node's
    ``clock``, gpiozero's ``pin_factory`` (None: the board's) and ``transport``, which opens the
    transport of a config section for the node (see :meth:`edge.runtime.Node.transport_for`)."""

    sink: Sink
    clock: Clock
    pin_factory: Any
    transport: Callable[[str, Any], Transport]


@dataclass
class CheckContext:
    """What the self-test lends a device type's check: the node's ``clock``, gpiozero's
    ``pin_factory``, how long a check may wait (``seconds``), and :meth:`once`, which runs a
    probe once per driver for every check that needs it (the GPS's fix serves the clock check
    and the GPS check)."""

    clock: Clock
    seconds: float
    pin_factory: Any = None
    _done: dict[str, Any] = field(default_factory=dict)

    def once(self, key: str, probe: Callable[[], T]) -> T:
        """``probe()`` the first time ``key`` is asked for, its result every time."""
        if key not in self._done:
            self._done[key] = probe()
        return self._done[key]


@dataclass(frozen=True)
class Decoder:
    """How ``ioc-edge decode TYPE FILE`` reads a capture of this device type.

    ``parser(sensor, clock)`` makes the parser; ``baudrate`` is the line speed a raw log is
    replayed at (an NMEA log: ``--baudrate``), None for a capture of ``ioc-edge record`` or a raw
    dump, replayed with its own timing (``--sensor`` names the readings); ``help`` is the
    command's help, with an ``Example:`` line.
    """

    parser: Callable[[str, Clock], Parser]
    help: str
    baudrate: int | None = None


class DriverSection(Protocol):
    """What every ``[drivers.NAME]`` model has: its ``type``, the key of its entry in the registry."""

    @property
    def type(self) -> str: ...


@dataclass(frozen=True)
class DeviceType(Generic[C]):
    """One device type of the registry (see the module).

    ``build(name, cfg, ctx)``: the source of records with its stall rule. ``check(name, cfg,
    ctx)``: its self-test results; ``check_stage`` orders them as a technician fixes things
    (:data:`SERIAL`, :data:`GPS`, :data:`CAMERA`, :data:`GPIO`). ``gps_time(name, cfg, ctx)``:
    a fix with GPS time, for the clock check, from a device that gives one; ``last_fix(source)``: the
    same of its running source (the live self-test, ``edge.selftest.LiveSelftest``). ``quantities``: what
    its readings carry (alarms may watch them); ``every_interval``: those summarised every
    interval even without a reading (a rain gauge that saw no tip reports 0 mm).
    """

    config: type[C]
    build: Callable[[str, C, BuildContext], Watched]
    check: Callable[[str, C, CheckContext], list[CheckResult]]
    check_stage: int
    quantities: tuple[str, ...] = ()
    every_interval: tuple[str, ...] = ()
    decoder: Decoder | None = None
    gps_time: Callable[[str, C, CheckContext], Position | None] | None = None
    last_fix: Callable[[RecordSource], Position | None] | None = None

    @property
    def name(self) -> str:
        """The config's ``type`` of this device type (the literal of its model's ``type`` field)."""
        (tag,) = get_args(self.config.model_fields["type"].annotation)
        return str(tag)


SERIAL, GPS, CAMERA, GPIO = 1, 2, 3, 4
"""Self-test stages: serial sensors, then GPS receivers, cameras and their models, GPIO inputs."""


def first_records(transport: Transport, parser: Parser, seconds: float) -> tuple[int, list[Any]]:
    """Feed ``parser`` from ``transport`` until it makes records or ``seconds`` pass: (bytes, records)."""
    deadline = time.monotonic() + seconds
    read = 0
    records: list[Any] = []
    while not records and (left := deadline - time.monotonic()) > 0:
        try:
            data = transport.read(min(left, 0.2))
        except EndOfStream:
            break
        read += len(data)
        records = parser.feed(data)
    return read, records
