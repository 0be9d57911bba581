"""Commands from the dashboard and the API (issue 15, point 7): operators issue, viewers only look.

The API over a real uvicorn server with API tokens, once on SQLite and once on PostgreSQL (``ioc_db``);
the node's page in Debian's headless Chromium: an operator's "Ping" appears queued, then with the
node's answer; a viewer sees both and no button. The dispatcher and the node are not needed here:
the answers are applied to the queue as the receiver does (tests/test_commands_centre.py and
tests/test_commands_node.py cover that path).
"""

from __future__ import annotations

import base64
import json

import cv2
import numpy as np
from helpers import now_ms
from playwright.sync_api import expect
from support_browser import Dashboard, needs_chromium

from ioc.audit import COMMAND_SEND, entries
from ioc.commands import CommandQueue
from ioc.db import Database
from ioc.desired import DesiredConfigs, config_version
from sync.records import CommandResult, Count, NodeStatus, TimeSource
from sync.wire import Batch

EPOCH = "a1b2c3d4e5f60718"
NTP = int(TimeSource.NTP)
DEVICE = "river-07"
COMMANDS = f"/api/v1/nodes/{DEVICE}/commands"


def heard(db: Database, device: str = DEVICE) -> None:
    """``device`` as the receiver leaves a node that reported once."""
    t = now_ms()
    db.store(Batch(device, EPOCH, "status", [1], [NodeStatus(t, NTP, t, '{"version": "0.1.0"}')]))


def answer(db: Database, seq: int, state: str, reason: str = "", details: str = "") -> None:
    """What the dispatcher and the receiver record: the command sent for EPOCH, then the node's result."""
    queue = CommandQueue(db)
    t = now_ms()
    assert queue.sent(DEVICE, seq, t, t + 60_000, EPOCH)
    assert queue.result(DEVICE, EPOCH, seq, state, reason, details, t)


WANTED = '[node]\ndevice_id = "river-07"\n\n[drivers.level]\ninterval_s = 5\n'
EDITED = WANTED.replace("interval_s = 5", "interval_s = 60")  # a technician's edit on site


def runs(db: Database, text: str) -> None:
    """The node reports running ``text``: its status's config version, and its text in the answer to the
    centre's ``config.get`` (what the receiver hands ``ioc.desired``)."""
    configs, t = DesiredConfigs(db), now_ms()
    status = {"version": "0.1.0", "config_version": config_version(text)}
    configs.from_status(Batch(DEVICE, EPOCH, "status", [2], [NodeStatus(t, NTP, t, json.dumps(status))]))
    seq = configs.fetch(DEVICE, "lan", t)
    details = json.dumps({"version": config_version(text), "text": text})
    answer(db, seq, "applied", details=details)
    configs.from_results(
        Batch(DEVICE, EPOCH, "command_result", [seq], [CommandResult(t, NTP, t, seq, "applied", "", details)])
    )


def test_an_operator_issues_commands_a_viewer_sees_them_and_is_refused(ioc_db, users):
    operator, viewer = users
    heard(ioc_db)
    before = now_ms()
    first = operator.http.post(operator.url + COMMANDS, json={"kind": "ping"}, timeout=30)
    assert first.status_code == 201, first.text
    ping = first.json()
    assert (ping["device"], ping["seq"], ping["kind"], ping["body"], ping["issuer"]) == (
        DEVICE,
        1,
        "ping",
        {},
        "lan",
    )
    assert (ping["state"], ping["sent_count"], ping["epoch"], ping["result_ms"]) == ("queued", 0, None, None)
    assert before <= ping["issued_ms"] <= now_ms() and ping["expires_ms"] - ping["issued_ms"] == 3600_000
    second = operator.http.post(
        operator.url + COMMANDS, json={"kind": "status", "body": {}, "ttl_s": 60}, timeout=30
    )
    assert second.status_code == 201 and second.json()["seq"] == 2
    assert second.json()["expires_ms"] - second.json()["issued_ms"] == 60_000

    refused = viewer.http.post(viewer.url + COMMANDS, json={"kind": "ping"}, timeout=30)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "user 'an' is a viewer: only operators issue commands"}
    assert [c.seq for c in CommandQueue(ioc_db).list(DEVICE)] == [1, 2]  # nothing queued by the viewer

    answer(ioc_db, 1, "applied", details='{"version": "0.1.0", "uptime_s": 12.5}')
    answer(ioc_db, 2, "refused", "unknown_kind", "this node runs: ping")
    listed = viewer.json(COMMANDS)
    assert listed["next_offset"] is None
    got = [(c["seq"], c["state"], c["reason"], c["epoch"], c["sent_count"]) for c in listed["items"]]
    assert got == [(2, "refused", "unknown_kind", EPOCH, 1), (1, "applied", "", EPOCH, 1)]  # newest first
    assert json.loads(listed["items"][1]["details"]) == {"version": "0.1.0", "uptime_s": 12.5}
    assert listed["items"][0]["result_ms"] >= listed["items"][0]["last_sent_ms"] >= before
    page = viewer.json(COMMANDS, limit=1)
    assert [c["seq"] for c in page["items"]] == [2] and page["next_offset"] == 1
    page = viewer.json(COMMANDS, limit=1, offset=1)
    assert [c["seq"] for c in page["items"]] == [1] and page["next_offset"] is None
    assert viewer.json("/api/v1/nodes/river-99/commands") == {"items": [], "next_offset": None}

    # One audit entry per request, the viewer's refused one too; a command's follows its outcome.
    log = [(e.user, e.action, e.target, e.command_seq, e.details, e.result) for e in entries(ioc_db)]
    assert log == [
        ("lan", COMMAND_SEND, DEVICE, 1, {"kind": "ping", "body": {}, "ttl_s": 3600}, "applied"),
        (
            "lan",
            COMMAND_SEND,
            DEVICE,
            2,
            {"kind": "status", "body": {}, "ttl_s": 60},
            "refused: unknown_kind",
        ),
        (
            "an",
            COMMAND_SEND,
            DEVICE,
            None,
            {"kind": "ping", "body": {}, "ttl_s": 3600},
            "not issued: user 'an' is a viewer: only operators issue commands",
        ),
    ]


