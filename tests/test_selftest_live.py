"""The ``selftest`` command kind: the technician's self-test of a running node, through its inbox, judging
each driver by its running source and the broker by the uplink (no port opened, no second connection), its
signed commissioning record stored for the IOC."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import make_identity
from helpers import free_port, nmea_fix, now_ms, wait_for
from support_commands import DEVICE, Bench, command_bench
from support_nodes import node_toml, write_config

from common.clock import Clock
from drivers.base import SourceComponent
from edge import selftest
from edge.commissioning import Outcome
from edge.devices import nmea
from edge.health import Watched
from edge.reconfig import ConfigFiles
from edge.runtime import open_store
from edge.selftest import FAIL, PASS, CheckResult, LiveNode, LiveSelftest
from ioc.commissioning import latest
from ioc.db import Database
from ioc.receiver import Receiver

GPS = '\n[drivers.gps]\ntype = "nmea"\ntransport = {{ type = "pty", path = "{path}" }}\n'


@pytest.fixture
def bench(tmp_path: Path, pty_pair: tuple[int, str]) -> Iterator[Bench]:
    """The command bench, its node with a GPS receiver on ``pty_pair``."""
    with command_bench(tmp_path) as b:
        text = (tmp_path / "edge.toml").read_text() + GPS.format(path=pty_pair[1])
        b.config = write_config(tmp_path, text)
        yield b


@pytest.fixture
def centre(bench: Bench, tmp_path: Path) -> Iterator[Database]:
    """The IOC's receiver on the bench's broker (it acks what the node sends, judges commissioning records
    against the device CA), and its database."""
    db = Database(f"sqlite:///{tmp_path / 'ioc.db'}")
    r = Receiver(
        db, "127.0.0.1", bench.broker.port, client_id="ioc-test-receiver", tls=make_identity(tmp_path, "ioc")
    )
    r.start()
    assert r.subscribed.wait(10)
    yield db
    r.stop()
    db.close()


@pytest.fixture
def no_device_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    """The offline self-test's ways to a device and to the broker fail the test: the live one takes none."""

    def refused(*args, **kwargs):
        raise AssertionError("the live self-test opened a device or a second connection")

    monkeypatch.setattr(nmea, "open_transport", refused)
    monkeypatch.setattr(selftest, "AckProbe", refused)


def feed(master: int, data: bytes, stop: threading.Event) -> threading.Thread:
    """Writes ``data`` (bytes or fixes made now) to the GPS's pty every 0.2 s until ``stop``."""

    def run() -> None:
        while not stop.wait(0.2):
            os.write(master, data or nmea_fix(now_ms(), 54.5, 10.1))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def selftest_answer(bench: Bench, seq: int, body: dict) -> dict:
    """What the node answered to a signed ``selftest`` with ``body``, as its store keeps it (a result acked by
    the IOC leaves the store's ``command_result`` stream)."""
    bench.publish(bench.signer.sign(bench.command(seq, "selftest", body=body)))
    wait_for(lambda: any(c.seq == seq and c.finished for c in bench.taken()), 20, "the selftest's answer")
    [taken] = [c for c in bench.taken() if c.seq == seq]
    assert (taken.state, taken.reason) == ("applied", ""), taken.details
    return json.loads(taken.details)


def commissioning_records(bench: Bench) -> list:
    store = open_store(bench.config)
    try:
        return store.read("commissioning", 0, 10)[1]
    finally:
        store.close()


def test_a_selftest_command_checks_the_running_node_and_stores_its_signed_commissioning_record(
    bench, centre, run_node, pty_pair, no_device_opened
):
    stop = threading.Event()
    feeder = feed(pty_pair[0], b"", stop)
    try:
        node = bench.start(run_node)
        wait_for(lambda: node.drivers[0].records, 10, "a fix from the GPS")
        details = selftest_answer(bench, 1, {"seconds": 3})
    finally:
        stop.set()
        feeder.join()
    checks = {c["name"]: c for c in details["checks"]}
    assert [c["name"] for c in details["checks"]] == ["config", "store", "clock", "nmea gps", "broker"]
    assert {c["status"] for c in details["checks"]} == {"PASS"} and details["passed"] is True, details
    assert checks["config"]["detail"] == "the running config is valid (1 drivers; no config file)"
    assert "s from GPS time" in checks["clock"]["detail"]
    assert checks["nmea gps"]["detail"].startswith("running, ")
    assert checks["broker"]["detail"].startswith(f"127.0.0.1:{bench.broker.port} over mutual TLS, ")
    outcome = details["commissioning"]
    assert (outcome["stored"], outcome["signed"], outcome["seq"]) == (True, True, 1), outcome

    # The record reaches the IOC, which finds it signed by the node's key.
    def judged() -> bool:  # the receiver stores a batch, then judges its records
        record = latest(centre, DEVICE)
        return record is not None and record["verdict"] != "unchecked"

    wait_for(judged, 10, "the commissioning record judged at the IOC")
    record = latest(centre, DEVICE)
    assert record is not None and record["verdict"] == "valid", record
    report = record["report"]
    assert (report["operator"], report["passed"], report["checks"]) == (
        "centre command 1",
        True,
        details["checks"],
    )


