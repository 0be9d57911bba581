"""Nova Fitness SDS011 laser dust sensor (UART 9600 8N1): PM2.5 and PM10.

Per the Nova Fitness "Laser Dust Sensor Control Protocol" (V1.3, 2015-07-20; SDS011,
SDS018, SDS198):

- the sensor sends 10-byte frames ``AA C0 PM25lo PM25hi PM10lo PM10hi ID1 ID2 CS AB``:
  PM in tenths of µg/m³, little endian; ``CS`` is the low byte of the sum of the six data
  bytes. In its factory default ("active reporting") it sends one a second;
- it answers commands with ``AA C5 <command> ... ID1 ID2 CS AB`` (same layout and checksum);
- commands are 19 bytes: ``AA B4``, 15 data bytes (the command, its parameters, then the
  device id, ``FF FF`` for any device), a checksum (the low byte of the sum of the 15 data
  bytes) and ``AB``. Sleep/work is command 6, reporting mode 2, query data 4, working
  period 8. A sleeping sensor ignores every command but the one that wakes it.

:class:`Sds011Parser` is the pure part (see :mod:`drivers.particulate` for the counters;
replies are counted in ``ignored`` as ``reply_sleep_work``, ``reply_mode``,
``reply_period``, ``reply_device_id``, ``reply_firmware`` or ``reply_other``) and
:class:`Sds011` the driver component.
"""

from __future__ import annotations

from drivers.particulate import DutyCycledDriver, FrameParser
from sync.records import Reading

__all__ = [
    "ANY_DEVICE",
    "Sds011",
    "Sds011Parser",
    "command",
    "query_command",
    "set_query_mode_command",
    "set_working_period_command",
    "sleep_command",
    "work_command",
]

HEAD, TAIL = 0xAA, 0xAB
DATA, REPLY, COMMAND = 0xC0, 0xC5, 0xB4
FRAME = 10
ANY_DEVICE = 0xFFFF
"""The device id that addresses whichever sensor is on the line."""

SET_MODE, QUERY_DATA, SET_DEVICE_ID, SLEEP_WORK, FIRMWARE, WORKING_PERIOD = 2, 4, 5, 6, 7, 8
_REPLIES = {
    SET_MODE: "reply_mode",
    SET_DEVICE_ID: "reply_device_id",
    SLEEP_WORK: "reply_sleep_work",
    FIRMWARE: "reply_firmware",
    WORKING_PERIOD: "reply_period",
}


def data_frame(pm25_tenths: int, pm10_tenths: int, device_id: int = 0xA160, kind: int = 0xC0) -> bytes:
    """The data frame a sensor sends (PM in tenths of ug/m3): for simulators, demos and tests.

    ``kind`` 0xC5 makes a command reply of the same shape instead.

    >>> data_frame(1236, 2618).hex(" ")
    'aa c0 d4 04 3a 0a a1 60 1d ab'
    """
    data = (
        pm25_tenths.to_bytes(2, "little") + pm10_tenths.to_bytes(2, "little") + device_id.to_bytes(2, "big")
    )
    return bytes([0xAA, kind]) + data + bytes([sum(data) & 0xFF, 0xAB])


def command(code: int, params: bytes = b"", device_id: int = ANY_DEVICE) -> bytes:
    """The 19-byte command frame ``AA B4 code params... ID1 ID2 CS AB``.

    Raises ValueError for more than 12 parameter bytes or a device id beyond 16 bits.

    Example::

        >>> command(SLEEP_WORK, bytes([1, 0])).hex(" ")
        'aa b4 06 01 00 00 00 00 00 00 00 00 00 00 00 ff ff 05 ab'
    """
    if len(params) > 12 or not 0 <= device_id <= 0xFFFF:
        raise ValueError(f"at most 12 parameter bytes and a 16-bit device id, not {params!r}, {device_id}")
    data = bytes([code]) + params.ljust(12, b"\0") + device_id.to_bytes(2, "big")
    return bytes([HEAD, COMMAND]) + data + bytes([sum(data) & 0xFF, TAIL])


def sleep_command(device_id: int = ANY_DEVICE) -> bytes:
    """Laser and fan off (command 6, set, sleep)."""
    return command(SLEEP_WORK, bytes([1, 0]), device_id)


def work_command(device_id: int = ANY_DEVICE) -> bytes:
    """Wake up and measure (command 6, set, work)."""
    return command(SLEEP_WORK, bytes([1, 1]), device_id)


def query_command(device_id: int = ANY_DEVICE) -> bytes:
    """Ask for one data frame (for a sensor in query reporting mode)."""
    return command(QUERY_DATA, b"", device_id)


def set_query_mode_command(query: bool = True, device_id: int = ANY_DEVICE) -> bytes:
    """Report only when asked (``query``) or on its own each second (active, the default).

    The sensor keeps this setting through a power cycle.
    """
    return command(SET_MODE, bytes([1, 1 if query else 0]), device_id)


def set_working_period_command(minutes: int, device_id: int = ANY_DEVICE) -> bytes:
    """The sensor's own duty cycle: one reading every ``minutes`` (1..30), 0 = continuous.

    Raises ValueError outside 0..30.
    """
    if not 0 <= minutes <= 30:
        raise ValueError(f"working period must be 0..30 minutes, not {minutes}")
    return command(WORKING_PERIOD, bytes([1, minutes]), device_id)


class Sds011Parser(FrameParser):
    """Turns an SDS011's bytes into Readings ``pm25`` and ``pm10`` (µg/m³) of ``sensor``.

    Example::

        >>> from common.clock import Clock
        >>> parser = Sds011Parser("pm-1", Clock(wall=lambda: 1.0, synced=lambda: False))
        >>> for reading in parser.feed(bytes.fromhex("aa c0 d4 04 3a 0a a1 60 1d ab")):
        ...     print(reading.sensor, reading.quantity, reading.value, reading.ts_ms)
        pm-1 pm25 123.6 1000
        pm-1 pm10 261.8 1000
    """

    headers = (bytes([HEAD, DATA]), bytes([HEAD, REPLY]))
    max_frame = FRAME

    def frame_size(self, buf: bytes, at: int) -> int:
        return FRAME

    def check(self, frame: bytes) -> str | None:
        if frame[9] != TAIL:
            return "bad_tail"
        if sum(frame[2:8]) & 0xFF != frame[8]:
            return "bad_checksum"
        return None

    def decode(self, frame: bytes, out: list[Reading]) -> int:
        if frame[1] == REPLY:
            self.ignored[_REPLIES.get(frame[2], "reply_other")] += 1
            return 0
        stamp = self.clock.now()
        out.append(self.reading(stamp, "pm25", (frame[2] | frame[3] << 8) / 10))
        out.append(self.reading(stamp, "pm10", (frame[4] | frame[5] << 8) / 10))
        return 1


class Sds011(DutyCycledDriver):
    """An SDS011 on any transport, producing the ``reading`` stream; optionally duty-cycled.

    The sensor must be in active reporting mode (its factory default).

    Example::

        pm = Sds011("pm-1", SerialTransport("/dev/ttyUSB1", 9600), recorder.append, clock,
                    duty=DutyCycle(work_s=30, warmup_s=30, sleep_s=240))
        pm.start()
        ...
        pm.stop()       # sends the sleep command: the laser lasts longer
    """

    parser_class = Sds011Parser
    wake_command = work_command()
    sleep_command = sleep_command()
