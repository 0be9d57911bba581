"""SDS011 and PMS5003 parsers, commands and duty-cycled drivers: datasheet bytes, garbage, a pty."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from common.clock import Clock
from drivers import pms5003, sds011
from drivers.capture import CaptureWriter
from drivers.particulate import DutyCycle, DutySchedule, Phase
from drivers.pms5003 import Pms5003, Pms5003Parser, parse_frame
from drivers.pms5003 import data_frame as pms_frame
from drivers.sds011 import Sds011, Sds011Parser
from drivers.sds011 import data_frame as sds_frame
from drivers.transport import MemoryTransport, PtyTransport, TransportError
from edge.cli import main
from edge.devices.particulate import DutyCycleConfig
from sync.records import Reading

WALL_S = 1_000.0
FREE = 3


def clock() -> Clock:
    return Clock(wall=lambda: WALL_S, synced=lambda: False)


def readings(values: list[tuple[str, float]], sensor: str) -> list[Reading]:
    return [Reading(1_000_000, FREE, 1_000_000, sensor, q, v) for q, v in values]


def sds_values(pm25_tenths: int, pm10_tenths: int) -> list[tuple[str, float]]:
    return [("pm25", pm25_tenths / 10), ("pm10", pm10_tenths / 10)]


def pms_values(pm1: int, pm25: int, pm10: int) -> list[tuple[str, float]]:
    return [("pm1", float(pm1)), ("pm25", float(pm25)), ("pm10", float(pm10))]


def parse(parser, data: bytes) -> list[Reading]:
    return parser.feed(data) + parser.flush()


# --- SDS011: the datasheet's bytes ------------------------------------------------------------


def test_sds011_commands_match_the_protocol_document():
    # Laser Dust Sensor Control Protocol V1.3: 19 bytes, checksum = low byte of data bytes 1..15
    assert sds011.sleep_command().hex(" ") == "aa b4 06 01 00 00 00 00 00 00 00 00 00 00 00 ff ff 05 ab"
    assert sds011.work_command().hex(" ") == "aa b4 06 01 01 00 00 00 00 00 00 00 00 00 00 ff ff 06 ab"
    assert sds011.query_command().hex(" ") == "aa b4 04 00 00 00 00 00 00 00 00 00 00 00 00 ff ff 02 ab"
    assert sds011.set_query_mode_command().hex(" ") == (
        "aa b4 02 01 01 00 00 00 00 00 00 00 00 00 00 ff ff 02 ab"
    )
    assert sds011.set_query_mode_command(query=False).hex(" ") == (
        "aa b4 02 01 00 00 00 00 00 00 00 00 00 00 00 ff ff 01 ab"
    )
    assert sds011.set_working_period_command(3).hex(" ") == (
        "aa b4 08 01 03 00 00 00 00 00 00 00 00 00 00 ff ff 0a ab"
    )
    # addressed to the sensor with id A160, as in the document's examples
    assert sds011.sleep_command(0xA160).hex(" ") == "aa b4 06 01 00 00 00 00 00 00 00 00 00 00 00 a1 60 08 ab"
    with pytest.raises(ValueError, match="working period must be 0..30 minutes, not 31"):
        sds011.set_working_period_command(31)


def test_sds011_data_frame_of_the_protocol_document():
    parser = Sds011Parser("pm-1", clock())
    got = parse(parser, bytes.fromhex("aa c0 d4 04 3a 0a a1 60 1d ab"))
    assert got == readings([("pm25", 123.6), ("pm10", 261.8)], "pm-1")
    assert parser.rejects == Counter() and parser.ignored == Counter() and parser.frames == 1


def test_sds011_replies_are_ignored_by_kind():
    replies = (
        bytes.fromhex("aa c5 06 01 00 00 a1 60 08 ab")  # sleep/work, set sleep
        + bytes.fromhex("aa c5 02 01 01 00 a1 60 05 ab")  # reporting mode: query
        + sds_frame(0x0301, 0x0000, kind=0xC5)[:2]
        + bytes([8, 1, 3, 0, 0xA1, 0x60, (8 + 1 + 3 + 0xA1 + 0x60) & 0xFF, 0xAB])  # working period
        + bytes([0xAA, 0xC5, 9, 0, 0, 0, 0, 0, 9, 0xAB])  # an unknown command
    )
    parser = Sds011Parser("pm-1", clock())
    assert parse(parser, replies) == []
    assert parser.ignored == Counter(reply_sleep_work=1, reply_mode=1, reply_period=1, reply_other=1)
    assert parser.rejects == Counter()


def test_sds011_rejects_by_reason():
    good = sds_frame(125, 300)
    bad_sum = good[:8] + bytes([(good[8] + 1) & 0xFF]) + good[9:]
    bad_tail = good[:9] + b"\xac"
    parser = Sds011Parser("pm-1", clock())
    got = parse(parser, b"\x00\x01\x02" + bad_sum + good + bad_tail + good + good[:6])
    assert got == readings(sds_values(125, 300) * 2, "pm-1")
    assert parser.rejects == Counter(garbage=3, bad_checksum=1, bad_tail=1, truncated=1)


def test_sds011_frames_split_across_every_chunk_boundary():
    data = sds_frame(1, 2) + b"\x55" + sds_frame(65535, 0)
    parser = Sds011Parser("pm-1", clock())
    got = []
    for i in range(len(data)):
        got += parser.feed(data[i : i + 1])
    got += parser.flush()
    assert got == readings(sds_values(1, 2) + sds_values(65535, 0), "pm-1")
    assert parser.rejects == Counter(garbage=1)


def test_sds011_false_header_in_garbage_does_not_hide_the_next_frame():
    # "AA C0" in the noise makes a candidate that swallows the start of the real frame
    parser = Sds011Parser("pm-1", clock())
    assert parse(parser, b"\xaa\xc0\x01" + sds_frame(55, 66)) == readings(sds_values(55, 66), "pm-1")
    assert parser.rejects == Counter(bad_tail=1)  # the false candidate; its bytes are not garbage again


# --- PMS5003: the data manual's layout ---------------------------------------------------------


def test_pms5003_commands_match_the_data_manual():
    assert pms5003.sleep_command().hex(" ") == "42 4d e4 00 00 01 73"
    assert pms5003.wakeup_command().hex(" ") == "42 4d e4 00 01 01 74"
    assert pms5003.passive_mode_command().hex(" ") == "42 4d e1 00 00 01 70"
    assert pms5003.active_mode_command().hex(" ") == "42 4d e1 00 01 01 71"
    assert pms5003.read_command().hex(" ") == "42 4d e2 00 00 01 71"


def test_pms5003_frame_fields_and_readings():
    frame = pms_frame(4, 6, 8, cf1=(5, 7, 9))
    assert len(frame) == 32
    values = parse_frame(frame)
    assert (values.pm1_cf1, values.pm25_cf1, values.pm10_cf1) == (5, 7, 9)
    assert (values.pm1, values.pm25, values.pm10) == (4, 6, 8)
    assert (values.over_0_3um, values.over_10um, values.reserved) == (300, 2, 0x9700)
    parser = Pms5003Parser("pm-2", clock())
    assert parse(parser, frame) == readings(pms_values(4, 6, 8), "pm-2")  # atmospheric, not CF=1


def test_pms5003_replies_lengths_and_checksums():
    good = pms_frame(10, 20, 30)
    bad_sum = good[:-1] + bytes([good[-1] ^ 1])
    bad_length = b"\x42\x4d\x00\x14" + good[4:]  # 20: a PMS3003's length
    sleep_ack = bytes.fromhex("42 4d 00 04 e4 00 01 77")
    mode_ack = bytes.fromhex("42 4d 00 04 e1 00 01 74")
    parser = Pms5003Parser("pm-2", clock())
    got = parse(parser, sleep_ack + bad_sum + mode_ack + good + bad_length[:4] + good + good[:20])
    assert got == readings(pms_values(10, 20, 30) * 2, "pm-2")
    assert parser.ignored == Counter(reply_sleep=1, reply_mode=1)
    assert parser.rejects == Counter(bad_checksum=1, bad_length=1, garbage=2, truncated=1)


# --- properties: both parsers ------------------------------------------------------------------

SDS_VALUES = st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
PMS_VALUES = st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))
SENSORS = {
    "sds011": (Sds011Parser, 0xAA, SDS_VALUES, lambda v: sds_frame(*v), lambda v: sds_values(*v)),
    "pms5003": (Pms5003Parser, 0x42, PMS_VALUES, lambda v: pms_frame(*v), lambda v: pms_values(*v)),
}


def no_header(sync: int) -> st.SearchStrategy[bytes]:
    """Garbage that cannot hold a frame: it lacks the header's first byte."""
    return st.binary(max_size=40).map(lambda b: b.replace(bytes([sync]), b"\x00"))


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def run(parser, data: bytes, cuts: list[int]) -> list[Reading]:
    out = []
    for chunk in chunked(data, cuts):
        out += parser.feed(chunk)
    return out + parser.flush()


