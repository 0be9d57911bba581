"""What a node managed to store must not break the dashboard (issue 13, findings 3, 4, 8 and 12): records
an older centre stored unchecked (a time no date can hold, a status no parser can read, a 1 MB status)
leave the pages, the API, its CSV exports and the live feed whole; CSV cells that a spreadsheet would
run as a formula are neutralised, a leading TAB or CR included."""

from __future__ import annotations

import csv
import io
import json

from helpers import now_ms
from playwright.sync_api import expect
from support_browser import Dashboard, needs_chromium
from support_ioc import Api

from ioc.db import Database
from ioc.web import WebServer
from ioc.web.auth import Tokens, Users
from ioc.web.live import LiveFeed
from ioc.web.queries import NodeView
from sync.records import Alarm, NodeStatus, Position, TimeSource
from sync.wire import Batch

EPOCH = "a1b2c3d4e5f60718"
NTP = int(TimeSource.NTP)


def csv_rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def api_of(url: str, db: Database) -> Api:
    return Api(url, Tokens(db).create("lan", "tests")[1])


@needs_chromium
def test_an_alarm_time_no_date_can_hold_leaves_the_alarms_page_and_its_csv_whole(
    dashboard: Dashboard, ioc_db: Database
):
    now = now_ms()
    alarms = [
        Alarm(now - 60_000, NTP, now - 60_000, "gauge", "level_high", 1, 4.2, "level high"),
        Alarm(2**62, NTP, 2**62, "bilge", "pump_failed", 1, None, "forged"),  # "Invalid time value" before
        Alarm(now - 120_000, NTP, now - 120_000, "bilge", "water_high", 1, 3.5, "water high"),
    ]
    ioc_db.store(Batch("river-07", EPOCH, "alarm", [1, 2, 3], alarms))

    page = dashboard.sign_in("lan", "alarms")
    expect(page.locator("#alarms tbody tr")).to_have_count(3)
    expect(page.locator(f'#alarms tr[data-id="river-07/{EPOCH}/2"] td').first).to_have_text("invalid time")
    expect(page.locator(f'#alarms tr[data-id="river-07/{EPOCH}/1"]')).to_contain_text("level high")

    api = api_of(dashboard.url, ioc_db)
    exported = api.get("/api/v1/alarms", format="csv", state="all")
    assert exported.status_code == 200
    rows = csv_rows(exported.text)
    assert [(r["seq"], r["message"]) for r in rows] == [
        ("2", "forged"),
        ("1", "level high"),
        ("3", "water high"),
    ]
    assert rows[0]["time_local"] == "invalid"
    assert rows[1]["time_local"].startswith(("20", "21"))
    api.close()


def test_statuses_no_reader_can_parse_leave_nodes_its_csv_and_the_live_feed_whole(
    ioc_db: Database, web_server: WebServer
):
    now = now_ms()
    bodies = {
        "deep-1": "[" * 200_000,  # RecursionError: /nodes answered 500 and the live feed lost the poll
        "deep-2": "[" * 50_000,  # as deep, within the size a status may have
        "nan-1": '{"backlog": {"position": NaN}}',  # no JSON answer can carry a NaN
        "huge-1": json.dumps({"counters": {"pad": "x" * 1_000_000}}),  # every /nodes answer 1 MB larger
        "good-1": json.dumps({"version": "0.1.0", "backlog": {"position": 3}}),
    }
    for device, body in bodies.items():
        ioc_db.store(Batch(device, EPOCH, "status", [1], [NodeStatus(now, NTP, now, body)]))
    ioc_db.store(Batch("vessel-9", EPOCH, "position", [1], [Position(now, NTP, now, 16.46, 107.59)]))

    events = dict(LiveFeed(ioc_db, NodeView(online_after_s=180)).poll())
    assert sorted(n["device"] for n in events["status"]) == sorted(bodies)
    assert [p["device"] for p in events["position"]] == ["vessel-9"]

    Users(ioc_db).add("lan", "operator", "correct horse battery")
    api = api_of(web_server.url, ioc_db)
    answer = api.get("/api/v1/nodes")
    assert answer.status_code == 200, answer.text
    assert len(answer.content) < 10_000
    nodes = {n["device"]: n for n in answer.json()["items"]}
    assert {d: (n["backlog"], n["counters"]) for d, n in nodes.items()} == {
        "deep-1": ({}, {}),
        "deep-2": ({}, {}),
        "nan-1": ({}, {}),
        "huge-1": ({}, {}),
        "good-1": ({"position": 3}, {}),
        "vessel-9": ({}, {}),
    }
    exported = api.get("/api/v1/nodes", format="csv")
    assert exported.status_code == 200
    assert sorted(r["device"] for r in csv_rows(exported.text)) == sorted([*bodies, "vessel-9"])
    api.close()


def test_csv_export_neutralises_formulas_behind_a_tab_or_a_cr(ioc_db, web_server: WebServer):
    messages = ['\t=HYPERLINK("https://evil.example")', "\r=1+1", "=1+1", "-2", "water high"]
    now = now_ms()
    records = [Alarm(now - i, NTP, now - i, "bilge", "high", 1, None, m) for i, m in enumerate(messages)]
    ioc_db.store(Batch("river-07", EPOCH, "alarm", list(range(1, 6)), records))
    Users(ioc_db).add("lan", "operator", "correct horse battery")
    api = api_of(web_server.url, ioc_db)
    exported = api.get("/api/v1/alarms", format="csv", state="all")
    api.close()
    # In any order: an alarm raised again is a repeat (ioc.web.queries), listed after the open one.
    assert sorted(r["message"] for r in csv_rows(exported.text)) == sorted(
        [
            '\'\t=HYPERLINK("https://evil.example")',
            "'\r=1+1",
            "'=1+1",
            "'-2",
            "water high",
        ]
    )
