"""The IOC's receiver against a real mosquitto: store, de-duplicate, ack, reject by reason; the CLI."""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zstandard
from click.testing import CliRunner
from helpers import wait_for
from support_ioc import EPOCH, PREFIX, T0, Node, position_batch, positions

import ioc.db
from ioc.broker import PrivateBroker
from ioc.cli import main
from ioc.db import Database
from ioc.receiver import Receiver
from sync.records import Alarm, Position, TimeSource
from sync.wire import (
    CODEC_ZLIB,
    CODEC_ZSTD,
    MAX_PAYLOAD_BYTES,
    STREAMS,
    Ack,
    Batch,
    encode_batch,
    up_topic,
)

GPS, NTP = int(TimeSource.GPS), int(TimeSource.NTP)


def compress(data: bytes, codec: int = CODEC_ZSTD) -> bytes:
    if codec == CODEC_ZSTD:
        return bytes([CODEC_ZSTD]) + zstandard.ZstdCompressor().compress(data)
    return bytes([CODEC_ZLIB]) + zlib.compress(data)


def body_of(batch: Batch) -> dict:
    return msgpack.unpackb(zstandard.ZstdDecompressor().decompress(encode_batch(batch)[1:]), raw=False)


def table_counts(db: Database) -> dict[str, int]:
    return {name: db.count(name) for name in STREAMS}


def stored(db: Database, stream: str, device: str) -> list[tuple[int, tuple]]:
    """``(seq, record)`` of ``device``'s stored records, ``tsrc`` back as its number."""
    names = STREAMS[stream].names
    out = []
    for row in db.dump(stream, device):
        row["tsrc"] = int(TimeSource[row["tsrc"].upper()])
        out.append((row["seq"], STREAMS[stream].record(*(row[n] for n in names))))
    return out


def wait_until_subscribed(receivers: list[Receiver]) -> None:
    """A receiver subscribes once connected; what the broker gets before that reaches nobody."""
    wait_for(lambda: all(r.subscribed.is_set() for r in receivers), what="the receivers' subscriptions")


@pytest.fixture
def node(broker: PrivateBroker) -> Iterator[Node]:
    n = Node(broker)
    yield n
    n.close()


@pytest.fixture
def receiver(broker: PrivateBroker, ioc_db: Database, node: Node) -> Iterator[Receiver]:
    r = Receiver(ioc_db, broker.host, broker.port, client_id="ioc-test-1")
    r.start()
    try:
        wait_until_subscribed([r])
        yield r
    finally:
        r.stop()


# -- storing and acking --------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["zstd", "zlib"])
def test_valid_batch_is_stored_and_acked(receiver, ioc_db, node, compression):
    batch = position_batch("vessel-042", 1, 3)
    node.send(batch, compression)
    wait_for(lambda: node.acks("vessel-042"), what="the ack")
    assert node.acks("vessel-042") == [Ack(EPOCH, "position", 1, 3)]
    assert stored(ioc_db, "position", "vessel-042") == list(zip(batch.seqs, batch.records, strict=True))
    assert (receiver.stats["batches"], receiver.stats["records"], receiver.stats["duplicates"]) == (1, 3, 0)


def test_the_same_batch_again_is_acked_but_stored_once(receiver, ioc_db, node):
    alarm = Batch(
        "vessel-042",
        EPOCH,
        "alarm",
        [7, 9],
        [
            Alarm(T0, GPS, T0, "bilge", "water_high", 1, 12.5, "water high"),
            Alarm(T0 + 60_000, GPS, T0 + 60_000, "bilge", "water_high", 0),
        ],
    )
    for expected_acks in (1, 2):
        node.send(alarm)
        wait_for(lambda n=expected_acks: len(node.acks("vessel-042")) == n, what=f"ack {expected_acks}")
    assert node.acks("vessel-042") == [Ack(EPOCH, "alarm", 7, 9)] * 2
    assert stored(ioc_db, "alarm", "vessel-042") == [(7, alarm.records[0]), (9, alarm.records[1])]
    assert ioc_db.count("alarm") == 2
    assert (receiver.stats["batches"], receiver.stats["records"], receiver.stats["duplicates"]) == (2, 2, 2)


def test_same_seqs_of_another_epoch_or_device_are_not_duplicates(receiver, ioc_db, node):
    node.send(position_batch("vessel-042", 1, 2))
    node.send(position_batch("vessel-042", 1, 2, epoch="00000000000000ff"))
    node.send(position_batch("buoy-007", 1, 2))
    wait_for(lambda: len(node.acks("vessel-042")) == 2 and node.acks("buoy-007"), what="three acks")
    assert ioc_db.count("position") == 6
    assert [s for s, _ in stored(ioc_db, "position", "vessel-042")] == [1, 2, 1, 2]


# -- rejects -------------------------------------------------------------------------------------


