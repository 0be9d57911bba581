"""The operators' dashboard in a real headless Chromium against the real web server, receiver and mosquitto.

Sign-in; a position an edge node sends appears on the vessels page without a reload; an alarm raised on a
node appears on the alarms page, an operator acknowledges it (stored: who, when) and a viewer cannot; every
page renders stored data and is saved as a screenshot into ``$IOC_TEST_ARTIFACTS`` (default
build/artifacts/). Debian's Chromium is driven through Playwright; no browser is ever downloaded.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
from helpers import now_ms
from playwright.sync_api import expect
from support_browser import PASSWORD, Dashboard, needs_chromium

from edge.config import UplinkConfig
from ioc.broker import PrivateBroker
from ioc.db import Database
from ioc.web import WebSettings
from sync.records import Alarm, Count, Event, NodeStatus, Position, Summary, TimeSource
from sync.store import Store
from sync.uplink import MqttUplink
from sync.wire import Batch

pytestmark = needs_chromium

CENTRE = ZoneInfo("Asia/Ho_Chi_Minh")
EPOCH = "0123456789abcdef"
GPS = int(TimeSource.GPS)
LIVE_MS = 10_000  # the most a page may take to show a new row (the live feed polls the database each second)


def centre_time(ms: int) -> str:
    """How the pages write ``ms``: the centre's local time."""
    return datetime.fromtimestamp(ms / 1000, CENTRE).strftime("%Y-%m-%d %H:%M:%S")


class EdgeNode:
    """The sending half of an edge device: records written to its store go up through the real uplink.

    Example: ``EdgeNode(tmp_path / "store.db", "vessel-042", broker.port).send("position", [fix])``
    """

    def __init__(self, path: Path, device: str, port: int) -> None:
        self.store = Store(path)  # the writer's own connection: a store connection serves one thread
        self._uplink_store = Store(path)
        self.uplink = MqttUplink(
            self._uplink_store, device, UplinkConfig(port=port, backoff_min_s=0.1, backoff_max_s=1)
        )
        self.uplink.start()

    def send(self, stream: str, records: list[tuple]) -> None:
        self.store.write({stream: records})

    def close(self) -> None:
        self.uplink.stop()
        self._uplink_store.close()
        self.store.close()


@pytest.fixture
def edge_node(tmp_path: Path, broker: PrivateBroker, receiver) -> Iterator[Callable]:
    """Start edge devices sending to ``broker``, where the IOC's receiver stores into ``ioc_db``."""
    nodes: list[EdgeNode] = []

    def start(device: str) -> EdgeNode:
        node = EdgeNode(tmp_path / device / "store.db", device, broker.port)
        nodes.append(node)
        return node

    yield start
    for node in nodes:
        node.close()


def fix(ts_ms: int, lat: float, lon: float) -> Position:
    return Position(ts_ms, GPS, ts_ms, lat, lon, 6.5, 80.0, 1, 9, 0.9, 2.0)


def test_sign_in_and_out(dashboard: Dashboard) -> None:
    page = dashboard.open("/#/alarms")
    expect(page).to_have_url(re.compile(r"/login\.html\?next="))  # no session: the server sends us to sign in
    page.get_by_label("User name").fill("lan")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    dashboard.screenshot(page, "login")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alarms")  # back where the operator was going
    expect(page.locator("#user")).to_have_text("lan (operator)")
    expect(page.locator("#zone")).to_have_text("Asia/Ho_Chi_Minh")
    expect(page.locator("#live-state")).to_have_text("live")

    # Before any node has sent anything, every page says so (and none throws: see the dashboard fixture).
    empty = {
        "nodes": ("#nodes tbody", "No node has reported yet."),
        "cameras": ("#events", "No events."),
        "environment": ("#air .grid", "No particulate readings in this range."),
        "vessels": ("#vessels tbody", "No vessel has reported a position."),
        "alarms": ("#alarms tbody", "No open alarms."),
    }
    for view, (where, text) in empty.items():
        page.goto(f"{dashboard.url}/#/{view}")
        expect(page.locator(where)).to_have_text(text)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login\.html$"))
    assert page.evaluate("fetch('/api/v1/me').then((r) => r.status)") == 401


