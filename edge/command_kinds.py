"""The kinds of command a node runs, one registry entry each: the transport (``edge.commands``) names none.

A kind is a :class:`CommandKind`: its name (the command's ``kind``) and ``run(body, context)``, which
returns the result's details (a JSON object) or raises :class:`CommandFailed` with a snake_case
reason. A later kind (a camera snapshot, a link profile pinned for a while, a pushed config) is one
more entry here.

- ``ping``: answers at once with the node's version, store epoch and uptime; takes no body.
- ``status``: the node's status now, as ``ioc-edge status --json`` prints it (``config_version`` and
  ``config_trial`` when it runs under ``ioc-edge run``'s supervisor); takes no body.
- ``config``: a pushed config (``{"text", "version"}``), tried and kept or rolled back; ``config.get``:
  the config the node runs. Both in ``edge.reconfig``; they need the supervisor of ``ioc-edge run``.
- ``link.pin``: ``{"profile": NAME, "for_s": SECONDS}`` keeps a link profile in force for that long
  (``edge.link.LinkMonitor.pin``; the status's ``link`` shows it and until when); answers the link's state.
- ``snapshot``: ``{"camera": NAME}`` (or no body on a node with one camera): the camera's next frame as
  a JPEG of at most :data:`SNAPSHOT_MAX_BYTES`, people pixelated as in its events' snapshots, base64 in
  the result's details (an answer to this command, on the alarm lane, never held back by a link
  profile as the ``event`` stream may be). Refused ``no_camera``, ``unknown_camera``,
  ``camera_unavailable`` (no frame within :data:`SNAPSHOT_TIMEOUT_S`).
- ``selftest``: ``{"seconds": N}`` (optional, up to 30; 5 by default): the technician's self-test of the
  running node (``edge.selftest.LiveSelftest``: each driver judged by its running source, the broker
  and the IOC by the uplink, no device opened), its signed commissioning record stored for the IOC as
  ``ioc-edge selftest`` does; answers ``passed``, ``checks`` and ``commissioning``.
- ``warning``: a CAP alert (``sync.warnings.Alert.to_json``; signed by the centre's warning signer,
  not its command signer: ``provisioning.commands.purpose_of``) for the node's warning desk
  (``edge.warnings.WarningDesk.receive``): delivered, sounded and shown when the node is inside its
  area, an Update or Cancel applied to the alerts it refers to; answers ``inside``, ``sounded``,
  ``shown``. Refused ``bad_warning`` (the field at fault) and ``no_warnings``.
- ``restart``: the node exits, once its result is committed, for systemd to start it again
  (``Restart=always``): a fresh process is the remedy for what an in-process restart would keep (a
  thread stuck in a driver's C call, a leak). Refused ``not_supervised`` when no service manager would
  start it again (no ``INVOCATION_ID``/``NOTIFY_SOCKET``): the node would stop, not restart; ``busy``
  while a pushed config is on trial (a restart would roll it back).

Example::

    >>> sorted(COMMAND_KINDS)
    ['config', 'config.get', 'link.pin', 'ping', 'restart', 'selftest', 'snapshot', 'status', 'warning']
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.errors import IocEdgeError
from edge.status import ConfigState, status_json
from sync.store import Store
from sync.warnings import Alert
from sync.wire import WireError

if TYPE_CHECKING:
    from edge.link import LinkMonitor
    from edge.reconfig import Supervisor
    from edge.runtime import Node
    from inference.camera import Camera

__all__ = [
    "COMMAND_KINDS",
    "RESTART_DELAY_S",
    "SNAPSHOT_MAX_BYTES",
    "SNAPSHOT_TIMEOUT_S",
    "CommandDeferred",
    "CommandFailed",
    "CommandKind",
    "NodeContext",
]

log = logging.getLogger(__name__)

SNAPSHOT_MAX_BYTES = 40_000
"""A snapshot's JPEG at most: base64 (4/3) in the result's details stays within the 64 KiB the centre
keeps of them (``ioc.admission``)."""
SNAPSHOT_TIMEOUT_S = 5.0
"""How long ``snapshot`` waits for the camera's next frame."""
RESTART_DELAY_S = 2.0
"""How long after ``restart`` the node exits: time for the uplink to send the result (else it goes from
the store after the restart)."""