BAD = [
    ({"kind": "Ping"}, "body field 'kind': String should match pattern '^[a-z][a-z0-9_.-]{0,31}$'"),
    ({"ttl_s": 60}, "body field 'kind': Field required"),
    ({"kind": "ping", "body": [1]}, "body field 'body': Input should be a valid dictionary"),
    ({"kind": "ping", "ttl_s": 0}, "body field 'ttl_s': Input should be greater than or equal to 1"),
    (
        {"kind": "ping", "ttl_s": 31 * 86400},
        "body field 'ttl_s': Input should be less than or equal to 2592000",
    ),
    ({"kind": "ping", "to": "all"}, "unknown body field 'to'; expected one of: kind, body, ttl_s"),
    (
        {"kind": "ping", "body": {"x": "a" * 70_000}},
        "request body: body: 70008 bytes of JSON, more than 65536",
    ),
    (
        b'{"kind": "ping", "body": {"x": NaN}}',
        "body field 'body': not JSON that can be signed: Out of range float values are not JSON compliant",
    ),
    (
        rb'{"kind": "ping", "body": {"x": "\ud800"}}',
        "body field 'body': not JSON that can be signed: 'utf-8' codec can't encode character '\\ud800' in "
        "position 7: surrogates not allowed",
    ),
]


def test_a_bad_command_gets_a_422_naming_the_field_and_an_unknown_node_a_404(ioc_db, users):
    operator, _ = users
    heard(ioc_db)
    for body, detail in BAD:
        sent = (
            {"data": body, "headers": {"Content-Type": "application/json"}}
            if isinstance(body, bytes)
            else {"json": body}
        )
        got = operator.http.post(operator.url + COMMANDS, timeout=30, **sent)
        assert (got.status_code, got.json()) == (422, {"detail": detail}), body
    unknown = operator.http.post(
        operator.url + "/api/v1/nodes/river-99/commands", json={"kind": "ping"}, timeout=30
    )
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"detail": "no node 'river-99': the centre has never heard from it"},
    )
    assert CommandQueue(ioc_db).list() == []
    # Refused by the queue or for the node: in the audit log (a request the API cannot read is not).
    assert [(e.target, e.details["ttl_s"], e.result) for e in entries(ioc_db)] == [
        (DEVICE, 3600, "not issued: request body: body: 70008 bytes of JSON, more than 65536"),
        ("river-99", 3600, "not issued: no node 'river-99': the centre has never heard from it"),
    ]
    operations = operator.json("/api/v1/openapi.json")["paths"]["/api/v1/nodes/{device}/commands"]
    assert set(operations["post"]["responses"]) >= {"201", "403", "404", "422"} and "get" in operations


