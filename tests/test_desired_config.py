"""Desired configuration (issue 15, points 3, 4, 5, 8): a config pushed to a real node over mutual TLS to a
real mosquitto is validated with the node's models, written atomically, tried and kept or rolled back; a node
SIGKILLed while it applies one runs the old or the new config after a restart, and says which; at the centre,
the desired and reported versions, drift, and adoption of a technician's edit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import free_port, now_ms, wait_for
from support_commands import DEVICE, Bench, centre_on, command_bench
from support_nodes import node_toml

from edge.config import parse_config
from edge.reconfig import CRASH_ENV, ConfigFiles, Supervisor, config_version
from edge.runtime import open_store
from ioc.cli import main
from ioc.db import Database
from ioc.desired import DesiredConfigs, DesiredError
from ioc.labels import NodeLabels
from sync.records import CommandResult, NodeStatus
from sync.store import StoredCommand
from sync.wire import Batch

TRIAL_S = 2


def base_text(bench: Bench) -> str:
    """The bench's config with a short trial."""
    text = (bench.tmp / "edge.toml").read_text()
    return text if "[commands]" in text else text + f"\n[commands]\ntrial_s = {TRIAL_S}\n"


def push(bench: Bench, seq: int, text: str) -> None:
    body = {"text": text, "version": config_version(text.encode())}
    bench.publish(bench.signer.sign(bench.command(seq, "config", body=body)))


def final(bench: Bench, seq: int, timeout: float = 20) -> StoredCommand:
    """What the node did with command ``seq``, once finished: its store's record, which the result it sends
    the centre repeats (the record stays; the result leaves the store once the centre acked it)."""

    def found() -> StoredCommand | None:
        return next((c for c in bench.taken() if c.seq == seq and c.finished), None)

    wait_for(found, timeout, f"the result of command {seq}")
    result = found()
    assert result is not None
    return result


def leftovers(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.glob(path.name + ".*") if not p.name.endswith(".good"))


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    with command_bench(tmp_path) as b:
        yield b


@pytest.fixture
def centre(bench: Bench, tmp_path: Path) -> Iterator[Database]:
    """The centre on the bench's broker: its receiver (whose acks end a trial) and its dispatcher (retrying
    fast), on a SQLite database."""
    with centre_on(bench, tmp_path) as side:
        side.dispatcher.start()
        yield side.db


@pytest.fixture
def supervised(bench: Bench, centre: Database) -> Iterator[Callable[[], Supervisor]]:
    """``ioc-edge run``'s supervisor in a thread on the bench's config (with a short trial)."""
    path = bench.tmp / "edge.toml"
    path.write_text(base_text(bench))
    started: list[tuple[Supervisor, threading.Thread]] = []

    def start() -> Supervisor:
        bench.publisher.received.clear()
        supervisor = Supervisor(path)
        thread = threading.Thread(target=supervisor.run)
        thread.start()
        started.append((supervisor, thread))
        wait_for(lambda: bench.publisher.received, 10, "a batch of the node")
        return supervisor

    yield start
    for supervisor, thread in started:
        supervisor.stop()
        thread.join(20)


def test_a_valid_config_is_tried_kept_and_answered_with_its_version(bench, supervised):
    supervisor = supervised()
    path = supervisor.files.path
    old = path.read_text()
    new = old + "\n[summaries]\ninterval_s = 30\n"
    push(bench, 1, new)
    result = final(bench, 1)
    assert (result.state, result.reason) == ("applied", "")
    details = json.loads(result.details)
    assert details == {"version": config_version(new.encode()), "text": new}
    assert path.read_text() == new and supervisor.files.good.read_text() == old
    assert leftovers(path) == []
    assert supervisor.node is not None and supervisor.node.config.summaries.interval_s == 30
    push(bench, 2, new)  # the version it runs: applied at once
    assert json.loads(final(bench, 2).details)["unchanged"] is True


