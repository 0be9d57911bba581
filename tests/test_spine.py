"""The whole path, edge driver to IOC store, through a real mosquitto, under the faults a field node sees."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import nmea_sentence, wait_for
from support_nodes import assert_same_positions, backlog, expected_positions, node_config, store_status

from common.clock import Clock
from edge.cli import main as edge_cli
from edge.runtime import open_store
from ioc.receiver import Receiver
from sync.records import Alarm, Reading

# Node-side resilience: the IOC's database engine plays no part, so these run on SQLite only.
NODE_SIDE = pytest.mark.parametrize("ioc_db_url", ["sqlite"], indirect=True)


NMEA_LOGS = sorted(
    p.name
    for p in (Path(os.environ.get("IOC_EDGE_SHARED", Path(__file__).parents[2] / "shared")) / "nmea").glob(
        "*.log"
    )
)


@pytest.mark.parametrize("log_name", NMEA_LOGS or ["ais-nmea.log"])
def test_every_position_of_a_replayed_capture_arrives_once_in_order(
    shared_dir, tmp_path, broker, receiver, ioc_db, run_node, log_name
):
    path = shared_dir / "nmea" / log_name
    expected = expected_positions(path)
    config = node_config(tmp_path, broker.port, f'type = "replay"\npath = "{path}"\nspeed = 0')
    run_node(config)
    wait_for(lambda: ioc_db.count("position") >= len(expected) and backlog(config) == 0, 30, "the positions")
    stored = list(ioc_db.dump("position", "vessel-1"))
    assert_same_positions(stored, expected)
    assert [r["seq"] for r in stored] == list(range(1, len(expected) + 1))
    if log_name == "ais-nmea.log":
        assert len(stored) == 164
        assert {r["tsrc"] for r in stored} == {"gps"}


@NODE_SIDE
def test_broker_down_30s_while_positions_keep_coming(
    shared_dir, tmp_path, broker, receiver, ioc_db, run_node
):
    path = shared_dir / "nmea" / "ais-nmea.log"
    expected = expected_positions(path)
    # 85 kB at 4800 baud x 4: about 45 s of positions, 30 of them with the broker gone.
    config = node_config(tmp_path, broker.port, f'type = "replay"\npath = "{path}"\nspeed = 4')
    node = run_node(config)
    wait_for(lambda: ioc_db.count("position") > 0, 20, "the first positions")
    broker.stop()
    during = node.drivers[0].records
    time.sleep(30)
    assert node.drivers[0].records > during + 50  # positions kept coming and were stored meanwhile
    assert backlog(config) > 0
    broker.start()
    wait_for(lambda: ioc_db.count("position") >= len(expected) and backlog(config) == 0, 90, "the backlog")
    stored = list(ioc_db.dump("position", "vessel-1"))
    assert_same_positions(stored, expected)
    assert node.uplink.stats["connects"] >= 2


def fix_sentences(i: int) -> bytes:
    """Fix ``i`` of a scripted track: a new UTC time every 50 ms, RMC then GGA."""
    t = 3600_000 + i * 50
    hh, mm, ss = t // 3_600_000, t // 60_000 % 60, t % 60_000 / 1000
    tod = f"{hh:02d}{mm:02d}{ss:05.2f}"
    lat = f"{1630 + i * 0.0001:.4f}"
    rmc = nmea_sentence(f"GPRMC,{tod},A,{lat},N,10736.0000,E,5.0,45.0,251126,,,A")
    gga = nmea_sentence(f"GPGGA,{tod},{lat},N,10736.0000,E,1,09,0.9,3.0,M,0.0,M,,")
    return rmc + gga


class EdgeProcess:
    """``ioc-edge run`` in a child process, to be killed like a node losing power."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path, self.log_path = config_path, log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge", "run", str(self.config_path)],
                stderr=log,
                stdin=subprocess.DEVNULL,
            )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@NODE_SIDE
def test_edge_killed_three_times_loses_and_duplicates_nothing(tmp_path, broker, receiver, ioc_db, pty_pair):
    master, slave_path = pty_pair
    config = node_config(tmp_path, broker.port, f'type = "pty"\npath = "{slave_path}"')
    edge = EdgeProcess(tmp_path / "edge.toml", tmp_path / "edge.log")
    total = 240
    stop = threading.Event()

    def write_track() -> None:
        for i in range(total):
            if stop.is_set():
                return
            os.write(master, fix_sentences(i))  # blocks while no one reads: the pty buffers
            time.sleep(0.05)

    writer = threading.Thread(target=write_track, daemon=True)
    edge.start()
    try:
        time.sleep(1.5)
        writer.start()
        for _ in range(3):
            time.sleep(2.5)
            edge.kill()  # mid-stream: records buffered in memory but not committed are lost, nothing else
            edge.start()
        writer.join(60)
        time.sleep(1.0)
        edge.terminate()  # a clean stop commits the fix still being assembled
        edge.start()
        wait_for(lambda: backlog(config) == 0 and ioc_db.count("position") > 0, 60, "the node to drain")
    finally:
        stop.set()
        edge.terminate()
    stored = list(ioc_db.dump("position", "vessel-1"))
    store = open_store(config)
    committed = store.last_seq("position")
    store.close()
    # Every committed record reached the IOC once: one epoch, seqs 1..committed without a gap.
    assert {r["epoch"] for r in stored} == {store.epoch}
    assert [r["seq"] for r in stored] == list(range(1, committed + 1))
    # No fix was stored twice and the order is the track's order.
    times = [r["ts_ms"] for r in stored]
    assert times == sorted(set(times))
    # Fixes sent while the node was down or not yet committed are lost (never stored), no more.
    assert committed >= total // 2


