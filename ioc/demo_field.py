"""The field the demo plays: three edge nodes' configs and the sensors of the environment node.

Every node is provisioned (``[uplink.tls]``: its key and certificate chain in ``tls/`` beside its
config, :data:`~edge.provision.TLS_FILES`), as the centre's broker takes mutual TLS only.

- a **vessel** node replaying a real NMEA capture (a process of its own), with a signed track log,
  link profiles and, for the shared capture, a forbidden area its GPS wanders into (:data:`BERTH`);
- a **roadside camera** node replaying ``media/bikes.mp4`` in a loop through the real detector (a process
  of its own);
- an **environment** node, a river station installed on the Hương river in Huế (``[node] location``),
  with two particulate sensors on pseudo-terminals, a rain gauge and a water-level sonar, and a siren
  and a light, on gpiozero's mock pins. It runs inside the demo's process because mock pins can only
  be driven (and read) from the process that holds them; :class:`EnvironmentRig` plays the sensors:
  PM frames every second, rain showers, and a flood that rises through the alarm level, which sounds
  the siren by itself, and falls back.

Both the vessel and the station have a siren and a light, and sound Hue's signals at a tenth of their
length (:func:`demo_patterns`), so that a demo's flood or storm is over in seconds. The vessel's are
mock pins too: it is a process of its own, given gpiozero's mock pin factory by the environment
(``GPIOZERO_PIN_FACTORY=mock``), as gpiozero lets any program run without GPIO.

Example::

    rig = EnvironmentRig(Path("demo-state/environment"), broker_port=1883)
    rig.start()   # the node runs and its sensors deliver
    rig.stop()
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import operator
import os
import tty
import warnings
from pathlib import Path

from gpiozero.exc import PWMSoftwareFallback
from gpiozero.pins.mock import MockFactory

from common.component import Component
from drivers.gpiomock import exact_sonar
from drivers.pms5003 import data_frame as pms_frame
from drivers.sds011 import data_frame as sds_frame
from edge.config import load_config
from edge.outputs.patterns import DEFAULT_PATTERNS
from edge.provision import TLS_FILES
from edge.runtime import Node
from ioc.warnings import new_identifier
from sync.warnings import Alert, Area, Info

VESSEL_ID = "vessel-042"
CAMERA_ID = "cam-ben-ngu"
ENVIRONMENT_ID = "env-huong-river"
NMEA_BAUDRATE = 4800

FLOOD_LEVEL_M = 3.5
MOUNT_HEIGHT_M = 5.0
RAIN_PIN, TRIGGER_PIN, ECHO_PIN = 17, 23, 24

BERTH_NAME = "fuel-berth"
BERTH = [[5.705078, 52.8422943], [5.706562, 52.8422943], [5.706562, 52.8431929], [5.705078, 52.8431929],
         [5.705078, 52.8422943]]  # fmt: skip
"""A forbidden area 100 m square whose edge lies 1.8 m north of the first fix of ``nmea/ais-nmea.log``:
the boat is moored and its GPS wanders about 3 m, so with a 0.5 m hysteresis the alarm is raised
at the capture's 19th fix (0.6 m in) and cleared at its 46th (0.55 m out), once each."""
BERTH_HYSTERESIS_M = 0.5

RIVER_STATION = (16.4637, 107.5909)
"""Where the environment node is installed: on the Hương river by the Trường Tiền bridge, Huế."""
SIREN_PIN, LIGHT_PIN = 5, 6
DEMO_SCALE = 0.1
"""The demo's signals last a tenth of Hue's (blasts, gaps and pauses; the blasts and repeats kept)."""
FLOOD_PATTERN, STORM_PATTERN = "flood-2-demo", "storm-demo"
"""The station's flood alarm sounds Hue's ``flood-2``, the vessel's storm warning ``storm``, shortened."""
STORM_EXPIRES_S = 3600
STORM_MARGIN_DEG = 0.1
"""How far beyond the vessel's track so far the storm's area reaches (about 11 km north and south)."""


def demo_patterns(*names: str) -> str:
    """``[patterns.<name>-demo]`` for each of Hue's signals ``names``, at :data:`DEMO_SCALE` of its length.

    >>> print(demo_patterns("flood-2"))
    <BLANKLINE>
    [patterns.flood-2-demo]           # Hue's flood-2 at a tenth of its length
    on_s = 1.0
    off_s = 1.0
    blasts = 2
    repeat = 2
    pause_s = 6.0
    <BLANKLINE>
    """
    text = ""
    for name in names:
        hue = DEFAULT_PATTERNS[name]
        text += f"""
{f"[patterns.{name}-demo]":<33} # Hue's {name} at a tenth of its length
on_s = {round(hue.on_s * DEMO_SCALE, 3)!r}
off_s = {round(hue.off_s * DEMO_SCALE, 3)!r}
blasts = {hue.blasts}
repeat = {hue.repeat}
pause_s = {round(hue.pause_s * DEMO_SCALE, 3)!r}
"""
    return text


