"""Warnings at the centre (issue 16): which nodes a warning reaches (labels, a station's place, vessels), one
signed-to-be ``warning`` command per target, the receipts the nodes send, unacknowledged targets flagged,
updates and cancels referring to the original, the audit log, CSV, and ``ioc-center warn``; both engines."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import cli

from ioc.audit import entries
from ioc.cli import main as center_cli
from ioc.commands import CommandQueue
from ioc.db import Database
from ioc.labels import NodeLabels
from ioc.warnings import Target, WarningError, Warnings, receipts_csv, warnings_csv
from sync.records import NodeStatus, WarningReceipt
from sync.warnings import Alert, Area, Circle, Info
from sync.wire import Batch

T0 = 1_790_000_000_000
HOUR = 3_600_000
SEA = Area("Biển Huế", circles=(Circle(16.8, 107.8, 50.0),))
INFO = Info("vi-VN", "Bão", "Immediate", "Severe", "Observed", "Bão số 9", "Gió mạnh cấp 10", "Vào bờ ngay")


def alert(identifier: str = "ioc-hue-1", areas: tuple[Area, ...] = (SEA,), **changes: object) -> Alert:
    made = Alert.make(identifier, "ioc@hue", T0, "Alert", [INFO], areas, T0 + 6 * HOUR, pattern="storm")
    return Alert(**(made.__dict__ | changes))


def report(db: Database, device: str, seq: int, body: dict) -> None:
    """What the receiver does with a node's status: store it, keep its labels and its place."""
    batch = Batch(device, "e1", "status", [seq], [tuple(NodeStatus(T0 + seq, 1, T0, json.dumps(body)))])
    db.store(batch)
    NodeLabels(db).from_status(batch)
    Warnings(db).from_status(batch)


def receipts(db: Database, device: str, first: int, *steps: tuple) -> Batch:
    """A stored ``warning_receipt`` batch of ``steps`` (identifier, event, ts_ms, output, by, inside,
    details), handed to the warnings as the receiver does."""
    records = [
        tuple(WarningReceipt(ts, 1, ts, ident, event, out, by, inside, *_at(inside), details))
        for ident, event, ts, out, by, inside, details in steps
    ]
    batch = Batch(device, "e1", "warning_receipt", list(range(first, first + len(records))), records)
    db.store(batch)
    Warnings(db).from_receipts(batch)
    return batch


def _at(inside: int | None) -> tuple[float | None, float | None]:
    return {1: (16.9, 107.9), 0: (15.0, 109.5)}.get(inside, (None, None))  # type: ignore[arg-type]


@pytest.fixture
def nodes(ioc_db: Database) -> Database:
    """A station inside the sea area, one outside, one with no place, and a vessel; the stations are
    flood stations of phu-vang."""
    flood = {"kind": "flood-station", "district": "phu-vang"}
    report(ioc_db, "st-in", 1, {"labels": flood, "location": {"lat": 16.7, "lon": 107.7}})
    report(ioc_db, "st-out", 1, {"labels": flood, "location": {"lat": 10.8, "lon": 106.6}})
    report(ioc_db, "st-none", 1, {"labels": flood})
    report(ioc_db, "vessel-1", 1, {"labels": {"fleet": "north"}, "mobile": True})
    return ioc_db


def test_reach_by_labels_and_by_area(nodes: Database) -> None:
    warnings = Warnings(nodes)
    assert warnings.reach(alert(areas=()), "kind=flood-station") == [
        Target("st-in", "labels kind=flood-station", 16.7, 107.7),
        Target("st-none", "labels kind=flood-station"),
        Target("st-out", "labels kind=flood-station", 10.8, 106.6),
    ]
    assert [(t.device, t.why) for t in warnings.reach(alert(), None)] == [
        ("st-in", "station inside"),
        ("vessel-1", "vessel: decides on board"),
    ]
    assert [t.device for t in warnings.reach(alert(), "district=phu-vang")] == ["st-in"]
    # A station moved (its newest status) is judged where it is now; a late older status changes nothing.
    report(nodes, "st-out", 3, {"location": {"lat": 16.8, "lon": 107.8}})
    report(nodes, "st-out", 2, {"location": {"lat": 10.8, "lon": 106.6}})
    assert [t.device for t in warnings.reach(alert(), None)] == ["st-in", "st-out", "vessel-1"]