def malformed(device: str) -> list[tuple[str, bytes, str]]:
    """``(topic, payload, reason)`` of payloads the receiver must refuse, all on ``device``'s topics."""
    topic = up_topic(PREFIX, device, "position")
    valid = position_batch(device, 100, 3)
    wrong_schema = body_of(valid)
    del wrong_schema["seq"]
    out_of_range = body_of(Batch(device, EPOCH, "position", [1], positions(0, 1)))
    out_of_range["c"][STREAMS["position"].names.index("lat")] = [None, [950_000_000], 0, b""]  # lat 95
    return [
        (topic, b"garbage, not a batch", "bad_compression"),
        (topic, compress(b"\xc1 not msgpack"), "bad_encoding"),
        (topic, compress(b"\xc1 not msgpack either", CODEC_ZLIB), "bad_encoding"),
        (topic, compress(msgpack.packb(wrong_schema)), "bad_schema"),
        (topic, bytes([CODEC_ZSTD]) + bytes(MAX_PAYLOAD_BYTES), "too_large"),
        (topic, compress(msgpack.packb(out_of_range)), "bad_value"),
        (topic, encode_batch(position_batch("buoy-007", 100, 3)), "device_mismatch"),
        (up_topic(PREFIX, device, "alarm"), encode_batch(valid), "stream_mismatch"),
        (up_topic(PREFIX, device, "video"), encode_batch(valid), "unknown_stream"),
        (f"{PREFIX}/Vessel.042/up/position", encode_batch(valid), "bad_topic"),
    ]


def test_malformed_payloads_are_counted_by_reason_stored_nowhere_and_not_acked(receiver, ioc_db, node):
    before = table_counts(ioc_db)
    bad = malformed("vessel-042")
    # Valid traffic from another device, interleaved with the bad payloads, keeps flowing.
    for i, (topic, payload, _) in enumerate(bad):
        node.publish(topic, payload)
        node.send(position_batch("buoy-007", 10 * i + 1, 10))
    # Sent last: once its ack is in, every bad payload before it has been handled.
    node.send(position_batch("vessel-042", 1, 2))

    wait_for(lambda: node.acks("vessel-042"), what="the last valid batch's ack")
    wait_for(lambda: len(node.acks("buoy-007")) == len(bad), what="buoy-007's acks")
    assert ioc_db.rejects() == {
        "bad_compression": 1,
        "bad_encoding": 2,
        "bad_schema": 1,
        "too_large": 1,
        "bad_value": 1,
        "device_mismatch": 1,
        "stream_mismatch": 1,
        "unknown_stream": 1,
        "bad_topic": 1,
    }
    assert node.acks("vessel-042") == [Ack(EPOCH, "position", 1, 2)]
    assert node.acks("Vessel.042") == []
    assert node.acks("buoy-007") == [Ack(EPOCH, "position", 10 * i + 1, 10 * i + 10) for i in range(len(bad))]
    assert table_counts(ioc_db) == {**before, "position": before["position"] + 10 * len(bad) + 2}
    assert [s for s, _ in stored(ioc_db, "position", "vessel-042")] == [1, 2]
    assert [s for s, _ in stored(ioc_db, "position", "buoy-007")] == list(range(1, 10 * len(bad) + 1))
    assert {k: v for k, v in receiver.stats.items() if k.startswith("reject.")} == {
        f"reject.{reason}": count for reason, count in ioc_db.rejects().items()
    }
    assert receiver.stats["errors"] == 0


def test_two_receivers_in_one_group_share_the_load_and_store_each_record_once(ioc_db_url, broker, node):
    # Each receiver with a connection of its own, as two ioc-center processes on one database.
    dbs = [Database(ioc_db_url), Database(ioc_db_url)]
    receivers = [
        Receiver(db, broker.host, broker.port, group="ioc-center", client_id=f"ioc-{name}")
        for db, name in zip(dbs, "ab", strict=True)
    ]
    for r in receivers:
        r.start()
    try:
        wait_until_subscribed(receivers)
        devices = ["vessel-1", "vessel-2", "buoy-3"]
        for i in range(20):
            for device in devices:
                node.send(position_batch(device, 5 * i + 1, 5))
                if i:  # every batch twice, the copy later, so that it may reach the other receiver
                    node.send(position_batch(device, 5 * (i - 1) + 1, 5))
        for device in devices:
            node.send(position_batch(device, 96, 5))
        wait_for(lambda: all(len(node.acks(d)) == 40 for d in devices), what="40 acks per device")

        for device in devices:
            assert [s for s, _ in stored(dbs[0], "position", device)] == list(range(1, 101))
            assert sorted((a.first, a.last) for a in node.acks(device)) == sorted(
                [(5 * i + 1, 5 * i + 5) for i in range(20)] * 2
            )
        assert dbs[0].count("position") == 300
        new, dup, batches = (
            [r.stats[key] for r in receivers] for key in ("records", "duplicates", "batches")
        )
        assert sum(new) == 300 and sum(dup) == 300 and sum(batches) == 120
        assert all(b >= 20 for b in batches), f"the load was not shared: {batches}"
        assert all(r.stats["errors"] == 0 for r in receivers)
    finally:
        for r in receivers:
            r.stop()
        for db in dbs:
            db.close()


