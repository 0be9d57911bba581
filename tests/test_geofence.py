"""Geofences: a track crossing and hovering on a boundary, forbidden areas, restarts, and the config."""

from __future__ import annotations

import doctest
import json
import os
import time
from pathlib import Path

import pytest
from helpers import nmea_fix, wait_for
from support_geofence import HOURS_48, LAT, SQUARE, T0, lon_east, outage_track
from support_nodes import node_toml, write_config

import edge.geofence
from edge.config import ConfigError, NodeConfig, parse_config
from edge.geofence import STATE_KEY, Geofence, GeofenceMonitor, load_geojson, metres_per_degree
from edge.runtime import open_store
from ioc.receiver import Receiver
from sync.records import Alarm, Position
from sync.uplink import MqttUplink

# Metres east of the east edge (positive: outside the square): in, hovering on the line (crossing
# it 14 times, never 50 m beyond), out, hovering again from outside, back in.
HOVERING = [-500, -300, -100, -40, 30, -20, 45, -45, 10, 40, -30, 20, 120, 300, 500]
HOVERING += [40, -30, 45, -45, 20, -10, 35, -120, -400]


def track(metres: list[float], fix: int | None = 1) -> list[Position]:
    """One position a second at ``metres`` east of the east edge."""
    return [
        Position(T0 + i * 1000, 1, T0 + i * 1000 + 7, LAT, lon_east(m), fix=fix) for i, m in enumerate(metres)
    ]


class Alarms:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.records: list[Alarm] = []

    def __call__(self, stream: str, records: list) -> None:
        assert stream == "alarm"
        self.records += records


def watch(fence: Geofence, positions: list[Position], raised=(), one_by_one: bool = True) -> list[Alarm]:
    sink = Alarms()
    monitor = GeofenceMonitor([fence], sink, raised)
    if one_by_one:  # as a GPS delivers them
        for p in positions:
            monitor.feed([p])
    else:
        monitor.feed(positions)
    return sink.records


@pytest.mark.parametrize("one_by_one", [True, False])
def test_a_track_crossing_and_hovering_on_the_line_raises_once_and_clears_once(one_by_one):
    fence = Geofence("tam-giang", "permitted", [[SQUARE]], hysteresis_m=50)
    alarms = watch(fence, track(HOVERING), one_by_one=one_by_one)
    assert [(a.source, a.kind, a.state) for a in alarms] == [
        ("tam-giang", "geofence_left", 1),
        ("tam-giang", "geofence_left", 0),
    ]
    raised, cleared = alarms
    out_at, back_at = HOVERING.index(120), HOVERING.index(-120)
    assert (raised.ts_ms, raised.tsrc, raised.clock_ms) == (T0 + out_at * 1000, 1, T0 + out_at * 1000 + 7)
    assert raised.value == pytest.approx(120, abs=0.5)
    assert raised.message == f"left permitted zone tam-giang by 120 m at 16.6200 N {lon_east(120):.4f} E"
    assert cleared.ts_ms == T0 + back_at * 1000
    assert cleared.value == pytest.approx(-120, abs=0.5)
    assert (
        cleared.message
        == f"back in permitted zone tam-giang, 120 m inside, at 16.6200 N {lon_east(-120):.4f} E"
    )


def test_without_hysteresis_the_same_track_flaps():
    # What the test above guards against: the hovering points do cross the line.
    fence = Geofence("tam-giang", "permitted", [[SQUARE]], hysteresis_m=0)
    alarms = watch(fence, track(HOVERING))
    assert len(alarms) == 14
    assert [a.state for a in alarms] == [1, 0] * 7


def test_a_forbidden_area_raises_on_entering_and_clears_on_leaving():
    fence = Geofence("hai-van-reserve", "forbidden", [[SQUARE]], hysteresis_m=20)
    # From outside (east of the square) in, hovering just inside, then out again.
    alarms = watch(fence, track([300, 100, 10, -15, 5, -60, -200, -10, 15, 5, 80]))
    assert [(a.source, a.kind, a.state, round(a.value)) for a in alarms] == [
        ("hai-van-reserve", "geofence_entered", 1, 60),
        ("hai-van-reserve", "geofence_entered", 0, -80),
    ]
    assert (
        alarms[0].message
        == f"entered forbidden area hai-van-reserve by 60 m at 16.6200 N {lon_east(-60):.4f} E"
    )
    assert (
        alarms[1].message
        == f"left forbidden area hai-van-reserve, 80 m out, at 16.6200 N {lon_east(80):.4f} E"
    )


