"""``ioc-center demo``: the whole data path on one machine, from a replayed GPS capture to the IOC.

:class:`Demo` starts, in order: a private mosquitto on a free loopback port
(:class:`~ioc.broker.PrivateBroker`), the receiver with its database in the work directory, and an
edge node as a process of its own (``python -m edge run``) with a config the demo writes: one NMEA
GPS driver replaying a real capture (``$IOC_EDGE_SHARED/nmea/ais-nmea.log`` by default). Every
second it prints the positions newly stored in the IOC's database and the node's backlog; once the
replay is over and the backlog is empty it prints a summary. Stopping undoes the start in reverse:
the node (SIGTERM, then wait), the receiver, the broker.

The demo is the one place on the IOC side that reads the edge side's config and store: it plays
both parts, like a technician with the node's laptop in one hand and the IOC's screen in the other.

Files in the work directory (an earlier run's are replaced)::

    edge.toml        the node's config
    node/store.db    the node's store: ioc-edge status WORKDIR/edge.toml
    node.log         the node's log (key=value lines)
    ioc.db           the IOC's database: ioc-center dump position --db sqlite:///WORKDIR/ioc.db
    broker/          mosquitto's config and log

Example::

    stop = threading.Event()
    Demo(DemoOptions(Path("demo-state"), find_capture(None), speed=4), stop).run()

Raises :class:`DemoError` (shared data missing, the node died) and the errors of the parts
(:class:`~ioc.broker.BrokerError` when mosquitto is missing), all :class:`IocEdgeError`.
"""

from __future__ import annotations

import collections
import datetime
import json
import logging
import os
import signal
import sqlite3
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
from ioc.receiver import Receiver
from sync.records import Position, TimeSource
from sync.wire import POSITION

__all__ = ["Demo", "DemoError", "DemoOptions", "find_capture", "format_position", "node_config"]

log = logging.getLogger(__name__)

DEVICE_ID = "vessel-042"
DRIVER = "gps"
BAUDRATE = 4800
FLUSH_INTERVAL_S = 1.0
STATUS_INTERVAL_S = 2
SETTLE_S = STATUS_INTERVAL_S + FLUSH_INTERVAL_S + 1.0
"""After the replay's end, time for its last records and the node's final counters to be committed."""
POLL_S = 1.0
NODE_STOP_TIMEOUT_S = 20.0
SUBSCRIBE_TIMEOUT_S = 10.0
DEFAULT_CAPTURE = Path("nmea") / "ais-nmea.log"

HEADER = (
    f"{'count':>6}  {'time (UTC)':<24} {'source':<6} {'lat':>11} {'lon':>12} "
    f"{'speed kn':>8} {'course':>6} {'backlog':>7}"
)


class DemoError(IocEdgeError, RuntimeError):
    """The demo cannot start (no capture to replay) or one of its parts failed."""


@dataclass(frozen=True)
class DemoOptions:
    """What to run: ``workdir`` for every file, ``capture`` to replay at ``speed`` (0: at once)."""

    workdir: Path
    capture: Path
    speed: float = 4.0
    exit_when_done: bool = False


def shared_dir() -> Path:
    """``$IOC_EDGE_SHARED``, else ``shared/`` beside the repository."""
    return Path(os.environ.get("IOC_EDGE_SHARED") or Path(__file__).resolve().parents[2] / "shared")


def find_capture(capture: str | os.PathLike[str] | None) -> Path:
    """``capture``, else the shared ``nmea/ais-nmea.log``; raises :class:`DemoError` when it is missing."""
    if capture is not None:
        if not Path(capture).is_file():
            raise DemoError(f"capture {capture} not found")
        return Path(capture).resolve()
    path = shared_dir() / DEFAULT_CAPTURE
    if not path.is_file():
        raise DemoError(
            f"shared data not found: {path} does not exist; set IOC_EDGE_SHARED to the shared/ "
            "directory (the one holding nmea/), or pass --capture FILE"
        )
    return path.resolve()


def node_config(capture: Path, port: int, speed: float) -> str:
    """The TOML config of the demo's node: state in ``node/``, one GPS replaying ``capture``."""
    return f"""\
# Written by `ioc-center demo`: an edge node replaying a GPS capture into the demo's broker.
[node]
device_id = "{DEVICE_ID}"
site = "demo"
state_dir = "node"                # relative to this file

[store]
flush_interval_s = {FLUSH_INTERVAL_S}
status_interval_s = {STATUS_INTERVAL_S}             # often, so the demo's summary has the final counters

[uplink]
host = "127.0.0.1"
port = {port}

[drivers.{DRIVER}]
type = "nmea"

[drivers.{DRIVER}.transport]
type = "replay"
path = {json.dumps(str(capture))}
speed = {float(speed)!r}                       # 1 is real time at the baud rate, 0 as fast as possible
baudrate = {BAUDRATE}
"""


