"""The text of `ioc-edge status`: a pure function of the store's status, every section of it."""

from __future__ import annotations

import json

from drivers.base import Outage
from edge.status import render_status
from sync.store import Store, StoreStatus


def test_the_status_text_shows_every_section_in_order():
    status = StoreStatus(
        epoch="7",
        size_bytes=81920,
        backlog={"position": 12, "count": 3},
        kept_local={"reading": 40},
        last_ack_ms=1_700_000_000_000,
        drops={"position": 2},
        counters={"reject.gps": {"bad_checksum": 4, "garbage": 10}, "health.gps": {"transport_lost": 1}},
        failed_drivers={"rain": "GPIOPinInUse: pin 17 is already in use"},
        outages={
            "street": Outage("video file street.mp4 not found: check the camera's source", 1_699_999_000_000)
        },
        facts={
            "link": {"profile": "satellite", "source": "file", "held": ["event", "count"]},
            "track": {"records": 90, "chain": 2, "signed_to": 88, "signatures": 5, "heartbeats": 1},
        },
    )
    assert render_status(status).splitlines() == [
        "epoch: 7",
        "store: 81920 bytes",
        "backlog: count=3 position=12",
        "kept on the node only: reading=40",
        "last ack: 2023-11-14T22:13:20Z",
        "dropped: position=2",
        "health.gps: transport_lost=1",
        "reject.gps: bad_checksum=4 garbage=10",
        "driver rain failed to start: GPIOPinInUse: pin 17 is already in use",
        "camera street delivers no frames since 2023-11-14T21:56:40Z: video file street.mp4 not found: "
        "check the camera's source",
        "link: satellite (chosen by file), holding event, count",
        "track log: 90 records in chain 2, signed to record 88; this run 5 signatures, 1 no-fix heartbeats",
    ]


def test_a_new_store_reads_as_a_status_with_nothing_to_tell(tmp_path):
    store = Store(tmp_path / "node.db")
    store.set_meta("outages", json.dumps({"cam": {"error": "cannot open camera device 0", "since_ms": 0}}))
    status = store.status()
    store.close()
    assert (status.outages, status.failed_drivers, status.last_ack_ms) == (
        {"cam": Outage("cannot open camera device 0", 0)},
        {},
        None,
    )
    assert render_status(status).splitlines()[3:] == [
        "kept on the node only: reading=0",
        "last ack: never",
        "dropped: none",
        "camera cam delivers no frames since 1970-01-01T00:00:00Z: cannot open camera device 0",
    ]
