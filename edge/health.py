"""Is the node's pipeline making progress? The verdict that feeds systemd's watchdog and the metrics.

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
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from common.notify import Health

if TYPE_CHECKING:
    from edge.runtime import Node

__all__ = ["PipelineHealth"]

FINITE_TRANSPORTS = ("replay", "capture")
"""Transport types that end with their file unless ``loop``."""


def activity(driver) -> int:
    """A figure that moves whenever input reaches ``driver``: frames for a camera, else everything
    its parser made of the bytes (records, rejects, ignored)."""
    pipeline = getattr(driver, "pipeline", None)
    if pipeline is not None:
        return pipeline.stats["frames"]
    # Copies (a C-level dict copy under the GIL): the driver's thread may add a reason meanwhile.
    return driver.records + sum(Counter(driver.rejects).values()) + sum(Counter(driver.ignored).values())


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
    """Decides whether ``node``'s pipeline progresses (see the module); thread-safe.

    ``check()`` is called by the watchdog and by each metrics scrape: every call notes which
    figures moved since the last one, so calls closer together only sharpen the timing.

    Example::

        health = PipelineHealth(node, stall_s=120)
        health.check()      # Health(problems=(), detail='2 drivers, 5310 records committed')
    """

    def __init__(self, node: Node, stall_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.node, self.stall_s, self.monotonic = node, stall_s, monotonic
        store = node.config.store
        self.recorder_allowance_s = max(stall_s, 2 * store.status_interval_s + store.flush_interval_s)
        self._lock = threading.Lock()
        now = monotonic()
        self._seen: dict[str, tuple[int, float]] = {}  # name -> (figure, when it last moved)
        self._seen["recorder"] = (node.recorder.committed if node.recorder else 0, now)
        for driver in node.drivers:
            self._seen[f"driver.{driver.name}"] = (activity(driver), now)

    def _moved(self, name: str, figure: int, now: float) -> float:
        """Seconds since ``figure`` of ``name`` last changed."""
        last, since = self._seen.get(name, (figure, now))
        if figure != last:
            since = now
        self._seen[name] = (figure, since)
        return now - since

    def quiet_s(self, name: str) -> float | None:
        """How long driver ``name`` may stay silent before it counts as stalled; None: never."""
        cfg = self.node.config.drivers[name]
        if cfg.type in ("rain_gauge", "float_switch"):
            return None
        if cfg.type == "water_level":
            return self.stall_s + cfg.interval_s
        duty = getattr(cfg, "duty", None)
        return self.stall_s + (duty.sleep_s + duty.warmup_s if duty else 0)

    def finite(self, driver) -> bool:
        """Whether ``driver``'s source ends by itself (a file read without ``loop``)."""
        source = getattr(driver, "source", None)  # a camera's CameraSource
        if source is not None:
            return not source.live and not source.loop
        transport = getattr(self.node.config.drivers[driver.name], "transport", None)
        return transport is not None and transport.type in FINITE_TRANSPORTS and not transport.loop

    def check(self) -> Health:
        """The verdict now."""
        with self._lock:
            now = self.monotonic()
            problems = []
            recorder = self.node.recorder
            committed = recorder.committed if recorder else 0
            idle = self._moved("recorder", committed, now)
            if idle > self.recorder_allowance_s:
                problems.append(f"recorder committed nothing for {idle:.0f} s")
            if why := store_unwritable(self.node.config.store.path):
                problems.append(why)
            problems += self._driver_problems(now)
            drivers = len(self.node.drivers)
            detail = f"{drivers} driver{'' if drivers == 1 else 's'}, {committed} records committed"
            return Health(tuple(problems), detail)

    def _driver_problems(self, now: float) -> list[str]:
        problems, silent, watched = [], [], 0
        for driver in self.node.drivers:
            name = driver.name
            if name in self.node.failed:
                continue
            if not driver.running:
                if not self.finite(driver):
                    problems.append(f"driver {name} stopped")
                continue
            quiet = self.quiet_s(name)
            outage = driver.health["transport_lost"] > driver.health["transport_recovered"]
            if quiet is None or outage:
                continue
            watched += 1
            idle = self._moved(f"driver.{name}", activity(driver), now)
            if idle > quiet:
                silent.append(f"{name} {idle:.0f} s")
        if watched and len(silent) == watched:
            problems.append(f"every driver silent: {', '.join(silent)}")
        return problems