def test_distance_is_metres_on_the_wgs84_ellipsoid():
    # A square about 15 N, where a degree of longitude is 107,550 m and one of latitude 110,649 m
    # (the WGS 84 tables); points 0.01 degree beyond its east and north edges, and inside.
    square = [(107.50, 14.98), (107.56, 14.98), (107.56, 15.02), (107.50, 15.02), (107.50, 14.98)]
    fence = Geofence("z", "permitted", [[square]], hysteresis_m=50)
    beyond = fence.beyond([15.0, 15.0, 15.03], [107.57, 107.55, 107.53])
    assert beyond[0] == pytest.approx(1075.50, rel=1e-4)
    assert beyond[1] == pytest.approx(-1075.50, rel=1e-4)
    assert beyond[2] == pytest.approx(1106.49, rel=1e-4)


def test_positions_without_a_valid_fix_are_skipped_and_counted():
    sink = Alarms()
    monitor = GeofenceMonitor([Geofence("tam-giang", "permitted", [[SQUARE]])], sink)
    monitor.feed(track([500], fix=0) + track([500], fix=6))  # no fix; dead reckoning
    assert sink.records == [] and monitor.counts == {"no_fix": 2}
    monitor.feed(track([500], fix=None))  # RMC alone, status A: a fix
    assert [a.state for a in sink.records] == [1]
    assert monitor.counts == {"no_fix": 2, "raised": 1}


def test_restart_outside_without_saved_state_raises_at_the_first_position():
    fence = Geofence("tam-giang", "permitted", [[SQUARE]])
    assert [a.state for a in watch(fence, track([400, 400]))] == [1]
    assert watch(fence, track([-400, -400])) == []


def test_restart_with_the_alarm_saved_up_clears_on_return_and_does_not_raise_again():
    fence = Geofence("tam-giang", "permitted", [[SQUARE]])
    assert watch(fence, track([400, 30]), raised=["tam-giang"]) == []
    assert [(a.state, round(a.value)) for a in watch(fence, track([-30, -400]), raised=["tam-giang"])] == [
        (0, -400)
    ]


def test_the_saved_state_follows_each_change():
    saved: list[set[str]] = []
    fences = [Geofence("a", "permitted", [[SQUARE]]), Geofence("b", "forbidden", [[SQUARE]])]
    monitor = GeofenceMonitor(fences, Alarms(), ["b", "gone"], saved.append)  # "gone": no such zone now
    assert monitor.raised == {"b"}
    monitor.feed(track([400]))  # out of a (raise), out of b (clear)
    assert saved == [{"a"}]
    monitor.feed(track([300]))  # no change, nothing saved
    assert saved == [{"a"}]


def test_a_hole_is_outside_the_zone_and_its_edge_a_boundary():
    hole = [(107.52, 16.61), (107.54, 16.61), (107.54, 16.63), (107.52, 16.63), (107.52, 16.61)]
    fence = Geofence("tam-giang", "permitted", [[SQUARE, hole]], hysteresis_m=50)
    centre = fence.beyond([16.62], [107.53])[0]
    assert centre == pytest.approx(0.01 * metres_per_degree(16.62)[0], rel=1e-3)  # to the hole's edge


def write_geojson(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj))
    return path


def feature(coordinates: list, kind: str = "Polygon") -> dict:
    return {"type": "Feature", "properties": {}, "geometry": {"type": kind, "coordinates": coordinates}}


def square(west: float, south: float, size: float) -> list[list[float]]:
    return [
        [west, south],
        [west + size, south],
        [west + size, south + size],
        [west, south + size],
        [west, south],
    ]


def test_a_geojson_feature_collection_is_one_zone_of_several_polygons(tmp_path):
    zones = tmp_path / "zones"
    zones.mkdir()
    write_geojson(
        zones / "permit.geojson",
        {
            "type": "FeatureCollection",
            "features": [
                feature([square(107.50, 16.60, 0.04)]),
                feature([[square(107.60, 16.60, 0.04)], [square(107.70, 16.60, 0.04)]], "MultiPolygon"),
            ],
        },
    )
    text = """\
[node]
device_id = "vessel-042"

[geofences.permit]
kind = "permitted"
geojson = "zones/permit.geojson"
"""
    config = parse_config(text, "edge.toml", tmp_path)
    zone = config.geofences["permit"]
    assert zone.geojson == zones / "permit.geojson" and zone.hysteresis_m == 50
    fence = Geofence("permit", zone.kind, zone.area(), zone.hysteresis_m)
    inside = fence.beyond([16.62, 16.62, 16.62], [107.52, 107.62, 107.72])
    assert all(m < -2000 for m in inside)
    assert fence.beyond([16.62], [107.55])[0] == pytest.approx(0.01 * metres_per_degree(16.62)[0], rel=1e-3)


