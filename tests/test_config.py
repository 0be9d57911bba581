"""The node config: valid files, and errors that name key, line, value and expectation."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.config import (
    ConfigError,
    NmeaDriverConfig,
    ReplayTransportConfig,
    SerialTransportConfig,
    load_config,
    parse_config,
)
from edge.errors import IocEdgeError

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
        "node.sight (edge.toml line 3): unknown key; expected one of: device_id, site, state_dir",
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
        "drivers.b.type (edge.toml line 7): 'sds' is not a known type; expected one of: 'nmea'",
        "drivers.c.transport.type (edge.toml line 10): 'usb' is not a known type; "
        "expected one of: 'serial', 'pty', 'replay'",
        "drivers.d.transport.speed (edge.toml line 15): -1 is too small; expected >= 0",
    ]


def test_missing_transport():
    text = '[node]\ndevice_id = "a"\n\n[drivers.gps]\ntype = "nmea"\n'
    assert problems(text) == [
        "drivers.gps.transport (edge.toml line 4): missing: required "
        "(a table with type = 'serial' or 'pty' or 'replay')",
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
