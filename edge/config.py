"""The node's configuration: one TOML file, validated by pydantic models.

Every model forbids unknown keys and every field states its bounds, so a typo is an error
at startup rather than a silently ignored setting. Errors name the dotted key, the file and
line, the value and what was expected, one problem a line::

    drivers.gps.transport.baudrate (edge.toml line 14): '4800x' is not an integer
    node.device_id (edge.toml line 2): missing: required (a string, e.g. 'vessel-042')

A complete file (only ``[node]`` and ``node.device_id`` are required)::

    [node]
    device_id = "vessel-042"      # MQTT client id and topic segment
    site = "thuan-an"
    state_dir = "state"           # relative paths are resolved against this file's directory

    [store]
    path = "store.db"             # relative to state_dir
    max_bytes = 268435456
    flush_interval_s = 1.0
    flush_records = 1000
    synchronous = "full"
    status_interval_s = 60

    [uplink]
    host = "127.0.0.1"
    port = 1883
    keepalive_s = 30
    topic_prefix = "ioc/v1"
    batch_records = 5000
    max_inflight = 8
    ack_timeout_s = 20
    backoff_min_s = 0.5
    backoff_max_s = 60
    compression = "zstd"
    enabled = true

    [drivers.gps]
    type = "nmea"

    [drivers.gps.transport]
    type = "serial"               # or "pty" (path = ...) or "replay" (path, speed, baudrate, loop)
    port = "/dev/ttyUSB0"
    baudrate = 4800

Use :func:`load_config` for a file and :func:`parse_config` for text (tests); both raise
:class:`ConfigError` and never write anything.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
import types
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from common.errors import IocEdgeError
from common.fields import TimeZoneName
from common.tomllines import KeyLines, toml_syntax_problem

__all__ = [
    "CaptureTransportConfig",
    "ConfigError",
    "DriverConfig",
    "DutyCycleConfig",
    "FloatSwitchDriverConfig",
    "GeofenceConfig",
    "LinkConfig",
    "LinkProfileConfig",
    "MetricsConfig",
    "NmeaDriverConfig",
    "NodeConfig",
    "NodeSection",
    "Pms5003DriverConfig",
    "PtyTransportConfig",
    "RainGaugeDriverConfig",
    "ReplayTransportConfig",
    "SerialTransportConfig",
    "Sds011DriverConfig",
    "StoreConfig",
    "TransportConfig",
    "TrackConfig",
    "UplinkConfig",
    "UplinkTlsConfig",
    "WatchdogConfig",
    "WaterLevelDriverConfig",
    "load_config",
    "parse_config",
]

STANDARD_BAUDRATES = (
    110, 300, 600, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600,
)  # fmt: skip


class ConfigError(IocEdgeError, ValueError):
    """The configuration is unreadable or invalid; ``problems`` holds one message per problem.

    ``str(error)`` is the problems joined by newlines, ready to print.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def _check_baudrate(value: int) -> int:
    if value not in STANDARD_BAUDRATES:
        rates = ", ".join(map(str, STANDARD_BAUDRATES))
        raise ValueError(f"{value} is not a standard baud rate; expected one of: {rates}")
    return value


# The enum is for the JSON Schema (`ioc-edge config schema`): editors offer the standard rates.
Baudrate = Annotated[
    int, AfterValidator(_check_baudrate), Field(json_schema_extra={"enum": list(STANDARD_BAUDRATES)})
]


def _against_base_dir(path: Path, info: ValidationInfo) -> Path:
    """Resolve a relative path against the config file's directory (passed as context)."""
    base = (info.context or {}).get("base_dir")
    if base is None or path.is_absolute():
        return path
    return Path(os.path.normpath(Path(base) / path))


class _Section(BaseModel):
    # strict: TOML has real types, so "4800" (a string) for an integer is a mistake to report,
    # not something to coerce silently.
    model_config = ConfigDict(extra="forbid", strict=True)


class NodeSection(_Section):
    """``[node]``: who this node is and where it keeps its state."""

    device_id: str = Field(
        description="The node's id: its MQTT client id and a segment of its MQTT topics.",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        examples=["vessel-042"],
    )
    site: str = Field("", description="Where the node is installed (free text).", max_length=128)
    state_dir: Path = Field(
        Path("/var/lib/ioc-edge"),
        description="Directory of the node's state (the store); relative to the config file.",
        strict=False,
    )

    @field_validator("state_dir")
    @classmethod
    def _resolve_state_dir(cls, value: Path, info: ValidationInfo) -> Path:
        return _against_base_dir(value, info)


class StoreConfig(_Section):
    """``[store]``: the on-node SQLite store."""

    path: Path = Field(
        Path("store.db"), description="The SQLite file; relative to node.state_dir.", strict=False
    )
    max_bytes: int = Field(
        256 * 1024 * 1024,
        description="Size cap of the store in bytes; retention drops the oldest records beyond it.",
        ge=1024 * 1024,
    )
    flush_interval_s: float = Field(
        1.0, description="Longest time a record waits in memory before it is written.", gt=0, le=60
    )
    flush_records: int = Field(
        1000, description="Write as soon as this many records are waiting.", ge=1, le=1_000_000
    )
    synchronous: Literal["full", "normal"] = Field(
        "full", description="SQLite synchronous mode: 'full' survives power loss, 'normal' is faster."
    )
    status_interval_s: float = Field(
        60, description="How often the node records its own status.", ge=1, le=3600
    )