def test_a_config_with_an_error_is_refused_with_field_line_and_message_and_nothing_written(bench, supervised):
    supervisor = supervised()
    path = supervisor.files.path
    old = path.read_text()
    bad = old + '\n[summaries]\ninterval_s = "soon"\n'
    line = bad.splitlines().index('interval_s = "soon"') + 1
    push(bench, 1, bad)
    result = final(bench, 1)
    assert (result.state, result.reason) == ("refused", "invalid_config")
    details = json.loads(result.details)
    assert details["problems"] == [f"summaries.interval_s (edge.toml line {line}): 'soon' is not an integer"]
    assert details["message"] == details["problems"][0]
    assert details["version"] == config_version(old.encode()) and details["text"] == old
    assert path.read_text() == old and leftovers(path) == [] and not supervisor.files.good.exists()
    push(bench, 2, old.replace(f'device_id = "{DEVICE}"', 'device_id = "vessel-043"'))
    result = final(bench, 2)
    assert (result.state, result.reason) == ("refused", "identity_change")
    assert json.loads(result.details)["fields"] == [f"node.device_id: {DEVICE} -> vessel-043"]
    assert path.read_text() == old


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ("uplink", "no ack from the IOC yet (uplink 127.0.0.1:{port}"),
        ("gps", "driver gps: its device is away: serial port /dev/ttyUSB99 not found"),
    ],
)
def test_a_config_that_cannot_work_is_rolled_back_within_the_trial_and_the_node_is_reachable_again(
    bench, supervised, change, why
):
    supervisor = supervised()
    path = supervisor.files.path
    old = path.read_text()
    port = free_port()
    if change == "uplink":  # a broker address that does not answer
        new = old.replace(f"port = {bench.broker.port}", f"port = {port}")
    else:  # a GPS port that does not exist
        new = old + '\n[drivers.gps]\ntype = "nmea"\n\n[drivers.gps.transport]\ntype = "serial"\n'
        new += 'port = "/dev/ttyUSB99"\n'
    push(bench, 1, new)
    result = final(bench, 1, 20)
    assert (result.state, result.reason) == ("refused", "rolled_back")
    details = json.loads(result.details)
    assert details["message"].startswith(f"not healthy within {TRIAL_S} s: ")
    assert why.format(port=port) in details["message"]
    assert details["tried"] == config_version(new.encode()) and details["text"] == old
    assert path.read_text() == old and leftovers(path) == []
    bench.publisher.received.clear()  # reachable: the old config's node sends again
    wait_for(lambda: bench.publisher.received, 10, "a batch of the node rolled back")
    push(bench, 2, old + "\n[summaries]\ninterval_s = 30\n")
    assert final(bench, 2).state == "applied"


@pytest.mark.parametrize(("point", "runs_new"), [("new", False), ("renamed", True), ("trial", True)])
def test_a_node_killed_while_it_applies_a_config_runs_old_or_new_and_answers_which(
    bench, centre, point, runs_new
):
    path = bench.tmp / "edge.toml"
    old = base_text(bench)
    path.write_text(old)
    new = old + "\n[summaries]\ninterval_s = 30\n"
    log = (bench.tmp / "node.log").open("ab")

    def run_node(env: dict[str, str]) -> subprocess.Popen:
        bench.publisher.received.clear()
        proc = subprocess.Popen([sys.executable, "-m", "edge", "run", str(path)], env=env, stderr=log)
        wait_for(lambda: bench.publisher.received, 15, "a batch of the node")
        return proc

    proc = run_node(os.environ | {CRASH_ENV: point})
    push(bench, 1, new)
    assert proc.wait(20) == -9
    assert path.read_text() == (new if runs_new else old)  # whole: the one or the other
    proc = run_node(dict(os.environ))
    try:
        result = final(bench, 1)
        assert (result.state, result.reason) == ("refused", "rolled_back")
        details = json.loads(result.details)
        tried = config_version(new.encode())
        assert details["message"] == f"the node stopped before its trial of config {tried[:12]} ended"
        assert details["tried"] == tried
        assert details["version"] == config_version(old.encode())
        assert path.read_text() == old and leftovers(path) == []
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


