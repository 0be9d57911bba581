"""The IOC follows each vessel's track chain as it arrives: verified to its end; breaks, gaps, forgeries."""

from __future__ import annotations

import time

import pytest
from helpers import capture_logs, cli, wait_for
from playwright.sync_api import expect
from support_browser import needs_chromium
from support_ioc import Api
from support_ioc import Node as Publisher
from support_mtls import open_centre
from support_nodes import Vessel, archive, flags, reached

from edge.cli import main as edge_cli
from edge.config import load_config
from ioc.cli import main as center_cli
from ioc.db import Database
from ioc.receiver import Receiver
from ioc.track import TrackCheck, chain_status
from ioc.web.auth import Tokens, Users
from sync.records import TrackPoint, TrackSig
from sync.wire import Batch

DEVICE = "vessel-042"


def only_chain(db: Database) -> dict:
    (chain,) = chain_status(db, DEVICE)["chains"]
    return chain


@pytest.fixture
def logged(tmp_path, identity, shared_dir) -> tuple[str, list[TrackPoint], list[TrackSig]]:
    """ais-nmea.log (164 fixes) chained and signed every 50 fixes, as the node's archive holds it."""
    vessel = Vessel(tmp_path / "store.db", identity)
    vessel.replay(shared_dir / "nmea" / "ais-nmea.log", sign_every=50)
    vessel.stop()
    return archive(tmp_path / "store.db")


def send(publisher: Publisher, epoch: str, stream: str, records: list, first_seq: int = 1) -> None:
    seqs = list(range(first_seq, first_seq + len(records)))
    publisher.send(Batch(DEVICE, epoch, stream, seqs, records))


def test_a_chain_sent_through_the_broker_verifies_to_its_end(broker, receiver, ioc_db, logged):
    epoch, points, sigs = logged
    publisher = Publisher(broker)
    try:
        # Signatures before the records they sign, and the records in two batches, the later one first.
        send(publisher, epoch, "track_sig", sigs)
        send(publisher, epoch, "track", points[150:], 151)
        wait_for(lambda: ioc_db.count("track") == len(points) - 150, 10, "the later records")
        assert only_chain(ioc_db)["verified_idx"] == -1  # waiting for records 0..149
        send(publisher, epoch, "track", points[:150])
        wait_for(lambda: reached(ioc_db, "verified_idx", len(points) - 1), 10, "the chain verified")
    finally:
        publisher.close()
    chain = only_chain(ioc_db)
    assert (chain["epoch"], chain["newest_idx"], chain["last_idx"], chain["waiting"]) == (
        epoch, len(points) - 1, len(points) - 1, 0,
    )  # fmt: skip
    assert chain["ca_checked"] is False  # this receiver has no CA: the dashboard says so
    assert flags(ioc_db) == []


def test_a_changed_record_and_a_forged_signature_are_flagged(broker, receiver, ioc_db, logged):
    epoch, points, sigs = logged
    changed = list(points)
    changed[42] = changed[42]._replace(lat=changed[42].lat + 0.001)
    forged = list(sigs)
    forged[2] = forged[2]._replace(
        signature=bytes(forged[2].signature[:-1]) + bytes([forged[2].signature[-1] ^ 1])
    )
    publisher = Publisher(broker)
    try:
        send(publisher, epoch, "track", changed)
        send(publisher, epoch, "track_sig", forged)
        wait_for(lambda: reached(ioc_db, "last_idx", len(points) - 1), 10, "the chain followed")
    finally:
        publisher.close()
    k0, k2 = sigs[0].idx, sigs[2].idx
    assert flags(ioc_db) == [
        (k0, "break", f"records 0..{k0} do not match the hash signed at record {k0}"),
        (k2, "bad_signature", "the signature does not match the data: changed or forged"),
    ]
    assert only_chain(ioc_db)["verified_idx"] == len(points) - 1  # re-anchored on the signed hash


