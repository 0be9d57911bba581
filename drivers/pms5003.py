"""Plantower PMS5003 / PMS7003 particulate sensors (UART 9600 8N1): PM1.0, PM2.5 and PM10.

Per the Plantower PMS5003 data manual (V2.3, 2016; the PMS7003's is the same protocol):

- the sensor sends 32-byte frames: ``42 4D``, a 16-bit big-endian frame length (28 =
  2 x 13 + 2: what follows it), thirteen 16-bit big-endian data words and a 16-bit
  check code = the sum of every byte before it. Data 1-3: PM1.0, PM2.5, PM10 "CF=1,
  standard particle" (for factory environments); data 4-6: the same "under atmospheric
  environment" (µg/m³) - these are the readings here; data 7-12: particles beyond 0.3,
  0.5, 1.0, 2.5, 5.0 and 10 µm per 0.1 L of air; data 13: reserved (version, error code);
- commands are 7 bytes: ``42 4D CMD DATAH DATAL`` and the 16-bit sum of those five:
  ``E4`` sleep (data 0) / wake up (data 1), ``E1`` passive (0) / active (1) mode, ``E2``
  read once in passive mode. Sleep and mode changes are answered with an 8-byte frame of
  length 4: ``42 4D 00 04 CMD DATA`` and its check code;
- active mode (sends on its own, every 2.3 s when the air is steady, faster when it is
  not) is the default after power-up; "stable data should be got at least 30 seconds
  after the sensor wakeup from the sleep mode because of the fan's performance".

:class:`Pms5003Parser` is the pure part (see :mod:`drivers.particulate` for the counters;
a length field other than 28 or 4 is ``bad_length``; command answers are counted in
``ignored`` as ``reply_sleep``, ``reply_mode`` or ``reply_other``) and :class:`Pms5003`
the driver component.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from drivers.particulate import DutyCycledDriver, FrameParser
from sync.records import Reading

__all__ = [
    "Pms5003",
    "Pms5003Frame",
    "Pms5003Parser",
    "active_mode_command",
    "command",
    "parse_frame",
    "passive_mode_command",
    "read_command",
    "sleep_command",
    "wakeup_command",
]

START = b"\x42\x4d"
DATA_LENGTH, REPLY_LENGTH = 28, 4
CHANGE_MODE, READ_PASSIVE, SLEEP_SET = 0xE1, 0xE2, 0xE4
_WORDS = struct.Struct(">4x13H2x")
_REPLIES = {CHANGE_MODE: "reply_mode", SLEEP_SET: "reply_sleep"}


class Pms5003Frame(NamedTuple):
    """Every value of one data frame: µg/m³ for the PM fields, particles per 0.1 L for counts."""

    pm1_cf1: int
    pm25_cf1: int
    pm10_cf1: int
    pm1: int
    """PM1.0 under atmospheric environment."""
    pm25: int
    pm10: int
    over_0_3um: int
    over_0_5um: int
    over_1_0um: int
    over_2_5um: int
    over_5_0um: int
    over_10um: int
    reserved: int
    """Data 13: version (high byte) and error code (low byte) on the PMS7003."""


def parse_frame(frame: bytes) -> Pms5003Frame:
    """The values of a checked 32-byte data frame (no checks here)."""
    return Pms5003Frame(*_WORDS.unpack(frame))


def data_frame(pm1: int, pm25: int, pm10: int, cf1: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    """A 32-byte frame with the given atmospheric PM values (ug/m3): for simulators, demos and tests."""
    words = (*cf1, pm1, pm25, pm10, 300, 100, 40, 16, 4, 2, 0x9700)
    body = b"\x42\x4d\x00\x1c" + b"".join(w.to_bytes(2, "big") for w in words)
    return body + (sum(body) & 0xFFFF).to_bytes(2, "big")


def command(code: int, data: int = 0) -> bytes:
    """The 7-byte command ``42 4D code DATAH DATAL`` with its check code.

    Example::

        >>> command(SLEEP_SET, 0).hex(" ")
        '42 4d e4 00 00 01 73'
    """
    body = START + bytes([code]) + data.to_bytes(2, "big")
    return body + (sum(body) & 0xFFFF).to_bytes(2, "big")


def sleep_command() -> bytes:
    """Fan and laser off."""
    return command(SLEEP_SET, 0)


def wakeup_command() -> bytes:
    """Fan and laser on; readings are stable about 30 s later."""
    return command(SLEEP_SET, 1)


def passive_mode_command() -> bytes:
    """Send a frame only when asked (:func:`read_command`)."""
    return command(CHANGE_MODE, 0)


def active_mode_command() -> bytes:
    """Send frames on its own (the default after power-up)."""
    return command(CHANGE_MODE, 1)


def read_command() -> bytes:
    """Ask for one frame (passive mode)."""
    return command(READ_PASSIVE, 0)


class Pms5003Parser(FrameParser):
    """Turns a PMS5003/PMS7003's bytes into Readings ``pm1``, ``pm25``, ``pm10`` (µg/m³).

    The values are the "atmospheric environment" ones (data 4-6 of the frame).

    Example::

        >>> from common.clock import Clock
        >>> frame = bytes.fromhex("424d001c 0005 0007 0008 0004 0006 0008 0300 0100 0040 0010 0004 0002 9700")
        >>> frame += (sum(frame) & 0xFFFF).to_bytes(2, "big")
        >>> parser = Pms5003Parser("pm-2", Clock(wall=lambda: 1.0, synced=lambda: False))
        >>> [(r.quantity, r.value) for r in parser.feed(frame)]
        [('pm1', 4.0), ('pm25', 6.0), ('pm10', 8.0)]
    """

    headers = (START,)
    max_frame = 4 + DATA_LENGTH

    def frame_size(self, buf: bytes, at: int) -> int | str | None:
        if at + 4 > len(buf):
            return None
        length = buf[at + 2] << 8 | buf[at + 3]
        if length not in (DATA_LENGTH, REPLY_LENGTH):
            return "bad_length"
        return 4 + length

    def check(self, frame: bytes) -> str | None:
        if sum(frame[:-2]) & 0xFFFF != (frame[-2] << 8 | frame[-1]):
            return "bad_checksum"
        return None

    def decode(self, frame: bytes, out: list[Reading]) -> int:
        if len(frame) != 4 + DATA_LENGTH:
            self.ignored[_REPLIES.get(frame[4], "reply_other")] += 1
            return 0
        values = parse_frame(frame)
        stamp = self.clock.now()
        out.append(self.reading(stamp, "pm1", float(values.pm1)))
        out.append(self.reading(stamp, "pm25", float(values.pm25)))
        out.append(self.reading(stamp, "pm10", float(values.pm10)))
        return 1


class Pms5003(DutyCycledDriver):
    """A PMS5003/PMS7003 on any transport, producing the ``reading`` stream; optionally duty-cycled.

    The sensor must be in active mode (its default after power-up). Give it a warm-up of
    at least 30 s (the data manual's figure).

    Example::

        pm = Pms5003("pm-2", SerialTransport("/dev/ttyAMA0", 9600), recorder.append, clock,
                     duty=DutyCycle(work_s=30, warmup_s=30, sleep_s=240))
        pm.start()
        ...
        pm.stop()       # sends the sleep command
    """

    parser_class = Pms5003Parser
    wake_command = wakeup_command()
    sleep_command = sleep_command()