class UplinkTlsConfig(_Section):
    """``[uplink.tls]``: mutual TLS to the IOC's broker (``ioc-edge provision`` writes the files).

    Paths are relative to the config file. The node presents ``cert`` (its certificate, then its
    signer's) with ``key``, and accepts only a broker whose certificate chains to ``ca``.
    """

    ca: Path = Field(
        Path("tls/ca.crt"),
        description="The IOC's CA certificate, which the broker's must chain to.",
        strict=False,
        validate_default=True,
    )
    cert: Path = Field(
        Path("tls/node.crt"),
        description="The node's certificate chain (its own first).",
        strict=False,
        validate_default=True,
    )
    key: Path = Field(
        Path("tls/node.key"),
        description="The node's private key (mode 0600; it never leaves the node).",
        strict=False,
        validate_default=True,
    )

    @field_validator("ca", "cert", "key")
    @classmethod
    def _resolve_paths(cls, value: Path, info: ValidationInfo) -> Path:
        return _against_base_dir(value, info)


class UplinkConfig(_Section):
    """``[uplink]``: the MQTT connection to the operations centre."""

    host: str = Field("127.0.0.1", description="MQTT broker host name or address.", min_length=1)
    port: int = Field(1883, description="MQTT broker TCP port.", ge=1, le=65535)
    keepalive_s: int = Field(30, description="MQTT keepalive interval.", ge=5, le=3600)
    topic_prefix: str = Field(
        "ioc/v1",
        description="Prefix of every topic the node publishes to (no MQTT wildcards).",
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
    )
    batch_records: int = Field(5000, description="Most records in one message.", ge=1, le=100_000)
    max_inflight: int = Field(8, description="Most unacknowledged messages at once.", ge=1, le=64)
    ack_timeout_s: float = Field(
        20, description="Resend a message not acknowledged within this time.", ge=1, le=3600
    )
    backoff_min_s: float = Field(0.5, description="First reconnect delay.", gt=0, le=3600)
    backoff_max_s: float = Field(60, description="Longest reconnect delay (>= backoff_min_s).", gt=0, le=3600)
    compression: Literal["zstd", "zlib"] = Field("zstd", description="Compression of message bodies.")
    enabled: bool = Field(True, description="Whether the node uploads at all.")
    send_raw: bool = Field(
        False,
        description="Also upload every raw sensor reading, not only their summaries (costly on thin links).",
    )
    tls: UplinkTlsConfig | None = Field(
        None, description="Mutual TLS to the broker; absent, plain MQTT (a test bench, never the field)."
    )

    @field_validator("backoff_max_s")
    @classmethod
    def _max_not_below_min(cls, value: float, info: ValidationInfo) -> float:
        low = info.data.get("backoff_min_s")
        if low is not None and value < low:
            raise ValueError(f"{value} is below backoff_min_s ({low}); expected >= {low}")
        return value


class SerialTransportConfig(_Section):
    """A serial port (USB or UART) read with pyserial."""

    type: Literal["serial"] = Field(description="Transport kind.")
    port: str = Field(description="Device path of the port.", min_length=1, examples=["/dev/ttyUSB0"])
    baudrate: Baudrate = Field(4800, description="Line speed in bits per second (a standard rate).")
    bytesize: Literal[5, 6, 7, 8] = Field(8, description="Data bits per character.")
    parity: Literal["N", "E", "O"] = Field("N", description="Parity: none, even or odd.")
    stopbits: Literal[1, 2] = Field(1, description="Stop bits.")


class PtyTransportConfig(_Section):
    """A pseudo-terminal slave (a simulator or ``socat`` on the other side)."""

    type: Literal["pty"] = Field(description="Transport kind.")
    path: str = Field(description="Path of the pty slave.", min_length=1, examples=["/dev/pts/3"])


class ReplayTransportConfig(_Section):
    """A capture file replayed at the pace of a serial line."""

    type: Literal["replay"] = Field(description="Transport kind.")
    path: Path = Field(
        description="The capture file; relative to the config file.",
        strict=False,
        examples=["captures/gps.log"],
    )
    speed: float = Field(
        1.0, description="Replay speed factor; 0 replays as fast as possible.", ge=0, le=10_000
    )
    baudrate: Baudrate = Field(4800, description="Line speed to imitate: baudrate/10 bytes per second.")
    loop: bool = Field(False, description="Start over at the end of the file instead of stopping.")

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, value: Path, info: ValidationInfo) -> Path:
        return _against_base_dir(value, info)


class CaptureTransportConfig(_Section):
    """A capture recorded by ``ioc-edge record``, replayed with its recorded timing."""

    type: Literal["capture"] = Field(description="Transport kind.")
    path: Path = Field(
        description="The capture file; relative to the config file.",
        strict=False,
        examples=["captures/pm-1.cap"],
    )
    speed: float = Field(
        1.0, description="Replay speed factor; 0 replays as fast as possible.", ge=0, le=10_000
    )
    loop: bool = Field(False, description="Start over at the end of the file instead of stopping.")

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, value: Path, info: ValidationInfo) -> Path:
        return _against_base_dir(value, info)


TransportConfig = Annotated[
    Union[SerialTransportConfig, PtyTransportConfig, ReplayTransportConfig, CaptureTransportConfig],  # noqa: UP007
    Field(discriminator="type"),
]


class NmeaDriverConfig(_Section):
    """An NMEA 0183 GPS receiver."""

    type: Literal["nmea"] = Field(description="Driver kind.")
    transport: TransportConfig = Field(description="Where the receiver's bytes come from.")
    ais_per_s: float = Field(
        20,
        description="Most AIS sentences (!AIVDM) a second passed on to the IOC; the rest counted; 0: none.",
        ge=0,
        le=1000,
    )


