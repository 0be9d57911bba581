"""Online track thinning: what is dropped lies within the tolerance of what is kept, on random tracks."""

from __future__ import annotations

import math
import random
from itertools import pairwise
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.thinning import METRES_PER_DEGREE, LiveTrack, TrackThinner
from sync.records import Position, TimeSource

EARTH_RADIUS_M = METRES_PER_DEGREE * 180 / math.pi
EPSILON_M = 0.1
"""The thinner measures in an equirectangular projection, this test in the tangent plane: over the
test tracks' extent (at most 300 steps of 10 m) the two differ by under 0.07 m at 21.5° N."""


def unit(p: Position) -> np.ndarray:
    lat, lon = math.radians(p.lat), math.radians(p.lon)
    return np.array([math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)])


def distance_to_segment_m(p: Position, a: Position, b: Position) -> float:
    """Distance from ``p`` to the segment a..b in the plane tangent to the Earth at ``a``.

    Independent of the thinner's maths (3-D vectors, not an equirectangular projection); over a few
    kilometres it differs from the sphere by micrometres.
    """
    ua = unit(a)
    lat, lon = math.radians(a.lat), math.radians(a.lon)
    east = np.array([-math.sin(lon), math.cos(lon), 0.0])
    north = np.array([-math.sin(lat) * math.cos(lon), -math.sin(lat) * math.sin(lon), math.cos(lat)])

    def plane(q: Position) -> np.ndarray:
        d = unit(q) - ua  # small differences of unit vectors: exact to ~1e-16, i.e. a nanometre
        return np.array([np.dot(d, east), np.dot(d, north)]) * EARTH_RADIUS_M

    vp, vb = plane(p), plane(b)
    length2 = float(np.dot(vb, vb))
    t = min(1.0, max(0.0, float(np.dot(vp, vb)) / length2)) if length2 > 0 else 0.0
    return float(np.linalg.norm(vp - t * vb))


def thin(points: list[Position], tolerance_m: float, max_interval_s: float, max_window: int) -> list:
    thinner = TrackThinner(tolerance_m, max_interval_s, max_window)
    return [k for p in points for k in thinner.add(p)] + thinner.flush()


LEG_KINDS = ("straight", "loop", "back_and_forth", "jitter")


@st.composite
def tracks(draw) -> list[Position]:
    """A vessel's track off Vietnam: legs of straight runs, loops, back-and-forth and jitter at anchor.

    Steps of at most 10 m, 0..120 s apart (equal times too), with gaps of up to 3 h between legs.
    """
    rng = random.Random(draw(st.integers(0, 2**32)))  # GPS noise
    lat0, lon0 = draw(st.floats(8.5, 21.5)), draw(st.floats(102.5, 109.5))
    legs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(LEG_KINDS),
                st.integers(1, 60),  # points
                st.floats(0, 10),  # step length (m)
                st.floats(0, 360),  # heading at the start
                st.floats(-90, 90),  # turn per step (loops), degrees
                st.integers(0, 120),  # seconds between points
                st.sampled_from([0, 0, 0, 600, 3 * 3600]),  # gap before the leg (s)
            ),
            min_size=1,
            max_size=5,
        )
    )
    east = north = 0.0
    t_ms = 1_764_000_000_000
    points = []
    for kind, n, step, heading, turn, dt_s, gap_s in legs:
        t_ms += gap_s * 1000
        centre = (east, north)
        for i in range(n):
            if kind == "jitter":  # a GPS at anchor: scattered around one spot
                east, north = centre[0] + rng.gauss(0, step), centre[1] + rng.gauss(0, step)
            else:
                if kind == "loop":
                    heading += turn
                elif kind == "back_and_forth" and i % 7 == 6:
                    heading += 180
                east += step * math.sin(math.radians(heading)) + rng.gauss(0, 0.3)
                north += step * math.cos(math.radians(heading)) + rng.gauss(0, 0.3)
            t_ms += dt_s * 1000
            lat = lat0 + north / METRES_PER_DEGREE
            lon = lon0 + east / (METRES_PER_DEGREE * math.cos(math.radians(lat0)))
            points.append(Position(t_ms, TimeSource.GPS, t_ms, lat, lon))
    return points


