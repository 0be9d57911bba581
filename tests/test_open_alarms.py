"""One definition of an open alarm, shared by the demo's progress line and the dashboard (its API,
its list and the header's badge): ``ioc.web.queries.open_alarms`` and the open filter of ``alarms``.

An alarm is one (device, source, kind); a raise right after a raise of the same alarm repeats it (a
node's alarm rules forget their state when it restarts) and opens no second alarm.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import requests
from helpers import now_ms
from playwright.sync_api import expect
from support_browser import Dashboard, needs_chromium

from ioc.db import Database
from ioc.demo import Demo, DemoOptions
from ioc.web import WebServer
from ioc.web.auth import Tokens
from sync.records import Alarm, TimeSource
from sync.store import Store
from sync.wire import Batch

pytestmark = needs_chromium

EPOCH = "0123456789abcdef"


def alarm(ts_ms: int, source: str, kind: str, state: int) -> Alarm:
    return Alarm(
        ts_ms, TimeSource.GPS, ts_ms, source, kind, state, 3.6, f"{kind} {'raised' if state else 'cleared'}"
    )


def demo_line(db: Database, shared_dir: Path, tmp_path: Path) -> str:
    """The demo's progress line over ``db`` (what it prints every few seconds while it runs)."""
    demo = Demo(DemoOptions(tmp_path / "demo", shared_dir, None, 0, 90, 0, True), threading.Event())
    demo.db = db  # what start_receiver opens, and the vessel's store that start_nodes opens
    demo.vessel_store = Store(tmp_path / "vessel.db")
    try:
        return demo.progress()
    finally:
        demo.vessel_store.close()


def test_two_raises_without_a_clear_are_one_open_alarm_for_the_demo_and_the_dashboard(
    dashboard: Dashboard, web: WebServer, ioc_db: Database, shared_dir: Path, tmp_path: Path
) -> None:
    t0 = now_ms() - 60_000
    # river-07's flood: raised twice, never cleared (the node restarted while the river was high): open.
    # Its rain alarm: raised, cleared, raised again: open from the second raise.
    flood, rain = ("river", "flood"), ("rain", "rain_rate")
    ioc_db.store(
        Batch(
            "river-07",
            EPOCH,
            "alarm",
            [1, 2, 3, 4, 5],
            [
                alarm(t0, *flood, 1),
                alarm(t0 + 5_000, *rain, 1),
                alarm(t0 + 8_000, *rain, 0),
                alarm(t0 + 10_000, *flood, 1),
                alarm(t0 + 12_000, *rain, 1),
            ],
        )
    )
    # river-08's flood: raised twice, then one clear closes both: not open.
    ioc_db.store(
        Batch(
            "river-08",
            EPOCH,
            "alarm",
            [1, 2, 3],
            [alarm(t0 + n * 1_000, *flood, s) for n, s in ((1, 1), (2, 1), (3, 0))],
        )
    )

    token = Tokens(ioc_db).create("lan", "tests")[1]
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {token}"
        open_now = http.get(f"{web.url}/api/v1/alarms", params={"state": "open"}, timeout=10).json()["items"]
        every = http.get(f"{web.url}/api/v1/alarms", params={"state": "all"}, timeout=10).json()["items"]
    # The open alarms are dated from the raise that opened them: the flood's first, the rain's second.
    assert [(a["id"], a["open"]) for a in open_now] == [
        (f"river-07/{EPOCH}/5", True),
        (f"river-07/{EPOCH}/1", True),
    ]
    by_id = {a["id"]: a for a in every}
    assert (by_id[f"river-07/{EPOCH}/4"]["open"], by_id[f"river-07/{EPOCH}/4"]["cleared_ms"]) == (False, None)
    assert [by_id[f"river-08/{EPOCH}/{seq}"]["cleared_ms"] for seq in (1, 2)] == [t0 + 3_000, t0 + 3_000]
    assert sum(a["open"] for a in every) == 2

    assert re.search(r"  open_alarms=(\d+)  ", demo_line(ioc_db, shared_dir, tmp_path)).group(1) == "2"

    page = dashboard.sign_in("lan", "alarms")
    expect(page.locator("#open-alarms")).to_have_text("2")
    expect(page.locator("#alarms tbody tr.open")).to_have_count(2)
