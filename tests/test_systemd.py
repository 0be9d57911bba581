"""systemd: the units pass `systemd-analyze verify`, install-service puts them in place, and a node
(a real process) tells a notify socket of the test's own READY, STATUS, WATCHDOG while its pipeline
progresses, no WATCHDOG while it is stalled (a silent sensor, a store it cannot write), and STOPPING."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import wait_for

from common.notify import Health, SdNotify
from edge.cli import main
from edge.config import parse_config
from edge.install import InstallError, ServiceInstaller, state_dir_problem

UNITS = Path(__file__).resolve().parents[1] / "systemd"
SYSTEM_UNITS = Path("/usr/lib/systemd/system")  # the distribution's targets, which the units refer to

needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze not installed (apt-get install systemd; ./dev setup does it)",
)


def system_tree(root: Path, commands: list[Path]) -> Path:
    """A file system tree for `systemd-analyze --root`: the distribution's units and ``commands``."""
    shutil.copytree(SYSTEM_UNITS, root / SYSTEM_UNITS.relative_to("/"), symlinks=True)
    for command in commands:
        stub = root / command.relative_to("/")
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    return root


def verify(root: Path, unit: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", "--man=no", unit],
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_systemd_analyze
@pytest.mark.parametrize(
    "unit",
    [
        "ioc-edge.service",
        "ioc-center.service",
        "ioc-center@9831.service",
        "ioc-center-crl.service",
        "ioc-center-crl.timer",
    ],
)
def test_every_unit_as_shipped_passes_systemd_analyze_verify(tmp_path, unit):
    commands = [
        Path("/usr/local/bin/ioc-edge"),
        Path("/usr/local/bin/ioc-center"),
        Path("/usr/bin/systemctl"),
    ]
    root = system_tree(tmp_path, commands)
    (root / "etc/systemd/system").mkdir(parents=True)
    for path in [*UNITS.glob("*.service"), *UNITS.glob("*.timer")]:
        shutil.copy(path, root / "etc/systemd/system" / path.name)
    result = verify(root, unit)
    assert (result.returncode, result.stderr) == (0, "")


def test_crl_service_command_re_signs_every_list_of_the_ca_it_is_given(tmp_path):
    from cryptography import x509

    from ioc.ca import CertificateAuthority
    from provisioning import pki

    ca = CertificateAuthority.create(tmp_path / "ca", "Hue IOC")
    ca.issue_signer("alice")
    lists = [ca.devices_crl_path, ca.centre_crl_path]

    def numbers() -> list[list[int]]:
        return [[pki.crl_number(c) for c in map(x509.load_pem_x509_crl, pem_crls(p))] for p in lists]

    before = numbers()
    unit = (UNITS / "ioc-center-crl.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", unit, re.MULTILINE).group(1).split()
    assert exec_start[0] == "/usr/local/bin/ioc-center"
    command = [str(Path(sys.executable).parent / "ioc-center"), *exec_start[1:]]
    # The unit's Environment=IOC_CA, pointed at the test's CA as /etc/ioc-center/ioc-center-crl.env would.
    assert "Environment=IOC_CA=/var/lib/ioc/ca" in unit
    done = subprocess.run(command, env=os.environ | {"IOC_CA": str(ca.path)}, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "CRLs signed again, valid 365 days; reload the broker: systemctl reload mosquitto\n"
    assert numbers() == [[n + 1 for n in crls] for crls in before]  # device CA and alice's; the centre CA's


def pem_crls(path: Path) -> list[bytes]:
    """Each CRL of a PEM file that may hold several (the broker's devices-crl.pem)."""
    end = b"-----END X509 CRL-----\n"
    return [part + end for part in path.read_bytes().split(end) if part.strip()]


@needs_systemd_analyze
def test_verify_catches_a_broken_unit(tmp_path):
    # The check above could pass for an unread file; this one shows verify reads what it is given.
    root = system_tree(tmp_path, [Path("/usr/local/bin/ioc-edge")])
    (root / "etc/systemd/system").mkdir(parents=True)
    text = (UNITS / "ioc-edge.service").read_text().replace("WatchdogSec=60", "WatchdogSecs=60")
    (root / "etc/systemd/system/ioc-edge.service").write_text(text)
    result = verify(root, "ioc-edge.service")
    assert "Unknown key 'WatchdogSecs' in section [Service], ignoring." in result.stderr


@needs_systemd_analyze
def test_install_service_puts_the_unit_its_user_and_the_boot_link_in_a_tree(tmp_path):
    command = Path(sys.executable).parent / "ioc-edge"
    result = CliRunner().invoke(main, ["install-service", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    unit = tmp_path / "etc/systemd/system/ioc-edge.service"
    sysusers = tmp_path / "etc/sysusers.d/ioc-edge.conf"
    assert result.stdout.splitlines() == [
        f"wrote {unit}",
        f"wrote {sysusers}",
        f"ran systemd-sysusers --root={tmp_path} {sysusers}",
        f"ran systemctl --root={tmp_path} enable ioc-edge.service",
    ]
    config = tmp_path / "etc/ioc-edge/edge.toml"
    assert result.stderr == (
        f"warning: {config} does not exist yet: write it (ioc-edge provision) before starting the node\n"
    )
    assert f"ExecStart={command} --log-level INFO run /etc/ioc-edge/edge.toml\n" in unit.read_text()
    passwd = (tmp_path / "etc/passwd").read_text().splitlines()
    assert [line.split(":")[5] for line in passwd if line.startswith("ioc-edge:")] == ["/var/lib/ioc-edge"]
    assert any(line.startswith("gpio:") for line in (tmp_path / "etc/group").read_text().splitlines())
    link = tmp_path / "etc/systemd/system/multi-user.target.wants/ioc-edge.service"
    assert os.readlink(link) == "/etc/systemd/system/ioc-edge.service"
    # The unit as installed, naming this installation's command, is still one systemd accepts.
    result = verify(system_tree(tmp_path, [command]), "ioc-edge.service")
    assert (result.returncode, result.stderr) == (0, "")


def test_install_refuses_a_command_the_service_cannot_see(tmp_path):
    installer = ServiceInstaller(
        "ioc-edge", ["ioc-edge.service"], tmp_path, Path("/home/pi/venv/bin/ioc-edge")
    )
    with pytest.raises(InstallError) as caught:
        installer.install()
    assert str(caught.value) == (
        "/home/pi/venv/bin/ioc-edge is under /home, which the service cannot see (ProtectHome=yes): "
        "install into /opt, e.g. python3 -m venv /opt/ioc-edge; /opt/ioc-edge/bin/pip install ..."
    )
    assert not (tmp_path / "etc").exists()


def test_a_config_whose_state_dir_the_service_cannot_write_is_named(tmp_path):
    config = tmp_path / "edge.toml"
    config.write_text('[node]\ndevice_id = "v1"\nstate_dir = "/srv/node"\n')
    assert state_dir_problem(config) == (
        f"node.state_dir is /srv/node in {config}: the service may write only /var/lib/ioc-edge; "
        'set state_dir = "/var/lib/ioc-edge" (the default)'
    )
    config.write_text('[node]\ndevice_id = "v1"\n')
    assert state_dir_problem(config) is None


# -- the notification protocol ------------------------------------------------------------------


class NotifySocket:
    """systemd's end: a datagram socket that collects what a service sends, with arrival times."""

    def __init__(self, address: str) -> None:
        self.address = address  # as in $NOTIFY_SOCKET
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.1)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            fields = dict(line.split("=", 1) for line in data.decode().splitlines())
            with self._lock:
                self.messages.append((time.monotonic(), fields))

    def since(self, t: float) -> list[dict[str, str]]:
        with self._lock:
            return [m for at, m in self.messages if at >= t]

    def wait(self, predicate, after: float = 0.0, timeout: float = 20.0) -> tuple[float, dict[str, str]]:
        """The first message after ``after`` for which ``predicate(fields)``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for at, fields in self.messages:
                    if at >= after and predicate(fields):
                        return at, fields
            time.sleep(0.02)
        raise AssertionError(f"no such message within {timeout} s; got {self.since(after)}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    sock = NotifySocket(f"@ioc-edge-test-{uuid.uuid4().hex}")  # the abstract namespace: no file to clean
    yield sock
    sock.close()


def test_sd_notify_sends_one_datagram_to_a_socket_path(tmp_path):
    sock = NotifySocket(str(tmp_path / "notify"))
    try:
        notify = SdNotify({"NOTIFY_SOCKET": sock.address, "WATCHDOG_USEC": "2000000"})
        assert notify.send("READY=1", "STATUS=running: 1 driver")
        assert notify.watchdog_s == 2.0
        assert sock.wait(lambda m: True)[1] == {"READY": "1", "STATUS": "running: 1 driver"}
    finally:
        sock.close()
    other_pid = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid() + 1)}
    assert SdNotify(other_pid).watchdog_s is None  # meant for another process of the service
    gone = SdNotify({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert gone.send("READY=1") is False  # logged once, never raised


def test_health_status_lines():
    assert Health((), "1 driver, 3 records committed").status == "running: 1 driver, 3 records committed"
    assert Health(("a", "b")).status == "stalled: a; b"


# -- a node as systemd runs it ------------------------------------------------------------------


class PtySensor:
    """Feeds real NMEA sentences into a pseudo-terminal's master while ``on`` is set."""

    def __init__(self, master: int, lines: list[bytes]) -> None:
        self.master, self.lines = master, lines
        self.on = threading.Event()
        self.on.set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        os.set_blocking(self.master, False)  # a node that stopped reading must not block the test
        i = 0
        while not self._stop.wait(0.05):
            if self.on.is_set():
                try:
                    os.write(self.master, self.lines[i % len(self.lines)])
                except BlockingIOError:
                    continue
                i += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def gps_lines(shared_dir) -> list[bytes]:
    text = (shared_dir / "nmea" / "ublox-8.log").read_bytes()
    return [line + b"\n" for line in text.splitlines() if line.startswith(b"$")]


@pytest.fixture
def node_process(tmp_path, pty_pair, notify_socket, gps_lines):
    """`ioc-edge run` as systemd would start it (NOTIFY_SOCKET, WATCHDOG_USEC of 1 s), its GPS on a pty."""
    master, slave = pty_pair
    config = tmp_path / "edge.toml"
    config.write_text(
        f"""
[node]
device_id = "wd-1"
state_dir = "state"
[store]
status_interval_s = 1
flush_interval_s = 0.2
[uplink]
enabled = false
[metrics]
enabled = false
[watchdog]
stall_s = 2
[drivers.gps]
type = "nmea"
[drivers.gps.transport]
type = "pty"
path = "{slave}"
"""
    )
    sensor = PtySensor(master, gps_lines)
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "--log-level", "WARNING", "run", str(config)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc, sensor, tmp_path / "state" / "store.db"
    finally:
        sensor.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stderr.close()


def is_ping(fields: dict[str, str]) -> bool:
    return fields.get("WATCHDOG") == "1"


def assert_fed_then_starved(notify: NotifySocket, problem: str) -> float:
    """The watchdog goes unfed, with ``problem`` in the status line; returns when."""
    at, fields = notify.wait(lambda m: problem in m.get("STATUS", "") and not is_ping(m))
    time.sleep(2.0)  # four watchdog intervals of 0.5 s
    assert [m for m in notify.since(at) if is_ping(m)] == []
    assert fields["STATUS"].startswith("stalled: ")
    return at


def test_watchdog_is_fed_while_the_sensor_delivers_and_starved_when_it_falls_silent(
    node_process, notify_socket
):
    proc, sensor, _ = node_process
    ready_at, ready = notify_socket.wait(lambda m: m.get("READY") == "1")
    assert ready["STATUS"].startswith("running: 1 driver, ")
    notify_socket.wait(is_ping, after=ready_at)
    fed_at, fed = notify_socket.wait(is_ping, after=ready_at + 1.0)
    assert fed["STATUS"].startswith("running: 1 driver, ")
    sensor.on.clear()  # the receiver stops talking: the driver's transport delivers nothing
    stalled_at = assert_fed_then_starved(notify_socket, "every driver silent: gps ")
    assert stalled_at - fed_at >= 2.0  # not before stall_s
    sensor.on.set()
    notify_socket.wait(is_ping, after=stalled_at)  # it talks again: fed again, no restart needed
    proc.send_signal(signal.SIGTERM)
    notify_socket.wait(lambda m: m.get("STOPPING") == "1")
    assert proc.wait(30) == 0
    logged = [line.split(" ", 3)[3] for line in proc.stderr.read().splitlines()]  # without ts, level, logger
    assert len(logged) == 2, logged
    assert re.fullmatch(
        r"event=stalled problems=\['every driver silent: gps \d+ s'\] action=stop_feeding_watchdog", logged[0]
    )
    assert re.fullmatch(r"event=healthy_again status='running: 1 driver, \d+ records committed'", logged[1])


def test_watchdog_is_starved_while_the_store_takes_no_writes(node_process, notify_socket):
    proc, _, store = node_process
    ready_at, _ = notify_socket.wait(lambda m: m.get("READY") == "1")
    notify_socket.wait(is_ping, after=ready_at + 1.0)
    # Another process holds the store's write lock: the recorder's commits wait, as on a hung SD card.
    blocker = sqlite3.connect(store, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        stalled_at = assert_fed_then_starved(notify_socket, "recorder committed nothing for ")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    notify_socket.wait(is_ping, after=stalled_at)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


def test_a_device_that_is_away_is_retried_not_a_stall(tmp_path, run_node):
    # A GPS adapter unplugged: the transport fails and is retried with backoff; restarting the node
    # would not bring it back, so the node stays healthy while the recorder commits.
    config = parse_config(
        f"""
[node]
device_id = "wd-2"
state_dir = "{tmp_path}"
[store]
status_interval_s = 1
flush_interval_s = 0.2
[uplink]
enabled = false
[metrics]
enabled = false
[watchdog]
stall_s = 1
[drivers.gps]
type = "nmea"
[drivers.gps.transport]
type = "serial"
port = "{tmp_path / "ttyUSB-unplugged"}"
"""
    )
    node = run_node(config)
    wait_for(lambda: node.drivers[0].health["transport_lost"] == 1, 10, "the lost transport")
    time.sleep(2.5)  # past stall_s and the recorder's allowance (2 x 1 s + 0.2 s)
    health = node.health.check()
    assert health.problems == ()
    assert health.detail.startswith("1 driver, ")


def test_centre_says_ready_feeds_its_watchdog_and_says_stopping(tmp_path, broker, notify_socket):
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket.address, "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "ioc", "run",
            "--mqtt-port", str(broker.port),
            "--db", f"sqlite:///{tmp_path / 'ioc.db'}",
            "--metrics-port", "0",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        ready_at, ready = notify_socket.wait(lambda m: m.get("READY") == "1")
        assert ready["STATUS"] == "running: 0 records stored, 0 batches"
        notify_socket.wait(is_ping, after=ready_at)
        proc.send_signal(signal.SIGTERM)
        notify_socket.wait(lambda m: m.get("STOPPING") == "1")
        assert proc.wait(30) == 0
        assert proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        proc.stderr.close()