class DutyCycleConfig(_Section):
    """``[drivers.NAME.duty]`` of a particulate sensor: sleep between work periods to save the laser.

    Each cycle: wake the sensor, discard ``warmup_s`` of readings (the fan and laser settle),
    keep ``work_s`` of readings, then put it to sleep for ``sleep_s``.
    """

    work_s: float = Field(30, description="Readings kept per cycle, once warmed up (seconds).", ge=1, le=3600)
    warmup_s: float = Field(
        30, description="Readings discarded after waking while fan and laser settle (seconds).", ge=0, le=600
    )
    sleep_s: float = Field(
        240, description="Laser and fan off between work periods (seconds).", ge=0, le=86_400
    )


def _check_uart_baudrate(sensor: str, baudrate: int) -> Callable[[TransportConfig], TransportConfig]:
    def check(value: TransportConfig) -> TransportConfig:
        if isinstance(value, SerialTransportConfig) and value.baudrate != baudrate:
            raise ValueError(
                f"baudrate {value.baudrate} is not the {sensor}'s; expected baudrate = {baudrate}"
            )
        return value

    return check


class Sds011DriverConfig(_Section):
    """A Nova Fitness SDS011 particulate sensor (UART, 9600 8N1): PM2.5 and PM10."""

    type: Literal["sds011"] = Field(description="Driver kind.")
    transport: Annotated[TransportConfig, AfterValidator(_check_uart_baudrate("SDS011", 9600))] = Field(
        description="Where the sensor's bytes come from (a serial port at 9600 baud)."
    )
    duty: DutyCycleConfig | None = Field(
        None, description="Duty cycle; absent, the sensor runs continuously."
    )


class Pms5003DriverConfig(_Section):
    """A Plantower PMS5003 / PMS7003 particulate sensor (UART, 9600 8N1): PM1, PM2.5 and PM10."""

    type: Literal["pms5003"] = Field(description="Driver kind.")
    transport: Annotated[TransportConfig, AfterValidator(_check_uart_baudrate("PMS5003", 9600))] = Field(
        description="Where the sensor's bytes come from (a serial port at 9600 baud)."
    )
    duty: DutyCycleConfig | None = Field(
        None, description="Duty cycle; absent, the sensor runs continuously."
    )


BCM_PINS = 54
"""GPIO numbers of the Raspberry Pi's SoC (BCM numbering): 0..53."""

_PIN_NAME = re.compile(r"^(?:(GPIO|BCM)(\d{1,2})|(?:BOARD|J8:|P1:)(\d{1,2}))$")