@pytest.mark.parametrize("kind", sorted(SENSORS))
@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=8))
def test_arbitrary_bytes_never_raise(kind, data, cuts):
    parser = SENSORS[kind][0]("x", clock())
    got = run(parser, data, cuts)
    assert all(r.quantity in ("pm1", "pm25", "pm10") for r in got)
    assert sum(parser.rejects.values()) <= len(data) + 1


@pytest.mark.parametrize("kind", sorted(SENSORS))
@settings(max_examples=150, deadline=None)
@given(st.data())
def test_frames_in_headerless_garbage_are_all_recovered_exactly(kind, data):
    make, sync, values, frame, expected = SENSORS[kind]
    items = data.draw(st.lists(st.tuples(no_header(sync), values), max_size=6))
    tail = data.draw(no_header(sync))
    cuts = data.draw(st.lists(st.integers(0, 400), max_size=6))
    stream = b"".join(g + frame(v) for g, v in items) + tail
    parser = make("x", clock())
    got = run(parser, stream, cuts)
    assert got == readings([q for _, v in items for q in expected(v)], "x")
    garbage = sum(len(g) for g, _ in items) + len(tail)
    assert parser.rejects == (Counter(garbage=garbage) if garbage else Counter())


@pytest.mark.parametrize("kind", sorted(SENSORS))
@settings(max_examples=150, deadline=None)
@given(st.data())
def test_frames_in_any_garbage_are_recovered(kind, data):
    make, _, values, frame, expected = SENSORS[kind]
    items = data.draw(st.lists(st.tuples(st.binary(max_size=40), values), max_size=6))
    stream = b"".join(g + frame(v) for g, v in items)
    got = run(make("x", clock()), stream, data.draw(st.lists(st.integers(0, 400), max_size=6)))
    embedded = [r for _, v in items for r in readings(expected(v), "x")]
    # every embedded reading comes out, in order (garbage may add a frame of its own)
    remaining = iter(got)
    assert all(any(r == g for g in remaining) for r in embedded)


