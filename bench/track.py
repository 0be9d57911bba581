"""The signed track log: bytes on the wire per position, signing and chaining rate, verification rate.

Figures (``name: value unit``):

- ``track_wire_bytes_per_position_generated`` / ``_ais_nmea``: the full chain (``track`` records in
  5,000-record messages, plus a ``track_sig`` every 600 s, its certificate chain once a day) for a
  generated 1 Hz track and for ais-nmea.log; ``position_wire_bytes_per_position_*``: the live
  ``position`` stream of the same fixes, unthinned; ``thinned_*``: after ``edge.thinning`` (10 m,
  one at least every 2 h), per position of the track;
- ``archive_bytes_per_position``: the node's archive of a day at 1 Hz committed a second at a time,
  once compacted (``_uncompacted``: before), ``compaction_positions_per_s``;
- ``chain_positions_per_s``: a node chaining positions one second at a time (TrackLog.add's work:
  canonical bytes and hash), ``sign_per_s``: ECDSA P-256 signatures a second;
- ``verify_positions_per_s``: ``ioc-center track verify`` of an export of ``--records`` 1 Hz
  positions (default 3,000,000: 35 days; ``--records 31536000``: a year, 1.5 GB on disk) signed
  every 600; ``raw_sha256_chain_per_s``: a bare
  hashlib chain over the same canonical bytes (the floor: a chain cannot be hashed in parallel);
  ``ratio_vs_raw``; ``verify_year_s``: a year of 1 Hz (31,536,000 positions) at that rate
  (target < 60 s); ``export_bytes_per_position``.

Run: ``.venv/bin/python bench/track.py [--records N]``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from _common import SHARED, figure, vessel_track

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from conftest import make_identity  # noqa: E402 - the same steps as ioc-center ca init and ioc-edge provision

from common.clock import Clock  # noqa: E402
from drivers.nmea import NmeaParser  # noqa: E402
from edge.thinning import TrackThinner  # noqa: E402
from provisioning import pki  # noqa: E402
from provisioning.signing import DeviceSigner  # noqa: E402
from sync.chain import HASH, WIDTH, ChainHead, canonical, genesis, link, sig_message  # noqa: E402
from sync.records import Position, TrackPoint, TrackSig  # noqa: E402
from sync.store import Store  # noqa: E402
from sync.trackfile import TrackFileWriter, verify  # noqa: E402
from sync.wire import TRACK, Batch, encode_batch  # noqa: E402

YEAR = 365 * 86_400
SIGN_EVERY = 600
EPOCH = "0123456789abcdef"


def points_of(positions: list[Position]) -> list[TrackPoint]:
    return [
        TrackPoint(
            p.ts_ms, p.tsrc, p.clock_ms, i, p.lat, p.lon, p.speed_kn, p.course_deg, p.fix, p.sats, p.hdop
        )
        for i, p in enumerate(positions)
    ]


def wire_bytes(stream: str, records: list, per_message: int = 5000) -> int:
    seq = 1
    total = 0
    for lo in range(0, len(records), per_message):
        part = records[lo : lo + per_message]
        total += len(
            encode_batch(Batch("vessel-042", EPOCH, stream, list(range(seq, seq + len(part))), part))
        )
        seq += len(part)
    return total


def sig_bytes(signer: DeviceSigner, n: int) -> float:
    """Wire bytes of the signatures of ``n`` positions at 1 Hz: one message each, the chain once a day."""
    sig = TrackSig(0, 1, 0, 599, b"\x01" * 32, signer.sign(b"x"), b"")
    plain = len(encode_batch(Batch("vessel-042", EPOCH, "track_sig", [1], [sig])))
    with_pem = len(
        encode_batch(Batch("vessel-042", EPOCH, "track_sig", [1], [sig._replace(chain_pem=signer.chain_pem)]))
    )
    per_day = 86_400 // SIGN_EVERY
    return n / 86_400 * ((per_day - 1) * plain + with_pem)


def thinned(positions: list[Position]) -> list[Position]:
    thinner = TrackThinner(tolerance_m=10, max_interval_s=7200)
    kept = [k for p in positions for k in thinner.add(p)]
    return kept + thinner.flush()


def wire_figures(signer: DeviceSigner) -> None:
    parser = NmeaParser(Clock())
    real = parser.feed((SHARED / "nmea" / "ais-nmea.log").read_bytes()) + parser.flush()
    for name, positions in (("generated", vessel_track(86_400)), ("ais_nmea", real)):
        n = len(positions)
        track = wire_bytes("track", points_of(positions)) + sig_bytes(signer, n)
        figure(f"track_wire_bytes_per_position_{name}", track / n, "B")
        figure(f"position_wire_bytes_per_position_{name}", wire_bytes("position", positions) / n, "B")
        kept = thinned(positions)
        figure(f"thinned_wire_bytes_per_position_{name}", wire_bytes("position", kept) / n, "B")
        figure(f"thinned_kept_fraction_{name}", len(kept) / n)


def archive_figures(tmp: Path) -> None:
    """The node's archive of a day at 1 Hz, committed a second at a time as the recorder does."""
    store = Store(tmp / "archive.db")
    points = points_of(vessel_track(86_400, seed=5))
    for p in points:
        store.write({"track": [p]})
    body = "SELECT sum(length(body)) FROM a_track"
    figure(
        "archive_bytes_per_position_uncompacted", store.conn.execute(body).fetchone()[0] / len(points), "B"
    )
    start = time.perf_counter()
    store.compact_archive("track")
    took = time.perf_counter() - start
    figure("archive_bytes_per_position", store.conn.execute(body).fetchone()[0] / len(points), "B")
    figure("compaction_positions_per_s", len(points) / took, "1/s")
    store.close()


