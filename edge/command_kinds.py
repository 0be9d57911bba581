"""The kinds of command a node runs, one registry entry each: the transport (``edge.commands``) names none.

A kind is a :class:`CommandKind`: its name (the command's ``kind``) and ``run(body, context)``, which
returns the result's details (a JSON object) or raises :class:`CommandFailed` with a snake_case
reason. A later kind (a camera snapshot, a link profile pinned for a while, a pushed config) is one
more entry here.

- ``ping``: answers at once with the node's version, store epoch and uptime; takes no body.
- ``status``: the node's status now, as ``ioc-edge status --json`` prints it; takes no body.

Example::

    >>> sorted(COMMAND_KINDS)
    ['ping', 'status']
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import IocEdgeError
from edge.status import status_json
from sync.store import Store

__all__ = ["COMMAND_KINDS", "CommandFailed", "CommandKind", "NodeContext"]


class CommandFailed(IocEdgeError, RuntimeError):
    """A kind could not do what the command asked: refused with ``reason`` (snake_case), ``message``
    telling the centre why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class NodeContext:
    """What a kind may use of the running node: who it is, its version, when it started (``time.monotonic``)
    and the command inbox's connection to the store (used from the inbox's thread only)."""

    device: str
    version: str
    started: float
    store: Store


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


COMMAND_KINDS: dict[str, CommandKind] = {
    k.name: k for k in (CommandKind("ping", _ping), CommandKind("status", _status))
}
"""The kinds a node runs, by name; a command of any other kind is refused ``unknown_kind``."""
