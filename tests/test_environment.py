"""An environment node end to end: particulate sensors on ptys, rain and water level on mock pins,
summaries and local alarms through a real mosquitto to the IOC store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tty
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory
from helpers import wait_for
from support_nodes import node_toml, write_config

from drivers.gpiomock import exact_sonar
from drivers.pms5003 import data_frame as pms_frame
from drivers.sds011 import data_frame as sds_frame
from edge.cli import main as edge_cli
from edge.config import NodeConfig
from edge.runtime import open_store
from ioc.receiver import Receiver
from sync.uplink import MqttUplink


def env_config(tmp_path: Path, port: int, drivers: str, alarms: str = "", uplink: bool = True) -> NodeConfig:
    head = node_toml(
        tmp_path, "river-1", port, status_interval_s=60, uplink=f"enabled = {str(uplink).lower()}"
    )
    return write_config(tmp_path, f"{head}\n[summaries]\ninterval_s = 1\ntrim = 0.0\n{drivers}\n{alarms}\n")


def backlog(config: NodeConfig, stream: str) -> int:
    store = open_store(config)
    try:
        return store.backlog()[stream]
    finally:
        store.close()


@pytest.fixture
def two_ptys() -> Iterator[list[tuple[int, str]]]:
    pairs = []
    for _ in range(2):
        master, slave = os.openpty()
        tty.setraw(slave)
        pairs.append((master, slave))
    yield [(m, os.ttyname(s)) for m, s in pairs]
    for m, s in pairs:
        os.close(m)
        os.close(s)


def test_particulate_sensors_on_ptys_reach_the_ioc_as_summaries(
    two_ptys, tmp_path, broker, receiver, ioc_db, run_node
):
    (sds_master, sds_path), (pms_master, pms_path) = two_ptys
    drivers = f"""
[drivers.pm-sds]
type = "sds011"
[drivers.pm-sds.transport]
type = "pty"
path = "{sds_path}"

[drivers.pm-pms]
type = "pms5003"
[drivers.pm-pms.transport]
type = "pty"
path = "{pms_path}"
"""
    node = run_node(env_config(tmp_path, broker.port, drivers))
    time.sleep(0.5)  # the drivers open their ports
    deadline = time.monotonic() + 20
    i = 0
    while time.monotonic() < deadline and not {"pm-sds", "pm-pms"} <= {
        r["sensor"] for r in ioc_db.dump("summary") if r["count"]
    }:
        os.write(sds_master, sds_frame(120 + i % 3, 250))  # 12.0..12.2 / 25.0 ug/m3
        garbage = b"\x42\x4d\x00\x1c" + bytes(30) if i % 5 == 0 else b""  # a frame with a bad checksum
        os.write(pms_master, garbage + pms_frame(5, 9 + i % 2, 14))
        i += 1
        time.sleep(0.05)
    rows = [r for r in ioc_db.dump("summary") if r["count"]]
    sds = [r for r in rows if r["sensor"] == "pm-sds" and r["quantity"] == "pm25"]
    pms = [r for r in rows if r["sensor"] == "pm-pms" and r["quantity"] == "pm25"]
    assert sds and pms, rows
    assert all(12.0 <= r["min"] <= r["mean"] <= r["max"] <= 12.2 for r in sds)
    assert all(9.0 <= r["mean"] <= 10.0 for r in pms)
    assert {r["quantity"] for r in rows if r["sensor"] == "pm-pms"} >= {"pm1", "pm25", "pm10"}
    wait_for(lambda: node.drivers[1].rejects["bad_checksum"] > 0, 5, "the bad frames counted")
    wait_for(
        lambda: sum(r["rejected"] for r in ioc_db.dump("summary") if r["sensor"] == "pm-pms") > 0,
        10,
        "the rejected frames in the summaries",
    )
    assert ioc_db.count("reading") == 0  # raw readings stay on the node by default


def test_rain_and_water_level_on_mock_pins_summaries_and_a_flood_alarm_first(
    tmp_path, broker, ioc_db, run_node
):
    factory = MockFactory()
    reed = factory.pin(17)
    echo = exact_sonar(factory, distance_m=3.0, trigger=23, echo=24)  # level 2.0 m under a 5 m mount
    drivers = """
