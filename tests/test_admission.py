"""What one node may make the centre store (issue 13, findings 3, 4 and 8): record times, field sizes and
depth, a per-device quota; each attack sent over a real mosquitto to the real receiver, each refusal
counted by reason. The forged payloads are what a node's altered firmware sends: the wire format
without the bounds the honest encoder applies."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import msgpack
import pytest
import zstandard
from helpers import now_ms, wait_for
from prometheus_client import CollectorRegistry, generate_latest
from support_ioc import EPOCH, T0, Node

import sync.wire as wire
from ioc.admission import Bounds, Limits, OverQuota
from ioc.broker import PrivateBroker
from ioc.db import Database
from ioc.metrics import CenterCollector
from ioc.receiver import Receiver
from sync.records import Alarm, Event, NodeStatus, TimeSource
from sync.wire import STREAMS, Ack, Batch, InvalidRecords, encode_batch

NTP = int(TimeSource.NTP)
HOUR_MS = 3_600_000


def forged(batch: Batch) -> bytes:
    """``batch`` encoded as the wire format says, but with no column's bounds checked."""
    stream = STREAMS[batch.stream]
    columns = [dataclasses.replace(c, lo=None, hi=None) for c in stream.columns]
    body = {
        "v": wire.WIRE_VERSION,
        "dev": batch.device,
        "ep": batch.epoch,
        "st": batch.stream,
        "n": len(batch.seqs),
        "seq": wire._encode_ints(batch.seqs, 1),
        "c": [
            wire._encode_column(c, list(v))
            for c, v in zip(columns, zip(*batch.records, strict=True), strict=True)
        ],
    }
    packed = msgpack.packb(body, use_bin_type=True)
    return bytes([wire.CODEC_ZSTD]) + zstandard.ZstdCompressor().compress(packed)


def send(node: Node, batch: Batch) -> None:
    node.publish(wire.up_topic("ioc/v1", batch.device, batch.stream), forged(batch))


def alarm(ts_ms: int, message: str = "water high") -> Alarm:
    return Alarm(ts_ms, NTP, ts_ms, "bilge", "water_high", 1, 3.5, message)


def status(ts_ms: int, body: str) -> NodeStatus:
    return NodeStatus(ts_ms, NTP, ts_ms, body)


@pytest.fixture
def node(broker: PrivateBroker) -> Iterator[Node]:
    n = Node(broker)
    yield n
    n.close()


def stored_seqs(db: Database, stream: str, device: str) -> list[int]:
    return [r["seq"] for r in db.dump(stream, device)]


def test_an_alarm_dated_2_62_ms_is_set_aside_by_the_node_and_refused_at_the_centre(receiver, ioc_db, node):
    bad = Batch("vessel-042", EPOCH, "alarm", [1], [alarm(2**62)])
    with pytest.raises(InvalidRecords) as refused:  # an honest node sets it aside, never sends it
        encode_batch(bad)
    assert (refused.value.column, refused.value.rows) == ("ts_ms", [0])

    send(node, bad)  # a node's altered firmware sends it all the same
    send(node, Batch("vessel-042", EPOCH, "alarm", [2], [alarm(T0)]))
    wait_for(lambda: node.acks("vessel-042"), what="the valid alarm's ack")
    assert node.acks("vessel-042") == [Ack(EPOCH, "alarm", 2, 2)]
    assert stored_seqs(ioc_db, "alarm", "vessel-042") == [2]
    assert ioc_db.rejects() == {"bad_value": 1}
    assert receiver.stats["reject.bad_value"] == 1


def test_a_record_dated_beyond_any_clock_mistake_is_refused_and_its_batch_acked_whole(receiver, ioc_db, node):
    now = now_ms()
    rollover = 1024 * 7 * 24 * HOUR_MS  # a replayed pre-2020 capture is moved this far on (drivers.nmea)
    batch = Batch(
        "vessel-042",
        EPOCH,
        "alarm",
        [1, 2, 3, 4],
        [
            alarm(now),
            alarm(now + rollover + 2 * 24 * HOUR_MS),
            alarm(now + 7 * HOUR_MS),
            alarm(now + rollover),
        ],
    )
    send(node, batch)
    wait_for(lambda: node.acks("vessel-042"), what="the ack")
    # Acked whole: the node could only send the refused record again for ever.
    assert node.acks("vessel-042") == [Ack(EPOCH, "alarm", 1, 4)]
    assert stored_seqs(ioc_db, "alarm", "vessel-042") == [1, 3, 4]
    assert ioc_db.rejects() == {"future": 1}
    assert (receiver.stats["reject.future"], receiver.stats["records"]) == (1, 3)