def test_receiver_down_then_back_gets_what_was_not_acked(shared_dir, tmp_path, broker, ioc_db, run_node):
    path = shared_dir / "nmea" / "ais-nmea.log"
    expected = expected_positions(path)
    first = Receiver(ioc_db, broker.host, broker.port, client_id="ioc-a")
    first.start()
    assert first.subscribed.wait(10)
    config = node_config(tmp_path, broker.port, f'type = "replay"\npath = "{path}"\nspeed = 12')
    node = run_node(config)
    wait_for(lambda: ioc_db.count("position") > 0, 20, "the first positions")
    first.stop()
    time.sleep(6)  # twice the ack timeout: the node resends into the void
    assert backlog(config) > 0
    second = Receiver(ioc_db, broker.host, broker.port, client_id="ioc-b")
    second.start()
    try:
        wait_for(
            lambda: ioc_db.count("position") >= len(expected) and backlog(config) == 0, 60, "the backlog"
        )
    finally:
        second.stop()
    assert_same_positions(list(ioc_db.dump("position", "vessel-1")), expected)
    assert node.uplink.stats["resent_batches"] >= 1


@NODE_SIDE
def test_store_full_drops_by_priority_keeps_running_and_resumes(
    shared_dir, tmp_path, broker, ioc_db, run_node
):
    path = shared_dir / "nmea" / "ais-nmea.log"
    broker.stop()  # the link is down the whole time the store fills
    config = node_config(
        tmp_path,
        broker.port,
        f'type = "replay"\npath = "{path}"\nspeed = 0',
        extra="max_bytes = 1048576",
        send_raw=True,  # readings, the lowest priority, fill the store and must drain too
    )
    node = run_node(config)
    stamp = Clock().now()
    node.recorder.append("alarm", [Alarm(*stamp, "river-1", "water_level", 1, 3.2, "flood")] * 5)
    wait_for(lambda: store_status(config).backlog["position"] == 164, 20, "the positions to be stored")
    rng = random.Random(7)
    deadline = time.monotonic() + 60
    # Noisy readings (they compress poorly) until the 1 MiB store is full and drops begin.
    while not store_status(config).drops.get("reading") and time.monotonic() < deadline:
        node.recorder.append(
            "reading", [Reading(*stamp, "pm-1", "pm25", rng.random() * 500) for _ in range(5000)]
        )
        time.sleep(0.1)
    assert store_status(config).drops.get("reading"), "the store never filled"
    time.sleep(0.5)
    kept, drops = store_status(config).backlog, store_status(config).drops
    assert kept["alarm"] == 5 and kept["position"] == 164
    assert drops["reading"] > 0 and "position" not in drops and "alarm" not in drops
    assert node.recorder.committed > 0 and node.status._thread.is_alive() and node.recorder._thread.is_alive()
    result = CliRunner().invoke(edge_cli, ["status", "--json", str(tmp_path / "edge.toml")])
    assert result.exit_code == 0, result.output
    # The node's status records keep evicting readings while the store is full: the count only grows.
    # stdout alone: the running node's threads may log to stderr meanwhile.
    assert json.loads(result.stdout)["drops"]["reading"] >= drops["reading"]

    broker.start()
    receiver = Receiver(ioc_db, broker.host, broker.port, client_id="ioc-test")
    receiver.start()
    try:
        wait_for(lambda: backlog(config) == 0, 60, "the backlog to drain")
        assert ioc_db.count("alarm") == 5 and ioc_db.count("position") == 164
        # The alarm lane goes first: the alarms were stored before any position.
        first_alarm = min(r["received_ms"] for r in ioc_db.dump("alarm"))
        assert first_alarm <= min(r["received_ms"] for r in ioc_db.dump("position"))
        # Room was made: new readings are kept again, no new drops.
        drops, before = store_status(config).drops, ioc_db.count("reading")
        node.recorder.append("reading", [Reading(*stamp, "pm-1", "pm25", 1.0)] * 100)
        wait_for(lambda: ioc_db.count("reading") == before + 100, 30, "the new readings")
        assert store_status(config).drops["reading"] == drops["reading"]
        # The node reported its drops to the IOC in its status records.
        wait_for(
            lambda: any(json.loads(r["body"])["drops"].get("reading") for r in ioc_db.dump("status")),
            20,
            "a status record with the drops",
        )
    finally:
        receiver.stop()


