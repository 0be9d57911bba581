"""NMEA 0183 GPS receivers: positions from RMC, GGA and VTG sentences.

:class:`NmeaParser` is the pure part (bytes in, :class:`~sync.records.Position` out, no
threads, no I/O) and :class:`NmeaGps` the driver component around it.

What a receiver sends is not trusted: every line that is not a usable sentence is counted
in ``rejects`` by reason and skipped, never raised:

- ``too_long``: a line over 164 bytes (twice the NMEA limit); never buffered beyond that;
- ``not_ascii``: bytes above 0x7F (binary protocols, line noise);
- ``no_start``: a line that does not start with ``$`` or ``!``;
- ``truncated``: the part of a line before a ``$`` that starts another sentence, or the
  first line of a stream (its head was cut by opening the port mid-sentence);
- ``no_checksum`` / ``bad_checksum``: no ``*hh`` at the end / a wrong one;
- ``parse_error``: pynmea2 refused it, or it has too few fields;
- ``bad_field``: a field that does not convert (latitude 95, time 25:00, ...).

Sentences that are valid but of no use here are counted in ``ignored``: by sentence type
(``GSV``, ``GSA``, ``PSRF`` for proprietary ones...), ``no_fix`` for RMC/GGA/VTG that say the
receiver has no fix, and ``ais`` for AIS ``!AIVDM``/``!AIVDO`` unless the parser keeps them
(``keep_ais``: :class:`NmeaGps` passes them on to the IOC, see ``drivers.ais``).
"""

from __future__ import annotations

import datetime
import logging
from collections import Counter

import pynmea2

from common.clock import Clock
from drivers.ais import AisPassthrough
from drivers.base import Driver, Sink
from drivers.transport import Transport
from sync.records import Position, TimeSource

__all__ = ["MAX_LINE", "NmeaGps", "NmeaParser"]

log = logging.getLogger(__name__)

MAX_LINE = 164
"""Longest line accepted, in bytes (NMEA allows 82; some receivers exceed it a little)."""

MAX_KINDS = 64
"""Distinct keys kept in ``ignored``: line noise must not grow the counter without bound."""

_GPS = int(TimeSource.GPS)
_DAY_MS = 86_400_000
_EPOCH = datetime.date(1970, 1, 1).toordinal()
_NOT_BEFORE = datetime.date(2020, 1, 1)
_ROLLOVER = datetime.timedelta(weeks=1024)  # the 10-bit GPS week counter wraps every 1024 weeks


class _Fix:
    """The fields of one fix gathered from the sentences that share its UTC time of day."""

    __slots__ = ("tod", "day", "lat", "lon", "speed", "course", "quality", "sats", "hdop", "alt")

    day: int | None
    lat: float | None
    lon: float | None
    speed: float | None
    course: float | None
    quality: int | None
    sats: int | None
    hdop: float | None
    alt: float | None

    def __init__(self, tod: int) -> None:
        self.tod = tod
        self.day = self.lat = self.lon = self.speed = self.course = None
        self.quality = self.sats = self.hdop = self.alt = None


def _tod(text: str) -> int:
    """``hhmmss[.sss]`` -> milliseconds since midnight UTC."""
    hours, minutes, seconds = int(text[0:2]), int(text[2:4]), float(text[4:])
    if len(text) < 6 or not (0 <= hours < 24 and 0 <= minutes < 60 and 0 <= seconds < 61):
        raise ValueError(f"bad time {text!r}")
    return (hours * 3600 + minutes * 60) * 1000 + round(seconds * 1000)


def _coord(value: str, hemisphere: str, positive: str, negative: str, limit: float) -> float:
    """``dddmm.mmmm`` and a hemisphere letter -> signed decimal degrees."""
    # split the text rather than the float: 4807.038 - 4800 is 7.038000000000011
    dot = value.find(".")
    if dot < 0:
        dot = len(value)
    if dot < 3:
        raise ValueError(f"bad coordinate {value!r}")
    degrees, minutes = int(value[: dot - 2]), float(value[dot - 2 :])
    if not (0 <= minutes < 60 and degrees >= 0):  # also refuses nan
        raise ValueError(f"bad coordinate {value!r}")
    result = degrees + minutes / 60
    if result > limit:
        raise ValueError(f"coordinate out of range {value!r}")
    if hemisphere == negative:
        return -result
    if hemisphere != positive:
        raise ValueError(f"bad hemisphere {hemisphere!r}")
    return result


def _num(text: str) -> float | None:
    if not text:
        return None
    number = float(text)
    if number - number != 0:  # nan or inf
        raise ValueError(f"not a finite number {text!r}")
    return number