def test_a_gap_a_hole_and_a_new_chain_are_flagged(ioc_db, tmp_path, identity, shared_dir):
    vessel = Vessel(tmp_path / "store.db", identity)
    n = vessel.replay(shared_dir / "nmea" / "ublox-8.log", sign_every=50)
    vessel.replay(shared_dir / "nmea" / "ais-nmea.log", sign_every=50)  # another day (earlier)
    vessel.stop()
    epoch, points, sigs = archive(tmp_path / "store.db")
    check = TrackCheck(ioc_db, None, gap_s=120, hole_wait_s=0)
    ioc_db.store(Batch(DEVICE, epoch, "track_sig", list(range(1, len(sigs) + 1)), sigs))
    kept = [p for p in points if p.idx != 7]  # record 7 never arrives
    ioc_db.store(Batch(DEVICE, epoch, "track", [p.idx + 1 for p in kept], kept))
    check.advance(DEVICE, epoch)
    ioc_db.store(Batch(DEVICE, "00000000000000aa", "track", [1], [points[0]]))
    check.advance(DEVICE, "00000000000000aa")
    (old,) = [c for c in chain_status(ioc_db, DEVICE)["chains"] if c["epoch"] == epoch]
    assert old["verified_idx"] == len(points) - 1
    anchor = min(s.idx for s in sigs if s.idx >= 7)
    back, forth = (
        time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(p.ts_ms / 1000)) for p in points[n - 1 : n + 1]
    )
    assert flags(ioc_db) == [
        (0, "new_chain", f"a new chain began (the node's store was replaced); earlier: {epoch}"),
        (7, "break", f"records 7..7 never arrived; verified again from record {anchor + 1}"),
        (n, "gap", f"the time went back from {back} to {forth}"),
    ]


def test_a_vessel_node_over_mutual_tls_gets_its_chain_verified_against_the_ca(
    tmp_path, ioc_db, run_node, shared_dir, caplog
):
    with open_centre(tmp_path, ioc_db) as centre:
        centre.provision(DEVICE)
        path = tmp_path / DEVICE / "edge.toml"
        capture = tmp_path / "two-trips.log"
        # Two captures of different days back to back: the node was off in between (a gap).
        nmea = shared_dir / "nmea"
        capture.write_bytes((nmea / "ublox-8.log").read_bytes() + (nmea / "ais-nmea.log").read_bytes())
        path.write_text(
            path.read_text()
            + '\n[track]\nsign_every_s = 1\n\n[drivers.gps]\ntype = "nmea"\n\n[drivers.gps.transport]\n'
            f'type = "replay"\npath = "{capture}"\nspeed = 0\n'
        )
        capture_logs(caplog)
        node = run_node(load_config(path))
        wait_for(lambda: not node.drivers[0].running, 30, "the end of the replay")
        wait_for(
            lambda: node.track.signatures and node.track._signed_idx == node.track.head.next_idx - 1,
            10,
            "the last signature",
        )
        total = node.track.head.next_idx
        wait_for(lambda: reached(ioc_db, "verified_idx", total - 1), 30, "the whole chain verified")
        chain = node.track.head.chain
        told = f"\ntrack log: {total} records in chain {chain}, signed to record {total - 1}; "
        wait_for(lambda: told in cli(edge_cli, ["status", str(path)]), 10, "the track log in ioc-edge status")
    chain = only_chain(ioc_db)
    assert chain["ca_checked"] is True and chain["newest_idx"] == total - 1
    assert ioc_db.count("track") == total
    assert [f[1] for f in flags(ioc_db)] == ["gap"]
    # The default store (256 MiB) cannot hold the default 60 months of a 1 Hz track: the node says so.
    assert (
        "event=track_store_too_small max_bytes=268435456 needed_bytes=1285632000 retention_months=60"
        in caplog.text
    )


def stored_with_a_break(db: Database, logged: tuple) -> tuple[str, list[TrackPoint], list[TrackSig]]:
    """The logged chain stored with record 3 changed after signing, and checked: a break to show."""
    epoch, points, sigs = logged
    changed = [p._replace(speed_kn=9.99) if p.idx == 3 else p for p in points]
    db.store(Batch(DEVICE, epoch, "track", [p.idx + 1 for p in changed], changed))
    db.store(Batch(DEVICE, epoch, "track_sig", list(range(1, len(sigs) + 1)), sigs))
    TrackCheck(db, None).advance(DEVICE, epoch)
    return logged