def test_a_position_sent_by_an_edge_node_appears_on_the_vessels_page_without_a_reload(
    dashboard: Dashboard, edge_node: Callable[[str], EdgeNode]
) -> None:
    page = dashboard.sign_in("lan", "vessels")
    vessels = page.locator("#vessels tbody")
    expect(vessels).to_have_text("No vessel has reported a position.")
    expect(page.locator("#live-state")).to_have_text("live")
    expect(page.locator(".graticule-label").first).to_be_visible()  # no tile URL: a graticule instead
    page.evaluate("window.loadedOnce = true")  # gone if the page reloads

    node = edge_node("vessel-042")
    sent = time.monotonic()
    node.send("position", [fix(now_ms(), 16.4637, 107.5909)])
    row = vessels.locator('tr[data-device="vessel-042"]')
    expect(row.locator(".position")).to_have_text("16.46370, 107.59090", timeout=LIVE_MS)
    shown_after_s = time.monotonic() - sent
    expect(row).to_contain_text("6.5 kn · 80° · 9 sats")

    node.send("position", [fix(now_ms(), 16.4651, 107.5932)])
    expect(row.locator(".position")).to_have_text("16.46510, 107.59320", timeout=LIVE_MS)
    expect(row).to_have_attribute("data-points", "2")  # the track grew: both fixes are on the map
    assert page.evaluate("window.loadedOnce") is True
    expect(page.locator("#vessel-count")).to_have_text("1 vessel")
    dashboard.screenshot(page, "vessels")
    assert shown_after_s < LIVE_MS / 1000


def test_an_alarm_raised_on_a_node_appears_and_an_operator_acknowledges_it(
    dashboard: Dashboard, edge_node: Callable[[str], EdgeNode], ioc_db: Database
) -> None:
    operator = dashboard.sign_in("lan", "alarms")
    wall = dashboard.sign_in("an", "alarms")  # another screen, a viewer's, watching the same list
    for page in (operator, wall):
        expect(page.locator("#alarms tbody")).to_have_text("No open alarms.")
        expect(page.locator("#open-alarms")).to_have_text("0")
        expect(page.locator("#live-state")).to_have_text("live")

    raised_ms = now_ms()
    edge_node("river-07").send(
        "alarm", [Alarm(raised_ms, GPS, raised_ms, "river", "flood", 1, 3.62, "above 3.5 m")]
    )
    row = operator.locator('#alarms tr[data-device="river-07"]')
    expect(row).to_have_class(re.compile(r"\bopen\b"), timeout=LIVE_MS)
    cells = row.locator("th, td")
    expect(cells).to_have_text([centre_time(raised_ms), "river-07", "river", "flood", "Raisedopen", "3.62",
                                "above 3.5 m", "not yet", "Acknowledge"])  # fmt: skip
    expect(operator.locator("#open-alarms")).to_have_text("1")
    dashboard.screenshot(operator, "alarms")

    before = now_ms()
    operator.get_by_role("button", name="Acknowledge flood on river-07").click()
    expect(row.locator("td.acked")).to_contain_text("lan")
    after = now_ms()
    acks = ioc_db.fetch("SELECT device, epoch, seq, acked_by, acked_ms FROM alarm_acks")
    assert [(a["device"], a["seq"], a["acked_by"]) for a in acks] == [("river-07", 1, "lan")]
    assert before <= acks[0]["acked_ms"] <= after
    expect(row.locator("td.acked")).to_have_text(f"lan{centre_time(acks[0]['acked_ms'])}")
    expect(row.get_by_role("button")).to_have_count(0)
    # The other screen learns of the ack from the live stream, without a reload.
    expect(wall.locator('#alarms tr[data-device="river-07"] td.acked')).to_contain_text(
        "lan", timeout=LIVE_MS
    )
    dashboard.screenshot(operator, "alarms-acknowledged")