def rate_figures(signer: DeviceSigner) -> None:
    positions = vessel_track(20_000, seed=3)
    head = ChainHead.start("vessel-042", EPOCH)
    start = time.perf_counter()
    for p in points_of(positions):  # one at a time, as a GPS delivers them
        head.append([p])
    figure("chain_positions_per_s", len(positions) / (time.perf_counter() - start), "1/s")
    message = sig_message("vessel-042", EPOCH, 599, head.hash, 1_764_000_000_000)
    start, n = time.perf_counter(), 500
    for _ in range(n):
        signer.sign(message)
    figure("sign_per_s", n / (time.perf_counter() - start), "1/s")


BLOCK = SIGN_EVERY * 100


def synthetic_blocks(n: int) -> Iterator[np.ndarray]:
    """Canonical rows of ``n`` 1 Hz positions, BLOCK at a time: a generated day repeated, time moving on."""
    day = canonical(points_of(vessel_track(min(n, 86_400), seed=4)))
    for lo in range(0, n, BLOCK):
        idx = np.arange(lo, min(lo + BLOCK, n))
        rows = day[idx % len(day)]
        shift = (idx // len(day)) * len(day) * 1000
        rows[:, 0] += shift
        rows[:, 2] += shift
        rows[:, 3] = idx
        yield rows


def write_export(path: Path, signer: DeviceSigner, n: int) -> None:
    """An export of ``n`` positions signed every SIGN_EVERY records, as ``ioc-edge track export`` does."""
    prev = genesis("vessel-042", EPOCH)
    header = {
        "device": "vessel-042", "chain": EPOCH, "columns": list(TRACK.names), "first_idx": 0,
        "prev_hash": prev.hex(), "certificates": [signer.chain_pem.decode()], "signatures": [],
    }  # fmt: skip
    now = time.time_ns() // 1_000_000
    with TrackFileWriter(path, header) as out:
        for part in synthetic_blocks(n):
            lo = int(part[0, 3])
            hashes = link(prev, part.tobytes())
            prev = hashes[-HASH:]
            ends = list(range(SIGN_EVERY - 1, len(part), SIGN_EVERY))
            if lo + len(part) == n and (not ends or ends[-1] != len(part) - 1):
                ends.append(len(part) - 1)  # the last record is signed too, as at a node's stop
            for k in ends:
                digest = hashes[k * HASH : (k + 1) * HASH]
                sig = signer.sign(sig_message("vessel-042", EPOCH, lo + k, digest, now))
                header["signatures"].append(
                    {"idx": lo + k, "signed_ms": now, "hash": digest.hex(), "signature": sig.hex(), "cert": 0}
                )
            out.write(part, hashes)


def raw_chain_s(n: int) -> float:
    """Seconds a bare hashlib chain takes over the same canonical bytes (generating them not counted)."""
    took, h, sha = 0.0, b"\0" * 32, hashlib.sha256
    for part in synthetic_blocks(n):
        canon = part.tobytes()
        mv = memoryview(canon)
        start = time.perf_counter()
        for off in range(0, len(canon), WIDTH):
            h = sha(h + mv[off : off + WIDTH]).digest()
        took += time.perf_counter() - start
    return took


def verify_figures(signer: DeviceSigner, ca, records: int, tmp: Path) -> None:
    path = tmp / "bench.track"
    write_export(path, signer, records)
    figure("export_bytes_per_position", path.stat().st_size / records, "B")
    start = time.perf_counter()
    report = verify(path, ca)
    took = time.perf_counter() - start
    assert report.records == records, report
    raw = raw_chain_s(records)
    figure("verify_positions_per_s", records / took, "1/s")
    figure("raw_sha256_chain_per_s", records / raw, "1/s")
    figure("ratio_vs_raw", raw / took)
    figure("verify_year_s", YEAR * took / records, "s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3_000_000, help="Positions in the verified export.")
    args = parser.parse_args()
    if not (SHARED / "nmea").is_dir():
        sys.exit(f"{SHARED / 'nmea'} not found: set IOC_EDGE_SHARED to the shared/ directory")
    with tempfile.TemporaryDirectory() as tmp:
        tls = make_identity(Path(tmp))
        signer = DeviceSigner.load(tls)
        wire_figures(signer)
        rate_figures(signer)
        archive_figures(Path(tmp))
        verify_figures(signer, pki.load_certificates(tls.ca)[0], args.records, Path(tmp))


if __name__ == "__main__":
    main()