SIGNALS = f"""
[outputs.siren]                   # on a mock pin (a relay's input on a real node)
type = "siren"
pin = {SIREN_PIN}

[outputs.light]
type = "light"
pin = {LIGHT_PIN}
"""
"""A siren and a light, as both the station and the vessel have them."""


def _common(device: str, port: int, status_interval_s: float, place: str = "") -> str:
    return f"""\
[node]
device_id = "{device}"
site = "demo"
state_dir = "state"               # relative to this file{place}

[store]
flush_interval_s = 1.0
status_interval_s = {status_interval_s}

[uplink]
host = "127.0.0.1"
port = {port}

[uplink.tls]                      # made by the demo as `ioc-edge provision` would
ca = "{TLS_FILES["ca"]}"
cert = "{TLS_FILES["cert"]}"
key = "{TLS_FILES["key"]}"

[metrics]
enabled = false                   # three nodes on one machine would contend for one port
"""


def vessel_config(capture: Path, port: int, speed: float, berth: bool = False) -> str:
    """A vessel node: one GPS replaying ``capture`` at ``speed`` (0: as fast as possible), its signed
    track log, two link profiles (``cheap`` unless the file ``link`` beside the config names another),
    a siren and a light that sound the storm warning (:data:`STORM_PATTERN`) and, with ``berth``, the
    forbidden :data:`BERTH` (drawn for the shared capture)."""
    fence = f"""
[geofences.{BERTH_NAME}]          # the shared capture's boat wanders into it and out again
kind = "forbidden"
polygon = {json.dumps(BERTH)}
hysteresis_m = {BERTH_HYSTERESIS_M}
"""
    return f"""\
# Written by `ioc-center demo`: a vessel node replaying a real GPS capture.
{_common(VESSEL_ID, port, 2)}
[drivers.gps]
type = "nmea"

[drivers.gps.transport]
type = "replay"
path = {json.dumps(str(capture))}
speed = {float(speed)!r}                       # 1 is real time at the baud rate
baudrate = {NMEA_BAUDRATE}

[track]                           # every fix into a hash chain signed with the node's key
sign_every_s = 5                  # often, so the dashboard's track log moves (a vessel: 600)
retention_months = 1              # what the default store.max_bytes holds (a vessel keeps 60)

[link]                            # `echo satellite > link` beside this file: thinned and held
default = "cheap"
file = "link"
poll_s = 1

[link.profiles.cheap]             # harbour Wi-Fi: every position, nothing held
thin_tolerance_m = 0

[link.profiles.satellite]         # billed by the byte: the live track within 10 m, the log kept
thin_tolerance_m = 10
max_interval_s = 600
hold = ["track", "track_sig"]
{SIGNALS}{demo_patterns("storm")}{fence if berth else ""}"""


_TIMES = {"RMC": (1, 9), "GGA": (1, None), "GLL": (5, None)}
"""The sentences that carry a UTC time (and a date): the fields of each, by sentence type."""


def shift_capture(capture: Path, out: Path, ends_ms: int, starts_after_ms: int) -> Path:
    """Write to ``out`` a copy of the NMEA ``capture`` whose times are moved, by whole seconds, so
    that its last dated fix (RMC) is at ``ends_ms``, or later when that would put its first before
    ``starts_after_ms`` (then the first is there); returns ``out``.

    A vessel's clock follows its GPS, and a node whose clock says the capture's day (2020) trusts no
    certificate of a CA made today: it would refuse the centre's warnings. Only the time and date
    fields of RMC, GGA and GLL change, and a sentence whose checksum was wrong stays as it was (so
    the GPS rejects what it rejected); positions, AIS and everything else are the capture's.
    Raises :class:`ValueError` for a capture without a dated fix.
    """
    lines = capture.read_bytes().decode("ascii", "surrogateescape").splitlines(keepends=True)
    dated = [_when(fields) for fields in map(_sentence, lines) if fields and fields[0][2:] == "RMC"]
    times = [when.timestamp() for when in dated if when is not None]
    if not times:
        raise ValueError(f"{capture}: no RMC sentence with a time and a date to move")
    seconds = max(ends_ms / 1000 - times[-1], starts_after_ms / 1000 - times[0])
    shift = datetime.timedelta(seconds=math.ceil(seconds))
    text = "".join(_shifted(line, shift) for line in lines)
    out.write_bytes(text.encode("ascii", "surrogateescape"))
    return out


