"""Bytes on the wire per position: the live track thinned for a satellite link vs every position.

Two tracks: the real one in ais-nmea.log (164 fixes of a vessel in port, 1 Hz) and a generated hour
under way at 1 Hz (~6 kn, slow turns, correlated GPS error: ``_common.vessel_track``). For each
tolerance, two ways of sending:

- ``batched``: the whole track in one message (a backlog drained after an outage; the drain bench's
  figure), payload bytes per GPS fix;
- ``live``: as a node sends positions while the link is up, one message per position kept (the
  recorder commits every second, a GPS gives a fix a second), counting the MQTT PUBLISH framing,
  the broker's PUBACK and the IOC's end-to-end ack (its PUBLISH and the node's PUBACK) per message.
  TCP/IP and TLS framing are not counted (they depend on how messages share segments).

The raw baseline is every position (``tolerance 0``) sent the same way; ``ratio_vs_raw`` is thinned
bytes over raw bytes. Usage: ``.venv/bin/python bench/link.py [--tolerances 2,10,25]``.
"""

from __future__ import annotations

import argparse
import sys

from _common import SHARED, figure, vessel_track

from edge.thinning import TrackThinner
from sync.records import Position
from sync.wire import Ack, Batch, ack_topic, encode_ack, encode_batch, up_topic

DEVICE = "vessel-042"
EPOCH = "0" * 16
PREFIX = "ioc/v1"
MAX_INTERVAL_S = 3600


def thinned(positions: list[Position], tolerance_m: float, max_interval_s: float = MAX_INTERVAL_S) -> list:
    """The live track as a node on that profile sends it (the last point flushed)."""
    thinner = TrackThinner(tolerance_m, max_interval_s)
    return [k for p in positions for k in thinner.add(p)] + thinner.flush()


def batched_bytes(stream: str, records: list) -> int:
    """Payload bytes of ``records`` in one message."""
    return len(encode_batch(Batch(DEVICE, EPOCH, stream, list(range(1, len(records) + 1)), records)))


def _varint_len(n: int) -> int:
    return 1 if n < 128 else 2 if n < 16_384 else 3 if n < 2_097_152 else 4


def _publish_len(topic: str, payload: int) -> int:
    """An MQTT v5 QoS 1 PUBLISH: fixed header, topic, packet id, empty properties, payload."""
    rest = 2 + len(topic) + 2 + 1 + payload
    return 1 + _varint_len(rest) + rest


PUBACK_LEN = 4
"""MQTT v5 PUBACK with reason 0 and no properties: fixed header and packet id."""


def live_bytes(stream: str, records: list) -> int:
    """Bytes up and down for ``records`` sent one per message, with the broker's and the IOC's acks."""
    total = 0
    for seq, record in enumerate(records, start=1):
        payload = len(encode_batch(Batch(DEVICE, EPOCH, stream, [seq], [record])))
        ack = len(encode_ack(Ack(EPOCH, stream, seq, seq)))
        total += _publish_len(up_topic(PREFIX, DEVICE, stream), payload) + PUBACK_LEN
        total += _publish_len(ack_topic(PREFIX, DEVICE), ack) + PUBACK_LEN
    return total


def link_figures(name: str, positions: list[Position], tolerances: list[float]) -> None:
    """Print the figures of one track: fixes, then per tolerance what is kept and its bytes vs raw."""
    figure(f"{name}_positions", len(positions))
    raw_batched = batched_bytes("position", positions)
    raw_live = live_bytes("position", positions)
    figure(f"{name}_batched_bytes_per_position_raw", raw_batched / len(positions), "B")
    figure(f"{name}_live_bytes_per_position_raw", raw_live / len(positions), "B")
    for tolerance in tolerances:
        kept = thinned(positions, tolerance)
        tag = f"{name}_tol{tolerance:g}m"
        figure(f"{tag}_live_positions", len(kept))
        batched, live = batched_bytes("position", kept), live_bytes("position", kept)
        figure(f"{tag}_batched_bytes_per_position", batched / len(positions), "B")
        figure(f"{tag}_batched_ratio_vs_raw", batched / raw_batched)
        figure(f"{tag}_live_bytes_per_position", live / len(positions), "B")
        figure(f"{tag}_live_bytes_per_kept_position", live / len(kept), "B")
        figure(f"{tag}_live_ratio_vs_raw", live / raw_live)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tolerances", default="2,10,25", help="thinning tolerances in metres, comma-separated"
    )
    tolerances = [float(t) for t in parser.parse_args().tolerances.split(",")]
    ais = SHARED / "nmea" / "ais-nmea.log"
    if not ais.exists():
        sys.exit(f"ais-nmea.log not found under {SHARED}: set IOC_EDGE_SHARED")
    from common.clock import Clock
    from drivers.nmea import NmeaParser

    nmea = NmeaParser(Clock())
    real = nmea.feed(ais.read_bytes()) + nmea.flush()
    figure("one_position_message_payload_bytes", batched_bytes("position", real[:1]), "B")
    link_figures("ais_log", real, tolerances)
    underway = vessel_track(3600)
    link_figures("underway_1h", underway, tolerances)
    live = live_bytes("position", thinned(underway, tolerances[-1]))
    figure("underway_live_bytes_per_hour_raw", live_bytes("position", underway), "B")
    figure(f"underway_live_bytes_per_hour_tol{tolerances[-1]:g}m", live, "B")


if __name__ == "__main__":
    main()