def test_a_bare_geometry_and_a_feature_are_accepted(tmp_path):
    geometry = {"type": "Polygon", "coordinates": [square(107.5, 16.6, 0.04)]}
    assert load_geojson(write_geojson(tmp_path / "a.geojson", geometry)) == [
        [[tuple(p) for p in square(107.5, 16.6, 0.04)]]
    ]
    assert load_geojson(
        write_geojson(tmp_path / "b.geojson", feature(geometry["coordinates"]))
    ) == load_geojson(tmp_path / "a.geojson")


# --- config errors -----------------------------------------------------------------------------


def problems(zone: str, base_dir: Path = Path("/etc/ioc-edge")) -> list[str]:
    text = f'[node]\ndevice_id = "vessel-042"\n\n[geofences.zone]\n{zone}'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "edge.toml", base_dir)
    return caught.value.problems


def test_inline_polygon_config_and_defaults():
    text = """\
[node]
device_id = "v"

[geofences.tam-giang]
kind = "permitted"
polygon = [[107.5, 16.6], [107.56, 16.6], [107.56, 16.64], [107.5, 16.6]]
hysteresis_m = 30
"""
    zone = parse_config(text, "edge.toml", "/etc/ioc-edge").geofences["tam-giang"]
    assert (zone.kind, zone.hysteresis_m, zone.geojson) == ("permitted", 30, None)
    assert zone.area() == [[[(107.5, 16.6), (107.56, 16.6), (107.56, 16.64), (107.5, 16.6)]]]


def test_swapped_lat_lon_is_named_with_what_to_do():
    assert problems(
        'kind = "forbidden"\npolygon = [\n  [16.6, 107.5], [16.6, 107.56], [16.64, 107.56], [16.6, 107.5],\n]'
    ) == [
        "geofences.zone.polygon (edge.toml line 6): point 1: latitude 107.5 is beyond ±90: "
        "expected [lon, lat] (GeoJSON order); are the two swapped?"
    ]


def test_an_unclosed_ring_is_refused():
    assert problems('kind = "forbidden"\npolygon = [[107.5, 16.6], [107.56, 16.6], [107.56, 16.64]]\n') == [
        "geofences.zone.polygon (edge.toml line 6): the ring is not closed: its last point [107.56, 16.64] "
        "is not its first [107.5, 16.6]; repeat the first point at the end"
    ]


def test_a_self_intersecting_ring_is_refused_where_it_crosses():
    # A bow tie: the corners in the wrong order.
    bow_tie = "[[107.5, 16.6], [107.56, 16.64], [107.56, 16.6], [107.5, 16.64], [107.5, 16.6]]"
    assert problems(f'kind = "forbidden"\npolygon = {bow_tie}\n') == [
        "geofences.zone.polygon (edge.toml line 6): edges cross at [107.53, 16.62]: check the order of the "
        "points (a ring must not cross itself, and the polygons of one zone must not overlap)"
    ]


def test_too_few_points_and_other_field_errors():
    assert problems('kind = "forbidden"\npolygon = [[107.5, 16.6], [107.56, 16.6], [107.5, 16.6]]\n') == [
        "geofences.zone.polygon (edge.toml line 6): 2 distinct point(s); expected at least 3 corners"
    ]
    assert problems('kind = "allowed"\npolygon = [[0, 0], [1, 0], [1, 1], [0, 0]]\nhysteresis_m = -1\n') == [
        "geofences.zone.kind (edge.toml line 5): 'allowed' is not allowed; "
        "expected one of: 'permitted', 'forbidden'",
        "geofences.zone.hysteresis_m (edge.toml line 7): -1 is too small; expected >= 0",
    ]
    assert problems('kind = "permitted"\n') == [
        "geofences.zone (edge.toml line 4): set exactly one of 'polygon' and 'geojson'"
    ]


