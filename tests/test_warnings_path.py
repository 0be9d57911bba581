"""A warning from the centre to the field and its receipts back, end to end: ioc.warnings issues it, the
dispatcher signs it with the warning signer, a real mosquitto carries it, the node (edge.runtime, gpiozero's
MockFactory pins, ptys for the GPS and the cabin display) sounds, shows and receipts it, and the receiver
stores the receipts. The desk's own rules are in test_warnings_node.py."""

from __future__ import annotations

import json
import os
import select
import threading
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory
from helpers import nmea_fix, now_ms, pin_edges, wait_for
from support_commands import DEVICE, Bench, centre_on, command_bench
from support_forgery import Minted, signed_by
from support_nodes import write_config
from support_warnings import BUTTON, CITY, LIGHT, OUTPUTS, SIREN

from drivers.outputs import Pattern, screen
from edge.config import NodeConfig
from edge.warnings import display_lines
from ioc.cli import main as center_cli
from ioc.db import Database
from ioc.warnings import TargetReceipt, Warnings, new_identifier
from provisioning import pki
from sync.warnings import Alert, Area, Circle, Info

FLOAT = 22
SEA = Area("Biển Thừa Thiên Huế", circles=(Circle(16.80, 107.90, 30.0),))
FAR = Area("Vịnh Bắc Bộ", circles=(Circle(20.0, 107.5, 50.0),))
AT_SEA = (16.85, 107.95)


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[Bench]:
    with command_bench(tmp_path) as b:
        yield b


def configure(bench: Bench, extra: str, node: str = "") -> NodeConfig:
    """The bench's node config with ``node`` lines in ``[node]`` and ``extra`` sections after the rest."""
    text = (bench.tmp / "edge.toml").read_text().replace("[node]\n", f"[node]\n{node}\n", 1)
    return write_config(bench.tmp, text + extra)


def alert(areas: tuple[Area, ...], pattern: str, event: str = "Bão") -> Alert:
    now = now_ms()
    infos = [
        Info("vi-VN", event, "Immediate", "Severe", "Observed", "Bão số 9", "", "Tàu thuyền vào bờ ngay"),
        Info("en-US", "Storm", "Immediate", "Severe", "Observed", "Typhoon No. 9", "", "All boats to shore"),
    ]
    return Alert.make(
        new_identifier("ioc@hue", now), "ioc@hue", now, "Alert", infos, areas, now + 120_000, pattern=pattern
    )


def receipt(warnings: Warnings, identifier: str) -> TargetReceipt:
    [one] = warnings.receipts(identifier)
    return one


def heard(warnings: Warnings, **place: object) -> Callable[[], bool]:
    return lambda: any(
        p.device == DEVICE and all(getattr(p, k) == v for k, v in place.items()) for p in warnings.places()
    )