def test_a_selftest_command_fails_the_gps_check_of_a_receiver_sending_garbage_without_opening_its_port(
    bench, run_node, pty_pair, no_device_opened
):
    stop = threading.Event()
    feeder = feed(pty_pair[0], b"\x00\xff garbage at the wrong baud rate \xfe\r\n", stop)
    try:
        node = bench.start(run_node)
        wait_for(lambda: node.drivers[0].rejects, 10, "the GPS's rejects")
        details = selftest_answer(bench, 1, {"seconds": 1})
    finally:
        stop.set()
        feeder.join()
    checks = {c["name"]: c for c in details["checks"]}
    assert details["passed"] is False
    gps = checks["nmea gps"]
    assert gps["status"] == "FAIL" and gps["detail"].startswith("running, nothing valid in "), gps
    assert "rejected " in gps["detail"] and gps["hint"].startswith("garbage: wrong baud rate?")
    assert checks["clock"]["detail"].endswith("(no GPS time to compare)")
    # No IOC on this bench: the node's batches wait unacked, which the broker check says.
    assert checks["broker"]["status"] == "FAIL" and "no IOC ack in " in checks["broker"]["detail"]
    [record] = commissioning_records(bench)
    assert json.loads(record.body)["passed"] is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"seconds": 0}, "seconds: 0 is not a number of seconds up to 30"),
        ({"seconds": True}, "seconds: True is not a number of seconds up to 30"),
        ({"port": "/dev/ttyUSB0"}, "selftest takes {\"seconds\": N} or no body; got keys ['port']"),
    ],
)
def test_a_selftest_command_with_a_bad_body_is_refused_naming_the_field(tmp_path, body, message):
    from edge.command_kinds import COMMAND_KINDS, CommandFailed, NodeContext
    from sync.store import Store

    store = Store(tmp_path / "store.db")
    try:
        with pytest.raises(CommandFailed) as refused:
            COMMAND_KINDS["selftest"].run(body, NodeContext(DEVICE, "0.1.0", 0.0, store))
    finally:
        store.close()
    assert (refused.value.reason, refused.value.message) == ("bad_body", message)


def test_the_answer_of_a_node_of_many_drivers_keeps_to_its_bound_failures_first():
    outcome = Outcome(True, True, 7, "signed by vessel-042, stored as record 7")
    results = [CheckResult(f"nmea gps{n}", PASS, "x" * 1000) for n in range(200)]
    results.insert(150, CheckResult("nmea gps-away", FAIL, "its device is away", "check the cable"))
    answer = selftest._bounded(results, outcome)
    assert len(json.dumps(answer)) <= selftest.SELFTEST_MAX_BYTES
    assert answer["checks"][0] == {
        "name": "nmea gps-away",
        "status": FAIL,
        "detail": "its device is away",
        "hint": "check the cable",
    }
    assert {len(c["detail"]) for c in answer["checks"][1:]} == {selftest.TEXT_MAX}
    assert answer["left_out"] == 201 - len(answer["checks"]) > 0
    assert (answer["passed"], answer["commissioning"]["seq"]) == (False, 7)


def test_a_live_selftest_reads_the_supervisors_config_file_and_names_what_stopped(tmp_path):
    config = write_config(tmp_path, node_toml(tmp_path, DEVICE, free_port(), uplink="enabled = false"))
    files = ConfigFiles(tmp_path / "edge.toml")
    trial = files.stage(files.path.read_text() + "\n", 3)
    sources = {name: SourceComponent(name, name) for name in ("gps", "pm", "replay")}
    watched = [Watched(sources["gps"], "nmea", 0.0), Watched(sources["pm"], "sds011", 0.0)]
    watched.append(Watched(sources["replay"], "nmea", 0.0, finite=True))
    store = open_store(config)
    try:
        live = LiveNode(
            config, Clock(), watched, {"gps": "serial port /dev/ttyUSB0 not found"}, None, store, files
        )
        results = LiveSelftest(live, seconds=0.2).run()
    finally:
        store.close()
    assert [r.line() for r in results if r.name not in ("store", "clock")] == [
        f"PASS  config: {files.path} valid (0 drivers), version {trial.version[:12]}; "
        "config of command 3 on trial",
        "FAIL  sds011 pm: its thread stopped -> send the restart command; see the node's log",
        "FAIL  nmea gps: did not start: serial port /dev/ttyUSB0 not found -> check drivers.gps (its "
        "transport, device and cable), then send the restart command",
        "SKIP  nmea replay: its input ended (a file read without loop)",
        "SKIP  broker: uplink.enabled is false",
    ]
