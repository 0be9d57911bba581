"""Small helpers the test modules share (fixtures live in conftest.py; topic helpers in support_*.py)."""

from __future__ import annotations

import datetime
import itertools
import logging
import os
import socket
import time
from collections.abc import Callable

import click
import pytest
from click.testing import CliRunner


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on and no other pytest-xdist worker of this run picks.

    Tests pick a port, then start mosquitto, PostgreSQL or a relay on it, and stop and restart them on
    it: another worker picking the same port in between would take it, or be reached by this worker's
    clients. So each worker keeps only the kernel's picks of its own share (``port // 2`` modulo the
    workers: Linux hands out the odd ports first). Serially every pick is kept.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # set in each worker: gw0, gw1, ...
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    held: list[socket.socket] = []  # bound until the end, so the kernel offers another port each time
    try:
        while True:
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            if port // 2 % workers == int(worker.removeprefix("gw")):
                return port
    finally:
        for s in held:
            s.close()


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "the condition") -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def now_ms() -> int:
    """This machine's time in ms since the epoch (what the IOC stamps as a record's arrival)."""
    return time.time_ns() // 1_000_000


def nmea_sentence(body: str, start: str = "$") -> bytes:
    """``body`` framed as an NMEA 0183 sentence: ``$`` (``!`` for AIS), ``*``, its checksum, CR LF."""
    checksum = 0
    for ch in body.encode():
        checksum ^= ch
    return f"{start}{body}*{checksum:02X}\r\n".encode()


def nmea_fix(ts_ms: int, lat: float, lon: float) -> bytes:
    """RMC then GGA of one valid fix at UTC ``ts_ms``, at ``lat``/``lon`` in decimal degrees."""
    when = datetime.datetime.fromtimestamp(ts_ms / 1000, datetime.UTC)
    tod, day = when.strftime("%H%M%S.") + f"{when.microsecond // 10_000:02d}", when.strftime("%d%m%y")
    la = f"{int(abs(lat)):02d}{abs(lat) % 1 * 60:09.6f},{'N' if lat >= 0 else 'S'}"
    lo = f"{int(abs(lon)):03d}{abs(lon) % 1 * 60:09.6f},{'E' if lon >= 0 else 'W'}"
    return nmea_sentence(f"GPRMC,{tod},A,{la},{lo},5.0,45.0,{day},,,A") + nmea_sentence(
        f"GPGGA,{tod},{la},{lo},1,09,0.9,3.0,M,0.0,M,,"
    )


def cli(command: click.Command, args: list[str]) -> str:
    """The output of ``command args`` run by click's test runner; fails showing it unless the exit is 0."""
    result = CliRunner().invoke(command, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def capture_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Capture every log record from here on (the CLI's setup_logging replaced the root's handlers)."""
    logging.getLogger().addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)


def pin_edges(pin, after: int = 0) -> list[tuple[float, bool]]:
    """``(seconds after the first, state)`` of each change in a gpiozero mock pin's history after its
    first ``after`` changes (its ``states`` hold the time since the previous change, not a clock)."""
    times = list(itertools.accumulate(state.timestamp for state in pin.states))
    changes = list(zip(times, (bool(state.state) for state in pin.states), strict=True))[1 + after :]
    return [(round(t - changes[0][0], 4), state) for t, state in changes]
