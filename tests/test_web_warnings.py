"""Warnings in the API (issue 16, point 7): reach before issuing, issue (operators; 403 for a viewer), the
receipts per target as the receiver stores them, flagged targets, CSV, cancel and update, errors naming the
field. A real uvicorn server with API tokens, once on SQLite and once on PostgreSQL (``ioc_db``); the
nodes' statuses and receipts go through the receiver's own handling of an uplink message (no broker)."""

from __future__ import annotations

import csv
import io

import pytest
from helpers import now_ms, wait_for
from support_ioc import Api
from support_warnings import places, receipt

from ioc.audit import entries
from ioc.cap import from_xml
from ioc.commands import CommandQueue
from ioc.db import Database
from ioc.warnings import default_sender
from sync.warnings import Alert

SEA = [[16.6, 107.5], [16.9, 107.5], [16.9, 108.0], [16.6, 108.0]]
"""The sea off Huế, drawn as an operator clicks it: open (the centre closes it)."""
STORM = {
    "vi": {"event": "Bão", "headline": "Bão số 9", "instruction": "Vào bờ ngay"},
    "en": {"event": "Storm", "headline": "Typhoon no. 9", "instruction": "Return to port now"},
    "severity": "Severe",
    "pattern": "storm",
    "areas": [{"area_desc": "Biển Huế", "polygons": [SEA]}],
}


@pytest.fixture
def users(users: tuple[Api, Api], ioc_db: Database) -> tuple[Api, Api]:
    """conftest's operator and viewer, over the nodes of :func:`places`."""
    places(ioc_db)
    return users


def post(api: Api, path: str, body: object = None) -> tuple[int, dict]:
    got = api.http.post(api.url + path, json=body, timeout=30)
    return got.status_code, got.json()


