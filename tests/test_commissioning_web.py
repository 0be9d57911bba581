"""The nodes page shows a node's commissioning record and the verdict on its signature (headless Chromium)."""

from __future__ import annotations

import json
import time

import pytest
from playwright.sync_api import expect
from support_browser import needs_chromium

from edge.commissioning import SCHEMA
from ioc.commissioning import CommissioningCheck
from provisioning import pki
from provisioning.signing import DeviceSigner
from sync.records import Commissioning, TimeSource
from sync.wire import Batch

pytestmark = needs_chromium

CHECKS = [
    {"name": "config", "status": "PASS", "detail": "edge.toml valid (1 drivers)", "hint": ""},
    {
        "name": "gps gps",
        "status": "FAIL",
        "detail": "no fix in 5 s (40 sentences)",
        "hint": "put the antenna",
    },
    {"name": "broker", "status": "PASS", "detail": "mqtt.ioc:8883 over mutual TLS", "hint": ""},
]


def commissioning_batch(identity, device: str, epoch: str, tamper: bool = False) -> Batch:
    now = int(time.time() * 1000)
    body = json.dumps(
        {"schema": SCHEMA, "device": device, "site": "Thuan An", "version": "0.1.0", "time_ms": now,
         "time_source": "ntp", "operator": "alice", "passed": False, "checks": CHECKS},
        sort_keys=True,
    )  # fmt: skip
    signer = DeviceSigner.load(identity)
    signature = signer.sign(body.encode())
    if tamper:
        body = body.replace('"FAIL"', '"PASS"')
    record = Commissioning(now, TimeSource.NTP, now, body, signer.chain_pem.decode(), signature)
    return Batch(device, epoch, "commissioning", [1], [record])


@pytest.mark.parametrize("ioc_db_url", ["sqlite"], indirect=True)
def test_nodes_page_shows_the_commissioning_record_and_flags_a_tampered_one(dashboard, ioc_db, identity):
    check = CommissioningCheck(ioc_db, pki.load_certificates(identity.ca)[0])
    for batch in (
        commissioning_batch(identity, "vessel-042", "00000000000000a1"),
        commissioning_batch(identity, "vessel-042", "00000000000000a2", tamper=True),
    ):
        ioc_db.store(batch)
        check(batch)
        time.sleep(0.01)  # the second arrives last: the latest
    page = dashboard.sign_in("an", "nodes")
    page.locator('#nodes tr[data-device="vessel-042"]').click()
    verdict = page.locator("#commissioning-body [data-verdict]")
    expect(verdict).to_have_attribute("data-verdict", "invalid")
    expect(verdict).to_contain_text("Signature INVALID: do not trust this record")
    expect(verdict).to_contain_text("the signature does not match the data: changed or forged")
    dashboard.screenshot(page, "nodes-commissioning-invalid")

    ioc_db.execute("DELETE FROM rec_commissioning WHERE epoch = ?", ["00000000000000a2"])
    page.get_by_label("Node").select_option("")
    page.get_by_label("Node").select_option("vessel-042")
    expect(verdict).to_have_attribute("data-verdict", "valid")
    expect(verdict).to_contain_text("signed by vessel-042's key (certificate from signer vessel-042)")
    expect(page.locator("#commissioning-body")).to_contain_text("Self-test FAILED at ")
    expect(page.locator("#commissioning-body")).to_contain_text("by alice; version 0.1.0; site Thuan An;")
    rows = page.locator("#commissioning-checks tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(1)).to_contain_text("FAILgps gpsno fix in 5 s (40 sentences)put the antenna")
    dashboard.screenshot(page, "nodes-commissioning")
