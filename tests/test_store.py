"""The node's store: seqs, epochs, reading and acknowledging, counters, retention when full, the recorder."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import wait_for

from sync.recorder import Recorder
from sync.records import Alarm, Position, Reading, TimeSource
from sync.store import Store, StoreError, StoreStatus
from sync.wire import EPOCH_RE, Ack

T0 = 1_700_000_000_000
GPS = int(TimeSource.GPS)
MIB = 1 << 20
CHUNK = 500


def noise(i: int, modulus: int) -> int:
    """A deterministic pseudo-random number in ``0..modulus-1`` for record ``i`` (Knuth's multiplier)."""
    return (i * 2_654_435_761) % 2**32 % modulus


# Record i is the same whichever call makes it, so that positions(0, 5) == positions(0, 2) + positions(2, 3).
# The values are noisy on purpose: a store that compresses must still fill up.
def positions(start: int, n: int) -> list[Position]:
    return [
        Position(
            T0 + i * 1000,
            GPS,
            T0 + i * 1000 + noise(i, 5),
            16.05 + noise(i, 100_003) * 1e-7,
            108.2 + noise(i + 7, 100_003) * 1e-7,
            noise(i, 1_500) / 100,
            noise(i, 3_600) / 10,
            1,
            noise(i, 13),
            noise(i, 300) / 100,
        )
        for i in range(start, start + n)
    ]


def alarms(start: int, n: int) -> list[Alarm]:
    return [
        Alarm(T0 + i, GPS, T0 + i, "bilge", "water_high", i % 2, i / 8, f"alarm {i} {noise(i, 2**32):08x}")
        for i in range(start, start + n)
    ]


def readings(start: int, n: int) -> list[Reading]:
    return [
        Reading(T0 + i, GPS, T0 + i, "sds011", "pm2_5", noise(i, 100_000) / 100)
        for i in range(start, start + n)
    ]


def all_of(store: Store, stream: str) -> tuple[list[int], list[tuple]]:
    return store.read(stream, after=0, limit=10**9)


def fill_until_dropped(store: Store, stream: str, make: Callable[[int, int], list]) -> int:
    """Write ``stream`` in chunks until the store drops some of it; the number of records written."""
    written = 0
    while not store.drops().get(stream):
        store.write({stream: make(written, CHUNK)})
        written += CHUNK
        assert written < 200_000, "the store never filled up"
    return written


@pytest.fixture
def fresh_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(tmp_path / "store.db")
    yield store
    store.close()


@pytest.fixture
def small_store(tmp_path: Path) -> Iterator[Store]:
    """A store capped at 1 MiB, so that it fills up in a fraction of a second."""
    store = Store(tmp_path / "small.db", max_bytes=MIB)
    yield store
    store.close()


# -- seqs and epochs -----------------------------------------------------------------------------


def test_seqs_start_at_one_and_are_contiguous_per_stream(fresh_store):
    fresh_store.write({"position": positions(0, 3), "alarm": alarms(0, 2)})
    fresh_store.write({"position": positions(3, 2), "reading": []})
    assert all_of(fresh_store, "position") == ([1, 2, 3, 4, 5], positions(0, 5))
    assert all_of(fresh_store, "alarm") == ([1, 2], alarms(0, 2))
    assert all_of(fresh_store, "reading") == ([], [])


def test_records_come_back_with_their_types_and_missing_fields(fresh_store):
    record = Position(T0, GPS, T0, 16.0544261, 108.2022274, None, 12.5, None, 7, None, -3.5)
    fresh_store.write({"position": [record]})
    (got,) = all_of(fresh_store, "position")[1]
    assert got == tuple(record)
    assert [type(v) for v in got] == [
        int,
        int,
        int,
        float,
        float,
        type(None),
        float,
        type(None),
        int,
        type(None),
        float,
    ]


def test_seqs_are_never_reused_after_the_newest_records_are_acked_and_the_file_reopened(tmp_path):
    store = Store(tmp_path / "store.db")
    store.write({"position": positions(0, 5)})
    assert store.acknowledge([Ack(store.epoch, "position", 3, 5)]) == 3
    store.close()

    store = Store(tmp_path / "store.db")
    store.write({"position": positions(5, 2)})
    # A plain rowid would hand out 3 and 4 again, and the IOC would drop them as duplicates.
    assert all_of(store, "position") == ([1, 2, 6, 7], positions(0, 2) + positions(5, 2))
    store.acknowledge([Ack(store.epoch, "position", 1, 7)])
    store.close()

    store = Store(tmp_path / "store.db")
    store.write({"position": positions(7, 1)})
    assert all_of(store, "position")[0] == [8]
    store.close()


def test_epoch_is_stable_across_reopening_and_new_when_the_file_is_deleted(tmp_path):
    path = tmp_path / "store.db"
    store = Store(path)
    epoch = store.epoch
    assert EPOCH_RE.match(epoch)
    store.write({"alarm": alarms(0, 1)})
    store.close()

    store = Store(path)
    assert (store.epoch, store.meta("epoch")) == (epoch, epoch)
    store.close()

    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    store = Store(path)
    assert EPOCH_RE.match(store.epoch) and store.epoch != epoch
    assert all_of(store, "alarm") == ([], [])
    store.write({"alarm": alarms(0, 1)})
    assert all_of(store, "alarm")[0] == [1]
    store.close()


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not an SQLite database, not even close" * 100)
    with pytest.raises(StoreError) as info:
        Store(path)
    assert str(info.value) == f"cannot open store {path}: file is not a database"
    assert isinstance(info.value, OSError)


# -- reading and acknowledging -------------------------------------------------------------------


def test_read_after_and_limit(fresh_store):
    fresh_store.write({"position": positions(0, 10)})
    assert fresh_store.read("position", after=3, limit=4) == ([4, 5, 6, 7], positions(3, 4))
    assert fresh_store.read("position", after=8, limit=100) == ([9, 10], positions(8, 2))
    assert fresh_store.read("position", after=10, limit=100) == ([], [])
    assert fresh_store.read("position", after=0, limit=0) == ([], [])
    assert fresh_store.read("alarm", after=0, limit=10) == ([], [])


def test_acknowledge_deletes_only_the_acked_range(fresh_store):
    fresh_store.write({"position": positions(0, 10), "alarm": alarms(0, 3)})
    assert fresh_store.meta("last_ack_ms") is None
    before = time.time_ns() // 10**6
    deleted = fresh_store.acknowledge(
        [Ack(fresh_store.epoch, "position", 3, 5), Ack(fresh_store.epoch, "alarm", 2, 2)]
    )
    after = time.time_ns() // 10**6
    assert deleted == 4
    assert all_of(fresh_store, "position") == ([1, 2, 6, 7, 8, 9, 10], positions(0, 2) + positions(5, 5))
    assert all_of(fresh_store, "alarm") == ([1, 3], [alarms(0, 1)[0], alarms(2, 1)[0]])
    assert before <= int(fresh_store.meta("last_ack_ms")) <= after
    # Acking again, or a range partly gone, deletes only what is left.
    assert fresh_store.acknowledge([Ack(fresh_store.epoch, "position", 1, 6)]) == 3
    assert all_of(fresh_store, "position")[0] == [7, 8, 9, 10]


def test_acknowledge_across_commits_and_inside_them(tmp_path):
    store = Store(tmp_path / "store.db")
    store.write({"position": positions(0, 5)})
    store.write({"position": positions(5, 5)})
    store.write({"position": positions(10, 5)})
    assert store.acknowledge([Ack(store.epoch, "position", 3, 7)]) == 5
    assert store.acknowledge([Ack(store.epoch, "position", 9, 9), Ack(store.epoch, "position", 12, 13)]) == 3
    kept = [0, 1, 7, 9, 10, 13, 14]  # record i has seq i + 1
    expected = ([i + 1 for i in kept], [positions(i, 1)[0] for i in kept])
    assert all_of(store, "position") == expected
    assert store.read("position", after=8, limit=3) == ([10, 11, 14], [*positions(9, 2), positions(13, 1)[0]])
    assert store.backlog()["position"] == 7
    store.close()
    store = Store(tmp_path / "store.db")
    assert all_of(store, "position") == expected
    store.write({"position": positions(15, 1)})
    assert all_of(store, "position")[0][-1] == 16
    store.close()


def test_acknowledge_ignores_another_epoch_and_unknown_streams(fresh_store):
    fresh_store.write({"position": positions(0, 4)})
    other = "0" * 16 if fresh_store.epoch != "0" * 16 else "1" * 16
    assert fresh_store.acknowledge([Ack(other, "position", 1, 4), Ack(fresh_store.epoch, "video", 1, 4)]) == 0
    assert all_of(fresh_store, "position")[0] == [1, 2, 3, 4]


def test_discard_removes_records_and_counts_them_as_invalid(fresh_store):
    fresh_store.write({"position": positions(0, 6)})
    fresh_store.discard("position", [2, 5])
    fresh_store.discard("position", [])
    assert all_of(fresh_store, "position") == (
        [1, 3, 4, 6],
        [positions(0, 1)[0], *positions(2, 2), positions(5, 1)[0]],
    )
    assert fresh_store.counters("invalid") == {"position": 2}
    assert fresh_store.last_seq("position") == 6 and fresh_store.last_seq("alarm") == 0


def test_backlog_counts_waiting_records_per_stream(fresh_store):
    assert fresh_store.backlog() == {
        "alarm": 0,
        "position": 0,
        "status": 0,
        "summary": 0,
        "count": 0,
        "event": 0,
        "reading": 0,
        "commissioning": 0,
        "track": 0,
        "track_sig": 0,
        "ais": 0,
        "command_result": 0,
        "warning_receipt": 0,
        "track_note": 0,
    }
    fresh_store.write({"position": positions(0, 7), "reading": readings(0, 3)})
    fresh_store.acknowledge([Ack(fresh_store.epoch, "position", 1, 2)])
    assert fresh_store.backlog() == {
        "alarm": 0,
        "position": 5,
        "status": 0,
        "summary": 0,
        "count": 0,
        "event": 0,
        "reading": 3,
        "commissioning": 0,
        "track": 0,
        "track_sig": 0,
        "ais": 0,
        "command_result": 0,
        "warning_receipt": 0,
        "track_note": 0,
    }


def test_add_counts_accumulates_and_persists(tmp_path):
    store = Store(tmp_path / "store.db")
    assert store.add_counts("reject.gps", {"checksum": 2, "framing": 0}) is True
    assert store.add_counts("reject.gps", {"checksum": 3, "range": 1}) is True
    assert store.add_counts("uplink", {"sent": 10}) is True
    assert store.counters("reject.gps") == {"checksum": 5, "range": 1}
    store.close()
    store = Store(tmp_path / "store.db")
    assert store.counters("reject.gps") == {"checksum": 5, "range": 1}
    assert store.counters("uplink") == {"sent": 10}
    assert store.counters("nothing") == {}
    store.close()


def test_status_shape(fresh_store):
    fresh_store.write({"alarm": alarms(0, 2), "position": positions(0, 3)})
    fresh_store.add_counts("reject.gps", {"checksum": 4})
    status = fresh_store.status()
    assert status == StoreStatus(
        epoch=fresh_store.epoch,
        backlog={
            "alarm": 2,
            "position": 3,
            "status": 0,
            "summary": 0,
            "count": 0,
            "event": 0,
            "commissioning": 0,
            "track": 0,
            "track_sig": 0,
            "ais": 0,
            "command_result": 0,
            "warning_receipt": 0,
            "track_note": 0,
        },
        kept_local={"reading": 0},
        last_ack_ms=None,
        drops={},
        counters={"reject.gps": {"checksum": 4}},
        failed_drivers={},
        outages={},
        facts={},
        size_bytes=status.size_bytes,
    )
    assert status.size_bytes == fresh_store.size_bytes() > 0
    fresh_store.acknowledge([Ack(fresh_store.epoch, "alarm", 1, 2)])
    assert fresh_store.status().last_ack_ms == int(fresh_store.meta("last_ack_ms"))


def test_two_connections_on_one_file_see_each_others_commits(tmp_path):
    recorder_side = Store(tmp_path / "store.db", max_bytes=MIB)
    uplink_side = Store(tmp_path / "store.db", max_bytes=MIB)
    try:
        assert uplink_side.epoch == recorder_side.epoch
        recorder_side.write({"position": positions(0, 3)})
        assert all_of(uplink_side, "position") == ([1, 2, 3], positions(0, 3))
        uplink_side.acknowledge([Ack(uplink_side.epoch, "position", 1, 2)])
        assert recorder_side.backlog()["position"] == 1
        recorder_side.write({"position": positions(3, 1)})
        assert all_of(uplink_side, "position")[0] == [3, 4]
    finally:
        recorder_side.close()
        uplink_side.close()


# -- retention when full -------------------------------------------------------------------------


def test_full_store_drops_readings_and_keeps_alarms_and_positions(small_store, tmp_path, caplog):
    small_store.write({"alarm": alarms(0, 200), "position": positions(0, 2000)})
    kept = {s: all_of(small_store, s) for s in ("alarm", "position")}
    assert [len(kept[s][0]) for s in kept] == [200, 2000]

    with caplog.at_level(logging.WARNING, logger="sync.store"):
        written = fill_until_dropped(small_store, "reading", readings)
        stored = small_store.backlog()["reading"]
        first_drops = small_store.drops()["reading"]
        for i in range(3):
            small_store.write({"reading": readings(written + i * CHUNK, CHUNK)})

    assert small_store.backlog()["reading"] == stored  # a full store keeps what it has
    assert small_store.drops() == {"reading": first_drops + 3 * CHUNK}
    assert small_store.counters("drop") == small_store.drops()  # persisted, not only in memory
    assert {s: all_of(small_store, s) for s in kept} == kept
    assert [r.getMessage() for r in caplog.records] == [
        f"event=store_full path={tmp_path / 'small.db'} action=retention_by_priority"
    ]

    reopened = Store(tmp_path / "small.db", max_bytes=MIB)
    assert reopened.drops() == {"reading": first_drops + 3 * CHUNK}
    reopened.close()


def test_full_store_accounts_for_every_record_it_did_not_keep(small_store):
    # Before 3ff22a6 a batch that did not fit was stored in part (autocommit executemany) and counted whole.
    written = fill_until_dropped(small_store, "reading", readings)
    assert small_store.backlog()["reading"] + small_store.drops()["reading"] == written
    # All or nothing: the last chunk is either stored whole or dropped whole.
    assert small_store.backlog()["reading"] % CHUNK == 0


def test_positions_evict_the_oldest_readings_before_any_position_is_dropped(small_store):
    small_store.write({"alarm": alarms(0, 50)})
    fill_until_dropped(small_store, "reading", readings)
    reading_seqs = all_of(small_store, "reading")[0]
    dropped_readings = small_store.drops()["reading"]

    new = positions(0, 300)
    small_store.write({"position": new})

    assert "position" not in small_store.drops()
    assert set(all_of(small_store, "position")[1]) == set(new)
    remaining = all_of(small_store, "reading")[0]
    evicted = len(reading_seqs) - len(remaining)
    assert evicted > 0
    assert remaining == reading_seqs[evicted:]  # the oldest went first
    assert small_store.drops()["reading"] == dropped_readings + evicted
    assert small_store.backlog()["alarm"] == 50


def test_records_written_while_evicting_are_stored_once(small_store):
    # Before 3ff22a6 the rows inserted before the store was found full stayed, and the retry added them again.
    fill_until_dropped(small_store, "reading", readings)
    small_store.write({"position": positions(0, 300), "alarm": alarms(0, 300)})
    assert all_of(small_store, "position") == (list(range(1, 301)), positions(0, 300))
    assert all_of(small_store, "alarm") == (list(range(1, 301)), alarms(0, 300))


def test_positions_are_dropped_when_nothing_of_lower_priority_remains(small_store):
    small_store.write({"alarm": alarms(0, 50)})
    written = fill_until_dropped(small_store, "position", positions)
    kept = {s: all_of(small_store, s) for s in ("alarm", "position")}
    dropped = small_store.drops()

    small_store.write({"position": positions(written, CHUNK)})

    assert {s: all_of(small_store, s) for s in kept} == kept
    assert small_store.drops() == {"position": dropped["position"] + CHUNK}
    assert small_store.counters("drop") == small_store.drops()


def test_an_alarm_evicts_the_oldest_positions_when_full(small_store):
    fill_until_dropped(small_store, "position", positions)
    position_seqs = all_of(small_store, "position")[0]
    dropped_positions = small_store.drops()["position"]

    # Random messages do not compress: more than the free pages of a full store can take.
    new = [a._replace(message=random.Random(i).randbytes(200).hex()) for i, a in enumerate(alarms(0, 1000))]
    small_store.write({"alarm": new})

    assert "alarm" not in small_store.drops()
    assert set(all_of(small_store, "alarm")[1]) == set(new)
    remaining = all_of(small_store, "position")[0]
    evicted = len(position_seqs) - len(remaining)
    assert evicted > 0
    assert remaining == position_seqs[evicted:]
    assert small_store.drops() == {"position": dropped_positions + evicted}


def test_acknowledging_makes_room_again(small_store, tmp_path, caplog):
    fill_until_dropped(small_store, "reading", readings)
    dropped = small_store.drops()
    seqs = all_of(small_store, "reading")[0]
    assert small_store.acknowledge([Ack(small_store.epoch, "reading", seqs[0], seqs[-1])]) == len(seqs)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sync.store"):
        small_store.write({"reading": readings(0, 2 * CHUNK)})

    assert small_store.drops() == dropped
    assert all_of(small_store, "reading") == (
        list(range(seqs[-1] + 1, seqs[-1] + 1 + 2 * CHUNK)),
        readings(0, 2 * CHUNK),
    )
    assert [r.getMessage() for r in caplog.records] == [f"event=store_room path={tmp_path / 'small.db'}"]


def test_acknowledging_part_of_a_commit_on_a_full_store_succeeds(small_store):
    fill_until_dropped(small_store, "position", positions)
    backlog = small_store.backlog()["position"]
    epoch = small_store.epoch
    # An uplink batch ends inside the first commit of 500 records.
    assert small_store.acknowledge([Ack(epoch, "position", 1, 100)]) == 100
    assert small_store.read("position", after=0, limit=2)[0] == [101, 102]
    # Acks out of order leave holes inside a commit.
    assert small_store.acknowledge([Ack(epoch, "position", 150, 150), Ack(epoch, "position", 160, 160)]) == 2
    assert small_store.read("position", after=148, limit=3)[0] == [149, 151, 152]
    assert small_store.backlog()["position"] == backlog - 102


def test_a_second_connection_also_respects_the_cap(tmp_path):
    first = Store(tmp_path / "small.db", max_bytes=MIB)
    second = Store(tmp_path / "small.db", max_bytes=MIB)
    try:
        fill_until_dropped(second, "reading", readings)
        assert first.size_bytes() < 6 * MIB  # the write-ahead log counts too: never far beyond the cap
        assert first.conn.execute("PRAGMA page_count").fetchone()[0] <= MIB // 4096
        first.write({"position": positions(0, 10)})
        assert first.backlog()["position"] == 10
    finally:
        first.close()
        second.close()


# -- recorder ------------------------------------------------------------------------------------


def test_recorder_stop_commits_everything_appended_from_several_threads(tmp_path):
    recorder = Recorder(lambda: Store(tmp_path / "store.db"), flush_interval_s=0.05, flush_records=100)
    recorder.start()

    def produce(worker: int) -> None:
        for chunk in range(25):
            recorder.append("position", positions(worker * 1000 + chunk * 10, 10))
            recorder.append("reading", readings(worker * 1000 + chunk, 1))

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorder.stop()

    assert recorder.committed == 4 * 25 * 11
    store = Store(tmp_path / "store.db")
    expected = {r.ts_ms for w in range(4) for r in positions(w * 1000, 250)}
    got = all_of(store, "position")
    assert len(got[0]) == 1000 and {r[0] for r in got[1]} == expected
    assert got[0] == list(range(1, 1001))
    assert store.backlog()["reading"] == 100
    store.close()


def test_recorder_commits_after_the_flush_interval(tmp_path):
    recorder = Recorder(lambda: Store(tmp_path / "store.db"), flush_interval_s=0.1, flush_records=1000)
    reader = Store(tmp_path / "store.db")
    recorder.start()
    try:
        recorder.append("position", positions(0, 1))
        wait_for(lambda: reader.backlog()["position"] == 1, what="the position to be committed")
        assert all_of(reader, "position") == ([1], positions(0, 1))
        assert recorder.committed == 1
    finally:
        recorder.stop()
        reader.close()


def test_recorder_commits_the_alarm_lane_at_once(tmp_path):
    recorder = Recorder(lambda: Store(tmp_path / "store.db"), flush_interval_s=30, flush_records=1000)
    reader = Store(tmp_path / "store.db")
    recorder.start()
    try:
        time.sleep(0.1)  # the recorder waits on its interval: 30 s
        recorder.append("position", positions(0, 1))
        recorder.append("alarm", alarms(0, 1))
        wait_for(lambda: reader.backlog()["alarm"] == 1, timeout=1, what="the alarm committed, not in 30 s")
        assert all_of(reader, "alarm") == ([1], alarms(0, 1)) and reader.backlog()["position"] == 1
    finally:
        recorder.stop()
        reader.close()


def test_recorder_commits_early_when_flush_records_are_waiting(tmp_path):
    recorder = Recorder(lambda: Store(tmp_path / "store.db"), flush_interval_s=30, flush_records=10)
    reader = Store(tmp_path / "store.db")
    recorder.start()
    try:
        recorder.append("position", positions(0, 9))
        time.sleep(0.3)  # the recorder waits for the tenth record (or 30 s)
        assert reader.backlog()["position"] == 0
        recorder.append("position", positions(9, 1))
        wait_for(lambda: reader.backlog()["position"] == 10, timeout=3, what="ten positions to be committed")
    finally:
        recorder.stop()
        reader.close()


def test_recorder_saves_counts_with_the_next_commit(tmp_path):
    recorder = Recorder(lambda: Store(tmp_path / "store.db"), flush_interval_s=30, flush_records=1000)
    recorder.start()
    recorder.add_counts("reject.gps", {"checksum": 2})
    recorder.add_counts("reject.gps", {"checksum": 1, "range": 4})
    recorder.stop()
    store = Store(tmp_path / "store.db")
    assert store.counters("reject.gps") == {"checksum": 3, "range": 4}
    store.close()
