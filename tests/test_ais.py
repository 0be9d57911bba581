"""AIS sentences on a GPS's NMEA stream: passed on to the IOC, counted, rate-capped, never errors."""

from __future__ import annotations

import doctest
from collections import Counter
from pathlib import Path

import pytest
from helpers import nmea_sentence, wait_for
from support_nodes import node_toml

import drivers.ais
from common.clock import Clock
from drivers.ais import AisPassthrough
from drivers.nmea import NmeaGps, NmeaParser
from drivers.transport import MemoryTransport
from edge.config import ConfigError, NodeConfig, parse_config
from edge.runtime import open_store


def capture_bytes(path: Path) -> bytes:
    """A gpsd log without its ``#`` comment header, as the receiver sent it."""
    return b"".join(line for line in path.read_bytes().splitlines(keepends=True) if not line.startswith(b"#"))


class Streams:
    """A sink keeping each stream's records."""

    def __init__(self) -> None:
        self.records: dict[str, list] = {}

    def __call__(self, stream: str, records: list) -> None:
        self.records.setdefault(stream, []).extend(records)


def run_gps(data: bytes, ais_per_s: float = 1000) -> tuple[NmeaGps, Streams]:
    """``data`` through an NmeaGps in 4 KiB reads, as its thread would feed it."""
    sink = Streams()
    gps = NmeaGps("gps", MemoryTransport(b""), sink, Clock(), ais_per_s=ais_per_s)
    for i in range(0, len(data), 4096):
        sink("position", gps.feed(data[i : i + 4096]))
    sink("position", gps.flush())
    return gps, sink


def test_every_aivdm_of_a_real_capture_is_passed_on_counted_and_positions_are_unchanged(shared_dir):
    data = capture_bytes(shared_dir / "nmea" / "ais-nmea.log")
    lines = [line.strip().decode() for line in data.splitlines() if line.startswith(b"!AIVDM")]
    assert len(lines) == 183
    gps, sink = run_gps(data)
    assert [r.sentence for r in sink.records["ais"]] == lines
    assert gps.passed == {"ais": 183}
    assert gps.rejects == {}  # AIS is no error
    assert "ais" not in gps.ignored
    # The positions are those of the parser alone, which counts AIS as ignored.
    parser = NmeaParser(Clock())
    alone = parser.feed(data) + parser.flush()
    assert parser.ignored["ais"] == 183
    assert [p[:2] + p[3:] for p in sink.records["position"]] == [p[:2] + p[3:] for p in alone]  # but clock_ms
    assert len(alone) == 164


AIS_1 = b"!AIVDM,1,1,,B,13aDp<PP000IwSlN?Wm@0?wN2<1T,0*29"
AIS_2 = [
    b"!AIVDM,2,1,9,B,55R3Vn82=ILTQ3KKS>1<D60Dq@E918U<F222221J1`?164vc03S1CCAD,0*2A",
    b"!AIVDM,2,2,9,B,`88888888888880,2*76",
]


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_rate_cap_counts_the_excess_and_keeps_messages_whole():
    tick = FakeMonotonic()
    ais = AisPassthrough(Clock(), per_s=2, burst_s=1, monotonic=tick)  # a bucket of 2
    assert len(ais.take([AIS_1] * 5)) == 2
    assert ais.counts == {"ais": 2, "ais_dropped": 3}
    tick.now += 0.5  # one token back
    # The first fragment takes the last token; its second follows it, the next message does not.
    passed = ais.take([*AIS_2, AIS_1, *AIS_2])
    assert [r.sentence.encode() for r in passed] == AIS_2
    assert ais.counts == {"ais": 4, "ais_dropped": 6}
    tick.now += 10  # the bucket refills to its size, not beyond
    assert len(ais.take([AIS_1] * 5)) == 2


def test_a_second_fragment_whose_first_was_not_seen_is_judged_on_its_own():
    ais = AisPassthrough(Clock(), per_s=10)
    assert [r.sentence.encode() for r in ais.take([AIS_2[1], AIS_1])] == [AIS_2[1], AIS_1]


def test_ais_per_s_zero_passes_none_and_counts_them(shared_dir):
    data = capture_bytes(shared_dir / "nmea" / "ais-nmea.log")
    gps, sink = run_gps(data, ais_per_s=0)
    assert "ais" not in sink.records
    assert gps.passed == {"ais_dropped": 183}


def test_a_corrupt_ais_sentence_is_a_reject_not_passed_on():
    bad_sum = AIS_1[:-2] + b"30"
    no_fields = nmea_sentence("AIVDM,1,x,,B", "!").strip()
    gps, sink = run_gps(b"\r\n" + b"\r\n".join([AIS_1, bad_sum, no_fields, AIS_1]) + b"\r\n")
    assert [r.sentence.encode() for r in sink.records["ais"]] == [AIS_1, AIS_1]
    assert gps.rejects == {"bad_checksum": 1, "parse_error": 1}
    assert gps.passed == {"ais": 2}


def test_ais_per_s_is_checked():
    text = """\
[node]
device_id = "v"

[drivers.gps]
type = "nmea"
ais_per_s = -1
[drivers.gps.transport]
type = "pty"
path = "/dev/pts/3"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "edge.toml", "/etc/ioc-edge")
    assert caught.value.problems == [
        "drivers.gps.ais_per_s (edge.toml line 6): -1 is too small; expected >= 0"
    ]


def backlog(config: NodeConfig) -> int:
    store = open_store(config)
    try:
        return store.backlog()["ais"]
    finally:
        store.close()


def test_ais_of_a_replayed_capture_reaches_the_ioc_in_order(
    shared_dir, tmp_path, broker, receiver, ioc_db, run_node
):
    path = shared_dir / "nmea" / "ais-nmea.log"
    text = f"""{node_toml(tmp_path, "vessel-042", broker.port)}
[drivers.gps]
type = "nmea"
ais_per_s = 100

[drivers.gps.transport]
type = "replay"
path = "{path}"
speed = 0
"""
    node = run_node(parse_config(text, "edge.toml", tmp_path))
    wait_for(lambda: ioc_db.count("ais") == 183 and ioc_db.count("position") == 164, 30, "AIS and positions")
    wait_for(lambda: backlog(node.config) == 0, 30, "the IOC's acks")
    stored = list(ioc_db.dump("ais", "vessel-042"))
    lines = [line.strip().decode() for line in capture_bytes(path).splitlines() if line.startswith(b"!")]
    assert [r["sentence"] for r in stored] == lines
    assert [r["seq"] for r in stored] == list(range(1, 184))
    times = [r["ts_ms"] for r in stored]
    assert times == sorted(times)  # stamped as read
    node.stop()
    store = open_store(node.config)
    try:
        assert store.counters("passed.gps") == {"ais": 183}
        assert store.counters("reject.gps") == {}
    finally:
        store.close()
    assert Counter(node.drivers[0].ignored)["ais"] == 0


def test_the_examples_in_the_docstrings_hold():
    assert doctest.testmod(drivers.ais).failed == 0