def format_position(count: int, position: Position, backlog: int) -> str:
    """One line of the demo's table (see ``HEADER``).

    Example::

        >>> format_position(1, Position(1586295590000, 1, 0, 52.8422782, 5.70582, 0.02), 3)
        '     1  2020-04-07T21:39:50.000Z gps     52.8422782    5.7058200     0.02      -       3'
    """
    when = datetime.datetime.fromtimestamp(position.ts_ms / 1000, datetime.UTC)
    speed = "-" if position.speed_kn is None else f"{position.speed_kn:.2f}"
    course = "-" if position.course_deg is None else f"{position.course_deg:.1f}"
    return (
        f"{count:>6}  {when:%Y-%m-%dT%H:%M:%S}.{position.ts_ms % 1000:03d}Z "
        f"{TimeSource(position.tsrc).name.lower():<6} {position.lat:>11.7f} {position.lon:>12.7f} "
        f"{speed:>8} {course:>6} {backlog:>7}"
    )


def _counts(counts: dict[str, int]) -> str:
    return " ".join(f"{k}={v}" for k, v in sorted(counts.items()) if v) or "none"


class Demo:
    """Broker, receiver and a replaying edge node, watched until ``stop_event`` is set.

    ``echo`` receives each line of the demo's output. :meth:`run` is :meth:`start`, :meth:`watch`
    and, whatever happens, :meth:`stop`.
    """

    def __init__(
        self, options: DemoOptions, stop_event: threading.Event, echo: Callable[[str], None] = print
    ) -> None:
        self.options = options
        self.workdir = options.workdir.resolve()
        self.shown = options.workdir  # as the user wrote it, for the commands the demo suggests
        self.stop_event = stop_event
        self.echo = echo
        self.count = 0
        self._undo: list[Callable[[], None]] = []
        self._stopping = False
        self._replay_ended: float | None = None
        self._driver_crashed = False
        self._node_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._last_rowid = 0

    def run(self) -> None:
        try:
            self.start()
            self.watch()
        finally:
            self.stop()
        self.echo("demo: stopped the node, the receiver and the broker")

    # -- start, in order ---------------------------------------------------------------------------

    def start(self) -> None:
        self.init_workdir()
        self.start_broker()
        self.start_receiver()
        self.start_node()

    def init_workdir(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ignore = self.workdir / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# written by ioc-center demo: nothing here belongs in git\n*\n")
        leftovers = ["ioc.db", "ioc.db-wal", "ioc.db-shm", "node.log", "broker/mosquitto.log"]
        for name in leftovers + [f"node/store.db{end}" for end in ("", "-wal", "-shm")]:
            (self.workdir / name).unlink(missing_ok=True)

    def start_broker(self) -> None:
        self.broker = PrivateBroker(self.workdir / "broker")
        self.broker.start()
        self._undo.append(self.broker.stop)
        self.echo(f"demo: broker    mosquitto on {self.broker.host}:{self.broker.port}")

    def start_receiver(self) -> None:
        path = self.workdir / "ioc.db"
        self.db = Database(f"sqlite:///{path}")
        self._undo.append(self.db.close)
        self.receiver = Receiver(self.db, self.broker.host, self.broker.port, client_id="ioc-center-demo")
        self.receiver.start()
        self._undo.append(self.receiver.stop)
        # Batches published before the shared subscription exists would reach no one (until resent).
        if not self.receiver.subscribed.wait(SUBSCRIBE_TIMEOUT_S):
            raise DemoError(f"the receiver did not subscribe within {SUBSCRIBE_TIMEOUT_S:g} s")
        # A connection of our own to read new rows; the receiver's is busy in its thread.
        self.reader = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, check_same_thread=False)
        self._undo.append(self.reader.close)
        self.echo(f"demo: receiver  database {self.shown / 'ioc.db'}")

    def start_node(self) -> None:
        options = self.options
        config_path = self.workdir / "edge.toml"
        config_path.write_text(node_config(options.capture, self.broker.port, options.speed))
        self.store = open_store(load_config(config_path))  # a bad config stops the demo here
        self._undo.append(self.store.close)
        self._node_log = open(self.workdir / "node.log", "w")  # noqa: SIM115 - closed in _stop_node
        self.node = subprocess.Popen(
            [sys.executable, "-m", "edge", "--log-level", "INFO", "run", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            # Its own session: Ctrl-C reaches only the demo, which stops the node first, in order.
            start_new_session=True,
        )
        self._undo.append(self._stop_node)
        self._log_reader = threading.Thread(target=self._read_node_log, name="node-log", daemon=True)
        self._log_reader.start()
        self.echo(
            f"demo: node      {DEVICE_ID} (pid {self.node.pid}), config {self.shown / 'edge.toml'}, "
            f"log {self.shown / 'node.log'}"
        )
        size = options.capture.stat().st_size
        pace = "as fast as possible" if not options.speed else f"at speed {options.speed:g}"
        took = f": about {size / (BAUDRATE / 10 * options.speed):.0f} s" if options.speed else ""
        self.echo(f"demo: replaying {options.capture.name} ({size / 1000:.0f} kB) {pace}{took}")

    # -- watching ------------------------------------------------------------------------------------

    def watch(self) -> None:
        """Print new positions every second; the summary once the replay is over and the backlog 0."""
        self.echo(HEADER)
        done = False
        while not self.stop_event.wait(POLL_S):
            self._check_node()
            backlog = sum(self.store.backlog().values())  # before the rows: what it acked is in them
            for position in self._new_positions():
                self.count += 1
                self.echo(format_position(self.count, position, backlog))
            if not done and self._replay_over() and backlog == 0:
                done = True
                self.summary()
                if self.options.exit_when_done:
                    return
                self.echo("demo: still running; Ctrl-C stops it")

    def _new_positions(self) -> list[Position]:
        rows = self.reader.execute(
            f"SELECT rowid, {', '.join(POSITION.names)} FROM rec_position WHERE rowid > ? ORDER BY rowid",
            [self._last_rowid],
        ).fetchall()
        if rows:
            self._last_rowid = rows[-1][0]
        return [Position._make(row[1:]) for row in rows]

    def _replay_over(self) -> bool:
        ended = self._replay_ended
        return ended is not None and time.monotonic() - ended >= SETTLE_S

    def _check_node(self) -> None:
        code = self.node.poll()
        if code is not None:
            self._log_reader.join(2)
            tail = "\n".join(self._node_tail) or "(no output)"
            raise DemoError(f"the edge node stopped by itself (exit code {code}); its last lines:\n{tail}")
        if self._driver_crashed:
            raise DemoError(f"the node's GPS driver crashed; see {self.shown / 'node.log'}")

    def summary(self) -> None:
        rows = [
            ("positions received", str(self.db.count("position"))),
            ("status records received", str(self.db.count("status"))),
            ("duplicates dropped by the IOC", str(self.receiver.stats["duplicates"])),
            ("rejected by the IOC", _counts(self.db.rejects())),
            ("rejected by the node", _counts(self.store.counters(f"reject.{DRIVER}"))),
            ("set aside by the node", _counts(self.store.counters("invalid"))),
            ("ignored by the node", _counts(self.store.counters(f"ignored.{DRIVER}"))),
            ("see them", f"ioc-center dump position --db sqlite:///{self.shown / 'ioc.db'}"),
            ("the node's view", f"ioc-edge status {self.shown / 'edge.toml'}"),
        ]
        self.echo("demo: done: the replay is over and the node's backlog is 0")
        width = max(len(name) for name, _ in rows) + 1
        for name, value in rows:
            self.echo(f"  {name + ':':<{width}} {value}")

    def _read_node_log(self) -> None:
        for line in self.node.stderr:
            self._node_log.write(line)
            self._node_log.flush()
            if " event=end_of_stream " in line and self._replay_ended is None:
                self._replay_ended = time.monotonic()
            elif " event=driver_crashed " in line:
                self._driver_crashed = True
            self._node_tail.append(line.rstrip())
            # Warnings and anything that is not a log line (a traceback, a config error) go on screen;
            # while stopping, the node's complaints about the broker going away are expected.
            loud = not line.startswith("ts=") or " level=warning " in line or " level=error " in line
            if loud and not self._stopping:
                print(f"node: {line.rstrip()}", file=sys.stderr, flush=True)

    # -- stop, in reverse ------------------------------------------------------------------------

    def stop(self) -> None:
        """Undo what :meth:`start` did, last first; safe after a partial start."""
        self._stopping = True
        while self._undo:
            undo = self._undo.pop()
            try:
                undo()
            except Exception:  # keep going: what is left must still be stopped
                log.exception("event=demo_stop_failed step=%s", getattr(undo, "__qualname__", undo))

    def _stop_node(self) -> None:
        if self.node.poll() is None:
            self.node.send_signal(signal.SIGTERM)
            try:
                self.node.wait(NODE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                log.warning("event=node_kill pid=%d reason=no_exit_after_sigterm", self.node.pid)
                self.node.kill()
                self.node.wait()
        self._log_reader.join(5)
        self._node_log.close()
