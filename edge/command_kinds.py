"""The kinds of command a node runs, one registry entry each: the transport (``edge.commands``) names none.

A kind is a :class:`CommandKind`: its name (the command's ``kind``) and ``run(body, context)``, which
returns the result's details (a JSON object) or raises :class:`CommandFailed` with a snake_case
reason. A later kind (a camera snapshot, a link profile pinned for a while, a pushed config) is one
more entry here.

- ``ping``: answers at once with the node's version, store epoch and uptime; takes no body.
- ``status``: the node's status now, as ``ioc-edge status --json`` prints it; takes no body.
- ``config``: a pushed config (``{"text", "version"}``), tried and kept or rolled back; ``config.get``:
  the config the node runs. Both in ``edge.reconfig``; they need the supervisor of ``ioc-edge run``.

Example::

    >>> sorted(COMMAND_KINDS)
    ['config', 'config.get', 'ping', 'status']
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from common.errors import IocEdgeError
from edge.status import status_json
from sync.store import Store

if TYPE_CHECKING:
    from edge.reconfig import Supervisor

__all__ = ["COMMAND_KINDS", "CommandDeferred", "CommandFailed", "CommandKind", "NodeContext"]


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
    ``seq``, and the supervisor of ``ioc-edge run`` (None: the node runs without one)."""

    device: str
    version: str
    started: float
    store: Store
    seq: int = 0
    supervisor: Supervisor | None = None


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
    return json.loads(status_json(node.store.status()))


def _config(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    from edge.reconfig import config_push  # imported here: edge.reconfig imports this module

    return config_push(body, node)


def _config_get(body: Mapping[str, Any], node: NodeContext) -> dict[str, Any]:
    from edge.reconfig import config_get

    return config_get(body, node)


COMMAND_KINDS: dict[str, CommandKind] = {
    k.name: k
    for k in (
        CommandKind("ping", _ping),
        CommandKind("status", _status),
        CommandKind("config", _config),
        CommandKind("config.get", _config_get),
    )
}
"""The kinds a node runs, by name; a command of any other kind is refused ``unknown_kind``."""