def test_issue_queues_one_warning_command_per_target_and_refuses_twice(nodes: Database) -> None:
    warnings = Warnings(nodes)
    storm = alert()
    issued = warnings.issue(storm, None, "lan", T0 + 1000, ack_within_s=600)
    assert issued.commands == {"st-in": 1, "vessel-1": 1}
    commands = CommandQueue(nodes).list()
    assert [(c.device, c.kind, c.issuer, c.expires_ms) for c in commands] == [
        ("st-in", "warning", "lan", storm.expires_ms),
        ("vessel-1", "warning", "lan", storm.expires_ms),
    ]
    assert all(Alert.from_json(c.body) == storm for c in commands)
    stored = warnings.get(storm.identifier)
    assert stored is not None and stored.alert() == storm
    assert (stored.state, stored.targets, stored.event, stored.headline, stored.area_desc) == (
        "active",
        2,
        "Bão",
        "Bão số 9",
        "Biển Huế",
    )
    assert stored.state_at(storm.expires_ms) == "expired"

    far = (Area("xa", circles=(Circle(0, 0, 1),)),)
    for bad, message in [
        (storm, "identifier: ioc-hue-1 was issued already"),
        (alert("ioc-hue-2", expires_ms=T0 + 500), "expires_ms: 2026-09-21T14:13:20.500+00:00 is past"),
        (
            alert("ioc-hue-3", areas=far),
            "targets: no node to reach (labels district=phu-vang; nodes in its areas: stations by their "
            "reported place, vessels)",
        ),
        (alert("ioc-hue-4", msg_type="Update", references=(storm.reference(),)), "msg_type: issue sends"),
    ]:
        with pytest.raises(WarningError) as caught:
            warnings.issue(bad, "district=phu-vang", "lan", T0 + 1000)
        assert str(caught.value).startswith(message)
    assert len(CommandQueue(nodes).list()) == 2  # nothing of the refused ones queued
    assert [(e.action, e.target, e.result, e.details["targets"]) for e in entries(nodes)] == [
        ("warning.issue", "ioc-hue-1", "queued to 2 nodes", 2)
    ]


def test_receipts_keep_first_and_last_times_once_and_flag_the_unacknowledged(nodes: Database) -> None:
    warnings = Warnings(nodes)
    warnings.issue(alert(), None, "lan", T0, ack_within_s=600)
    steps = [
        ("ioc-hue-1", "delivered", T0 + 100, "", "centre", 1, ""),
        ("ioc-hue-1", "sounded", T0 + 200, "siren", "centre", 1, ""),
        ("ioc-hue-1", "displayed", T0 + 210, "board", "centre", 1, ""),
        ("ioc-hue-1", "silenced", T0 + 90_000, "siren", "pattern", None, '{"reason": "done"}'),
    ]
    batch = receipts(nodes, "st-in", 1, *steps)
    receipts(nodes, "vessel-1", 1, ("ioc-hue-1", "delivered", T0 + 300, "", "centre", 0, ""))
    before = warnings.receipts("ioc-hue-1")
    Warnings(nodes).from_receipts(batch)  # the same batch again changes nothing
    assert warnings.receipts("ioc-hue-1") == before
    station, vessel = before
    assert (station.delivered_ms, station.sounded_ms, station.displayed_ms) == (T0 + 100, T0 + 200, T0 + 210)
    assert (station.silenced_ms, station.silenced_why) == (T0 + 90_000, "pattern: done")
    assert station.outputs == {
        "siren": {"sounded_ms": T0 + 200, "silenced_ms": T0 + 90_000, "silenced_why": "pattern: done"}
    }
    assert (station.inside, station.lat, station.lon, station.command_seq) == (1, 16.9, 107.9, 1)
    assert (vessel.inside, vessel.lat, vessel.sounded_ms) == (0, 15.0, None)
    assert warnings.unacknowledged("ioc-hue-1", T0 + 599_999) == []
    # Due: the station has not acknowledged; the vessel said it is outside and owes nothing.
    assert [r.device for r in warnings.unacknowledged("ioc-hue-1", T0 + 600_000)] == ["st-in"]
    receipts(nodes, "st-in", 5, ("ioc-hue-1", "acknowledged", T0 + 700_000, "", "button:ack", 1, ""))
    receipts(nodes, "st-in", 6, ("ioc-hue-1", "acknowledged", T0 + 650_000, "", "cli", 1, ""))  # earlier
    (station, _) = warnings.receipts("ioc-hue-1")
    assert (station.acknowledged_ms, station.acknowledged_by) == (T0 + 650_000, "cli")
    assert warnings.unacknowledged("ioc-hue-1", T0 + 800_000) == []
    stored = warnings.get("ioc-hue-1")
    assert stored is not None and (stored.delivered, stored.sounded, stored.acknowledged) == (2, 1, 1)


