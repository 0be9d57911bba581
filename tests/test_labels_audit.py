"""Labels, selectors and the audit log (issue 15): labels set at provisioning reach the centre in the
node's status, the centre's win, selectors pick nodes on both engines, ``command send --select``
issues one command per node, and every action is in the audit log (its CSV neutralised)."""

from __future__ import annotations

import csv
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import cli, wait_for

from common.config import ConfigError
from edge.cli import main as edge_cli
from edge.config import load_config, parse_config
from ioc.audit import COMMAND_SEND, audit, csv_text, entries
from ioc.cli import main as center_cli
from ioc.commands import CommandQueue
from ioc.db import Database
from ioc.labels import Label, NodeLabels
from ioc.selectors import SelectorError, devices_matching, parse
from sync.records import NodeStatus
from sync.wire import Batch

T0 = 1_700_000_000_000


def status(device: str, epoch: str, seq: int, labels: dict | None) -> Batch:
    """A status batch of one record reporting ``labels`` (None: a node older than labels)."""
    body = {"version": "test"} | ({"labels": labels} if labels is not None else {})
    return Batch(device, epoch, "status", [seq], [tuple(NodeStatus(T0 + seq, 1, T0, json.dumps(body)))])


def receive(db: Database, batch: Batch) -> None:
    """What the receiver does with a status batch: store it, then hand it to the labels."""
    db.store(batch)
    NodeLabels(db).from_status(batch)


def test_labels_from_provisioning_reach_the_centre(centre, run_node) -> None:
    config = centre.provision("gauge-07")
    path = Path(config.node.state_dir).parent / "edge.toml"
    cli(edge_cli, ["provision", "--config", str(path), "--label", "district=phu-vang"])
    # Provisioning again keeps the labels it had, and adds or replaces the ones given.
    cli(edge_cli, ["provision", "--config", str(path), "--label", "kind=flood-station"])
    assert load_config(path).node.labels == {"district": "phu-vang", "kind": "flood-station"}

    run_node(load_config(path))
    labels = NodeLabels(centre.db)
    wait_for(lambda: len(labels.of("gauge-07")) == 2, 20, "the node's labels at the centre")
    assert labels.of("gauge-07") == {
        "district": Label("phu-vang", "node"),
        "kind": Label("flood-station", "node"),
    }
    assert devices_matching(centre.db, "kind=flood-station,district=phu-vang") == ["gauge-07"]


def test_a_bad_label_is_refused_at_provisioning_and_in_the_config(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        edge_cli,
        ["provision", "--config", str(tmp_path / "edge.toml"), "--device-id", "g1", "--label", "Kind=x"],
    )
    assert result.exit_code == 1
    assert "label key 'Kind' is not 1 to 32 of a-z" in result.output
    assert not (tmp_path / "edge.toml").exists()
    with pytest.raises(ConfigError) as caught:
        parse_config('[node]\ndevice_id = "g1"\nlabels = {district = "a,b"}\n', "edge.toml", tmp_path)
    assert str(caught.value) == (
        "node.labels (edge.toml line 3): label district: value 'a,b' holds ',', '=' or a control character"
    )


def test_the_centre_labels_win_over_the_node_ones(ioc_db: Database) -> None:
    labels = NodeLabels(ioc_db)
    receive(ioc_db, status("g1", "e1", 5, {"district": "phu-vang", "kind": "flood-station"}))
    labels.set("g1", {"district": "huong-tra"}, T0)
    assert labels.of("g1") == {
        "district": Label("huong-tra", "centre"),
        "kind": Label("flood-station", "node"),
    }

    # The node's next status replaces what it reported, never what the centre set.
    receive(ioc_db, status("g1", "e1", 6, {"district": "phu-loc"}))
    assert labels.of("g1") == {"district": Label("huong-tra", "centre")}
    assert labels.remove("g1", ["district", "fleet"]) == ["district"]
    assert labels.of("g1") == {"district": Label("phu-loc", "node")}

    # An older status arriving late changes nothing; a status without labels neither.
    receive(ioc_db, status("g1", "e1", 4, {"district": "old"}))
    receive(ioc_db, status("g1", "e1", 7, None))
    assert labels.of("g1") == {"district": Label("phu-loc", "node")}
    # A re-flashed node (a new epoch) reports afresh, even with lower seqs; its old epoch's late
    # status does not undo it.
    receive(ioc_db, status("g1", "e2", 1, {"fleet": "north"}))
    receive(ioc_db, status("g1", "e1", 8, {"district": "older"}))
    assert labels.of("g1") == {"fleet": Label("north", "node")}
    # What breaks the rules is left out, the rest kept.
    receive(ioc_db, status("g1", "e2", 2, {"fleet": "south", "Bad": "x", "kind": "a=b", "site": 7}))
    assert labels.of("g1") == {"fleet": Label("south", "node")}