@pytest.mark.parametrize(("kind", "never"), [("permitted", "cleared"), ("forbidden", "raised")])
def test_a_hysteresis_the_zone_is_too_narrow_for_is_refused(kind, never):
    # A strip 0.001 degree (111 m) wide: no point is more than 55 m inside it.
    strip = "[[107.5, 16.6], [107.6, 16.6], [107.6, 16.601], [107.5, 16.601], [107.5, 16.6]]"
    assert problems(f'kind = "{kind}"\npolygon = {strip}\nhysteresis_m = 60\n') == [
        "geofences.zone (edge.toml line 4): hysteresis_m 60 is too large for this zone: no point lies more "
        f"than 55 m inside it, so its alarm could never be {never}; set hysteresis_m below 55"
    ]
    text = (
        f'[node]\ndevice_id = "v"\n[geofences.zone]\nkind = "{kind}"\npolygon = {strip}\nhysteresis_m = 50\n'
    )
    assert parse_config(text).geofences["zone"].hysteresis_m == 50


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "file not found"),
        (
            '{"type": "Polygon",\n "coordinates": [[[107.5, 16.6],]]}',
            "not JSON: Expecting value at line 2, column 33",
        ),
        (
            json.dumps(
                {
                    "type": "FeatureCollection",
                    "features": [
                        feature([square(107.5, 16.6, 0.01)]),
                        feature([[107.5, 16.6], [107.6, 16.7]], "LineString"),
                    ],
                }
            ),
            "feature 2: a LineString is not an area; expected a Polygon or a MultiPolygon",
        ),
        (
            json.dumps(feature([[[16.6, 107.5], [16.6, 107.56], [16.64, 107.56], [16.6, 107.5]]])),
            "outer ring, point 1: latitude 107.5 is beyond ±90: "
            "expected [lon, lat] (GeoJSON order); are the two swapped?",
        ),
        (
            json.dumps(
                {
                    "type": "MultiPolygon",
                    "coordinates": [[square(107.5, 16.6, 0.04)], [square(107.52, 16.62, 0.04)]],
                }
            ),
            "edges cross at [107.52, 16.64]: check the order of the points (a ring must not cross itself, "
            "and the polygons of one zone must not overlap)",
        ),
        (
            json.dumps({"type": "GeometryCollection", "geometries": []}),
            "a GeometryCollection is not an area; expected a Polygon or a MultiPolygon",
        ),
    ],
)
def test_an_unusable_geojson_file_is_named_with_what_is_wrong(tmp_path, content, error):
    if content is not None:
        (tmp_path / "zone.geojson").write_text(content)
    assert problems('kind = "permitted"\ngeojson = "zone.geojson"\n', tmp_path) == [
        f"geofences.zone.geojson (edge.toml line 6): {tmp_path / 'zone.geojson'}: {error}"
    ]


# --- through a node --------------------------------------------------------------------------

# Node-side behaviour: the IOC's database engine plays no part, so these run on SQLite only.
NODE_SIDE = pytest.mark.parametrize("ioc_db_url", ["sqlite"], indirect=True)


def vessel_config(tmp_path: Path, port: int, transport: str, uplink: bool = True) -> NodeConfig:
    text = f"""{node_toml(tmp_path, "vessel-042", port, uplink=f"enabled = {str(uplink).lower()}")}
[drivers.gps]
type = "nmea"

[drivers.gps.transport]
{transport}

[geofences.tam-giang]
kind = "permitted"
polygon = {json.dumps(SQUARE).replace("(", "[").replace(")", "]")}
hysteresis_m = 50
"""
    return write_config(tmp_path, text)


def write_track(master: int, metres: list[float], start: int = 0) -> None:
    """Fixes at ``metres`` east of the east edge into the pty, one a second from ``T0 + start`` s."""
    for i, m in enumerate(metres, start=start):
        os.write(master, nmea_fix(T0 + i * 1000, LAT, lon_east(m)))


def stored_alarms(config: NodeConfig) -> list[Alarm]:
    store = open_store(config)
    try:
        return store.read("alarm", 0, 100)[1]
    finally:
        store.close()


