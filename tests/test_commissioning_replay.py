"""Finding 9: a replayed signed self-test is not shown as passing now. An old record (signed minutes after
the device was certified: its certificate is as new as the test) is re-sent with new wire times through
the receiver: the API and the nodes page (headless Chromium) show the signed time and flag that the wire
times differ.
"""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from helpers import now_ms
from playwright.sync_api import expect
from support_browser import needs_chromium

from edge.commissioning import SCHEMA
from ioc.commissioning import latest
from ioc.receiver import Receiver
from provisioning.signing import DeviceSigner
from sync.records import Commissioning, TimeSource
from sync.wire import Batch, encode_batch, up_topic

OLD = 4 * 60_000  # the identity is minutes old; any age would do
CHECKS = [{"name": "gps gps", "status": "PASS", "detail": "fix in 3 s", "hint": ""}]


def replay(identity, db) -> tuple[int, int]:
    """A record signed ``OLD`` ms ago, received as it was sent then, then re-sent now with new wire times
    (what a node's firmware, or anyone who kept the payload, can do); (signed, re-sent) times."""
    signed = now_ms() - OLD
    body = json.dumps(
        {"schema": SCHEMA, "device": "vessel-042", "site": "Thuan An", "version": "0.1.0", "time_ms": signed,
         "time_source": "ntp", "clock_ms": signed, "operator": "alice", "passed": True, "checks": CHECKS},
        sort_keys=True,
    )  # fmt: skip
    signer = DeviceSigner.load(identity)
    record = Commissioning(
        signed, TimeSource.NTP, signed, body, signer.chain_pem.decode(), signer.sign(body.encode())
    )
    receiver = Receiver(db, "127.0.0.1", 1)  # not started: handle() is what it runs per message
    topic = up_topic("ioc/v1", "vessel-042", "commissioning")
    assert receiver.handle(
        topic, encode_batch(Batch("vessel-042", "00000000000000a1", "commissioning", [1], [record]))
    )
    resent = now_ms()
    again = record._replace(ts_ms=resent, clock_ms=resent)
    assert receiver.handle(
        topic, encode_batch(Batch("vessel-042", "00000000000000a2", "commissioning", [1], [again]))
    )
    return signed, resent


def test_a_replayed_record_shows_its_signed_time_and_is_flagged(identity, ioc_db):
    signed, resent = replay(identity, ioc_db)
    found = latest(ioc_db, "vessel-042")
    assert (found["epoch"], found["verdict"], found["ts_ms"], found["signed_ms"]) == (
        "00000000000000a2", "valid", resent, signed,
    )  # fmt: skip
    assert found["time_mismatch"].endswith(
        " signed: the record was re-sent with new times (a replay of an old self-test?)"
    )
    assert found["time_mismatch"].startswith("time_ms ") and "; clock_ms " in found["time_mismatch"]

    ioc_db.execute("DELETE FROM rec_commissioning WHERE epoch = ?", ["00000000000000a2"])
    original = latest(ioc_db, "vessel-042")
    assert (original["signed_ms"], original["time_mismatch"]) == (signed, None)


@needs_chromium
@pytest.mark.parametrize("ioc_db_url", ["sqlite"], indirect=True)
def test_the_nodes_page_shows_the_signed_time_and_the_replay(dashboard, identity, ioc_db):
    signed, _ = replay(identity, ioc_db)
    page = dashboard.sign_in("an", "nodes")
    page.locator('#nodes tr[data-device="vessel-042"]').click()
    body = page.locator("#commissioning-body")
    expect(body.locator("#commissioning-replay")).to_contain_text(
        "Times do not match the signed record: time_ms "
    )
    when = dt.datetime.fromtimestamp(signed / 1000, ZoneInfo("Asia/Ho_Chi_Minh"))
    expect(body).to_contain_text(
        f"Self-test passed at {when:%Y-%m-%d %H:%M:%S} (ntp time, as signed) by alice"
    )
    dashboard.screenshot(page, "nodes-commissioning-replay")