def test_a_node_own_sounding_is_a_local_warning_from_its_first_receipt(ioc_db: Database) -> None:
    ident = f"local:gauge-7:flood:{T0}"
    receipts(
        ioc_db,
        "gauge-7",
        1,
        (ident, "delivered", T0 + 5, "", "alarm:flood", None, '{"local": true, "pattern": "flood-2"}'),
        (ident, "sounded", T0 + 5, "siren", "alarm:flood", None, '{"pattern": "flood-2"}'),
        (ident, "refused", T0 + 6, "", "alarm:flood", None, '{"pattern": "x", "why": "no light"}'),
        ("ioc-unknown", "delivered", T0, "", "centre", None, ""),  # not the centre's: left in the stream
    )
    (local,) = Warnings(ioc_db).list()
    assert (local.identifier, local.origin, local.state, local.device) == (ident, "local", "local", "gauge-7")
    assert (local.event, local.pattern, local.issuer, local.sent_ms, local.alert()) == (
        "flood",
        "flood-2",
        "alarm:flood",
        T0,
        None,
    )
    ((target),) = Warnings(ioc_db).receipts(ident)
    assert (target.why, target.sounded_ms, target.ack_due_ms) == ("local", T0 + 5, None)
    assert (target.refused_ms, target.refused_why) == (T0 + 6, "alarm:flood: no light")
    assert ioc_db.count("warning_receipt") == 4


