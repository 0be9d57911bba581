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

The tables of ``[drivers.NAME]`` are the models of the device types (``edge.devices``), and
errors are rendered by ``common.config``. Use :func:`load_config` for a file and
:func:`parse_config` for text (tests); both raise :class:`ConfigError` and never write anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TypeAlias, Union

from pydantic import Field, PrivateAttr, StringConstraints, ValidationInfo, field_validator, model_validator

from common.config import ConfigError, ConfigPath, Section, parse_toml, read_text
from common.fields import Labels
from edge.devices import DEVICE_TYPES
from edge.devices.base import DriverSection
from edge.outputs import OUTPUT_TYPES
from edge.outputs.base import OutputSection
from edge.outputs.checks import check_outputs
from edge.outputs.patterns import PatternConfig, patterns

__all__ = [
    "CommandsConfig",
    "ConfigError",
    "DriverConfig",
    "GeofenceConfig",
    "LinkConfig",
    "LinkProfileConfig",
    "MetricsConfig",
    "NodeConfig",
    "NodeSection",
    "StoreConfig",
    "TrackConfig",
    "UplinkConfig",
    "UplinkTlsConfig",
    "WatchdogConfig",
    "load_config",
    "parse_config",
]

if TYPE_CHECKING:
    # A union made at run time is no type to a type checker: it sees what every member has.
    DriverConfig: TypeAlias = DriverSection
