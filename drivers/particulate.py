"""What the UART particulate sensors share: framing with resync, and a duty-cycled driver.

Nova Fitness SDS011 (:mod:`drivers.sds011`) and Plantower PMS5003/PMS7003
(:mod:`drivers.pms5003`) both send fixed binary frames that start with a two-byte header,
both can be told to sleep and wake, and both need some time after waking before their
readings can be trusted. Each sensor module adds only its frame layout and its commands:

- :class:`FrameParser`: bytes in, :class:`~sync.records.Reading` out; finds frames among
  garbage, checks them, counts what it rejects. Pure: no threads, no I/O.
- :class:`DutySchedule`: when to wake the sensor, which readings to keep, when to put it to
  sleep. Pure: a state machine over the monotonic seconds it is given.
- :class:`DutyCycledDriver`: the driver component that joins the two to a transport.

How the parsers count (``rejects``, by reason; never raised):

- ``garbage``: **bytes** skipped while looking for a frame header (line noise, the tail of
  a frame cut by opening the port). Bytes inside a rejected frame are not counted again;
- ``bad_checksum`` / ``bad_tail`` / ``bad_length``: **frames** with a header whose checksum,
  end byte or length field is wrong. The search resumes one byte after the rejected
  frame's header, so a real frame that began inside it is still found; a candidate that
  starts inside an already rejected frame is not counted a second time;
- ``truncated``: a frame cut short by the end of the stream (counted at :meth:`flush`).

Valid frames of no use here (replies to commands) are counted in ``ignored`` by kind, and
the driver counts frames it discards there too: ``warmup`` (read while the sensor settles
after waking) and ``asleep`` (arrived while it was told to sleep).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Protocol

from common.clock import Clock
from drivers.base import Driver, Sink
from drivers.transport import Transport, TransportError
from sync.records import Reading

__all__ = [
    "DutyCycle",
    "DutyCycledDriver",
    "DutySchedule",
    "FrameParser",
    "Phase",
]

log = logging.getLogger(__name__)


class FrameParser:
    """Finds, checks and decodes fixed-header binary frames in a byte stream.

    Subclasses set ``headers`` (the two-byte starts of every frame they know; all share
    their first byte) and ``max_frame`` (longest frame, bytes), and override:

    - ``frame_size(buf, at)``: the length of the frame starting at ``buf[at]``, ``None``
      when more bytes are needed to tell, or a reject reason (e.g. ``"bad_length"``);
    - ``check(frame)``: ``None`` for a valid frame, else the reject reason;
    - ``decode(frame, out)``: append the frame's Readings to ``out`` (one ``clock.now()``
      per frame), or count it in ``ignored``; return the number of data frames (0 or 1).

    ``frames`` counts the data frames decoded (whatever then became of their readings).

    Never raises on bad input; see the module docstring for the counters.
    """

    headers: ClassVar[tuple[bytes, ...]] = ()
    max_frame: ClassVar[int] = 0

    def __init__(self, sensor: str, clock: Clock) -> None:
        self.sensor = sensor
        self.clock = clock
        self.rejects: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.frames = 0
        self._buf = b""
        self._covered = 0  # buf index up to which the bytes belong to a rejected frame
        self._sync = self.headers[0][0]
        self._seconds = frozenset(header[1] for header in self.headers)

    # --- for subclasses ---

    def frame_size(self, buf: bytes, at: int) -> int | str | None:
        raise NotImplementedError

    def check(self, frame: bytes) -> str | None:
        raise NotImplementedError

    def decode(self, frame: bytes, out: list[Reading]) -> int:
        raise NotImplementedError

    def reading(self, stamp_fields: tuple[int, int, int], quantity: str, value: float) -> Reading:
        """A Reading of this sensor with the time fields of one ``clock.now()``."""
        return Reading(*stamp_fields, self.sensor, quantity, value)

    # --- the stream ---

    def feed(self, data: bytes) -> list[Reading]:
        """Bytes in (any chunk), the Readings of the frames they completed out."""
        buf = self._buf + data if self._buf else data
        out: list[Reading] = []
        pos = 0
        sync, seconds, end = self._sync, self._seconds, len(buf)
        while True:
            at = buf.find(sync, pos)
            if at < 0:
                self._garbage(pos, end)
                pos = end
                break
            self._garbage(pos, at)
            if at + 1 >= end:  # a header's first byte, the rest still to come
                pos = at
                break
            if buf[at + 1] not in seconds:
                self._garbage(at, at + 1)
                pos = at + 1
                continue
            size = self.frame_size(buf, at)
            if size is None or (isinstance(size, int) and at + size > end):
                pos = at  # wait for the rest of the frame
                break
            if isinstance(size, str):
                self._reject(size, at, at + 2)
                pos = at + 1
                continue
            frame = buf[at : at + size]
            reason = self.check(frame)
            if reason is None:
                self.frames += self.decode(frame, out)
                pos = at + size
                self._covered = max(self._covered, pos)
            else:
                self._reject(reason, at, at + size)
                pos = at + 1
        self._buf = buf[pos:]
        self._covered = max(0, self._covered - pos)
        return out

    def flush(self) -> list[Reading]:
        """End of stream: a frame begun but not finished is counted ``truncated``."""
        if self._buf and self._covered < 1:
            self.rejects["truncated"] += 1
        self._buf = b""
        self._covered = 0
        return []

    def _garbage(self, start: int, stop: int) -> None:
        start = max(start, self._covered)
        if stop > start:
            self.rejects["garbage"] += stop - start

    def _reject(self, reason: str, start: int, stop: int) -> None:
        # A false start inside a frame already rejected is neither counted nor covers what follows
        # that frame: a byte after it is still garbage, even if the false start reached over it.
        if start >= self._covered:
            self.rejects[reason] += 1
            self._covered = max(self._covered, stop)


# --- duty cycle ------------------------------------------------------------------------------


class DutyConfig(Protocol):
    work_s: float
    warmup_s: float
    sleep_s: float


@dataclass(frozen=True)
class DutyCycle:
    """One cycle: wake, discard ``warmup_s`` of readings, keep ``work_s``, sleep ``sleep_s``.

    ``sleep_s = 0`` means the sensor never sleeps: one warm-up, then every reading is kept.
    """

    work_s: float
    warmup_s: float
    sleep_s: float

    def __post_init__(self) -> None:
        if self.work_s <= 0 or self.warmup_s < 0 or self.sleep_s < 0:
            raise ValueError(f"work_s must be > 0, warmup_s and sleep_s >= 0: {self}")

    @classmethod
    def of(cls, config: DutyConfig) -> DutyCycle:
        """From anything with ``work_s``, ``warmup_s``, ``sleep_s`` (e.g. ``DutyCycleConfig``)."""
        return cls(config.work_s, config.warmup_s, config.sleep_s)


class Phase(Enum):
    """Where a sensor is in its duty cycle."""

    WARMUP = "warmup"
    """Awake, readings discarded while fan and laser settle."""
    WORK = "work"
    """Awake, readings kept."""
    SLEEP = "sleep"
    """Told to sleep: laser and fan off."""


class DutySchedule:
    """Decides the phase at each moment and which command (``"work"``/``"sleep"``) enters it.

    Continuous (``duty=None``): wake once, then WORK for ever. With a :class:`DutyCycle`:
    WARMUP -> WORK -> SLEEP -> WARMUP ... measured from the first :meth:`step`. A step that
    comes late (the node was busy, the clock jumped) lands in the phase the time says, with
    the command that phase needs; phases it skipped are not replayed.

    Example::

        >>> schedule = DutySchedule(DutyCycle(work_s=2, warmup_s=1, sleep_s=5))
        >>> for now in (100.0, 100.5, 101.5, 103.0, 108.2):
        ...     phase, command = schedule.step(now)
        ...     print(now, phase.value, command)
        100.0 warmup work
        100.5 warmup None
        101.5 work None
        103.0 sleep sleep
        108.2 warmup work
    """

    def __init__(self, duty: DutyCycle | None) -> None:
        self.duty = duty
        self.phase: Phase | None = None
        self._cycle_start = 0.0

    def step(self, now: float) -> tuple[Phase, str | None]:
        """The phase at monotonic time ``now``, and the command to send on entering it."""
        duty, previous = self.duty, self.phase
        wrapped = False  # a new cycle began since the last step
        if previous is None:
            self._cycle_start = now
        if duty is None:
            phase = Phase.WORK
        else:
            elapsed = now - self._cycle_start
            period = duty.warmup_s + duty.work_s + duty.sleep_s
            if duty.sleep_s and elapsed >= period:
                self._cycle_start += period * (elapsed // period)
                elapsed = now - self._cycle_start
                wrapped = True
            if elapsed < duty.warmup_s:
                phase = Phase.WARMUP
            elif not duty.sleep_s or elapsed < duty.warmup_s + duty.work_s:
                phase = Phase.WORK
            else:
                phase = Phase.SLEEP
        self.phase = phase
        awake = (Phase.WARMUP, Phase.WORK)
        if phase in awake and (previous is None or previous is Phase.SLEEP or wrapped):
            return phase, "work"
        if phase is Phase.SLEEP and previous is not Phase.SLEEP:
            return phase, "sleep"
        return phase, None


class DutyCycledDriver(Driver):
    """A UART particulate sensor: readings from its frames, woken and put to sleep on a schedule.

    On start it sends the wake command (a previous stop left the sensor asleep); with a
    ``duty`` cycle it discards readings during the warm-up, keeps them for ``work_s``, sends
    the sleep command and waits ``sleep_s`` (still reading: frames that arrive are counted as
    ``ignored["asleep"]``), and so on. When the driver ends it sends the sleep command, which
    spares the laser. Time comes from ``monotonic`` (injectable, so tests run a cycle in
    a fraction of a second); readings are stamped by ``clock``.

    A command the transport cannot send (a replay, an unplugged adapter) is logged once and
    counted in ``sent["failed"]``; the schedule goes on. ``sent`` counts commands by name.

    Subclasses set ``parser_class`` (a :class:`FrameParser`) and the ``wake_command`` and
    ``sleep_command`` bytes.
    """

    stream = "reading"
    parser_class: ClassVar[type[FrameParser]]
    wake_command: ClassVar[bytes]
    sleep_command: ClassVar[bytes]

    def __init__(
        self,
        name: str,
        transport: Transport,
        sink: Sink,
        clock: Clock,
        duty: DutyCycle | DutyConfig | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, transport, sink, clock)
        if duty is not None and not isinstance(duty, DutyCycle):
            duty = DutyCycle.of(duty)
        self.schedule = DutySchedule(duty)
        self.parser = self.parser_class(name, clock)
        # the parser's counters are the driver's: the status report reads them here
        self.rejects = self.parser.rejects
        self.ignored = self.parser.ignored
        self.sent: Counter[str] = Counter()
        self._monotonic = monotonic
        self._send_error: str | None = None

    def tick(self) -> list[Reading]:
        _, command = self.schedule.step(self._monotonic())
        if command == "work":
            self._send("work", self.wake_command)
        elif command == "sleep":
            self._send("sleep", self.sleep_command)
        return []

    def feed(self, data: bytes) -> list[Reading]:
        frames = self.parser.frames
        readings = self.parser.feed(data)
        phase = self.schedule.phase
        if phase is Phase.WORK or phase is None or not readings:
            return readings
        self.ignored["warmup" if phase is Phase.WARMUP else "asleep"] += self.parser.frames - frames
        return []

    def flush(self) -> list[Reading]:
        return self.parser.flush()

    def at_end(self) -> None:
        self._send("sleep", self.sleep_command)

    def _send(self, name: str, command: bytes) -> None:
        try:
            self.transport.write(command)
        except TransportError as exc:
            self.sent["failed"] += 1
            if self._send_error != str(exc):  # once per distinct failure
                log.warning("event=command_failed driver=%s command=%s error=%r", self.name, name, str(exc))
                self._send_error = str(exc)
            return
        self._send_error = None
        self.sent[name] += 1
        log.info("event=command_sent driver=%s command=%s", self.name, name)
