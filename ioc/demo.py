"""``ioc-center demo``: the whole system on one machine — a broker, the centre and three edge nodes.

:class:`Demo` starts, in order: a private mosquitto on a free loopback port
(:class:`~ioc.broker.PrivateBroker`), the receiver with its database in the work directory, the
dashboard (an operator and a viewer with passwords made for the run), and the
three nodes of :mod:`ioc.demo_field`: a vessel replaying a real NMEA capture and a roadside camera
replaying ``media/bikes.mp4`` through the real detector (each ``python -m edge run`` in a process of
its own), and an environment node whose particulate sensors, rain gauge and river sonar the demo
plays, with a flood alarm every ``flood_every_s``. Every few seconds it prints what the centre has
received; with ``exit_when_done`` it stops once every kind of record has arrived (the vessel's whole
capture, counts, an event, summaries, a flood alarm raised and cleared) and prints a summary. Stopping
undoes the start in reverse.

The demo is the one place on the IOC side that reads the edge side's config and store: it plays
both parts, like a technician with the node's laptop in one hand and the IOC's screen in the other.

Files in the work directory (an earlier run's are replaced)::

    vessel/edge.toml, vessel/state/, vessel/node.log          the vessel node
    camera/edge.toml, camera/state/, camera/node.log          the camera node
    environment/edge.toml, environment/state/                 the environment node (log: demo.log)
    ioc.db                                                    the IOC's database (and its users)
    broker/                                                   mosquitto's config and log

Example::

    stop = threading.Event()
    Demo(DemoOptions(Path("demo-state"), shared_dir()), stop).run()

Raises :class:`DemoError` (shared data missing, a node died) and the errors of the parts
(:class:`~ioc.broker.BrokerError` when mosquitto is missing), all :class:`IocEdgeError`.
"""

from __future__ import annotations

import collections
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

from edge.config import load_config
from edge.errors import IocEdgeError
from edge.runtime import open_store
from ioc.broker import PrivateBroker
from ioc.db import Database
from ioc.demo_field import (
    CAMERA_ID,
    ENVIRONMENT_ID,
    FLOOD_LEVEL_M,
    NMEA_BAUDRATE,
    VESSEL_ID,
    EnvironmentRig,
    camera_config,
    vessel_config,
)
from ioc.receiver import Receiver
from ioc.web.app import create_app
from ioc.web.auth import Users
from ioc.web.server import WebServer
from ioc.web.settings import WaterLevelThreshold, WebSettings

__all__ = ["Demo", "DemoError", "DemoOptions", "find_capture", "shared_dir"]

log = logging.getLogger(__name__)

POLL_S = 1.0
REPORT_EVERY_S = 5.0
SETTLE_S = 4.0
"""After the vessel's replay ends, time for its last records and final counters to be committed."""
NODE_STOP_TIMEOUT_S = 20.0
SUBSCRIBE_TIMEOUT_S = 10.0
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
        self.start_broker()
        self.start_receiver()
        self.start_dashboard()
        self.start_vessel()
        self.start_camera()
        self.start_environment()

    def init_workdir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ignore = self.workdir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# written by ioc-center demo: nothing here belongs in git\n*\n")
        for name in ("ioc.db", "ioc.db-wal", "ioc.db-shm", "broker/mosquitto.log"):
            (self.workdir / name).unlink(missing_ok=True)
        for node in ("vessel", "camera", "environment"):
            shutil.rmtree(self.workdir / node, ignore_errors=True)
            (self.workdir / node).mkdir()

    def start_broker(self) -> None:
        self.broker = PrivateBroker(self.workdir / "broker")
        self.broker.start()
        self._undo.append(self.broker.stop)
        self.echo(f"demo: broker       mosquitto on {self.broker.host}:{self.broker.port}")

    def start_receiver(self) -> None:
        self.db = Database(f"sqlite:///{self.workdir / 'ioc.db'}")
        self._undo.append(self.db.close)
        self.receiver = Receiver(self.db, self.broker.host, self.broker.port, client_id="ioc-center-demo")
        self.receiver.start()
        self._undo.append(self.receiver.stop)
        # Batches published before the shared subscription exists would reach no one (until resent).
        if not self.receiver.subscribed.wait(SUBSCRIBE_TIMEOUT_S):
            raise DemoError(f"the receiver did not subscribe within {SUBSCRIBE_TIMEOUT_S:g} s")
        self.echo(f"demo: receiver     database {self.shown / 'ioc.db'}")

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
        path = self._write_config("vessel", vessel_config(self.capture, self.broker.port, options.speed))
        self.vessel_store = open_store(load_config(path))  # a bad config stops the demo here
        self._undo.append(self.vessel_store.close)
        self.vessel = self._start_process_node("vessel", path)
        size = self.capture.stat().st_size
        pace = "as fast as possible" if not options.speed else f"at speed {options.speed:g}"
        took = f", about {size / (NMEA_BAUDRATE / 10 * options.speed):.0f} s" if options.speed else ""
        self.echo(
            f"demo:              {VESSEL_ID} replays {self.capture.name} ({size / 1000:.0f} kB) {pace}{took}"
        )

    def start_camera(self) -> None:
        path = self._write_config("camera", camera_config(self.video, self.model, self.broker.port))
        self.camera = self._start_process_node("camera", path)
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

    def progress(self) -> str:
        counts = self.received()
        open_alarms = self.db.fetch(
            "SELECT COUNT(*) AS n FROM rec_alarm a WHERE state = 1 AND NOT EXISTS (SELECT 1 FROM rec_alarm b "
            "WHERE b.device = a.device AND b.source = a.source AND b.kind = a.kind AND b.ts_ms > a.ts_ms)"
        )[0]["n"]
        return (
            f"demo: {time.strftime('%H:%M:%S')}  {' '.join(f'{SHOWN[k]}={v}' for k, v in counts.items())}  "
            f"open_alarms={open_alarms}  vessel_backlog={sum(self.vessel_store.backlog().values())}"
        )

    def everything_arrived(self) -> bool:
        """The vessel's capture is in, and counts, an event, summaries and a raised and cleared alarm."""
        ended = self.vessel.replay_ended
        if ended is None or time.monotonic() - ended < SETTLE_S or sum(self.vessel_store.backlog().values()):
            return False
        counts = self.received()
        states = {r["state"] for r in self.db.fetch("SELECT DISTINCT state FROM rec_alarm")}
        return all(counts[s] for s in ("count", "event", "summary")) and states == {0, 1}

    def summary(self) -> None:
        counts = self.received()
        rows = [(f"{SHOWN[stream].replace('_', ' ')} received", str(n)) for stream, n in counts.items()]
        rows += [
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