def test_the_api_shows_each_chain_and_its_flags(ioc_db, web_server, logged):
    epoch, points, sigs = stored_with_a_break(ioc_db, logged)
    Users(ioc_db).add("lan", "viewer", "correct horse battery")
    api = Api(web_server.url, Tokens(ioc_db).create("lan", "tests")[1])
    try:
        body = api.json(f"/api/v1/nodes/{DEVICE}/track")
        assert api.json("/api/v1/nodes/boat-7/track") == {"device": "boat-7", "chains": [], "flags": []}
        unknown = api.get(f"/api/v1/nodes/{DEVICE}/track", limit=3)
    finally:
        api.close()
    (chain,) = body["chains"]
    keys = ("epoch", "last_idx", "verified_idx", "waiting", "newest_idx", "ca_checked")
    assert {k: chain[k] for k in keys} == {
        "epoch": epoch, "last_idx": len(points) - 1, "verified_idx": len(points) - 1, "waiting": 0,
        "newest_idx": len(points) - 1, "ca_checked": False,
    }  # fmt: skip
    (flag,) = body["flags"]
    k0 = sigs[0].idx
    assert (flag["idx"], flag["kind"], flag["ts_ms"]) == (k0, "break", points[k0].ts_ms)
    assert flag["detail"] == f"records 0..{k0} do not match the hash signed at record {k0}"
    assert unknown.status_code == 422 and "limit" in unknown.json()["detail"]


@needs_chromium
def test_the_nodes_page_shows_a_vessels_track_log_and_its_flags(dashboard, ioc_db, logged):
    epoch, points, sigs = stored_with_a_break(ioc_db, logged)
    page = dashboard.sign_in("an", "nodes")
    page.locator(f"#nodes tr[data-device='{DEVICE}']").click()
    chain = page.locator(f"#track .track-chain[data-epoch='{epoch}']")
    expect(chain).to_contain_text(
        f"verified to record {len(points) - 1}; newest received: record {len(points) - 1}"
    )
    expect(chain).to_contain_text("CA not checked (the centre has no CA configured)")
    row = page.locator("#track-flags tr[data-kind='break']")
    expect(row).to_contain_text(
        f"records 0..{sigs[0].idx} do not match the hash signed at record {sigs[0].idx}"
    )
    expect(row.locator("td").nth(1)).to_have_text(str(sigs[0].idx))
    dashboard.screenshot(page, "nodes-track")


def test_a_record_sent_twice_with_other_contents_is_a_break_and_the_first_is_followed(ioc_db, logged):
    epoch, points, sigs = logged
    ioc_db.store(Batch(DEVICE, epoch, "track", [p.idx + 1 for p in points], points))
    twin = points[5]._replace(lat=points[5].lat + 0.01)
    ioc_db.store(Batch(DEVICE, epoch, "track", [1000, 1001], [twin, points[6]]))  # and an exact copy of 6
    ioc_db.store(Batch(DEVICE, epoch, "track_sig", list(range(1, len(sigs) + 1)), sigs))
    TrackCheck(ioc_db, None).advance(DEVICE, epoch)
    assert flags(ioc_db) == [
        (5, "break", "record 5 came twice with different contents; the first is followed")
    ]
    assert only_chain(ioc_db)["verified_idx"] == len(points) - 1


def test_the_gap_a_receiver_flags_is_set_by_ioc_center_run(ioc_db) -> None:
    # The receiver is not started: what it would check with is all there is to see.
    assert Receiver(ioc_db, "127.0.0.1", 1).checks["track"].gap_ms == 120_000
    assert Receiver(ioc_db, "127.0.0.1", 1, track_gap_s=600).checks["track"].gap_ms == 600_000
    assert "--track-gap-s FLOAT RANGE" in cli(center_cli, ["run", "--help"])
