"""Summaries and local alarms: the arithmetic, the interval bookkeeping and the hysteresis."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from common.clock import Clock
from edge.alarms import AlarmEngine, Rule, RuleState, step, windowed
from edge.summary import Summarizer, slope_per_hour, stats
from sync.records import Reading, Summary

T0 = 1_764_000_000_000  # on a minute boundary


class FakeClock(Clock):
    """A clock the test moves by hand (NTP-synced, so stamps are ``ntp``)."""

    def __init__(self, ms: int) -> None:
        super().__init__(wall=lambda: self.ms / 1000, synced=lambda: True)
        self.ms = ms


def reading(sensor: str, quantity: str, ts_ms: int, value: float) -> Reading:
    return Reading(ts_ms, 2, ts_ms, sensor, quantity, value)


def test_stats_trims_outliers_at_both_ends():
    s = stats([10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0, 18.0, 999.0], trim=0.1)
    assert (s.count, s.min, s.max, s.total) == (10, 10.0, 999.0, 1125.0)
    assert s.mean == pytest.approx(112.5)
    assert s.trimmed_mean == pytest.approx(14.5)  # 999 and 10 left out


def test_slope_per_hour_of_a_rising_river():
    points = [(T0 + i * 60_000, 2.0 + 0.01 * i) for i in range(30)]  # 1 cm a minute
    assert slope_per_hour(points) == pytest.approx(0.6)
    assert slope_per_hour(points[:1]) is None


def collect() -> tuple[list, Callable[[str, list], None]]:
    out: list = []
    return out, lambda stream, records: out.extend((stream, r) for r in records)


def test_summaries_per_interval_with_rain_rate_and_rejects():
    clock = FakeClock(T0 + 5_000)
    out, sink = collect()
    rejects = Counter()
    summarizer = Summarizer(
        sink,
        clock,
        interval_s=60,
        trim=0.0,
        expected=[("rain", "rain_mm")],
        rejects={"pm-1": lambda: rejects},
    )
    summarizer.emit()  # starts the bookkeeping: nothing has ended yet
    assert out == []
    summarizer.add([reading("pm-1", "pm25", T0 + i * 1000, 10.0 + i) for i in range(60)])
    summarizer.add([reading("rain", "rain_mm", T0 + 30_000 + i, 0.2) for i in range(3)])
    rejects["bad_checksum"] += 2
    clock.ms = T0 + 61_000
    summarizer.emit()
    rows = [r for stream, r in out if stream == "summary"]
    by_key = {(r.sensor, r.quantity): r for r in rows}
    assert set(by_key) == {("pm-1", "pm25"), ("rain", "rain_mm"), ("rain", "rain_mm_per_h")}
    pm = by_key[("pm-1", "pm25")]
    assert (pm.ts_ms, pm.interval_s, pm.count, pm.min, pm.max, pm.rejected) == (T0, 60, 60, 10.0, 69.0, 2)
    assert pm.mean == pytest.approx(39.5)
    assert by_key[("rain", "rain_mm")].total == pytest.approx(0.6)
    assert by_key[("rain", "rain_mm_per_h")].mean == pytest.approx(36.0)  # 0.6 mm in a minute
    # The next minute: no tip, still a rain summary of 0 mm; the PM sensor is quiet and absent.
    out.clear()
    clock.ms = T0 + 121_000
    summarizer.emit()
    rain = [r for _, r in out if r.quantity == "rain_mm"]
    assert rain == [
        Summary(T0 + 60_000, 2, T0 + 121_000, "rain", "rain_mm", 60, 0, None, None, None, None, 0.0, 0)
    ]


def test_a_clock_jump_does_not_produce_a_string_of_empty_intervals():
    clock = FakeClock(1_000)  # a node booted at 1970
    out, sink = collect()
    summarizer = Summarizer(sink, clock, interval_s=60, expected=[("rain", "rain_mm")])
    summarizer.emit()
    clock.ms = T0  # GPS or NTP sets the clock
    summarizer.emit()
    clock.ms = T0 + 60_000
    summarizer.emit()
    assert [r.ts_ms for _, r in out if r.quantity == "rain_mm"] == [T0]


def test_hysteresis_raises_once_and_clears_once_when_hovering():
    rule = Rule("flood", "river", "water_level_m", above=3.5, hysteresis=0.1)
    state = RuleState()
    levels = [3.0, 3.49, 3.51, 3.45, 3.55, 3.42, 3.6, 3.41, 3.39, 3.45, 3.3]
    changes = [step(rule, state, v) for v in levels]
    assert [c for c in changes if c] == ["raise", "clear"]
    assert changes.index("raise") == 2 and changes.index("clear") == 8


def test_below_rule():
    rule = Rule("dry", "tank", "water_level_m", below=0.5, hysteresis=0.05)
    state = RuleState()
    assert [step(rule, state, v) for v in (0.6, 0.49, 0.52, 0.56)] == [None, "raise", None, "clear"]


def test_windowed_values():
    tips = [(T0 + i * 10_000, 0.2) for i in range(6)]  # 1.2 mm in the last minute
    assert windowed(
        Rule("r", "rain", "rain_mm_per_h", above=50, window_s=60), tips, T0 + 55_000
    ) == pytest.approx(72)
    pm = [(T0 + i * 1000, float(i)) for i in range(10)]
    assert windowed(Rule("p", "pm", "pm25", above=55, window_s=5), pm, T0 + 9_000) == pytest.approx(7.0)


def test_engine_raises_on_readings_and_clears_on_ticks_when_the_rain_stops():
    clock = FakeClock(T0)
    out, sink = collect()
    engine = AlarmEngine(
        [Rule("heavy_rain", "rain", "rain_mm_per_h", above=50, hysteresis=10, window_s=60)], sink, clock
    )
    engine.feed([reading("rain", "rain_mm", T0 + i * 2_000, 0.5) for i in range(10)])  # 5 mm in 20 s
    assert [(a.source, a.kind, a.state) for _, a in out] == [("rain", "heavy_rain", 1)]
    clock.ms = T0 + 90_000  # a minute without a tip
    engine.tick()
    assert [(a.kind, a.state) for _, a in out] == [("heavy_rain", 1), ("heavy_rain", 0)]
    assert out[1][1].message.startswith("heavy_rain cleared: rain_mm_per_h 0.000 (above 50")
    engine.tick()
    assert len(out) == 2


def test_engine_keeps_one_state_per_sensor_for_a_wildcard_rule():
    clock = FakeClock(T0)
    out, sink = collect()
    engine = AlarmEngine([Rule("pm_bad", "*", "pm25", above=55.5, hysteresis=5)], sink, clock)
    engine.feed([reading("pm-1", "pm25", T0, 60.0), reading("pm-2", "pm25", T0, 30.0)])
    engine.feed([reading("pm-1", "pm25", T0 + 1000, 70.0), reading("pm-2", "pm25", T0 + 1000, 80.0)])
    assert [(a.source, a.state) for _, a in out] == [("pm-1", 1), ("pm-2", 1)]