@NODE_SIDE
def test_nmea_on_a_pty_crossing_and_hovering_reaches_the_ioc_as_one_raise_and_one_clear(
    tmp_path, broker, receiver, ioc_db, run_node, pty_pair
):
    master, slave = pty_pair
    config = vessel_config(tmp_path, broker.port, f'type = "pty"\npath = "{slave}"')
    node = run_node(config)
    os.write(master, b"\r\n")  # the first line of a stream counts as cut; let it be an empty one
    write_track(master, [*HOVERING, -400])  # the last fix is complete when the next one begins
    wait_for(
        lambda: ioc_db.count("position") >= len(HOVERING) and ioc_db.count("alarm") >= 2,
        30,
        "positions and alarms",
    )
    time.sleep(0.5)  # anything more would have arrived by now
    positions = [(p["ts_ms"], p["tsrc"]) for p in ioc_db.dump("position", "vessel-042")]
    assert positions == [(T0 + i * 1000, "gps") for i in range(len(HOVERING))]
    alarms = list(ioc_db.dump("alarm", "vessel-042"))
    out_at, back_at = HOVERING.index(120), HOVERING.index(-120)
    assert [(a["source"], a["kind"], a["state"], a["ts_ms"], a["tsrc"]) for a in alarms] == [
        ("tam-giang", "geofence_left", 1, T0 + out_at * 1000, "gps"),
        ("tam-giang", "geofence_left", 0, T0 + back_at * 1000, "gps"),
    ]
    assert (
        alarms[0]["message"] == f"left permitted zone tam-giang by 120 m at 16.6200 N {lon_east(120):.4f} E"
    )
    assert alarms[0]["value"] == pytest.approx(120, abs=0.5)
    assert alarms[1]["value"] == pytest.approx(-120, abs=0.5)
    node.stop()
    store = open_store(config)
    try:
        assert store.counters("geofence") == {"raised": 1, "cleared": 1}  # as `ioc-edge status` shows them
        assert store.meta(STATE_KEY) == "[]"
    finally:
        store.close()


def test_a_node_restarted_while_raised_clears_on_return_and_does_not_raise_twice(
    tmp_path, run_node, pty_pair
):
    master, slave = pty_pair
    config = vessel_config(tmp_path, 1, f'type = "pty"\npath = "{slave}"', uplink=False)
    node = run_node(config)
    os.write(master, b"\r\n")
    write_track(master, [-300, 200, 400, 400])
    wait_for(lambda: node.drivers[0].records == 3, 10, "three fixes")
    node.stop()  # the boat is out, the alarm up
    assert [a.state for a in stored_alarms(config)] == [1]
    node = run_node(config)
    os.write(master, b"\r\n")
    write_track(master, [400, 30, -30, -300, -300], start=10)  # still out after the restart, then back
    wait_for(lambda: node.drivers[0].records == 4, 10, "four fixes")
    node.stop()
    alarms = stored_alarms(config)
    assert [(a.state, a.ts_ms) for a in alarms] == [(1, T0 + 1000), (0, T0 + 13_000)]


@NODE_SIDE
def test_48_hours_offline_replayed_fast_every_position_arrives_with_the_geofence_alarms_first(
    tmp_path, broker, ioc_db, run_node
):
    capture = tmp_path / "48h.nmea"
    with open(capture, "wb") as out:
        out.write(b"\r\n")
        for second in range(HOURS_48):  # the end of the replay completes the last fix
            out.write(nmea_fix(T0 + second * 1000, LAT, lon_east(outage_track(second))))
    # The link is down for the whole of it: the replay runs with no uplink at all.
    node = run_node(
        vessel_config(tmp_path, broker.port, f'type = "replay"\npath = "{capture}"\nspeed = 0', False)
    )
    wait_for(lambda: node.drivers[0].records == HOURS_48, 60, "48 hours of positions")
    node.recorder.stop()  # every position and alarm committed
    assert [(a.state, a.ts_ms) for a in stored_alarms(node.config)] == [
        (1, T0 + 20 * 3600 * 1000),  # the first second past the hovering: 75 m out
        (0, T0 + 26 * 3600 * 1000),
    ]
    # The link comes back with the IOC listening.
    receiver = Receiver(ioc_db, broker.host, broker.port, client_id="ioc-test")
    receiver.start()
    assert receiver.subscribed.wait(10)
    uplink = MqttUplink(open_store(node.config), "vessel-042", node.config.uplink)
    uplink.start()
    try:
        wait_for(lambda: ioc_db.count("position") == HOURS_48, 180, "every position at the IOC")
    finally:
        uplink.stop()
        uplink.store.close()
        receiver.stop()
    alarms = list(ioc_db.dump("alarm", "vessel-042"))
    assert [(a["kind"], a["state"]) for a in alarms] == [("geofence_left", 1), ("geofence_left", 0)]
    first_position = ioc_db.fetch("SELECT MIN(received_ms) AS t FROM rec_position")[0]["t"]
    assert max(a["received_ms"] for a in alarms) <= first_position  # the alarm lane went first
    times = [r["ts_ms"] for r in ioc_db.fetch("SELECT ts_ms FROM rec_position ORDER BY seq")]
    assert times == [T0 + s * 1000 for s in range(HOURS_48)]


def test_the_examples_in_the_docstrings_hold():
    assert doctest.testmod(edge.geofence, optionflags=doctest.ELLIPSIS).failed == 0