# -- ioc-center CLI ------------------------------------------------------------------------------


@pytest.fixture
def cli() -> Iterator[CliRunner]:
    """A CliRunner; the root logger's handlers, which ``ioc-center`` replaces, are put back after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield CliRunner()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def filled_db(tmp_path: Path, monkeypatch) -> str:
    """A database with two devices, two epochs of one of them, stored at known times; its URL."""
    url = f"sqlite:///{tmp_path / 'ioc.db'}"
    now = {"ms": 0}
    monkeypatch.setattr(ioc.db, "now_ms", lambda: now["ms"])
    db = Database(url)
    late_epoch, early_epoch = "0000000000000001", "ffffffffffffff00"
    for ms, batch in [
        (T0 + 10, Batch("vessel-042", early_epoch, "position", [3], positions(3, 1))),
        (T0 + 20, Batch("buoy-007", EPOCH, "position", [1], [Position(T0, NTP, T0, -16.5, -107.25)])),
        (T0 + 30, Batch("vessel-042", late_epoch, "position", [1], positions(0, 1))),
        (T0 + 40, Batch("vessel-042", early_epoch, "position", [1, 2], positions(1, 2))),
    ]:
        now["ms"] = ms
        db.store(batch)
    for reason in ("too_large", "bad_schema", "bad_schema"):
        db.count_reject(reason)
    db.close()
    return url


def dumped(device: str, epoch: str, seq: int, record: Position, received_ms: int) -> str:
    return json.dumps(
        {"device": device, "epoch": epoch, "seq": seq}
        | record._asdict()
        | {"tsrc": TimeSource(record.tsrc).name.lower(), "received_ms": received_ms}
    )


def test_dump_prints_json_lines_per_device_in_epoch_then_seq_order(cli, filled_db):
    result = cli.invoke(main, ["dump", "position", "--db", filled_db])
    assert result.exit_code == 0, result.output
    # vessel-042's epoch ffff... was seen first, so it comes first whatever its name.
    assert result.output.splitlines() == [
        dumped("buoy-007", EPOCH, 1, Position(T0, NTP, T0, -16.5, -107.25), T0 + 20),
        dumped("vessel-042", "ffffffffffffff00", 1, positions(1, 1)[0], T0 + 40),
        dumped("vessel-042", "ffffffffffffff00", 2, positions(2, 1)[0], T0 + 40),
        dumped("vessel-042", "ffffffffffffff00", 3, positions(3, 1)[0], T0 + 10),
        dumped("vessel-042", "0000000000000001", 1, positions(0, 1)[0], T0 + 30),
    ]
    first = json.loads(result.output.splitlines()[0])
    assert first["tsrc"] == "ntp" and first["speed_kn"] is None and first["lat"] == -16.5


def test_dump_of_one_device_and_of_an_empty_stream(cli, filled_db):
    result = cli.invoke(main, ["dump", "position", "--device", "buoy-007", "--db", filled_db])
    assert (result.exit_code, result.output) == (
        0,
        dumped("buoy-007", EPOCH, 1, Position(T0, NTP, T0, -16.5, -107.25), T0 + 20) + "\n",
    )
    result = cli.invoke(main, ["dump", "alarm", "--db", filled_db])
    assert (result.exit_code, result.output) == (0, "")


def test_dump_of_an_unknown_stream_fails_cleanly(cli, filled_db):
    result = cli.invoke(main, ["dump", "video", "--db", filled_db])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"unknown stream 'video': expected one of {sorted(STREAMS)}\n"


def test_rejects_prints_counts_by_reason(cli, filled_db, tmp_path):
    result = cli.invoke(main, ["rejects", "--db", filled_db])
    assert (result.exit_code, result.output) == (0, "bad_schema: 2\ntoo_large: 1\n")
    result = cli.invoke(main, ["rejects", "--db", f"sqlite:///{tmp_path / 'empty.db'}"])
    assert (result.exit_code, result.output) == (0, "")


def test_unsupported_database_url_fails_cleanly(cli):
    result = cli.invoke(main, ["rejects", "--db", "mysql://ioc@db/ioc"])
    assert result.exit_code == 1
    assert result.stderr == (
        "unsupported database URL 'mysql://ioc@db/ioc': "
        "use sqlite:///path/to/ioc.db or postgresql://user@host:port/dbname\n"
    )
