"""A config pushed by the centre, on the node: validated, written atomically, tried, kept or rolled back.

``ioc-edge run`` runs the node through a :class:`Supervisor`: it builds the :class:`~edge.runtime.Node`
of the config file, and rebuilds it in-process (every component stopped, the file read again, every
component started) when the command kind ``config`` has written a new config. The simplest restart
that is whole: no component has to learn to reconfigure itself, and nothing of the old config lingers.

The ``config`` kind (body ``{"text": TOML, "version": sha256 of the text}``):

1. refuses ``bad_body`` (no text, or a version that is not the text's hash), ``invalid_config`` (the
   node's own models, against the config file's directory: details ``{"problems": [...]}``, the lines
   a technician would see), ``identity_change`` (``node.device_id``, the ``[uplink.tls]`` files, or
   where the store lives: not remote-configurable), ``busy`` (another config on trial);
2. answers ``applied`` at once when the node runs that version already;
3. otherwise writes ``edge.toml.good`` (the config it runs now), the trial marker (``edge.toml.trial``:
   the command's seq and the version), ``edge.toml.new`` (fsynced), renames ``.new`` over the
   config file, and leaves the command's result to the supervisor (``CommandDeferred``);
4. the supervisor rebuilds the node and keeps the config only if, within ``[commands] trial_s``, the
   node is healthy: no driver failed, in outage, or silent, ``PipelineHealth`` without problems, and
   an end-to-end ack from the IOC (the uplink's acked count moved). Then ``applied``; else it puts
   ``edge.toml.good`` back, rebuilds the node again, and answers ``refused`` ``rolled_back`` with why.

Every result of a config command carries the ``version`` and ``text`` the node runs afterwards, as
``config.get``'s answer does: the centre learns which config runs, and can show a diff or adopt it.

Killed at any point (SIGKILL, power), the node starts with the old or the new config, never a torn file
(each file is replaced by a rename), and the marker decides: a trial that did not end (the marker says
``trial``) is rolled back, one found healthy (``kept``) is kept; either way the command is answered
before the node starts again. ``IOC_EDGE_CRASH_AT`` (``marker``, ``new``, ``renamed``, ``trial``) kills
the process there, for the tests of exactly that.

Example::

    supervisor = Supervisor(Path("/etc/ioc-edge/edge.toml"))
    supervisor.run()            # until supervisor.stop() (a signal handler)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from common.clock import Clock
from common.config import ConfigError
from common.errors import IocEdgeError
from edge.command_kinds import CommandDeferred, CommandFailed, NodeContext
from edge.config import NodeConfig, load_config, parse_config
from edge.runtime import Node, open_store
from sync.records import CommandResult

__all__ = ["CRASH_ENV", "ConfigFiles", "Supervisor", "Trial", "config_get", "config_push", "config_version"]

log = logging.getLogger(__name__)

CRASH_ENV = "IOC_EDGE_CRASH_AT"
"""Names the point where the process kills itself (tests of a crash there): marker, new, renamed, trial."""
POLL_S = 0.2


def config_version(data: bytes) -> str:
    """The version of a config: the sha256 (hex) of its file's bytes."""
    return hashlib.sha256(data).hexdigest()


def _crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        log.warning("event=crash_point point=%s", name)
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _replace(path: Path, data: bytes, through: Path) -> None:
    """``path`` holds ``data`` or what it held, whenever the process dies: written to ``through``, synced,
    renamed over it."""
    _write_synced(through, data)
    os.replace(through, path)
    _fsync_dir(path.parent)


@dataclass(frozen=True)
class Trial:
    """The trial marker: config ``version`` of command ``seq``, ``state`` ``trial`` (not yet proven:
    rolled back if the node starts again) or ``kept`` (proven healthy)."""

    seq: int
    version: str
    state: str = "trial"


