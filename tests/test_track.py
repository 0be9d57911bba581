"""The node's track log: real NMEA captures chained, signed, exported and verified; every tampering named."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_identity
from helpers import wait_for
from support_nodes import Vessel, ca_of, failure, tampered

from edge.cli import main as edge_cli
from edge.config import ConfigError, parse_config
from edge.track import TrackExportError, export_track
from ioc.cli import main as center_cli
from provisioning.tls import TlsFiles
from sync.chain import HASH, NULL, link
from sync.records import Position, TrackPoint
from sync.store import Store
from sync.trackfile import read, verify


@pytest.fixture(scope="module")
def exported(tmp_path_factory, shared_dir) -> Iterator[tuple[Path, TlsFiles, int]]:
    """ais-nmea.log through the parser into a track log, exported whole: (file, identity, positions)."""
    tmp = tmp_path_factory.mktemp("track")
    tls = make_identity(tmp)
    vessel = Vessel(tmp / "store.db", tls)
    count = vessel.replay(shared_dir / "nmea" / "ais-nmea.log", sign_every=100)
    vessel.stop()
    vessel.export(tmp / "ais.track")
    yield tmp / "ais.track", tls, count


@pytest.mark.parametrize(
    "capture",
    ["ais-nmea.log", "ublox-8.log", "sirfstarv-nmea.log", "nmea-rtk.log", "gp-320fw-2019-04-06-overflow.log"],
)
def test_a_replayed_capture_chains_exports_and_verifies(capture, shared_dir, tmp_path, identity):
    vessel = Vessel(tmp_path / "store.db", identity)
    count = vessel.replay(shared_dir / "nmea" / capture)
    vessel.stop()
    assert count > 0
    header = vessel.export(tmp_path / "out.track")
    report = verify(tmp_path / "out.track", ca_of(identity))
    assert (report.records, report.first_idx, report.last_idx, report.no_fix) == (count, 0, count - 1, 0)
    assert report.device == "vessel-042" and report.chain == header["chain"] and report.ca_checked
    assert report.signatures == len(header["signatures"]) == vessel.track.signatures >= 1


def test_verify_cli_prints_a_summary_and_exits_0(exported):
    path, tls, count = exported
    result = CliRunner().invoke(center_cli, ["track", "verify", str(path), "--ca", str(tls.ca)])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        rf"OK: vessel-042 chain [0-9a-f]{{16}}: records 0\.\.{count - 1} "
        rf"\({count} records, 0 without a fix\), "
        r"\S+Z \.\. \S+Z, \d+ signatures, verified against the CA \(revocation not checked\)\n",
        result.output,
    )


def when(rows: np.ndarray, i: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(rows[i, 0]) / 1000))


@pytest.mark.parametrize("column", [0, 2, 4, 5, 6, 10])  # ts_ms, clock_ms, lat, lon, speed_kn, hdop
def test_a_changed_record_is_named(exported, tmp_path, column):
    def change(header, rows, hashes):
        rows[137, column] += 1
        return header, rows, hashes

    _, rows, _ = change(*read(exported[0]))
    assert failure(tampered(exported, tmp_path, change), exported[1]) == (
        f"record 137 ({when(rows, 137)}): its hash does not match its contents: changed"
    )


def test_a_changed_record_with_recomputed_hashes_fails_its_signature(exported, tmp_path):
    header, rows, _ = read(exported[0])
    signed = sorted(s["idx"] for s in header["signatures"])
    before, after = max(i for i in signed if i < 120), min(i for i in signed if i >= 120)

    def change(header, rows, hashes):
        rows[120, 4] += 10  # 1 m north
        return header, rows, link(bytes.fromhex(header["prev_hash"]), rows.astype("<i8").tobytes())

    assert failure(tampered(exported, tmp_path, change), exported[1]) == (
        f"records {before + 1}..{after} ({when(rows, after)}): "
        "the records do not match the hash signed there: changed after signing"
    )


def test_a_dropped_record_is_named(exported, tmp_path):
    header, rows, _ = read(exported[0])

    def drop(header, rows, hashes):
        return header, np.delete(rows, 40, axis=0), hashes[: 40 * HASH] + hashes[41 * HASH :]

    assert failure(tampered(exported, tmp_path, drop), exported[1]) == (
        f"record 40 ({when(rows, 41)}): missing (record 41 follows record 39)"
    )


def test_two_reordered_records_are_named(exported, tmp_path):
    header, rows, _ = read(exported[0])

    def swap(header, rows, hashes):
        rows[[60, 61]] = rows[[61, 60]]
        hashes[60 * HASH : 62 * HASH] = hashes[61 * HASH : 62 * HASH] + hashes[60 * HASH : 61 * HASH]
        return header, rows, hashes

    assert failure(tampered(exported, tmp_path, swap), exported[1]) == (
        f"record 60 ({when(rows, 61)}): out of order (record 61 is in its place)"
    )


def test_a_forged_signature_is_named(exported, tmp_path):
    header, rows, _ = read(exported[0])
    victim = sorted(header["signatures"], key=lambda s: s["idx"])[1]

    def forge(header, rows, hashes):
        sig = bytearray.fromhex(victim["signature"])
        sig[-1] ^= 0x01
        victim_copy = {**victim, "signature": sig.hex()}
        header["signatures"] = [victim_copy if s["idx"] == victim["idx"] else s for s in header["signatures"]]
        return header, rows, hashes

    k = victim["idx"]
    assert failure(tampered(exported, tmp_path, forge), exported[1]) == (
        f"record {k} ({when(rows, k)}): the signature there does not verify: "
        "the signature does not match the data: changed or forged"
    )


def test_a_chain_signed_by_another_ca_is_refused(exported, tmp_path):
    other = make_identity(tmp_path / "other")
    header, rows, _ = read(exported[0])
    k = min(s["idx"] for s in header["signatures"])
    message = failure(exported[0], other)
    assert message.startswith(
        f"record {k} ({when(rows, k)}): the signature there does not verify: the certificate"
    )
    assert message.endswith("not a device of this CA")


def test_a_flipped_byte_in_the_body_is_named_by_its_block(exported, tmp_path):
    data = bytearray(exported[0].read_bytes())
    data[data.index(b"\n") + 200] ^= 0xFF
    out = tmp_path / "flipped.track"
    out.write_bytes(bytes(data))
    assert re.fullmatch(r"the block after record 0 is corrupt \(.+\)", failure(out, exported[1]))


def test_an_unsigned_tail_is_not_covered(exported, tmp_path):
    header, rows, _ = read(exported[0])
    last = max(s["idx"] for s in header["signatures"])

    def unsign(header, rows, hashes):
        header["signatures"] = [s for s in header["signatures"] if s["idx"] != last]
        return header, rows, hashes

    before = max(s["idx"] for s in header["signatures"] if s["idx"] != last)
    assert failure(tampered(exported, tmp_path, unsign), exported[1]) == (
        f"records {before + 1}..{len(rows) - 1}: not covered by any signature"
    )


def test_no_fix_stretches_become_heartbeats(tmp_path, identity, shared_dir):
    vessel = Vessel(tmp_path / "store.db", identity, heartbeat_s=0.2)
    n = vessel.replay(shared_dir / "nmea" / "ublox-8.log")
    wait_for(lambda: vessel.track.heartbeats >= 4, 10, "four heartbeats")  # the receiver went quiet
    vessel.replay(shared_dir / "nmea" / "ublox-8.log")
    vessel.stop()
    vessel.export(tmp_path / "nofix.track")
    report = verify(tmp_path / "nofix.track", ca_of(identity))
    beats = vessel.track.heartbeats
    assert (report.no_fix, report.records) == (beats, 2 * n + beats)
    _, rows, _ = read(tmp_path / "nofix.track")
    quiet = rows[n : n + beats]
    assert (quiet[:, 4] == NULL).all() and (quiet[:, 5] == NULL).all()  # no position, and said so
    assert (rows[:n, 4] != NULL).all() and (rows[n + beats :, 4] != NULL).all()
    gaps = np.diff(quiet[:, 2])  # the node's clock: one every 0.2 s
    assert gaps.min() >= 150 and gaps.max() < 2000


def test_a_restart_continues_the_chain_from_the_archive(tmp_path, identity, shared_dir):
    capture = shared_dir / "nmea" / "ublox-8.log"
    first = Vessel(tmp_path / "store.db", identity)
    n1 = first.replay(capture)
    first.stop()  # signs at stop
    second = Vessel(tmp_path / "store.db", identity)
    assert second.track.head.next_idx == n1
    n2 = second.replay(capture)
    # A power cut: records committed after the last signature, and no signature at the end.
    wait_for(lambda: second.recorder._buffered == 0 and second.recorder.committed >= n2, 10, "the commit")
    second.track._stop.set()
    second.track.join()
    second.recorder.stop()
    third = Vessel(tmp_path / "store.db", identity)
    assert third.track.head.next_idx == n1 + n2
    third.replay(capture)
    third.stop()
    third.export(tmp_path / "all.track")
    report = verify(tmp_path / "all.track", ca_of(identity))
    assert (report.records, report.last_idx) == (3 * n1, 3 * n1 - 1) and n1 == n2


def test_export_of_a_range_widens_to_the_signatures_around_it(exported, tmp_path):
    header, rows, _ = read(exported[0])
    signed = sorted(s["idx"] for s in header["signatures"])
    _, tls, _ = exported
    store_path = exported[0].parent / "store.db"
    store = Store(store_path)
    out = tmp_path / "part.track"
    try:
        part = export_track(store, "vessel-042", int(rows[150, 0]), int(rows[160, 0]) + 1, out)
    finally:
        store.close()
    lo = max(i for i in signed if i < 150)
    hi = min(i for i in signed if i >= 160)
    assert (part["first_idx"], part["records"]) == (lo + 1, hi - lo)
    report = verify(out, ca_of(tls))
    assert (report.first_idx, report.last_idx) == (lo + 1, hi)


def node_config(tmp_path: Path, state: Path, tls: TlsFiles) -> Path:
    """A vessel's config file whose store is in ``state``."""
    config = tmp_path / "edge.toml"
    config.write_text(
        f'[node]\ndevice_id = "vessel-042"\nstate_dir = "{state}"\n[uplink.tls]\nca = "{tls.ca}"\n'
        f'cert = "{tls.cert}"\nkey = "{tls.key}"\n[track]\n[drivers.gps]\ntype = "nmea"\n'
        '[drivers.gps.transport]\ntype = "serial"\nport = "/dev/ttyUSB0"\n'
    )
    return config


