"""Notes in the vessel's signed track (issue 16): a warning delivered and acknowledged on board is
chained with the last position, its text exported, verified and listed, on the node and at the centre."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_identity
from helpers import wait_for
from support_ioc import Node as Publisher
from support_nodes import Vessel, archive, ca_of, failure, flags, reached, tampered

from ioc.cli import main as center_cli
from sync.chain import NULL
from sync.store import Store
from sync.trackfile import Note, read, verify
from sync.wire import TRACK, Batch

DELIVERED = '{"event":"delivered","identifier":"vn-storm-7","inside":true}'
ACKED = '{"by":"button","event":"acknowledged","identifier":"vn-storm-7","inside":true}'
AFTER = '{"by":"cli","event":"acknowledged","identifier":"vn-storm-8","inside":false}'
FIX = TRACK.names.index("fix")


def when(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


@pytest.fixture(scope="module")
def noted(tmp_path_factory, shared_dir) -> Iterator[tuple[Path, Path, object, list[tuple[int, str]]]]:
    """ublox-8.log twice with a note after each replay, then a restart and a third note before any
    fix, exported whole: (store, export, identity, the notes' (idx, text))."""
    tmp = tmp_path_factory.mktemp("notes")
    tls = make_identity(tmp)
    vessel = Vessel(tmp / "store.db", tls)
    notes = []
    for text in (DELIVERED, ACKED):
        vessel.replay(shared_dir / "nmea" / "ublox-8.log", sign_every=50)
        notes.append((vessel.track.note(text), text))
        assert vessel.track.head.next_idx == notes[-1][0] + 1
    vessel.stop()
    again = Vessel(tmp / "store.db", tls)  # a restart: the chain resumes from the archive, notes included
    assert again.track.head.next_idx == notes[-1][0] + 1
    notes.append((again.track.note(AFTER), AFTER))
    again.stop()
    header = again.export(tmp / "noted.track")
    assert [n["idx"] for n in header["notes"]] == [idx for idx, _ in notes]
    yield tmp / "store.db", tmp / "noted.track", tls, notes


def test_notes_are_chained_with_the_last_position_and_verify_with_their_texts(noted):
    _, path, tls, notes = noted
    _, rows, _ = read(path)
    (first, _), (second, _), (third, _) = notes
    # A note carries the position of the fix before it (none after a restart before a fix), no fix figures.
    assert (rows[[first, second], 4:6] == rows[[first - 1, second - 1], 4:6]).all()
    assert (rows[third, 4:6] == NULL).all() and (rows[[first, second, third], FIX] == NULL).all()
    report = verify(path, ca_of(tls))
    assert report.records == third + 1 and report.no_fix == 1
    assert report.notes == tuple(
        Note(i, int(rows[i, 0]), *(None, None) if i == third else rows[i, 4:6] / 1e7, text)
        for i, text in notes
    )
    result = CliRunner().invoke(center_cli, ["track", "verify", str(path), "--ca", str(tls.ca)])
    assert result.exit_code == 0, result.output
    lat, lon = rows[first, 4:6] / 1e7
    assert result.output.endswith(
        "3 note(s) chained (time, record, position, text):\n"
        f"  {when(rows[first, 0])} record {first} at {lat:.5f}, {lon:.5f}: {DELIVERED}\n"
        f"  {when(rows[second, 0])} record {second} at {lat:.5f}, {lon:.5f}: {ACKED}\n"
        f"  {when(rows[third, 0])} record {third} no position: {AFTER}\n"
    )  # both replays end on the same fix


def test_a_note_longer_than_2_kb_is_refused(tmp_path, identity):
    vessel = Vessel(tmp_path / "store.db", identity)
    try:
        with pytest.raises(ValueError, match="a track note is at most 2048 bytes; this one is 2049"):
            vessel.track.note("x" * 2049)
        assert vessel.track.head.next_idx == 0
    finally:
        vessel.stop()


def test_a_changed_note_text_is_named_a_forgery(noted, tmp_path):
    _, path, tls, notes = noted
    idx = notes[1][0]

    def change(header, rows, hashes):
        header["notes"][1]["text"] = ACKED.replace("button", "cli")
        return header, rows, hashes

    _, rows, _ = read(path)
    assert failure(tampered((path, tls, 0), tmp_path, change), tls) == (
        f"record {idx} ({when(rows[idx, 0])}): "
        "the note's text does not match the digest chained there: changed"
    )


def test_a_dropped_note_or_its_text_is_named(noted, tmp_path):
    _, path, tls, notes = noted
    idx = notes[0][0]
    _, rows, _ = read(path)

    def drop_text(header, rows, hashes):
        header["notes"] = header["notes"][1:]
        return header, rows, hashes

    def drop_record(header, rows, hashes):
        keep = np.arange(len(rows)) != idx
        header["records"] -= 1
        by_record = np.frombuffer(bytes(hashes), np.uint8).reshape(len(rows), 32)
        return header, rows[keep], bytearray(by_record[keep].tobytes())

    assert failure(tampered((path, tls, 0), tmp_path, drop_text), tls) == (
        f"record {idx} ({when(rows[idx, 0])}): a note is chained there; its text is missing"
    )
    assert failure(tampered((path, tls, 0), tmp_path, drop_record), tls) == (
        f"record {idx} ({when(rows[idx + 1, 0])}): missing (record {idx + 1} follows record {idx - 1})"
    )


def test_the_centre_stores_the_notes_and_exports_a_track_that_verifies_with_them(
    broker, receiver, ioc_db, ioc_db_url, noted, tmp_path
):
    store, path, tls, notes = noted
    epoch, points, sigs = archive(store)
    node_store = Store(store)
    try:
        texts = [n for _, rows in node_store.archived("track_note") for n in rows]
    finally:
        node_store.close()
    assert [(n.idx, n.text) for n in texts] == notes
    publisher = Publisher(broker)
    try:
        for stream, records in (("track_note", texts), ("track_sig", sigs), ("track", points)):
            publisher.send(Batch("vessel-042", epoch, stream, list(range(1, len(records) + 1)), records))
        wait_for(lambda: reached(ioc_db, "verified_idx", len(points) - 1), 10, "the chain verified")
        wait_for(lambda: ioc_db.count("track_note") == len(notes), 10, "the notes stored")
    finally:
        publisher.close()
    assert [kind for _, kind, _ in flags(ioc_db)] == ["gap"] * 3  # the capture's time and now: no break
    stored = ioc_db.fetch(
        "SELECT n.idx, n.text, t.note_hi FROM rec_track_note n JOIN rec_track t "
        "ON t.device = n.device AND t.epoch = n.epoch AND t.idx = n.idx ORDER BY n.idx"
    )
    assert [(r["idx"], r["text"]) for r in stored] == notes and all(r["note_hi"] is not None for r in stored)
    out = tmp_path / "centre.track"
    args = ["track", "export", "vessel-042", "--from", "1970-01-01", "--to", "2100-01-01", "--out", str(out)]
    result = CliRunner().invoke(center_cli, [*args, "--db", ioc_db_url])
    assert result.exit_code == 0, result.output
    assert result.output == (
        f"{out}: {len(points)} records (0..{len(points) - 1}) of chain {epoch}, "
        f"{len(sigs)} signatures, 3 notes\n"
    )
    assert verify(out, ca_of(tls)).notes == verify(path, ca_of(tls)).notes