def test_update_and_cancel_refer_to_the_original_and_are_audited(nodes: Database) -> None:
    warnings = Warnings(nodes)
    storm = alert()
    warnings.issue(storm, None, "lan", T0)
    worse = alert("ioc-hue-2", pattern="flood-3")
    update = warnings.update("ioc-hue-1", worse, "minh", T0 + 60_000)
    assert (update.alert.msg_type, update.alert.references) == ("Update", (storm.reference(),))
    assert update.commands == {"st-in": 2, "vessel-1": 2}
    with pytest.raises(WarningError) as caught:
        warnings.cancel("ioc-hue-1", "lan", T0 + 61_000)
    assert str(caught.value) == "identifier: ioc-hue-1 was updated by ioc-hue-2: change that one"

    cancel = warnings.cancel("ioc-hue-2", "lan", T0 + 120_000)
    assert (cancel.alert.msg_type, cancel.alert.references) == ("Cancel", (update.alert.reference(),))
    sent = [c for c in CommandQueue(nodes).list() if c.seq == 3]
    assert [c.device for c in sent] == ["st-in", "vessel-1"]
    assert all(Alert.from_json(c.body) == cancel.alert for c in sent)
    with pytest.raises(WarningError) as caught:
        warnings.cancel("ioc-hue-2", "lan", T0 + 130_000)
    assert str(caught.value) == (
        "identifier: ioc-hue-2 was cancelled already, at 2026-09-21T14:15:20.000+00:00 by lan"
    )
    for ident, message in [
        ("nope", "identifier: no warning 'nope' was issued here"),
        (cancel.alert.identifier, f"identifier: {cancel.alert.identifier} is a Cancel (of ioc-hue-2)"),
    ]:
        with pytest.raises(WarningError) as caught:
            warnings.update(ident, alert("ioc-hue-9"), "lan", T0 + 130_000)
        assert str(caught.value) == message
    warnings.issue(alert("ioc-hue-4"), None, "lan", T0)
    with pytest.raises(WarningError) as caught:
        warnings.cancel("ioc-hue-4", "lan", T0 + 6 * HOUR)
    assert str(caught.value) == "identifier: ioc-hue-4 expired at 2026-09-21T20:13:20.000+00:00"

    states = {w.identifier: (w.msg_type, w.state, w.refers_to) for w in warnings.list()}
    assert states == {
        "ioc-hue-1": ("Alert", "updated", ""),
        "ioc-hue-2": ("Update", "cancelled", "ioc-hue-1"),
        cancel.alert.identifier: ("Cancel", "sent", "ioc-hue-2"),
        "ioc-hue-4": ("Alert", "active", ""),
    }
    log = [(e.user, e.action, e.target, e.details.get("refers_to")) for e in entries(nodes)]
    assert log == [
        ("lan", "warning.issue", "ioc-hue-1", None),
        ("minh", "warning.update", "ioc-hue-2", "ioc-hue-1"),
        ("lan", "warning.cancel", cancel.alert.identifier, "ioc-hue-2"),
        ("lan", "warning.issue", "ioc-hue-4", None),
    ]


def test_csv_of_warnings_and_receipts(nodes: Database) -> None:
    warnings = Warnings(nodes)
    warnings.issue(alert(), None, "=cmd", T0)
    receipts(nodes, "st-in", 1, ("ioc-hue-1", "delivered", T0 + 100, "", "centre", 1, ""))
    rows = list(csv.DictReader(io.StringIO("".join(warnings_csv(warnings.list(), T0)))))
    assert [(r["identifier"], r["time_local"], r["issuer"], r["state"], r["targets"]) for r in rows] == [
        ("ioc-hue-1", "2026-09-21T14:13:20.000+00:00", "'=cmd", "active", "2")
    ]
    assert (rows[0]["expires"], rows[0]["delivered"]) == ("2026-09-21T20:13:20.000+00:00", "1")
    text = "".join(receipts_csv(warnings.receipts("ioc-hue-1"), T0 + 600_000))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [(r["device"], r["delivered"], r["inside"], r["command_state"], r["flagged"]) for r in rows] == [
        ("st-in", "2026-09-21T14:13:20.100+00:00", "1", "queued", "1"),
        ("vessel-1", "", "", "queued", "1"),
    ]


def test_warn_issue_dry_run_prints_the_reach_and_issues_nothing(nodes: Database) -> None:
    area = ["--circle", "16.8,107.8,50", "--area-desc", "Biển Huế", "--db", nodes.url]
    out = cli(center_cli, ["warn", "issue", "--event", "Bão", "--dry-run", *area])
    assert out == (
        "would reach 2 node(s) (dry run: nothing issued)\n"
        "st-in\tstation inside\nvessel-1\tvessel: decides on board\n"
    )
    assert Warnings(nodes).list() == [] and CommandQueue(nodes).list() == []
    refused = CliRunner().invoke(center_cli, ["warn", "issue", "--dry-run", *area])
    assert (refused.exit_code, refused.output) == (1, "--event is required (or --cap FILE)\n")


