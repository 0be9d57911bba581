"""The node's command inbox (issue 15): a real node over mutual TLS to a real mosquitto without an ACL (so a
test client may publish anything on the node's command topic), commands signed with real command-signing
certificates of the node's CA; every result read from the node's store, where it waits for the uplink."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_identity
from helpers import capture_logs, now_ms, wait_for
from support_commands import DEVICE, Bench, CentreSide, centre_on, command_bench, command_signer
from support_nodes import node_toml, store_status, write_config

from edge.command_kinds import COMMAND_KINDS, CommandKind
from edge.runtime import open_store
from edge.status import render_status
from provisioning.signing import DeviceSigner
from sync.commands import SignedCommand
from sync.records import CommandResult


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    with command_bench(tmp_path) as b:
        yield b


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """The bodies ``ping`` ran with: the node's registry entry wrapped to count its runs."""
    seen: list[dict] = []
    ping = COMMAND_KINDS["ping"]

    def counted(body, node):
        seen.append(dict(body))
        return ping.run(body, node)

    monkeypatch.setitem(COMMAND_KINDS, "ping", CommandKind("ping", counted))
    return seen


def answers(results: list[CommandResult], seq: int) -> list[tuple[str, str]]:
    return [(r.state, r.reason) for r in results if r.command_seq == seq]


def test_a_signed_command_runs_once_and_a_duplicate_gets_the_same_answer(bench, run_node, runs):
    node = bench.start(run_node)
    signed = bench.signer.sign(bench.command(1))
    bench.publish(signed)
    wait_for(lambda: node.commands.counts["applied"] == 1, 10, "ping applied")
    results = bench.results()
    assert answers(results, 1) == [("delivered", ""), ("applied", "")]
    details = json.loads(results[-1].details)
    assert details["epoch"] == bench.epoch() and details["version"] and details["uptime_s"] >= 0
    bench.publish(signed)  # the centre sends it again: its result was lost, say
    wait_for(lambda: node.commands.counts["duplicate"] == 1, 10, "the duplicate answered")
    again = bench.results()
    assert answers(again, 1) == [("delivered", ""), ("applied", ""), ("applied", "")]
    assert again[-1].details == results[-1].details
    assert runs == [{}]
    assert [(c.seq, c.kind, c.state) for c in bench.taken()] == [(1, "ping", "applied")]


def test_each_kind_answers_and_what_cannot_run_is_refused_with_a_result(bench, run_node, runs, monkeypatch):
    def broken(body, node):
        raise KeyError("lens")

    monkeypatch.setitem(COMMAND_KINDS, "snapshot", CommandKind("snapshot", broken))
    node = bench.start(run_node)
    past = now_ms() - 120_000
    commands = [
        bench.command(1, "status"),
        bench.command(2, "reboot-now"),
        bench.command(3, body={"count": 3}),  # ping takes no body
        bench.command(4, issued_ms=past, expires_ms=past + 60_000),
        bench.command(5, "snapshot"),
    ]
    for c in commands:
        bench.publish(bench.signer.sign(c))
    wait_for(lambda: sum(node.commands.counts.values()) == 5, 10, "five commands handled")
    results = bench.results()
    assert answers(results, 1) == [("delivered", ""), ("applied", "")]
    assert json.loads(results[1].details)["epoch"] == bench.epoch()  # ioc-edge status --json, now
    assert answers(results, 2) == [("refused", "unknown_kind")]
    assert json.loads(results[2].details) == {
        "message": f"'reboot-now' is not one of {sorted([*COMMAND_KINDS])}"
    }
    assert answers(results, 3) == [("delivered", ""), ("refused", "bad_body")]
    assert json.loads(results[4].details) == {"message": "ping takes no body; got keys ['count']"}
    assert answers(results, 4) == [("refused", "expired")]
    assert answers(results, 5) == [("delivered", ""), ("refused", "failed")]
    assert json.loads(results[-1].details) == {"message": "KeyError: 'lens'"}
    assert runs == [{"count": 3}]
    counts = {"applied": 1, "unknown_kind": 1, "bad_body": 1, "expired": 1, "failed": 1}
    assert node.commands.counts == counts


