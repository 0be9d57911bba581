"""The IOC's database on SQLite and on a private PostgreSQL: migrations, duplicates, blobs, errors."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from helpers import free_port
from support_ioc import EPOCH, T0, position_batch

from ioc.db import Database, DatabaseError
from ioc.postgres import PrivatePostgres
from ioc.schema import MIGRATIONS
from sync.records import Event, TimeSource
from sync.wire import Batch, decode_batch, encode_batch

EXPECTED_VERSIONS = [{"version": v, "name": name} for v, name, _ in MIGRATIONS]


def applied(db: Database) -> list[dict]:
    return db.fetch("SELECT version, name, applied_ms FROM schema_version ORDER BY version")


def test_migrations_are_applied_once_and_recorded(ioc_db_url, caplog):
    caplog.set_level(logging.INFO, logger="ioc.db")
    db = Database(ioc_db_url)
    try:
        first = applied(db)
        assert [{"version": r["version"], "name": r["name"]} for r in first] == EXPECTED_VERSIONS
        assert db.schema_version == MIGRATIONS[-1][0]
        assert db.store(position_batch("vessel-1", 1, 3)) == 3
    finally:
        db.close()
    migrated = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=migrated")]
    assert migrated == [f"event=migrated version={v} name={name}" for v, name, _ in MIGRATIONS]

    caplog.clear()
    again = Database(ioc_db_url)
    try:
        assert applied(again) == first  # nothing applied twice, nothing re-stamped
        assert again.count("position") == 3
    finally:
        again.close()
    assert not [r for r in caplog.records if r.getMessage().startswith("event=migrated")]


def test_receivers_starting_at_once_migrate_once(ioc_db_url):
    """Four Database objects opened at once on an empty database, as receivers starting together."""
    start = threading.Barrier(4)

    def open_db(_: int) -> Database:
        start.wait(10)
        return Database(ioc_db_url)

    with ThreadPoolExecutor(4) as pool:
        dbs = list(pool.map(open_db, range(4)))
    try:
        for db in dbs:
            assert [{"version": r["version"], "name": r["name"]} for r in applied(db)] == EXPECTED_VERSIONS
        assert [db.store(position_batch("vessel-1", 1, 2)) for db in dbs] == [2, 0, 0, 0]
    finally:
        for db in dbs:
            db.close()


def test_duplicates_are_refused_and_a_repeat_inside_a_batch_counts_once(ioc_db):
    batch = position_batch("vessel-1", 1, 5)
    assert ioc_db.store(batch) == 5
    assert ioc_db.store(batch) == 0
    # Seqs 5 (stored), 6, 6 again with other values, 7: two are new; of two copies the first is kept.
    repeat = Batch("vessel-1", EPOCH, "position", [6, 5, 6, 7], position_batch("vessel-1", 10, 4).records)
    assert ioc_db.store(repeat) == 2
    assert ioc_db.count("position") == 7
    rows = list(ioc_db.dump("position", "vessel-1"))
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert rows[4]["ts_ms"] == batch.records[4].ts_ms
    assert rows[5]["ts_ms"] == repeat.records[0].ts_ms
    assert rows[6]["ts_ms"] == repeat.records[3].ts_ms


def test_event_snapshots_round_trip_as_bytes(ioc_db):
    image = np.zeros((48, 64, 3), np.uint8)
    image[10:30, 20:50] = (0, 128, 255)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    assert b"\x00" in jpeg  # a NUL inside: a blob, not text
    events = [
        Event(
            T0,
            int(TimeSource.NTP),
            T0,
            "cam-1",
            "wrong_way",
            "car",
            7,
            0.875,
            1,
            2,
            30,
            40,
            "wrong way",
            jpeg,
        ),
        Event(T0 + 1, int(TimeSource.NTP), T0 + 1, "cam-1", "zone", "person", 8, 0.5, 0, 0, 1, 1, "", b""),
    ]
    batch = decode_batch(encode_batch(Batch("cam-node-1", EPOCH, "event", [1, 2], events)))
    assert ioc_db.store(batch) == 2
    rows = list(ioc_db.dump("event", "cam-node-1"))
    assert [(type(r["jpeg"]), r["jpeg"]) for r in rows] == [(bytes, jpeg), (bytes, b"")]
    assert rows[0]["score"] == 0.875 and rows[0]["message"] == "wrong way"
    assert cv2.imdecode(np.frombuffer(rows[0]["jpeg"], np.uint8), cv2.IMREAD_COLOR).shape == (48, 64, 3)


def test_the_same_sql_gives_the_same_answers_on_both_engines(ioc_db):
    ioc_db.store(position_batch("vessel-1", 1, 4))
    # SUM and AVG come back as SQLite gives them (psycopg alone would give Decimal); '?' and '%' in
    # literals stay text, only the bare '?' is a placeholder.
    rows = ioc_db.fetch(
        "SELECT SUM(seq) AS total, AVG(seq) AS mean, COUNT(*) AS n, '?' AS q, 'a%' AS pct "
        "FROM rec_position WHERE device LIKE 'vessel%' AND seq > ?",
        [1],
    )
    assert rows == [{"total": 9, "mean": 3.0, "n": 3, "q": "?", "pct": "a%"}]
    assert [type(rows[0][k]) for k in ("total", "mean", "n")] == [int, float, int]
    assert ioc_db.execute("UPDATE devices SET last_seen_ms = ? WHERE device = ?", [5, "vessel-1"]) == 1
    assert ioc_db.fetch("SELECT device, last_seen_ms FROM devices") == [
        {"device": "vessel-1", "last_seen_ms": 5}
    ]


def test_a_failed_transaction_is_rolled_back(ioc_db):
    with pytest.raises(RuntimeError, match="half way"), ioc_db.transaction() as cur:
        cur.execute("INSERT INTO rejects (reason, count) VALUES (?, ?)", ["bad_schema", 1])
        raise RuntimeError("half way")
    assert ioc_db.rejects() == {}
    ioc_db.count_reject("bad_schema")
    assert ioc_db.rejects() == {"bad_schema": 1}


def test_postgresql_restarted_under_a_database_fails_one_call_then_reconnects(postgres_server):
    """A server of its own, since the session's must stay up (``postgres_server`` only skips without one)."""
    psycopg = pytest.importorskip("psycopg")
    with PrivatePostgres(port=free_port()) as server:
        db = Database(server.create_database("ioc"))
        try:
            assert db.store(position_batch("vessel-1", 1, 3)) == 3
            server.stop()
            assert not server.running
            with pytest.raises(psycopg.OperationalError):
                db.store(position_batch("vessel-1", 4, 3))
            server.start()  # same data directory, same port
            assert db.store(position_batch("vessel-1", 4, 3)) == 3
            assert [r["seq"] for r in db.dump("position")] == [1, 2, 3, 4, 5, 6]
        finally:
            db.close()
    assert not server.running and not server.workdir.exists()


