"""The dashboard's JSON API on a real uvicorn server: data from real nodes, pages, ranges, CSV, AQI, errors.

Runs once on SQLite and once on PostgreSQL (the ``ioc_db`` fixture). Requests go over loopback HTTP with
an API token, as a script would send them.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
import requests
from helpers import free_port, wait_for
from paho.mqtt.enums import CallbackAPIVersion
from support_ioc import Api
from support_nodes import backlog, expected_positions, node_config

from ioc.db import Database
from ioc.web import WebServer, WebSettings, create_app
from ioc.web.aqi import BANDS, band, vn_aqi
from ioc.web.auth import Tokens, Users
from sync.records import Alarm, Count, Event, NodeStatus, Position, Summary, TimeSource
from sync.wire import Batch, encode_batch, up_topic

EPOCH = "a1b2c3d4e5f60718"
T0 = 1_714_500_000_000  # 2024-04-30T18:00:00Z, 2024-05-01 01:00 in Hue
GPS, NTP = int(TimeSource.GPS), int(TimeSource.NTP)
CENTRE = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture
def api(web_server: WebServer, ioc_db: Database) -> Iterator[Api]:
    Users(ioc_db).add("lan", "operator", "correct horse battery")
    client = Api(web_server.url, Tokens(ioc_db).create("lan", "tests")[1])
    yield client
    client.close()


def position(i: int) -> Position:
    return Position(
        T0 + i * 1000, GPS, T0 + i * 1000, round(16.46 + i * 1e-5, 7), 107.59, 7.5, 45.0, 1, 9, 0.9, 3.0
    )


def store_positions(db: Database, n: int, device: str = "vessel-042") -> None:
    db.store(Batch(device, EPOCH, "position", list(range(1, n + 1)), [position(i) for i in range(n)]))


def test_a_capture_replayed_by_a_real_node_is_in_the_api(
    shared_dir, tmp_path, broker, receiver, ioc_db, run_node, api
):
    path = shared_dir / "nmea" / "ais-nmea.log"
    expected = expected_positions(path)
    config = node_config(tmp_path, broker.port, f'type = "replay"\npath = "{path}"\nspeed = 0')
    run_node(config)
    wait_for(lambda: ioc_db.count("position") >= len(expected) and backlog(config) == 0, 30, "the positions")
    wait_for(lambda: ioc_db.count("status") > 0, 10, "a status report")

    first = api.json("/api/v1/positions", device="vessel-1")
    second = api.json("/api/v1/positions", device="vessel-1", offset=first["next_offset"])
    assert len(expected) == 164 and first["next_offset"] == 100 and second["next_offset"] is None
    items = first["items"] + second["items"]
    assert [i["seq"] for i in items] == list(range(1, 165))
    for got, want in zip(items, expected, strict=True):
        assert got["ts_ms"] == want["ts_ms"] and got["tsrc"] == GPS
        assert abs(got["lat"] - want["lat"]) < 1e-7 and abs(got["lon"] - want["lon"]) < 1e-7

    vessel = api.json("/api/v1/vessels")["items"]
    assert [(v["device"], v["seq"], v["ts_ms"]) for v in vessel] == [("vessel-1", 164, expected[-1]["ts_ms"])]
    node = api.json("/api/v1/nodes")["items"]
    assert [n["device"] for n in node] == ["vessel-1"]
    assert node[0]["online"] is True and node[0]["version"] == "0.1.0" and node[0]["failed_drivers"] == {}
    assert node[0]["epoch"] == items[0]["epoch"] and set(node[0]["backlog"]) >= {"position", "alarm"}
    assert node[0]["tsrc"] in (NTP, int(TimeSource.FREE), GPS)


def test_pages_follow_one_another_without_gap_or_repeat(ioc_db, api):
    store_positions(ioc_db, 250)
    seqs, offset, offsets = [], 0, []
    while offset is not None:
        page = api.json("/api/v1/positions", limit=100, offset=offset)
        seqs += [i["seq"] for i in page["items"]]
        offset = page["next_offset"]
        offsets.append(offset)
    assert seqs == list(range(1, 251)) and offsets == [100, 200, None]
    newest = api.json("/api/v1/positions", limit=3, order="desc")
    assert [i["seq"] for i in newest["items"]] == [250, 249, 248] and newest["next_offset"] == 3
    assert api.json("/api/v1/positions", offset=1000) == {"items": [], "next_offset": None}
    assert api.json("/api/v1/positions", device="vessel-999") == {"items": [], "next_offset": None}


def test_time_ranges_in_utc_ms_or_iso_times_with_or_without_a_zone(ioc_db, api):
    store_positions(ioc_db, 120)  # one a second from T0

    def seqs(**params: object) -> list[int]:
        return [i["seq"] for i in api.json("/api/v1/positions", limit=1000, **params)["items"]]

    assert seqs(**{"from": T0 + 10_000, "to": T0 + 20_000}) == list(range(11, 21))  # from inclusive, to not
    local = datetime.fromtimestamp((T0 + 60_000) / 1000, CENTRE)  # 2024-05-01 01:01:00 in Hue
    assert seqs(**{"from": local.isoformat()}) == list(range(61, 121))
    assert seqs(**{"from": "2024-05-01T01:01:00"}) == list(range(61, 121))  # no zone: the centre's
    assert seqs(**{"from": "2024-04-30T18:01:00Z"}) == list(range(61, 121))
    assert seqs(to="2024-05-01") == []  # midnight in Hue, before T0
    assert seqs(**{"from": "2024-05-01", "to": "2024-05-02"}) == list(range(1, 121))

    bad = api.get("/api/v1/positions", **{"from": T0 + 5000, "to": T0})
    assert bad.status_code == 422
    assert bad.json() == {"detail": f"query parameter 'from' ({T0 + 5000}) is after 'to' ({T0})"}
    bad = api.get("/api/v1/positions", to="yesterday")
    assert bad.status_code == 422
    assert bad.json() == {
        "detail": "query parameter 'to': 'yesterday' is neither UTC milliseconds nor an ISO 8601 time "
        "such as 2024-05-01T08:00:00+07:00"
    }


def jpeg(seed: int) -> bytes:
    image = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def test_counts_events_and_summaries_with_filters_snapshots_and_aqi(ioc_db, api):
    counts = [
        Count(T0 + i * 60_000, NTP, T0, cam, "bridge", "vehicle", "in", 60, i)
        for i in range(3)
        for cam in ("cam-a", "cam-b")
    ]
    ioc_db.store(Batch("road-1", EPOCH, "count", list(range(1, 7)), counts))
    snaps = [jpeg(1), jpeg(2)]
    events = [
        Event(
            T0 + i * 1000,
            NTP,
            T0,
            "cam-a",
            "wrong-way",
            "car",
            7 + i,
            0.875,
            10,
            20,
            110,
            90,
            "=car against",
            s,
        )
        for i, s in enumerate(snaps)
    ]
    ioc_db.store(Batch("road-1", EPOCH, "event", [1, 2], events))
    summaries = [
        Summary(T0, NTP, T0, "pm-1", "pm25", 60, 60, 55.7, 40.0, 70.0, 55.0, 3342.0, 0),
        Summary(T0, NTP, T0, "pm-1", "pm10", 60, 60, 45.0, 30.0, 60.0, 44.0, 2700.0, 1),
        Summary(T0, NTP, T0, "rain", "rain_mm", 60, 3, 0.2, 0.2, 0.2, 0.2, 0.6, 0),
    ]
    ioc_db.store(Batch("river-7", EPOCH, "summary", [1, 2, 3], summaries))

    b = api.json("/api/v1/counts", camera="cam-b")["items"]
    assert [(c["camera"], c["count"], c["group"], c["line"]) for c in b] == [
        ("cam-b", i, "vehicle", "bridge") for i in range(3)
    ]
    assert len(api.json("/api/v1/counts", device="road-1")["items"]) == 6

    listed = api.json("/api/v1/events", device="road-1")["items"]
    assert [e["seq"] for e in listed] == [2, 1]  # newest first
    assert (
        listed[1]["box"] == [10, 20, 110, 90] and listed[1]["score"] == 0.875 and listed[1]["track_id"] == 7
    )
    assert listed[1]["snapshot_url"] == f"/api/v1/events/road-1/{EPOCH}/1/snapshot.jpg"
    for item, snap in zip(reversed(listed), snaps, strict=True):
        got = api.get(item["snapshot_url"])
        assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg" and got.content == snap
    missing = api.get(f"/api/v1/events/road-1/{EPOCH}/9/snapshot.jpg")
    assert missing.status_code == 404 and missing.json() == {"detail": f"no event road-1/{EPOCH}/9"}

    got = {
        s["quantity"]: s
        for s in api.json("/api/v1/summaries", sensor="pm-1")["items"]
        + api.json("/api/v1/summaries", quantity="rain_mm")["items"]
    }
    assert (got["pm25"]["aqi"], got["pm25"]["aqi_band"]) == (110, "poor")  # Decision 1459's worked example
    assert (got["pm10"]["aqi"], got["pm10"]["aqi_band"]) == (45, "good")
    assert (got["rain_mm"]["aqi"], got["rain_mm"]["aqi_band"]) == (None, None)
    assert got["pm10"]["rejected"] == 1 and got["pm25"]["trimmed_mean"] == 55.0


def test_vn_aqi_breakpoints_and_bands_of_decision_1459():
    levels = [0, 50, 100, 150, 200, 300, 400, 500]
    assert [vn_aqi("pm25", c) for c in (0, 25, 50, 80, 150, 250, 350, 500)] == levels
    assert [vn_aqi("pm10", c) for c in (0, 50, 150, 250, 350, 420, 500, 600)] == levels
    assert vn_aqi("pm25", 20.3) == 41  # the decision's NowCast example
    assert vn_aqi("pm25", 900) == 500 and vn_aqi("pm10", -3) == 0
    assert vn_aqi("pm1", 10) is None and vn_aqi("pm25", None) is None
    assert [band(a).key for a in (0, 50, 51, 100, 101, 150, 151, 200, 201, 300, 301, 500)] == [
        "good", "good", "moderate", "moderate", "poor", "poor", "bad", "bad", "very_bad", "very_bad",
        "hazardous", "hazardous",
    ]  # fmt: skip
    assert [b.color for b in BANDS] == ["#00e400", "#ffff00", "#ff7e00", "#ff0000", "#8f3f97", "#7e0023"]


def alarm(ts: int, state: int, kind: str = "flood", value: float = 3.5) -> Alarm:
    return Alarm(
        T0 + ts, NTP, T0 + ts, "river", kind, state, value, f"{kind} {'raised' if state else 'cleared'}"
    )


def test_alarms_open_until_a_later_clear_open_ones_first(ioc_db, api):
    ioc_db.store(
        Batch("river-7", EPOCH, "alarm", [1, 2, 3], [alarm(0, 1), alarm(10_000, 0), alarm(20_000, 1)])
    )
    ioc_db.store(Batch("river-8", EPOCH, "alarm", [1], [alarm(5_000, 1, "rain")]))

    open_now = api.json("/api/v1/alarms")["items"]
    assert [a["id"] for a in open_now] == [f"river-7/{EPOCH}/3", f"river-8/{EPOCH}/1"]
    assert all(a["open"] and a["cleared_ms"] is None and a["acked_by"] is None for a in open_now)

    every = api.json("/api/v1/alarms", state="all")["items"]
    assert [(a["device"], a["seq"], a["open"]) for a in every] == [
        ("river-7", 3, True), ("river-8", 1, True), ("river-7", 2, False), ("river-7", 1, False)
    ]  # fmt: skip
    assert every[3]["cleared_ms"] == T0 + 10_000 and every[2]["state"] == 0 and every[2]["cleared_ms"] is None
    assert [
        a["seq"] for a in api.json("/api/v1/alarms", state="all", device="river-7", limit=2)["items"]
    ] == [3, 2]
    assert api.json("/api/v1/alarms", **{"from": T0 + 15_000})["items"][0]["seq"] == 3


def csv_of(response: requests.Response) -> list[dict]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.text)))


def test_csv_has_a_header_local_times_and_every_row_of_the_range(ioc_db, api):
    store_positions(ioc_db, 250)
    rows = csv_of(api.get("/api/v1/positions", format="csv"))
    assert len(rows) == 250  # every row of the range, not one page
    assert list(rows[0])[:6] == ["device", "epoch", "seq", "ts_ms", "time_local", "tsrc"]
    assert rows[0]["time_local"] == "2024-05-01T01:00:00.000+07:00" and rows[0]["lat"] == "16.46"
    assert len(csv_of(api.get("/api/v1/positions", format="csv", limit=10, offset=245))) == 5
    response = api.get("/api/v1/positions", format="csv", device="nobody")
    assert response.text.strip() == (
        "device,epoch,seq,ts_ms,time_local,tsrc,lat,lon,speed_kn,course_deg,fix,sats,hdop,alt_m"
    )
    assert 'filename="positions.csv"' in response.headers["content-disposition"]

    ioc_db.store(
        Batch(
            "road-1",
            EPOCH,
            "event",
            [1],
            [Event(T0, NTP, T0, "cam-a", "r", "car", 1, 0.5, 1, 2, 3, 4, "=cmd", b"x")],
        )
    )
    event = csv_of(api.get("/api/v1/events", format="csv"))[0]
    assert (event["box_x1"], event["box_y2"], event["message"]) == ("1", "4", "'=cmd")  # no formula for Excel
    alarms = csv_of(api.get("/api/v1/alarms", format="csv", state="all"))
    assert alarms == []
    ioc_db.store(
        Batch("river-7", EPOCH, "status", [1], [NodeStatus(T0, NTP, T0, '{"backlog": {"alarm": 2}}')])
    )
    node = csv_of(api.get("/api/v1/nodes", format="csv"))[0]
    assert node["device"] == "river-7" and node["backlog"] == '{"alarm": 2}'


def test_a_node_status_is_read_without_trusting_its_body(ioc_db, api):
    body = json.dumps(
        {
            "version": "0.1.0",
            "epoch": EPOCH,
            "backlog": {"position": 12},
            "drops": {"event": 3},
            "counters": {"reject.gps": {"checksum": 4}, "uplink": {"sent": 9}},
            "failed_drivers": {"pm": "no port"},
        }
    )
    ioc_db.store(
        Batch(
            "vessel-042",
            EPOCH,
            "status",
            [1, 2],
            [NodeStatus(T0, GPS, T0, "{}"), NodeStatus(T0 + 60_000, GPS, T0, body)],
        )
    )
    ioc_db.store(Batch("odd-1", EPOCH, "status", [1], [NodeStatus(T0, NTP, T0, '["not", "an", "object"]')]))
    nodes = {n["device"]: n for n in api.json("/api/v1/nodes")["items"]}
    v = nodes["vessel-042"]
    assert (v["status_ts_ms"], v["tsrc"], v["version"], v["epoch"]) == (T0 + 60_000, GPS, "0.1.0", EPOCH)
    assert v["backlog"] == {"position": 12} and v["drops"] == {"event": 3}
    assert v["rejects"] == {"gps": {"checksum": 4}} and v["failed_drivers"] == {"pm": "no port"}
    odd = nodes["odd-1"]
    assert (odd["version"], odd["backlog"], odd["epoch"], odd["online"]) == (None, {}, EPOCH, True)


def test_settings_for_the_pages(ioc_db):
    settings = WebSettings(
        timezone="Asia/Bangkok",
        tile_url="https://tiles.example.org/{z}/{x}/{y}.png",
        water_level_thresholds={"river": {"warn": 3.0, "alarm": 3.5}},
    )
    server = WebServer(create_app(ioc_db, settings), "127.0.0.1", 0)
    server.start()
    Users(ioc_db).add("an", "viewer", "correct horse battery")
    client = Api(server.url, Tokens(ioc_db).create("an")[1])
    try:
        got = client.json("/api/v1/settings")
    finally:
        client.close()
        server.stop()
    assert got["timezone"] == "Asia/Bangkok" and got["online_after_s"] == 180
    assert got["tile_url"] == "https://tiles.example.org/{z}/{x}/{y}.png"
    assert got["water_level_thresholds"] == {"river": {"warn": 3.0, "alarm": 3.5}}
    assert got["aqi_bands"][2] == {
        "key": "poor", "min": 101, "max": 150, "label_vi": "Kém", "label_en": "Poor", "color": "#ff7e00"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("path", "params", "status", "detail"),
    [
        ("/api/v1/positions", {"devise": "x"}, 422,
         "unknown query parameter 'devise'; expected one of: limit, offset, format, device, from, to, order"),
        ("/api/v1/positions", {"limit": 0}, 422,
         "query parameter 'limit': Input should be greater than or equal to 1"),
        ("/api/v1/positions", {"limit": 1001}, 422,
         "query parameter 'limit': Input should be less than or equal to 1000"),
        ("/api/v1/positions", {"limit": "ten"}, 422,
         "query parameter 'limit': Input should be a valid integer, unable to parse string as an integer"),
        ("/api/v1/positions", {"offset": 10**30}, 422,
         "query parameter 'offset': Input should be less than or equal to 2147483648"),
        ("/api/v1/positions", {"from": 10**17}, 422,
         f"query parameter 'from': '{10**17}' is neither UTC milliseconds nor an ISO 8601 time such as "
         "2024-05-01T08:00:00+07:00"),
        ("/api/v1/positions", {"to": "9999999999999999"}, 422,
         "query parameter 'to': '9999999999999999' is out of range (years 1 to 9999)"),
        ("/api/v1/positions", {"device": "Vessel 42"}, 422,
         "query parameter 'device': String should match pattern '^[a-z0-9][a-z0-9_-]{0,63}$'"),
        ("/api/v1/counts", {"camera": "cam\x00a"}, 422,
         "query parameter 'camera': String should match pattern '^[A-Za-z0-9_.-]{1,64}$'"),
        ("/api/v1/alarms", {"state": "closed"}, 422,
         "query parameter 'state': Input should be 'open' or 'all'"),
        ("/api/v1/nodes", {"format": "xml"}, 422,
         "query parameter 'format': Input should be 'json' or 'csv'"),
        ("/api/v1/me", {"x": 1}, 422, "unknown query parameter 'x'; this endpoint takes none"),
        (f"/api/v1/events/road-1/{EPOCH}/-1/snapshot.jpg", {}, 422,
         "path parameter 'seq': Input should be greater than or equal to 0"),
        (f"/api/v1/events/road-1/{EPOCH}/{2**64}/snapshot.jpg", {}, 422,
         "path parameter 'seq': Input should be less than or equal to 9223372036854775807"),
        ("/api/v1/events/road-1/xyz/1/snapshot.jpg", {}, 422,
         "path parameter 'epoch': String should match pattern '^[0-9a-f]{16}$'"),
        ("/api/v1/nowhere", {}, 404, "Not Found"),
    ],
)  # fmt: skip
def test_bad_parameters_get_a_4xx_naming_them(api, path, params, status, detail):
    response = api.get(path, **params)
    assert (response.status_code, response.json()) == (status, {"detail": detail})


def test_ioc_center_run_serves_the_dashboard_beside_its_receiver(broker, ioc_db_url, ioc_db):
    """The simplest centre: one process receives from the broker and serves what it stored."""
    Users(ioc_db).add("lan", "viewer", "correct horse battery")
    client = Api("", Tokens(ioc_db).create("lan")[1])
    port = free_port()
    center = subprocess.Popen(
        [sys.executable, "-m", "ioc", "run", "--mqtt-port", str(broker.port), "--db", ioc_db_url,
         "--http-port", str(port), "--timezone", "Asia/Bangkok", "--metrics-port", "0"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    client.url = f"http://127.0.0.1:{port}"
    edge = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="vessel-042", protocol=mqtt.MQTTv5)
    edge.connect(broker.host, broker.port)
    edge.loop_start()
    payload = encode_batch(Batch("vessel-042", EPOCH, "position", [1], [position(0)]))

    def stored() -> bool:
        assert center.poll() is None, center.communicate()
        # Sent again until the receiver has subscribed; the database keeps one copy.
        edge.publish(up_topic("ioc/v1", "vessel-042", "position"), payload, qos=1).wait_for_publish(5)
        try:
            return client.get("/api/v1/positions").json().get("items") != []
        except requests.ConnectionError:
            return False

    try:
        wait_for(stored, 30, "the position through `ioc-center run --http-port`")
        assert client.json("/api/v1/settings")["timezone"] == "Asia/Bangkok"
        assert [i["seq"] for i in client.json("/api/v1/positions")["items"]] == [1]
    finally:
        edge.loop_stop()
        edge.disconnect()
        client.close()
        center.terminate()
        _, stderr = center.communicate(timeout=30)
    assert center.returncode == 0 and stderr == f"dashboard: http://127.0.0.1:{port}/\n"


def test_the_api_docs_page_loads_everything_from_the_centre_itself(api):
    import re

    page = api.get("/api/v1/docs")  # for a signed-in user or a token only

    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: ?["']([^"']+)["']""", page.text)
    urls = [a or b for a, b in urls]
    assert urls and all(u.startswith("/") for u in urls), urls  # no CDN: an offline centre has docs
    for url in urls:
        assert api.get(url).status_code == 200, url