def bad_checksum(frame: bytes, sync: int) -> bytes:
    """The frame with a wrong checksum and no header byte inside (so no frame hides in it)."""
    inner = frame[2:-3].replace(bytes([sync]), b"\x00")
    frame = frame[:2] + inner + frame[-3:]
    if sync == 0xAA:  # SDS011: CS at [8], tail at [9]
        return frame[:8] + bytes([(sum(frame[2:8]) + 1) & 0xFF]) + frame[9:]
    good = sum(frame[:-2]) & 0xFFFF
    return frame[:-2] + ((good + 1) & 0xFFFF).to_bytes(2, "big")


@pytest.mark.parametrize("kind", sorted(SENSORS))
@settings(max_examples=150, deadline=None)
@given(st.data())
def test_every_bad_checksum_frame_is_counted(kind, data):
    make, sync, values, frame, expected = SENSORS[kind]
    items = data.draw(st.lists(st.tuples(no_header(sync), values, st.booleans()), max_size=8))
    stream = b"".join(g + (bad_checksum(frame(v), sync) if bad else frame(v)) for g, v, bad in items)
    parser = make("x", clock())
    got = run(parser, stream, data.draw(st.lists(st.integers(0, 400), max_size=6)))
    assert got == readings([q for _, v, bad in items if not bad for q in expected(v)], "x")
    assert parser.rejects["bad_checksum"] == sum(bad for _, _, bad in items)
    assert parser.rejects["garbage"] == sum(len(g) for g, _, _ in items)


