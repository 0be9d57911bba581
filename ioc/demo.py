"""``ioc-center demo``: the whole system on one machine — a broker, the centre and three edge nodes.

:class:`Demo` starts, in order: a CA (as ``ioc-center ca init`` makes one) with a signer that
provisions the three nodes (each a key of its own, mode 0600, and a certificate chain, as
``ioc-edge provision`` makes them); a private mosquitto on free loopback ports with the mutual-TLS
configuration of ``ioc-center broker-config`` (:class:`~ioc.broker.PrivateBroker`); the receiver over
mutual TLS with its database in the work directory, checking the nodes' signatures against the CA
(as ``ioc-center run --tls`` does); the dashboard (an operator and a viewer with passwords made for
the run); the dispatcher, which sends the nodes the centre's commands and warnings signed with a
command signer and a warning signer of the CA (as ``ioc-center run --command-key ... --warning-key
...`` does); and the three nodes of :mod:`ioc.demo_field`: a vessel replaying a real NMEA capture
(its times moved to now), with its signed track log, a forbidden area its GPS
wanders into and a siren and a light on mock pins; an environment node, a river station in Huế
whose particulate sensors, rain gauge and river sonar the demo plays, with a flood every
``flood_every_s`` that sounds its siren by itself; and a roadside camera replaying
``media/bikes.mp4`` through the real detector, self-tested first (``ioc-edge selftest``, which
leaves its signed commissioning record).
The vessel and the camera each run as ``python -m edge run`` in a process of its own.

Once the vessel is heard and its track has begun, the centre issues a storm warning over the sea
around it; once the vessel has it, the demo plays the crew and acknowledges it on board (``ioc-edge
warn ack``). Every few seconds it prints what the centre has received; with ``exit_when_done`` it
stops once every kind of record has arrived (the vessel's whole capture and its track log verified
to the end, counts, an event, summaries, the flood and geofence alarms raised and cleared, the
camera's commissioning record judged, the station's siren sounded, the storm warning acknowledged)
and prints a summary. Stopping undoes the start in reverse.

The demo is the one place on the IOC side that reads the edge side's config and store: it plays
both parts, like a technician with the node's laptop in one hand and the IOC's screen in the other.

Files in the work directory (an earlier run's are replaced)::

    ca/                                                       the CA (``ioc-center ca``), signer ``demo``
    centre/command-signers/, centre/warning-signers/          the dispatcher's signing keys, ``demo.key``
    vessel/edge.toml, vessel/state/, vessel/node.log          the vessel node (``vessel/link``: its link)
    vessel/capture.nmea                                       the capture it replays, its times moved
    camera/edge.toml, camera/state/, camera/node.log          the camera node
    environment/edge.toml, environment/state/                 the environment node (log: demo.log)
    */tls/                                                    each node's key and certificate chain
    ioc.db                                                    the IOC's database (and its users)
    broker/, broker/tls/                                      mosquitto's config and log; its TLS files

Example::

    stop = threading.Event()
    Demo(DemoOptions(Path("demo-state"), shared_dir()), stop).run()

Raises :class:`DemoError` (shared data missing, a node died) and the errors of the parts
(:class:`~ioc.broker.BrokerError` when mosquitto is missing), all :class:`IocEdgeError`.
"""

from __future__ import annotations

import collections
import datetime
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from common.errors import IocEdgeError
from edge.config import load_config
from edge.provision import TLS_FILES
from edge.runtime import open_store
from ioc import commissioning
from ioc.broker import PrivateBroker, free_port
from ioc.ca import CertificateAuthority
from ioc.commands import Dispatcher
from ioc.db import Database, now_ms
from ioc.demo_field import (
    BERTH_NAME,
    CAMERA_ID,
    ENVIRONMENT_ID,
    FLOOD_LEVEL_M,
    FLOOD_PATTERN,
    NMEA_BAUDRATE,
    SIREN_PIN,
    STORM_PATTERN,
    VESSEL_ID,
    EnvironmentRig,
    camera_config,
    shift_capture,
    storm_warning,
    vessel_config,
)
from ioc.enrolment import Register
from ioc.mosquitto_conf import BrokerSettings, write_broker_config
from ioc.receiver import Receiver
from ioc.track import chain_status
from ioc.warnings import TargetReceipt, Warnings, default_sender
from ioc.web.app import create_app
from ioc.web.auth import Users
from ioc.web.queries import open_alarms
from ioc.web.server import WebServer
from ioc.web.settings import WaterLevelThreshold, WebSettings
from provisioning.commands import COMMAND_SIGNER, WARNING_SIGNER, CommandSigner
from provisioning.credential import SigningCredential
from provisioning.identity import NodeIdentity
from provisioning.revocation import CrlFile
from provisioning.tls import TlsFiles

