"""Prometheus metrics: a real node replaying a GPS capture through a real mosquitto to a receiver
answers /metrics in the text format, and its figures move as the data flows; the centre's count what
it stored, refused and saw; CPU temperature where the board has thermal zones, nothing where not."""

from __future__ import annotations

import os
import time
import urllib.request

import paho.mqtt.client as mqtt
import pytest
from helpers import free_port, wait_for
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from edge.config import parse_config
from edge.metrics import ThermalCollector
from ioc.db import Database
from ioc.metrics import CenterService
from ioc.receiver import Receiver
from sync.records import Position, TimeSource
from sync.wire import Batch, encode_batch, up_topic

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> tuple[Samples, float]:
    """Every sample of http://127.0.0.1:port/metrics by (name, sorted labels), and the scrape's time."""
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    took = time.perf_counter() - started
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return samples, took


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def sqlite_receiver(broker, tmp_path):
    receiver = Receiver(Database(f"sqlite:///{tmp_path / 'ioc.db'}"), broker.host, broker.port, client_id="t")
    receiver.start()
    assert receiver.subscribed.wait(10)
    yield receiver
    receiver.stop()
    receiver.db.close()


def test_node_metrics_move_as_a_replayed_capture_flows_to_the_ioc(
    tmp_path, shared_dir, broker, sqlite_receiver, run_node, pty_pair
):
    master, slave = pty_pair
    port = free_port()
    config = parse_config(
        f"""
[node]
device_id = "vessel-9"
site = "thuan-an"
state_dir = "{tmp_path / "state"}"
[store]
flush_interval_s = 0.2
[uplink]
port = {broker.port}
[metrics]
port = {port}
[drivers.gps]
type = "nmea"
[drivers.gps.transport]
type = "replay"
path = "{shared_dir / "nmea" / "ais-nmea.log"}"
speed = 20
[drivers.gps2]
type = "nmea"
[drivers.gps2.transport]
type = "pty"
path = "{slave}"
"""
    )
    node = run_node(config)
    wait_for(lambda: node.drivers[0].records > 10, 20, "the first positions")
    first, _ = scrape(port)
    # A sentence with a wrong checksum on the second receiver's line: one reject, by its reason.
    os.write(master, b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*00\r\n")
    wait_for(lambda: node.drivers[1].rejects["bad_checksum"] == 1, 10, "the bad checksum")
    sent_before = value(first, "ioc_edge_driver_records_total", driver="gps", type="nmea")
    wait_for(lambda: sqlite_receiver.stats["records.position"] > sent_before + 20, 30, "more positions")
    second, took = scrape(port)

    assert value(second, "ioc_edge_node_info", device="vessel-9", site="thuan-an", version="0.1.0") == 1
    assert value(second, "ioc_edge_healthy") == 1
    for name in ("ioc_edge_driver_records_total", "ioc_edge_recorder_committed_records_total"):
        labels = {"driver": "gps", "type": "nmea"} if "driver" in name else {}
        assert value(second, name, **labels) > value(first, name, **labels)
    for name in ("ioc_edge_uplink_sent_records_total", "ioc_edge_uplink_acked_records_total"):
        assert value(second, name) > value(first, name)
    assert value(second, "ioc_edge_uplink_connected") == 1
    assert value(second, "ioc_edge_driver_rejects_total", driver="gps2", reason="bad_checksum") == 1
    assert value(second, "ioc_edge_driver_passed_total", driver="gps", reason="ais") > 0
    assert 0 <= value(second, "ioc_edge_last_ack_age_seconds") < 10
    assert abs(value(second, "ioc_edge_last_ack_timestamp_seconds") - time.time()) < 10
    backlog = {dict(k[1])["stream"] for k in second if k[0] == "ioc_edge_backlog_records"}
    assert backlog == {
        "ais",
        "alarm",
        "command_result",
        "commissioning",
        "count",
        "event",
        "position",
        "status",
        "summary",
        "track",
        "track_note",
        "track_sig",
        "warning_receipt",
    }
    assert value(second, "ioc_edge_local_records", stream="reading") == 0
    assert [k for k in second if k[0] == "ioc_edge_dropped_records_total"] == []  # nothing dropped
    assert 0 < value(second, "ioc_edge_store_bytes") < 10_000_000
    assert value(second, "ioc_edge_store_max_bytes") == 268435456
    assert value(second, "process_resident_memory_bytes") > 10_000_000
    assert took < 1.0


def test_cpu_temperature_from_the_thermal_zones_the_board_has(tmp_path):
    zone = tmp_path / "thermal_zone0"
    zone.mkdir()
    (zone / "temp").write_text("48312\n")
    (zone / "type").write_text("cpu-thermal\n")
    asleep = tmp_path / "thermal_zone1"  # a sensor that cannot be read right now: no figure, no error
    asleep.mkdir()
    (asleep / "temp").write_text("")
    registry = CollectorRegistry()
    registry.register(ThermalCollector("ioc_edge", tmp_path))
    families = list(text_string_to_metric_families(generate_latest(registry).decode()))
    assert [(s.name, s.labels, s.value) for f in families for s in f.samples] == [
        ("ioc_edge_cpu_temperature_celsius", {"zone": "thermal_zone0", "type": "cpu-thermal"}, 48.312)
    ]
    empty = CollectorRegistry()
    empty.register(ThermalCollector("ioc_edge", tmp_path / "none"))
    assert generate_latest(empty) == b""


def test_centre_metrics_count_stored_duplicates_rejects_and_last_seen(receiver, broker):
    port = free_port()
    service = CenterService(receiver, "127.0.0.1", port)
    service.start()
    try:
        now = int(time.time() * 1000)
        records = [Position(now + i, int(TimeSource.GPS), now + i, 16.46, 107.59) for i in range(5)]
        batch = encode_batch(Batch("boat-1", "a1b2c3d4e5f60718", "position", [1, 2, 3, 4, 5], records))
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sender", protocol=mqtt.MQTTv5)
        client.connect(broker.host, broker.port)
        client.loop_start()
        topic = up_topic("ioc/v1", "boat-1", "position")
        for payload in (batch, batch, b"\x02not zstd"):  # the same batch twice, then garbage
            client.publish(topic, payload, qos=1).wait_for_publish(10)
        wait_for(lambda: receiver.stats["batches"] == 2 and receiver.stats["reject.bad_compression"] == 1)
        client.loop_stop()
        client.disconnect()
        samples, _ = scrape(port)
    finally:
        service.stop()
    assert value(samples, "ioc_center_batches_total") == 2
    assert value(samples, "ioc_center_stored_records_total", stream="position") == 5
    assert value(samples, "ioc_center_duplicate_records_total", stream="position") == 5
    assert value(samples, "ioc_center_rejects_total", reason="bad_compression") == 1
    assert value(samples, "ioc_center_store_errors_total") == 0
    assert value(samples, "ioc_center_subscribed") == 1
    assert value(samples, "ioc_center_database_up") == 1
    last_seen = value(samples, "ioc_center_device_last_seen_timestamp_seconds", device="boat-1")
    assert abs(last_seen - time.time()) < 10