def test_status_bodies_must_be_small_shallow_json_objects(receiver, ioc_db, node):
    good = json.dumps({"version": "0.1.0", "backlog": {"position": 3}, "counters": {"uplink": {"sent": 9}}})
    bodies = [
        good,
        "[" * 50_000,  # within 64 KiB, but a RecursionError in the nodes query before
        json.dumps({"counters": {"x": 1e308}}).replace("1e+308", "1e999"),  # no JSON answer holds inf
        '{"backlog": {"position": NaN}}',
        '["not", "an", "object"]',
        json.dumps({"padding": "x" * 70_000}),  # over the 64 KiB a status may take
    ]
    send(node, Batch("vessel-042", EPOCH, "status", [1, 2, 3, 4, 5, 6], [status(T0, b) for b in bodies]))
    wait_for(lambda: node.acks("vessel-042"), what="the ack")
    assert node.acks("vessel-042") == [Ack(EPOCH, "status", 1, 6)]
    assert stored_seqs(ioc_db, "status", "vessel-042") == [1]
    assert ioc_db.rejects() == {"bad_json": 4, "too_big": 1}


def test_fields_over_their_size_or_with_a_nul_are_refused_by_reason(receiver, ioc_db, node):
    jpeg = b"\xff\xd8\xff" + bytes(29_997)
    events = [
        Event(T0, NTP, T0, "gate", "enter", "car", 1, 0.9, 1, 2, 3, 4, "", jpeg),
        Event(T0, NTP, T0, "gate", "enter", "car", 2, 0.9, 1, 2, 3, 4, "", bytes(600_000)),  # > 500 000
        Event(T0, NTP, T0, "gate" * 300, "enter", "car", 3, 0.9, 1, 2, 3, 4, "", jpeg),  # a 1.2 kB name
    ]
    send(node, Batch("cam-1", EPOCH, "event", [1, 2, 3], events))
    send(node, Batch("cam-1", EPOCH, "alarm", [1, 2], [alarm(T0, "x" * 4000), alarm(T0, "nul\x00here")]))
    wait_for(lambda: len(node.acks("cam-1")) == 2, what="both acks")
    assert stored_seqs(ioc_db, "event", "cam-1") == [1]
    assert stored_seqs(ioc_db, "alarm", "cam-1") == [1]
    assert ioc_db.rejects() == {"too_big": 2, "bad_text": 1}
    assert {k: v for k, v in receiver.stats.items() if k.startswith("reject.")} == {
        "reject.too_big": 2,
        "reject.bad_text": 1,
    }


def test_a_device_over_its_quota_is_not_acked_and_others_flow(broker, ioc_db, node):
    # 1 MiB an hour: four 60 kB statuses a batch, ~240 kB; the fifth batch finds the bucket empty.
    receiver = Receiver(
        ioc_db, broker.host, broker.port, client_id="ioc-quota", limits=Limits(quota_bytes_per_hour=2**20)
    )
    receiver.start()
    try:
        assert receiver.subscribed.wait(10)
        body = json.dumps({"padding": "x" * 60_000})
        for i in range(6):
            seqs = list(range(4 * i + 1, 4 * i + 5))
            send(node, Batch("greedy-1", EPOCH, "status", seqs, [status(T0, body)] * 4))
        send(node, Batch("buoy-7", EPOCH, "status", [1], [status(T0, "{}")]))
        wait_for(lambda: node.acks("buoy-7"), what="the other device's ack")
        wait_for(lambda: receiver.stats["reject.quota"] == 1, what="the refusal")
        registry = CollectorRegistry()
        registry.register(CenterCollector(receiver))
        metrics = generate_latest(registry).decode()
    finally:
        receiver.stop()
    assert node.acks("greedy-1") == [Ack(EPOCH, "status", 4 * i + 1, 4 * i + 4) for i in range(5)]
    assert len(stored_seqs(ioc_db, "status", "greedy-1")) == 20
    assert ioc_db.rejects() == {"quota": 1}
    assert 'ioc_center_quota_refused_batches_total{device="greedy-1"} 1.0' in metrics
    assert 'ioc_center_rejects_total{reason="quota"} 1.0' in metrics


def test_the_quota_refills_with_time_and_alarms_may_draw_one_more_hour():
    clock = [T0]
    bounds = Bounds(Limits(quota_bytes_per_hour=100_000), clock=lambda: clock[0])
    big = Batch("cam-1", EPOCH, "status", [1], [status(T0, json.dumps({"p": "x" * 60_000}))])
    bounds.admit(big)
    bounds.admit(big._replace(seqs=[2]))  # the bucket was not empty: taken, now below zero
    with pytest.raises(OverQuota) as over:
        bounds.admit(big._replace(seqs=[3]))
    assert str(over.value).startswith("quota: device 'cam-1' stored more than its 100000 bytes an hour")
    assert bounds.admit(Batch("cam-1", EPOCH, "alarm", [1], [alarm(T0)])).batch.seqs == [1]
    clock[0] += HOUR_MS // 2  # half an hour refills 50 kB: the debt of ~20 kB is paid
    assert bounds.admit(big._replace(seqs=[3])).batch.seqs == [3]
    assert bounds.over_quota == {"cam-1": 1}
