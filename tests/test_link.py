"""Link profiles: which link is up; positions thinned on a costly link, held streams sent on a cheap one."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from helpers import cli, wait_for
from support_nodes import assert_same_positions, expected_positions, node_config

from edge.cli import main as edge_cli
from edge.config import ConfigError, LinkConfig, parse_config
from edge.link import LinkMonitor, default_route_interface
from edge.runtime import open_store
from edge.thinning import TrackThinner
from sync.records import Position

HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
# As Linux writes it: the modem's default route (metric 700), Wi-Fi's (metric 600), a LAN route.
ROUTES = HEADER + (
    "ppp0\t00000000\t00000000\t0001\t0\t0\t700\t00000000\t0\t0\t0\n"
    "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
    "wlan0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0\n"
)


def route_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "route"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "interface"),
    [
        (ROUTES, "wlan0"),  # the lowest metric of the default routes
        (ROUTES.replace("\t0003\t0\t0\t600", "\t0002\t0\t0\t600"), "ppp0"),  # wlan0's route is down
        (HEADER + "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n", None),  # no default
        (HEADER, None),
        (HEADER + "garbage\n" + "eth0\tzz\t0\t0001\t0\t0\t0\t00000000\t0\t0\t0\n", None),
    ],
)
def test_default_route_interface_from_a_route_table(tmp_path, text, interface):
    assert default_route_interface(route_file(tmp_path, text)) == interface


def link_config(tmp_path: Path, extra: str = "") -> LinkConfig:
    text = f"""
[node]
device_id = "vessel-042"

[link]
file = "link"
interfaces = {{ wlan0 = "cheap", ppp0 = "satellite" }}
{extra}

[link.profiles.satellite]
thin_tolerance_m = 25
max_interval_s = 1800
hold = ["status", "event"]

[link.profiles.cheap]
"""
    return parse_config(text, "edge.toml", tmp_path).link


def test_the_link_file_wins_then_the_route_then_the_default(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="edge.link")
    config = link_config(tmp_path, 'default = "satellite"')
    routes = route_file(tmp_path, ROUTES)
    (tmp_path / "link").write_text("satellite\n")
    monitor = LinkMonitor(config, routes)
    assert (monitor.name, monitor.source) == ("satellite", "file")
    assert monitor.profile.thin_tolerance_m == 25 and monitor.held() == {"status", "event"}
    (tmp_path / "link").unlink()
    assert monitor.check() is True
    assert (monitor.name, monitor.source) == ("cheap", "interface")
    assert monitor.held() == frozenset()
    assert monitor.check() is False
    routes.write_text(HEADER)
    monitor.check()
    assert (monitor.name, monitor.source) == ("satellite", "default")
    changes = [r.getMessage() for r in caplog.records if "link_changed" in r.getMessage()]
    assert changes == [
        f"event=link_changed profile=satellite previous=none source=file file={tmp_path / 'link'}",
        "event=link_changed profile=cheap previous=satellite source=interface interface=wlan0",
        "event=link_changed profile=satellite previous=cheap source=default interface=none",
    ]


def test_an_unknown_name_in_the_link_file_is_logged_once_and_ignored(tmp_path, caplog):
    config = link_config(tmp_path)
    (tmp_path / "link").write_text("starlink\n")
    monitor = LinkMonitor(config, route_file(tmp_path, ROUTES))
    monitor.check()
    assert (monitor.name, monitor.source) == ("cheap", "interface")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"event=link_file_unknown file={tmp_path / 'link'} profile='starlink' profiles=cheap,satellite "
        "action=ignored"
    ]


def test_an_unreadable_route_table_means_the_default(tmp_path, caplog):
    monitor = LinkMonitor(link_config(tmp_path), tmp_path / "no-such-route")
    assert (monitor.name, monitor.source) == ("satellite", "default")
    assert [r.getMessage().split(" error=")[0] for r in caplog.records] == [
        f"event=link_route_unreadable file={tmp_path / 'no-such-route'}"
    ]


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        (
            '[link]\ninterfaces = { ppp0 = "satelite" }\n[link.profiles.satellite]\n',
            "link.interfaces (edge.toml line 4): interface 'ppp0': 'satelite' is not a profile; "
            "expected one of: satellite",
        ),
        (
            '[link]\ndefault = "sat"\n[link.profiles.satellite]\n[link.profiles.cheap]\n',
            "link.default (edge.toml line 4): 'sat' is not a profile; expected one of: cheap, satellite",
        ),
        (
            "[link]\n",
            "link.default (edge.toml line 3): 'satellite' is not a profile; "
            "expected one of: none; add [link.profiles.satellite]",
        ),
        (
            '[link]\n[link.profiles.satellite]\nhold = ["alarm"]\n',
            "link.profiles.satellite.hold (edge.toml line 5): 'alarm' cannot be held: "
            "alarms are always sent; remove it from hold",
        ),
        (
            '[link]\n[link.profiles.satellite]\nhold = ["track", "position"]\n',
            "link.profiles.satellite.hold (edge.toml line 5): 'position' cannot be held: "
            "it is the live track; thin it with thin_tolerance_m instead",
        ),
        (
            '[link]\n[link.profiles.satellite]\nhold = ["trak"]\n',
            "link.profiles.satellite.hold (edge.toml line 5): 'trak' is not a stream; expected some of: ",
        ),
        (
            "[link]\n[link.profiles.satellite]\nmax_interval_s = 9000\n",
            "link.profiles.satellite.max_interval_s (edge.toml line 5): 9000 is too large; expected <= 7200",
        ),
        (
            "[link]\n[link.profiles.satellite]\nthin_tolerance_m = -1\n",
            "link.profiles.satellite.thin_tolerance_m (edge.toml line 5): -1 is too small; expected >= 0",
        ),
    ],
)
def test_link_config_errors_name_the_key(section, problem):
    with pytest.raises(ConfigError) as caught:
        parse_config(f'[node]\ndevice_id = "vessel-042"\n{section}', "edge.toml")
    assert len(caught.value.problems) == 1
    if problem.endswith(": "):  # the list of streams grows as streams are added
        assert caught.value.problems[0].startswith(problem)
        assert "status" in caught.value.problems[0]
        assert "alarm" not in caught.value.problems[0] and "position" not in caught.value.problems[0]
    else:
        assert caught.value.problems[0] == problem


def test_without_a_link_section_there_is_no_link():
    assert parse_config('[node]\ndevice_id = "vessel-042"\n').link is None


NODE_SIDE = pytest.mark.parametrize("ioc_db_url", ["sqlite"], indirect=True)
LINK = """
[link]
file = "{file}"
poll_s = 0.2

