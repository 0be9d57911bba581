"""The text of `ioc-edge status`: a pure function of the store's status and the config file's state, every
section of it; and `ioc-edge status` reading them."""

from __future__ import annotations

import json

from helpers import cli, free_port
from support_nodes import node_toml, write_config

from drivers.base import Outage
from edge.cli import main
from edge.reconfig import ConfigFiles, Trial, config_version
from edge.status import ConfigState, render_status
from sync.store import Store, StoreStatus


def test_the_status_text_shows_every_section_in_order():
    status = StoreStatus(
        epoch="7",
        size_bytes=81920,
        backlog={"position": 12, "count": 3},
        kept_local={"reading": 40},
        last_ack_ms=1_700_000_000_000,
        drops={"position": 2},
        counters={"reject.gps": {"bad_checksum": 4, "garbage": 10}, "health.gps": {"transport_lost": 1}},
        failed_drivers={"rain": "GPIOPinInUse: pin 17 is already in use"},
        outages={
            "street": Outage("video file street.mp4 not found: check the camera's source", 1_699_999_000_000)
        },
        facts={
            "link": {"profile": "satellite", "source": "file", "held": ["event", "count"]},
            "track": {"records": 90, "chain": 2, "signed_to": 88, "signatures": 5, "heartbeats": 1},
            "warnings": {
                "ioc-hue-1": {"event": "Bão", "inside": 1, "sounding": True, "acknowledged": False},
                "local:station-7:flood:1": {
                    "event": "flood-2",
                    "inside": None,
                    "sounding": False,
                    "acknowledged": True,
                },
            },
        },
    )
    assert render_status(status).splitlines() == [
        "epoch: 7",
        "store: 81920 bytes",
        "backlog: count=3 position=12",
        "kept on the node only: reading=40",
        "last ack: 2023-11-14T22:13:20Z",
        "dropped: position=2",
        "health.gps: transport_lost=1",
        "reject.gps: bad_checksum=4 garbage=10",
        "driver rain failed to start: GPIOPinInUse: pin 17 is already in use",
        "camera street delivers no frames since 2023-11-14T21:56:40Z: video file street.mp4 not found: "
        "check the camera's source",
        "link: satellite (chosen by file), holding event, count",
        "track log: 90 records in chain 2, signed to record 88; this run 5 signatures, 1 no-fix heartbeats",
        "warning ioc-hue-1: Bão, inside 1, sounding, not acknowledged",
        "warning local:station-7:flood:1: flood-2, inside None, silent, acknowledged",
    ]


def test_a_new_store_reads_as_a_status_with_nothing_to_tell(tmp_path):
    store = Store(tmp_path / "node.db")
    store.set_meta("outages", json.dumps({"cam": {"error": "cannot open camera device 0", "since_ms": 0}}))
    status = store.status()
    store.close()
    assert (status.outages, status.failed_drivers, status.last_ack_ms) == (
        {"cam": Outage("cannot open camera device 0", 0)},
        {},
        None,
    )
    assert render_status(status).splitlines()[3:] == [
        "kept on the node only: reading=0",
        "last ack: never",
        "dropped: none",
        "camera cam delivers no frames since 1970-01-01T00:00:00Z: cannot open camera device 0",
    ]


def test_the_status_text_says_which_config_runs_and_which_pushed_config_is_on_trial():
    status = StoreStatus(epoch="7", size_bytes=4096, backlog={}, kept_local={}, last_ack_ms=None, drops={})
    running, pushed = "3f" * 32, "9c" * 32
    lines = [
        render_status(status, config).splitlines()[1]
        for config in (
            ConfigState(running),
            ConfigState(pushed, Trial(7, pushed)),
            ConfigState(running, Trial(7, pushed)),  # killed between the marker and the rename
            ConfigState(pushed, Trial(7, pushed, "kept")),
        )
    ]
    assert lines == [
        f"config: {running} (no pushed config on trial)",
        f"config: {pushed}; this config of command 7 on trial: kept if healthy within [commands] trial_s, "
        "else rolled back",
        f"config: {running}; pushed config 9c9c9c9c9c9c of command 7 on trial: kept if healthy within "
        "[commands] trial_s, else rolled back",
        f"config: {pushed}; this config of command 7 kept, its answer being recorded",
    ]
    assert render_status(status).splitlines()[1] == "store: 4096 bytes"  # no config given: no line


def test_ioc_edge_status_shows_the_config_files_version_and_a_trial(tmp_path):
    write_config(tmp_path, node_toml(tmp_path, "vessel-042", free_port()))
    path = tmp_path / "edge.toml"
    assert cli(main, ["status", str(path)]).splitlines()[1] == (
        f"config: {config_version(path.read_bytes())} (no pushed config on trial)"
    )
    pushed = path.read_text() + "\n[watchdog]\nstall_s = 300\n"
    trial = ConfigFiles(path).stage(pushed, 12)  # as the config kind does, before the node's trial
    report = json.loads(cli(main, ["status", "--json", str(path)]))
    assert (report["config_version"], report["config_trial"]) == (
        config_version(pushed.encode()),
        {"seq": 12, "version": trial.version, "state": "trial"},
    )
    assert "; this config of command 12 on trial: " in cli(main, ["status", str(path)])
