"""ioc-edge selftest: every check passes on a healthy node and fails with its hint when its part is broken.

Real parts: sensors on pseudo-terminals fed with their drivers' frames, a replayed NMEA capture, the
replayed camera with the real model, gpiozero's mock pins, a private mosquitto and the IOC's receiver.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from gpiozero import Button
from gpiozero.pins.mock import MockFactory

from common.clock import Clock
from drivers import pms5003, sds011
from drivers.base import decode
from drivers.nmea import NmeaParser
from drivers.transport import ReplayTransport
from edge.cli import main as edge_cli
from edge.selftest import CheckResult, Selftest

FAST = 1.5
"""Seconds each check waits in the failure tests: what they wait for never comes."""

SILENT_HINT = "silent: check the {model}'s power and that its TX goes to the node's RX on this port"


class Feeder:
    """Writes ``chunk`` to a pty master every 50 ms in a thread, as a sensor sends its frames."""

    def __init__(self, master: int, chunk: bytes) -> None:
        self.master, self.chunk = master, chunk
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            os.write(self.master, self.chunk)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def ptys() -> Iterator[list[tuple[int, str]]]:
    """Two pseudo-terminals (master fd, slave path), closed at the end."""
    pairs = []
    for _ in range(2):
        master, slave = os.openpty()
        os.set_blocking(master, False)
        pairs.append((master, slave, os.ttyname(slave)))
    yield [(m, path) for m, _, path in pairs]
    for master, slave, _ in pairs:
        os.close(master)
        os.close(slave)


@pytest.fixture
def feeders() -> Iterator[list[Feeder]]:
    started: list[Feeder] = []
    yield started
    for feeder in started:
        feeder.stop()


def write_config(tmp_path: Path, port: int, **drivers: str) -> Path:
    """An edge.toml of node ``sel-1`` on the broker at ``port`` with the given driver sections."""
    text = f'[node]\ndevice_id = "sel-1"\nstate_dir = "state"\n\n[uplink]\nport = {port}\nack_timeout_s = 5\n'
    for name, body in drivers.items():
        text += f"\n[drivers.{name}]\n{body}\n"
    path = tmp_path / "edge.toml"
    path.write_text(text)
    return path


def sensor(kind: str, pty: str) -> str:
    return f'type = "{kind}"\ntransport = {{ type = "pty", path = "{pty}" }}'


def gps_replay(path: Path, loop: bool = False) -> str:
    transport = f'{{ type = "replay", path = "{path}", speed = 0, loop = {str(loop).lower()} }}'
    return f'type = "nmea"\ntransport = {transport}'


def camera(source: Path, model: Path) -> str:
    return f'type = "camera"\nsource = "{source}"\nmodel = "{model}"\nthreads = 1'


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


def clock_at_capture(capture: Path) -> Clock:
    """A clock whose wall reads the capture's first GPS time (the capture is from years ago)."""
    first = next(decode(NmeaParser(Clock()), ReplayTransport(capture, speed=0)))
    start = time.monotonic()
    return Clock(wall=lambda: first.ts_ms / 1000 + time.monotonic() - start, synced=lambda: True)


@pytest.mark.parametrize("ioc_db_url", ["sqlite"], indirect=True)
def test_healthy_node_passes_every_check(shared_dir, tmp_path, broker, receiver, ptys, feeders):
    (sds_master, sds_path), (pms_master, pms_path) = ptys
    feeders += [
        Feeder(sds_master, sds011.data_frame(123, 456)),
        Feeder(pms_master, pms5003.data_frame(5, 12, 20)),
    ]
    capture = shared_dir / "nmea" / "ublox-8.log"
    config = write_config(
        tmp_path,
        broker.port,
        **{
            "pm-a": sensor("sds011", sds_path),
            "pm-b": sensor("pms5003", pms_path),
            "gps": gps_replay(capture),
            "cam": camera(shared_dir / "media" / "bikes.mp4", shared_dir / "models" / "yolox_nano.onnx"),
            "rain": 'type = "rain_gauge"\npin = 17',
        },
    )
    results = Selftest(config, seconds=10, clock=clock_at_capture(capture), pin_factory=MockFactory()).run()

    assert [(r.name, r.status) for r in results] == [
        ("config", "PASS"),
        ("store", "PASS"),
        ("clock", "PASS"),
        ("sensor pm-a", "PASS"),
        ("sensor pm-b", "PASS"),
        ("gps gps", "PASS"),
        ("camera cam", "PASS"),
        ("model cam", "PASS"),
        ("gpio rain", "PASS"),
        ("broker", "PASS"),
    ], [r.line() for r in results]
    checks = by_name(results)
    assert "s from GPS time" in checks["clock"].detail
    assert checks["camera cam"].detail.startswith("frame 640x")
    assert checks["broker"].detail.startswith(f"127.0.0.1:{broker.port} over plain MQTT, IOC ack in ")
    assert all(r.hint == "" for r in results)