def test_a_false_start_over_a_rejected_frames_end_leaves_the_byte_after_it_garbage():
    # Found by the test above: the bad checksum's last byte is the header's first (0x42), the garbage
    # byte after the frame its second ("BM"); that false start began inside the rejected frame.
    bad = bad_checksum(pms_frame(0, 26, 6143), 0x42)
    assert bad[-1] == 0x42
    parser = Pms5003Parser("x", clock())
    assert len(parser.feed(bad + b"M" + pms_frame(0, 0, 0))) == 3
    assert parser.rejects == {"bad_checksum": 1, "garbage": 1}


# --- duty cycle --------------------------------------------------------------------------------


def test_duty_schedule_phases_commands_and_late_steps():
    schedule = DutySchedule(DutyCycle(work_s=2, warmup_s=1, sleep_s=5))
    steps = [0.0, 0.9, 1.0, 2.9, 3.0, 7.9, 8.0, 9.5, 27.0, 34.0]
    got = [(t, *schedule.step(t)) for t in steps]
    w, k, s = Phase.WARMUP, Phase.WORK, Phase.SLEEP
    assert got == [
        (0.0, w, "work"),
        (0.9, w, None),
        (1.0, k, None),
        (2.9, k, None),
        (3.0, s, "sleep"),
        (7.9, s, None),
        (8.0, w, "work"),
        (9.5, k, None),
        (27.0, s, "sleep"),  # two cycles late, in a sleep: sleep (24..32 is the 4th cycle)
        (34.0, k, "work"),  # 32..40: awake again
    ]


def test_continuous_and_sleepless_schedules_wake_once():
    continuous = DutySchedule(None)
    assert [continuous.step(t) for t in (0, 1, 1e6)] == [
        (Phase.WORK, "work"),
        (Phase.WORK, None),
        (Phase.WORK, None),
    ]
    sleepless = DutySchedule(DutyCycle(work_s=1, warmup_s=2, sleep_s=0))
    assert [sleepless.step(t) for t in (0, 1, 3, 100)] == [
        (Phase.WARMUP, "work"),
        (Phase.WARMUP, None),
        (Phase.WORK, None),
        (Phase.WORK, None),
    ]


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("kind", ["sds011", "pms5003"])
def test_duty_cycled_driver_commands_and_discards(kind):
    driver_class, frame, wake, sleep = {
        "sds011": (Sds011, lambda n: sds_frame(n, n), sds011.work_command(), sds011.sleep_command()),
        "pms5003": (Pms5003, lambda n: pms_frame(n, n, n), pms5003.wakeup_command(), pms5003.sleep_command()),
    }[kind]
    transport, fake, got = MemoryTransport(eof=False), FakeTime(), []
    duty = DutyCycleConfig(work_s=2, warmup_s=1, sleep_s=3)  # the config model works as it is
    driver = driver_class("pm", transport, lambda stream, records: got.extend(records), clock(), duty, fake)
    kept = []
    for step in range(14):  # a frame every 0.5 s for 7 s: warm-up 0..1, work 1..3, sleep 3..6, warm-up 6..7
        fake.now = step * 0.5
        driver.tick()
        records = driver.feed(frame(step))
        kept += [step] if records else []
    driver.at_end()
    assert kept == [2, 3, 4, 5]
    assert driver.ignored == Counter(warmup=4, asleep=6)
    assert bytes(transport.written) == wake + sleep + wake + sleep
    assert driver.sent == Counter(work=2, sleep=2)


def test_a_command_that_cannot_be_sent_is_counted_not_raised(caplog):
    class Unplugged(MemoryTransport):
        def write(self, data: bytes) -> None:
            raise TransportError("serial port /dev/ttyUSB1 cannot send: gone: check the cable")

    driver = Sds011("pm", Unplugged(), lambda *_: None, clock())
    driver.tick()
    driver.at_end()
    assert driver.sent == Counter(failed=2)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [  # once per distinct failure, not once per command
        "event=command_failed driver=pm command=work "
        "error='serial port /dev/ttyUSB1 cannot send: gone: check the cable'"
    ]


def read_master(master: int, size: int, timeout: float = 3.0) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < size and time.monotonic() < deadline:
        try:
            got += os.read(master, size - len(got))
        except BlockingIOError:
            time.sleep(0.01)
    return got