def test_export_cli_writes_the_file_and_names_an_empty_range(exported, tmp_path):
    _, tls, count = exported
    out = tmp_path / "cli.track"
    args = [
        "track",
        "export",
        "--config",
        str(node_config(tmp_path, exported[0].parent, tls)),
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(edge_cli, [*args, "--from", "1970-01-01", "--to", "2100-01-01"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        rf"{out}: {count} records \(0\.\.{count - 1}\) of chain [0-9a-f]{{16}}, \d+ signatures\n",
        result.output,
    )
    assert verify(out, ca_of(tls)).records == count
    result = CliRunner().invoke(edge_cli, [*args, "--from", "1971-01-01T00:00:00Z", "--to", "1971-01-02"])
    assert result.exit_code == 1
    assert (
        result.output
        == "no track records between 1971-01-01T00:00:00Z and 1971-01-02T00:00:00Z in the archive\n"
    )
    result = CliRunner().invoke(edge_cli, [*args, "--from", "yesterday", "--to", "1971-01-02"])
    assert result.exit_code == 2 and "'yesterday' is not an ISO 8601 time" in result.output


def test_track_config_needs_the_node_key(tmp_path):
    text = (
        '[node]\ndevice_id = "vessel-042"\n[track]\n[drivers.gps]\ntype = "nmea"\n[drivers.gps.transport]\n'
    )
    text += 'type = "serial"\nport = "/dev/ttyUSB0"\n'
    with pytest.raises(ConfigError) as err:
        parse_config(text, "edge.toml", tmp_path)
    assert str(err.value) == (
        "(top level) (edge.toml): track: the track log is signed with the node's key, which this node lacks: "
        "run ioc-edge provision (it writes [uplink.tls]) or set track.enabled = false"
    )
    cfg = parse_config(text.replace("[track]\n", "[track]\nenabled = false\n"), "edge.toml", tmp_path)
    assert cfg.track.enabled is False and cfg.track.retention_months == 60


def test_export_refuses_a_range_no_signature_covers_yet(tmp_path, identity, shared_dir):
    vessel = Vessel(tmp_path / "store.db", identity)
    vessel.replay(shared_dir / "nmea" / "ublox-8.log", sign_every=10**9)
    wait_for(lambda: vessel.recorder._buffered == 0 and vessel.recorder.committed > 0, 10, "the commit")
    with pytest.raises(TrackExportError) as err:
        vessel.export(tmp_path / "x.track")
    assert str(err.value) == (
        "no signature covers the records from 1970-01-01T00:00:00Z yet: the node signs every "
        "sign_every_s and when it stops; try again later"
    )
    vessel.stop()
    assert vessel.export(tmp_path / "x.track")["records"] > 0


def test_export_cli_says_when_the_newest_records_are_not_signed_yet(tmp_path, identity, shared_dir):
    vessel = Vessel(tmp_path / "state" / "store.db", identity)
    n = vessel.replay(shared_dir / "nmea" / "ais-nmea.log", sign_every=100)
    signed = vessel.track._signed_idx
    wait_for(lambda: vessel.recorder._buffered == 0 and vessel.recorder.committed >= n + 1, 10, "the commit")
    out = tmp_path / "now.track"
    args = ["--config", str(node_config(tmp_path, tmp_path / "state", identity)), "--out", str(out)]
    result = CliRunner().invoke(
        edge_cli, ["track", "export", *args, "--from", "2000-01-01", "--to", "2100-01-01"]
    )
    vessel.stop()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == (
        f"note: the newest {n - 1 - signed} records of the range are not signed yet (the node signs every "
        "track.sign_every_s and when it stops): export again later to include them"
    )
    assert verify(out, ca_of(identity)).last_idx == signed


def test_a_compacted_archive_resumes_exports_and_verifies(tmp_path, identity, shared_dir):
    capture = shared_dir / "nmea" / "ais-nmea.log"
    first = Vessel(tmp_path / "store.db", identity)
    n = first.replay(capture, sign_every=50)
    first.stop()
    store = Store(tmp_path / "store.db")
    store.compact_archive("track", records=1)
    store.compact_archive("track_sig", records=1)
    for stream in ("track", "track_sig"):  # every chunk a wire batch now
        assert store.conn.execute(f"SELECT DISTINCT wire FROM a_{stream}").fetchall() == [(1,)]
    store.close()
    second = Vessel(tmp_path / "store.db", identity)
    assert second.track.head.next_idx == n
    second.replay(capture, sign_every=50)
    second.stop()
    second.export(tmp_path / "all.track")
    assert verify(tmp_path / "all.track", ca_of(identity)).records == 2 * n


def test_quality_figures_the_wire_cannot_carry_are_left_out_not_the_fix(tmp_path, identity):
    vessel = Vessel(tmp_path / "store.db", identity)
    odd = Position(1_764_000_000_000, 1, 1_764_000_000_000, 16.5, 107.6, 6.5, 361.0, 1, 300, 150.0, 2.0)
    vessel.track.add([odd])
    vessel.stop()
    (point,) = [r for _, rows in Store(tmp_path / "store.db").archived("track") for r in rows]
    assert point == TrackPoint(
        1_764_000_000_000, 1, 1_764_000_000_000, 0, 16.5, 107.6, 6.5, None, 1, None, None
    )