def _check_pin(value: Any) -> int | str:
    """A BCM number (``17``, ``"GPIO17"``, ``"BCM17"`` -> 17) or a header pin (``"BOARD11"``, ``"J8:11"``)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"{value!r} is not a pin; expected a BCM number (e.g. 17) or a name like 'GPIO17'")
    if isinstance(value, str):
        found = _PIN_NAME.match(value)
        if not found:
            raise ValueError(
                f"{value!r} is not a pin name; expected e.g. 'GPIO17', 'BCM17', 'BOARD11' or 'J8:11'"
            )
        if found.group(3) is not None:
            if not 1 <= int(found.group(3)) <= 40:
                raise ValueError(f"{value!r} is not a header pin; expected a physical pin 1..40")
            return value  # physical numbering: gpiozero maps it to the GPIO
        number = int(found.group(2))
    else:
        number = value
    if not 0 <= number < BCM_PINS:
        raise ValueError(f"{value!r} is not a GPIO number; expected 0..{BCM_PINS - 1}")
    return number


Pin = Annotated[int | str, BeforeValidator(_check_pin)]


class RainGaugeDriverConfig(_Section):
    """A tipping-bucket rain gauge: a reed switch on a GPIO pin closes once per tip."""

    type: Literal["rain_gauge"] = Field(description="Driver kind.")
    pin: Pin = Field(description="GPIO of the switch: BCM number or a name like 'GPIO17'.", examples=[17])
    mm_per_tip: float = Field(0.2, description="Rain per tip of the bucket (millimetres).", gt=0, le=10)
    bounce_s: float = Field(0.05, description="Debounce time of the switch (seconds).", ge=0, le=1)
    pull_up: bool = Field(True, description="Internal pull-up (switch to ground) rather than pull-down.")


class WaterLevelDriverConfig(_Section):
    """An ultrasonic distance sensor (HC-SR04 style) pointing down at the water: the water level."""

    type: Literal["water_level"] = Field(description="Driver kind.")
    trigger_pin: Pin = Field(description="GPIO of the trigger input: BCM number or name.", examples=[23])
    echo_pin: Pin = Field(description="GPIO of the echo output: BCM number or name.", examples=[24])
    mount_height_m: float = Field(
        description="Height of the sensor above the gauge's zero (metres).", gt=0, le=50, examples=[5.0]
    )
    max_distance_m: float = Field(4.0, description="Farthest echo measured (metres).", gt=0, le=10)
    interval_s: float = Field(10.0, description="One level reading per interval (seconds).", ge=0.1, le=3600)

    @field_validator("echo_pin")
    @classmethod
    def _distinct_pins(cls, value: int | str, info: ValidationInfo) -> int | str:
        if value == info.data.get("trigger_pin"):
            raise ValueError(f"{value!r} is also the trigger_pin; expected another pin")
        return value


class FloatSwitchDriverConfig(_Section):
    """A float switch on a GPIO pin: water above or below its level."""

    type: Literal["float_switch"] = Field(description="Driver kind.")
    pin: Pin = Field(description="GPIO of the switch: BCM number or a name like 'GPIO27'.", examples=[27])
    pull_up: bool = Field(True, description="Internal pull-up (switch to ground) rather than pull-down.")


Point = Annotated[tuple[float, float], Strict(False)]
"""[x, y] in frame pixels (TOML has arrays, not tuples: hence not strict)."""


class CountingLineConfig(_Section):
    """``[[drivers.NAME.lines]]``: a counting line from ``a`` to ``b`` in frame pixels."""

    name: str = Field(description="Name of the line in counts and events.", pattern=r"^[a-z0-9_-]{1,32}$")
    a: Point = Field(description="One end [x, y], pixels.", examples=[[0, 200]], strict=False)
    b: Point = Field(description="The other end [x, y], pixels.", examples=[[640, 200]], strict=False)
    in_name: str = Field(
        "in", description="Name of the direction counted as 'in'.", min_length=1, max_length=32
    )
    out_name: str = Field("out", description="Name of the other direction.", min_length=1, max_length=32)
    margin_px: float = Field(
        4.0, description="How far past the line an object must go to count.", ge=0, le=200
    )


class ZoneConfig(_Section):
    """``[[drivers.NAME.zones]]``: a polygon in frame pixels."""

    name: str = Field(description="Name of the zone in events.", pattern=r"^[a-z0-9_-]{1,32}$")
    polygon: list[Point] = Field(
        description="Corners [[x, y], ...], pixels.", min_length=3, max_length=64, strict=False
    )


class CameraEventConfig(_Section):
    """``[[drivers.NAME.events]]``: a rule that raises an event with a snapshot.

    ``zone_enter``: an object of ``groups`` enters ``zone``; ``line_cross``: one
    crosses ``line`` (in ``direction``, if set); ``count_above``: more than
    ``threshold`` of ``groups`` crossed ``line`` in one counting interval. ``hours``
    limits the rule to local hours [from, to) (``[18, 6]`` is the night).
    """

    name: str = Field(description="Name of the rule in events.", pattern=r"^[a-z0-9_-]{1,32}$")
    kind: Literal["zone_enter", "line_cross", "count_above"] = Field(description="What the rule watches.")
    groups: list[str] = Field(default_factory=list, description="Class groups it applies to; empty: all.")
    zone: str | None = Field(None, description="Zone of a zone_enter rule.")
    line: str | None = Field(None, description="Line of a line_cross or count_above rule.")
    direction: str | None = Field(None, description="Only crossings in this direction (line_cross).")
    threshold: int = Field(0, description="count_above: more than this many in an interval.", ge=0)
    hours: tuple[int, int] | None = Field(
        None, description="Local hours [from, to) when the rule applies.", strict=False
    )
    cooldown_s: float = Field(60.0, description="Least time between two events of the rule.", ge=0, le=86_400)

    @model_validator(mode="after")
    def _needs_its_target(self) -> CameraEventConfig:
        if self.kind == "zone_enter" and not self.zone:
            raise ValueError("a zone_enter rule needs 'zone'")
        if self.kind != "zone_enter" and not self.line:
            raise ValueError(f"a {self.kind} rule needs 'line'")
        if self.hours and not all(0 <= h <= 24 for h in self.hours):
            raise ValueError(f"hours {list(self.hours)} must be within 0..24")
        return self


class CameraDriverConfig(_Section):
    """A camera with on-node detection, tracking, counting and events."""

    type: Literal["camera"] = Field(description="Driver kind.")
    source: str = Field(
        description="Video file (relative to this file), rtsp:// or http:// URL, or a device index like '0'.",
        min_length=1,
    )
    fps: float | None = Field(None, description="Most frames a second processed (None: all).", gt=0, le=120)
    loop: bool = Field(False, description="Start a video file over at its end.")
    model: Path = Field(description="ONNX detector of the YOLOX family; relative to this file.", strict=False)
    labels: Path | None = Field(
        None,
        description="Class names, one a line (default: the model's name with .labels.txt).",
        strict=False,
    )
    threads: int = Field(2, description="CPU threads for inference.", ge=1, le=16)
    optimization: Literal["disable", "basic", "extended", "all"] = Field(
        "all", description="onnxruntime graph optimisation level."
    )
    score_threshold: float = Field(0.35, description="Least detection score kept.", gt=0, lt=1)
    motion_gate: bool = Field(True, description="Skip inference on frames where nothing moved.")
    interval_s: int = Field(60, description="Counting interval.", ge=1, le=86_400)
    groups: dict[str, list[str]] | None = Field(
        None, description="Class groups (default: vehicles, people, boats) by model label."
    )
    lines: list[CountingLineConfig] = Field(
        default_factory=list, description="Counting lines.", max_length=16
    )
    zones: list[ZoneConfig] = Field(default_factory=list, description="Zones.", max_length=16)
    events: list[CameraEventConfig] = Field(default_factory=list, description="Event rules.", max_length=32)
    blur_people: bool = Field(True, description="Blur people in snapshots (privacy).")
    snapshot_max_bytes: int = Field(30_000, description="Largest snapshot JPEG.", ge=4_000, le=500_000)
    timezone: TimeZoneName = Field("Asia/Ho_Chi_Minh", description="Time zone of the rules' hours.")

    @field_validator("model", "labels")
    @classmethod
    def _resolve_model(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _against_base_dir(value, info)

    @field_validator("source")
    @classmethod
    def _resolve_source(cls, value: str, info: ValidationInfo) -> str:
        if value.isdigit() or "://" in value:
            return value
        return str(_against_base_dir(Path(value), info))

    @model_validator(mode="after")
    def _rules_name_known_lines_and_zones(self) -> CameraDriverConfig:
        lines, zones = {x.name for x in self.lines}, {z.name for z in self.zones}
        for rule in self.events:
            if rule.line and rule.line not in lines:
                raise ValueError(
                    f"event {rule.name!r} names line {rule.line!r}; expected one of {sorted(lines)}"
                )
            if rule.zone and rule.zone not in zones:
                raise ValueError(
                    f"event {rule.name!r} names zone {rule.zone!r}; expected one of {sorted(zones)}"
                )
        return self


DriverConfig = Annotated[
    Union[  # noqa: UP007
        NmeaDriverConfig,
        CameraDriverConfig,
        Sds011DriverConfig,
        Pms5003DriverConfig,
        RainGaugeDriverConfig,
        WaterLevelDriverConfig,
        FloatSwitchDriverConfig,
    ],
    Field(discriminator="type"),
]

DriverName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")]


class SummariesConfig(_Section):
    """``[summaries]``: what the node makes of raw sensor readings before it syncs them."""

    interval_s: int = Field(60, description="Length of one summary interval.", ge=1, le=86_400)
    trim: float = Field(
        0.1, description="Fraction of readings left out at each end for the trimmed mean.", ge=0, lt=0.5
    )
    keep_raw_s: float = Field(
        7 * 86_400, description="How long raw readings stay in the node's store.", ge=60, le=366 * 86_400
    )


QUANTITIES = {
    "sds011": ("pm25", "pm10"),
    "pms5003": ("pm1", "pm25", "pm10"),
    "rain_gauge": ("rain_mm", "rain_mm_per_h"),
    "water_level": ("water_level_m", "water_rise_m_per_h"),
    "float_switch": ("float_high",),
}
"""What each sensor driver reports (and the rates alarms may compute from it)."""


class AlarmRuleConfig(_Section):
    """``[alarms.NAME]``: one threshold with hysteresis, raised and cleared on the node itself.

    Exactly one of ``above`` and ``below``. ``quantity`` is a reading's
    (``pm25``, ``pm10``, ``water_level_m``, ``rain_mm`` ...) or a rate computed
    over ``window_s``: ``rain_mm_per_h``, ``water_rise_m_per_h``.
    """

    sensor: str = Field("*", description="Driver name whose readings are watched; '*' for every one.")
    quantity: str = Field(description="The quantity watched.", min_length=1, examples=["water_level_m"])
    above: float | None = Field(None, description="Raise when the value goes above this.")
    below: float | None = Field(None, description="Raise when the value goes below this.")
    hysteresis: float = Field(0.0, description="Clear only once back beyond the threshold by this.", ge=0)
    window_s: float = Field(
        0.0, description="Watch the mean (or rate) over this many seconds; 0: each reading.", ge=0, le=86_400
    )

    @model_validator(mode="after")
    def _one_threshold(self) -> AlarmRuleConfig:
        if (self.above is None) == (self.below is None):
            raise ValueError("set exactly one of 'above' and 'below'")
        if self.quantity in ("rain_mm_per_h", "water_rise_m_per_h") and not self.window_s:
            raise ValueError(f"{self.quantity} is a rate: set window_s (e.g. 600)")
        return self


class GeofenceConfig(_Section):
    """``[geofences.NAME]``: a permitted fishing zone or a forbidden area, in lon/lat (WGS 84).

    The area is ``polygon`` (one closed ring, GeoJSON order) or ``geojson`` (a file holding a
    Polygon, MultiPolygon, Feature or FeatureCollection of those; holes allowed). The alarm is
    raised ``hysteresis_m`` beyond the boundary and cleared as far back on the right side.
    Each zone is watched on its own: areas that together make one permit belong in one zone.
    """

    kind: Literal["permitted", "forbidden"] = Field(
        description="'permitted': alarm on leaving it; 'forbidden': alarm on entering it."
    )
    polygon: list[list[float]] | None = Field(
        None,
        description="Closed ring [[lon, lat], ...], the first point repeated at the end.",
        examples=[[[107.50, 16.60], [107.56, 16.60], [107.56, 16.64], [107.50, 16.60]]],
        strict=False,
    )
    geojson: Path | None = Field(
        None, description="GeoJSON file of the area; relative to the config file.", strict=False
    )
    hysteresis_m: float = Field(
        50, description="How far past the boundary (metres) the alarm is raised and cleared.", ge=0, le=10_000
    )
    _area: list = PrivateAttr(default_factory=list)

    @field_validator("polygon")
    @classmethod
    def _ring(cls, value: list[list[float]] | None) -> list[tuple[float, float]] | None:
        if value is None:
            return None
        # Imported here: shapely adds ~5 MB, for nodes with geofences only.
        from edge.geofence import check_area, read_ring

        ring = read_ring(value)
        check_area([[ring]])
        return ring

    @field_validator("geojson")
    @classmethod
    def _file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        from edge.geofence import load_geojson

        path = _against_base_dir(value, info)
        load_geojson(path)  # checked here, so that an error names this key; read again below
        return path

    @model_validator(mode="after")
    def _one_area_deeper_than_the_hysteresis(self) -> GeofenceConfig:
        if (self.polygon is None) == (self.geojson is None):
            raise ValueError("set exactly one of 'polygon' and 'geojson'")
        from edge.geofence import depth_m, load_geojson

        self._area = [[self.polygon]] if self.polygon is not None else load_geojson(self.geojson)
        depth = depth_m(self._area)
        if self.hysteresis_m >= depth:
            never = "cleared" if self.kind == "permitted" else "raised"
            raise ValueError(
                f"hysteresis_m {self.hysteresis_m:g} is too large for this zone: no point lies more than "
                f"{depth:.0f} m inside it, so its alarm could never be {never}; "
                f"set hysteresis_m below {depth:.0f}"
            )
        return self

    def area(self) -> list:
        """The zone's polygons (see ``edge.geofence.Area``), as read and checked with the config."""
        return self._area