def test_untrusted_commands_are_counted_and_neither_run_nor_answered(bench, run_node, runs, tmp_path):
    node = bench.start(run_node)
    device_key = DeviceSigner.load(bench.identity)  # a node's own key signs its records, never commands
    elsewhere = tmp_path / "elsewhere"
    make_identity(elsewhere, DEVICE)
    (elsewhere / "signer").mkdir()
    foreign = command_signer(elsewhere / "ca", elsewhere / "signer")
    command = bench.command(1)
    refused = {
        "not_a_command_signer": SignedCommand(
            command, device_key.sign(command.canonical()), device_key.chain_pem
        ),
        "untrusted": foreign.sign(command),
        "unsigned": SignedCommand(command, b"", b""),
        "other_device": bench.signer.sign(bench.command(1, device="vessel-043")),
        "other_epoch": bench.signer.sign(bench.command(1, epoch="00000000deadbeef")),
        "bad_signature": SignedCommand(
            command, bench.signer.sign(bench.command(2)).signature, bench.signer.sign(command).chain_pem
        ),
    }
    for signed in refused.values():
        bench.publish(signed)
    bench.publish(b"\x00not json")
    wait_for(lambda: sum(node.commands.counts.values()) == len(refused) + 1, 10, "every payload handled")
    assert node.commands.counts == dict.fromkeys([*refused, "not_json"], 1)
    assert (runs, bench.results(), bench.taken()) == ([], [], [])
    bench.publish(bench.signer.sign(command))  # the same seq, signed as it should be: it runs
    wait_for(lambda: node.commands.counts["applied"] == 1, 10, "ping applied")

    def saved() -> dict[str, int]:
        return dict(store_status(bench.config).counters.get("commands", {}))

    wait_for(lambda: saved().get("applied") == 1, 10, "the counts saved by the status report")
    assert saved() == dict.fromkeys([*refused, "not_json", "applied"], 1)


def test_after_a_restart_a_finished_command_is_answered_not_run_and_an_unfinished_one_is_interrupted(
    bench, run_node, runs
):
    node = bench.start(run_node)
    first = bench.signer.sign(bench.command(1))
    bench.publish(first)
    wait_for(lambda: node.commands.counts["applied"] == 1, 10, "ping applied")
    node.stop()
    store = open_store(bench.config)
    store.begin_command(2, "ping", now_ms(), {})  # the node died while it ran command 2
    store.close()
    bench.publish(first)  # both wait at the broker in the node's session
    bench.publish(bench.signer.sign(bench.command(3)))
    node = run_node(bench.config)
    wait_for(lambda: node.commands.counts["applied"] == 1 and node.commands.counts["duplicate"] == 1, 10)
    results = bench.results()
    assert answers(results, 1) == [("delivered", ""), ("applied", ""), ("applied", "")]
    assert answers(results, 2) == [("refused", "interrupted")]
    assert answers(results, 3) == [("delivered", ""), ("applied", "")]
    assert len(runs) == 2
    assert [(c.seq, c.state, c.reason) for c in bench.taken()] == [
        (3, "applied", ""),
        (2, "refused", "interrupted"),
        (1, "applied", ""),
    ]
    lines = render_status(store_status(bench.config)).splitlines()
    assert re.fullmatch(r"command 3 ping: applied, received \S+Z", lines[-3])
    assert re.fullmatch(r"command 2 ping: refused \(interrupted\), received \S+Z", lines[-2])


def test_a_node_without_tls_takes_no_commands_and_says_so(broker, run_node, tmp_path, caplog):
    capture_logs(caplog)
    config = write_config(tmp_path, node_toml(tmp_path, DEVICE, broker.port))
    node = run_node(config)
    assert node.commands is None and node.uplink is not None
    assert "event=commands_off reason=no_uplink_tls action=no_subscription" in caplog.text


@pytest.fixture
def centre_side(bench: Bench, tmp_path: Path) -> Iterator[CentreSide]:
    with centre_on(bench, tmp_path) as centre:
        yield centre


def test_a_command_issued_while_the_node_is_away_is_applied_once_when_it_is_back_and_the_centre_learns_it(
    bench, run_node, runs, centre_side
):
    db, queue, dispatcher = centre_side.db, centre_side.queue, centre_side.dispatcher
    node = bench.start(run_node)
    wait_for(lambda: list(db.dump("status", DEVICE)), 10, "the node's epoch at the centre")
    node.stop()
    seq = queue.issue(DEVICE, "ping", {}, "lan", ttl_s=60, now_ms=now_ms())
    dispatcher.start()
    wait_for(lambda: queue.get(DEVICE, seq).state == "sent", 10, "the command sent to the absent node")
    run_node(bench.config)
    wait_for(lambda: queue.get(DEVICE, seq).state == "applied", 10, "the node's result at the centre")
    assert json.loads(queue.get(DEVICE, seq).details)["epoch"] == bench.epoch()
    assert runs == [{}]


def test_commands_pending_when_the_broker_dies_are_each_run_once_after_it_restarts(
    bench, run_node, runs, centre_side
):
    db, queue, dispatcher = centre_side.db, centre_side.queue, centre_side.dispatcher
    bench.start(run_node)
    wait_for(lambda: list(db.dump("status", DEVICE)), 10, "the node's epoch at the centre")
    bench.broker.stop()  # SIGKILL, no persistence: whatever it held is gone
    seqs = [queue.issue(DEVICE, "ping", {}, "lan", ttl_s=60, now_ms=now_ms()) for _ in range(3)]
    dispatcher.start()
    bench.broker.start()
    wait_for(lambda: all(queue.get(DEVICE, s).state == "applied" for s in seqs), 20, "every command applied")
    assert len(runs) == 3, "each run once, none twice"
    assert sorted((c.seq, c.state) for c in bench.taken()) == [(s, "applied") for s in seqs]
