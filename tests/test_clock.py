"""The clock's time provenance: GPS while fresh, NTP when synchronised and sane, else FREE."""

from __future__ import annotations

from common.clock import Clock, Stamp, kernel_clock_synced
from sync.records import TimeSource

WALL_2024 = 1_711_000_000.0


class FakeTime:
    def __init__(self, wall: float) -> None:
        self.wall, self.mono = wall, 100.0

    def clock(self, synced: bool) -> Clock:
        return Clock(wall=lambda: self.wall, synced=lambda: synced, monotonic=lambda: self.mono)


def test_free_when_not_synced_even_in_1970():
    t = FakeTime(5.0)
    assert t.clock(synced=False).now() == Stamp(5000, TimeSource.FREE, 5000)
    assert t.clock(synced=True).now() == Stamp(5000, TimeSource.FREE, 5000)  # synced but 1970: not trusted


def test_ntp_when_kernel_synced_after_2020():
    t = FakeTime(WALL_2024)
    assert t.clock(synced=True).now() == Stamp(1_711_000_000_000, TimeSource.NTP, 1_711_000_000_000)
    assert t.clock(synced=False).now().tsrc == TimeSource.FREE


def test_gps_time_advances_on_monotonic_time_and_expires_after_600_s():
    t = FakeTime(5.0)
    clock = t.clock(synced=False)
    clock.observe_gps(1_700_000_000_000)
    t.mono += 1.5
    t.wall = 3.0  # the wall clock jumping back must not matter
    assert clock.now() == Stamp(1_700_000_001_500, TimeSource.GPS, 3000)
    t.mono += 598.5
    assert clock.now().tsrc == TimeSource.GPS
    t.mono += 0.001
    assert clock.now() == Stamp(3000, TimeSource.FREE, 3000)


def test_kernel_clock_synced_answers_a_bool():
    assert kernel_clock_synced() in (True, False)