class MetricsConfig(_Section):
    """``[metrics]``: the node's Prometheus endpoint, ``http://host:port/metrics``.

    Loopback by default: a centre that scrapes its fleet sets ``host = "0.0.0.0"`` (or the
    address of the interface it reaches the node on) and firewalls the port.
    """

    enabled: bool = Field(True, description="Whether the node serves its metrics.")
    host: str = Field("127.0.0.1", description="Address the endpoint listens on.", min_length=1)
    port: int = Field(9820, description="TCP port of the endpoint.", ge=1, le=65535)


class WatchdogConfig(_Section):
    """``[watchdog]``: when the node counts as stalled and stops feeding systemd's watchdog.

    Only a node run by systemd with ``WatchdogSec=`` has a watchdog to feed; the figures also
    decide ``ioc_edge_healthy`` in the metrics. Stalled: the recorder committed nothing for
    ``stall_s`` or two ``store.status_interval_s`` plus ``store.flush_interval_s``, whichever is
    longer (the node's own status record is committed every interval), a driver's thread
    ended, or every continuously reporting driver has been silent for ``stall_s`` (plus its own
    reading interval or sleep).
    """

    stall_s: float = Field(
        120,
        description="How long a component may make no progress before the node is stalled.",
        ge=1,
        le=3600,
    )


