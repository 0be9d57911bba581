"""Output devices (issue 16): patterns on mock pins with their state history, the display through a real
pty, the acknowledge button, the bank, Hue's default patterns and the config's errors at their keys."""

from __future__ import annotations

import os
import select
import time
import unicodedata
from itertools import accumulate

import pytest
from gpiozero.pins.mock import MockFactory

from common.clock import Clock
from drivers.outputs import OutputError, Pattern, Signal, Sounding, TextDisplay
from drivers.transport import PtyTransport, ReopeningTransport
from edge.config import ConfigError, parse_config
from edge.devices.transport import PtyTransportConfig, open_transport
from edge.outputs.bank import OutputBank
from edge.outputs.base import OutputContext
from edge.outputs.button import ButtonOutputConfig
from edge.outputs.display import DisplayOutputConfig
from edge.outputs.light import LightOutputConfig
from edge.outputs.patterns import PatternConfig, patterns
from edge.outputs.siren import SirenOutputConfig

SHORT = Pattern(on_s=0.2, off_s=0.1, blasts=2, repeat=2, pause_s=0.3)
SLACK_S = 0.05
"""How far an edge may be from the pattern (issue 16: within 50 ms)."""
STORM_VI = "Cảnh báo bão số 9: tàu thuyền vào bờ ngay"


@pytest.fixture
def factory():
    """A private mock pin factory (never gpiozero's global Device.pin_factory)."""
    mock = MockFactory()
    yield mock
    mock.close()


def edges(pin) -> list[tuple[float, bool]]:
    """``(seconds after the first edge, state)`` of each change in a mock pin's history."""
    times = list(accumulate(state.timestamp for state in pin.states))
    changes = list(zip(times, (state.state for state in pin.states), strict=True))[1:]
    return [(t - changes[0][0], state) for t, state in changes]


