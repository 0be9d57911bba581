"""Captures: the file format, replay timing, truncated tails, looping, and `ioc-edge record`."""

from __future__ import annotations

import os
import struct
import threading
import time

import pytest
from click.testing import CliRunner

from drivers.capture import (
    MAGIC,
    CaptureHeader,
    CaptureTransport,
    CaptureWriter,
    is_capture,
    open_recording,
    record,
)
from drivers.transport import EndOfStream, ReplayTransport, TransportError
from edge.cli import main
from edge.devices.transport import CaptureTransportConfig, open_transport


class FakeTime:
    def __init__(self, now: float = 50.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def write_capture(path, chunks: list[tuple[float, bytes]], **header) -> None:
    """A capture whose chunks arrived at the given seconds after the start."""
    fake = FakeTime()
    with CaptureWriter(path, monotonic=fake, wall=lambda: 1_772_352_000.0, **header) as writer:
        for at, data in chunks:
            fake.now = 50.0 + at
            writer.write(data)


def read_all(transport, timeout: float = 0.5) -> list[bytes]:
    out = []
    while True:
        try:
            data = transport.read(timeout)
        except EndOfStream:
            return out
        if data:
            out.append(data)


def test_file_format_is_the_documented_one(tmp_path):
    path = tmp_path / "pm.cap"
    write_capture(path, [(0.0, b"\xaa\xc0"), (1.5, b"xyz")], device="/dev/serial/by-id/usb A", baudrate=9600)
    raw = path.read_bytes()
    header, body = raw.split(b"\n", 1)
    assert (
        header == MAGIC + b" device=/dev/serial/by-id/usb%20A baudrate=9600 started=2026-03-01T08:00:00.000Z"
    )
    assert body == struct.pack("<QI", 0, 2) + b"\xaa\xc0" + struct.pack("<QI", 1_500_000, 3) + b"xyz"
    with CaptureTransport(path, speed=0) as replay:
        assert replay.header == CaptureHeader("/dev/serial/by-id/usb A", 9600, "2026-03-01T08:00:00.000Z")
        assert read_all(replay) == [b"\xaa\xc0xyz"]  # speed 0: everything at once
    assert is_capture(path) and not is_capture(tmp_path / "none")


def test_writer_never_overwrites(tmp_path):
    path = tmp_path / "pm.cap"
    path.write_bytes(b"precious")
    with pytest.raises(TransportError) as caught:
        CaptureWriter(path)
    assert str(caught.value) == f"capture file {path} already exists: choose another name"
    assert path.read_bytes() == b"precious"


def test_not_a_capture(tmp_path):
    path = tmp_path / "dump.bin"
    path.write_bytes(b"\xaa\xc0 raw bytes\n")
    with pytest.raises(TransportError) as caught:
        CaptureTransport(path)
    assert str(caught.value) == f"{path} is not an ioc-edge capture (no '# ioc-edge capture v1' header line)"


def test_replay_honours_the_recorded_timing_at_speed_10(tmp_path):
    path = tmp_path / "pm.cap"
    write_capture(path, [(0.0, b"a"), (2.0, b"b"), (2.0, b"c"), (5.0, b"d")])  # 0.5 s at speed 10
    arrivals = []
    with CaptureTransport(path, speed=10) as replay:
        start = time.monotonic()
        while True:
            try:
                data = replay.read(0.05)
            except EndOfStream:
                break
            if data:
                arrivals.append((data, round(time.monotonic() - start, 2)))
    assert [data for data, _ in arrivals] == [b"a", b"bc", b"d"]  # chunks due together come together
    times = [t for _, t in arrivals]
    assert times[0] < 0.05
    assert 0.18 <= times[1] <= 0.3
    assert 0.48 <= times[2] <= 0.6


def test_replay_timing_with_an_injected_clock(tmp_path):
    path = tmp_path / "pm.cap"
    write_capture(path, [(0.0, b"a"), (1.0, b"b"), (3.0, b"c")])
    fake = FakeTime(0.0)
    replay = CaptureTransport(path, speed=2, monotonic=fake)
    assert replay.read(0) == b"a"
    fake.now = 0.49
    assert replay.read(0) == b""
    fake.now = 1.6  # both b (due 0.5) and c (due 1.5) are due
    assert replay.read(0) == b"bc"
    with pytest.raises(EndOfStream, match=f"end of capture file {path}"):
        replay.read(0)
    replay.close()


def test_truncated_last_record_is_ignored(tmp_path):
    path = tmp_path / "pm.cap"
    write_capture(path, [(0.0, b"first"), (0.1, b"second"), (0.2, b"cut short")])
    whole = path.read_bytes()
    for cut in (3, 12, 12 + 4):  # inside the record's head, at its end, inside its bytes
        path.write_bytes(whole[: len(whole) - len(b"cut short") - 12 + cut])
        with CaptureTransport(path, speed=0) as replay:
            assert read_all(replay) == [b"firstsecond"]
            assert replay.truncated is True
    path.write_bytes(whole)
    with CaptureTransport(path, speed=0) as replay:
        assert read_all(replay) == [b"firstsecondcut short"] and replay.truncated is False


def test_an_absurd_length_is_a_truncation_not_a_huge_read(tmp_path):
    path = tmp_path / "pm.cap"
    write_capture(path, [(0.0, b"ok")])
    with open(path, "ab") as file:
        file.write(struct.pack("<QI", 10, 0xFFFFFFFF) + b"junk")
    with CaptureTransport(path, speed=0) as replay:
        assert read_all(replay) == [b"ok"] and replay.truncated


def test_loop_starts_over_keeping_the_rhythm(tmp_path):
    path = tmp_path / "pm.cap"
    write_capture(path, [(0.0, b"a"), (1.0, b"b")])
    fake = FakeTime(0.0)
    replay = CaptureTransport(path, speed=1, loop=True, monotonic=fake)
    got = []
    for step in range(7):
        fake.now = step * 0.5
        got.append(replay.read(0))
    assert got == [b"a", b"", b"b", b"", b"a", b"", b"b"]  # round two: one interval after round one
    replay.write(b"\xaa\xb4")
    assert replay.written == bytearray(b"\xaa\xb4")
    replay.close()


def test_open_recording_tells_captures_from_raw_dumps(tmp_path):
    capture, dump = tmp_path / "pm.cap", tmp_path / "pm.bin"
    write_capture(capture, [(0.0, b"\xaa")])
    dump.write_bytes(b"# not a comment in a binary dump\n\xaa")
    with open_recording(capture) as replay:
        assert isinstance(replay, CaptureTransport) and read_all(replay) == [b"\xaa"]
    with open_recording(dump) as replay:
        assert isinstance(replay, ReplayTransport)
        assert b"".join(read_all(replay)) == b"# not a comment in a binary dump\n\xaa"


def test_open_transport_from_a_capture_config(tmp_path):
    path = tmp_path / "pm.cap"
    write_capture(path, [(0.0, b"x")])
    transport = open_transport(CaptureTransportConfig(type="capture", path=path, speed=0, loop=False))
    assert isinstance(transport, CaptureTransport) and read_all(transport) == [b"x"]
    transport.close()


def test_round_trip_through_a_pty(pty_pair, tmp_path):
    master, path = pty_pair
    out = tmp_path / "pm.cap"
    from drivers.transport import PtyTransport

    def device() -> None:
        for n in range(5):
            os.write(master, bytes([n]) * 10)
            time.sleep(0.1)

    with PtyTransport(path) as pty, CaptureWriter(out, device=path) as writer:
        sender = threading.Thread(target=device)
        sender.start()
        reports = []
        stats = record(pty, writer, seconds=0.8, progress=lambda s: reports.append(s.bytes), every_s=0.3)
        sender.join()
    assert stats.bytes == 50 and stats.chunks >= 2 and 0.75 <= stats.seconds < 1.5
    assert len(reports) >= 1
    with CaptureTransport(out, speed=0) as replay:
        assert b"".join(read_all(replay)) == b"".join(bytes([n]) * 10 for n in range(5))


def test_cli_record_from_a_pty(pty_pair, tmp_path):
    master, path = pty_pair
    out = tmp_path / "pm.cap"
    timer = threading.Timer(0.2, os.write, args=(master, b"\xaa\xc0 some bytes"))
    timer.start()
    result = CliRunner().invoke(main, ["record", "--pty", path, "--seconds", "0.6", str(out)])
    timer.join()
    assert result.exit_code == 0, result.output
    assert result.stderr == f"{out}: 13 bytes in 1 chunks\n"
    with CaptureTransport(out, speed=0) as replay:
        assert replay.header.device == path and replay.header.baudrate == 0
        assert read_all(replay) == [b"\xaa\xc0 some bytes"]


def test_cli_record_needs_one_source(tmp_path):
    result = CliRunner().invoke(main, ["record", str(tmp_path / "x.cap")])
    assert result.exit_code == 2 and "give one of --port or --pty" in result.stderr
    result = CliRunner().invoke(main, ["record", "--port", "/dev/ttyUSB99", str(tmp_path / "x.cap")])
    assert result.exit_code == 1
    assert result.stderr.startswith("serial port /dev/ttyUSB99 not found")
    assert not (tmp_path / "x.cap").exists()