def test_a_nodes_desired_config_against_the_one_it_runs(ioc_db, users):
    _, viewer = users
    heard(ioc_db)
    none = {
        "device": DEVICE,
        "desired": None,
        "reported": None,
        "reported_ms": None,
        "drift": False,
        "diff": "",
        "command": None,
    }
    assert viewer.json(f"/api/v1/nodes/{DEVICE}/config") == none
    pushed_ms = now_ms()
    DesiredConfigs(ioc_db).push(DEVICE, WANTED, "lan", pushed_ms)
    runs(ioc_db, EDITED)
    got = viewer.json(f"/api/v1/nodes/{DEVICE}/config")
    assert got["desired"] == {
        "version": config_version(WANTED),
        "issuer": "lan",
        "issued_ms": pushed_ms,
        "command_seq": 1,
    }
    assert (got["reported"], got["drift"]) == (config_version(EDITED), True)
    assert "-interval_s = 5\n+interval_s = 60\n" in got["diff"]
    assert (got["command"]["seq"], got["command"]["kind"], got["command"]["state"]) == (1, "config", "queued")

    runs(ioc_db, WANTED)  # the node took the pushed config after all
    got = viewer.json(f"/api/v1/nodes/{DEVICE}/config")
    assert (got["reported"], got["drift"], got["diff"]) == (config_version(WANTED), False, "")


JPEG = b"\xff\xd8\xff\xe0 a camera's frame \xff\xd9"


def snapshot_answer(camera: str, jpeg: bytes = JPEG) -> str:
    """A ``snapshot`` command's answer as the node gives it (edge/command_kinds.py)."""
    return json.dumps({"camera": camera, "bytes": len(jpeg), "jpeg_base64": base64.b64encode(jpeg).decode()})


def test_a_snapshot_commands_jpeg_is_served_decoded_once_applied(ioc_db, users):
    operator, viewer = users
    heard(ioc_db)
    issued = operator.http.post(
        operator.url + COMMANDS, json={"kind": "snapshot", "body": {"camera": "gate"}}, timeout=30
    )
    assert issued.status_code == 201 and issued.json()["body"] == {"camera": "gate"}
    url = f"{COMMANDS}/1/snapshot.jpg"
    missing = {"detail": f"no snapshot from command 1 of {DEVICE}: no such, or not applied"}
    assert (viewer.get(url).status_code, viewer.get(url).json()) == (404, missing)  # not answered yet
    answer(ioc_db, 1, "applied", details=snapshot_answer("gate"))
    got = viewer.get(url)  # anyone who sees the commands sees their answers
    assert (got.status_code, got.headers["content-type"], got.content) == (200, "image/jpeg", JPEG)

    for kind, state, details in [
        ("ping", "applied", '{"version": "0.1.0"}'),
        ("snapshot", "refused", "'yard' is not one of ['gate']"),
        ("snapshot", "applied", '{"jpeg_base64": "not base64!"}'),
    ]:
        seq = CommandQueue(ioc_db).issue(DEVICE, kind, {}, "lan", 60, now_ms())
        answer(ioc_db, seq, state, "unknown_camera" if state == "refused" else "", details)
        assert viewer.get(f"{COMMANDS}/{seq}/snapshot.jpg").status_code == 404, kind
    assert viewer.get(f"{COMMANDS}/99/snapshot.jpg").status_code == 404


