"""The field the demo plays: three edge nodes' configs and the sensors of the environment node.

Every node is provisioned (``[uplink.tls]``: its key and certificate chain in ``tls/`` beside its
config, :data:`~edge.provision.TLS_FILES`), as the centre's broker takes mutual TLS only.

- a **vessel** node replaying a real NMEA capture (a process of its own), with a signed track log,
  link profiles and, for the shared capture, a forbidden area its GPS wanders into (:data:`BERTH`);
- a **roadside camera** node replaying ``media/bikes.mp4`` in a loop through the real detector (a process
  of its own);
- an **environment** node with two particulate sensors on pseudo-terminals and a rain gauge and a
  water-level sonar on gpiozero's mock pins. It runs inside the demo's process because mock pins can
  only be driven from the process that holds them; :class:`EnvironmentRig` plays the sensors: PM
  frames every second, rain showers, and a flood that rises through the alarm level and falls back.

Example::

    rig = EnvironmentRig(Path("demo-state/environment"), broker_port=1883)
    rig.start()   # the node runs and its sensors deliver
    rig.stop()
"""

from __future__ import annotations

import json
import math
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
from edge.provision import TLS_FILES
from edge.runtime import Node

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


def _common(device: str, port: int, status_interval_s: float) -> str:
    return f"""\
[node]
device_id = "{device}"
site = "demo"
state_dir = "state"               # relative to this file

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
    track log, two link profiles (``cheap`` unless the file ``link`` beside the config names another)
    and, with ``berth``, the forbidden :data:`BERTH` (drawn for the shared capture)."""
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
{fence if berth else ""}"""


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
    """An environment node: SDS011 and PMS5003 on ``*_path``, rain gauge and sonar on mock pins."""
    return f"""\
# Written by `ioc-center demo`: particulate sensors on pseudo-terminals, rain and river level on mock pins.
{_common(ENVIRONMENT_ID, port, 10)}
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
"""


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
        self._sonar = exact_sonar(
            factory, MOUNT_HEIGHT_M - river_level(0, self.flood_every_s), TRIGGER_PIN, ECHO_PIN
        )
        # gpiozero advises pigpio for a real sonar; the demo's pins are mock ones, so the advice is noise.
        warnings.filterwarnings("ignore", category=PWMSoftwareFallback)
        self.node = Node(load_config(self.config_path), pin_factory=factory)
        self.node.start()
        super().start()

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