def test_node_with_clock_at_1970_records_and_syncs(shared_dir, tmp_path, broker, receiver, ioc_db, run_node):
    path = shared_dir / "nmea" / "telit-he910.log"  # starts without a fix, gets one later
    expected = expected_positions(path)
    start = time.monotonic()
    clock = Clock(wall=lambda: 1000.0 + time.monotonic() - start, synced=lambda: False)
    config = node_config(tmp_path, broker.port, f'type = "replay"\npath = "{path}"\nspeed = 0')
    run_node(config, clock=clock)
    wait_for(
        lambda: (
            ioc_db.count("position") >= len(expected) and ioc_db.count("status") > 0 and backlog(config) == 0
        ),
        30,
        "positions and status",
    )
    stored = list(ioc_db.dump("position", "vessel-1"))
    assert_same_positions(stored, expected)
    assert {r["tsrc"] for r in stored} == {"gps"}
    assert all(r["clock_ms"] < 10_000_000 for r in stored)  # the node's own clock, kept as it was
    assert all(r["ts_ms"] > 1_000_000_000_000 for r in stored)  # GPS time, not 1970


def test_garbled_nmea_on_the_wire_is_counted_and_the_valid_fixes_still_arrive(
    pty_pair, tmp_path, broker, receiver, ioc_db, run_node
):
    master, slave_path = pty_pair
    config = node_config(tmp_path, broker.port, f'type = "pty"\npath = "{slave_path}"')
    node = run_node(config)
    good = [fix_sentences(i) for i in range(21)]
    bad_checksum = (
        nmea_sentence("GPRMC,010000.00,A,1630.0000,N,10736.0000,E,5.0,45.0,251126,,,A")[:-4] + b"00\r\n"
    )
    noise = [
        bytes(range(128, 256)) + b"\r\n",  # binary line noise
        good[0][:30] + b"\r\n",  # a truncated sentence
        bad_checksum,
        b"$GPGGA," + b"9" * 300 + b"\r\n",  # a very long line
    ]
    stream = b"".join(g + noise[i % len(noise)] for i, g in enumerate(good))
    for i in range(0, len(stream), 97):  # arbitrary chunking, as a UART delivers it
        os.write(master, stream[i : i + 97])
    wait_for(lambda: ioc_db.count("position") >= 20, 20, "the valid fixes")
    stored = list(ioc_db.dump("position", "vessel-1"))
    assert [r["ts_ms"] % 86_400_000 for r in stored] == [3600_000 + i * 50 for i in range(20)]
    rejects = node.drivers[0].rejects
    assert rejects["bad_checksum"] == 5 and rejects["too_long"] == 5 and rejects["not_ascii"] == 6
    assert rejects["truncated"] + rejects["no_checksum"] + rejects["parse_error"] >= 5
    wait_for(
        lambda: store_status(config).counters.get("reject.gps", {}).get("bad_checksum") == 5, 10, "status"
    )
    result = CliRunner().invoke(edge_cli, ["status", str(tmp_path / "edge.toml")])
    assert result.exit_code == 0
    assert "reject.gps: " in result.output and "bad_checksum=5" in result.output


def test_gps_absent_at_start_then_plugged_unplugged_and_back(tmp_path, broker, receiver, ioc_db, run_node):
    link = tmp_path / "ttyGPS"  # what udev would name the adapter; absent until it is plugged in
    config = node_config(tmp_path, broker.port, f'type = "pty"\npath = "{link}"')
    node = run_node(config)
    time.sleep(1.0)
    assert node.drivers[0].running  # waiting for the device, not dead
    for plug in range(2):
        master, slave = os.openpty()
        tty.setraw(slave)
        link.symlink_to(os.ttyname(slave))
        before = ioc_db.count("position")
        try:
            # A receiver talks all the time; what it says before the port is opened is not heard.
            for i in range(plug * 1000, plug * 1000 + 600):
                os.write(master, fix_sentences(i))
                time.sleep(0.05)
                if ioc_db.count("position") >= before + 5:
                    break
            assert ioc_db.count("position") >= before + 5, f"no fixes from plug {plug}"
        finally:
            link.unlink()  # unplugged: the device node goes, the port hangs up
            os.close(master)
            os.close(slave)
    times = [r["ts_ms"] % 86_400_000 for r in ioc_db.dump("position", "vessel-1")]
    assert times == sorted(set(times))
    assert times[0] < 3600_000 + 1000 * 50 <= times[-1]  # fixes from both plugs, in order, once
