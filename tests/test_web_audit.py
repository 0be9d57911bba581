"""The audit log on the web (issue 15): GET /api/v1/audit and /api/v1/audit.csv, for operators only.

Over a real uvicorn server with API tokens, once on SQLite and once on PostgreSQL (``ioc_db``). The
entries are written as ``ioc.audit.audit`` writes them (tests/test_labels_audit.py covers who writes
which); the page's Audit view is in tests/test_web_commands.py's browser test.
"""

from __future__ import annotations

import csv
import io

from ioc.audit import audit

T0 = 1_700_000_000_000


def test_operators_page_and_filter_the_audit_log_a_viewer_is_refused(users, ioc_db):
    operator, viewer = users
    audit(ioc_db, "lan", "label.set", "river-07", {"district": "phu-vang"}, "ok", at_ms=T0)
    audit(
        ioc_db, "lan", "command.send", "river-07", {"kind": "ping"}, "queued", command_seq=1, at_ms=T0 + 1000
    )
    audit(ioc_db, "=cmd|' /C calc'!A0", "label.set", "buoy-3", {"x": "=1+1"}, "-2", at_ms=T0 + 2000)

    for path in ("/api/v1/audit", "/api/v1/audit.csv"):
        refused = viewer.get(path)
        assert (refused.status_code, refused.json()) == (
            403,
            {"detail": "user 'an' is a viewer: only operators read the audit log"},
        )

    page = operator.json("/api/v1/audit", limit=2)
    assert [(e["id"], e["target"], e["result"]) for e in page["items"]] == [
        (3, "buoy-3", "-2"),
        (2, "river-07", "queued"),
    ]  # newest first
    assert page["items"][1] == {
        "id": 2,
        "at_ms": T0 + 1000,
        "user": "lan",
        "action": "command.send",
        "target": "river-07",
        "details": {"kind": "ping"},
        "result": "queued",
        "command_seq": 1,
    }
    assert page["next_offset"] == 2
    rest = operator.json("/api/v1/audit", limit=2, offset=2)
    assert [e["id"] for e in rest["items"]] == [1] and rest["next_offset"] is None
    assert [e["id"] for e in operator.json("/api/v1/audit", device="river-07")["items"]] == [2, 1]
    assert [e["id"] for e in operator.json("/api/v1/audit", since=str(T0 + 1000))["items"]] == [3, 2]
    since = "2023-11-14T22:13:21+00:00"  # T0 + 1 s
    assert [e["id"] for e in operator.json("/api/v1/audit", device="river-07", since=since)["items"]] == [2]
    bad = operator.get("/api/v1/audit", since="yesterday")
    assert bad.status_code == 422 and bad.json()["detail"].startswith("query parameter 'since': 'yesterday'")
    assert operator.get("/api/v1/audit", who="lan").status_code == 422  # an unknown parameter

    got = operator.get("/api/v1/audit.csv", device="buoy-3")
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert 'filename="audit.csv"' in got.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(got.text)))
    assert [(r["id"], r["user"], r["result"], r["details"]) for r in rows] == [
        ("3", "'=cmd|' /C calc'!A0", "'-2", '{"x": "=1+1"}')
    ]  # a formula's first character neutralised; the details' JSON starts with a brace
    assert rows[0]["time_local"] == "2023-11-14T22:13:22.000+00:00"
    every = list(csv.DictReader(io.StringIO(operator.get("/api/v1/audit.csv").text)))
    assert [r["id"] for r in every] == ["1", "2", "3"]  # oldest first, as ioc-center audit list --csv

    paths = operator.json("/api/v1/openapi.json")["paths"]
    assert set(paths["/api/v1/audit"]["get"]["responses"]) >= {"200", "403", "422"}
    assert "/api/v1/audit.csv" in paths and "/api/v1/nodes/{device}/commands/{seq}/snapshot.jpg" in paths