[link.profiles.satellite]
thin_tolerance_m = 1
max_interval_s = 3600
hold = ["status"]

[link.profiles.cheap]
"""


@NODE_SIDE
def test_on_satellite_the_ioc_gets_the_thinned_track_and_held_streams_follow_on_a_cheap_link(
    shared_dir, tmp_path, broker, receiver, ioc_db, run_node, caplog
):
    path = shared_dir / "nmea" / "ais-nmea.log"
    positions = [Position(**p) for p in expected_positions(path)]
    thinner = TrackThinner(1, 3600)
    thinned = [k._asdict() for k in [k for p in positions for k in thinner.add(p)] + thinner.flush()]
    assert 2 < len(thinned) < len(positions) / 4  # a vessel in port: mostly the GPS's wander
    link_file = tmp_path / "link"
    link_file.write_text("satellite\n")
    config = node_config(
        tmp_path,
        broker.port,
        f'type = "replay"\npath = "{path}"\nspeed = 0',
        extra=LINK.format(file=link_file),
    )
    node = run_node(config)
    # The last point goes when the GPS has been quiet for a while (the replay's end).
    wait_for(lambda: ioc_db.count("position") >= len(thinned), 30, "the thinned positions")
    time.sleep(1.5)  # time for anything else to arrive, held status records included
    assert_same_positions(list(ioc_db.dump("position", "vessel-1")), thinned)
    assert ioc_db.count("status") == 0
    held = open_store(config)
    try:
        assert held.backlog()["status"] >= 2
    finally:
        held.close()
    assert node.live.stats == {"in": len(positions), "live": len(thinned)}
    status = ["status", str(tmp_path / "edge.toml")]
    told = "\nlink: satellite (chosen by file), holding status\n"
    wait_for(lambda: told in cli(edge_cli, status), 10, "the satellite link in ioc-edge status")

    link_file.write_text("cheap\n")
    wait_for(lambda: ioc_db.count("status") >= 2, 20, "the held status records")
    assert node.link.name == "cheap"
    told = "\nlink: cheap (chosen by file), holding nothing\n"
    wait_for(lambda: told in cli(edge_cli, status), 10, "the cheap link in ioc-edge status")
    assert ioc_db.count("position") == len(thinned)
    # No [track] here: what thinning drops is gone, and the node says so.
    assert "event=link_thins_without_track_log action=dropped_positions_are_lost" in caplog.messages
