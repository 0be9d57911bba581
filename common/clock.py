"""The node's idea of the time, and where that idea came from.

A field node may boot without a real-time clock (it then believes it is 1970), may or may
not have NTP, and may have a GPS receiver. :class:`Clock` stamps records with the best time
it has and says which one it was (:class:`TimeSource`), so the operations
centre can tell a trustworthy time from a guess.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable
from enum import IntEnum
from typing import NamedTuple

__all__ = ["Clock", "Stamp", "TimeSource", "kernel_clock_synced"]


class TimeSource(IntEnum):
    """Where a timestamp came from, best first."""

    GPS = 1
    """UTC from a GPS receiver that had a valid fix."""
    NTP = 2
    """The node's clock while the kernel reported it synchronised (NTP, chrony, timesyncd)."""
    FREE = 3
    """The node's clock with no evidence that it is right: a guess."""


GPS_HOLD_S = 600.0
"""How long a GPS time stays the reference after the last one was seen (monotonic seconds)."""

SANE_WALL_MS = 1_577_836_800_000
"""2020-01-01T00:00:00Z: a wall clock before this has never been set, whatever the kernel says."""

SYNC_CACHE_S = 10.0
"""How long a kernel sync answer is reused: adjtimex is a syscall and now() is called per record."""

# plain ints, not enum members: records go to sqlite3 and msgpack as they are
_GPS, _NTP, _FREE = int(TimeSource.GPS), int(TimeSource.NTP), int(TimeSource.FREE)

_STA_UNSYNC = 0x0040
_TIME_ERROR = 5


class Stamp(NamedTuple):
    """A record's three time fields: its time, where that came from, and the node's wall clock."""

    ts_ms: int
    tsrc: int
    clock_ms: int


class _Timex(ctypes.Structure):
    # The head of Linux's struct timex, up to `status`; the buffer below pads it generously,
    # because the kernel writes the whole (larger, arch-dependent) struct.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_byte * 512),
    ]


def kernel_clock_synced() -> bool:
    """Whether the kernel says the system clock is synchronised (NTP, chrony, timesyncd...).

    Asks ``adjtimex(2)`` without changing anything (``modes = 0``). False when the
    ``STA_UNSYNC`` status bit is set, when the call returns ``TIME_ERROR``, and on any failure
    (not Linux, no libc): without evidence the clock is not trusted.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        timex = _Timex()
        state = libc.adjtimex(ctypes.byref(timex))
    except (OSError, AttributeError):
        return False
    return state not in (-1, _TIME_ERROR) and not timex.status & _STA_UNSYNC


class Clock:
    """Stamps records with the best time available: GPS, else a synchronised clock, else a guess.

    - GPS: after :meth:`observe_gps` (called by a GPS driver for sentences with a valid fix),
      for ``GPS_HOLD_S`` seconds: that GPS time plus the monotonic time elapsed since;
    - NTP: the wall clock, while the kernel says it is synchronised and it is after 2020;
    - FREE: the wall clock, with no evidence it is right (even when it says 1970).

    ``clock_ms`` is always the wall clock, so drift can be proven afterwards. Thread-safe.

    Example::

        >>> clock = Clock(wall=lambda: 0.0, synced=lambda: False)
        >>> clock.now()
        Stamp(ts_ms=0, tsrc=3, clock_ms=0)
        >>> clock.observe_gps(1_700_000_000_000)
        >>> clock.now().tsrc == TimeSource.GPS
        True
    """

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        synced: Callable[[], bool] = kernel_clock_synced,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall, self._synced, self._monotonic = wall, synced, monotonic
        # (gps_ms, monotonic seconds when seen), replaced as a whole so readers never see half
        self._gps: tuple[int, float] | None = None
        self._sync_cache: tuple[bool, float] | None = None
        self._lock = threading.Lock()

    def observe_gps(self, utc_ms: int) -> None:
        """Take ``utc_ms`` (from a GPS sentence with a valid fix) as the time right now."""
        self._gps = (utc_ms, self._monotonic())

    def now(self) -> Stamp:
        """The current :class:`Stamp`."""
        wall_ms = int(self._wall() * 1000)
        gps = self._gps
        if gps is not None:
            elapsed = self._monotonic() - gps[1]
            if 0 <= elapsed <= GPS_HOLD_S:
                return Stamp(gps[0] + int(elapsed * 1000), _GPS, wall_ms)
        if wall_ms >= SANE_WALL_MS and self._kernel_synced():
            return Stamp(wall_ms, _NTP, wall_ms)
        return Stamp(wall_ms, _FREE, wall_ms)

    def _kernel_synced(self) -> bool:
        with self._lock:
            mono = self._monotonic()
            cached = self._sync_cache
            if cached is None or not 0 <= mono - cached[1] < SYNC_CACHE_S:
                cached = self._sync_cache = (bool(self._synced()), mono)
            return cached[0]
