"""The node config: valid files, and errors that name key, line, value and expectation."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from common.errors import IocEdgeError
from edge.cli import main
from edge.config import ConfigError, load_config, parse_config
from edge.devices.float_switch import FloatSwitchDriverConfig
from edge.devices.nmea import NmeaDriverConfig
from edge.devices.particulate import DutyCycleConfig
from edge.devices.pms5003 import Pms5003DriverConfig
from edge.devices.rain_gauge import RainGaugeDriverConfig
from edge.devices.sds011 import Sds011DriverConfig
from edge.devices.transport import CaptureTransportConfig, ReplayTransportConfig, SerialTransportConfig
from edge.devices.water_level import WaterLevelDriverConfig

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
[node]
device_id = "vessel-042"
site = "thuan-an"
state_dir = "state"

[store]
max_bytes = 1048576
synchronous = "normal"

[uplink]
host = "ioc.example.org"
port = 8883

[drivers.gps]
type = "nmea"

[drivers.gps.transport]
type = "serial"
port = "/dev/ttyUSB0"
baudrate = 9600
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "edge.toml", "/etc/ioc-edge")
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def test_valid_config_with_defaults_and_resolved_paths():
    cfg = parse_config(GOOD, "edge.toml", "/etc/ioc-edge")
    assert cfg.node.device_id == "vessel-042"
    assert cfg.node.state_dir == Path("/etc/ioc-edge/state")
    assert cfg.store.path == Path("/etc/ioc-edge/state/store.db")
    assert cfg.store.synchronous == "normal"
    assert cfg.store.flush_records == 1000
    assert (cfg.uplink.host, cfg.uplink.port, cfg.uplink.compression) == ("ioc.example.org", 8883, "zstd")
    gps = cfg.drivers["gps"]
    assert isinstance(gps, NmeaDriverConfig)
    assert gps.transport == SerialTransportConfig(type="serial", port="/dev/ttyUSB0", baudrate=9600)


def test_minimal_config():
    cfg = parse_config('[node]\ndevice_id = "a"\n', "edge.toml", "/x")
    assert cfg.node.state_dir == Path("/var/lib/ioc-edge")
    assert cfg.store.path == Path("/var/lib/ioc-edge/store.db")
    assert cfg.drivers == {}
    assert cfg.uplink.enabled is True


def test_replay_path_relative_to_config_dir():
    text = """\
[node]
device_id = "a"
[drivers.gps]
type = "nmea"
transport = {type = "replay", path = "c/g.log"}
"""
    transport = parse_config(text, "edge.toml", "/etc/ioc-edge").drivers["gps"].transport
    assert transport == ReplayTransportConfig(type="replay", path=Path("/etc/ioc-edge/c/g.log"))
    assert (transport.speed, transport.baudrate, transport.loop) == (1.0, 4800, False)


def test_wrong_type_names_field_line_and_value():
    text = GOOD.replace("baudrate = 9600", "baudrate = '4800x'")
    assert problems(text) == [
        "drivers.gps.transport.baudrate (edge.toml line 20): '4800x' is not an integer",
    ]


def test_non_standard_baudrate():
    text = GOOD.replace("baudrate = 9600", "baudrate = 9601")
    (problem,) = problems(text)
    assert problem.startswith(
        "drivers.gps.transport.baudrate (edge.toml line 20): 9601 is not a standard baud rate"
    )
    assert "expected one of: 110, 300," in problem


def test_unknown_key_lists_expected_keys():
    text = GOOD.replace('site = "thuan-an"', 'sight = "thuan-an"')
    assert problems(text) == [
        "node.sight (edge.toml line 3): unknown key; expected one of: "
        "device_id, site, labels, location, state_dir",
    ]


def test_missing_required_field_points_at_its_table():
    text = GOOD.replace('port = "/dev/ttyUSB0"\n', "")
    assert problems(text) == [
        "drivers.gps.transport.port (edge.toml line 17): missing: required (a string, e.g. '/dev/ttyUSB0')",
    ]
    assert problems("[node]\n") == [
        "node.device_id (edge.toml line 1): missing: required (a string, e.g. 'vessel-042')",
    ]
    assert problems("[store]\n") == ["node (edge.toml): missing: required table [node]"]


def test_every_problem_listed_in_order():
    text = """\