class CommandFailed(IocEdgeError, RuntimeError):
    """A kind could not do what the command asked: refused with ``reason`` (snake_case), ``message``
    telling the centre why, and ``details`` to add to the result's (a pushed config's problems)."""

    def __init__(self, reason: str, message: str, details: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason, self.message, self.details = reason, message, dict(details or {})


class CommandDeferred(IocEdgeError, RuntimeError):
    """The kind's result comes later, from another component (a pushed config's trial, answered by the
    supervisor): the command stays ``delivered`` and the inbox does not finish it."""


@dataclass(frozen=True)
class NodeContext:
    """What a kind may use of the running node: who it is, its version, when it started (``time.monotonic``),
    the command inbox's connection to the store (used from the inbox's thread only), the command's
    ``seq``, the supervisor of ``ioc-edge run`` (None: the node runs without one), the node's link
    monitor (None: no ``[link]``), what gives its cameras by name, and the node itself (the live
    self-test reads its sources and uplink; None: an inbox without a node)."""

    device: str
    version: str
    started: float
    store: Store
    seq: int = 0
    supervisor: Supervisor | None = None
    link: LinkMonitor | None = None
    cameras: Callable[[], Mapping[str, Camera]] = dict
    node: Node | None = None


@dataclass(frozen=True)
class CommandKind:
    """One kind of command: ``run(body, context)`` returns the details of an ``applied`` result, or
    raises :class:`CommandFailed` (a ``refused`` one)."""

    name: str
    run: Callable[[Mapping[str, Any], NodeContext], dict[str, Any]]


def _no_body(kind: str, body: Mapping[str, Any]) -> None:
    if body:
        raise CommandFailed("bad_body", f"{kind} takes no body; got keys {sorted(body)}")


def _ping(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    _no_body("ping", body)
    uptime_s = round(time.monotonic() - node.started, 3)
    return {"version": node.version, "epoch": node.store.epoch, "uptime_s": uptime_s}


def _status(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    _no_body("status", body)
    config = ConfigState.read(node.supervisor.files.path) if node.supervisor is not None else None
    return json.loads(status_json(node.store.status(), config))


def _config(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    from edge.reconfig import config_push  # imported here: edge.reconfig imports this module

    return config_push(body, node)


def _config_get(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    from edge.reconfig import config_get

    return config_get(body, node)


def _link_pin(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    if node.link is None:
        raise CommandFailed("no_link", "the node has no [link] section: no profile to pin")
    profile, for_s = body.get("profile"), body.get("for_s")
    if set(body) != {"profile", "for_s"} or not isinstance(profile, str):
        raise CommandFailed(
            "bad_body", f'link.pin takes {{"profile": NAME, "for_s": SECONDS}}; got {dict(body)}'
        )
    if isinstance(for_s, bool) or not isinstance(for_s, int | float):
        raise CommandFailed("bad_body", f"for_s: {for_s!r} is not a number of seconds")
    try:
        node.link.pin(profile, for_s)
    except ValueError as exc:
        raise CommandFailed("bad_body", str(exc)) from None
    return node.link.describe()


def _snapshot(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    cameras = node.cameras()
    if not cameras:
        raise CommandFailed("no_camera", "the node has no camera")
    if set(body) - {"camera"}:
        raise CommandFailed("bad_body", f'snapshot takes {{"camera": NAME}}; got keys {sorted(body)}')
    if "camera" in body:
        name = body["camera"]
    elif len(cameras) == 1:
        [name] = cameras
    else:
        raise CommandFailed("bad_body", f"name the camera: one of {sorted(cameras)}")
    camera = cameras.get(name) if isinstance(name, str) else None
    if camera is None:
        raise CommandFailed("unknown_camera", f"{name!r} is not one of {sorted(cameras)}")
    try:
        jpeg = camera.snapshot(SNAPSHOT_MAX_BYTES, SNAPSHOT_TIMEOUT_S)
    except TimeoutError:
        away = f": {camera.outage.error}" if camera.outage is not None else ""
        raise CommandFailed(
            "camera_unavailable", f"no frame from {name} within {SNAPSHOT_TIMEOUT_S:g} s{away}"
        ) from None
    return {"camera": name, "bytes": len(jpeg), "jpeg_base64": base64.b64encode(jpeg).decode("ascii")}


def _selftest(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    from edge.selftest import selftest_command  # imported here: edge.selftest imports this module

    return selftest_command(body, node)


def _restart(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    _no_body("restart", body)
    if node.supervisor is not None and node.supervisor.busy:
        raise CommandFailed("busy", "a pushed config is on trial: a restart now would roll it back")
    if not ({"INVOCATION_ID", "NOTIFY_SOCKET"} & os.environ.keys()):
        raise CommandFailed(
            "not_supervised", "the node does not run under systemd: it would stop, and nothing start it again"
        )
    # Later, from a thread of its own: the inbox commits this command's result first.
    timer = threading.Timer(RESTART_DELAY_S, _exit_for_restart)
    timer.daemon = True
    timer.start()
    return {"exits_in_s": RESTART_DELAY_S, "pid": os.getpid()}


def _warning(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    desk = node.node.warnings if node.node is not None else None
    if desk is None:
        raise CommandFailed("no_warnings", "the node runs without its warning desk (ioc-edge run starts it)")
    try:
        alert = Alert.from_json(body)
    except WireError as exc:
        raise CommandFailed("bad_warning", str(exc).removeprefix(f"{exc.reason}: ")) from None
    return desk.receive(alert)


def _exit_for_restart() -> None:
    # SIGTERM, as systemd stops it: `ioc-edge run` stops every component (the store committed) and
    # exits; Restart=always starts it again after RestartSec.
    log.warning("event=node_restart reason=command action=sigterm")
    os.kill(os.getpid(), signal.SIGTERM)


COMMAND_KINDS: dict[str, CommandKind] = {
    k.name: k
    for k in (
        CommandKind("ping", _ping),
        CommandKind("status", _status),
        CommandKind("config", _config),
        CommandKind("config.get", _config_get),
        CommandKind("link.pin", _link_pin),
        CommandKind("snapshot", _snapshot),
        CommandKind("selftest", _selftest),
        CommandKind("restart", _restart),
        CommandKind("warning", _warning),
    )
}
"""The kinds a node runs, by name; a command of any other kind is refused ``unknown_kind``."""
