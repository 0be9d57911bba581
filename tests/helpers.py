"""Small helpers the test modules share (fixtures live in conftest.py; topic helpers in support_*.py)."""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable

import click
import pytest
from click.testing import CliRunner


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
