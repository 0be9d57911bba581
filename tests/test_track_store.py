"""The store's archive of the track log: acks, a full store and restarts never lose it; only age does."""

from __future__ import annotations

import numpy as np

from sync.chain import canonical
from sync.records import Reading, TimeSource, TrackPoint
from sync.store import Store
from sync.wire import Ack

T0 = 1_700_000_000_000
GPS = int(TimeSource.GPS)
MIB = 1 << 20
DAY_MS = 86_400_000


def points(start: int, n: int, step_ms: int = 1000) -> list[TrackPoint]:
    return [
        TrackPoint(
            T0 + i * step_ms,
            GPS,
            T0 + i * step_ms,
            i,
            16.4 + i * 1e-6,
            107.6 - i * 1e-6,
            5.5,
            90.0,
            1,
            9,
            0.9,
        )
        for i in range(start, start + n)
    ]


def archived(store: Store) -> list[TrackPoint]:
    return [r for _, rows in store.archived("track") for r in rows]


def test_acknowledged_track_leaves_the_backlog_but_stays_in_the_archive(tmp_path):
    store = Store(tmp_path / "store.db")
    store.write({"track": points(0, 100)})
    store.write({"track": points(100, 50)})
    assert store.acknowledge([Ack(store.epoch, "track", 1, 150)]) == 150
    assert store.backlog()["track"] == 0
    assert archived(store) == points(0, 150)
    store.close()
    reopened = Store(tmp_path / "store.db")
    assert [r.idx for r in archived(reopened)] == list(range(150))
    assert [r.idx for _, rows in reopened.archived("track", newest_first=True) for r in rows][:50] == list(
        range(100, 150)
    )
    reopened.close()


def test_a_full_store_drops_readings_and_never_the_track(tmp_path):
    store = Store(tmp_path / "small.db", max_bytes=MIB)
    noisy = [
        Reading(T0 + i, GPS, T0 + i, "pm", "pm25", (i * 2_654_435_761) % 100_003 / 7) for i in range(200_000)
    ]
    for i in range(0, len(noisy), 5000):
        store.write({"reading": noisy[i : i + 5000]})
    assert store.drops().get("reading", 0) > 0  # the store is full of lower-priority data
    for i in range(0, 20_000, 1000):
        store.write({"track": points(i, 1000)})
        store.acknowledge([Ack(store.epoch, "track", i + 1, i + 1000)])
    assert "track" not in store.drops()
    assert archived(store) == points(0, 20_000)
    assert store.drops()["reading"] > 0
    store.close()


def test_pruning_removes_what_is_past_retention_and_never_younger(tmp_path):
    store = Store(tmp_path / "store.db")
    # One chunk a day for 10 days, 100 records each; records 1 s apart.
    for day in range(10):
        chunk = [p._replace(ts_ms=T0 + day * DAY_MS + k * 1000) for k, p in enumerate(points(day * 100, 100))]
        store.write({"track": chunk})
    newest = T0 + 9 * DAY_MS + 99_000
    keep_s = 3 * 86_400 + 50
    bound = newest - keep_s * 1000  # day 6, 49 s after its first record
    # A clock at 1970 prunes nothing; a record stamped ten years ahead does not age the others.
    assert store.prune_archive("track", keep_s, 0) == 0
    store.write({"track": [points(1000, 1)[0]._replace(ts_ms=T0 + 3650 * DAY_MS)]})
    assert store.prune_archive("track", keep_s, newest) == 600
    kept = archived(store)
    # Days 0..5 were wholly older than the bound; day 6 stays whole, its first 49 s too (a chunk goes
    # only when all of it is past retention: never a record before its time).
    assert kept[0].idx == 600 and len(kept) == 401
    assert kept[0].ts_ms < bound <= kept[49].ts_ms
    assert store.counters("pruned") == {"track": 600}
    assert store.prune_archive("track", keep_s, newest) == 0
    store.close()


def test_compaction_repacks_one_record_chunks_as_wire_batches_with_the_same_canonical_values(tmp_path):
    store = Store(tmp_path / "store.db")
    for p in points(0, 8000):  # a commit a second at 1 Hz: one record a chunk
        store.write({"track": [p]})
    archive_bytes = "SELECT sum(length(body)) FROM a_track"
    before = store.conn.execute(archive_bytes).fetchone()[0]
    assert store.compact_archive("track", records=3600) == 2
    assert store.conn.execute("SELECT wire, n FROM a_track WHERE n > 1 ORDER BY id").fetchall() == [
        (1, 3600),
        (1, 3600),
    ]
    kept = archived(store)
    assert [r.idx for r in kept] == list(range(8000))
    assert np.array_equal(canonical(kept), canonical(points(0, 8000)))  # what the chain hashes is unchanged
    assert [seqs for seqs, _ in store.archived("track", newest_first=True)][-1] == list(range(1, 3601))
    assert store.compact_archive("track", records=3600) == 0  # the newest 800 wait for more
    # 7,200 records now take what ~1,000 took: 8,000 in ~1/4 of the bytes, the 800 uncompacted included.
    assert store.conn.execute(archive_bytes).fetchone()[0] < before / 4
    store.close()
