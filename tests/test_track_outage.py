"""A 48-hour link outage at 1 Hz, accelerated: on reconnect every position arrives and the chain verifies."""

from __future__ import annotations

import numpy as np
from helpers import wait_for
from support_nodes import Vessel, ca_of

from edge.config import UplinkConfig
from ioc.track import chain_status
from sync.records import Position, TimeSource
from sync.store import Store
from sync.trackfile import verify
from sync.uplink import MqttUplink

HOURS = 48
T0 = 1_764_000_000_000  # 2025-11-24


def two_days_at_sea() -> list[Position]:
    """A vessel at ~6 kn, one fix a second for 48 hours."""
    n = HOURS * 3600
    rng = np.random.default_rng(7)
    heading = np.cumsum(rng.normal(0, 0.5, n)) + 40
    step = 6 * 0.5144 / 111_320
    lat = 16.55 + np.cumsum(step * np.cos(np.radians(heading)))
    lon = 107.65 + np.cumsum(step * np.sin(np.radians(heading)))
    ts = T0 + np.arange(n, dtype=np.int64) * 1000
    return [
        Position(
            t, int(TimeSource.GPS), t + 20, round(a, 7), round(o, 7), 6.0, round(h % 360, 1), 1, 10, 0.9, 2.0
        )
        for t, a, o, h in zip(ts.tolist(), lat.tolist(), lon.tolist(), heading.tolist(), strict=True)
    ]


def test_after_48_hours_without_a_link_every_position_arrives_and_the_chain_verifies(
    tmp_path, identity, broker, receiver, ioc_db
):
    path = tmp_path / "store.db"
    vessel = Vessel(path, identity)
    uplink_store = Store(path)
    uplink = MqttUplink(
        uplink_store,
        "vessel-042",
        UplinkConfig(port=broker.port, backoff_min_s=0.1, backoff_max_s=0.5, ack_timeout_s=5),
    )
    broker.stop()  # the link is down from the start
    uplink.start()
    try:
        positions = two_days_at_sea()
        for lo in range(0, len(positions), 600):  # signed every 600 s, as at sea
            vessel.track.add(positions[lo : lo + 600])
            vessel.track.sign()
        n = vessel.track.head.next_idx
        wait_for(lambda: vessel.recorder.committed >= n + n // 600, 60, "two days committed on the node")
        assert ioc_db.count("track") == 0
        broker.start()

        def verified() -> int:
            chains = chain_status(ioc_db, "vessel-042")["chains"]
            return chains[0]["verified_idx"] if chains else -1

        wait_for(lambda: verified() == n - 1, 180, "the whole chain verified at the IOC")
    finally:
        uplink.stop()
        uplink_store.close()
        vessel.stop()
    assert n == len(positions) == HOURS * 3600
    assert ioc_db.count("track") == n
    stored = ioc_db.fetch("SELECT MIN(ts_ms) AS a, MAX(ts_ms) AS b, COUNT(DISTINCT idx) AS k FROM rec_track")[
        0
    ]
    assert (stored["a"], stored["b"], stored["k"]) == (T0, T0 + (n - 1) * 1000, n)
    assert chain_status(ioc_db, "vessel-042")["flags"] == []  # one fix a second: no gap, no break
    vessel.export(tmp_path / "two-days.track")
    report = verify(tmp_path / "two-days.track", ca_of(identity))
    assert (report.records, report.signatures, report.first_ms, report.last_ms) == (
        n,
        n // 600,
        T0,
        T0 + (n - 1) * 1000,
    )