T0 = 1_700_000_000_000


def status(seq: int, ts_ms: int, body: dict) -> Batch:
    return Batch(DEVICE, "e1", "status", [seq], [tuple(NodeStatus(ts_ms, 1, ts_ms, json.dumps(body)))])


def answer(seq: int, details: dict) -> Batch:
    record = CommandResult(
        T0, 1, T0, command_seq=seq, state="applied", reason="", details=json.dumps(details)
    )
    return Batch(DEVICE, "e1", "command_result", [seq], [tuple(record)])


def test_desired_vs_reported_drift_the_diff_and_adoption_at_the_centre(ioc_db):
    configs = DesiredConfigs(ioc_db)
    ours, theirs = "[node]\nsite = 'a'\n", "[node]\nsite = 'b'\n"
    seq = configs.push(DEVICE, ours, "lan", T0)
    state = configs.state(DEVICE)
    assert state.desired is not None and state.desired.version == config_version(ours.encode())
    assert (state.desired.command_seq, state.reported, state.drift) == (seq, None, False)
    assert state.command is not None and state.command.kind == "config"
    assert state.command.body == {"text": ours, "version": config_version(ours.encode())}
    configs.from_status(status(1, T0 + 2000, {"config_version": config_version(theirs.encode())}))
    configs.from_status(status(2, T0 + 1000, {"config_version": config_version(ours.encode())}))  # late
    state = configs.state(DEVICE)
    assert (state.reported, state.reported_ms, state.drift) == (
        config_version(theirs.encode()),
        T0 + 2000,
        True,
    )
    assert state.diff() == ""  # their text unknown yet
    with pytest.raises(DesiredError, match="unknown: fetch it first"):
        configs.adopt(DEVICE, "lan", T0)
    get = configs.fetch(DEVICE, "lan", T0)
    configs.from_results(answer(get, {"version": config_version(theirs.encode()), "text": theirs}))
    configs.from_results(answer(get, {"version": "0" * 64, "text": "forged"}))  # not its text's hash
    state = configs.state(DEVICE)
    assert state.reported_text == theirs
    assert state.diff().splitlines()[-2:] == ["-site = 'a'", "+site = 'b'"]
    adopted = configs.adopt(DEVICE, "tech", T0 + 5000)
    state = configs.state(DEVICE)
    assert state.desired == adopted and adopted.text == theirs and adopted.command_seq is None
    assert (state.drift, state.diff()) == (False, "")
    actions = [
        (r["action"], r["result"]) for r in ioc_db.fetch("SELECT action, result FROM audit_log ORDER BY id")
    ]
    assert actions == [("config.push", "queued"), ("command.send", "queued"), ("config.adopt", "ok")]


