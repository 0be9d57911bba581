"""The node's warning desk (edge.warnings) on real outputs: gpiozero's MockFactory pins with their state
history, the desk's receipts, a person's acknowledgement by button and by `ioc-edge warn`, a local alarm's
pattern, cancels, expiries and the inside/outside decision. The path from the centre is in
test_warnings_path.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from gpiozero.pins.mock import MockFactory
from helpers import now_ms, pin_edges, wait_for
from support_warnings import BUTTON, CITY, LIGHT, OUTPUTS, SIREN

from common.clock import Clock
from edge.cli import main as edge_cli
from edge.config import NodeConfig, parse_config
from edge.control import CONTROL_SOCKET, ControlServer
from edge.outputs.bank import OutputBank
from edge.outputs.base import OutputContext
from edge.warnings import WarningDesk
from sync.records import Alarm, TimeSource, WarningReceipt
from sync.warnings import Alert, Info

TOML = (
    """
[node]
device_id = "station-7"
state_dir = "{state}"
"""
    + OUTPUTS  # no braces in it: the whole is format()ed with the state directory
    + """
[patterns.exercise]
on_s = 0.1
off_s = 0
blasts = 1
"""
)
HUE = (16.4637, 107.5909)


class Desk:
    """A desk over a bank of MockFactory pins, its receipts, and where the node is."""

    def __init__(self, tmp_path: Path, extra: str = "", fix_wait_s: float = 0.0) -> None:
        self.config: NodeConfig = parse_config(TOML.format(state=tmp_path) + extra)
        self.factory = MockFactory()
        self.bank = OutputBank(
            self.config.outputs, self.config.patterns, OutputContext(self.factory, _no_transport, Clock())
        )
        self.receipts: list[WarningReceipt] = []
        self.here: tuple[float, float] | None = HUE
        warnings = self.config.warnings
        self.desk = WarningDesk(
            "station-7",
            self.bank,
            lambda stream, records: self.receipts.extend(records),
            Clock(),
            lambda: self.here,
            alarm_patterns={"flood": "short"},
            exercise_pattern=warnings.exercise_pattern,
            ack_silences=warnings.ack_silences,
            fix_wait_s=fix_wait_s,
        )
        self.bank.on_ack(self.desk.pressed)
        self.desk.start()

    def pin(self, number: int):
        return self.factory.pin(number)

    def events(self, identifier: str | None = None) -> list[tuple[str, str, str]]:
        return [(r.event, r.output, r.by) for r in self.receipts if identifier in (None, r.identifier)]

    def close(self) -> None:
        self.desk.stop()
        self.bank.close()


def _no_transport(name: str, cfg: object):  # the desk's tests have no display
    raise AssertionError(f"no transport in these tests: {name}")


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    made = Desk(tmp_path)
    yield made
    made.close()


def alert(
    identifier: str = "storm-9",
    pattern: str = "short",
    areas=(CITY,),
    *,
    msg_type: str = "Alert",
    sent_ms: int | None = None,
    expires_ms: int | None = None,
    **more,
) -> Alert:
    """An alert sent now (or at ``sent_ms``), for a minute unless ``expires_ms``; ``more``: Alert.make's."""
    sent = now_ms() if sent_ms is None else sent_ms
    info = Info("vi-VN", "Bão", "Immediate", "Severe", "Observed", "Bão số 9", "", "Vào bờ ngay")
    expires = sent + 60_000 if expires_ms is None else expires_ms
    return Alert.make(identifier, "ioc@hue", sent, msg_type, [info], areas, expires, pattern=pattern, **more)


