"""Both command lines: every command documented, and a broken config refused at start without a traceback."""

from __future__ import annotations

import subprocess
import sys

import click
from click.testing import CliRunner

from ioc.cli import main as center
from sync.wire import STREAMS


def test_every_ioc_center_command_has_help_with_an_example():
    assert set(center.commands) >= {"run", "dump", "rejects", "demo"}
    for name, command in center.commands.items():
        assert command.help and "Example: ioc-center" in command.help, f"{name} has no example"
        for param in command.params:
            if isinstance(param, click.Option):
                assert param.help, f"ioc-center {name} {param.opts[0]} has no help"
        result = CliRunner().invoke(center, [name, "--help"])
        assert result.exit_code == 0 and "Example" in result.output


def test_run_refuses_a_broken_config_with_the_field_and_line(tmp_path):
    config = tmp_path / "edge.toml"
    config.write_text('[node]\ndevice_id = "vessel-1"\n\n[uplink]\nport = "1883x"\n')
    result = subprocess.run(
        [sys.executable, "-m", "edge", "run", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "uplink.port (edge.toml line 5): '1883x' is not an integer"
    assert "Traceback" not in result.stderr


def test_dump_of_an_unknown_stream_is_a_clean_error(tmp_path):
    result = CliRunner().invoke(center, ["dump", "boats", "--db", f"sqlite:///{tmp_path / 'ioc.db'}"])
    assert result.exit_code == 1
    expected = f"unknown stream 'boats': expected one of {sorted(STREAMS)}"
    assert expected in result.output
