"""The warnings' tests' shared parts: a node's outputs on mock pins (``OUTPUTS``, with short patterns), the
city's area, and a centre's view of nodes and their warning receipts without a broker (each record handed
to the receiver as it handles an uplink message: stored, then given to its checks: a status to the labels
and places, a receipt to the warnings)."""

from __future__ import annotations

import json

from helpers import now_ms
from support_ioc import EPOCH, PREFIX

from ioc.db import Database
from ioc.receiver import Receiver
from sync.records import NodeStatus, TimeSource, WarningReceipt
from sync.warnings import Area
from sync.wire import Batch, encode_batch, up_topic

NTP = int(TimeSource.NTP)
SIREN, LIGHT, BUTTON = 17, 27, 5
OUTPUTS = f"""
[outputs.siren]
type = "siren"
pin = {SIREN}

[outputs.light]
type = "light"
pin = {LIGHT}

[outputs.ack]
type = "button"
pin = {BUTTON}

[patterns.short]
on_s = 0.2
off_s = 0.1
blasts = 2
repeat = 2
pause_s = 0.3

[patterns.long]
on_s = 30
off_s = 0
blasts = 1
"""
"""A siren, a light and an acknowledge button on mock pins; ``short`` (1.3 s) to time, ``long`` to cut."""
CITY = Area(
    "TP Huế",
    polygons=(((16.40, 107.50), (16.40, 107.65), (16.52, 107.65), (16.52, 107.50), (16.40, 107.50)),),
)


def uplink(db: Database, device: str, stream: str, seq: int, records: list[tuple]) -> None:
    """``records`` of ``stream`` from ``device`` as the receiver handles an uplink message: stored, then
    handed to its checks (a status to the labels and places, a receipt to the warnings)."""
    batch = Batch(device, EPOCH, stream, list(range(seq, seq + len(records))), records)
    assert Receiver(db, "127.0.0.1", 1).handle(up_topic(PREFIX, device, stream), encode_batch(batch))


def report(db: Database, device: str, body: dict) -> None:
    """``device``'s status saying ``body`` (labels, location, mobile)."""
    t = now_ms()
    uplink(db, device, "status", 1, [tuple(NodeStatus(t, NTP, t, json.dumps(body)))])


def receipt(db: Database, device: str, seq: int, identifier: str, *steps: tuple) -> None:
    """``device``'s receipts of warning ``identifier``: ``steps`` of (event, output, by, inside), now."""
    t = now_ms()
    at = {1: (16.8, 107.7), 0: (15.0, 109.5)}
    records = [
        tuple(
            WarningReceipt(
                t, NTP, t, identifier, event, output, by, inside, *at.get(inside, (None, None)), ""
            )
        )
        for event, output, by, inside in steps
    ]
    uplink(db, device, "warning_receipt", seq, records)


def places(db: Database) -> None:
    """A flood station on the coast, one in Saigon, one that reports no place, and a vessel."""
    flood = {"kind": "flood-station", "district": "phu-vang"}
    report(db, "st-in", {"labels": flood, "location": {"lat": 16.7, "lon": 107.7}})
    report(db, "st-out", {"labels": flood, "location": {"lat": 10.8, "lon": 106.6}})
    report(db, "st-none", {"labels": flood})
    report(db, "vessel-1", {"labels": {"fleet": "north"}, "mobile": True})