def test_warn_issue_show_cancel_and_receipts_csv(nodes: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [T0]
    monkeypatch.setattr("ioc.db.now_ms", lambda: clock[0])
    db = ["--db", nodes.url]
    square = "16.5,107.5 16.5,108 17,108 17,107.5"  # closed for the operator
    out = cli(
        center_cli,
        ["warn", "issue", "--event", "Bão", "--headline-vi", "Bão số 9", "--headline-en", "Typhoon 9",
         "--polygon", square, "--area-desc", "Biển Huế", "--select", "district=phu-vang", "--pattern",
         "storm", "--expires-in", "2h", "--ack-within", "10m", "--sender", "ioc@hue.gov.vn", *db],
    )  # fmt: skip
    ident = out.split("\t")[0]
    assert ident.startswith("ioc-hue.gov.vn-20260921141320-")
    assert out.splitlines()[1:] == ["st-in\tstation inside\tcommand 1"]
    alert = Warnings(nodes).get(ident)
    assert alert is not None and alert.expires_ms == T0 + 2 * HOUR
    issued = alert.alert()
    assert issued is not None and [i.headline for i in issued.infos] == ["Bão số 9", "Typhoon 9"]
    assert issued.areas[0].polygons[0][-1] == (16.5, 107.5)
    receipts(nodes, "st-in", 1, (ident, "delivered", T0 + 100, "", "centre", 1, ""))
    receipts(nodes, "st-in", 2, (ident, "sounded", T0 + 2000, "siren", "centre", 1, ""))

    clock[0] = T0 + 11 * 60_000
    shown = cli(center_cli, ["warn", "show", ident, "--unacked", *db]).splitlines()
    assert shown[1] == "Bão\tSevere\tImmediate\tLikely\tBão số 9"
    assert shown[2].startswith("issued 09-21 14:13:20Z by ")
    assert shown[2].endswith("\texpires 09-21 16:13:20Z\tarea Biển Huế")
    assert shown[3:] == [
        "st-in\tstation inside\tqueued\tdelivered 09-21 14:13:20Z\tsounded 09-21 14:13:22Z\tsilenced -\t"
        "acknowledged -\tinside\tUNACKED"
    ]
    cancelled = cli(center_cli, ["warn", "cancel", ident, *db]).splitlines()
    assert cancelled[0].endswith("\tCancel\tto 1 node(s)") and cancelled[1:] == [
        "st-in\tstation inside\tcommand 2"
    ]
    again = CliRunner().invoke(center_cli, ["warn", "cancel", ident, *db])
    assert again.exit_code == 1 and again.output.startswith(f"identifier: {ident} was cancelled already")
    listed = cli(center_cli, ["warn", "list", *db]).splitlines()
    assert [line.split("\t")[2:4] for line in listed] == [["Cancel", "sent"], ["Alert", "cancelled"]]
    rows = list(csv.DictReader(io.StringIO(cli(center_cli, ["warn", "receipts", ident, "--csv", *db]))))
    assert [(r["device"], r["sounded"], r["flagged"]) for r in rows] == [
        ("st-in", "2026-09-21T14:13:22.000+00:00", "0")  # cancelled: no acknowledgement owed
    ]


def test_warn_export_is_cap_xml_and_issue_takes_it_back(
    nodes: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ioc.cap import from_xml

    monkeypatch.setattr("ioc.db.now_ms", lambda: T0)
    warnings = Warnings(nodes)
    storm = alert()
    warnings.issue(storm, None, "lan", T0)
    xml = cli(center_cli, ["warn", "export", storm.identifier, "--db", nodes.url])
    assert from_xml(xml) == storm
    cap = tmp_path / "storm.xml"
    cap.write_text(xml.replace(storm.identifier, "ioc-hue-again"), encoding="utf-8")
    out = cli(center_cli, ["warn", "issue", "--cap", str(cap), "--select", "fleet=north", "--db", nodes.url])
    assert out == "ioc-hue-again\tAlert\tto 1 node(s)\nvessel-1\tvessel: decides on board\tcommand 2\n"
    again = warnings.get("ioc-hue-again")
    assert again is not None and again.alert() == alert("ioc-hue-again")