[drivers.rain]
type = "rain_gauge"
pin = 17
mm_per_tip = 0.2

[drivers.river]
type = "water_level"
trigger_pin = 23
echo_pin = 24
mount_height_m = 5.0
max_distance_m = 4.5
interval_s = 0.1
"""
    alarms = """
[alarms.flood]
sensor = "river"
quantity = "water_level_m"
above = 3.5
hysteresis = 0.2
"""
    # No uplink yet: a backlog of summaries builds up before and during the flood.
    node = run_node(env_config(tmp_path, broker.port, drivers, alarms, uplink=False), pin_factory=factory)
    for _ in range(5):  # five tips of the bucket
        reed.drive_low()
        time.sleep(0.08)
        reed.drive_high()
        time.sleep(0.08)
    levels = [2.0, 2.5, 3.0, 3.4, 3.6, 3.8, 3.55, 3.4, 3.2, 3.0]  # up through 3.5, hovering, down
    river = node.drivers[1]
    for level in levels:
        echo.distance_m = 5.0 - level
        # Held 0.4 s (the sonar's sample queue must fill with the new level) and until the driver has read
        # it a few times: a loaded machine must not skip a level.
        held_from = river.records
        time.sleep(0.4)
        wait_for(lambda: river.records >= held_from + 3, 10, f"readings at {level} m")  # noqa: B023
    time.sleep(1.5)  # the last interval ends
    alarms_raised = node.alarms.raised
    assert alarms_raised == 1
    receiver = Receiver(ioc_db, broker.host, broker.port, client_id="ioc-test")
    receiver.start()
    assert receiver.subscribed.wait(10)
    # The link comes up with the IOC listening: what goes first is the uplink's choice alone.
    uplink = MqttUplink(open_store(node.config), "river-1", node.config.uplink)
    uplink.start()
    try:
        wait_for(
            lambda: ioc_db.count("alarm") == 2 and ioc_db.count("summary") > 0, 30, "alarms and summaries"
        )
        wait_for(lambda: backlog(node.config, "summary") == 0, 30, "the backlog")
    finally:
        uplink.stop()
        uplink.store.close()
        receiver.stop()
    alarms_stored = list(ioc_db.dump("alarm"))
    assert [(a["source"], a["kind"], a["state"]) for a in alarms_stored] == [
        ("river", "flood", 1),
        ("river", "flood", 0),
    ]
    assert alarms_stored[0]["value"] > 3.5 and alarms_stored[1]["value"] < 3.3
    summaries = list(ioc_db.dump("summary"))
    # The alarm lane goes before the backlog of summaries recorded while the link was down.
    assert max(a["received_ms"] for a in alarms_stored) <= min(s["received_ms"] for s in summaries)
    rain = [s for s in summaries if s["sensor"] == "rain" and s["quantity"] == "rain_mm"]
    assert sum(s["total"] for s in rain) == pytest.approx(1.0)  # 5 tips x 0.2 mm
    assert sum(s["count"] for s in rain) == 5
    per_hour = [s for s in summaries if s["quantity"] == "rain_mm_per_h" and s["total"] > 0]
    assert sum(s["total"] for s in per_hour) == pytest.approx(
        3600.0
    )  # 1 mm in 1 s intervals: 3600 mm/h summed
    level_rows = [s for s in summaries if s["quantity"] == "water_level_m"]
    assert min(s["min"] for s in level_rows) == pytest.approx(2.0, abs=0.01)
    assert max(s["max"] for s in level_rows) == pytest.approx(3.8, abs=0.01)
    assert any(s["mean"] > 0 for s in summaries if s["quantity"] == "water_rise_m_per_h")


def test_serial_port_removed_and_recreated_resumes_counted_once(tmp_path, broker, run_node):
    link = tmp_path / "ttyUSB-pm"  # a udev by-id link to the adapter
    drivers = f"""