def test_a_warning_sounds_its_pattern_on_every_siren_and_light_within_50_ms(desk):
    details = desk.desk.receive(alert())
    assert details == {"inside": 1, "sounded": True, "shown": False, "replaced": []}
    wait_for(lambda: ("silenced", "siren", "centre") in desk.events(), 5, "the pattern's end")
    want = desk.bank.patterns["short"].edges()
    for number in (SIREN, LIGHT):
        got = pin_edges(desk.pin(number))
        assert [on for _, on in got] == [on for _, on in want]
        assert max(abs(t - w) for (t, _), (w, _) in zip(got, want, strict=True)) < 0.05, got
    assert desk.events() == [
        ("delivered", "", "centre"),
        ("sounded", "siren", "centre"),
        ("sounded", "light", "centre"),
        ("silenced", "siren", "centre"),
        ("silenced", "light", "centre"),
    ]
    sounded = [r for r in desk.receipts if r.event == "sounded"][0]
    silenced = [r for r in desk.receipts if r.event == "silenced"][0]
    assert abs((silenced.ts_ms - sounded.ts_ms) / 1000 - want[-1][0]) < 0.05
    assert json.loads(silenced.details) == {"pattern": "short", "reason": "done"}
    delivered = desk.receipts[0]
    assert (delivered.inside, delivered.lat, delivered.lon) == (1, *HUE)


def test_the_button_acknowledges_and_silences(desk):
    desk.desk.receive(alert(pattern="long"))
    wait_for(lambda: desk.pin(SIREN).state, 2, "the siren on")
    pressed = time.monotonic()
    desk.pin(BUTTON).drive_low()
    wait_for(lambda: not desk.pin(SIREN).state, 1, "the siren silenced by the button")
    assert time.monotonic() - pressed < 0.5
    assert ("acknowledged", "", "button:ack") in desk.events()
    silenced = [r for r in desk.receipts if r.event == "silenced"]
    assert json.loads(silenced[0].details)["reason"] == "acknowledged"
    assert desk.desk.ack("hand") == []  # acknowledged once


def test_a_cancel_silences_a_sounding_siren_within_a_second_and_says_so(desk):
    storm = alert(pattern="long")
    desk.desk.receive(storm)
    wait_for(lambda: desk.pin(SIREN).state, 2, "the siren on")
    cancel = alert("storm-9-cancel", msg_type="Cancel", references=(storm.reference(),), pattern="")
    started = time.monotonic()
    assert desk.desk.receive(cancel) == {"inside": 1, "cancelled": ["storm-9"]}
    assert not desk.pin(SIREN).state and time.monotonic() - started < 1.0
    assert ("cancelled", "", "centre") in desk.events("storm-9")
    assert desk.desk.describe() == {}


def test_an_expired_warning_never_sounds_and_one_that_expires_is_silenced(desk):
    stale = alert("old", sent_ms=now_ms() - 60_000, expires_ms=now_ms() - 1)
    assert desk.desk.receive(stale) == {"inside": 1, "expired": True}
    time.sleep(0.3)
    assert not any(s.state for s in desk.pin(SIREN).states[1:])
    assert [e for e, _, _ in desk.events("old")] == ["delivered", "expired"]
    desk.desk.receive(alert("soon", pattern="long", expires_ms=now_ms() + 1500))  # whole seconds: 0.5..1.5 s
    wait_for(lambda: desk.pin(SIREN).state, 2, "the siren on")
    wait_for(lambda: not desk.pin(SIREN).state, 3, "the siren off at the expiry")
    assert [e for e, _, _ in desk.events("soon")] == [
        "delivered",
        "sounded",
        "sounded",
        "silenced",
        "silenced",
        "expired",
    ]


def test_outside_the_area_a_warning_is_delivered_not_sounded_and_without_a_position_it_sounds(desk):
    desk.here = (17.5, 106.5)  # far out of the city
    assert desk.desk.receive(alert("a"))["inside"] == 0
    time.sleep(0.3)
    assert not desk.pin(SIREN).state and [e for e, _, _ in desk.events("a")] == ["delivered"]
    desk.here = None  # a vessel without a fix: a needless siren is better than a storm missed
    assert desk.desk.receive(alert("b", pattern="long"))["inside"] is None
    wait_for(lambda: desk.pin(SIREN).state, 2, "the siren on")