@needs_chromium
def test_the_node_page_shows_commands_and_only_an_operator_gets_the_buttons(
    dashboard: Dashboard, ioc_db: Database
):
    heard(ioc_db)
    operator = dashboard.sign_in("lan", "nodes")
    operator.locator(f'#nodes tr[data-device="{DEVICE}"]').click()
    expect(operator.locator("#commands h2")).to_have_text(f"Commands to {DEVICE}")
    expect(operator.locator("#commands-body")).to_have_text(f"No commands to {DEVICE} yet.")
    operator.get_by_role("button", name="Ping").click()
    row = operator.locator('#commands-list tr[data-seq="1"]')
    expect(row).to_have_attribute("data-state", "queued")
    expect(row).to_contain_text("ping")
    expect(row).to_contain_text("by lan")
    assert [(c.kind, c.issuer, c.state) for c in CommandQueue(ioc_db).list(DEVICE)] == [
        ("ping", "lan", "queued")
    ]

    # The node's answer shows with the next fetch: the page's own every 3 s, or after another command.
    answer(ioc_db, 1, "applied", details='{"version": "0.1.0", "uptime_s": 12.5}')
    operator.get_by_role("button", name="Status now").click()
    expect(operator.locator('#commands-list tr[data-seq="2"]')).to_have_attribute("data-state", "queued")
    expect(row).to_have_attribute("data-state", "applied")
    expect(row.locator(".answer")).to_contain_text('{"version":"0.1.0","uptime_s":12.5}')
    dashboard.screenshot(operator, "node-commands")

    # A config pushed to it, and the node found running a technician's edit instead: drift, and the diff.
    DesiredConfigs(ioc_db).push(DEVICE, WANTED, "lan", now_ms())
    runs(ioc_db, EDITED)
    viewer = dashboard.sign_in("an", "nodes")
    viewer.locator(f'#nodes tr[data-device="{DEVICE}"]').click()
    expect(viewer.locator('#commands-list tr[data-seq="1"]')).to_have_attribute("data-state", "applied")
    expect(viewer.locator("#commands-list tbody tr")).to_have_count(4)  # ping, status, config, config.get
    expect(viewer.locator("#config [data-drift]")).to_have_text(
        "Drift: the node runs another config than the desired one."
    )
    expect(viewer.locator("#config-desired")).to_contain_text(f"{config_version(WANTED)[:12]} pushed by lan")
    expect(viewer.locator("#config-desired")).to_contain_text("(command 3: queued)")
    expect(viewer.locator("#config-reported")).to_contain_text(config_version(EDITED)[:12])
    expect(viewer.locator("#config-diff .add")).to_have_text(
        ["+++ reported " + config_version(EDITED)[:12], "+interval_s = 60"]
    )
    dashboard.screenshot(viewer, "node-config")
    expect(viewer.locator("#commands-viewer-note")).to_have_text(
        "Signed in as a viewer: issuing commands needs an operator."
    )
    expect(viewer.locator("#commands button")).to_have_count(0)

    # The operator's last button: the node's self-test as it runs.
    operator.get_by_role("button", name="Self-test").click()
    expect(operator.locator('#commands-list tr[data-seq="5"]')).to_contain_text("selftest")
    assert CommandQueue(ioc_db).get(DEVICE, 5).kind == "selftest"


@needs_chromium
def test_an_operator_takes_a_snapshot_and_reads_the_audit_log_a_viewer_neither(
    dashboard: Dashboard, ioc_db: Database
):
    heard(ioc_db)
    t = now_ms()
    ioc_db.store(
        Batch(DEVICE, EPOCH, "count", [2], [Count(t, NTP, t, "gate", "bridge", "car", "in", 60, 4)])
    )  # the centre knows the node's camera
    ok, frame = cv2.imencode(".jpg", np.full((48, 64, 3), 200, np.uint8))
    assert ok
    operator = dashboard.sign_in("lan", "nodes")
    operator.locator(f'#nodes tr[data-device="{DEVICE}"]').click()
    expect(operator.locator("#command-camera")).to_have_value("gate")  # its only camera, picked
    operator.get_by_role("button", name="Snapshot").click()
    row = operator.locator('#commands-list tr[data-seq="1"]')
    expect(row).to_have_attribute("data-state", "queued")
    expect(row).to_contain_text('{"camera":"gate"}')
    answer(ioc_db, 1, "applied", details=snapshot_answer("gate", frame.tobytes()))
    operator.locator(f'#nodes tr[data-device="{DEVICE}"]').click()  # fetched again now, not within 3 s
    image = row.locator("img.command-snapshot")
    expect(image).to_have_attribute("alt", f"Snapshot of gate on {DEVICE}")
    expect(image).to_have_js_property("naturalWidth", 64)  # decoded by the API, shown by the browser
    dashboard.screenshot(operator, "node-snapshot")

    operator.get_by_role("link", name="Audit").click()
    entry = operator.locator('#audit tr[data-id="1"]')
    expect(entry).to_contain_text("command.send")
    expect(entry.locator(".result")).to_have_text("applied")
    expect(entry).to_contain_text('{"body":{"camera":"gate"},"kind":"snapshot"')
    operator.locator("#audit-device").fill("river-99")
    operator.get_by_role("button", name="Show").click()
    expect(operator.locator("#audit tbody")).to_have_text("No entries.")
    expect(operator.locator("#audit-csv")).to_have_attribute("href", "/api/v1/audit.csv?device=river-99")

    viewer = dashboard.sign_in("an", "nodes")
    viewer.locator(f'#nodes tr[data-device="{DEVICE}"]').click()
    expect(viewer.locator('#commands-list tr[data-seq="1"] img.command-snapshot')).to_be_visible()
    expect(viewer.get_by_role("button", name="Snapshot")).to_have_count(0)
    expect(viewer.locator("#nav-audit")).to_be_hidden()
    viewer.goto(f"{dashboard.url}/#/audit")
    expect(viewer.locator("#view .message.error")).to_have_text("The audit log is for operators.")