def _sentence(line: str) -> list[str] | None:
    """The fields of a ``$`` sentence whose checksum holds, else None."""
    body, star, given = line.rstrip("\r\n").partition("*")
    if not body.startswith("$") or not star or given.upper() != f"{_checksum(body[1:]):02X}":
        return None
    return body[1:].split(",")


def _checksum(body: str) -> int:
    return functools.reduce(operator.xor, body.encode("ascii", "surrogateescape"), 0)


def _when(fields: list[str]) -> datetime.datetime | None:
    """An RMC's UTC time and date, or None when either is missing or bad."""
    try:
        return datetime.datetime.strptime(fields[9] + fields[1].split(".")[0], "%d%m%y%H%M%S").replace(
            tzinfo=datetime.UTC
        )
    except (IndexError, ValueError):
        return None


def _shifted(line: str, shift: datetime.timedelta) -> str:
    fields = _sentence(line)
    if fields is None or fields[0][2:] not in _TIMES:
        return line
    at, on = _TIMES[fields[0][2:]]
    try:
        hms, dot, fraction = fields[at].partition(".")
        # A time without a date (GGA, GLL) moves within its day, as a receiver's wraps at midnight.
        moved = (
            datetime.datetime.strptime((fields[on] if on is not None else "010170") + hms, "%d%m%y%H%M%S")
            + shift
        )
    except (IndexError, ValueError):
        return line  # no time (a receiver without a fix yet): nothing to move
    fields[at] = moved.strftime("%H%M%S") + dot + fraction
    if on is not None:
        fields[on] = moved.strftime("%d%m%y")
    body = ",".join(fields)
    return f"${body}*{_checksum(body):02X}{line[len(line.rstrip(chr(13) + chr(10))) :]}"


def storm_warning(track: tuple[float, float, float, float], sender: str, now_ms: int) -> Alert:
    """The storm warning the demo issues to the sea around the vessel's ``track`` so far (its least
    and greatest latitude and longitude): a polygon :data:`STORM_MARGIN_DEG` beyond it, sounded in
    :data:`STORM_PATTERN`, in Vietnamese and English, for :data:`STORM_EXPIRES_S`.

    >>> storm_warning((52.84, 5.70, 52.85, 5.71), "ioc@demo", 1_790_000_000_000).areas[0].polygons[0][:2]
    ((52.74, 5.6), (52.74, 5.81))
    """
    south, west, north, east = track
    south, west = round(south - STORM_MARGIN_DEG, 6), round(west - STORM_MARGIN_DEG, 6)
    north, east = round(north + STORM_MARGIN_DEG, 6), round(east + STORM_MARGIN_DEG, 6)
    ring = ((south, west), (south, east), (north, east), (north, west), (south, west))
    description = f"Demo: drawn by ioc-center demo around {VESSEL_ID}'s track"
    infos = [
        Info("vi-VN", "Bão", "Immediate", "Severe", "Observed", "Cảnh báo bão trên biển", description,
             "Tàu thuyền vào nơi trú tránh an toàn ngay"),
        Info("en-US", "Storm", "Immediate", "Severe", "Observed", "Storm warning at sea", description,
             "All vessels to a safe shelter now"),
    ]  # fmt: skip
    area = Area(f"Vùng biển quanh hành trình của tàu {VESSEL_ID}", polygons=(ring,))
    identifier = new_identifier(sender, now_ms)
    expires = now_ms + STORM_EXPIRES_S * 1000
    return Alert.make(identifier, sender, now_ms, "Alert", infos, [area], expires, pattern=STORM_PATTERN)


def street_rules(cooldown_s: float) -> str:
    """The ``street`` camera's counting line, zone and event rule: a person entering the street."""
    return f"""
[[drivers.street.lines]]
name = "mid"
a = [320, 0]
b = [320, 272]

[[drivers.street.zones]]
name = "street"
polygon = [[0, 0], [640, 0], [640, 272], [0, 272]]

[[drivers.street.events]]
name = "person_on_street"
kind = "zone_enter"
zone = "street"
groups = ["people"]
cooldown_s = {cooldown_s}
"""


def camera_config(video: Path, model: Path, port: int, loop: bool = True) -> str:
    """A roadside camera node: ``video`` at 15 frames/s through ``model``, counting on a mid line."""
    return f"""\
# Written by `ioc-center demo`: a roadside camera replaying a street video through the real detector.
{_common(CAMERA_ID, port, 10)}
[drivers.street]
type = "camera"
source = {json.dumps(str(video))}
model = {json.dumps(str(model))}
loop = {str(loop).lower()}
fps = 15
interval_s = 10                   # short counting intervals, so the dashboard moves
{street_rules(30)}"""