def test_a_warning_sounds_the_stations_siren_in_its_pattern_the_button_acknowledges_and_a_cancel_silences(
    bench, run_node, tmp_path, ioc_db: Database
):
    config = configure(
        bench, OUTPUTS + "\n[warnings]\nack_silences = false\n", "location = {lat = 16.46, lon = 107.59}"
    )
    factory = MockFactory()
    warnings = Warnings(ioc_db)
    with centre_on(bench, tmp_path, ioc_db) as centre:
        centre.dispatcher.start()
        run_node(config, pin_factory=factory)
        wait_for(heard(warnings, lat=16.46, mobile=False), 10, "the station's place at the centre")
        storm = alert((CITY,), "short")
        assert [t.why for t in warnings.issue(storm, None, "lan", now_ms()).targets] == ["station inside"]
        wait_for(lambda: receipt(warnings, storm.identifier).silenced_ms, 10, "the pattern played out")
        want = Pattern(0.2, 0.1, 2, 2, 0.3).edges()  # [patterns.short]
        for pin in (SIREN, LIGHT):
            edges = pin_edges(factory.pin(pin))
            assert [on for _, on in edges] == [on for _, on in want]
            # Here the node shares two cores with the centre, a database and another test worker: an edge
            # may come late by a scheduling pause (one came 170 ms late in a full run). Most edges within
            # 50 ms, none past 250 ms; every edge within 50 ms is test_warnings_node's (the same desk
            # and output bank, without the broker and the centre in the process) and test_outputs'.
            errors = sorted(abs(a - b) for (a, _), (b, _) in zip(edges, want, strict=True))
            assert errors[len(errors) // 2] < 0.05 and errors[-1] < 0.25, edges
        factory.pin(BUTTON).drive_low()
        wait_for(lambda: receipt(warnings, storm.identifier).acknowledged_ms, 10, "the acknowledgement")
        got = receipt(warnings, storm.identifier)
        assert got.delivered_ms <= got.sounded_ms < got.silenced_ms <= got.acknowledged_ms
        assert (got.inside, got.acknowledged_by, got.silenced_why, got.command_state) == (
            1,
            "button:ack",
            "centre: done",
            "applied",
        )
        assert set(got.outputs) == {"siren", "light"}

        flood = alert((CITY,), "long", "Lũ")
        warnings.issue(flood, None, "lan", now_ms())
        wait_for(lambda: factory.pin(SIREN).state, 10, "the siren sounding")
        started = time.monotonic()
        warnings.cancel(flood.identifier, "lan", now_ms())
        wait_for(lambda: not factory.pin(SIREN).state, 1.0, "the siren silenced by the cancel")
        assert time.monotonic() - started < 1.0
        wait_for(lambda: receipt(warnings, flood.identifier).cancelled_ms, 10, "the cancel's receipt")
        assert receipt(warnings, flood.identifier).silenced_why == "centre: cancelled"


def test_a_local_flood_alarm_sounds_while_the_link_is_cut_and_its_receipt_arrives_once_it_is_back(
    bench, run_node, tmp_path
):
    river = f'\n[drivers.river]\ntype = "float_switch"\npin = {FLOAT}\n'
    flood = '\n[alarms.flood]\nsensor = "river"\nquantity = "float_high"\nabove = 0.5\nsound = "short"\n'
    config = configure(bench, OUTPUTS + river + flood)
    factory = MockFactory()
    with centre_on(bench, tmp_path) as centre:
        warnings = Warnings(centre.db)
        node = run_node(config, pin_factory=factory)
        wait_for(lambda: list(centre.db.dump("status", DEVICE)), 10, "the node heard at the centre")
        bench.broker.stop()
        wait_for(lambda: not node.uplink.connected, 5, "the node to see its link cut")  # type: ignore[union-attr]
        factory.pin(FLOAT).drive_low()  # the float rises: its switch closes to ground
        wait_for(lambda: factory.pin(SIREN).state, 5, "the siren, with no link")
        local = [w for w in warnings.list() if w.state == "local"]
        assert local == []  # nothing reached the centre yet
        bench.broker.start()
        wait_for(
            lambda: [w for w in warnings.list() if w.state == "local"], 20, "the local warning at the centre"
        )
        [sounding] = [w for w in warnings.list() if w.state == "local"]
        assert sounding.identifier.startswith(f"local:{DEVICE}:flood:") and sounding.pattern == "short"
        got = lambda: receipt(warnings, sounding.identifier)  # noqa: E731
        wait_for(lambda: got().delivered_ms and got().sounded_ms and got().silenced_ms, 10, "every receipt")
        assert got().delivered_ms <= got().sounded_ms < got().silenced_ms
        assert (got().silenced_why, set(got().outputs)) == ("alarm:flood: done", {"siren", "light"})


@pytest.fixture
def gps(pty_pair) -> Iterator[str]:
    """The vessel's GPS on a pty (its path): a fix at sea every 0.2 s until the test ends."""
    master, path = pty_pair
    stop = threading.Event()

    def feed() -> None:
        while not stop.is_set():
            os.write(master, nmea_fix(now_ms(), *AT_SEA))
            stop.wait(0.2)

    os.write(master, nmea_fix(now_ms(), *AT_SEA))  # there before the node opens the port
    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    yield path
    stop.set()
    thread.join()


@pytest.fixture
def cabin() -> Iterator[tuple[int, str]]:
    """The cabin display's pty: the master (the test reads what the node shows) and the slave's path."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        yield master, os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def read_screen(master: int, size: int, timeout: float = 5.0) -> bytes:
    """``size`` bytes from the display's pty, as they come."""
    got = b""
    deadline = time.monotonic() + timeout
    while len(got) < size and time.monotonic() < deadline:
        if select.select([master], [], [], 0.1)[0]:
            got += os.read(master, size - len(got))
    return got


def test_a_vessel_away_when_warned_gets_it_on_reconnect_inside_it_sounds_and_shows_outside_it_does_not(
    bench, run_node, tmp_path, gps, cabin
):
    cabin_master, cabin_path = cabin
    vessel = f'\n[drivers.gps]\ntype = "nmea"\n\n[drivers.gps.transport]\ntype = "pty"\npath = "{gps}"\n'
    display = '\n[outputs.cabin]\ntype = "display"\n\n[outputs.cabin.transport]\ntype = "pty"\n'
    display += f'path = "{cabin_path}"\n'
    track = "\n[track]\nsign_every_s = 1\n"
    config = configure(bench, vessel + OUTPUTS + display + track)
    with centre_on(bench, tmp_path) as centre:
        warnings = Warnings(centre.db)
        node = run_node(config, pin_factory=MockFactory())
        wait_for(heard(warnings, mobile=True), 10, "the vessel known at the centre, as one that moves")
        node.stop()  # out of reach: the warnings are issued while it is away
        centre.dispatcher.start()
        storm, gale = alert((SEA,), "short"), alert((FAR,), "short", "Gió mạnh")
        for warning in (storm, gale):
            issued = warnings.issue(warning, None, "lan", now_ms())
            assert [t.why for t in issued.targets] == ["vessel: decides on board"]
        time.sleep(0.5)
        assert receipt(warnings, storm.identifier).delivered_ms is None
        factory = MockFactory()
        run_node(config, pin_factory=factory)
        wait_for(lambda: receipt(warnings, storm.identifier).silenced_ms, 15, "the storm warning sounded")
        wait_for(lambda: receipt(warnings, gale.identifier).delivered_ms, 10, "the gale warning delivered")
        inside, outside = receipt(warnings, storm.identifier), receipt(warnings, gale.identifier)
        assert (inside.inside, round(inside.lat, 4), round(inside.lon, 4)) == (1, *AT_SEA)
        assert inside.sounded_ms and inside.displayed_ms
        assert (outside.inside, outside.sounded_ms, outside.displayed_ms) == (0, None, None)
        shown = screen(display_lines(storm))
        assert read_screen(cabin_master, len(shown)) == shown  # Vietnamese, byte for byte
        factory.pin(BUTTON).drive_low()
        wait_for(
            lambda: receipt(warnings, storm.identifier).acknowledged_ms, 10, "the crew's acknowledgement"
        )
        assert receipt(warnings, storm.identifier).acknowledged_by == "button:ack"
        # The owner's proof: delivery and acknowledgement are chained into the signed track.
        wait_for(
            lambda: "acknowledged" in track_verified(tmp_path), 15, "the acknowledgement signed in the track"
        )
        notes = [
            json.loads(line.split(": ", 1)[1])
            for line in track_verified(tmp_path).splitlines()
            if '{"by"' in line
        ]
        # (inside at delivery: 1, 0, or None when the fix came just after: the receipts say where it was)
        assert [(n["event"], n["identifier"]) for n in notes] == [
            ("delivered", storm.identifier),
            ("delivered", gale.identifier),
            ("acknowledged", storm.identifier),
        ]
        assert (notes[2]["by"], notes[2]["inside"]) == ("button:ack", 1)


def track_verified(tmp_path: Path) -> str:
    """``ioc-center track verify`` of the vessel's track as the centre exports it from its database."""
    out = tmp_path / "vessel.track"
    export = ["track", "export", DEVICE, "--from", "2020-01-01", "--to", "2100-01-01", "--out", str(out)]
    exported = CliRunner().invoke(center_cli, [*export, "--db", f"sqlite:///{tmp_path / 'ioc.db'}"])
    if exported.exit_code != 0:
        return exported.output  # no signature yet
    verified = CliRunner().invoke(
        center_cli, ["track", "verify", str(out), "--ca", str(tmp_path / "ca" / "ca.crt")]
    )
    assert verified.exit_code == 0, verified.output
    return verified.output


def test_a_forged_warning_never_sounds_and_each_refusal_is_counted(bench, run_node):
    factory = MockFactory()
    node = run_node(configure(bench, OUTPUTS), pin_factory=factory)
    wait_for(lambda: bench.publisher.received, 10, "a batch of the node")
    body = alert((), "long").to_json()
    thieves = [  # the command signer's key (it signs commands, not warnings) and the device's own key
        Minted(
            pki.load_private_key(bench.tmp / "signer" / "signer.key"),
            pki.load_certificates(bench.tmp / "signer" / "signer.crt"),
        ),
        Minted.load(bench.identity),
    ]
    for seq, thief in enumerate(thieves, 1):
        bench.publish(signed_by(thief, bench.command(seq, "warning", body=body)))
    bench.publish(bench.warning_signer.sign(bench.command(3, "warning", body=body, device="vessel-043")))
    time.sleep(0.5)
    assert not factory.pin(SIREN).state
    bench.publish(bench.warning_signer.sign(bench.command(4, "warning", body=body)))  # the genuine one
    wait_for(lambda: factory.pin(SIREN).state, 10, "the genuine warning's siren")
    assert sum(1 for _, on in pin_edges(factory.pin(SIREN)) if on) == 1  # only the genuine one sounded
    assert dict(node.commands.counts) == {"not_a_warning_signer": 2, "other_device": 1, "applied": 1}