def test_receivers_at_once_keep_the_newest_status_labels(ioc_db_url: str) -> None:
    # Two receivers (each its own connection) given a node's backlog of statuses in turn.
    dbs = [Database(ioc_db_url) for _ in range(2)]
    batches = [status("g1", "e1", seq, {"seq": str(seq)}) for seq in range(1, 41)]
    for b in batches:
        dbs[0].store(b)
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: [NodeLabels(dbs[n]).from_status(b) for b in batches[n::2]], (0, 1)))
    assert NodeLabels(dbs[0]).of("g1") == {"seq": Label("40", "node")}
    for db in dbs:
        db.close()


def test_selectors_resolve_on_labels_in_force(ioc_db: Database) -> None:
    labels = NodeLabels(ioc_db)
    receive(ioc_db, status("g1", "e1", 1, {"district": "phu-vang", "kind": "flood-station"}))
    receive(ioc_db, status("g2", "e1", 1, {"district": "phu-vang", "kind": "camera"}))
    labels.set("g3", {"district": "phu-vang", "kind": "flood-station"}, T0)  # never heard yet
    labels.set("g2", {"kind": "flood-station"}, T0)
    labels.set("g1", {"district": "huong-tra"}, T0)

    assert devices_matching(ioc_db, "district=phu-vang") == ["g2", "g3"]
    assert devices_matching(ioc_db, "district=phu-vang,kind=flood-station") == ["g2", "g3"]
    assert devices_matching(ioc_db, parse("kind=flood-station")) == ["g1", "g2", "g3"]
    assert devices_matching(ioc_db, "kind=camera") == []  # the centre's value hides the node's
    assert devices_matching(ioc_db, "district=nowhere") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "selector term '' is not KEY=VALUE, e.g. district=phu-vang"),
        ("district=a,kind", "selector term 'kind' is not KEY=VALUE, e.g. district=phu-vang"),
        ("District=a", "selector 'District=a': label key 'District' is not 1 to 32 of a-z, 0-9, '_' and '-'"),
        ("kind=a,kind=b", "selector 'kind=a,kind=b': kind given twice with different values"),
    ],
)
def test_a_bad_selector_is_refused_naming_the_term(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse(text)
    assert str(caught.value).startswith(message)


def test_command_send_select_issues_one_per_node_and_audits_each(ioc_db: Database) -> None:
    labels = NodeLabels(ioc_db)
    labels.set("g1", {"district": "phu-vang"}, T0)
    labels.set("g2", {"district": "phu-vang"}, T0)
    labels.set("g3", {"district": "huong-tra"}, T0)
    CommandQueue(ioc_db).issue("g2", "ping", {}, "lan", 60, T0)  # g2's next seq is 2
    db = ["--db", ioc_db.url]

    out = cli(
        center_cli,
        ["command", "send", "--select", "district=phu-vang", "--kind", "ping", "--issuer", "lan"] + db,
    )
    assert out == "g1\t1\ng2\t2\n"
    assert [(c.device, c.seq, c.issuer) for c in CommandQueue(ioc_db).list()] == [
        ("g1", 1, "lan"),
        ("g2", 1, "lan"),
        ("g2", 2, "lan"),
    ]
    log = entries(ioc_db)
    assert [(e.user, e.action, e.target, e.command_seq, e.result) for e in log] == [
        ("lan", COMMAND_SEND, "g1", 1, "queued"),
        ("lan", COMMAND_SEND, "g2", 2, "queued"),
    ]
    assert log[0].details == {"kind": "ping", "body": {}, "ttl_s": 3600, "select": "district=phu-vang"}

    refused = CliRunner().invoke(
        center_cli, ["command", "send", "--select", "district=nowhere", "--kind", "ping"] + db
    )
    assert refused.exit_code == 1
    assert (
        refused.output
        == "no node's labels match 'district=nowhere': nothing sent (see `ioc-center node list`)\n"
    )
    both = CliRunner().invoke(
        center_cli, ["command", "send", "--device", "g1", "--select", "a=b", "--kind", "ping"] + db
    )
    assert both.exit_code == 1
    assert both.output == "give --device DEVICE or --select KEY=VALUE, one of them\n"
    assert len(entries(ioc_db)) == 2  # nothing issued, nothing logged


def test_audit_log_of_labels_and_command_outcomes(ioc_db: Database) -> None:
    db = ["--db", ioc_db.url]
    out = cli(center_cli, ["node", "label", "g1", "district=phu-vang", "kind=flood-station"] + db)
    assert out == "g1\tdistrict=phu-vang (centre) kind=flood-station (centre)\n"
    cli(center_cli, ["node", "label", "g1", "--remove", "kind", "--remove", "fleet"] + db)
    assert cli(center_cli, ["node", "list", "--select", "district=phu-vang"] + db) == (
        "g1\tnever heard\tdistrict=phu-vang (centre)\n"
    )
    cli(
        center_cli,
        ["command", "send", "--device", "g1", "--kind", "ping", "--ttl", "1", "--issuer", "lan"] + db,
    )
    cli(center_cli, ["command", "send", "--device", "g1", "--kind", "status", "--issuer", "lan"] + db)

    queue = CommandQueue(ioc_db)
    # Any action that issues a command (a config push) has its entry follow the command too.
    seq = queue.issue("g1", "config", {"text": ""}, "lan", 3600, T0)
    audit(ioc_db, "lan", "config.push", "g1", {"version": "ab12"}, "queued", command_seq=seq)
    # The node's answers to the second and third, and the first left to expire: their entries tell.
    ioc_db.store(status("g1", "e1", 1, None))
    for n in (2, 3):
        assert queue.sent("g1", n, T0, T0 + 1000, "e1")
    assert queue.result("g1", "e1", 2, "refused", "unknown_kind", "{}", T0)
    assert queue.result("g1", "e1", 3, "delivered", "", "{}", T0)
    assert entries(ioc_db)[-1].result == "delivered"
    assert queue.result("g1", "e1", 3, "applied", "", "{}", T0)
    assert queue.expire(2**62) == 1
    log = entries(ioc_db)
    assert [(e.action, e.target, e.command_seq, e.result, e.details) for e in log] == [
        ("label.set", "g1", None, "ok", {"district": "phu-vang", "kind": "flood-station"}),
        ("label.remove", "g1", None, "removed 1", {"keys": ["fleet", "kind"]}),
        ("command.send", "g1", 1, "expired: not_sent", {"kind": "ping", "body": {}, "ttl_s": 1}),
        ("command.send", "g1", 2, "refused: unknown_kind", {"kind": "status", "body": {}, "ttl_s": 3600}),
        ("config.push", "g1", 3, "applied", {"version": "ab12"}),
    ]
    since = log[2].at_ms
    assert [e.id for e in entries(ioc_db, "g1", since_ms=since)] == [e.id for e in log if e.at_ms >= since]
    assert entries(ioc_db, since_ms=log[-1].at_ms + 1) == []
    assert entries(ioc_db, "g2") == []
    text = cli(center_cli, ["audit", "list", "--device", "g1"] + db)
    assert [line.split("\t")[3:6] for line in text.splitlines()] == [
        ["label.set", "g1", "ok"],
        ["label.remove", "g1", "removed 1"],
        ["command.send", "g1#1", "expired: not_sent"],
        ["command.send", "g1#2", "refused: unknown_kind"],
        ["config.push", "g1#3", "applied"],
    ]


def test_audit_csv_neutralises_formulas(ioc_db: Database) -> None:
    audit(ioc_db, '=HYPERLINK("http://evil")', "label.set", "g1", {"district": "-1+1"}, "+ok", at_ms=T0)
    text = "".join(csv_text(entries(ioc_db)))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows == [
        {
            "id": "1",
            "ts_ms": str(T0),
            "time_local": "2023-11-14T22:13:20.000+00:00",
            "user": '\'=HYPERLINK("http://evil")',
            "action": "label.set",
            "target": "g1",
            "command_seq": "",
            "result": "'+ok",
            "details": '{"district": "-1+1"}',
        }
    ]
    out = cli(center_cli, ["audit", "list", "--csv", "--since", "2023-11-14", "--db", ioc_db.url])
    assert out == text.replace("\r\n", "\n")  # what click's test runner gives


def test_audit_keeps_a_body_with_an_unpaired_surrogate(ioc_db: Database) -> None:
    # Valid JSON, as a command's body may hold it; neither engine stores it as UTF-8 text unescaped.
    audit(ioc_db, "lan", "command.send", "g1", {"body": {"x": "\ud800"}}, "queued", at_ms=T0)
    assert [e.details for e in entries(ioc_db)] == [{"body": {"x": "\ud800"}}]
