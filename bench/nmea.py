"""Throughput of the NMEA parser against a bare pynmea2 loop over the same sentences.

Feeds the bytes of every capture in ``$IOC_EDGE_SHARED/nmea`` (default ``../shared``) to
:class:`drivers.nmea.NmeaParser`, repeated for a few seconds, and compares its sentences per
second with ``for line in lines: pynmea2.parse(line)`` over the same lines. The parser must
reach at least 0.9 times the bare loop although it also frames, checks, merges and stamps.

Run: ``python bench/nmea.py [--seconds 3]``. Prints one ``name: value unit`` figure a line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pynmea2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.clock import Clock  # noqa: E402
from drivers.nmea import NmeaParser  # noqa: E402

HERE = Path(__file__).resolve().parent


def load_captures(shared: Path) -> list[bytes]:
    """The byte stream of each capture, without its leading ``#`` comment lines."""
    streams = []
    for path in sorted((shared / "nmea").glob("*.log")):
        lines = path.read_bytes().splitlines(keepends=True)
        while lines and lines[0].startswith(b"#"):
            lines.pop(0)
        streams.append(b"".join(lines))
    return streams


def run_parser(streams: list[bytes], seconds: float) -> tuple[float, int, int]:
    """Sentences per second of NmeaParser.feed over the streams (fed in 4 KiB reads)."""
    chunks = [[s[i : i + 4096] for i in range(0, len(s), 4096)] for s in streams]
    clock = Clock(synced=lambda: False)
    sentences = positions = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for stream in chunks:
            parser = NmeaParser(clock)
            for chunk in stream:
                positions += len(parser.feed(chunk))
            positions += len(parser.flush())
            sentences += parser.sentences
    return sentences / (time.perf_counter() - start), sentences, positions


def run_raw(streams: list[bytes], seconds: float) -> float:
    """Sentences per second of a bare ``pynmea2.parse`` loop over the same lines."""
    lines = [line.decode("ascii", "replace") for s in streams for line in s.splitlines() if line.strip()]
    parsed = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for line in lines:
            # try/except, not contextlib.suppress: that costs more per line and would flatter the ratio
            try:  # noqa: SIM105
                pynmea2.parse(line)
            except Exception:
                pass
            parsed += 1
    return parsed / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    shared = Path(os.environ.get("IOC_EDGE_SHARED", HERE.parent.parent / "shared"))
    streams = load_captures(shared)
    if not streams:
        sys.exit(f"no captures in {shared / 'nmea'}: set IOC_EDGE_SHARED to the shared/ directory")
    raw = run_raw(streams, args.seconds)
    ours, sentences, positions = run_parser(streams, args.seconds)
    print(f"captures: {len(streams)}")
    print(f"sentences: {sentences}")
    print(f"positions: {positions}")
    print(f"sentences_per_s: {ours:.0f}")
    print(f"raw_sentences_per_s: {raw:.0f}")
    print(f"ratio_vs_raw: {ours / raw:.2f}")


if __name__ == "__main__":
    main()
