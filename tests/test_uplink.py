"""The uplink against a real mosquitto and receiver: ordering of lanes and records the IOC would refuse."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
from helpers import wait_for
from paho.mqtt.enums import CallbackAPIVersion
from support_net import Link

from edge.config import UplinkConfig
from ioc.db import Database
from ioc.receiver import Receiver
from sync.records import Alarm, Position
from sync.store import Store
from sync.uplink import MqttUplink
from sync.wire import decode_batch


def position(i: int, lat: float = 16.46) -> Position:
    return Position(1_764_000_000_000 + i * 1000, 1, 1_764_000_000_000 + i * 1000, lat, 107.59, 5.0, 45.0)


def test_invalid_records_are_set_aside_counted_and_the_rest_flows(tmp_path: Path, broker) -> None:
    store = Store(tmp_path / "store.db")
    records = [position(i) for i in range(10)]
    records[3] = position(3, lat=95.0)  # a driver bug: no such latitude
    store.write({"position": records})
    db = Database(f"sqlite:///{tmp_path / 'ioc.db'}")
    receiver = Receiver(db, broker.host, broker.port, client_id="ioc-test")
    receiver.start()
    assert receiver.subscribed.wait(10)
    uplink = MqttUplink(store, "vessel-1", UplinkConfig(port=broker.port))
    uplink.start()
    try:
        wait_for(lambda: db.count("position") == 9, 20, "the valid positions")
        wait_for(lambda: Store(tmp_path / "store.db").backlog()["position"] == 0, 20, "the acks")
    finally:
        uplink.stop()
        receiver.stop()
    assert [r["seq"] for r in db.dump("position")] == [1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert Store(tmp_path / "store.db").counters("invalid") == {"position": 1}
    assert db.rejects() == {}


def test_alarms_go_before_a_backlog(tmp_path: Path, broker) -> None:
    store = Store(tmp_path / "store.db")
    store.write({"position": [position(i) for i in range(50_000)]})
    store.write({"alarm": [Alarm(1_764_000_000_000, 1, 0, "gps", "geofence", 1, None, "left zone")]})
    db = Database(f"sqlite:///{tmp_path / 'ioc.db'}")
    receiver = Receiver(db, broker.host, broker.port, client_id="ioc-test")
    receiver.start()
    assert receiver.subscribed.wait(10)
    uplink = MqttUplink(store, "vessel-1", UplinkConfig(port=broker.port, batch_records=1000, max_inflight=2))
    uplink.start()
    try:
        wait_for(lambda: db.count("position") == 50_000 and db.count("alarm") == 1, 60, "everything")
    finally:
        uplink.stop()
        receiver.stop()
    alarm_at = next(db.dump("alarm"))["received_ms"]
    first_positions_at = min(r["received_ms"] for r in db.dump("position"))
    last_positions_at = max(r["received_ms"] for r in db.dump("position"))
    assert alarm_at <= first_positions_at < last_positions_at


def test_batches_in_flight_when_the_link_drops_cross_it_once_more_not_twice(tmp_path: Path, broker) -> None:
    """paho resends what the broker had not PUBACKed on a reused client; the uplink resends it too."""
    seen: Counter[int] = Counter()
    counter = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="counter", protocol=mqtt.MQTTv5)
    counter.on_message = lambda client, userdata, msg: seen.update([decode_batch(msg.payload).seqs[0]])
    counter.connect(broker.host, broker.port)
    counter.subscribe("ioc/v1/+/up/#", qos=1)
    counter.loop_start()
    link = Link(broker.port)
    store = Store(tmp_path / "store.db")
    config = UplinkConfig(port=link.port, batch_records=100, max_inflight=4, backoff_min_s=0.1)
    uplink = MqttUplink(store, "vessel-1", config)
    uplink.start()
    try:
        wait_for(lambda: uplink.connected, 10, "the uplink's connection")
        link.muted.set()  # the broker gets the batches; its PUBACKs are lost with the link
        store.write({"position": [position(i) for i in range(400)]})
        wait_for(lambda: sorted(seen.elements()) == [1, 101, 201, 301], 10, "the four batches")
        link.cut()
        link.muted.clear()
        link.restore()
        wait_for(lambda: uplink.stats["connects"] == 2, 10, "the reconnection")
        wait_for(lambda: sum(seen.values()) >= 8, 10, "the batches sent again")
        time.sleep(1)  # what paho would resend on its own comes right after the CONNACK
    finally:
        uplink.stop()
        link.cut()
        counter.loop_stop()
        counter.disconnect()
    assert seen == {1: 2, 101: 2, 201: 2, 301: 2}