def test_a_test_warning_is_never_sounded_and_an_exercise_sounds_its_own_pattern(desk):
    desk.desk.receive(alert("t", status="Test"))
    time.sleep(0.2)
    assert [e for e, _, _ in desk.events("t")] == ["delivered"]
    desk.desk.receive(alert("x", status="Exercise", pattern="long"))
    wait_for(lambda: ("silenced", "siren", "centre") in desk.events("x"), 2, "the exercise's one short blast")
    assert json.loads([r for r in desk.receipts if r.event == "sounded"][0].details)["pattern"] == "exercise"


def test_a_local_alarm_sounds_its_pattern_at_once_with_no_link(desk):
    raised = Alarm(now_ms(), int(TimeSource.NTP), now_ms(), "river", "flood", 1, 3.2, "flood raised")
    desk.desk.alarms([raised._replace(kind="other"), raised._replace(state=0), raised])
    wait_for(lambda: len(desk.receipts) == 3, 1, "the siren and the light sounded")
    [identifier] = desk.desk.describe()
    assert identifier.startswith("local:station-7:flood:")
    assert desk.events(identifier) == [
        ("delivered", "", "alarm:flood"),
        ("sounded", "siren", "alarm:flood"),
        ("sounded", "light", "alarm:flood"),
    ]
    assert desk.pin(SIREN).state


def test_by_hand_on_site_through_ioc_edge_warn(tmp_path, desk):
    socket = tmp_path / CONTROL_SOCKET
    server = ControlServer(socket, desk.desk.actions())
    server.start()
    config = tmp_path / "edge.toml"
    config.write_text(TOML.format(state=tmp_path))
    try:
        cli = CliRunner()
        sounded = cli.invoke(edge_cli, ["warn", "sound", "long", "--config", str(config)])
        assert sounded.exit_code == 0, sounded.output
        assert sounded.output.startswith("sounding long: local:station-7:hand:")
        wait_for(lambda: desk.pin(SIREN).state, 1, "the siren on")
        listed = cli.invoke(edge_cli, ["warn", "list", "--config", str(config)])
        assert "sounding=True  acknowledged=False  by=hand" in listed.output
        silenced = cli.invoke(edge_cli, ["warn", "silence", "--config", str(config)])
        assert silenced.output.startswith("silenced: local:station-7:hand:") and not desk.pin(SIREN).state
        acked = cli.invoke(edge_cli, ["warn", "ack", "--config", str(config)])
        assert acked.output.startswith("acknowledged: local:station-7:hand:")
        unknown = cli.invoke(edge_cli, ["warn", "sound", "nope", "--config", str(config)])
        assert unknown.exit_code == 1
        assert "'nope' is not a pattern; expected one of ['exercise', 'flood-2'" in unknown.output
        assert oct(socket.stat().st_mode & 0o777) == "0o600"
    finally:
        server.stop()
    gone = CliRunner().invoke(edge_cli, ["warn", "ack", "--config", str(config)])
    assert gone.exit_code == 1 and "no such socket: is the node running" in gone.output


def test_a_vessel_without_a_fix_yet_decides_with_its_first_one_or_sounds_at_the_deadline(tmp_path):
    desk = Desk(tmp_path, fix_wait_s=1.0)
    try:
        desk.here = None  # just booted: no fix yet
        assert desk.desk.receive(alert("near", pattern="long")) == {
            "inside": None,
            "deciding_s": 1.0,
            "replaced": [],
        }
        time.sleep(0.3)
        assert not desk.pin(SIREN).state  # waiting for the GPS
        desk.here = HUE
        wait_for(lambda: desk.pin(SIREN).state, 1, "the siren, once the fix says inside")
        located = [r for r in desk.receipts if r.event == "located"]
        assert [(r.inside, r.lat, r.lon) for r in located] == [(1, *HUE)]
        desk.desk.silence()
        desk.here = None
        started = time.monotonic()
        desk.desk.receive(alert("blind", pattern="long"))
        wait_for(lambda: desk.pin(SIREN).state, 3, "the siren at the deadline, inside unknown")
        assert time.monotonic() - started >= 0.9
        assert [r.inside for r in desk.receipts if r.event == "located"] == [1, None]
    finally:
        desk.close()