def test_silent_and_wrong_baud_sensors_fail_with_their_hints(tmp_path, ptys, feeders):
    (sds_master, sds_path), (pms_master, pms_path) = ptys
    # What a 9600-baud frame looks like read at another rate: bytes with no frame header in them.
    feeders.append(Feeder(pms_master, bytes([0xE0, 0x00, 0xF8, 0x80, 0x1E]) * 4))
    config = write_config(
        tmp_path, 1, **{"pm-a": sensor("sds011", sds_path), "pm-b": sensor("pms5003", pms_path)}
    )
    checks = by_name(Selftest(config, seconds=FAST).run())

    silent = checks["sensor pm-a"]
    assert (silent.status, silent.detail) == ("FAIL", f"no byte in {FAST:g} s")
    assert silent.hint == SILENT_HINT.format(model="SDS011")
    garbage = checks["sensor pm-b"]
    assert garbage.status == "FAIL"
    read = int(garbage.detail.split()[0])
    assert read >= 20
    assert garbage.detail == f"{read} bytes, no valid frame (rejects: garbage={read})"
    assert garbage.hint.startswith("garbage: wrong baud rate? the PMS5003 speaks 9600 8N1")
    assert os.read(sds_master, 100) == sds011.work_command()  # the sensor was woken first


def test_gps_without_fix_fails_with_its_hint(shared_dir, tmp_path):
    # The start of a capture from a receiver still searching: only no-fix sentences, looped.
    head = (shared_dir / "nmea" / "telit-he910.log").read_text().splitlines()[:40]
    capture = tmp_path / "nofix.log"
    capture.write_text("\n".join(line for line in head if line.startswith(("#", "$GP"))) + "\n")
    assert "A" not in {line.split(",")[2] for line in head if line.startswith("$GPRMC")}
    config = write_config(tmp_path, 1, gps=gps_replay(capture, loop=True))
    checks = by_name(Selftest(config, seconds=FAST).run())

    gps = checks["gps gps"]
    assert gps.status == "FAIL"
    assert gps.detail.startswith(f"no fix in {FAST:g} s (")
    assert (
        gps.hint
        == "put the antenna under open sky (a cold start can take minutes), then run the self-test again"
    )
    assert checks["clock"].detail.endswith("(no GPS time to compare)")


def test_missing_camera_and_model_fail_with_their_hints(shared_dir, tmp_path):
    model = shared_dir / "models" / "yolox_nano.onnx"
    config = write_config(
        tmp_path,
        1,
        gone=camera(tmp_path / "gone.mp4", model),
        nomodel=camera(shared_dir / "media" / "bikes.mp4", tmp_path / "none.onnx"),
    )
    checks = by_name(Selftest(config, seconds=FAST).run())

    gone = checks["camera gone"]
    assert (gone.status, gone.detail) == (
        "FAIL",
        f"video file {tmp_path / 'gone.mp4'} not found: check the camera's source in the config",
    )
    assert gone.hint == "check drivers.gone.source, the cable or network, and that the camera is on"
    assert checks["model gone"].status == "SKIP"
    assert checks["camera nomodel"].status == "PASS"
    nomodel = checks["model nomodel"]
    assert nomodel.status == "FAIL"
    assert str(tmp_path / "none.onnx") in nomodel.detail
    assert nomodel.hint == "copy the model onto the node or fix drivers.nomodel.model"


def test_broker_down_fails_with_its_hint(tmp_path, broker):
    broker.stop()
    checks = by_name(Selftest(write_config(tmp_path, broker.port), seconds=FAST).run())
    down = checks["broker"]
    assert down.status == "FAIL"
    assert down.detail.startswith(f"127.0.0.1:{broker.port} unreachable: ")
    assert down.hint == "check the network, uplink.host and uplink.port, and that the IOC's broker runs"


def test_broker_without_receiver_fails_for_want_of_the_ack(tmp_path, broker):
    checks = by_name(Selftest(write_config(tmp_path, broker.port), seconds=FAST).run())
    assert checks["broker"].detail == f"127.0.0.1:{broker.port} connected, no ack from the IOC in {FAST:g} s"
    assert checks["broker"].hint.startswith("the broker took the batch but the IOC did not ack")