def test_reach_issue_receipts_flagged_csv_and_cancel(ioc_db, users):
    operator, viewer = users
    assert viewer.json("/api/v1/places")["items"][0] == {
        "device": "st-in",
        "lat": 16.7,
        "lon": 107.7,
        "mobile": False,
        "reported_ms": viewer.json("/api/v1/places")["items"][0]["reported_ms"],
    }
    assert [p["device"] for p in viewer.json("/api/v1/places")["items"]] == [
        "st-in",
        "st-none",
        "st-out",
        "vessel-1",
    ]
    reach = {"areas": STORM["areas"], "selector": None}
    assert post(viewer, "/api/v1/warnings/reach", reach) == (
        200,
        {
            "count": 2,
            "targets": [
                {"device": "st-in", "why": "station inside", "lat": 16.7, "lon": 107.7},
                {"device": "vessel-1", "why": "vessel: decides on board", "lat": None, "lon": None},
            ],
        },
    )
    by_labels = post(viewer, "/api/v1/warnings/reach", {"selector": "district=phu-vang"})[1]
    assert [(t["device"], t["why"]) for t in by_labels["targets"]] == [
        (d, "labels district=phu-vang") for d in ("st-in", "st-none", "st-out")
    ]

    assert post(viewer, "/api/v1/warnings", STORM) == (
        403,
        {"detail": "user 'an' is a viewer: only operators issue warnings"},
    )
    assert CommandQueue(ioc_db).list() == []
    before = now_ms()
    status, issued = post(operator, "/api/v1/warnings", STORM | {"ack_within_s": 1})
    assert status == 201, issued
    w = issued["warning"]
    identifier = w["identifier"]
    assert (
        identifier.startswith(f"ioc-{default_sender().partition('@')[2]}-")
        and w["sender"] == default_sender()
    )
    assert (w["event"], w["headline"], w["severity"], w["pattern"], w["area_desc"]) == (
        "Bão",
        "Bão số 9",
        "Severe",
        "storm",
        "Biển Huế",
    )
    assert (w["state"], w["issuer"], w["targets"], w["delivered"], w["msg_type"]) == (
        "active",
        "lan",
        2,
        0,
        "Alert",
    )
    assert before - 1000 <= w["sent_ms"] <= w["issued_ms"] <= now_ms()
    assert w["expires_ms"] == w["sent_ms"] + 6 * 3_600_000
    assert issued["alert"]["areas"][0]["polygons"] == [[*SEA, SEA[0]]]  # closed by the centre
    assert [i["language"] for i in issued["alert"]["infos"]] == ["vi-VN", "en-US"]
    assert [
        (r["device"], r["command_state"], r["delivered_ms"], r["flagged"]) for r in issued["receipts"]
    ] == [
        ("st-in", "queued", None, False),
        ("vessel-1", "queued", None, False),
    ]
    assert [(c.device, c.kind, c.issuer) for c in CommandQueue(ioc_db).list()] == [
        ("st-in", "warning", "lan"),
        ("vessel-1", "warning", "lan"),
    ]

    cap = viewer.get(f"/api/v1/warnings/{identifier}/cap.xml")
    assert cap.headers["content-type"] == "application/cap+xml"
    assert from_xml(cap.content) == Alert.from_json(issued["alert"])  # CAP 1.2 as issued, read back the same

    receipt(ioc_db, "st-in", 1, identifier, ("delivered", "", "centre", 1), ("sounded", "siren", "centre", 1))
    receipt(ioc_db, "st-in", 3, identifier, ("acknowledged", "", "button:ack", 1))
    receipt(ioc_db, "vessel-1", 1, identifier, ("delivered", "", "centre", 1))
    path = f"/api/v1/warnings/{identifier}"
    wait_for(lambda: viewer.json(path)["unacknowledged"] == 1, 5, "the vessel flagged after 1 s")
    shown = viewer.json(path)
    st_in, vessel = shown["receipts"]
    assert (st_in["acknowledged_by"], st_in["inside"], st_in["lat"], st_in["flagged"]) == (
        "button:ack",
        1,
        16.8,
        False,
    )
    assert st_in["delivered_ms"] <= st_in["sounded_ms"] <= st_in["acknowledged_ms"]
    assert st_in["outputs"] == {"siren": {"sounded_ms": st_in["sounded_ms"]}}
    assert (vessel["device"], vessel["acknowledged_ms"], vessel["flagged"]) == ("vessel-1", None, True)
    counts = shown["warning"]
    assert (counts["delivered"], counts["sounded"], counts["acknowledged"]) == (2, 1, 1)
    assert [r["device"] for r in viewer.json(path, unacked="true")["receipts"]] == ["vessel-1"]

    rows = list(csv.DictReader(io.StringIO(viewer.get(f"{path}/receipts.csv").text)))
    assert [(r["device"], r["acknowledged_by"], r["inside"], r["flagged"]) for r in rows] == [
        ("st-in", "button:ack", "1", "0"),
        ("vessel-1", "", "1", "1"),
    ]
    listed = list(csv.DictReader(io.StringIO(viewer.get("/api/v1/warnings.csv").text)))
    assert [(r["identifier"], r["event"], r["targets"], r["acknowledged"]) for r in listed] == [
        (identifier, "Bão", "2", "1")
    ]
    page = viewer.json("/api/v1/warnings", limit=1)
    assert ([i["identifier"] for i in page["items"]], page["next_offset"]) == ([identifier], None)
    assert viewer.json("/api/v1/warnings", origin="local") == {"items": [], "next_offset": None}

    assert post(viewer, f"{path}/cancel") == (
        403,
        {"detail": "user 'an' is a viewer: only operators cancel warnings"},
    )
    status, cancelled = post(operator, f"{path}/cancel", {"note": "Bão đã suy yếu"})
    assert (status, cancelled["warning"]["state"], cancelled["warning"]["changed_by"]) == (
        200,
        "cancelled",
        "lan",
    )
    assert not any(r["flagged"] for r in cancelled["receipts"])  # no one owes an acknowledgement now
    status, again = post(operator, f"{path}/cancel")
    assert status == 422 and again["detail"].startswith(
        f"identifier: {identifier} was cancelled already, at "
    )
    assert post(operator, "/api/v1/warnings/ioc-nope/cancel") == (
        404,
        {"detail": "no warning 'ioc-nope': GET /api/v1/warnings lists them"},
    )
    assert viewer.get("/api/v1/warnings/ioc-nope").status_code == 404
    assert viewer.get("/api/v1/warnings/ioc-nope/cap.xml").status_code == 404
    assert [(e.user, e.action, e.target, e.result) for e in entries(ioc_db)] == [
        ("lan", "warning.issue", identifier, "queued to 2 nodes"),
        ("lan", "warning.cancel", cancelled["warning"]["superseded_by"], "queued to 2 nodes"),
    ]