def _day(text: str) -> int:
    """``ddmmyy`` -> days since 1970, undoing GPS week rollovers (dates before 2020)."""
    if len(text) != 6:
        raise ValueError(f"bad date {text!r}")
    year = int(text[4:6])
    date = datetime.date(year + (2000 if year < 80 else 1900), int(text[2:4]), int(text[0:2]))
    # A receiver whose week counter wrapped reports a date 1024 weeks (or a multiple) early;
    # this node runs after 2020, so an earlier date can only be that (gpsd corrects the same way).
    while date < _NOT_BEFORE:
        date += _ROLLOVER
    return date.toordinal() - _EPOCH


class NmeaParser:
    """Turns a receiver's byte stream into :class:`~sync.records.Position` records.

    Bytes may arrive in chunks of any size; sentences split across chunks are reassembled.
    The RMC, GGA and VTG sentences of one fix (same UTC time of day; VTG has no time and
    joins the fix being gathered) are merged into one Position, emitted when a sentence
    with another time arrives or on :meth:`flush`. Only fixes the receiver calls valid
    (RMC status ``A`` or GGA quality > 0) become Positions.

    Time: ``ts_ms`` is the GPS's UTC (date from RMC, the last one seen for GGA-only fixes)
    with ``tsrc`` GPS, and the clock is told (:meth:`Clock.observe_gps`). Without a date yet,
    ``ts_ms`` and ``tsrc`` come from the clock. ``clock_ms`` is always the clock's.

    Never raises on bad input: see the module docstring for ``rejects`` and ``ignored``. With
    ``keep_ais``, AIS sentences are appended to :attr:`ais` instead of counted as ignored.

    Example::

        >>> parser = NmeaParser(Clock())
        >>> parser.feed(b"$GPRMC,213950.00,A,5250.53669,N,00542.34920,E,0.020,,070420,,,A*7D\\r\\n")
        []
        >>> [(p.ts_ms, p.tsrc, round(p.lat, 4)) for p in parser.flush()]
        [(1586295590000, 1, 52.8423)]
    """

    def __init__(self, clock: Clock, keep_ais: bool = False) -> None:
        self.clock = clock
        self.rejects: Counter[str] = Counter()
        self.ignored: Counter[str] = Counter()
        self.sentences = 0
        """Lines seen, whatever became of them."""
        self.ais: list[bytes] | None = [] if keep_ais else None
        """With ``keep_ais``, the AIS sentences (``!AIVDM...*hh``) not yet taken (the taker empties it)."""
        self._buf = b""
        # How to count the head of the next line: "truncated" at the start of a stream (the
        # port may have been opened mid-sentence), "" after an over-long line was dropped
        # (its rest is already counted), None for a line that began at a line boundary.
        self._head: str | None = "truncated"
        self._pending: _Fix | None = None
        self._last_day: int | None = None
        self._last_day_tod = 0
        self._handlers = {b"RMC,": self._rmc, b"GGA,": self._gga, b"VTG,": self._vtg}
        self._kinds: dict[bytes, str] = {}  # line[:7] -> ignored key, so each type is worked out once

    def feed(self, data: bytes) -> list[Position]:
        """Bytes in (any chunk), the Positions completed by them out."""
        if self._buf:
            data = self._buf + data
        lines = data.split(b"\n")
        tail = lines.pop()
        out: list[Position] = []
        if lines:
            self._lines(lines, out)
        if len(tail) > MAX_LINE:
            tail = self._overflow(tail)
        self._buf = tail
        return out

    def flush(self) -> list[Position]:
        """End of stream: the last line (even without a newline) and the fix being gathered."""
        out: list[Position] = []
        if self._buf:
            tail, self._buf = self._buf, b""
            self._lines([tail], out)
        if self._pending is not None:
            self._emit(self._pending, out)
            self._pending = None
        self._head = "truncated"  # what comes next is a new stream
        return out

    def _lines(self, lines: list[bytes], out: list[Position]) -> None:
        # The hot path: every check before pynmea2 is a C-level bytes method, and only the
        # three sentence types used here reach pynmea2 at all.
        rejects, ignored, handlers, kinds, ais = (
            self.rejects,
            self.ignored,
            self._handlers,
            self._kinds,
            self.ais,
        )
        head = self._head
        self.sentences += len(lines)
        for line in lines:
            line = line.strip()
            if head is not None:
                found, head = self._resync(line, head), None
                if found is None:
                    continue
                line = found
            elif not line:
                self.sentences -= 1  # blank lines (CR LF LF) are not sentences
                continue
            elif line.rfind(b"$") or len(line) > MAX_LINE:  # rfind is 0 for a normal "$..." line
                found = self._resync(line, None)
                if found is None:
                    continue
                line = found
            if not line.isascii():
                rejects["not_ascii"] += 1
                continue
            if line[-3:-2] != b"*":
                rejects["no_checksum"] += 1
                continue
            handler = handlers.get(line[3:7])
            if handler is None or line[0] != 36 or line[1] == 80:  # not "$", or "$P..." proprietary
                kind = kinds.get(line[:7])
                if kind is None:
                    kind = self._kind(line)
                if ais is not None and kind == "ais":
                    ais.append(line)
                else:
                    ignored[kind] += 1
                continue
            # pynmea2 is the parser of record: it checks the checksum and splits the fields;
            # the fields are converted here (its lazy properties cost more than the parse).
            try:
                fields = pynmea2.parse(line.decode()).data
            except pynmea2.ChecksumError:
                rejects["bad_checksum"] += 1
                continue
            except (pynmea2.ParseError, ValueError, TypeError):
                rejects["parse_error"] += 1
                continue
            try:
                reason = handler(fields, out)
            except (ValueError, OverflowError):
                reason = "bad_field"
            if reason:
                rejects[reason] += 1
        self._head = head

    def _resync(self, line: bytes, head: str | None) -> bytes | None:
        """The sentence in a line that is not a plain ``$...`` one, or None (counted)."""
        if not line:
            return None
        rejects = self.rejects
        if len(line) > MAX_LINE:
            start = max(line.rfind(b"$"), line.rfind(b"!"))
            if head != "":
                rejects["too_long"] += 1
            if start < 0 or len(line) - start > MAX_LINE:
                return None
            return self._resync(line[start:], None)
        # in a "$" line only another "$" starts a new sentence ("!" may be text, as in TXT)
        start = line.rfind(b"$") if line[0] == 36 else max(line.rfind(b"$"), line.rfind(b"!"))
        if start < 0:
            if head != "":
                rejects["not_ascii" if not line.isascii() else head or "no_start"] += 1
            return None
        if start > 0:
            prefix = line[:start]
            if head != "":
                rejects["not_ascii" if not prefix.isascii() else "truncated"] += 1
            line = line[start:]
        return line

    def _overflow(self, tail: bytes) -> bytes:
        """An unfinished line grew past MAX_LINE: keep only a sentence start near its end."""
        if self._head != "":
            self.rejects["too_long"] += 1
        start = max(tail.rfind(b"$"), tail.rfind(b"!"))
        if start >= 0 and len(tail) - start <= MAX_LINE:
            self._head = None
            return tail[start:]
        self._head = ""
        return b""

    def _kind(self, line: bytes) -> str:
        """The ``ignored`` key of a sentence: its type without talker, ``ais``, or ``P`` + maker."""
        comma = line.find(b",")
        address = line[1:comma] if comma > 0 else line[1:-3]
        if line[0] == 33:  # "!": encapsulated sentences, in practice AIS
            kind = "ais" if address[2:] in (b"VDM", b"VDO") else address.decode()
        elif address[:1] == b"P":
            kind = address[:4].decode()  # proprietary: P + manufacturer code
        else:
            kind = address[2:].decode()
        if len(kind) > 8 or (kind not in self.ignored and len(self.ignored) >= MAX_KINDS):
            kind = "other"  # line noise must not grow the counter without bound
        elif len(self._kinds) < 4 * MAX_KINDS:
            self._kinds[line[:7]] = kind
        return kind

    # --- sentences: each returns None or a reject reason; ValueError means "bad_field" ---

    def _rmc(self, d: list[str], out: list[Position]) -> str | None:
        if len(d) < 9:
            return "parse_error"
        if d[1] != "A":
            self.ignored["no_fix"] += 1
            if d[0]:
                self._fix(_tod(d[0]), out)  # a new time still closes the previous fix
            return None
        tod = _tod(d[0])
        lat = _coord(d[2], d[3], "N", "S", 90.0)
        lon = _coord(d[4], d[5], "E", "W", 180.0)
        speed, course = _num(d[6]), _num(d[7])
        day = _day(d[8]) if d[8] else None
        fix = self._fix(tod, out)
        fix.lat, fix.lon = lat, lon
        if speed is not None:
            fix.speed = speed
        if course is not None:
            fix.course = course
        if day is not None:
            fix.day = self._last_day = day
            self._last_day_tod = tod
        return None

    def _gga(self, d: list[str], out: list[Position]) -> str | None:
        if len(d) < 9:
            return "parse_error"
        quality = int(d[5]) if d[5] else 0
        if quality <= 0:
            self.ignored["no_fix"] += 1
            if d[0]:
                self._fix(_tod(d[0]), out)
            return None
        tod = _tod(d[0])
        lat = _coord(d[1], d[2], "N", "S", 90.0)
        lon = _coord(d[3], d[4], "E", "W", 180.0)
        sats = int(d[6]) if d[6] else None
        hdop, alt = _num(d[7]), _num(d[8])
        fix = self._fix(tod, out)
        fix.lat, fix.lon = lat, lon
        if fix.quality is None:  # the first GGA of a fix wins: a GLGGA after a GPGGA counts fewer sats
            fix.quality, fix.sats, fix.hdop, fix.alt = quality, sats, hdop, alt
        return None

    def _vtg(self, d: list[str], out: list[Position]) -> str | None:
        if len(d) >= 8:  # NMEA 2.3+: course,T,course,M,knots,N,km/h,K[,mode]
            if len(d) > 8 and d[8] == "N":  # mode N: data not valid
                self.ignored["no_fix"] += 1
                return None
            course, speed = _num(d[0]), _num(d[4])
        elif len(d) == 4:  # before NMEA 2.0: course,course magnetic,knots,km/h
            course, speed = _num(d[0]), _num(d[2])
        else:
            return "parse_error"
        fix = self._pending
        if fix is None:
            self.ignored["unmerged"] += 1  # no fix gathered yet (start of stream)
            return None
        if speed is not None:
            fix.speed = speed
        if course is not None:
            fix.course = course
        return None

    def _fix(self, tod: int, out: list[Position]) -> _Fix:
        """The fix gathered for time of day ``tod``; a new time emits the previous one."""
        fix = self._pending
        if fix is not None:
            if fix.tod == tod:
                return fix
            self._emit(fix, out)
        fix = self._pending = _Fix(tod)
        return fix

    def _emit(self, fix: _Fix, out: list[Position]) -> None:
        if fix.lat is None or fix.lon is None:  # no sentence of this fix had a valid fix (counted as no_fix)
            return
        day = fix.day
        if day is None and self._last_day is not None:
            day = self._last_day
            if fix.tod < self._last_day_tod - _DAY_MS // 2:
                day += 1  # a GGA-only fix past midnight, the last date from before it
        stamp = self.clock.now()
        if day is not None:
            ts_ms, tsrc = day * _DAY_MS + fix.tod, _GPS
            self.clock.observe_gps(ts_ms)
        else:
            ts_ms, tsrc = stamp.ts_ms, stamp.tsrc
        out.append(
            Position(
                ts_ms,
                tsrc,
                stamp.clock_ms,
                fix.lat,
                fix.lon,
                fix.speed,
                fix.course,
                fix.quality,
                fix.sats,
                fix.hdop,
                fix.alt,
            )  # fmt: skip
        )