class Events:
    """Collects a sounding's ``on_change`` calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str]] = []

    def __call__(self, event: str, ms: int, reason: str) -> None:
        self.calls.append((event, ms, reason))


def test_a_pattern_drives_the_pin_within_50_ms_of_its_schedule(factory):
    siren = Signal(17, pin_factory=factory)
    events = Events()
    sounding = Sounding([siren], SHORT, Clock(), events)
    before_ms = time.time() * 1000
    sounding.start()
    assert sounding.wait(3.0)
    seen = edges(factory.pin(17))
    assert [state for _, state in seen] == [on for _, on in SHORT.edges()]
    late = [(t, due) for (t, _), (due, _) in zip(seen, SHORT.edges(), strict=True) if abs(t - due) > SLACK_S]
    assert late == []
    assert sounding.reason == "done" and [(e, r) for e, _, r in events.calls] == [
        ("started", ""),
        ("stopped", "done"),
    ]
    assert sounding.started_ms is not None and sounding.stopped_ms is not None
    assert abs(sounding.started_ms - before_ms) < SLACK_S * 1000
    assert abs(sounding.stopped_ms - sounding.started_ms - SHORT.duration_s * 1000) < SLACK_S * 1000
    assert [ms for _, ms, _ in events.calls] == [sounding.started_ms, sounding.stopped_ms]


def test_stop_switches_every_signal_off_before_it_returns(factory):
    siren = Signal(17, pin_factory=factory)
    light = Signal(22, active_high=False, pin_factory=factory)  # a relay board switching on a low input
    events = Events()
    sounding = Sounding([siren, light], Pattern(on_s=10, off_s=1, blasts=3), Clock(), events)
    sounding.start()
    deadline = time.monotonic() + 1
    while not siren.is_on and time.monotonic() < deadline:
        time.sleep(0.005)
    assert (factory.pin(17).state, factory.pin(22).state) == (True, False)
    asked = time.monotonic()
    sounding.stop("cancelled")
    assert time.monotonic() - asked < SLACK_S
    assert (factory.pin(17).state, factory.pin(22).state) == (False, True)
    assert sounding.wait(1.0) and sounding.reason == "cancelled"
    assert [(e, r) for e, _, r in events.calls] == [("started", ""), ("stopped", "cancelled")]
    assert [state for _, state in edges(factory.pin(17))] == [True, False]  # never on again


def test_a_sounding_stopped_before_its_first_edge_never_sounded(factory):
    siren = Signal(17, pin_factory=factory)
    events = Events()
    sounding = Sounding([siren], SHORT, Clock(), events)
    sounding.stop("cancelled")
    sounding.start()
    assert sounding.wait(1.0)
    assert (sounding.reason, sounding.started_ms, sounding.stopped_ms, events.calls) == (
        "cancelled",
        None,
        None,
        [],
    )
    assert edges(factory.pin(17)) == []


def read_exactly(fd: int, size: int, timeout: float = 2.0) -> bytes:
    """``size`` bytes from ``fd`` (the pty's master side), or what came before ``timeout``."""
    data = b""
    deadline = time.monotonic() + timeout
    while len(data) < size and select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
        data += os.read(fd, size - len(data))
    return data


def test_the_display_shows_vietnamese_text_byte_for_byte_through_a_pty(pty_pair):
    master, path = pty_pair
    with PtyTransport(path) as port:
        display = TextDisplay(port)
        # the second line as a keyboard may type it: decomposed (NFD), with a tab and an escape sequence
        display.show([STORM_VI, unicodedata.normalize("NFD", "Lũ\tbáo động \x1b[2J2")])
        sent = b"\x0c" + STORM_VI.encode("utf-8") + b"\r\n" + "Lũbáo động [2J2".encode() + b"\r\n"
        assert read_exactly(master, len(sent)) == sent
        display.clear()
        assert read_exactly(master, 1) == b"\x0c"
    assert unicodedata.normalize("NFC", STORM_VI) == STORM_VI  # as sent: "ả" is one code point


def context(factory, opener=None) -> OutputContext:
    """The runtime's context: its transports reopen on the next write after a failure (edge.runtime)."""

    def transport(name: str, cfg):
        return ReopeningTransport(lambda: open_transport(cfg), name)

    return OutputContext(factory, opener or transport, Clock())


def test_the_bank_sounds_one_pattern_at_a_time_and_reports_what_failed(factory):
    outputs = {
        "siren": SirenOutputConfig(type="siren", pin=17),
        "beacon": LightOutputConfig(type="light", pin=22, active_high=False),
        "siren-2": SirenOutputConfig(type="siren", pin=17),  # the config refuses this; the bank survives it
    }
    quick = {"quick": PatternConfig(on_s=5, off_s=1, blasts=2)}
    bank = OutputBank(outputs, quick, context(factory))
    try:
        assert bank.names == ["siren", "beacon"] and bank.kinds == {"siren": "siren", "beacon": "light"}
        assert list(bank.failed) == ["siren-2"]
        assert bank.failed["siren-2"] == (
            "GPIOPinInUse: pin GPIO17 is already in use by "
            "<gpiozero.DigitalOutputDevice object on pin GPIO17, active_high=True, is_active=False>"
        )
        first, second = Events(), Events()
        playing = bank.sound("quick", first)
        time.sleep(0.05)
        assert (factory.pin(17).state, factory.pin(22).state) == (True, False)
        replacing = bank.sound("exercise", second)
        assert playing.wait(1.0) and playing.reason == "replaced"
        assert [(e, r) for e, _, r in first.calls] == [("started", ""), ("stopped", "replaced")]
        assert bank.silence("cancelled") is replacing and replacing.wait(1.0)
        assert [(e, r) for e, _, r in second.calls] == [("started", ""), ("stopped", "cancelled")]
        assert (factory.pin(17).state, factory.pin(22).state) == (False, True)
        assert bank.silence("cancelled") is None
        with pytest.raises(KeyError) as unknown:
            bank.sound("flod-2")
        assert unknown.value.args[0] == "'flod-2' is not a pattern; expected one of: " + (
            "exercise, flood-2, flood-3, quick, storm, tsunami"
        )
    finally:
        bank.close()


def test_the_bank_shows_on_every_display_and_reports_one_that_is_gone(factory, pty_pair):
    master, path = pty_pair
    outputs = {
        "sign": DisplayOutputConfig(type="display", transport=PtyTransportConfig(type="pty", path=path)),
        "cabin": DisplayOutputConfig(
            type="display", transport=PtyTransportConfig(type="pty", path="/dev/pts/9999")
        ),
    }
    bank = OutputBank(outputs, {}, context(factory))
    try:
        assert bank.kinds == {"sign": "display", "cabin": "display"}
        assert bank.show([STORM_VI]) == {
            "cabin": "pseudo-terminal /dev/pts/9999 not found: is the program that creates it running?"
        }
        sent = b"\x0c" + STORM_VI.encode("utf-8") + b"\r\n"
        assert read_exactly(master, len(sent)) == sent
        with pytest.raises(OutputError) as none:
            bank.sound("storm")
        assert str(none.value) == "no siren or light to sound 'storm' on (none configured)"
    finally:
        bank.close()


def test_the_button_acknowledges_with_its_name_and_time(factory):
    bank = OutputBank({"ack": ButtonOutputConfig(type="button", pin=5)}, {}, context(factory))
    pressed: list[tuple[str, int]] = []
    bank.on_ack(lambda name, ms: pressed.append((name, ms)))
    before_ms = time.time() * 1000
    factory.pin(5).drive_low()
    factory.pin(5).drive_high()
    assert [name for name, _ in pressed] == ["ack"] and abs(pressed[0][1] - before_ms) < 1000
    bank.close()


def test_the_default_patterns_are_hues_civil_defence_signals():
    assert patterns({}) == {
        "storm": Pattern(on_s=20, off_s=10, blasts=3, repeat=3, pause_s=60),
        "flood-2": Pattern(on_s=10, off_s=10, blasts=2, repeat=2, pause_s=60),
        "flood-3": Pattern(on_s=30, off_s=5, blasts=5, repeat=3, pause_s=60),
        "tsunami": Pattern(on_s=30, off_s=5, blasts=5, repeat=3, pause_s=60),
        "exercise": Pattern(on_s=3, off_s=0, blasts=1),
    }
    storm = "[patterns.storm]\non_s = 15\noff_s = 10\nblasts = 3\n"
    text = NODE + storm + "[patterns.drill]\non_s = 1\noff_s = 0\nblasts = 1\n"
    cfg = parse_config(text, "edge.toml", "/x")
    assert patterns(cfg.patterns)["storm"] == Pattern(on_s=15, off_s=10, blasts=3)
    assert sorted(patterns(cfg.patterns)) == ["drill", "exercise", "flood-2", "flood-3", "storm", "tsunami"]


NODE = '[node]\ndevice_id = "station-1"\n'
STATION = (
    NODE
    + """[drivers.river]
type = "water_level"
trigger_pin = 23
echo_pin = 24
mount_height_m = 5.0

[alarms.flood]
sensor = "river"
quantity = "water_level_m"
above = 3.5
sound = "flood-2"

[outputs.siren]
type = "siren"
pin = 17

[outputs.ack]
type = "button"
pin = "GPIO5"

[outputs.sign]
type = "display"
[outputs.sign.transport]
type = "serial"
port = "/dev/ttyUSB1"
baudrate = 9600
"""
)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(text, "edge.toml", "/x")
    return error.value.problems


def test_a_station_with_outputs_and_a_sounding_alarm_is_valid():
    cfg = parse_config(STATION, "edge.toml", "/x")
    assert cfg.alarms["flood"].sound == "flood-2"
    assert "sound" not in cfg.alarms["flood"].model_dump()  # the alarm engine's Rule takes the rest
    assert {name: out.type for name, out in cfg.outputs.items()} == {
        "siren": "siren",
        "ack": "button",
        "sign": "display",
    }
    assert cfg.outputs["ack"].pin == 5


def test_config_errors_name_the_key_and_its_line():
    assert problems(STATION.replace('sound = "flood-2"', 'sound = "flod-2"')) == [
        "alarms.flood.sound (edge.toml line 13): 'flod-2' is not a pattern; "
        "expected one of: exercise, flood-2, flood-3, storm, tsunami"
    ]
    assert problems(STATION.replace('type = "siren"', 'type = "light"').replace("pin = 17", "pin = 24")) == [
        "outputs.siren.pin (edge.toml line 17): 24 is also drivers.river.echo_pin; expected another pin"
    ]
    assert problems(STATION.replace('pin = "GPIO5"', "pin = 17")) == [
        "outputs.ack.pin (edge.toml line 21): 17 is also outputs.siren.pin; expected another pin"
    ]
    assert problems(STATION.replace('type = "siren"', 'type = "buzzer"')) == [
        "outputs.siren.type (edge.toml line 16): 'buzzer' is not a known type; "
        "expected one of: 'siren', 'light', 'display', 'button'"
    ]
    no_siren = STATION.replace('[outputs.siren]\ntype = "siren"\npin = 17\n', "")
    assert problems(no_siren) == [
        "alarms.flood.sound (edge.toml line 13): this node has no siren or light to sound it on; "
        "add an [outputs.NAME] with type = 'siren' or 'light'"
    ]
    gapless = STATION + "[patterns.flood-2]\non_s = 10\noff_s = 0\nblasts = 2\nrepeat = 2\n"
    assert problems(gapless) == [
        "patterns.flood-2.blasts (edge.toml line 32): 2 blasts without a gap are one blast; set off_s > 0",
        "patterns.flood-2.pause_s (edge.toml line 29): repeat = 2 needs a pause between repeats; "
        "set pause_s > 0",
    ]
