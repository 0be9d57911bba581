"""Backlog drain: 1,000,000 stored records edge -> mosquitto -> receiver -> stored, acked and deleted.

The baseline is a raw paho QoS 1 publish loop of the same batches (already
encoded) to the same broker, waiting for every PUBACK: what the wire costs
without the store, the receiver or the end-to-end ack. Also prints bytes on
the wire per record for generated sensor readings and vessel positions, and
for the real track in ais-nmea.log, and bytes written to disk per record.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import msgpack
import paho.mqtt.client as mqtt
import zstandard
from _common import SHARED, disk_writes, figure, sensor_readings, vessel_track
from paho.mqtt.enums import CallbackAPIVersion

from ioc.broker import PrivateBroker
from ioc.db import Database
from sync.store import Store
from sync.uplink import MqttUplink
from sync.wire import Batch, encode_batch

N = 1_000_000
BATCH = 5000
DEVICE = "bench-node"


def uplink_config(port: int) -> SimpleNamespace:
    return SimpleNamespace(
        host="127.0.0.1",
        port=port,
        keepalive_s=30,
        topic_prefix="ioc/v1",
        batch_records=BATCH,
        max_inflight=8,
        ack_timeout_s=60,
        backoff_min_s=0.2,
        backoff_max_s=2,
        compression="zstd",
    )


def wire_bytes_per_record(stream: str, records: list, compression: str = "zstd") -> float:
    total = 0
    for i in range(0, len(records), BATCH):
        chunk = records[i : i + BATCH]
        seqs = list(range(i + 1, i + 1 + len(chunk)))
        total += len(encode_batch(Batch(DEVICE, "0" * 16, stream, seqs, chunk), compression))
    return total / len(records)


def rows_msgpack_zstd_bytes_per_record(records: list) -> float:
    """The obvious alternative encoding: msgpack rows, zstd-compressed, no columns, no deltas."""
    c = zstandard.ZstdCompressor(level=3)
    total = sum(len(c.compress(msgpack.packb(records[i : i + BATCH]))) for i in range(0, len(records), BATCH))
    return total / len(records)


def raw_publish(port: int, payloads: list[bytes]) -> float:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(16)
    done = threading.Event()
    acked = [0]

    def on_publish(*_):
        acked[0] += 1
        if acked[0] == len(payloads):
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    t0 = time.perf_counter()
    for p in payloads:
        client.publish("bench/raw", p, qos=1)
    done.wait(120)
    elapsed = time.perf_counter() - t0
    client.loop_stop()
    client.disconnect()
    return elapsed


def drain(tmp: Path, port: int, records: list) -> tuple[float, int]:
    store = Store(tmp / "edge.db")
    w0 = disk_writes()
    for i in range(0, len(records), 10_000):
        store.write({"position": records[i : i + 10_000]})
    written = disk_writes() - w0
    db_url = f"sqlite:///{tmp / 'ioc.db'}"
    receiver = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ioc",
            "run",
            "--mqtt-port",
            str(port),
            "--db",
            db_url,
            "--client-id",
            "bench-ioc",
            # The pipeline's own speed: the centre's per-device quota (64 MiB an hour by default)
            # paces a backlog this large (~130 MiB as the quota counts it) over two hours.
            "--quota-mb-per-hour",
            "0",
        ]
    )
    time.sleep(1.0)  # let the receiver subscribe before the clock starts
    watcher = Store(tmp / "edge.db")
    uplink = MqttUplink(store, DEVICE, uplink_config(port))
    t0 = time.perf_counter()
    uplink.start()
    while watcher.backlog()["position"] and time.perf_counter() - t0 < 300:
        time.sleep(0.02)
    elapsed = time.perf_counter() - t0
    uplink.stop()
    receiver.terminate()
    receiver.wait()
    stored = Database(db_url).count("position")
    figure("drain_sent_records", uplink.stats["sent_records"])
    figure("drain_resent_batches", uplink.stats["resent_batches"])
    return elapsed, stored if stored == N else -stored, written


def main() -> None:
    track = vessel_track(N)
    with tempfile.TemporaryDirectory() as tmp, PrivateBroker(Path(tmp) / "broker") as broker:
        payloads = [
            encode_batch(
                Batch(DEVICE, "0" * 16, "position", list(range(i + 1, i + 1 + BATCH)), track[i : i + BATCH])
            )
            for i in range(0, N, BATCH)
        ]
        raw_s = raw_publish(broker.port, payloads)
        elapsed, stored, written = drain(Path(tmp), broker.port, track)
    figure("records", N)
    figure("drain_s", elapsed, "s")
    figure("drain_records_per_s", N / elapsed)
    figure("ioc_stored_records", stored)
    figure("raw_publish_s", raw_s, "s")
    figure("ratio_vs_raw", raw_s / elapsed)
    figure("disk_bytes_per_record", written / N, "B")
    sample = track[:100_000]
    figure("wire_bytes_per_position_generated", wire_bytes_per_record("position", sample), "B")
    figure("wire_bytes_per_position_generated_zlib", wire_bytes_per_record("position", sample, "zlib"), "B")
    figure("rows_msgpack_zstd_bytes_per_position", rows_msgpack_zstd_bytes_per_record(sample), "B")
    figure(
        "wire_bytes_per_reading_generated", wire_bytes_per_record("reading", sensor_readings(100_000)), "B"
    )
    ais = SHARED / "nmea" / "ais-nmea.log"
    if ais.exists():
        from common.clock import Clock
        from drivers.nmea import NmeaParser

        parser = NmeaParser(Clock())
        real = parser.feed(ais.read_bytes()) + parser.flush()
        figure("ais_log_positions", len(real))
        figure("wire_bytes_per_position_ais_log", wire_bytes_per_record("position", real), "B")
    else:
        print(f"ais-nmea.log not found under {SHARED}: set IOC_EDGE_SHARED", file=sys.stderr)


if __name__ == "__main__":
    main()
