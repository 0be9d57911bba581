"""One registry entry per device type: the config, the runtime, the self-test and ``decode`` read
``edge.devices.DEVICE_TYPES`` and name no device type themselves, so a new type is one module and one
registry line."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal, get_args

import pytest
from click.testing import CliRunner
from pydantic import Field

from common.clock import Clock
from common.config import Section
from edge import devices
from edge.cli import main
from edge.config import NodeConfig, parse_config
from edge.config_schema import node_config_schema
from edge.devices import DEVICE_TYPES
from edge.devices.base import PASS, BuildContext, CheckContext, CheckResult, DeviceType
from edge.devices.transport import PtyTransportConfig, TransportConfig
from edge.health import Watched
from edge.runtime import Node

ROOT = Path(__file__).resolve().parent.parent
READERS = ("edge/config.py", "edge/runtime.py", "edge/selftest.py", "edge/cli.py", "edge/health.py")
"""The node's modules that read the registry."""


def test_each_entry_is_the_model_of_its_type_and_the_config_union_is_the_registry():
    drivers = NodeConfig.model_fields["drivers"].annotation  # dict[name, Annotated[Union[...], ...]]
    members = get_args(get_args(get_args(drivers)[1])[0])
    assert set(members) == {device.config for device in DEVICE_TYPES.values()}
    assert all(device.name == name for name, device in DEVICE_TYPES.items())
    schema = node_config_schema()["$defs"]
    assert {device.config.__name__ for device in DEVICE_TYPES.values()} <= set(schema)


@pytest.mark.parametrize("module", READERS)
def test_the_readers_of_the_registry_name_no_device_type(module: str):
    tree = ast.parse((ROOT / module).read_text())
    named = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in DEVICE_TYPES
    }
    assert named == set(), f"{module} names device types; their entries in edge/devices should say it"


def test_every_decoder_is_a_decode_command():
    result = CliRunner().invoke(main, ["decode", "--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == {name for name, d in DEVICE_TYPES.items() if d.decoder is not None}


class EchoConfig(Section):
    """A device type made up by this test: the bytes of its transport, as they come."""

    type: Literal["echo"] = Field(description="Driver kind.")
    transport: TransportConfig = Field(description="Where its bytes come from.")


def test_a_new_device_type_is_one_entry_that_the_runtime_and_the_selftest_use(tmp_path, monkeypatch):
    built: list[tuple[str, str]] = []

    def build(name: str, cfg: EchoConfig, ctx: BuildContext) -> Watched:
        from drivers.base import Driver

        class Echo(Driver):
            stream = "reading"

            def feed(self, data: bytes) -> list:
                return []

        built.append((name, cfg.transport.type))
        transport = ctx.transport(name, cfg.transport)
        return Watched(Echo(name, transport, ctx.sink, ctx.clock), cfg.type, 0.0)

    def check(name: str, cfg: EchoConfig, ctx: CheckContext) -> list[CheckResult]:
        return [CheckResult(f"echo {name}", PASS, "made up")]

    echo = DeviceType(EchoConfig, build, check, check_stage=1)
    monkeypatch.setitem(devices.DEVICE_TYPES, "echo", echo)
    base = parse_config(f'[node]\ndevice_id = "n"\nstate_dir = "{tmp_path}"\n[uplink]\nenabled = false\n')
    # The config's union was made from the registry at import: the made-up type joins it here by hand.
    echo_cfg = EchoConfig(type="echo", transport=PtyTransportConfig(type="pty", path="/x"))
    config = base.model_copy(update={"drivers": {"e": echo_cfg}})
    node = Node(config, Clock())
    node.init_drivers()
    assert built == [("e", "pty")]
    assert [w.type for w in node.watched] == ["echo"]
    assert len(node._opened) == 1, "the node opened the transport, and will close it"
    ctx = CheckContext(Clock(), 0.1)
    assert echo.check("e", config.drivers["e"], ctx)[0].line() == "PASS  echo e: made up"