__all__ = ["Demo", "DemoError", "DemoOptions", "find_capture", "shared_dir"]

log = logging.getLogger(__name__)

POLL_S = 1.0
REPORT_EVERY_S = 5.0
SETTLE_S = 4.0
"""After the vessel's replay ends, time for its last records and final counters to be committed."""
NODE_STOP_TIMEOUT_S = 20.0
SUBSCRIBE_TIMEOUT_S = 10.0
SELFTEST_SECONDS = 10.0
"""How long each check of the camera's self-test may wait for its part (``ioc-edge selftest --seconds``),
and the model's budget: generous, as the vessel and the environment run beside it on a small machine."""
SELFTEST_TIMEOUT_S = 60.0
ACK_TIMEOUT_S = 30.0
CLOCK_LAG_S = 240.0
"""How far behind now the vessel's replayed GPS may start: every certificate is backdated five minutes
(``provisioning.pki.BACKDATE``), so its clock trusts the CA's from the first fix."""
SIGNER = "demo"
"""The technician's signer that provisions the nodes, and the name of the dispatcher's signers."""
MOCK_PINS = {"GPIOZERO_PIN_FACTORY": "mock"}
"""The vessel's environment: gpiozero's mock pins for its siren and light (gpiozero reads it)."""
NODES = {"vessel": VESSEL_ID, "camera": CAMERA_ID, "environment": ENVIRONMENT_ID}
"""The nodes' directories in the work directory, and their device ids."""
DEFAULT_CAPTURE = Path("nmea") / "ais-nmea.log"
VIDEO = Path("media") / "bikes.mp4"
MODEL = Path("models") / "yolox_nano.onnx"
SHOWN = {
    "position": "positions",
    "count": "counts",
    "event": "events",
    "summary": "summaries",
    "alarm": "alarms",
    "status": "status_reports",
    "ais": "ais_sentences",
    "track": "track_records",
}
"""Streams the demo reports, by the name it shows them under."""


class DemoError(IocEdgeError, RuntimeError):
    """The demo cannot start (shared data missing) or one of its parts failed."""


@dataclass(frozen=True)
class DemoOptions:
    """What to run: files in ``workdir``; media from ``shared``; ``capture`` replayed at ``speed``
    (0: as fast as possible); a flood every ``flood_every_s``; the dashboard on ``http_port`` (0: a
    free one)."""

    workdir: Path
    shared: Path
    capture: Path | None = None
    speed: float = 4.0
    flood_every_s: float = 90.0
    http_port: int = 8080
    exit_when_done: bool = False


def shared_dir() -> Path:
    """``$IOC_EDGE_SHARED``, else ``shared/`` beside the repository."""
    return Path(os.environ.get("IOC_EDGE_SHARED") or Path(__file__).resolve().parents[2] / "shared")


def find_capture(capture: str | os.PathLike[str] | None, shared: Path) -> Path:
    """``capture``, else the shared ``nmea/ais-nmea.log``; raises :class:`DemoError` when it is missing."""
    if capture is not None:
        if not Path(capture).is_file():
            raise DemoError(f"capture {capture} not found")
        return Path(capture).resolve()
    return _shared_file(shared, DEFAULT_CAPTURE, "or pass --capture FILE")


def _shared_file(shared: Path, name: Path, hint: str = "") -> Path:
    path = shared / name
    if not path.is_file():
        raise DemoError(
            f"shared data not found: {path} does not exist; set IOC_EDGE_SHARED to the shared/ "
            f"directory (the one holding nmea/, media/ and models/){', ' + hint if hint else ''}"
        )
    return path.resolve()


