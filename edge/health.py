"""Is the node's pipeline making progress? The verdict that feeds systemd's watchdog and the metrics.

:class:`PipelineHealth` is given what it watches, explicitly: the node's sources of records
(:class:`Watched`: each :class:`~drivers.base.RecordSource` with its device type's stall rule),
the recorder, the store's path and the drivers that failed to start.

The node is *stalled* when one of these holds (``stall_s`` is ``[watchdog] stall_s``):

- the recorder has committed nothing for ``stall_s`` or two ``store.status_interval_s`` and
  a ``store.flush_interval_s``, whichever is longer (the node records its own status every
  interval, so a working recorder commits at least that often, sensors or not): its thread
  hangs or died, or the store refuses every write;
- the store's directory is on a read-only file system, or not writable by the node;
- a driver's thread ended (a crash) when its source has no end (a replay without ``loop``
  ends by itself and is not a stall; a driver that failed to start is reported elsewhere);
- every driver that reports continuously has been silent for ``stall_s`` plus its own
  quiet time (a water level's ``interval_s``; a duty-cycled particulate sensor's sleep and
  warm-up). Silent means nothing at all came from it: no record, no rejected or ignored
  input, no camera frame. Event-driven sensors (rain gauge, float switch) are never silent.

A driver whose device is known to be away (its transport failed and is being retried:
``health`` has more ``transport_lost`` than ``transport_recovered``) is not watched: it is
reported in its metrics and its status, and a restart of the node would not bring the device
back. Nor is one quiet sensor among working ones a stall: it shows in its own metrics.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.notify import Health
from drivers.base import RecordSource

if TYPE_CHECKING:
    from sync.recorder import Recorder

__all__ = ["PipelineHealth", "Watched", "store_unwritable"]


@dataclass(frozen=True)
class Watched:
    """One source of records as the node runs it: its device ``type`` (the metrics' label) and its
    stall rule.

    ``quiet_s``: how long it may stay silent beyond ``stall_s`` (a water level's ``interval_s``; a
    duty-cycled sensor's sleep and warm-up; 0 for a sensor that reports continuously), or None
    for an event-driven sensor, which is never silent. ``finite``: its input ends by itself (a
    file read without ``loop``), so its thread ending is no stall.
    """

    source: RecordSource
    type: str
    quiet_s: float | None
    finite: bool = False


def store_unwritable(path: Path) -> str | None:
    """Why the node cannot write its store at ``path``, or None."""
    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"store {path} is on a read-only file system"
    except OSError as exc:
        return f"store folder {folder}: {exc.strerror or exc}"
    for target in (folder, path):
        if target.exists() and not os.access(target, os.W_OK):
            return f"store {target} is not writable by the node"
    return None


class PipelineHealth:
    """Decides whether the node's pipeline progresses (see the module); thread-safe.

    ``sources`` are the node's sources of records, ``recorder`` its recorder, ``store`` its
    store's path, ``failed`` the drivers that could not start (name -> why: not watched);
    ``status_interval_s`` and ``flush_interval_s`` are the store's, for the recorder's allowance.

    ``check()`` is called by the watchdog and by each metrics scrape: every call notes which
    figures moved since the last one, so calls closer together only sharpen the timing.

    Example::

        health = PipelineHealth(sources, recorder, store_path, {}, stall_s=120,
                                status_interval_s=60, flush_interval_s=1)
        health.check()      # Health(problems=(), detail='2 drivers, 5310 records committed')
    """

    def __init__(
        self,
        sources: Sequence[Watched],
        recorder: Recorder | None,
        store: Path,
        failed: Mapping[str, str],
        *,
        stall_s: float,
        status_interval_s: float,
        flush_interval_s: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sources, self.recorder, self.store, self.failed = sources, recorder, store, failed
        self.stall_s, self.monotonic = stall_s, monotonic
        self.recorder_allowance_s = max(stall_s, 2 * status_interval_s + flush_interval_s)
        self._lock = threading.Lock()
        now = monotonic()
        self._seen: dict[str, tuple[int, float]] = {}  # name -> (figure, when it last moved)
        self._seen["recorder"] = (recorder.committed if recorder else 0, now)
        for watched in sources:
            self._seen[f"driver.{watched.source.name}"] = (watched.source.activity, now)

    def _moved(self, name: str, figure: int, now: float) -> float:
        """Seconds since ``figure`` of ``name`` last changed."""
        last, since = self._seen.get(name, (figure, now))
        if figure != last:
            since = now
        self._seen[name] = (figure, since)
        return now - since

    def check(self) -> Health:
        """The verdict now."""
        with self._lock:
            now = self.monotonic()
            problems = []
            committed = self.recorder.committed if self.recorder else 0
            idle = self._moved("recorder", committed, now)
            if idle > self.recorder_allowance_s:
                problems.append(f"recorder committed nothing for {idle:.0f} s")
            if why := store_unwritable(self.store):
                problems.append(why)
            problems += self._driver_problems(now)
            drivers = len(self.sources)
            detail = f"{drivers} driver{'' if drivers == 1 else 's'}, {committed} records committed"
            return Health(tuple(problems), detail)

    def _driver_problems(self, now: float) -> list[str]:
        problems, silent, watched = [], [], 0
        for entry in self.sources:
            driver, name = entry.source, entry.source.name
            if name in self.failed:
                continue
            if not driver.running:
                if not entry.finite:
                    problems.append(f"driver {name} stopped")
                continue
            outage = driver.health["transport_lost"] > driver.health["transport_recovered"]
            if entry.quiet_s is None or outage:
                continue
            watched += 1
            idle = self._moved(f"driver.{name}", driver.activity, now)
            if idle > self.stall_s + entry.quiet_s:
                silent.append(f"{name} {idle:.0f} s")
        if watched and len(silent) == watched:
            problems.append(f"every driver silent: {', '.join(silent)}")
        return problems