class NmeaGps(Driver):
    """An NMEA 0183 GPS receiver on any transport, producing the ``position`` stream.

    AIS sentences on the same stream go to the ``ais`` stream, at most ``ais_per_s`` a second
    (:class:`~drivers.ais.AisPassthrough`), counted in ``passed`` (``ais``, ``ais_dropped``).

    Example::

        gps = NmeaGps("gps", SerialTransport("/dev/ttyUSB0"), recorder.append, clock)
        gps.start()
        ...
        gps.stop()
    """

    stream = "position"

    def __init__(
        self, name: str, transport: Transport, sink: Sink, clock: Clock, ais_per_s: float = 20.0
    ) -> None:
        super().__init__(name, transport, sink, clock)
        self.parser = NmeaParser(clock, keep_ais=True)
        # the parser's counters are the driver's: the status report reads them here
        self.rejects = self.parser.rejects
        self.ignored = self.parser.ignored
        self.ais = AisPassthrough(clock, ais_per_s, rejects=self.rejects)
        self.passed = self.ais.counts
        self.last_fix: Position | None = None
        """The newest fix (its GPS time against the node's clock: the live self-test's clock check)."""

    def feed(self, data: bytes) -> list[Position]:
        positions = self.parser.feed(data)
        self._pass_ais()
        if positions:
            self.last_fix = positions[-1]
        return positions

    def flush(self) -> list[Position]:
        positions = self.parser.flush()
        self._pass_ais()
        return positions

    def _pass_ais(self) -> None:
        pending = self.parser.ais
        if pending:
            records = self.ais.take(pending)
            pending.clear()  # in place: the parser keeps this list
            if records:
                self.sink("ais", records)