def test_an_unreachable_postgresql_server_is_named_with_what_to_do():
    pytest.importorskip("psycopg")
    port = free_port()  # nothing listens there
    url = f"postgresql://ioc:s3cret@127.0.0.1:{port}/ioc"
    with pytest.raises(DatabaseError) as caught:
        Database(url)
    message = str(caught.value)
    assert message.startswith(
        f"cannot connect to postgresql://ioc:***@127.0.0.1:{port}/ioc: connection failed: "
    )
    assert "Connection refused" in message
    assert message.endswith(
        "(check that PostgreSQL runs there and accepts this user from this host, "
        "and that the database exists: createdb DBNAME)"
    )
    assert "s3cret" not in message


@pytest.mark.parametrize("url", ["mysql://ioc:pw@db/ioc", "sqlite://relative.db", "http://db/ioc"])
def test_an_unsupported_url_says_which_forms_work(url):
    with pytest.raises(DatabaseError) as caught:
        Database(url)
    shown = url.replace(":pw@", ":***@")
    assert str(caught.value) == (
        f"unsupported database URL {shown!r}: use sqlite:///path/to/ioc.db or postgresql://user@host:port/dbname"
    )


def test_a_sqlite_file_that_cannot_be_created_is_named(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    url = f"sqlite:///{tmp_path / 'file' / 'ioc.db'}"
    with pytest.raises(DatabaseError) as caught:
        Database(url)
    assert str(caught.value).startswith(f"cannot open {url}: ")
    assert str(caught.value).endswith("; check that its directory is writable")
