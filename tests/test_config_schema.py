"""``ioc-edge config schema``: every config the repository ships or writes is valid under the JSON Schema
an editor reads, and a bad key is flagged at its own path.

The schema is checked as an editor checks it: under its own dialect (2020-12) and under draft 7, which
the taplo language server (Even Better TOML) assumes.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator, Draft202012Validator, ValidationError
from jsonschema.protocols import Validator

from edge.cli import main
from edge.config_schema import DIALECT
from ioc.demo_field import camera_config, environment_config, vessel_config
from tests.helpers import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
DEMO = {
    # As ioc/demo.py and ioc/demo_field.py write them (the shared files' paths, a broker's port).
    "demo vessel": vessel_config(Path("/srv/shared/nmea/ais-nmea.log"), 18830, 1.0, berth=True),
    "demo camera": camera_config(Path("/srv/shared/media/bikes.mp4"), Path("/srv/models/yolox.onnx"), 18830),
    "demo environment": environment_config("/dev/pts/7", "/dev/pts/8", 18830),
}
VALIDATORS = (Draft202012Validator, Draft7Validator)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """The schema exactly as a technician gets it: ``ioc-edge config schema``'s output."""
    return json.loads(cli(main, ["config", "schema"]))


def bad_keys(validator: Validator, doc: dict[str, Any]) -> list[tuple[str, str]]:
    """``(JSON path of the bad key, the schema keyword it breaks)`` for each problem in ``doc``.

    An unknown or missing key is named by its own path (jsonschema reports the table holding it). A
    driver or transport is looked for in the branch its ``type`` names, as an editor's hover shows it:
    the other branches only say that their ``type`` is another.
    """
    return sorted({found for error in validator.iter_errors(doc) for found in _located(error)})


def _located(error: ValidationError) -> list[tuple[str, str]]:
    if error.validator == "additionalProperties":
        known = set(error.schema.get("properties", {}))
        return [
            (f"{error.json_path}.{key}", "additionalProperties") for key in error.instance if key not in known
        ]
    if error.validator == "required":
        return [
            (f"{error.json_path}.{key}", "required")
            for key in error.validator_value
            if key not in error.instance
        ]
    if error.validator == "oneOf" and "type" in error.instance:
        branches: dict[int, list[ValidationError]] = {}
        for sub in error.context or []:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        named = [errs for errs in branches.values() if not any(_other_type(e) for e in errs)]
        if len(named) == 1:
            return [found for sub in named[0] for found in _located(sub)]
        if not named:
            return [(f"{error.json_path}.type", "const")]
    return [(error.json_path, str(error.validator))]


def _other_type(sub: ValidationError) -> bool:
    """Whether ``sub`` says the branch is for another ``type`` than the table's."""
    return sub.validator == "const" and list(sub.relative_path) == ["type"]


def test_the_schema_is_a_valid_json_schema_in_its_dialect_and_draft_7(schema):
    assert schema["$schema"] == DIALECT
    for validator in VALIDATORS:
        validator.check_schema(schema)
    assert schema["required"] == ["node"]
    assert schema["additionalProperties"] is False
    # What an editor completes: descriptions, defaults, bounds, enums and the driver types.
    port = schema["$defs"]["UplinkConfig"]["properties"]["port"]
    assert (port["default"], port["minimum"], port["maximum"]) == (1883, 1, 65535)
    assert port["description"] == "MQTT broker TCP port."
    assert schema["$defs"]["StoreConfig"]["properties"]["synchronous"]["enum"] == ["full", "normal"]
    drivers = schema["properties"]["drivers"]["patternProperties"]["^[a-z0-9_-]{1,32}$"]
    assert set(drivers["discriminator"]["mapping"]) >= {"nmea", "sds011", "pms5003", "camera", "rain_gauge"}


@pytest.mark.parametrize(
    "text", [*(p.read_text() for p in EXAMPLES), *DEMO.values()], ids=[*(p.name for p in EXAMPLES), *DEMO]
)
def test_every_example_and_demo_config_is_valid_under_the_schema(schema, text):
    assert EXAMPLES, "no examples/*.toml found"
    doc = tomllib.loads(text)
    for validator in VALIDATORS:
        assert bad_keys(validator(schema), doc) == []


VESSEL = (ROOT / "examples" / "vessel.toml").read_text()


TRANSPORT = "$.drivers.gps.transport"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "keepalive_s = 30",
            "keepalive_s = 30\nkeep_alive = 30",
            [("$.uplink.keep_alive", "additionalProperties")],
        ),
        ("port = 1883", 'port = "1883x"', [("$.uplink.port", "type")]),
        ("port = 1883", "port = 70000", [("$.uplink.port", "maximum")]),
        ('synchronous = "full"', 'synchronous = "sometimes"', [("$.store.synchronous", "enum")]),
        ('device_id = "vessel-042"', 'device_id = "Vessel 42"', [("$.node.device_id", "pattern")]),
        (
            'device_id = "vessel-042"',
            'devise_id = "vessel-042"',
            [("$.node.device_id", "required"), ("$.node.devise_id", "additionalProperties")],
        ),
        ("[uplink]", "[uplnk]", [("$.uplnk", "additionalProperties")]),
        # Inside the unions on `type`, drivers' and transports':
        (
            'type = "nmea"',
            'type = "nmea"\nais_per_second = 5',
            [("$.drivers.gps.ais_per_second", "additionalProperties")],
        ),
        ('type = "nmea"', 'type = "gps"', [("$.drivers.gps.type", "const")]),
        ("loop = true", 'loop = "yes"', [(f"{TRANSPORT}.loop", "type")]),
        ("speed = 1.0 ", "speed = -1.0 ", [(f"{TRANSPORT}.speed", "minimum")]),
        ("baudrate = 4800", "baudrate = 4801", [(f"{TRANSPORT}.baudrate", "enum")]),
        (
            'type = "replay"',
            'type = "serial"\nport = "/dev/ttyS0"\nparity = "X"\nbytesize = 9',
            [
                (f"{TRANSPORT}.bytesize", "enum"),
                (f"{TRANSPORT}.loop", "additionalProperties"),
                (f"{TRANSPORT}.parity", "enum"),
                (f"{TRANSPORT}.path", "additionalProperties"),
                (f"{TRANSPORT}.speed", "additionalProperties"),
            ],
        ),
    ],
    ids=[
        "unknown key",
        "wrong type",
        "above bound",
        "bad enum",
        "bad pattern",
        "misspelt required key",
        "unknown section",
        "unknown driver key",
        "unknown driver type",
        "wrong type in a transport",
        "below bound in a transport",
        "not a standard baud rate",
        "another transport's keys and enums",
    ],
)
def test_an_invalid_config_fails_with_the_path_of_the_bad_key(schema, old, new, expected):
    assert old in VESSEL
    doc = tomllib.loads(VESSEL.replace(old, new, 1))
    assert bad_keys(Draft202012Validator(schema), doc) == expected


def test_the_schema_directive_of_the_help_leaves_the_config_valid(tmp_path):
    """The first line the help suggests for editors is a TOML comment: the node reads the file as before."""
    config = tmp_path / "edge.toml"
    config.write_text('#:schema ./edge.schema.json\n[node]\ndevice_id = "vessel-042"\nstate_dir = "state"\n')
    assert cli(main, ["config", "check", str(config)]) == f"{config}: ok (device vessel-042, 0 drivers)\n"
    help_text = " ".join(cli(main, ["config", "schema", "--help"]).split())  # as one line: click wraps it
    assert "name it in the config's first line, `#:schema ./edge.schema.json`" in help_text