def environment_config(sds_path: str, pms_path: str, port: int) -> str:
    """A river station at :data:`RIVER_STATION`: SDS011 and PMS5003 on ``*_path``, rain gauge, sonar,
    siren and light on mock pins; its flood alarm sounds :data:`FLOOD_PATTERN` by itself."""
    lat, lon = RIVER_STATION
    place = f"\nlocation = {{lat = {lat}, lon = {lon}}}   # the centre's area warnings reach it here"
    return f"""\
# Written by `ioc-center demo`: particulate sensors on pseudo-terminals, rain and river level, a siren and a
# light on mock pins.
{_common(ENVIRONMENT_ID, port, 10, place)}
[summaries]
interval_s = 10

[drivers.pm-sds011]
type = "sds011"
[drivers.pm-sds011.transport]
type = "pty"
path = "{sds_path}"

[drivers.pm-pms5003]
type = "pms5003"
[drivers.pm-pms5003.transport]
type = "pty"
path = "{pms_path}"

[drivers.rain]
type = "rain_gauge"
pin = {RAIN_PIN}
mm_per_tip = 0.2

[drivers.river]
type = "water_level"
trigger_pin = {TRIGGER_PIN}
echo_pin = {ECHO_PIN}
mount_height_m = {MOUNT_HEIGHT_M}
max_distance_m = 4.5
interval_s = 1

[alarms.flood]
sensor = "river"
quantity = "water_level_m"
above = {FLOOD_LEVEL_M}
hysteresis = 0.2
sound = "{FLOOD_PATTERN}"            # at once, link or no link (a real station: "flood-2")
{SIGNALS}{demo_patterns("flood-2")}"""


def river_level(t: float, period_s: float) -> float:
    """The demo's river (m) at ``t`` s: 2 m, a flood peaking at 3.9 m mid-period, back to 2 m.

    >>> round(river_level(0, 90), 2), round(river_level(45, 90), 2)
    (2.0, 3.9)
    """
    return 2.0 + 1.9 * math.sin(math.pi * (t % period_s) / period_s) ** 2


class EnvironmentRig(Component):
    """The environment node, run in this process, with the sensors it reads played by a thread.

    ``workdir`` gets ``edge.toml`` and the node's ``state/``; the river floods every ``flood_every_s``.
    """

    def __init__(self, workdir: Path, broker_port: int, flood_every_s: float = 90.0) -> None:
        super().__init__("demo-environment")
        self.workdir = workdir
        self.broker_port = broker_port
        self.flood_every_s = flood_every_s
        self.config_path = workdir / "edge.toml"
        self._fds: list[int] = []
        self._masters: dict[str, int] = {}
        self.node: Node | None = None

    def start(self) -> None:
        paths = {}
        for name in ("sds011", "pms5003"):
            master, slave = os.openpty()
            tty.setraw(slave)
            self._fds += [master, slave]
            self._masters[name], paths[name] = master, os.ttyname(slave)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(environment_config(paths["sds011"], paths["pms5003"], self.broker_port))
        factory = MockFactory()
        self._reed = factory.pin(RAIN_PIN)
        self._siren = factory.pin(SIREN_PIN)
        self._sonar = exact_sonar(
            factory, MOUNT_HEIGHT_M - river_level(0, self.flood_every_s), TRIGGER_PIN, ECHO_PIN
        )
        # gpiozero advises pigpio for a real sonar; the demo's pins are mock ones, so the advice is noise.
        warnings.filterwarnings("ignore", category=PWMSoftwareFallback)
        self.node = Node(load_config(self.config_path), pin_factory=factory)
        self.node.start()
        super().start()

    def siren_blasts(self) -> int:
        """How many times the node has switched its siren on (its mock pin's history)."""
        return sum(1 for change in self._siren.states[1:] if change.state)

    def _after_stop(self) -> None:
        if self.node:
            self.node.stop()
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()

    def _run(self) -> None:
        """Every second: a frame from each PM sensor, the river's level; rain tips in showers."""
        t = 0.0
        while not self._stop.wait(1.0):
            t += 1.0
            # Morning traffic haze: PM2.5 between ~20 and ~60 ug/m3, so the AQI colours change.
            pm25 = 40 + 20 * math.sin(t / 20)
            try:
                os.write(self._masters["sds011"], sds_frame(round(pm25 * 10), round(pm25 * 18)))
                os.write(
                    self._masters["pms5003"], pms_frame(round(pm25 * 0.7), round(pm25), round(pm25 * 1.6))
                )
            except OSError:
                return  # the ptys are closing: the demo is stopping
            self._sonar.distance_m = MOUNT_HEIGHT_M - river_level(t, self.flood_every_s)
            if t % self.flood_every_s < self.flood_every_s / 2 and int(t) % 3 == 0:  # rain while it rises
                self._reed.drive_low()
                self._stop.wait(0.08)
                self._reed.drive_high()