[node]
device_id = "Vessel 42"
[store]
max_bytes = 10
synchronous = "fast"
[uplink]
backoff_min_s = 5
backoff_max_s = 1
enabled = "yes"
"""
    assert problems(text) == [
        "node.device_id (edge.toml line 2): 'Vessel 42' does not match the pattern "
        "^[a-z0-9][a-z0-9_-]{0,63}$",
        "store.max_bytes (edge.toml line 4): 10 is too small; expected >= 1048576",
        "store.synchronous (edge.toml line 5): 'fast' is not allowed; expected one of: 'full', 'normal'",
        "uplink.backoff_max_s (edge.toml line 8): 1.0 is below backoff_min_s (5.0); expected >= 5.0",
        "uplink.enabled (edge.toml line 9): 'yes' is not true or false",
    ]


def test_union_types_dotted_quoted_and_inline_keys():
    text = """\
[node]
device_id = "a"
[drivers."GPS X"]
type = "nmea"
transport = {type = "serial", port = "/dev/x"}
[drivers.b]
type = "sds"
[drivers.c]
type = "nmea"
transport = {type = "usb"}
[drivers.d]
type = "nmea"
transport.type = "replay"
transport.path = "x.log"
transport.speed = -1
"""
    assert problems(text) == [
        "drivers.\"GPS X\" (edge.toml line 3): 'GPS X' is not a valid name; "
        "expected one matching ^[a-z0-9_-]{1,32}$",
        "drivers.b.type (edge.toml line 7): 'sds' is not a known type; expected one of: 'nmea', 'camera', "
        "'sds011', 'pms5003', 'rain_gauge', 'water_level', 'float_switch'",
        "drivers.c.transport.type (edge.toml line 10): 'usb' is not a known type; "
        "expected one of: 'serial', 'pty', 'replay', 'capture'",
        "drivers.d.transport.speed (edge.toml line 15): -1 is too small; expected >= 0",
    ]


def test_missing_transport():
    text = '[node]\ndevice_id = "a"\n\n[drivers.gps]\ntype = "nmea"\n'
    assert problems(text) == [
        "drivers.gps.transport (edge.toml line 4): missing: required "
        "(a table with type = 'serial' or 'pty' or 'replay' or 'capture')",
    ]


SENSORS = """\
[node]
device_id = "pump-7"

[drivers.pm-1]
type = "sds011"
[drivers.pm-1.transport]
type = "serial"
port = "/dev/ttyUSB1"
baudrate = 9600
[drivers.pm-1.duty]
work_s = 30
warmup_s = 30
sleep_s = 240

[drivers.pm-2]
type = "pms5003"
transport = {type = "capture", path = "captures/pm-2.cap", speed = 0, loop = true}

[drivers.rain]
type = "rain_gauge"
pin = 17
mm_per_tip = 0.2
bounce_s = 0.05
pull_up = true

[drivers.river]
type = "water_level"
trigger_pin = 23
echo_pin = 24
mount_height_m = 5.0
max_distance_m = 4.0
interval_s = 10.0