LinkProfileName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")]


class LinkProfileConfig(_Section):
    """``[link.profiles.NAME]``: what the node sends while this kind of link is up.

    Vietnamese rules require a fishing vessel at sea to report its position at least every two
    hours, hence ``max_interval_s`` (well under that, so a kept point has time to get through).
    """

    thin_tolerance_m: float = Field(
        0,
        description="Live positions: drop those within this many metres of the thinned track; 0: all.",
        ge=0,
        le=10_000,
    )
    max_interval_s: float = Field(
        3600,
        description="Live positions: send one at least this often, even on a straight course.",
        gt=0,
        le=7200,
    )
    hold: list[str] = Field(
        default_factory=list,
        description="Streams kept on the node, not sent, while this profile is active (not alarm, position).",
        examples=[["track", "track_sig", "reading", "event"]],
    )

    @field_validator("hold")
    @classmethod
    def _hold_known_streams(cls, value: list[str]) -> list[str]:
        from sync.wire import STREAMS  # the streams as landed, so a stream added later is accepted

        for name in value:
            if name == "alarm":
                raise ValueError("'alarm' cannot be held: alarms are always sent; remove it from hold")
            if name == "position":
                # The live track is how a vessel at sea reports at least every max_interval_s.
                raise ValueError(
                    "'position' cannot be held: it is the live track; thin it with thin_tolerance_m instead"
                )
            if name not in STREAMS:
                allowed = ", ".join(sorted(set(STREAMS) - {"alarm", "position"}))
                raise ValueError(f"{name!r} is not a stream; expected some of: {allowed}")
        return value