def test_a_local_edit_shows_as_drift_at_the_centre_and_adopting_it_makes_it_desired(
    bench, centre, supervised
):
    supervisor = supervised()
    configs = DesiredConfigs(centre)
    path = supervisor.files.path
    pushed = path.read_text() + "\n[summaries]\ninterval_s = 30\n"
    seq = configs.push(DEVICE, pushed, "lan", now_ms())
    wait_for(lambda: configs.state(DEVICE).command.state == "applied", 20, "the push applied at the centre")
    wait_for(lambda: configs.state(DEVICE).reported_ms, 10, "a status of the node")  # the trial's own
    state = configs.state(DEVICE)
    assert state.command is not None and state.command.seq == seq
    assert (state.reported, state.drift, state.reported_text) == (
        config_version(pushed.encode()),
        False,
        pushed,
    )
    bad = pushed.replace("interval_s = 30", "interval_s = -1")
    configs.push(DEVICE, bad, "lan", now_ms())
    wait_for(lambda: configs.state(DEVICE).command.state == "refused", 20, "the bad push refused")
    state = configs.state(DEVICE)
    line = bad.splitlines().index("interval_s = -1") + 1
    problems = json.loads(state.command.details)["problems"]
    assert problems == [f"summaries.interval_s (edge.toml line {line}): -1 is too small; expected >= 1"]
    assert state.drift  # the desired config is the one refused: the node runs the previous one
    shown = CliRunner().invoke(main, ["config", "show", "--device", DEVICE, "--db", centre.url])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert lines[1:4] == ["push: refused (invalid_config)", f"  {problems[0]}", lines[3]]
    assert lines[3].startswith(f"reported: {config_version(pushed.encode())[:12]} (status of ")
    assert lines[4:7] == [
        "drift: yes",
        f"--- desired {config_version(bad.encode())[:12]}",
        f"+++ reported {config_version(pushed.encode())[:12]}",
    ]
    assert [line for line in lines[7:] if line[0] in "+-"] == ["-interval_s = -1", "+interval_s = 30"]
    edited = pushed + "# raised by the technician, 2026-12-08\n"
    path.write_text(edited)  # on site, without the centre
    wait_for(
        lambda: configs.state(DEVICE).reported == config_version(edited.encode()), 20, "the edit reported"
    )
    with pytest.raises(DesiredError):
        configs.adopt(DEVICE, "lan", now_ms())
    result = CliRunner().invoke(
        main, ["config", "adopt", "--device", DEVICE, "--db", centre.url, "--wait", "20"]
    )
    assert result.exit_code == 0, result.output
    assert result.output == f"{DEVICE}\tdesired {config_version(edited.encode())[:12]} (adopted)\n"
    state = configs.state(DEVICE)
    assert state.desired is not None and state.desired.text == edited and not state.drift


def test_config_push_selects_nodes_by_label_and_show_prints_json(ioc_db, tmp_path):
    labels = NodeLabels(ioc_db)
    labels.set("gauge-1", {"kind": "flood-station"}, T0)
    labels.set("gauge-2", {"kind": "flood-station"}, T0)
    labels.set("buoy-1", {"kind": "buoy"}, T0)
    config = tmp_path / "edge.toml"
    config.write_text("[node]\ndevice_id = 'x'\n")
    db = ["--db", ioc_db.url]
    pushed = CliRunner().invoke(main, ["config", "push", str(config), "--select", "kind=flood-station", *db])
    assert (pushed.exit_code, pushed.output) == (0, "gauge-1\t1\ngauge-2\t1\n")
    none = CliRunner().invoke(main, ["config", "push", str(config), "--select", "kind=camera", *db])
    assert none.exit_code == 1
    assert "no node's labels match 'kind=camera': nothing pushed" in none.output
    shown = CliRunner().invoke(main, ["config", "show", "--device", "gauge-2", "--json", *db])
    state = json.loads(shown.output)
    assert state["desired"]["version"] == config_version(config.read_bytes())
    assert (state["reported"], state["drift"], state["command"]["state"]) == (None, False, "queued")


def test_a_trial_found_healthy_just_before_a_crash_is_kept_and_answered_applied(tmp_path):
    path = tmp_path / "edge.toml"
    old = node_toml(tmp_path, DEVICE, free_port())
    path.write_text(old)
    store = open_store(parse_config(old, "edge.toml", tmp_path))
    store.begin_command(7, "config", now_ms(), {})
    store.close()
    files = ConfigFiles(path)
    new = old + "\n[summaries]\ninterval_s = 30\n"
    files.keep(files.stage(new, 7))  # killed before the answer was recorded
    Supervisor(path).recover()
    assert path.read_text() == new and leftovers(path) == []
    store = open_store(parse_config(new, "edge.toml", tmp_path))
    taken = store.command(7)
    store.close()
    assert taken is not None and (taken.state, taken.reason) == ("applied", "")
    assert json.loads(taken.details) == {"version": config_version(new.encode()), "text": new}