[drivers.float-1]
type = "float_switch"
pin = "GPIO27"
pull_up = true
"""


def test_sensor_drivers():
    drivers = parse_config(SENSORS, "edge.toml", "/etc/ioc-edge").drivers
    assert drivers["pm-1"] == Sds011DriverConfig(
        type="sds011",
        transport=SerialTransportConfig(type="serial", port="/dev/ttyUSB1", baudrate=9600),
        duty=DutyCycleConfig(work_s=30, warmup_s=30, sleep_s=240),
    )
    assert drivers["pm-2"] == Pms5003DriverConfig(
        type="pms5003",
        transport=CaptureTransportConfig(
            type="capture", path=Path("/etc/ioc-edge/captures/pm-2.cap"), speed=0, loop=True
        ),
    )
    assert drivers["pm-2"].duty is None  # absent: the sensor runs continuously
    assert drivers["rain"] == RainGaugeDriverConfig(type="rain_gauge", pin=17)
    assert drivers["river"] == WaterLevelDriverConfig(
        type="water_level", trigger_pin=23, echo_pin=24, mount_height_m=5.0
    )
    assert drivers["float-1"] == FloatSwitchDriverConfig(type="float_switch", pin=27)  # "GPIO27" -> 27


def test_capture_transport_defaults():
    text = '[node]\ndevice_id = "a"\n[drivers.pm]\ntype = "sds011"\n'
    text += 'transport = {type = "capture", path = "x.cap"}\n'
    transport = parse_config(text, "edge.toml", "/srv").drivers["pm"].transport
    assert transport == CaptureTransportConfig(type="capture", path=Path("/srv/x.cap"), speed=1.0, loop=False)


@pytest.mark.parametrize(
    ("pin", "expected"),
    [(0, 0), (53, 53), ('"GPIO17"', 17), ('"BCM4"', 4), ('"BOARD11"', "BOARD11"), ('"J8:40"', "J8:40")],
)
def test_gpio_pin_forms(pin, expected):
    text = f'[node]\ndevice_id = "a"\n[drivers.f]\ntype = "float_switch"\npin = {pin}\n'
    assert parse_config(text, "edge.toml", "/x").drivers["f"].pin == expected


def test_sensor_driver_errors_name_field_and_line():
    text = (
        SENSORS.replace("baudrate = 9600", "baudrate = 4800")
        .replace("warmup_s = 30", "warmup_s = 601")
        .replace("sleep_s = 240", "sleep_s = -1")
        .replace("pin = 17", 'pin = "GPIO99"')
        .replace("mm_per_tip = 0.2", "mm_per_tip = 0")
        .replace("echo_pin = 24", "echo_pin = 23")
        .replace("mount_height_m = 5.0", "mount_height_m = 0.0")
        .replace("interval_s = 10.0", "interval_s = 0.01")
        .replace('pin = "GPIO27"', "pin = 27.5")
    )
    assert problems(text) == [
        "drivers.pm-1.transport (edge.toml line 6): baudrate 4800 is not the SDS011's; "
        "expected baudrate = 9600",
        "drivers.pm-1.duty.warmup_s (edge.toml line 12): 601 is too large; expected <= 600",
        "drivers.pm-1.duty.sleep_s (edge.toml line 13): -1 is too small; expected >= 0",
        "drivers.rain.pin (edge.toml line 21): 'GPIO99' is not a GPIO number; expected 0..53",
        "drivers.rain.mm_per_tip (edge.toml line 22): 0 is too small; expected > 0",
        "drivers.river.echo_pin (edge.toml line 29): 23 is also the trigger_pin; expected another pin",
        "drivers.river.mount_height_m (edge.toml line 30): 0.0 is too small; expected > 0",
        "drivers.river.interval_s (edge.toml line 32): 0.01 is too small; expected >= 0.1",
        "drivers.float-1.pin (edge.toml line 36): 27.5 is not a pin; "
        "expected a BCM number (e.g. 17) or a name like 'GPIO17'",
    ]


def test_sensor_driver_unknown_and_missing_keys():
    text = (
        SENSORS.replace("work_s = 30", "work = 30")
        .replace('pin = "GPIO27"\n', "")
        .replace("mount_height_m = 5.0\n", "")
    )
    assert problems(text) == [
        "drivers.pm-1.duty.work (edge.toml line 11): unknown key; expected one of: work_s, warmup_s, sleep_s",
        "drivers.river.mount_height_m (edge.toml line 26): missing: required (a number, e.g. 5.0)",
        "drivers.float-1.pin (edge.toml line 33): missing: required (an integer or a string, e.g. 27)",
    ]
    bad_name = SENSORS.replace("pin = 17", 'pin = "J8:41"')
    assert problems(bad_name) == [
        "drivers.rain.pin (edge.toml line 21): 'J8:41' is not a header pin; expected a physical pin 1..40"
    ]


def test_toml_syntax_error_names_line():
    text = '[node]\ndevice_id = "a"\nsite = thuan-an\n'
    assert problems(text) == ["edge.toml line 3, column 8: invalid TOML: Invalid value"]


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "edge.toml")
    assert str(caught.value) == f"{tmp_path / 'edge.toml'}: config file not found"
    assert isinstance(caught.value, IocEdgeError) and isinstance(caught.value, ValueError)


def test_load_config_resolves_against_file_dir_and_writes_nothing(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text(GOOD)
    cfg = load_config(path)
    assert cfg.store.path == tmp_path / "state" / "store.db"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["edge.toml"]


def test_example_config_validates():
    cfg = load_config(REPO / "examples" / "vessel.toml")
    transport = cfg.drivers["gps"].transport
    assert isinstance(transport, ReplayTransportConfig)
    assert transport.path == REPO.parent / "shared" / "nmea" / "ais-nmea.log"


def test_cli_config_check_ok(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text(GOOD)
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 0
    assert result.output == f"{path}: ok (device vessel-042, 1 driver)\n"


def test_cli_config_check_errors(tmp_path):
    path = tmp_path / "edge.toml"
    path.write_text(GOOD.replace("port = 8883", "port = 0").replace("baudrate = 9600", "baudrate = '4800x'"))
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "uplink.port (edge.toml line 12): 0 is too small; expected >= 1\n"
        "drivers.gps.transport.baudrate (edge.toml line 20): '4800x' is not an integer\n"
    )


def test_cli_config_check_missing_file(tmp_path):
    result = CliRunner().invoke(main, ["config", "check", str(tmp_path / "nope.toml")])
    assert result.exit_code == 1
    assert result.stderr == f"{tmp_path / 'nope.toml'}: config file not found\n"


def _commands(group: click.Group, prefix: str = "ioc-edge"):
    for name, command in group.commands.items():
        yield f"{prefix} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{prefix} {name}")


def test_every_cli_command_has_help_with_an_example():
    commands = [("ioc-edge", main), *_commands(main)]
    assert len(commands) >= 5
    for name, command in commands:
        assert command.help and "Example: ioc-edge" in command.help, f"{name} has no help with an example"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"{name} {param.opts[0]} has no help"
        result = CliRunner().invoke(main, [*name.split()[1:], "--help"])
        assert result.exit_code == 0 and "Example" in result.output


def test_an_alarm_on_a_sensor_or_quantity_that_does_not_exist_is_refused():
    base = (
        '[node]\ndevice_id = "x"\n[drivers.river]\ntype = "water_level"\ntrigger_pin = 23\necho_pin = 24\n'
        'mount_height_m = 5.0\n[alarms.flood]\nsensor = "{}"\nquantity = "{}"\nabove = 3\n'
    )
    assert problems(base.format("rivr", "water_level_m")) == [
        "(top level) (edge.toml): alarm 'flood' watches sensor 'rivr'; drivers: ['river']"
    ]
    assert problems(base.format("river", "pm25")) == [
        "(top level) (edge.toml): alarm 'flood' watches quantity 'pm25'; "
        "'river' gives ['water_level_m', 'water_rise_m_per_h']"
    ]
    rate = base.format("*", "water_rise_m_per_h").replace("above = 3", "above = 3\nwindow_s = 600")
    assert parse_config(rate, "edge.toml").alarms["flood"].window_s == 600


def test_an_unknown_time_zone_is_named_with_an_example_in_node_and_centre_configs(tmp_path):
    from ioc.web.settings import WebSettingsError, parse_web_settings

    text = '[node]\ndevice_id = "c"\n[drivers.s]\ntype = "camera"\nsource = "x.mp4"\nmodel = "m.onnx"\n'
    with pytest.raises(ConfigError) as node_error:
        parse_config(text + 'timezone = "Asia/Hue"\n', "edge.toml", tmp_path)
    with pytest.raises(WebSettingsError) as centre_error:
        parse_web_settings('timezone = "Asia/Hue"\n', "web.toml")

    expected = "'Asia/Hue' is not a known time zone; expected e.g. 'Asia/Ho_Chi_Minh'"
    assert str(node_error.value) == f"drivers.s.timezone (edge.toml line 7): {expected}"
    assert str(centre_error.value) == f"timezone (web.toml line 1): {expected}"