@settings(max_examples=500, deadline=None)
@given(
    track=tracks(),
    tolerance_m=st.one_of(st.just(0.0), st.floats(0.5, 60)),
    max_interval_s=st.sampled_from([30, 600, 3600]),
    max_window=st.sampled_from([2, 16, 1024]),
)
def test_every_point_lies_within_the_tolerance_of_the_thinned_track(
    track, tolerance_m, max_interval_s, max_window
):
    kept = thin(track, tolerance_m, max_interval_s, max_window)
    assert kept[0] is track[0] and kept[-1] is track[-1]
    # The kept points are input points, in order, each once.
    where = {id(p): i for i, p in enumerate(track)}
    indexes = [where[id(k)] for k in kept]
    assert indexes == sorted(set(indexes))
    # Stronger than "within the tolerance of the polyline": of the segment between the kept points around it.
    for (i, a), (j, b) in pairwise(zip(indexes, kept, strict=True)):
        for point in track[i + 1 : j]:
            assert distance_to_segment_m(point, a, b) <= tolerance_m + EPSILON_M
    for (i, a), (j, b) in pairwise(zip(indexes, kept, strict=True)):
        # Longer only when the input itself had that gap: nothing came in between to keep.
        assert b.ts_ms - a.ts_ms <= max_interval_s * 1000 or j == i + 1
        assert j - i <= max_window
    if tolerance_m == 0:
        assert kept == track


def straight_course(n: int, step_s: int = 1) -> list[Position]:
    """Due east at about 5 m/s off Hue."""
    return [
        Position(i * step_s * 1000, TimeSource.GPS, i * step_s * 1000, 16.6, 107.6 + i * 5e-5)
        for i in range(n)
    ]


def test_a_straight_course_keeps_a_point_every_max_interval():
    kept = thin(straight_course(4 * 3600), tolerance_m=25, max_interval_s=3600, max_window=100_000)
    assert [k.ts_ms // 1000 for k in kept] == [0, 3600, 7200, 10800, 4 * 3600 - 1]


def test_a_full_window_keeps_its_newest_point():
    kept = thin(straight_course(1000), tolerance_m=25, max_interval_s=3600, max_window=300)
    assert [k.ts_ms // 1000 for k in kept] == [0, 300, 600, 900, 999]


def test_a_turn_keeps_the_corner():
    east = straight_course(100)
    corner = east[-1]
    north = [
        Position(corner.ts_ms + i * 1000, 1, 0, corner.lat + i * 5e-5, corner.lon) for i in range(1, 100)
    ]
    kept = thin(east + north, tolerance_m=10, max_interval_s=3600, max_window=1024)
    # The corner, or the first point after it: 5.5 m from the corner, so the corner is within 10 m.
    assert kept in ([east[0], corner, north[-1]], [east[0], north[0], north[-1]])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, 3600), "tolerance_m -1 is negative; expected >= 0"),
        ((10, 0), "max_interval_s 0 is not positive; expected > 0"),
        ((10, 3600, 0), "max_window 0 is below 1; expected >= 1"),
    ],
)
def test_bad_arguments_are_named(args, message):
    with pytest.raises(ValueError) as caught:
        TrackThinner(*args)
    assert str(caught.value) == message


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def live_track(profile: SimpleNamespace, idle_s: float = 10):
    sent: list[Position] = []
    clock = FakeTime()
    live = LiveTrack(lambda: profile, lambda stream, records: sent.extend(records), idle_s, clock)
    return live, sent, clock


def test_live_track_keeps_the_last_position_when_the_gps_goes_quiet():
    profile = SimpleNamespace(thin_tolerance_m=25, max_interval_s=3600)
    live, sent, clock = live_track(profile)
    course = straight_course(60)
    live.add(course[:30])
    live.add(course[30:])
    assert sent == [course[0]]
    clock.now = 9.9
    live.tick()
    assert sent == [course[0]]
    clock.now = 10
    live.tick()
    assert sent == [course[0], course[-1]]
    assert live.stats == {"in": 60, "live": 2}


def test_live_track_switches_profile_keeping_the_point_waiting():
    profile = SimpleNamespace(thin_tolerance_m=25, max_interval_s=3600)
    live, sent, _ = live_track(profile)
    course = straight_course(20)
    live.add(course[:10])
    profile.thin_tolerance_m = 0  # a cheap link: every position from now on
    live.add(course[10:])
    assert sent == [course[0], course[9]] + course[10:]


def test_live_track_stop_keeps_the_last_point():
    profile = SimpleNamespace(thin_tolerance_m=25, max_interval_s=3600)
    live, sent, _ = live_track(profile)
    live.start()
    course = straight_course(10)
    live.add(course)
    live.stop()
    assert sent == [course[0], course[-1]]


def test_random_jitter_at_anchor_is_mostly_dropped():
    rng = random.Random(3)
    spot = [
        Position(i * 1000, 1, i * 1000, 16.5 + rng.gauss(0, 2e-5), 107.6 + rng.gauss(0, 2e-5))
        for i in range(3600)
    ]
    kept = thin(spot, tolerance_m=15, max_interval_s=3600, max_window=1024)
    assert kept[0] is spot[0] and kept[-1] is spot[-1] and len(kept) < 40