def test_a_viewer_cannot_acknowledge(dashboard: Dashboard, ioc_db: Database) -> None:
    raised_ms = now_ms()
    ioc_db.store(
        Batch("river-07", EPOCH, "alarm", [7], [Alarm(raised_ms, GPS, raised_ms, "river", "flood", 1, 3.6)])
    )
    page = dashboard.sign_in("an", "alarms")
    button = page.get_by_role("button", name="Acknowledge flood on river-07")
    expect(button).to_be_disabled()
    expect(page.locator("#viewer-note")).to_have_text(
        "Signed in as a viewer: acknowledging alarms needs an operator."
    )
    # The server refuses it too, whatever the page shows.
    answer = page.evaluate(
        f"fetch('/api/v1/alarms/river-07/{EPOCH}/7/ack', {{method: 'POST'}})"
        ".then(async (r) => [r.status, await r.json()])"
    )
    assert answer == [403, {"detail": "user 'an' is a viewer: only operators acknowledge alarms"}]
    assert ioc_db.fetch("SELECT * FROM alarm_acks") == []
    dashboard.screenshot(page, "alarms-viewer")


def jpeg(label: str) -> bytes:
    """A small snapshot: a box on a dark frame, as a camera node would send it (privacy blur aside)."""
    image = np.full((240, 320, 3), (60, 45, 30), np.uint8)
    cv2.rectangle(image, (90, 60), (230, 200), (0, 200, 255), 3)
    cv2.putText(image, label, (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
    return cv2.imencode(".jpg", image)[1].tobytes()


def store_sample(db: Database, t0: int) -> None:
    """Two hours of a river station, a camera and a vessel, as the receiver would have stored them."""
    minute = 60_000

    def batch(device: str, stream: str, records: list[tuple]) -> None:
        db.store(Batch(device, EPOCH, stream, list(range(1, len(records) + 1)), records))

    def status(backlog: dict, counters: dict) -> NodeStatus:
        body = {"version": "0.1.0", "epoch": EPOCH, "backlog": backlog, "drops": {}, "counters": counters,
                "failed_drivers": {}}  # fmt: skip
        return NodeStatus(t0, int(TimeSource.NTP), t0, json.dumps(body))

    steps = range(24)  # 5-minute summaries; the last one is t0
    pm25 = [20 + i * (55.7 - 20) / 23 for i in steps]  # ends at the decision's example: AQI 110, "Kém"
    summaries = []
    for i in steps:
        ts = t0 - (23 - i) * 5 * minute
        summaries += [
            Summary(
                ts, GPS, ts, "pm-1", "pm25", 300, 300, pm25[i], pm25[i] - 3, pm25[i] + 3, pm25[i], 0.0, 0
            ),
            Summary(ts, GPS, ts, "pm-1", "pm10", 300, 300, pm25[i] * 1.5, 1, 99, pm25[i] * 1.5, 0.0, 0),
            Summary(ts, GPS, ts, "rain", "rain_mm", 300, 4, 0.2, 0.2, 0.2, 0.2, 0.2 * (i % 6), 0),
            Summary(ts, GPS, ts, "river", "water_level_m", 300, 30, 2.5 + i * 0.03, 2.4, 3.3, 2.5, 0.0, 0),
        ]
    batch("river-07", "summary", summaries)
    batch("river-07", "status", [status({"summary": 12}, {"reject.pm-1": {"checksum": 2}})])
    batch("river-07", "alarm", [
        Alarm(t0 - 120 * minute, GPS, 0, "rain", "heavy-rain", 1, 31.0, "rain 31 mm/h above 30"),
        Alarm(t0 - 90 * minute, GPS, 0, "rain", "heavy-rain", 0, 18.0, "cleared"),
        Alarm(t0 - 60 * minute, GPS, 0, "pm-1", "pm25-band", 1, 56.1, "pm25 56.1 above 55.5"),
        Alarm(t0 - 10 * minute, GPS, 0, "river", "flood", 1, 3.52, "water_level_m 3.52 above 3.5"),
    ])  # fmt: skip
    counts = [
        Count(t0 - (59 - i) * minute, GPS, 0, "gate", "north", group, direction, 60, (i * n) % 7)
        for i in range(60)
        for group, n in (("motorbike", 3), ("car", 1))
        for direction in ("in", "out")
    ]
    batch("cam-01", "count", counts)
    batch("cam-01", "event", [
        Event(t0 - k * 7 * minute, GPS, 0, "gate", "wrong-way", label, 10 + k, 0.91, 90, 60, 230, 200,
              f"{label} crossed north against the flow", jpeg(label))
        for k, label in enumerate(("motorbike", "car", "person"))
    ])  # fmt: skip
    batch("cam-01", "status", [status({}, {})])
    batch(
        "vessel-042",
        "position",
        [fix(t0 - (59 - i) * 10_000, 16.46 + i * 1e-4, 107.59 + i * 2e-4) for i in range(60)],
    )


def test_every_page_shows_stored_data(dashboard: Dashboard, ioc_db: Database) -> None:
    t0 = now_ms()
    store_sample(ioc_db, t0)
    page = dashboard.sign_in("lan", "nodes")
    river = page.locator('#nodes tr[data-device="river-07"]')
    expect(river).to_contain_text("Online")
    expect(river.locator("td").nth(2)).to_have_text("12summary 12")  # backlog waiting on the node
    expect(river.locator("td").nth(4)).to_have_text("2pm-1 checksum 2")  # rejects by driver and reason
    expect(river).to_contain_text("0.1.0")
    expect(page.locator("#nodes-online .figure")).to_have_text("3 / 3")
    dashboard.screenshot(page, "nodes")

    page.goto(f"{dashboard.url}/#/cameras")
    expect(page.locator("#events article")).to_have_count(3)
    expect(page.locator("#events article").first).to_contain_text("motorbike 91% · wrong-way")
    # A function, not an expression: Playwright polls an expression with eval(), which the CSP refuses.
    page.wait_for_function(
        "() => [...document.querySelectorAll('#events img')].every((i) => i.complete && i.naturalWidth)"
    )
    expect(page.locator("#count-totals tbody tr")).to_have_count(2)
    expect(page.locator("#counts-title ~ .chart canvas")).to_have_count(1)
    totals = page.locator("#count-totals tbody").inner_text()
    # The live feed looks a few seconds back, so it repeats what the page just fetched: shown once.
    page.wait_for_timeout(2500)
    expect(page.locator("#events article")).to_have_count(3)
    assert page.locator("#count-totals tbody").inner_text() == totals
    dashboard.screenshot(page, "cameras")

    page.goto(f"{dashboard.url}/#/environment")
    expect(page.locator('#air [data-quantity="pm25"] .aqi')).to_have_text("AQI 110 · Kém")
    expect(page.locator('#level [data-sensor="river-07/river"]')).to_have_attribute("data-state", "warning")
    expect(page.locator('#rain [data-sensor="river-07/rain"]')).to_contain_text("mm last hour")
    expect(page.locator("section.panel canvas")).to_have_count(3)
    dashboard.screenshot(page, "environment")

    page.goto(f"{dashboard.url}/#/vessels")
    expect(page.locator('#vessels tr[data-device="vessel-042"]')).to_have_attribute("data-points", "60")
    dashboard.screenshot(page, "vessels-track")

    page.goto(f"{dashboard.url}/#/alarms")
    rows = page.locator("#alarms tbody tr")
    expect(rows).to_have_count(2)  # open first, newest on top
    assert [r.get_attribute("data-id") for r in rows.all()] == [f"river-07/{EPOCH}/4", f"river-07/{EPOCH}/3"]
    page.get_by_role("button", name="All alarms").click()
    expect(rows).to_have_count(4)
    assert [r.get_attribute("data-id") for r in rows.all()] == [f"river-07/{EPOCH}/{s}" for s in (4, 3, 2, 1)]
    dashboard.screenshot(page, "alarms-all")


def test_camera_events_and_node_statuses_arrive_live(
    dashboard: Dashboard, edge_node: Callable[[str], EdgeNode]
) -> None:
    cameras = dashboard.sign_in("lan", "cameras")
    nodes = dashboard.sign_in("an", "nodes")
    expect(cameras.locator("#events")).to_have_text("No events.")
    expect(nodes.locator("#nodes tbody")).to_have_text("No node has reported yet.")
    for page in (cameras, nodes):
        expect(page.locator("#live-state")).to_have_text("live")

    node = edge_node("cam-01")
    t = now_ms()
    seen = Event(
        t, GPS, t, "gate", "wrong-way", "car", 42, 0.87, 90, 60, 230, 200, "against the flow", jpeg("car")
    )
    node.send("event", [seen])
    failed = {"cam-2": "no frames from rtsp://10.0.0.9/stream"}
    body = {
        "version": "0.2.0",
        "epoch": node.store.epoch,
        "backlog": {},
        "drops": {},
        "failed_drivers": failed,
    }
    node.send("status", [NodeStatus(t, int(TimeSource.NTP), t, json.dumps(body))])

    card = cameras.locator("#events article")
    expect(card).to_have_count(1, timeout=LIVE_MS)
    expect(card).to_contain_text("car 87% · wrong-way")
    expect(card).to_contain_text(f"cam-01/gate · {centre_time(t)}")
    cameras.wait_for_function("() => document.querySelector('#events img').naturalWidth === 320")
    row = nodes.locator('#nodes tr[data-device="cam-01"]')
    expect(row).to_contain_text("0.2.0", timeout=LIVE_MS)
    expect(row).to_contain_text("cam-2: no frames from rtsp://10.0.0.9/stream")
    expect(row.locator("td").nth(0)).to_have_text("Online")


@pytest.mark.parametrize(
    "web_settings", [WebSettings(tile_url="/static/vendor/leaflet-1.9.4/images/layers.png?z={z}&x={x}&y={y}")]
)
def test_a_tile_url_in_the_settings_replaces_the_graticule(dashboard: Dashboard, ioc_db: Database) -> None:
    ioc_db.store(Batch("vessel-042", EPOCH, "position", [1], [fix(now_ms(), 16.4637, 107.5909)]))
    tiles: list[str] = []
    page = dashboard.sign_in("lan")
    page.on("request", lambda r: "layers.png?z=" in r.url and tiles.append(r.url))
    page.goto(f"{dashboard.url}/#/vessels")
    expect(page.locator(".leaflet-tile-loaded").first).to_be_attached()
    assert tiles and all(re.search(r"layers\.png\?z=\d+&x=\d+&y=\d+$", url) for url in tiles)
    expect(page.locator(".graticule-label")).to_have_count(0)


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours."""

    def luminance(colour: str) -> float:
        c = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in c)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_page_helpers_format_times_in_the_centres_zone_and_keep_aqi_labels_readable(
    dashboard: Dashboard,
) -> None:
    page = dashboard.open("/login.html")  # the modules are static files: no session needed
    got = page.evaluate(
        """async () => {
        const { TimeFormat, ago } = await import('/static/js/time.js');
        const { AqiBands } = await import('/static/js/aqi.js');
        const { bucketSeries } = await import('/static/js/chart.js');
        const hue = new TimeFormat('Asia/Ho_Chi_Minh');
        const items = [
          { ts_ms: 0, k: 'a', v: 1 }, { ts_ms: 30e3, k: 'a', v: 3 }, { ts_ms: 60e3, k: 'b', v: 5 },
        ];
        const bands = new AqiBands(null);
        return {
          newYear: hue.dateTime(Date.UTC(2024, 0, 1)),
          epoch: hue.dateTime(0),
          dst: new TimeFormat('Europe/Berlin').dateTime(Date.UTC(2024, 2, 31, 1, 0, 0)),
          unknownZone: new TimeFormat('Asia/Hue').timeZone,
          ages: [ago(5e3, 10e3), ago(0, 3 * 3600e3), ago(null)],
          sum: bucketSeries(items, 60e3, (i) => i.k, (i) => i.v),
          mean: bucketSeries(items, 60e3, (i) => i.k, (i) => i.v, { mean: true }).series[0].values,
          band110: bands.of(110).label_vi,
          bandKey: bands.of('very_bad').max,
          colours: bands.bands.map((b) => [b.color, AqiBands.textOn(b.color)]),
        };
      }"""
    )
    assert got["newYear"] == "2024-01-01 07:00:00"
    assert got["epoch"] == "1970-01-01 08:00:00"  # Saigon kept UTC+8 until 1975: the zone's history counts
    assert got["dst"] == "2024-03-31 03:00:00"  # the hour Berlin skips to summer time
    assert got["unknownZone"] == "Asia/Ho_Chi_Minh"
    assert got["ages"] == ["5 s", "3 h", "never"]
    assert got["sum"] == {"xs": [0, 60000], "series": [{"label": "a", "values": [4, None]},
                                                       {"label": "b", "values": [None, 5]}]}  # fmt: skip
    assert got["mean"] == [2, None]
    assert (got["band110"], got["bandKey"]) == ("Kém", 300)
    assert len(got["colours"]) == 6
    assert all(contrast(bg, fg) >= 4.5 for bg, fg in got["colours"]), got["colours"]
