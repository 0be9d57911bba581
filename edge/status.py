"""What ``ioc-edge status`` shows: the text and the JSON of the store's status.

:meth:`sync.store.Store.status` reads the store into a :class:`sync.store.StoreStatus`, and
:meth:`ConfigState.read` the config file beside it (its version, a pushed config on trial);
:func:`render_status` is their text and :func:`status_json` what ``--json`` prints, pure functions.

Example::

    >>> status = StoreStatus(epoch="9f0c2a1b3d4e5f60", size_bytes=4096, backlog={"position": 2},
    ...                      kept_local={}, last_ack_ms=None, drops={},
    ...                      counters={"reject.gps": {"bad_checksum": 1}})
    >>> print(render_status(status))
    epoch: 9f0c2a1b3d4e5f60
    store: 4096 bytes
    backlog: position=2
    kept on the node only: none
    last ack: never
    dropped: none
    reject.gps: bad_checksum=1
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sync.store import StoreStatus

if TYPE_CHECKING:
    from edge.reconfig import Trial

__all__ = ["ConfigState", "counts_text", "render_status", "status_json", "utc_text"]


@dataclass(frozen=True)
class ConfigState:
    """The config file the node runs: its ``version`` (the sha256 of the file, as the status body's
    ``config_version``) and the pushed config on ``trial`` (``edge.reconfig``'s marker; None: none).

    Example::

        ConfigState.read(Path("/etc/ioc-edge/edge.toml"))
    """

    version: str
    trial: Trial | None = None

    @classmethod
    def read(cls, path: Path) -> ConfigState:
        """The state of config file ``path`` and its trial marker; raises ``OSError`` if it cannot be read."""
        from edge.reconfig import ConfigFiles  # imported here: edge.reconfig builds nodes, this module shows

        files = ConfigFiles(path)
        return cls(files.version(), files.trial())

    def line(self) -> str:
        """One line for ``ioc-edge status``.

        >>> from edge.reconfig import Trial
        >>> ConfigState("3f2a9c").line()
        'config: 3f2a9c (no pushed config on trial)'
        >>> print(ConfigState("3f2a9c", Trial(7, "3f2a9c")).line())
        config: 3f2a9c; this config of command 7 on trial: kept if healthy within [commands] trial_s, ...
        """
        trial = self.trial
        if trial is None:
            return f"config: {self.version} (no pushed config on trial)"
        pushed = "this config" if trial.version == self.version else f"pushed config {trial.version[:12]}"
        if trial.state == "kept":
            return f"config: {self.version}; {pushed} of command {trial.seq} kept, its answer being recorded"
        outcome = "kept if healthy within [commands] trial_s, else rolled back"
        return f"config: {self.version}; {pushed} of command {trial.seq} on trial: {outcome}"


def counts_text(counts: Mapping[str, int], sep: str = " ") -> str:
    """``key=value`` pairs in key order, joined by ``sep``, or ``none``.

    >>> counts_text({"b": 2, "a": 1}), counts_text({"b": 2, "a": 1}, ", "), counts_text({})
    ('a=1 b=2', 'a=1, b=2', 'none')
    """
    return sep.join(f"{key}={value}" for key, value in sorted(counts.items())) or "none"


def utc_text(ms: int) -> str:
    """A time in milliseconds since the epoch, in UTC to the second.

    >>> utc_text(1_700_000_000_123)
    '2023-11-14T22:13:20Z'
    """
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def status_json(status: StoreStatus, config: ConfigState | None = None) -> str:
    """The JSON of ``ioc-edge status --json``: one object, the fields of ``status`` as keys, an
    outage as an object of its fields; with ``config``, ``config_version`` and ``config_trial`` (the
    trial marker's ``seq``, ``version`` and ``state``, or null).

    >>> from drivers.base import Outage
    >>> status = StoreStatus(epoch="9f0c2a1b3d4e5f60", size_bytes=4096, backlog={}, kept_local={},
    ...                      last_ack_ms=None, drops={}, outages={"cam": Outage("no frames", 5)})
    >>> json.loads(status_json(status))["outages"]
    {'cam': {'error': 'no frames', 'since_ms': 5}}
    """
    fields = asdict(status)
    if config is not None:
        trial = asdict(config.trial) if config.trial is not None else None
        fields |= {"config_version": config.version, "config_trial": trial}
    return json.dumps(fields, sort_keys=True)


def render_status(status: StoreStatus, config: ConfigState | None = None) -> str:
    """The text of ``ioc-edge status`` (see the module's example), with the line of ``config`` (see
    :meth:`ConfigState.line`) after the epoch."""
    last_ack = status.last_ack_ms
    lines = [
        f"epoch: {status.epoch}",
        *([config.line()] if config is not None else []),
        f"store: {status.size_bytes} bytes",
        f"backlog: {counts_text(status.backlog)}",
        f"kept on the node only: {counts_text(status.kept_local)}",
        f"last ack: {utc_text(last_ack) if last_ack else 'never'}",
        f"dropped: {counts_text(status.drops)}",
    ]
    lines += [f"{group}: {counts_text(counts)}" for group, counts in sorted(status.counters.items())]
    lines += [
        f"driver {name} failed to start: {error}" for name, error in sorted(status.failed_drivers.items())
    ]
    lines += [
        # only cameras report outages so far
        f"camera {camera} delivers no frames since {utc_text(outage.since_ms)}: {outage.error}"
        for camera, outage in sorted(status.outages.items())
    ]
    if "link" in status.facts:
        link = status.facts["link"]
        held = ", ".join(link["held"]) or "nothing"
        lines.append(f"link: {link['profile']} (chosen by {link['source']}), holding {held}")
    if "track" in status.facts:
        track = status.facts["track"]
        lines.append(
            f"track log: {track['records']} records in chain {track['chain']}, signed to record "
            f"{track['signed_to']}; this run {track['signatures']} signatures, "
            f"{track['heartbeats']} no-fix heartbeats"
        )
    lines += [
        f"warning {identifier}: {w['event']}, inside {w['inside']}, "
        f"{'sounding' if w['sounding'] else 'silent'}, {'' if w['acknowledged'] else 'not '}acknowledged"
        for identifier, w in sorted(status.facts.get("warnings", {}).items())
    ]
    lines += [
        f"command {c.seq} {c.kind}: {c.state}{f' ({c.reason})' if c.reason else ''}, "
        f"received {utc_text(c.received_ms)}"
        for c in status.commands
    ]
    return "\n".join(lines)
