"""Small helpers the test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "the condition") -> None:
    """Poll ``condition`` until it is true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def sds_frame(pm25_tenths: int, pm10_tenths: int, device: int = 0xA160, kind: int = 0xC0) -> bytes:
    """An SDS011 data frame (PM in tenths of ug/m3), checksum and tail as the datasheet has them."""
    data = pm25_tenths.to_bytes(2, "little") + pm10_tenths.to_bytes(2, "little") + device.to_bytes(2, "big")
    return bytes([0xAA, kind]) + data + bytes([sum(data) & 0xFF, 0xAB])


def pms_frame(pm1: int, pm25: int, pm10: int, cf1: tuple[int, int, int] = (0, 0, 0)) -> bytes:
    """A PMS5003 32-byte frame with the given atmospheric PM values (ug/m3)."""
    words = (*cf1, pm1, pm25, pm10, 300, 100, 40, 16, 4, 2, 0x9700)
    body = b"\x42\x4d\x00\x1c" + b"".join(w.to_bytes(2, "big") for w in words)
    return body + (sum(body) & 0xFFFF).to_bytes(2, "big")