[drivers.pm]
type = "sds011"
[drivers.pm.transport]
type = "pty"
path = "{link}"
"""
    master, slave = os.openpty()
    tty.setraw(slave)
    link.symlink_to(os.ttyname(slave))
    node = run_node(env_config(tmp_path, broker.port, drivers))
    driver = node.drivers[0]

    def feed_until(count: int) -> None:
        for _ in range(200):
            if driver.records >= count:
                return
            os.write(master, sds_frame(100, 200))
            time.sleep(0.05)
        raise AssertionError(f"the driver read {driver.records} readings, expected {count}")

    feed_until(4)
    link.unlink()  # unplugged: the link goes, the port hangs up
    os.close(master)
    os.close(slave)
    wait_for(lambda: driver.health["transport_lost"] == 1, 10, "the outage to be noticed")
    time.sleep(1.5)  # several retries while it is away: still one outage
    master, slave = os.openpty()
    tty.setraw(slave)
    link.symlink_to(os.ttyname(slave))  # plugged back: a new pty behind the same path
    try:
        feed_until(driver.records + 4)
        # Checked while the new port is still there: closing it below is an outage of its own, which
        # a quick driver counts before a late assertion would run.
        assert driver.running
        assert driver.health["transport_lost"] == 1 and driver.health["transport_recovered"] == 1
    finally:
        os.close(master)
        os.close(slave)


def test_a_gpio_driver_that_cannot_start_is_reported_and_the_node_runs_on(tmp_path, broker, run_node):
    from gpiozero import Button

    factory = MockFactory()
    squatter = Button(17, pin_factory=factory)  # another program holds the rain gauge's pin
    drivers = """
[drivers.rain]
type = "rain_gauge"
pin = 17

[drivers.float]
type = "float_switch"
pin = 27
"""
    config = env_config(tmp_path, broker.port, drivers)
    node = run_node(config, pin_factory=factory)
    try:
        assert list(node.failed) == ["rain"] and node.failed["rain"].startswith("GPIOPinInUse")
        assert node.drivers[1].running  # the float switch works
        node.status.report()
        result = CliRunner().invoke(edge_cli, ["status", "--json", str(tmp_path / "edge.toml")])
        # stdout alone: the running node's threads may log to stderr meanwhile.
        assert json.loads(result.stdout)["failed_drivers"] == node.failed
    finally:
        squatter.close()


NODE_IN_A_FRESH_PROCESS = """
import json, sys, time
from gpiozero.pins.mock import MockFactory
from edge.config import load_config
from edge.runtime import Node, open_store

factory = MockFactory()
node = Node(load_config(sys.argv[1]), pin_factory=factory)
node.start()
reed = factory.pin(17)
deadline = time.monotonic() + 30
while node.uplink.stats["acked_records"] == 0 and time.monotonic() < deadline:
    reed.drive_low()
    reed.drive_high()
    time.sleep(0.2)
node.stop()
loaded = sorted(set(sys.argv[2:]) & set(sys.modules))
print(json.dumps({"acked": node.uplink.stats["acked_records"], "loaded": loaded}))
"""


def test_a_node_recording_and_syncing_without_numpy_or_sqlite_utils(tmp_path, broker, ioc_db):
    # ~15 MB of a 512 MB node's memory (bench/sensors.py): only a link profile, a track log, a
    # geofence or a camera may bring numpy in, and nothing brings sqlite-utils.
    drivers = '\n[drivers.rain]\ntype = "rain_gauge"\npin = 17\n'
    env_config(tmp_path, broker.port, drivers)
    receiver = Receiver(ioc_db, broker.host, broker.port, client_id="ioc-test")
    receiver.start()
    try:
        assert receiver.subscribed.wait(10)
        heavy = ["numpy", "sqlite_utils", "click", "shapely", "cv2", "onnxruntime", "cryptography"]
        child = subprocess.run(
            [sys.executable, "-c", NODE_IN_A_FRESH_PROCESS, str(tmp_path / "edge.toml"), *heavy],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        receiver.stop()
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout)
    assert result["acked"] > 0
    assert result["loaded"] == []
    assert ioc_db.count("summary") > 0
