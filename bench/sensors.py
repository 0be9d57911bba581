"""CPU and memory of an environment node: four UART particulate sensors at 1 Hz and the GPIO sensors.

Five minutes of sensor data (two SDS011, two PMS5003, one frame a second each,
with some line noise) are recorded as captures and replayed at SPEED times
real time into a node that also runs a rain gauge, a water-level sonar and a
float switch on gpiozero's mock pins, summarizes every minute, evaluates
alarms, stores everything and syncs to a private mosquitto and a receiver in
another process. Printed: the node's CPU time per second of data (as a share
of one core at real-time rates), its peak RSS, and the raw baseline of the
same run: the bare frame parsers over the same bytes.
"""

from __future__ import annotations

import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import figure
from gpiozero.pins.mock import MockFactory

from common.clock import Clock
from drivers.capture import CaptureWriter
from drivers.gpiomock import exact_sonar
from drivers.pms5003 import Pms5003Parser
from drivers.pms5003 import data_frame as pms_frame
from drivers.sds011 import Sds011Parser
from drivers.sds011 import data_frame as sds_frame
from edge.config import parse_config
from edge.malloc import limit_arenas
from edge.runtime import Node, open_store
from ioc.broker import PrivateBroker

SECONDS = 300  # of sensor data
SPEED = 10.0
SENSORS = {"pm-a": "sds011", "pm-b": "sds011", "pm-c": "pms5003", "pm-d": "pms5003"}


def make_capture(path: Path, kind: str, seed: int) -> bytes:
    """A 1 Hz capture of ``kind``; returns its bytes for the baseline."""
    rng = random.Random(seed)
    t = [0.0]
    everything = b""
    with CaptureWriter(path, device="/dev/ttyUSB0", baudrate=9600, monotonic=lambda: t[0]) as capture:
        for i in range(SECONDS):
            t[0] = float(i)
            pm25 = max(0, int(rng.gauss(35, 8)))
            frame = (
                sds_frame(pm25 * 10, pm25 * 18) if kind == "sds011" else pms_frame(pm25 // 2, pm25, pm25 * 2)
            )
            if i % 50 == 7:
                frame = rng.randbytes(12) + frame  # line noise now and then
            capture.write(frame)
            everything += frame
    return everything


def config_text(tmp: Path, port: int) -> str:
    drivers = "".join(
        f'\n[drivers.{name}]\ntype = "{kind}"\n[drivers.{name}.transport]\ntype = "capture"\n'
        f'path = "{tmp / name}.cap"\nspeed = {SPEED}\n'
        for name, kind in SENSORS.items()
    )
    return f"""
[node]
device_id = "bench-env"
state_dir = "{tmp / "state"}"

[uplink]
port = {port}

[summaries]
interval_s = 60
{drivers}
[drivers.rain]
type = "rain_gauge"
pin = 17

[drivers.river]
type = "water_level"
trigger_pin = 23
echo_pin = 24
mount_height_m = 5.0
interval_s = 10

[drivers.float]
type = "float_switch"
pin = 27

[alarms.pm25]
quantity = "pm25"
above = 55.5
hysteresis = 5
window_s = 300

[alarms.flood]
sensor = "river"
quantity = "water_level_m"
above = 3.5
hysteresis = 0.1
"""


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    limit_arenas()  # as `ioc-edge run` does before its node starts
    with tempfile.TemporaryDirectory() as tmp_name, PrivateBroker(Path(tmp_name) / "broker") as broker:
        tmp = Path(tmp_name)
        data = {
            name: make_capture(tmp / f"{name}.cap", kind, i) for i, (name, kind) in enumerate(SENSORS.items())
        }

        t0 = cpu_s()
        for name, kind in SENSORS.items():
            parser = (Sds011Parser if kind == "sds011" else Pms5003Parser)(name, Clock())
            parser.feed(data[name])
        raw_cpu = cpu_s() - t0

        receiver = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ioc",
                "run",
                "--mqtt-port",
                str(broker.port),
                "--db",
                f"sqlite:///{tmp}/ioc.db",
            ]
        )
        factory = MockFactory()
        reed = factory.pin(17)
        echo = exact_sonar(factory, distance_m=3.0, trigger=23, echo=24)
        config = parse_config(config_text(tmp, broker.port), "bench.toml", tmp)
        node = Node(config, pin_factory=factory)
        wall0, cpu0 = time.monotonic(), cpu_s()
        node.start()
        run_s = SECONDS / SPEED
        while time.monotonic() - wall0 < run_s:
            time.sleep(0.5)
            reed.drive_low()  # a light shower: a tip every half second of replay
            reed.drive_high()
            echo.distance_m = 3.0 - 0.001 * (time.monotonic() - wall0)
            elapsed = time.monotonic() - wall0
            if int(elapsed * 2) % 10 == 0:
                print(f"replaying: {elapsed:.0f}/{run_s:.0f} s", file=sys.stderr, flush=True)
        node.stop()
        node_cpu, wall = cpu_s() - cpu0, time.monotonic() - wall0
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        store = open_store(config)
        status = store.status()
        store.close()
        receiver.terminate()
        receiver.wait()

    readings = sum(d.records for d in node.drivers)
    figure("sensor_seconds", SECONDS, "s")
    figure("replay_speed", SPEED, "x")
    figure("readings", readings)
    figure("node_cpu_s", node_cpu, "s")
    figure("node_cpu_percent_during_replay", 100 * node_cpu / wall, "%")
    # Work per second of data, as if it came at real time; the sonar's sampling thread runs per
    # wall second, so this leans high.
    figure("cpu_percent_of_one_core_at_real_time", 100 * node_cpu / SECONDS, "%")
    figure("peak_rss_mb", rss_mb, "MB")
    figure("raw_parse_cpu_s", raw_cpu, "s")
    figure("ratio_vs_raw", node_cpu / raw_cpu if raw_cpu else float("inf"))
    figure("summaries_emitted", node.summarizer.emitted)
    figure("raw_readings_kept_on_node", status.kept_local["reading"])


if __name__ == "__main__":
    main()