def test_clock_at_1970_fails_with_its_hint(tmp_path):
    config = write_config(tmp_path, 1)
    checks = by_name(
        Selftest(config, seconds=FAST, clock=Clock(wall=lambda: 0.0, synced=lambda: False)).run()
    )
    assert checks["clock"] == CheckResult(
        "clock",
        "FAIL",
        "system clock reads 1970-01-01T00:00:00Z, before 2020",
        "set the time: enable NTP (timedatectl set-ntp true), fit an RTC, or get a GPS fix",
    )


def test_cli_prints_one_line_per_check_and_exits_1_on_a_failure(tmp_path, ptys):
    (_, sds_path), _ = ptys
    config = write_config(tmp_path, 1, **{"pm-a": sensor("sds011", sds_path)})
    config.write_text(config.read_text().replace("[uplink]", "[uplink]\nenabled = false"))

    result = CliRunner().invoke(edge_cli, ["selftest", "--seconds", "0.5", str(config)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert [line.split()[0] for line in lines] == ["PASS", "PASS", "PASS", "FAIL", "SKIP", "RECORD"]
    assert lines[3] == f"FAIL  sensor pm-a: no byte in 0.5 s -> {SILENT_HINT.format(model='SDS011')}"
    assert lines[5].startswith("RECORD  commissioning: stored UNSIGNED as record 1: the node has no identity")

    result = CliRunner().invoke(edge_cli, ["selftest", "--json", "--seconds", "0.5", str(config)])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["passed"] is False
    assert (report["commissioning"]["seq"], report["commissioning"]["signed"]) == (2, False)
    assert report["checks"][4] == {
        "name": "broker",
        "status": "SKIP",
        "detail": "uplink.enabled is false",
        "hint": "",
    }


def test_cli_invalid_config_fails_at_the_first_check(tmp_path):
    config = tmp_path / "edge.toml"
    config.write_text('[node]\ndevice_id = "Bad Id"\n')
    result = CliRunner().invoke(edge_cli, ["selftest", str(config)])
    assert result.exit_code == 1
    assert result.output.startswith("FAIL  config: node.device_id (edge.toml line 2): ")
    assert result.output.count("\n") == 1


def test_gps_time_far_from_the_system_clock_fails_the_clock_check(shared_dir, tmp_path):
    capture = shared_dir / "nmea" / "ublox-8.log"  # recorded in 2020: years behind this machine's clock
    checks = by_name(Selftest(write_config(tmp_path, 1, gps=gps_replay(capture)), seconds=FAST).run())
    clock = checks["clock"]
    assert clock.status == "FAIL"
    assert " s from GPS time" in clock.detail
    assert clock.hint == "the system clock is wrong: enable NTP or set it (date -s) from the GPS time"
    assert checks["gps gps"].status == "PASS"


def test_gpio_pin_held_by_another_program_fails_with_its_hint(tmp_path):
    factory = MockFactory()
    config = write_config(tmp_path, 1, rain='type = "rain_gauge"\npin = 17')
    with Button(17, pin_factory=factory):  # another program's hold on the pin
        checks = by_name(Selftest(config, seconds=FAST, pin_factory=factory).run())
    gpio = checks["gpio rain"]
    assert gpio.status == "FAIL"
    assert gpio.detail.startswith("GPIOPinInUse: ")
    assert gpio.hint == "check the pin numbers, that no other program holds them, and the node's 'gpio' group"


def test_provisioned_node_reaches_the_ioc_over_mutual_tls(centre):
    config = centre.provision("sel-tls")
    checks = by_name(Selftest(centre.tmp / "sel-tls" / "edge.toml", seconds=10).run())
    broker = checks["broker"]
    assert broker.status == "PASS", broker.line()
    assert broker.detail.startswith(f"127.0.0.1:{centre.broker.port} over mutual TLS, IOC ack in ")

    config.uplink.tls.key.chmod(0o644)
    checks = by_name(Selftest(centre.tmp / "sel-tls" / "edge.toml", seconds=FAST).run())
    key = config.uplink.tls.key
    assert checks["broker"] == CheckResult(
        "broker",
        "FAIL",
        f"uplink.tls.key: {key} is readable by others (mode 0644); chmod 600 {key}",
        "provision the node again (ioc-edge provision)",
    )
