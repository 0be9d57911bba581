"""AIS sentences heard on a GPS's NMEA stream, passed on to the IOC: checked, rate-capped, counted.

A vessel's receiver often multiplexes the ship's AIS traffic (``!AIVDM``, other ships; ``!AIVDO``,
its own transponder) into the GPS's NMEA stream. They are not the GPS's business and not errors:
the NMEA parser sets them aside (:attr:`drivers.nmea.NmeaParser.ais`) and :class:`AisPassthrough`
turns them into ``ais`` records, the IOC's to decode. A busy harbour can bring hundreds a second,
so at most ``per_s`` a second are passed (a token bucket holding ``burst_s`` seconds' worth, so a
short burst passes whole); the rest are counted, never buffered.
"""

from __future__ import annotations

import functools
import operator
import time
from collections import Counter
from collections.abc import Callable

from common.clock import Clock
from sync.records import Ais

__all__ = ["AisPassthrough"]


class AisPassthrough:
    """Raw AIS lines in, :class:`~sync.records.Ais` records out, within a rate.

    Counts in ``counts``: ``ais`` (passed), ``ais_dropped`` (over ``per_s``; all of them when
    ``per_s`` is 0); and in ``rejects`` (the driver's): ``bad_checksum``, ``parse_error`` (not
    ``!AIVDx,count,number,...``). A message in several fragments is passed whole or not at all.

    Example::

        >>> ais = AisPassthrough(Clock(), per_s=20)
        >>> [r.sentence for r in ais.take([b"!AIVDM,1,1,,B,13aDp<PP000IwSlN?Wm@0?wN2<1T,0*29"])]
        ['!AIVDM,1,1,,B,13aDp<PP000IwSlN?Wm@0?wN2<1T,0*29']
        >>> ais.counts
        Counter({'ais': 1})
    """

    def __init__(
        self,
        clock: Clock,
        per_s: float,
        burst_s: float = 10.0,
        rejects: Counter[str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock, self.per_s, self.monotonic = clock, per_s, monotonic
        self.capacity = max(per_s * burst_s, 1.0) if per_s > 0 else 0.0
        self.rejects = rejects if rejects is not None else Counter()
        self.counts: Counter[str] = Counter()
        self._tokens = self.capacity
        self._filled_at = monotonic()
        self._following: bool | None = None  # the message being continued: passed (True), dropped

    def take(self, lines: list[bytes]) -> list[Ais]:
        """The records of ``lines`` (``!AIVDx...*hh``, no line ending) that pass, stamped now."""
        now = self.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._filled_at) * self.per_s)
        self._filled_at = now
        passed: list[str] = []
        for line in lines:
            fields = line.split(b",", 4)
            if len(fields) < 5 or not fields[1].isdigit() or not fields[2].isdigit():
                self.rejects["parse_error"] += 1
                continue
            try:
                good = functools.reduce(operator.xor, line[1:-3]) == int(line[-2:], 16)
            except ValueError:
                good = False
            if not good:
                self.rejects["bad_checksum"] += 1
                continue
            if self._passes(int(fields[1]), int(fields[2])):
                passed.append(line.decode())
        if not passed:
            return []
        self.counts["ais"] += len(passed)
        stamp = self.clock.now()
        return [Ais(*stamp, sentence) for sentence in passed]

    def _passes(self, count: int, number: int) -> bool:
        # A later fragment goes the way of its message's first; a fragment whose first was not seen
        # (the stream began mid-message) is judged on its own.
        ok = self._following if number > 1 and self._following is not None else self._tokens >= 1
        if ok:
            self._tokens -= 1  # a message's later fragments may take the bucket a little below zero
        else:
            self.counts["ais_dropped"] += 1
        self._following = ok if number < count else None
        return ok
