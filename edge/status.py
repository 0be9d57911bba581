"""What ``ioc-edge status`` shows: the store's status as a named dataclass, and its text.

:meth:`StoreStatus.from_store` reads the dict of :meth:`sync.store.Store.status` (also what
``ioc-edge status --json`` prints); :func:`render_status` is the text, a pure function.

Example::

    >>> status = StoreStatus(epoch=3, size_bytes=4096, backlog={"position": 2}, kept_local={},
    ...                      last_ack_ms=None, drops={}, counters={"reject.gps": {"bad_checksum": 1}})
    >>> print(render_status(status))
    epoch: 3
    store: 4096 bytes
    backlog: position=2
    kept on the node only: none
    last ack: never
    dropped: none
    reject.gps: bad_checksum=1
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.base import Outage

__all__ = ["StoreStatus", "counts_text", "render_status", "utc_text"]


@dataclass(frozen=True)
class StoreStatus:
    """The node's store as of its last status report (see :meth:`sync.store.Store.status`).

    ``backlog``: records waiting for the IOC's ack, per stream; ``kept_local``: records kept on
    the node only; ``drops``: records dropped by retention; ``counters``: group -> reason ->
    count (``reject.gps``...); ``failed_drivers``: drivers that could not start, with why;
    ``outages``: sources delivering nothing, with why and since when; ``facts``: what components
    told the report (``link``, ``track``).
    """

    epoch: int
    size_bytes: int
    backlog: Mapping[str, int]
    kept_local: Mapping[str, int]
    last_ack_ms: int | None
    drops: Mapping[str, int]
    counters: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    failed_drivers: Mapping[str, str] = field(default_factory=dict)
    outages: Mapping[str, Outage] = field(default_factory=dict)
    facts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_store(cls, report: Mapping[str, Any]) -> StoreStatus:
        """The status from the dict of :meth:`sync.store.Store.status`."""
        fields = {**report, "outages": {name: Outage(**o) for name, o in report["outages"].items()}}
        return cls(**fields)


def counts_text(counts: Mapping[str, int]) -> str:
    """``key=value`` pairs in key order, or ``none``.

    >>> counts_text({"b": 2, "a": 1}), counts_text({})
    ('a=1 b=2', 'none')
    """
    return " ".join(f"{key}={value}" for key, value in sorted(counts.items())) or "none"


def utc_text(ms: int) -> str:
    """A time in milliseconds since the epoch, in UTC to the second.

    >>> utc_text(1_700_000_000_123)
    '2023-11-14T22:13:20Z'
    """
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def render_status(status: StoreStatus) -> str:
    """The text of ``ioc-edge status`` (see the module's example)."""
    last_ack = status.last_ack_ms
    lines = [
        f"epoch: {status.epoch}",
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
    return "\n".join(lines)
