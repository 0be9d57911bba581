"""Byte transports: replay pacing, memory, pseudo-terminal, serial via pyserial, end of stream."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from common.errors import IocEdgeError
from drivers.transport import (
    EndOfStream,
    MemoryTransport,
    PtyTransport,
    ReopeningTransport,
    ReplayTransport,
    SerialTransport,
    Transport,
    TransportError,
)
from edge.devices.transport import (
    PtyTransportConfig,
    ReplayTransportConfig,
    SerialTransportConfig,
    open_transport,
)

CAPTURE = b"# Name: test receiver\n#\n$GPGGA,1*00\r\n# not a header any more\r\n$GPRMC,2*00\r\n"
DATA = CAPTURE[CAPTURE.index(b"$") :]


def read_all(transport, timeout: float = 0.2) -> bytes:
    out = b""
    while True:
        try:
            out += transport.read(timeout)
        except EndOfStream:
            return out


@pytest.fixture
def capture(tmp_path) -> Path:
    path = tmp_path / "gps.log"
    path.write_bytes(CAPTURE)
    return path


def test_replay_skips_only_leading_comment_lines(capture):
    with ReplayTransport(capture, speed=0) as replay:
        assert read_all(replay) == DATA
        with pytest.raises(EndOfStream, match=f"end of replay file {capture}"):
            replay.read(0.1)


def test_replay_pacing_is_roughly_honoured(tmp_path):
    path = tmp_path / "big.log"
    path.write_bytes(b"#c\n" + b"$" * 10_000)
    replay = ReplayTransport(path, speed=1.0, baudrate=9600)  # 960 bytes/s
    start = time.monotonic()
    got = 0
    while time.monotonic() - start < 0.5:
        got += len(replay.read(0.1))
    assert 380 <= got <= 560  # 480 expected in 0.5 s
    replay.close()


def test_replay_speed_factor_and_empty_reads(tmp_path):
    path = tmp_path / "g.log"
    path.write_bytes(b"x" * 1000)
    replay = ReplayTransport(path, speed=0.01, baudrate=4800)  # 4.8 bytes/s
    start = time.monotonic()
    first = replay.read(0.05)
    assert len(first) <= 1 and time.monotonic() - start < 0.2
    replay.close()


def test_replay_loop_starts_over_after_the_comments(capture):
    replay = ReplayTransport(capture, speed=0, loop=True)
    got = b""
    while len(got) < 3 * len(DATA):
        got += replay.read(0.1)
    assert got[: 3 * len(DATA)] == DATA * 3


def test_replay_missing_file(tmp_path):
    with pytest.raises(TransportError) as caught:
        ReplayTransport(tmp_path / "none.log")
    assert str(caught.value) == f"replay file {tmp_path / 'none.log'} not found: check the path"
    assert caught.value.errno == 2
    assert isinstance(caught.value, OSError) and isinstance(caught.value, IocEdgeError)


def test_memory_transport_chunks_then_end_of_stream():
    memory = MemoryTransport(b"abcdefg", chunk=3)
    assert [memory.read(0), memory.read(0), memory.read(0)] == [b"abc", b"def", b"g"]
    with pytest.raises(EndOfStream):
        memory.read(0)
    assert isinstance(EndOfStream(), EOFError)


def test_memory_transport_waits_for_pushed_bytes():
    memory = MemoryTransport(eof=False)
    assert memory.read(0.01) == b""
    threading.Timer(0.05, memory.push, args=(b"late",)).start()
    start = time.monotonic()
    assert memory.read(2.0) == b"late"
    assert time.monotonic() - start < 1.0
    memory.finish()
    with pytest.raises(EndOfStream):
        memory.read(1.0)


def test_pty_transport_reads_what_the_master_writes(pty_pair):
    master, path = pty_pair
    with PtyTransport(path) as pty:
        assert pty.read(0.05) == b""
        os.write(master, b"$GPGGA,1*00\r\n")
        got = b""
        while len(got) < 13:
            got += pty.read(1.0)
        assert got == b"$GPGGA,1*00\r\n"  # raw mode: no CR/LF translation


def test_pty_transport_missing_path():
    with pytest.raises(TransportError, match="pseudo-terminal /dev/pts/no-such not found"):
        PtyTransport("/dev/pts/no-such")


def test_serial_transport_on_a_pty(pty_pair):
    master, path = pty_pair
    serial = SerialTransport(path, baudrate=9600)
    try:
        os.write(master, b"\xb5b binary and $GPRMC\r\n")
        got = b""
        deadline = time.monotonic() + 2
        while len(got) < 22 and time.monotonic() < deadline:
            got += serial.read(0.5)
        assert got == b"\xb5b binary and $GPRMC\r\n"
        assert serial.read(0.05) == b""
    finally:
        serial.close()


def test_serial_port_not_found_says_what_to_do():
    with pytest.raises(TransportError) as caught:
        SerialTransport("/dev/ttyUSB99")
    assert str(caught.value) == (
        "serial port /dev/ttyUSB99 not found: check the cable and `ls /dev/ttyUSB* /dev/ttyACM*`"
    )


def test_open_transport_from_config(capture, pty_pair):
    _, path = pty_pair
    replay = open_transport(ReplayTransportConfig(type="replay", path=capture, speed=0))
    assert isinstance(replay, ReplayTransport) and read_all(replay) == DATA
    pty = open_transport(PtyTransportConfig(type="pty", path=path))
    assert isinstance(pty, PtyTransport)
    pty.close()
    serial = open_transport(SerialTransportConfig(type="serial", port=path, baudrate=115200))
    assert isinstance(serial, SerialTransport)
    serial.close()


def test_base_transport_cannot_send():
    class ReadOnly(Transport):
        name = "gps"

    with pytest.raises(TransportError) as caught:
        ReadOnly().write(b"x")
    assert str(caught.value) == "gps: this transport cannot send"


def test_memory_and_replay_keep_what_was_written(capture):
    memory = MemoryTransport(b"")
    memory.write(b"\xaa\xb4")
    memory.write(b"\x06")
    assert memory.written == bytearray(b"\xaa\xb4\x06")
    with ReplayTransport(capture, speed=0) as replay:
        replay.write(b"sleep")
        assert replay.written == bytearray(b"sleep") and read_all(replay) == DATA  # nothing else changed


def test_replay_without_comment_skipping_keeps_every_byte(capture):
    with ReplayTransport(capture, speed=0, comments=False) as replay:
        assert read_all(replay) == CAPTURE


def test_pty_transport_writes_to_the_master(pty_pair):
    master, path = pty_pair
    with PtyTransport(path) as pty:
        pty.write(b"\xaa\xb4\x06\x01\x00\r\n")
        assert os.read(master, 100) == b"\xaa\xb4\x06\x01\x00\r\n"  # raw: no CR/LF translation
    with pytest.raises(TransportError, match=f"pseudo-terminal {path} is closed"):
        pty.write(b"x")


def test_serial_transport_writes(pty_pair):
    master, path = pty_pair
    with SerialTransport(path, baudrate=9600) as serial:
        serial.write(b"\x42\x4d\xe4\x00\x00\x01\x73")
        got = b""
        deadline = time.monotonic() + 2
        while len(got) < 7 and time.monotonic() < deadline:
            got += os.read(master, 100)
    assert got == b"\x42\x4d\xe4\x00\x00\x01\x73"


def test_reopening_transport_forwards_writes_and_reopens_after_failure():
    opened: list[MemoryTransport] = []

    class Flaky(MemoryTransport):
        def write(self, data: bytes) -> None:
            if data == b"fail":
                raise TransportError("memory: unplugged")
            super().write(data)

    def opener() -> MemoryTransport:
        opened.append(Flaky(b""))
        return opened[-1]

    transport = ReopeningTransport(opener, name="pm-1")
    transport.write(b"work")  # opens the device when nothing read yet
    with pytest.raises(TransportError, match="memory: unplugged"):
        transport.write(b"fail")
    transport.write(b"sleep")
    assert [bytes(t.written) for t in opened] == [b"work", b"sleep"]