else:
    DriverConfig = Annotated[
        Union[tuple(device.config for device in DEVICE_TYPES.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]
"""A ``[drivers.NAME]`` table: the config model of its ``type``'s entry in the registry (``edge.devices``)."""

if TYPE_CHECKING:
    OutputConfig: TypeAlias = OutputSection
else:
    OutputConfig = Annotated[
        Union[tuple(output.config for output in OUTPUT_TYPES.values())],  # noqa: UP007
        Field(discriminator="type"),
    ]
"""An ``[outputs.NAME]`` table: the config model of its ``type``'s entry in the registry (edge.outputs)."""


class Location(Section):
    """Where a station is installed, in WGS 84 degrees."""

    lat: float = Field(description="Latitude (degrees north).", ge=-90, le=90, examples=[16.4637])
    lon: float = Field(description="Longitude (degrees east).", ge=-180, le=180, examples=[107.5909])


class NodeSection(Section):
    """``[node]``: who this node is and where it keeps its state."""

    device_id: str = Field(
        description="The node's id: its MQTT client id and a segment of its MQTT topics.",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$",
        examples=["vessel-042"],
    )
    site: str = Field("", description="Where the node is installed (free text).", max_length=128)
    labels: Labels = Field(
        default_factory=dict,
        description="Labels the centre selects nodes by (key: a-z, 0-9, '_', '-'; value: short text); "
        "reported in the node's status.",
        examples=[{"district": "phu-vang", "kind": "flood-station"}],
    )
    location: Location | None = Field(
        None,
        description="Where a fixed station is installed: the centre sends it the warnings of areas that "
        "cover it and shows it on the map. A vessel has none: its GPS decides, on board.",
        examples=[{"lat": 16.4637, "lon": 107.5909}],
    )
    state_dir: ConfigPath = Field(
        Path("/var/lib/ioc-edge"),
        description="Directory of the node's state (the store); relative to the config file.",
    )


class StoreConfig(Section):
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


class UplinkTlsConfig(Section):
    """``[uplink.tls]``: mutual TLS to the IOC's broker (``ioc-edge provision`` writes the files).

    Paths are relative to the config file. The node presents ``cert`` (its certificate, then its
    signer's) with ``key``, and accepts only a broker whose certificate chains to ``ca``.
    """

    ca: ConfigPath = Field(
        Path("tls/ca.crt"),
        description="The IOC's CA certificate, which the broker's must chain to.",
        validate_default=True,
    )
    cert: ConfigPath = Field(
        Path("tls/node.crt"),
        description="The node's certificate chain (its own first).",
        validate_default=True,
    )
    key: ConfigPath = Field(
        Path("tls/node.key"),
        description="The node's private key (mode 0600; it never leaves the node).",
        validate_default=True,
    )


class UplinkConfig(Section):
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


class CommandsConfig(Section):
    """``[commands]``: the centre's signed commands (``edge.commands``), read over the uplink.

    They are verified against the IOC's CA of ``[uplink.tls]``: a node without it takes none (and says
    so in its log when it starts), whatever ``enabled`` says.
    """

    enabled: bool = Field(
        True, description="Whether the node takes the centre's signed commands (needs [uplink.tls])."
    )
    trial_s: float = Field(
        120,
        description="How long a pushed config has to prove healthy (drivers delivering, an ack from the "
        "IOC) before it is rolled back.",
        ge=1,
        le=3600,
    )


DriverName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")]


class SummariesConfig(Section):
    """``[summaries]``: what the node makes of raw sensor readings before it syncs them."""

    interval_s: int = Field(60, description="Length of one summary interval.", ge=1, le=86_400)
    trim: float = Field(
        0.1, description="Fraction of readings left out at each end for the trimmed mean.", ge=0, lt=0.5
    )
    keep_raw_s: float = Field(
        7 * 86_400, description="How long raw readings stay in the node's store.", ge=60, le=366 * 86_400
    )


class AlarmRuleConfig(Section):
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
    # exclude: the alarm engine's Rule is built from the other fields; the runtime sounds the pattern
    sound: str = Field(
        "",
        description="A pattern ([patterns.NAME] or a default) sounded on every siren and light when the "
        "alarm is raised; '': none.",
        examples=["flood-2"],
        exclude=True,
    )

    @model_validator(mode="after")
    def _one_threshold(self) -> AlarmRuleConfig:
        if (self.above is None) == (self.below is None):
            raise ValueError("set exactly one of 'above' and 'below'")
        if self.quantity in ("rain_mm_per_h", "water_rise_m_per_h") and not self.window_s:
            raise ValueError(f"{self.quantity} is a rate: set window_s (e.g. 600)")
        return self


class GeofenceConfig(Section):
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
    geojson: ConfigPath | None = Field(
        None, description="GeoJSON file of the area; relative to the config file."
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
    def _file(cls, value: Path | None) -> Path | None:
        if value is not None:
            from edge.geofence import load_geojson

            load_geojson(value)  # checked here, so that an error names this key; read again below
        return value

    @model_validator(mode="after")
    def _one_area_deeper_than_the_hysteresis(self) -> GeofenceConfig:
        if (self.polygon is None) == (self.geojson is None):
            raise ValueError("set exactly one of 'polygon' and 'geojson'")
        from edge.geofence import depth_m, load_geojson

        self._area = load_geojson(self.geojson) if self.geojson is not None else [[self.polygon]]
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


class MetricsConfig(Section):
    """``[metrics]``: the node's Prometheus endpoint, ``http://host:port/metrics``.

    Loopback by default: a centre that scrapes its fleet sets ``host = "0.0.0.0"`` (or the
    address of the interface it reaches the node on) and firewalls the port.
    """

    enabled: bool = Field(True, description="Whether the node serves its metrics.")
    host: str = Field("127.0.0.1", description="Address the endpoint listens on.", min_length=1)
    port: int = Field(9820, description="TCP port of the endpoint.", ge=1, le=65535)


class WatchdogConfig(Section):
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


class LinkProfileConfig(Section):
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


class LinkConfig(Section):
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
    file: ConfigPath = Field(
        Path("/run/ioc-edge/link"),
        description="A file naming the profile (wins when present); relative to the config file.",
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


class TrackConfig(Section):
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


class WarningsConfig(Section):
    """``[warnings]``: how the node treats the centre's warnings and its own soundings (``edge.warnings``)."""

    exercise_pattern: str = Field(
        "exercise",
        description="The pattern an exercise (CAP status Exercise) sounds; '': shown, not sounded.",
        examples=["exercise", ""],
    )
    ack_silences: bool = Field(
        True,
        description="An acknowledgement (the button, ioc-edge warn ack) also silences the sirens and lights: "
        "true for a cabin buzzer; false for a station's siren that warns the public whoever acknowledged.",
    )
    fix_wait_s: float = Field(
        30.0,
        description="A node with a GPS and no fix yet (just booted) waits this long for one before it "
        "decides whether it is in a warning's area; then it sounds it, inside unknown.",
        ge=0,
        le=600,
    )


class NodeConfig(Section):
    """The whole file: ``[node]`` (required), ``[store]``, ``[uplink]`` and ``[drivers.NAME]``.

    Example::

        >>> cfg = parse_config('[node]\\ndevice_id = "vessel-042"\\n', "edge.toml", "/etc/ioc-edge")
        >>> cfg.store.path
        PosixPath('/var/lib/ioc-edge/store.db')
    """

    node: NodeSection = Field(description="Identity of the node and its state directory.")
    store: StoreConfig = Field(default_factory=StoreConfig, description="The on-node store.")
    uplink: UplinkConfig = Field(default_factory=UplinkConfig, description="The MQTT uplink.")
    commands: CommandsConfig = Field(
        default_factory=CommandsConfig, description="The centre's signed commands."
    )
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
    outputs: dict[DriverName, OutputConfig] = Field(
        default_factory=dict,
        description="Output devices (sirens, lights, displays, buttons) by name.",
        max_length=32,
    )
    patterns: dict[DriverName, PatternConfig] = Field(
        default_factory=dict,
        description="Signal patterns by name, beside Hue's (storm, flood-2, flood-3, tsunami, exercise).",
        max_length=32,
    )
    warnings: WarningsConfig = Field(
        default_factory=WarningsConfig, description="The centre's warnings and the node's own soundings."
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
            if not any(DEVICE_TYPES[d.type].gps_time for d in self.drivers.values()):
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
            known = set().union(*(DEVICE_TYPES[t].quantities for t in types))
            if rule.quantity not in known:
                raise ValueError(
                    f"alarm {name!r} watches quantity {rule.quantity!r}; "
                    f"{rule.sensor!r} gives {sorted(known) or 'no readings'}"
                )
        return self

    @model_validator(mode="after")
    def _outputs_fit(self) -> NodeConfig:
        # Each problem at its key (outputs.siren.pin, alarms.flood.sound): see edge.outputs.checks.
        sounds = {name: rule.sound for name, rule in self.alarms.items()}
        check_outputs(self.outputs, self.patterns, sounds, self.drivers)
        known = patterns(self.patterns)
        if self.warnings.exercise_pattern and self.warnings.exercise_pattern not in known:
            raise ValueError(
                f"warnings.exercise_pattern: {self.warnings.exercise_pattern!r} is not a pattern; "
                f"expected one of {sorted(known)} or ''"
            )
        return self


def load_config(path: str | os.PathLike[str]) -> NodeConfig:
    """Read and validate the config file at ``path``.

    Raises :class:`ConfigError` when the file is missing or unreadable, is not valid TOML, or
    does not validate; the message lists every problem, one a line, with its line number.
    """
    path = Path(path)
    return parse_config(read_text(path), path.name, path.resolve().parent)


def parse_config(
    text: str, source_name: str = "<config>", base_dir: str | os.PathLike[str] = "."
) -> NodeConfig:
    """Validate config ``text``; ``source_name`` names it in errors, ``base_dir`` anchors relative paths.

    Raises :class:`ConfigError` as :func:`load_config` does.
    """
    return parse_toml(NodeConfig, text, source_name, base_dir)