class NodeProcess:
    """An edge node run as ``python -m edge run CONFIG`` (``env`` added to the demo's environment), its
    log copied to ``node.log`` and watched.

    Its warnings and anything that is not a log line (a traceback, a config error) are shown on the
    demo's stderr, prefixed with the node's name.
    """

    def __init__(self, name: str, config_path: Path, env: Mapping[str, str] | None = None) -> None:
        self.name, self.config_path, self.env = name, config_path, dict(env or {})
        self.log_path = config_path.parent / "node.log"
        self.replay_ended: float | None = None
        self.crashed = False
        self.stopping = False
        self._tail: collections.deque[str] = collections.deque(maxlen=20)

    def start(self) -> None:
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge", "--log-level", "INFO", "run", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **self.env},
            # Its own session: Ctrl-C reaches only the demo, which stops the node first, in order.
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read_log, name=f"{self.name}-log", daemon=True)
        self._reader.start()

    def check(self) -> None:
        """Raise :class:`DemoError` when the node stopped by itself or a driver crashed."""
        code = self.proc.poll()
        if code is not None:
            self._reader.join(2)
            tail = "\n".join(self._tail) or "(no output)"
            raise DemoError(
                f"the {self.name} node stopped by itself (exit code {code}); its last lines:\n{tail}"
            )
        if self.crashed:
            raise DemoError(f"a driver of the {self.name} node crashed; see {self.log_path}")

    def stop(self) -> None:
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(NODE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning(
                    "event=node_kill node=%s pid=%d reason=no_exit_after_sigterm", self.name, self.proc.pid
                )
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        self._log.close()

    def _read_log(self) -> None:
        assert self.proc.stderr is not None, "start() opens the node with stderr=PIPE"
        for line in self.proc.stderr:
            self._log.write(line)
            self._log.flush()
            if " event=end_of_stream " in line and self.replay_ended is None:
                self.replay_ended = time.monotonic()
            elif " event=driver_crashed " in line or " event=camera_crashed " in line:
                self.crashed = True
            self._tail.append(line.rstrip())
            # While stopping, the node's complaints about the broker going away are expected.
            loud = not line.startswith("ts=") or " level=warning " in line or " level=error " in line
            if loud and not self.stopping:
                print(f"{self.name}: {line.rstrip()}", file=sys.stderr, flush=True)


class Demo:
    """Broker, receiver and three edge nodes, watched until ``stop_event`` is set.

    ``echo`` receives each line of the demo's output. :meth:`run` is :meth:`start`, :meth:`watch`
    and, whatever happens, :meth:`stop`.
    """

    def __init__(
        self, options: DemoOptions, stop_event: threading.Event, echo: Callable[[str], None] = print
    ) -> None:
        self.options = options
        self.capture = find_capture(options.capture, options.shared)
        # The forbidden berth is drawn where the shared capture's boat is moored; another capture has none.
        self.berth = self.capture == (options.shared / DEFAULT_CAPTURE).resolve()
        self.video = _shared_file(options.shared, VIDEO)
        self.model = _shared_file(options.shared, MODEL)
        self.workdir = options.workdir.resolve()
        self.shown = options.workdir  # as the user wrote it, for the commands the demo suggests
        self.stop_event = stop_event
        self.echo = echo
        self.storm: str | None = None
        """The storm warning's identifier, once issued."""
        self.crew_acked = False
        self._undo: list[Callable[[], None]] = []

    def run(self) -> None:
        try:
            self.start()
            self.watch()
        finally:
            self.stop()
        self.echo("demo: stopped the nodes, the centre and the broker")

    # -- start, in order ---------------------------------------------------------------------------

    def start(self) -> None:
        self.init_workdir()
        self.init_ca()
        self.start_broker()
        self.start_receiver()
        self.start_dashboard()
        self.start_vessel()
        self.start_environment()
        self.commission_camera()
        self.start_camera()

    def init_workdir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ignore = self.workdir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# written by ioc-center demo: nothing here belongs in git\n*\n")
        for name in ("ioc.db", "ioc.db-wal", "ioc.db-shm"):
            (self.workdir / name).unlink(missing_ok=True)
        for name in ("ca", "centre", "broker", *NODES):
            shutil.rmtree(self.workdir / name, ignore_errors=True)
        for name in ("centre", *NODES):
            (self.workdir / name).mkdir()

    def init_ca(self) -> None:
        """A new CA and signer, and each node provisioned with them: ``ca init``, ``ca issue-signer``,
        ``ioc-edge provision`` (a key made for the node, its request signed with the credential); and
        the centre's command signer and warning signer (``ca command-signer [--warnings]``)."""
        self.ca = CertificateAuthority.create(self.workdir / "ca", "IOC demo")
        credential = SigningCredential.load(self.ca.issue_signer(SIGNER))
        self.certificates = []
        for node, device in NODES.items():
            files = TlsFiles(*(self.workdir / node / TLS_FILES[name] for name in ("ca", "cert", "key")))
            self.certificates.append(NodeIdentity(files).renew(device, "demo", credential))
        self.signers = []
        for purpose in (COMMAND_SIGNER, WARNING_SIGNER):
            out = self.workdir / "centre" / purpose.unit
            out.mkdir()
            key, cert = self.ca.issue_command_signer(SIGNER, out, purpose=purpose)
            self.signers.append(CommandSigner.load(key, cert))
        nodes = ", ".join(NODES.values())
        self.echo(f"demo: CA           {self.shown / 'ca'} (signer {SIGNER}); provisioned {nodes}")
        self.echo(f"demo:              the centre's command and warning signers in {self.shown / 'centre'}")

    def start_broker(self) -> None:
        """mosquitto with ``ioc-center broker-config``'s listeners: devices and receivers over mutual TLS."""
        settings = BrokerSettings(port=free_port(), bind="127.0.0.1", centre_port=free_port())
        self.broker_tls = self.workdir / "broker" / "tls"
        # The nodes start_receiver enrols: mosquitto reads its devices' rules only when it starts.
        listeners = write_broker_config(self.ca, self.broker_tls, settings, devices=NODES.values())
        self.broker = PrivateBroker(self.workdir / "broker", settings.port, listeners=listeners)
        self.broker.start()
        self._undo.append(self.broker.stop)
        self.centre_port = settings.centre_port
        self.echo(
            f"demo: broker       mosquitto on {self.broker.host}:{self.broker.port}, mutual TLS "
            f"(receivers on port {self.centre_port})"
        )

    def start_receiver(self) -> None:
        """The receiver as ``ioc-center run --tls broker/tls --crl ca/devices-crl.pem``: signatures checked
        against its ca.crt and the CRLs, only the nodes' certificates enrolled (as ``ioc-center device
        enrol`` does)."""
        self.db = Database(f"sqlite:///{self.workdir / 'ioc.db'}")
        self._undo.append(self.db.close)
        register = Register(self.db)
        for cert in self.certificates:
            register.enrol(cert, self.ca, by="demo")
        self.receiver = Receiver(
            self.db,
            self.broker.host,
            self.centre_port,
            client_id="ioc-center-demo",
            tls=TlsFiles.receiver(self.broker_tls),
            register=register,
            crls=CrlFile(self.ca.devices_crl_path),
        )
        self.receiver.start()
        self._undo.append(self.receiver.stop)
        # Batches published before the shared subscription exists would reach no one (until resent).
        if not self.receiver.subscribed.wait(SUBSCRIBE_TIMEOUT_S):
            raise DemoError(f"the receiver did not subscribe within {SUBSCRIBE_TIMEOUT_S:g} s")
        self.echo(
            f"demo: receiver     database {self.shown / 'ioc.db'}; signatures checked against "
            f"{self.shown / 'ca' / 'ca.crt'}; {len(self.certificates)} nodes enrolled"
        )
        command_signer, warning_signer = self.signers
        self.dispatcher = Dispatcher(
            self.db,
            command_signer,
            self.broker.host,
            self.centre_port,
            warning_signer=warning_signer,
            client_id="ioc-center-demo.commands",
            tls=TlsFiles.receiver(self.broker_tls),
        )
        self.dispatcher.start()
        self._undo.append(self.dispatcher.stop)
        self.echo("demo: dispatcher   the nodes' commands and warnings, signed by the centre's signers")

    def start_dashboard(self) -> None:
        """The dashboard on loopback, with an operator and a viewer whose passwords are new each run."""
        users = Users(self.db)
        self.logins = {name: secrets.token_urlsafe(9) for name in ("operator", "viewer")}
        for name, password in self.logins.items():
            users.add(name, name, password)
        settings = WebSettings(
            water_level_thresholds={
                "river": WaterLevelThreshold(warn=FLOOD_LEVEL_M - 0.5, alarm=FLOOD_LEVEL_M)
            }
        )
        self.web = WebServer(create_app(self.db, settings), "127.0.0.1", self.options.http_port)
        self.web.start()
        self._undo.append(self.web.stop)
        self.echo(f"demo: dashboard    {self.web.url}/")
        self.echo(
            f"demo:              sign in as operator / {self.logins['operator']} "
            f"(or viewer / {self.logins['viewer']}, who cannot acknowledge alarms)"
        )

    def _write_config(self, name: str, text: str) -> Path:
        path = self.workdir / name / "edge.toml"
        path.write_text(text)
        return path

    def _start_process_node(
        self, name: str, config_path: Path, env: Mapping[str, str] | None = None
    ) -> NodeProcess:
        node = NodeProcess(name, config_path, env)
        node.start()
        self._undo.append(node.stop)
        self.echo(f"demo: {name + ' node':<12} pid {node.proc.pid}, config {self.shown / name / 'edge.toml'}")
        return node

    def start_vessel(self) -> None:
        """The vessel replays a copy of the capture whose times are moved to now (``shift_capture``: its
        clock follows its GPS, and a clock in the capture's past trusts none of this CA's certificates).

        So that its clock reads about the centre's time when the storm warning reaches it, the copy
        starts now when replayed at a pace (the warning comes early in the replay) and ends now when
        replayed as fast as possible (it comes after), starting at most :data:`CLOCK_LAG_S` ago."""
        options = self.options
        now = now_ms()
        starts_after = now if options.speed else now - round(CLOCK_LAG_S * 1000)
        replayed = shift_capture(self.capture, self.workdir / "vessel" / "capture.nmea", now, starts_after)
        path = self._write_config(
            "vessel", vessel_config(replayed, self.broker.port, options.speed, berth=self.berth)
        )
        self.vessel_store = open_store(load_config(path))  # a bad config stops the demo here
        self._undo.append(self.vessel_store.close)
        self.vessel = self._start_process_node("vessel", path, MOCK_PINS)
        size = self.capture.stat().st_size
        pace = "as fast as possible" if not options.speed else f"at speed {options.speed:g}"
        took = f", about {size / (NMEA_BAUDRATE / 10 * options.speed):.0f} s" if options.speed else ""
        self.echo(
            f"demo:              {VESSEL_ID} replays {self.capture.name} ({size / 1000:.0f} kB) "
            f"{pace}{took}, its times moved to now"
        )
        fence = f", forbidden area {BERTH_NAME}" if self.berth else ""
        self.echo(
            f"demo:              signed track log{fence}; link 'cheap' (`echo satellite > "
            f"{self.shown / 'vessel' / 'link'}`: live track thinned, log held); siren and light on mock "
            f"pins ({' '.join(f'{k}={v}' for k, v in MOCK_PINS.items())}), sounding {STORM_PATTERN}"
        )

    def commission_camera(self) -> None:
        """``ioc-edge selftest`` of the camera before it runs (its broker check connects as the node):
        the signed commissioning record it leaves in the store goes to the IOC once the node runs."""
        path = self._write_config("camera", camera_config(self.video, self.model, self.broker.port))
        command = [sys.executable, "-m", "edge", "selftest", "--json", "--seconds", f"{SELFTEST_SECONDS:g}"]
        try:
            done = subprocess.run(
                [*command, str(path)], capture_output=True, text=True, timeout=SELFTEST_TIMEOUT_S
            )
            report = json.loads(done.stdout)
        except subprocess.TimeoutExpired:
            raise DemoError(f"the camera's self-test took over {SELFTEST_TIMEOUT_S:g} s") from None
        except ValueError:
            raise DemoError(f"the camera's self-test failed:\n{done.stderr.strip()}") from None
        checks = report["checks"]
        passed = sum(c["status"] == "PASS" for c in checks)
        signed = "signed" if report["commissioning"]["signed"] else "UNSIGNED"
        self.echo(
            f"demo: camera       self-test: {passed} of {len(checks)} checks passed; "
            f"commissioning record {signed}, sent when the node starts"
        )
        for check in checks:
            if check["status"] == "FAIL":
                self.echo(f"demo:              FAIL {check['name']}: {check['detail']} -> {check['hint']}")

    def start_camera(self) -> None:
        self.camera = self._start_process_node("camera", self.workdir / "camera" / "edge.toml")
        self.echo(
            f"demo:              {CAMERA_ID} replays {self.video.name} in a loop through {self.model.name}"
        )

    def start_environment(self) -> None:
        self.environment = EnvironmentRig(
            self.workdir / "environment", self.broker.port, flood_every_s=self.options.flood_every_s
        )
        self.environment.start()
        self._undo.append(self.environment.stop)
        self.echo(
            f"demo: environment  {ENVIRONMENT_ID}: PM sensors on ptys, rain, river, siren and light on mock "
            f"pins, a flood every {self.options.flood_every_s:g} s sounding {FLOOD_PATTERN} by itself"
        )

    # -- watching ------------------------------------------------------------------------------------

    def watch(self) -> None:
        """Report what the centre holds every few seconds; the summary once everything has arrived."""
        done = False
        last_report = time.monotonic()
        while not self.stop_event.wait(POLL_S):
            for node in (self.vessel, self.camera):
                node.check()
            self.warn_the_vessel()
            if time.monotonic() - last_report >= REPORT_EVERY_S:
                last_report = time.monotonic()
                self.echo(self.progress())
            if not done and self.everything_arrived():
                done = True
                self.summary()
                if self.options.exit_when_done:
                    return
                self.echo("demo: still running; Ctrl-C stops it")

    # -- warnings ------------------------------------------------------------------------------------

    def warn_the_vessel(self) -> None:
        """Once the vessel is heard (as a node that moves) and its track has begun at the centre, issue
        a storm warning over the sea around it; once the vessel has it, acknowledge it as its crew."""
        if self.storm is None:
            track = self.db.fetch(
                "SELECT MIN(lat) AS s, MIN(lon) AS w, MAX(lat) AS n, MAX(lon) AS e FROM rec_position "
                "WHERE device = ?",
                [VESSEL_ID],
            )[0]
            heard = any(p.device == VESSEL_ID and p.mobile for p in self.warnings.places())
            if not heard or track["s"] is None:
                return
            bounds = (track["s"], track["w"], track["n"], track["e"])
            alert = storm_warning(bounds, default_sender(), now_ms())
            issued = self.warnings.issue(alert, None, "demo", now_ms())
            self.storm = alert.identifier
            reach = ", ".join(f"{t.device} ({t.why})" for t in issued.targets)
            self.echo(
                f"demo: storm        warning {self.storm} ({STORM_PATTERN}) issued over "
                f"{alert.areas[0].area_desc} to {reach}"
            )
        elif not self.crew_acked and (receipt := self.storm_receipt()) and receipt.delivered_ms:
            self.crew_acked = self.acknowledge_on_board()

    def acknowledge_on_board(self) -> bool:
        """The crew's ``ioc-edge warn ack`` through the vessel's control socket; whether it acknowledged
        the storm warning (if not, it is shown and tried again at the next poll)."""
        config = self.workdir / "vessel" / "edge.toml"
        shown = f"ioc-edge warn ack --config {self.shown / 'vessel' / 'edge.toml'}"
        command = [sys.executable, "-m", "edge", "warn", "ack", "--config", str(config)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=ACK_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.echo(f"demo: crew         {shown} took over {ACK_TIMEOUT_S:g} s; trying again")
            return False
        if done.returncode != 0 or str(self.storm) not in done.stdout:
            self.echo(f"demo: crew         {shown}: {(done.stderr or done.stdout).strip()}; trying again")
            return False
        self.echo(f"demo: crew         {shown}: {done.stdout.strip()}")
        return True

    @property
    def warnings(self) -> Warnings:
        """The centre's warnings, over the receiver's database."""
        return Warnings(self.db)

    def storm_receipt(self) -> TargetReceipt | None:
        """What became of the storm warning on the vessel, as the centre knows it (None: not issued)."""
        found = [r for r in self.warnings.receipts(self.storm) if r.device == VESSEL_ID] if self.storm else []
        return found[0] if found else None

    def flood_soundings(self) -> list[str]:
        """The river station's own soundings (local warnings) the centre knows sounded, newest first."""
        local = self.warnings.list(origin="local")
        return [w.identifier for w in local if w.device == ENVIRONMENT_ID and w.sounded]

    def received(self) -> dict[str, int]:
        return {stream: self.db.count(stream) for stream in SHOWN}

    def track_chain(self) -> dict | None:
        """The vessel's newest track chain at the IOC (``ioc.track.chain_status``), or None."""
        return next(iter(chain_status(self.db, VESSEL_ID, flags=0)["chains"]), None)

    def progress(self) -> str:
        counts = self.received()
        chain = self.track_chain()
        backlog = sum(self.vessel_store.backlog().values())
        return (
            f"demo: {time.strftime('%H:%M:%S')}  {' '.join(f'{SHOWN[k]}={v}' for k, v in counts.items())}  "
            f"track_verified={chain['verified_idx'] + 1 if chain else 0}  "
            f"open_alarms={open_alarms(self.db)}  vessel_backlog={backlog}  "
            f"sirens_at_the_river={len(self.flood_soundings())}  storm={self._storm_state()}"
        )

    def _storm_state(self) -> str:
        receipt = self.storm_receipt()
        if receipt is None:
            return "issued" if self.storm else "not_issued"
        steps = ("acknowledged", "sounded", "delivered")
        return next((s for s in steps if getattr(receipt, f"{s}_ms") is not None), "sent")

    def alarms_raised_and_cleared(self) -> set[tuple[str, str, str]]:
        """(device, source, kind) of the alarms the centre has seen both raised and cleared."""
        rows = self.db.fetch(
            "SELECT device, source, kind FROM rec_alarm GROUP BY device, source, kind "
            "HAVING MIN(state) = 0 AND MAX(state) = 1"
        )
        return {(r["device"], r["source"], r["kind"]) for r in rows}

    def everything_arrived(self) -> bool:
        """The vessel's capture is in and its track log verified to its end, and counts, an event,
        summaries, the flood's alarm (and the berth's) raised and cleared, the camera's self-test judged,
        the station's siren sounded by its flood alarm and the storm warning acknowledged on board."""
        ended = self.vessel.replay_ended
        if ended is None or time.monotonic() - ended < SETTLE_S or any(self.vessel_store.backlog().values()):
            return False
        counts = self.received()
        expected = {(ENVIRONMENT_ID, "river", "flood")}
        if self.berth:
            expected.add((VESSEL_ID, BERTH_NAME, "geofence_entered"))
        chain = self.track_chain()
        judged = commissioning.latest(self.db, CAMERA_ID)
        storm = self.storm_receipt()
        return (
            all(counts[s] for s in ("count", "event", "summary"))
            and expected <= self.alarms_raised_and_cleared()
            and chain is not None
            and chain["verified_idx"] >= 0
            and chain["waiting"] == 0
            and judged is not None
            and judged["verdict"] != commissioning.UNCHECKED
            and bool(self.flood_soundings())
            and storm is not None
            and storm.acknowledged_ms is not None
        )

    def summary(self) -> None:
        counts = self.received()
        rows = [(f"{SHOWN[stream].replace('_', ' ')} received", str(n)) for stream, n in counts.items()]
        alarms = sorted(
            f"{device} {source} ({kind})" for device, source, kind in self.alarms_raised_and_cleared()
        )
        rows += [
            ("vessel's track log", self._track_summary()),
            ("prove it offline", self._track_proof()),
            ("alarms raised and cleared", ", ".join(alarms)),
            ("camera's commissioning", self._commissioning_summary()),
            ("river station's siren", self._siren_summary()),
            ("storm warning on the vessel", self._storm_summary()),
            (
                "see the warnings",
                f"ioc-center warn show {self.storm} --db sqlite:///{self.shown / 'ioc.db'} (and warn list "
                "--local, warn export ID: its CAP XML); the dashboard's Warnings page",
            ),
            ("duplicates dropped by the IOC", str(self.receiver.stats["duplicates"])),
            ("rejected by the IOC", _counts(self.db.rejects())),
            ("rejected by the vessel's GPS", _counts(self.vessel_store.counters("reject.gps"))),
            ("ignored by the vessel's GPS", _counts(self.vessel_store.counters("ignored.gps"))),
            ("passed on by the vessel's GPS", _counts(self.vessel_store.counters("passed.gps"))),
            ("see them", f"ioc-center dump position --db sqlite:///{self.shown / 'ioc.db'}"),
            ("a node's view", f"ioc-edge status {self.shown / 'vessel' / 'edge.toml'}"),
        ]
        self.echo("demo: done: every node's records reached the centre")
        width = max(len(name) for name, _ in rows) + 1
        for name, value in rows:
            self.echo(f"  {name + ':':<{width}} {value}")

    def _track_summary(self) -> str:
        status = chain_status(self.db, VESSEL_ID)
        chain = status["chains"][0]
        flags = collections.Counter(f["kind"] for f in status["flags"])
        against = f"the CA ({self.shown / 'ca' / 'ca.crt'})" if chain["ca_checked"] else "no CA"
        return (
            f"chain {chain['epoch']} verified to record {chain['verified_idx']} against {against}; "
            f"flags: {_counts(flags)}"
        )

    def _track_proof(self) -> str:
        """The commands that export the vessel's log from its store and verify it with the CA alone."""
        span = self.db.fetch(
            "SELECT MIN(ts_ms) AS first, MAX(ts_ms) AS last FROM rec_track WHERE device = ?", [VESSEL_ID]
        )[0]
        day = 86_400_000
        start, end = (
            time.strftime("%Y-%m-%d", time.gmtime(ms / 1000)) for ms in (span["first"], span["last"] + day)
        )
        return (
            f"ioc-edge track export --config {self.shown / 'vessel' / 'edge.toml'} --from {start} --to {end} "
            f"--out vessel.track && ioc-center track verify vessel.track --ca {self.shown / 'ca' / 'ca.crt'} "
            f"--crl {self.shown / 'ca' / 'devices-crl.pem'}"
        )

    def _siren_summary(self) -> str:
        """The station's own soundings the centre has, and the first's receipts (the node's times)."""
        soundings = self.flood_soundings()
        [first] = self.warnings.receipts(soundings[-1])
        outputs = ", ".join(sorted(first.outputs))
        blasts = self.environment.siren_blasts()
        return (
            f"{len(soundings)} flood alarm(s) sounded {FLOOD_PATTERN} on {outputs} by itself; the first, "
            f"{first.identifier}, sounded at {_hms(first.sounded_ms)}, a local warning at the centre; the "
            f"siren's mock pin (GPIO{SIREN_PIN}) has switched on {blasts} times"
        )

    def _storm_summary(self) -> str:
        """The storm warning's receipts from the vessel (the node's times)."""
        receipt = self.storm_receipt()
        assert receipt is not None, "summary() follows everything_arrived(), which waits for it"
        inside = {1: "inside its area", 0: "outside its area", None: "inside unknown"}[receipt.inside]
        return (
            f"{receipt.identifier}: delivered at {_hms(receipt.delivered_ms)} ({inside}), sounded at "
            f"{_hms(receipt.sounded_ms)} on {', '.join(sorted(receipt.outputs)) or 'nothing'}, acknowledged "
            f"at {_hms(receipt.acknowledged_ms)} by {receipt.acknowledged_by}; both chained into its signed "
            "track (the export above lists them)"
        )

    def _commissioning_summary(self) -> str:
        record = commissioning.latest(self.db, CAMERA_ID)
        assert record is not None, "summary() follows everything_arrived(), which waits for it"
        passed = "passed" if (record["report"] or {}).get("passed") else "FAILED"
        return f"self-test {passed}; signature {record['verdict']}: {record['detail']}"

    # -- stop, in reverse ------------------------------------------------------------------------

    def stop(self) -> None:
        """Undo what :meth:`start` did, last first; safe after a partial start."""
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception:  # keep going: what is left must still be stopped
                log.exception("event=demo_stop_failed step=%s", getattr(undo, "__qualname__", undo))


def _hms(ms: int | None) -> str:
    """A node's time as ``HH:MM:SS`` UTC, or ``-`` when it has not reported it."""
    return "-" if ms is None else f"{datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC):%H:%M:%S} UTC"


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(counts.items()) if v) or "none"