def storm(**changes: object) -> dict:
    return STORM | changes


BAD = [
    (storm(vi={"event": ""}), "body field 'vi.event': String should have at least 1 character"),
    (
        storm(severity="Awful"),
        "body field 'severity': Input should be 'Extreme', 'Severe', 'Moderate', 'Minor' or 'Unknown'",
    ),
    (storm(instructions="x"), "unknown body field 'instructions'; expected one of: "),
    (storm(vi={"event": "Bão\x00"}), "vi.event: contains a character that is not text (NUL, a surrogate or"),
    (storm(pattern="Storm!"), "pattern: 'Storm!' is not a pattern name (a-z, 0-9, '_', '-')"),
    (
        storm(areas=[{"area_desc": "x", "polygons": [[[95, 107], [16, 108], [16, 107]]]}]),
        "areas[0].polygons[0][0].lat: 95.0 is not a number -90..90",
    ),
    (
        storm(areas=[{"area_desc": "x", "circles": [[16.8, 107.8, 0]]}]),
        "areas[0].circles[0].radius_km: must be more than 0",
    ),
    (storm(areas=[{"area_desc": "x"}]), "areas[0]: an area needs a polygon or a circle"),
    (storm(selector="district"), "selector term 'district' is not KEY=VALUE, e.g. district=phu-vang"),
    (
        storm(areas=[{"area_desc": "xa", "circles": [[0, 0, 1]]}], selector="kind=flood-station"),
        "targets: no node to reach (labels kind=flood-station; nodes in its areas: stations by their",
    ),
    (storm(expires_in_s=59), "body field 'expires_in_s': Input should be greater than or equal to 60"),
]


def test_a_bad_warning_gets_a_422_naming_the_field_and_an_update_replaces_the_original(ioc_db, users):
    operator, _ = users
    for body, detail in BAD:
        status, got = post(operator, "/api/v1/warnings", body)
        assert status == 422 and got["detail"].startswith(detail), (body, got)
    assert CommandQueue(ioc_db).list() == [] and entries(ioc_db) == []

    identifier = post(operator, "/api/v1/warnings", STORM)[1]["warning"]["identifier"]
    path = f"/api/v1/warnings/{identifier}"
    changed = storm(severity="Extreme", vi=STORM["vi"] | {"headline": "Bão số 9 mạnh lên"}, en=None)
    status, update = post(operator, f"{path}/update", changed)
    assert status == 201, update
    u = update["warning"]
    assert (u["msg_type"], u["refers_to"], u["severity"], u["headline"], u["targets"]) == (
        "Update",
        identifier,
        "Extreme",
        "Bão số 9 mạnh lên",
        2,
    )
    assert [i["language"] for i in update["alert"]["infos"]] == ["vi-VN"]
    assert update["alert"]["references"][0].split(",")[:2] == [default_sender(), identifier]
    original = operator.json(path)["warning"]
    assert (original["state"], original["superseded_by"]) == ("updated", u["identifier"])
    status, again = post(operator, f"{path}/update", changed)
    assert (status, again["detail"]) == (
        422,
        f"identifier: {identifier} was updated by {u['identifier']}: change that one",
    )
    assert [e.action for e in entries(ioc_db)] == ["warning.issue", "warning.update"]
    assert [c.seq for c in CommandQueue(ioc_db).list("st-in")] == [1, 2]