class ConfigFiles:
    """The config file and its siblings ``.new``, ``.good`` (the config before the last push) and
    ``.trial`` (the marker).

    Example::

        files = ConfigFiles(Path("edge.toml"))
        files.version()             # sha256 of edge.toml
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.new, self.good, self.marker = (
            path.with_name(path.name + s) for s in (".new", ".good", ".trial")
        )

    def version(self) -> str:
        return config_version(self.path.read_bytes())

    def reported(self) -> dict[str, str]:
        """The config the node runs, as every config result tells it: ``version`` and ``text``."""
        data = self.path.read_bytes()
        return {"version": config_version(data), "text": data.decode("utf-8", errors="replace")}

    def trial(self) -> Trial | None:
        if not self.marker.exists():
            return None
        return Trial(**json.loads(self.marker.read_text()))

    def _mark(self, trial: Trial) -> None:
        _replace(
            self.marker, json.dumps(asdict(trial)).encode(), self.marker.with_name(self.marker.name + ".tmp")
        )

    def stage(self, text: str, seq: int) -> Trial:
        """Make ``text`` the config file: whenever the process dies, the file is whole (old or new), and
        once the marker is written it says a trial began."""
        # .good before the marker: a marker always finds the config it was written beside in .good
        _replace(self.good, self.path.read_bytes(), self.good.with_name(self.good.name + ".tmp"))
        trial = Trial(seq, config_version(text.encode()))
        self._mark(trial)
        _crash_point("marker")
        _write_synced(self.new, text.encode())
        _crash_point("new")
        os.replace(self.new, self.path)
        _fsync_dir(self.path.parent)
        _crash_point("renamed")
        return trial

    def keep(self, trial: Trial) -> None:
        """The trial passed: the marker says so before the result is recorded (a crash between keeps it)."""
        self._mark(Trial(trial.seq, trial.version, "kept"))

    def roll_back(self) -> None:
        """``.good`` back in place (a no-op but for the write when the new one never got there)."""
        if self.good.exists():
            _replace(self.path, self.good.read_bytes(), self.new)

    def settle(self) -> None:
        """The trial is over and answered: no marker, no stray ``.new``."""
        self.marker.unlink(missing_ok=True)
        self.new.unlink(missing_ok=True)


class Supervisor:
    """Runs the node of config file ``path`` until :meth:`stop`; rebuilds it for a pushed config's trial.

    ``build(config, supervisor)`` makes the node (tests pass their own); ``clock`` stamps the results
    the supervisor records. See the module's docstring.
    """

    def __init__(
        self,
        path: Path,
        clock: Clock | None = None,
        build: Callable[[NodeConfig, Supervisor], Node] | None = None,
    ) -> None:
        self.files = ConfigFiles(path)
        self.clock = clock or Clock()
        self._build = build or (lambda config, supervisor: Node(config, self.clock, supervisor=supervisor))
        self.node: Node | None = None
        self.config: NodeConfig | None = None
        self._wake, self._stopping = threading.Event(), threading.Event()
        self._staged: Trial | None = None
        self._on_trial: Trial | None = None

    def stop(self) -> None:
        """Ask :meth:`run` to stop the node and return (any thread, a signal handler)."""
        self._stopping.set()
        self._wake.set()

    def owes(self, seq: int) -> bool:
        """Whether command ``seq``'s result is the supervisor's to give (its config is staged or on trial)."""
        return any(t is not None and t.seq == seq for t in (self._staged, self._on_trial))

    @property
    def busy(self) -> bool:
        return self._staged is not None or self._on_trial is not None

    def try_config(self, trial: Trial) -> None:
        """The ``config`` kind staged ``trial``: rebuild the node with it (the supervisor's thread)."""
        self._staged = trial
        self._wake.set()

    def run(self) -> None:
        """Settle a trial a crash left, start the node, and serve trials until :meth:`stop`.

        Raises :class:`IocEdgeError` (a :class:`ConfigError` among them) when the first start fails.
        """
        self.recover()
        self.node = self._start()
        while True:
            while not self._wake.wait(0.5):
                pass
            self._wake.clear()
            if self._stopping.is_set():
                break
            trial, self._staged = self._staged, None
            if trial is not None:
                self._on_trial = trial
                self.node.stop()
                self.node = self._trial(trial)
                self._on_trial = None
        self.node.stop()

    def recover(self) -> None:
        """What a crash left: a kept trial answered ``applied``, any other rolled back and answered."""
        trial = self.files.trial()
        if trial is None:
            self.files.settle()
            return
        if trial.state == "kept":
            self._answer(trial, "applied", "", {})
        else:
            self.files.roll_back()
            why = f"the node stopped before its trial of config {trial.version[:12]} ended"
            self._answer(trial, "refused", "rolled_back", {"message": why, "tried": trial.version})
        log.warning("event=config_trial_recovered seq=%d state=%s", trial.seq, trial.state)

    def _start(self) -> Node:
        self.config = load_config(self.files.path)
        node = self._build(self.config, self)
        try:
            node.start()
        except BaseException:
            node.stop()
            raise
        return node

    def _trial(self, trial: Trial) -> Node:
        log.info("event=config_trial_begins seq=%d version=%s", trial.seq, trial.version[:12])
        try:
            node = self._start()
        except IocEdgeError as exc:
            return self._roll_back(trial, f"the node did not start with it: {exc}")
        assert self.config is not None, "_start sets it"
        why = self._watch(node, self.config.commands.trial_s)
        if why is None:
            self.files.keep(trial)
            self._answer(trial, "applied", "", {})
            log.info("event=config_kept seq=%d version=%s", trial.seq, trial.version[:12])
            return node
        node.stop()
        return self._roll_back(trial, why)

    def _roll_back(self, trial: Trial, why: str) -> Node:
        log.warning("event=config_rolled_back seq=%d why=%r", trial.seq, why)
        self.files.roll_back()
        node = self._start()
        self._answer(trial, "refused", "rolled_back", {"message": why, "tried": trial.version})
        return node

    def _watch(self, node: Node, trial_s: float) -> str | None:
        """None once the node is healthy within ``trial_s``, else why not (as last seen)."""
        acked = node.uplink.stats["acked_records"] if node.uplink else 0
        activity = {w.source.name: w.source.activity for w in node.watched}
        deadline = time.monotonic() + trial_s
        why = "the trial was cut short"
        while not self._stopping.is_set() and time.monotonic() < deadline:
            _crash_point("trial")
            problems = unhealthy(node, acked, activity)
            if not problems:
                return None
            why = "; ".join(problems)
            self._stopping.wait(POLL_S)
        return f"not healthy within {trial_s:g} s: {why}"

    def _answer(self, trial: Trial, state: str, reason: str, details: Mapping[str, Any]) -> None:
        """Finish command ``trial.seq`` in the store of the config now in place, unless it is finished."""
        config = load_config(self.files.path)
        store = open_store(config)
        try:
            taken = store.command(trial.seq)
            if taken is not None and taken.state == "delivered":
                text = json.dumps({**details, **self.files.reported()}, sort_keys=True)
                result = CommandResult(
                    *self.clock.now(), command_seq=trial.seq, state=state, reason=reason, details=text
                )
                store.finish_command(trial.seq, state, reason, text, {"command_result": [result]})
        finally:
            store.close()
        self.files.settle()


def unhealthy(node: Node, acked: int, activity: Mapping[str, int]) -> list[str]:
    """Why ``node`` is not yet healthy for a trial (empty: it is): ``acked`` and ``activity`` are the
    uplink's acked count and each driver's activity when the trial began."""
    problems = [f"driver {name} did not start: {why}" for name, why in node.failed.items()]
    for w in node.watched:
        source = w.source
        if source.name in node.failed:
            continue
        if source.outage is not None:
            problems.append(f"driver {source.name}: {source.outage.error}")
        elif source.health["transport_lost"] > source.health["transport_recovered"]:
            problems.append(f"driver {source.name}: its device is away: {source.failing}")
        elif w.quiet_s == 0 and source.activity == activity.get(source.name):
            problems.append(f"driver {source.name} delivered nothing yet")
    if node.health is not None:
        problems += node.health.check().problems
    if node.uplink is not None and node.uplink.stats["acked_records"] == acked:
        stats = node.uplink.stats
        problems.append(
            f"no ack from the IOC yet (uplink {node.config.uplink.host}:{node.config.uplink.port}: "
            f"{stats['connects']} connects, {stats['connect_attempts']} attempts)"
        )
    return problems


def _files(node: NodeContext) -> tuple[Supervisor, ConfigFiles]:
    if node.supervisor is None:
        raise CommandFailed(
            "no_supervisor", "the node runs without ioc-edge run's supervisor: no config file"
        )
    return node.supervisor, node.supervisor.files


def config_get(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    """The ``config.get`` kind: the config the node runs (``version``, ``text``)."""
    if body:
        raise CommandFailed("bad_body", f"config.get takes no body; got keys {sorted(body)}")
    return _files(node)[1].reported()


IDENTITY = (
    ("node.device_id", lambda c: c.node.device_id),
    ("node.state_dir", lambda c: c.node.state_dir),
    ("store.path", lambda c: c.store.path),
    ("uplink.tls.ca", lambda c: c.uplink.tls and c.uplink.tls.ca),
    ("uplink.tls.cert", lambda c: c.uplink.tls and c.uplink.tls.cert),
    ("uplink.tls.key", lambda c: c.uplink.tls and c.uplink.tls.key),
)
"""What a pushed config may not change: who the node is, its key and certificates, and its store (its
epoch and its record of commands taken)."""


def identity_changes(old: NodeConfig, new: NodeConfig) -> list[str]:
    """``field: old -> new`` for each field of :data:`IDENTITY` that differs."""
    return [f"{name}: {get(old)!s} -> {get(new)!s}" for name, get in IDENTITY if get(old) != get(new)]


def config_push(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    """The ``config`` kind: see the module's docstring."""
    supervisor, files = _files(node)
    text, version = body.get("text"), body.get("version")
    if not isinstance(text, str) or not isinstance(version, str) or set(body) != {"text", "version"}:
        raise CommandFailed("bad_body", "config takes {'text': TOML text, 'version': its sha256}")
    if config_version(text.encode()) != version:
        raise CommandFailed("bad_body", f"version {version[:12]} is not the sha256 of the text")
    running = files.reported()
    if running["version"] == version:
        return {"unchanged": True, **running}
    if supervisor.busy:
        raise CommandFailed("busy", "another config is on trial", running)
    try:
        new = parse_config(text, files.path.name, files.path.resolve().parent)
    except ConfigError as exc:
        raise CommandFailed("invalid_config", str(exc), {"problems": exc.problems, **running}) from None
    assert supervisor.config is not None, "the supervisor runs a node"
    changes = identity_changes(supervisor.config, new)
    if changes:
        message = "identity is not remote-configurable: " + "; ".join(changes)
        raise CommandFailed("identity_change", message, {"fields": changes, **running})
    trial = files.stage(text, node.seq)
    supervisor.try_config(trial)
    raise CommandDeferred(f"config {version[:12]} on trial for up to {new.commands.trial_s:g} s")