def test_sds011_over_a_pty_with_a_duty_cycle(pty_pair):
    master, path = pty_pair
    os.set_blocking(master, False)
    got: list[Reading] = []
    with PtyTransport(path) as transport:
        duty = DutyCycle(work_s=0.6, warmup_s=0.3, sleep_s=0.6)
        driver = Sds011("pm-1", transport, lambda stream, records: got.extend(records), clock(), duty)
        driver.start()
        sent = 0
        start = time.monotonic()
        while time.monotonic() - start < 1.8:  # warm-up, work, sleep, and into the next warm-up
            os.write(master, sds_frame(sent, 1000 + sent))
            sent += 1
            time.sleep(0.05)
        time.sleep(0.3)
        driver.stop()
        commands = read_master(master, 4 * 19)
    wake, sleep = sds011.work_command(), sds011.sleep_command()
    assert commands == wake + sleep + wake + sleep  # the last sleep: on stop
    assert driver.records == len(got) > 0
    kept = {int(round(r.value * 10)) for r in got if r.quantity == "pm25"}
    assert len(got) == 2 * len(kept)
    assert driver.ignored["warmup"] > 0 and driver.ignored["asleep"] > 0
    assert len(kept) + driver.ignored["warmup"] + driver.ignored["asleep"] == sent
    assert driver.rejects == Counter()
    assert got[0].sensor == "pm-1" and got[1] == got[0]._replace(quantity="pm10", value=got[0].value + 100)


def test_pms5003_over_a_pty_continuously(pty_pair):
    master, path = pty_pair
    os.set_blocking(master, False)
    got: list[Reading] = []
    done = threading.Event()

    def sink(stream: str, records: list[Reading]) -> None:
        assert stream == "reading"
        got.extend(records)
        if len(got) >= 6:
            done.set()

    with PtyTransport(path) as transport:
        driver = Pms5003("pm-2", transport, sink, clock())
        driver.start()
        assert read_master(master, 7) == pms5003.wakeup_command()
        os.write(master, b"\x00\x42" + pms_frame(12, 34, 56) + pms_frame(1, 2, 3)[:10])
        os.write(master, pms_frame(1, 2, 3)[10:])
        assert done.wait(3)
        driver.stop()
        assert read_master(master, 7) == pms5003.sleep_command()
    assert got == readings(pms_values(12, 34, 56) + pms_values(1, 2, 3), "pm-2")
    assert driver.rejects == Counter(garbage=2)


# --- decode CLI --------------------------------------------------------------------------------


def test_decode_sds011_raw_dump(tmp_path):
    path = tmp_path / "pm.bin"
    good = sds_frame(123, 456)
    path.write_bytes(b"#\n" + good + good[:8] + b"\x00\xab" + sds_frame(1, 2, kind=0xC5) + good[:4])
    result = CliRunner().invoke(main, ["decode", "sds011", "--sensor", "pm-1", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split('"sensor": ')[1] for line in lines] == [
        '"pm-1", "quantity": "pm25", "value": 12.3}',
        '"pm-1", "quantity": "pm10", "value": 45.6}',
    ]
    assert result.stderr == "rejected: bad_checksum=1 garbage=2 truncated=1\nignored: reply_other=1\n"


def test_decode_pms5003_capture(tmp_path):
    path = tmp_path / "pm.cap"
    with CaptureWriter(path, device="/dev/ttyAMA0", baudrate=9600) as writer:
        writer.write(pms_frame(7, 8, 9)[:5])
        writer.write(pms_frame(7, 8, 9)[5:] + bytes.fromhex("42 4d 00 04 e4 00 01 77"))
    result = CliRunner().invoke(main, ["decode", "pms5003", str(path)])
    assert result.exit_code == 0, result.output
    assert [line[line.index('"sensor"') :] for line in result.stdout.splitlines()] == [
        '"sensor": "pms5003", "quantity": "pm1", "value": 7.0}',
        '"sensor": "pms5003", "quantity": "pm25", "value": 8.0}',
        '"sensor": "pms5003", "quantity": "pm10", "value": 9.0}',
    ]
    assert '"tsrc": "' in result.stdout
    assert result.stderr == "rejected: none\nignored: reply_sleep=1\n"


def test_decode_missing_file(tmp_path):
    result = CliRunner().invoke(main, ["decode", "sds011", str(tmp_path / "none.cap")])
    assert result.exit_code == 1
    assert result.stderr == f"replay file {tmp_path / 'none.cap'} not found: check the path\n"