class LinkConfig(_Section):
    """``[link]``: which link is up (satellite, 4G, harbour Wi-Fi) decides what the node sends on it.

    The profile is the one named in ``file`` when it exists (written by the modem's script), else
    the one of the interface carrying the default route (``interfaces``), else ``default``.
    Without a ``[link]`` section every position is sent live and nothing is held.
    """

    profiles: dict[LinkProfileName, LinkProfileConfig] = Field(
        default_factory=dict, description="Profiles by name.", max_length=16
    )
    default: str = Field(
        "satellite",
        description="Profile when neither the file nor the default route names one.",
        validate_default=True,
    )
    interfaces: dict[str, str] = Field(
        default_factory=dict,
        description="Profile by network interface of the default route.",
        examples=[{"wlan0": "cheap", "ppp0": "satellite"}],
    )
    file: Path = Field(
        Path("/run/ioc-edge/link"),
        description="A file naming the profile (wins when present); relative to the config file.",
        strict=False,
    )
    poll_s: float = Field(5, description="How often the link is looked at again.", ge=0.1, le=300)

    @field_validator("default")
    @classmethod
    def _default_is_a_profile(cls, value: str, info: ValidationInfo) -> str:
        profiles = info.data.get("profiles")
        if profiles is not None and value not in profiles:
            known = ", ".join(sorted(profiles)) or f"none; add [link.profiles.{value}]"
            raise ValueError(f"{value!r} is not a profile; expected one of: {known}")
        return value

    @field_validator("interfaces")
    @classmethod
    def _interfaces_name_profiles(cls, value: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        profiles = info.data.get("profiles")
        for interface, profile in value.items():
            if profiles is not None and profile not in profiles:
                raise ValueError(
                    f"interface {interface!r}: {profile!r} is not a profile; "
                    f"expected one of: {', '.join(sorted(profiles))}"
                )
        return value

    @field_validator("file")
    @classmethod
    def _resolve_file(cls, value: Path, info: ValidationInfo) -> Path:
        return _against_base_dir(value, info)


class TrackConfig(_Section):
    """``[track]``: the vessel's signed, hash-chained track log (``edge.track``); needs ``[uplink.tls]``.

    Every fix from the GPS is chained; without a fix for ``heartbeat_s`` a "no fix" record is
    chained instead; the chain is signed with the node's key every ``sign_every_s`` and at stop,
    and kept on the node for ``retention_months`` (31-day months) whatever the IOC acknowledged.
    """

    enabled: bool = Field(True, description="Whether the node keeps the track log.")
    heartbeat_s: float = Field(
        60, description="A 'no fix' record after this long without a fix (seconds).", ge=1, le=3600
    )
    sign_every_s: float = Field(600, description="How often the chain is signed (seconds).", ge=1, le=86_400)
    retention_months: int = Field(
        60, description="How long the log stays on the node (months of 31 days).", ge=1, le=240
    )


class NodeConfig(_Section):
    """The whole file: ``[node]`` (required), ``[store]``, ``[uplink]`` and ``[drivers.NAME]``.

    Example::

        >>> cfg = parse_config('[node]\\ndevice_id = "vessel-042"\\n', "edge.toml", "/etc/ioc-edge")
        >>> cfg.store.path
        PosixPath('/var/lib/ioc-edge/store.db')
    """

    node: NodeSection = Field(description="Identity of the node and its state directory.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="The on-node store.")
    uplink: UplinkConfig = Field(default_factory=UplinkConfig, description="The MQTT uplink.")
    drivers: dict[DriverName, DriverConfig] = Field(
        default_factory=dict, description="Device drivers by name.", max_length=64
    )
    summaries: SummariesConfig = Field(
        default_factory=SummariesConfig, description="Summaries of sensor readings."
    )
    alarms: dict[DriverName, AlarmRuleConfig] = Field(
        default_factory=dict, description="Local alarm rules by name.", max_length=64
    )
    metrics: MetricsConfig = Field(default_factory=MetricsConfig, description="The Prometheus endpoint.")
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig, description="When the node is stalled.")
    geofences: dict[DriverName, GeofenceConfig] = Field(
        default_factory=dict, description="Permitted zones and forbidden areas by name.", max_length=64
    )
    link: LinkConfig | None = Field(
        None, description="Link profiles (live thinning, held streams); absent: send everything."
    )
    track: TrackConfig | None = Field(None, description="The signed track log (vessels); absent: none.")

    @model_validator(mode="after")
    def _store_in_state_dir(self) -> NodeConfig:
        if not self.store.path.is_absolute():
            self.store.path = Path(os.path.normpath(self.node.state_dir / self.store.path))
        return self

    @model_validator(mode="after")
    def _track_can_be_signed(self) -> NodeConfig:
        if self.track is not None and self.track.enabled:
            if self.uplink.tls is None:
                raise ValueError(
                    "track: the track log is signed with the node's key, which this node lacks: "
                    "run ioc-edge provision (it writes [uplink.tls]) or set track.enabled = false"
                )
            if not any(d.type == "nmea" for d in self.drivers.values()):
                raise ValueError("track: no GPS to log: add a driver with type = 'nmea'")
        return self

    @model_validator(mode="after")
    def _alarms_watch_what_exists(self) -> NodeConfig:
        # A rule with a typo in its sensor or quantity would never fire, and nothing would say so.
        for name, rule in self.alarms.items():
            if rule.sensor != "*" and rule.sensor not in self.drivers:
                raise ValueError(
                    f"alarm {name!r} watches sensor {rule.sensor!r}; drivers: {sorted(self.drivers)}"
                )
            types = {d.type for n, d in self.drivers.items() if rule.sensor in ("*", n)}
            known = set().union(*(QUANTITIES.get(t, ()) for t in types))
            if rule.quantity not in known:
                raise ValueError(
                    f"alarm {name!r} watches quantity {rule.quantity!r}; "
                    f"{rule.sensor!r} gives {sorted(known) or 'no readings'}"
                )
        return self


def load_config(path: str | os.PathLike[str]) -> NodeConfig:
    """Read and validate the config file at ``path``.

    Raises :class:`ConfigError` when the file is missing or unreadable, is not valid TOML, or
    does not validate; the message lists every problem, one a line, with its line number.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read config file: {exc.strerror or exc}"]) from None
    return parse_config(text, path.name, path.resolve().parent)


def parse_config(
    text: str, source_name: str = "<config>", base_dir: str | os.PathLike[str] = "."
) -> NodeConfig:
    """Validate config ``text``; ``source_name`` names it in errors, ``base_dir`` anchors relative paths.

    Raises :class:`ConfigError` as :func:`load_config` does.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([toml_syntax_problem(str(exc), text, source_name)]) from None
    base = Path(os.path.abspath(base_dir))
    try:
        return NodeConfig.model_validate(data, context={"base_dir": base})
    except ValidationError as exc:
        lines = KeyLines(text)
        problems = [_problem(err, source_name, lines) for err in exc.errors(include_url=False)]
        raise ConfigError(problems) from None


# --- error messages ------------------------------------------------------------------------


class _Where:
    """Where a pydantic error location points in the model tree."""

    def __init__(self, loc: tuple[int | str, ...]) -> None:
        self.path: list[str] = []
        self.model: type[BaseModel] | None = None
        self.field: FieldInfo | None = None
        self.tp: Any = NodeConfig
        self.dict_key = False
        for part in loc:
            self._step(part)

    def _step(self, part: int | str) -> None:
        tp = _unannotate(self.tp)
        tags = _union_tags(tp)
        if part == "[key]":
            self.dict_key = True  # the error is about the key itself, already in the path
        elif str(part) in tags and str(part) not in getattr(tp, "model_fields", {}):
            # pydantic puts the discriminator's value into the location; the file has no such key
            self.tp = tags[str(part)]
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            self.model, self.field = tp, tp.model_fields.get(str(part))
            self.path.append(str(part))
            self.tp = self.field.annotation if self.field else None
        elif get_origin(tp) is dict:
            self.path.append(str(part))
            self.tp = get_args(tp)[1]
        else:
            self.path.append(str(part))
            self.tp = None

    def dotted(self) -> str:
        bare = re.compile(r"^[A-Za-z0-9_-]+$")
        return ".".join(p if bare.match(p) else json.dumps(p) for p in self.path) or "(top level)"


def _unannotate(tp: Any) -> Any:
    """The type under ``Annotated[...]`` and an optional's ``| None``."""
    while True:
        if get_origin(tp) is Annotated:
            tp = get_args(tp)[0]
        elif get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp):
            rest = [arg for arg in get_args(tp) if arg is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def _union_tags(tp: Any) -> dict[str, type[BaseModel]]:
    """``{tag: model}`` of a union of models discriminated on ``type``, else ``{}``."""
    tp = _unannotate(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        members: tuple[Any, ...] = (tp,) if "type" in tp.model_fields else ()
    elif get_origin(tp) in (Union, types.UnionType):
        members = get_args(tp)
    else:
        return {}
    tags = {}
    for member in members:
        field = getattr(member, "model_fields", {}).get("type")
        if field is not None:
            for tag in get_args(field.annotation):
                tags[str(tag)] = member
    return tags


def _expected(field: FieldInfo | None, tp: Any) -> str:
    """Plain words for what a field takes, e.g. "a string, e.g. 'vessel-042'"."""
    tp = _unannotate(field.annotation if field is not None else tp)
    if _union_tags(tp) and not (isinstance(tp, type) and issubclass(tp, BaseModel)):
        words = "a table with type = " + " or ".join(repr(t) for t in _union_tags(tp))
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        words = "a table"
    elif get_origin(tp) is Literal:
        words = "one of: " + ", ".join(repr(v) for v in get_args(tp))
    else:
        names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", Path: "a path"}
        members = get_args(tp) if get_origin(tp) in (Union, types.UnionType) else (tp,)
        words = " or ".join(names.get(member, "a value") for member in members)
    if field is not None and field.examples:
        words += f", e.g. {field.examples[0]!r}"
    return words


def _problem(err: dict[str, Any], source: str, lines: KeyLines) -> str:
    where = _Where(err["loc"])
    kind, value, ctx = err["type"], err.get("input"), err.get("ctx") or {}
    if kind == "missing":
        if isinstance(_unannotate(where.tp), type) and issubclass(_unannotate(where.tp), BaseModel):
            text = f"missing: required table [{where.dotted()}]"
        else:
            text = f"missing: required ({_expected(where.field, where.tp)})"
    elif kind == "extra_forbidden":
        allowed = ", ".join(where.model.model_fields) if where.model else "none"
        text = f"unknown key; expected one of: {allowed}"
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        where.path.append("type")
        tags = ", ".join(repr(t) for t in _union_tags(where.tp))
        if kind == "union_tag_invalid":
            text = f"{ctx.get('tag')!r} is not a known type; expected one of: {tags}"
        else:
            text = f"missing: required (one of: {tags})"
    elif kind == "string_pattern_mismatch" and where.dict_key:
        text = f"{value!r} is not a valid name; expected one matching {ctx.get('pattern')}"
    else:
        text = _value_problem(kind, value, ctx, err["msg"], where)
    number = lines.find(where.path)
    at = f"{source} line {number}" if number is not None else source
    return f"{where.dotted()} ({at}): {text}"


_TYPE_WORDS = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "path_type": "a path (a string)",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "dict_type": "a table",
}

_BOUND_WORDS = {
    "greater_than": ("too small", "> {gt}"),
    "greater_than_equal": ("too small", ">= {ge}"),
    "less_than": ("too large", "< {lt}"),
    "less_than_equal": ("too large", "<= {le}"),
    "string_too_short": ("too short", "at least {min_length} characters"),
    "string_too_long": ("too long", "at most {max_length} characters"),
    "too_long": ("too long", "at most {max_length} entries"),
}


def _value_problem(kind: str, value: Any, ctx: dict[str, Any], msg: str, where: _Where) -> str:
    if kind in _TYPE_WORDS:
        return f"{value!r} is not {_TYPE_WORDS[kind]}"
    if kind in _BOUND_WORDS:
        word, bound = _BOUND_WORDS[kind]
        shown = f"{len(value)} entries" if kind == "too_long" else repr(value)
        plain = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()}
        return f"{shown} is {word}; expected {bound.format(**plain)}"
    if kind == "literal_error":
        return f"{value!r} is not allowed; expected {_expected(where.field, where.tp)}"
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not match the pattern {ctx.get('pattern')}"
    if kind == "value_error":
        # our validators write complete sentences; pydantic prefixes them
        return str(ctx.get("error", msg)).removeprefix("Value error, ")
    return f"{value!r}: {msg[:1].lower()}{msg[1:]}"
