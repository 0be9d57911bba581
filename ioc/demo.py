"""``ioc-center demo``: the whole system on one machine — a broker, the centre and three edge nodes.

:class:`Demo` starts, in order: a CA (as ``ioc-center ca init`` makes one) with a signer that
provisions the three nodes (each a key of its own, mode 0600, and a certificate chain, as
``ioc-edge provision`` makes them); a private mosquitto on free loopback ports with the mutual-TLS
configuration of ``ioc-center broker-config`` (:class:`~ioc.broker.PrivateBroker`); the receiver over
mutual TLS with its database in the work directory, checking the nodes' signatures against the CA
(as ``ioc-center run --tls`` does); the dashboard (an operator and a viewer with passwords made for
the run); and the three nodes of :mod:`ioc.demo_field`: a vessel replaying a real NMEA capture, with
its signed track log and a forbidden area its GPS wanders into; an environment node whose particulate
sensors, rain gauge and river sonar the demo plays, with a flood alarm every ``flood_every_s``; and a
roadside camera replaying ``media/bikes.mp4`` through the real detector, self-tested first (``ioc-edge
selftest``, which leaves its signed commissioning record). The vessel and the camera each run as
``python -m edge run`` in a process of its own. Every few seconds it prints what the centre has
received; with ``exit_when_done`` it stops once every kind of record has arrived (the vessel's whole
capture and its track log verified to the end, counts, an event, summaries, the flood and geofence
alarms raised and cleared, the camera's commissioning record judged) and prints a summary. Stopping
undoes the start in reverse.

The demo is the one place on the IOC side that reads the edge side's config and store: it plays
both parts, like a technician with the node's laptop in one hand and the IOC's screen in the other.

Files in the work directory (an earlier run's are replaced)::

    ca/                                                       the CA (``ioc-center ca``), signer ``demo``
    vessel/edge.toml, vessel/state/, vessel/node.log          the vessel node (``vessel/link``: its link)
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.errors import IocEdgeError
from edge.config import load_config
from edge.provision import TLS_FILES
from edge.runtime import open_store
from ioc import commissioning
from ioc.broker import PrivateBroker, free_port
from ioc.ca import CertificateAuthority
from ioc.db import Database
from ioc.demo_field import (
    BERTH_NAME,
    CAMERA_ID,
    ENVIRONMENT_ID,
    FLOOD_LEVEL_M,
    NMEA_BAUDRATE,
    VESSEL_ID,
    EnvironmentRig,
    camera_config,
    vessel_config,
)
from ioc.enrolment import Register
from ioc.mosquitto_conf import BrokerSettings, write_broker_config
from ioc.receiver import Receiver
from ioc.track import chain_status
from ioc.web.app import create_app
from ioc.web.auth import Users
from ioc.web.queries import open_alarms
from ioc.web.server import WebServer
from ioc.web.settings import WaterLevelThreshold, WebSettings
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
SIGNER = "demo"
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
    """An edge node run as ``python -m edge run CONFIG``, its log copied to ``node.log`` and watched.

    Its warnings and anything that is not a log line (a traceback, a config error) are shown on the
    demo's stderr, prefixed with the node's name.
    """

    def __init__(self, name: str, config_path: Path) -> None:
        self.name, self.config_path = name, config_path
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
        for name in ("ca", "broker", *NODES):
            shutil.rmtree(self.workdir / name, ignore_errors=True)
        for node in NODES:
            (self.workdir / node).mkdir()

    def init_ca(self) -> None:
        """A new CA and signer, and each node provisioned with them: ``ca init``, ``ca issue-signer``,
        ``ioc-edge provision`` (a key made for the node, its request signed with the credential)."""
        self.ca = CertificateAuthority.create(self.workdir / "ca", "IOC demo")
        credential = SigningCredential.load(self.ca.issue_signer(SIGNER))
        self.certificates = []
        for node, device in NODES.items():
            files = TlsFiles(*(self.workdir / node / TLS_FILES[name] for name in ("ca", "cert", "key")))
            self.certificates.append(NodeIdentity(files).renew(device, "demo", credential))
        nodes = ", ".join(NODES.values())
        self.echo(f"demo: CA           {self.shown / 'ca'} (signer {SIGNER}); provisioned {nodes}")

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

    def _start_process_node(self, name: str, config_path: Path) -> NodeProcess:
        node = NodeProcess(name, config_path)
        node.start()
        self._undo.append(node.stop)
        self.echo(f"demo: {name + ' node':<12} pid {node.proc.pid}, config {self.shown / name / 'edge.toml'}")
        return node

    def start_vessel(self) -> None:
        options = self.options
        path = self._write_config(
            "vessel", vessel_config(self.capture, self.broker.port, options.speed, berth=self.berth)
        )
        self.vessel_store = open_store(load_config(path))  # a bad config stops the demo here
        self._undo.append(self.vessel_store.close)
        self.vessel = self._start_process_node("vessel", path)
        size = self.capture.stat().st_size
        pace = "as fast as possible" if not options.speed else f"at speed {options.speed:g}"
        took = f", about {size / (NMEA_BAUDRATE / 10 * options.speed):.0f} s" if options.speed else ""
        self.echo(
            f"demo:              {VESSEL_ID} replays {self.capture.name} ({size / 1000:.0f} kB) {pace}{took}"
        )
        fence = f", forbidden area {BERTH_NAME}" if self.berth else ""
        self.echo(
            f"demo:              signed track log{fence}; link 'cheap' (`echo satellite > "
            f"{self.shown / 'vessel' / 'link'}`: live track thinned, log held)"
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
            f"demo: environment  {ENVIRONMENT_ID}: PM sensors on ptys, rain and river on mock pins, "
            f"a flood every {self.options.flood_every_s:g} s"
        )

    # -- watching ------------------------------------------------------------------------------------

    def watch(self) -> None:
        """Report what the centre holds every few seconds; the summary once everything has arrived."""
        done = False
        last_report = time.monotonic()
        while not self.stop_event.wait(POLL_S):
            for node in (self.vessel, self.camera):
                node.check()
            if time.monotonic() - last_report >= REPORT_EVERY_S:
                last_report = time.monotonic()
                self.echo(self.progress())
            if not done and self.everything_arrived():
                done = True
                self.summary()
                if self.options.exit_when_done:
                    return
                self.echo("demo: still running; Ctrl-C stops it")

    def received(self) -> dict[str, int]:
        return {stream: self.db.count(stream) for stream in SHOWN}

    def track_chain(self) -> dict | None:
        """The vessel's newest track chain at the IOC (``ioc.track.chain_status``), or None."""
        return next(iter(chain_status(self.db, VESSEL_ID, flags=0)["chains"]), None)

    def progress(self) -> str:
        counts = self.received()
        chain = self.track_chain()
        return (
            f"demo: {time.strftime('%H:%M:%S')}  {' '.join(f'{SHOWN[k]}={v}' for k, v in counts.items())}  "
            f"track_verified={chain['verified_idx'] + 1 if chain else 0}  "
            f"open_alarms={open_alarms(self.db)}  vessel_backlog={sum(self.vessel_store.backlog().values())}"
        )

    def alarms_raised_and_cleared(self) -> set[tuple[str, str, str]]:
        """(device, source, kind) of the alarms the centre has seen both raised and cleared."""
        rows = self.db.fetch(
            "SELECT device, source, kind FROM rec_alarm GROUP BY device, source, kind "
            "HAVING MIN(state) = 0 AND MAX(state) = 1"
        )
        return {(r["device"], r["source"], r["kind"]) for r in rows}

    def everything_arrived(self) -> bool:
        """The vessel's capture is in and its track log verified to its end, and counts, an event,
        summaries, the flood's alarm (and the berth's) raised and cleared, the camera's self-test judged."""
        ended = self.vessel.replay_ended
        if ended is None or time.monotonic() - ended < SETTLE_S or any(self.vessel_store.backlog().values()):
            return False
        counts = self.received()
        expected = {(ENVIRONMENT_ID, "river", "flood")}
        if self.berth:
            expected.add((VESSEL_ID, BERTH_NAME, "geofence_entered"))
        chain = self.track_chain()
        judged = commissioning.latest(self.db, CAMERA_ID)
        return (
            all(counts[s] for s in ("count", "event", "summary"))
            and expected <= self.alarms_raised_and_cleared()
            and chain is not None
            and chain["verified_idx"] >= 0
            and chain["waiting"] == 0
            and judged is not None
            and judged["verdict"] != commissioning.UNCHECKED
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


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(counts.items()) if v) or "none"
