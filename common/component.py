"""The long-running component: one thread, started once, stopped by an event it waits on.

Every stage of the node (drivers, cameras, recorder, summaries, alarms, uplink, status, watchdog) and
the centre's live feed is one of these (Frigate style): built from its inputs, a loop on a stop event
with bounded waits, :meth:`Component.stop` undoing :meth:`Component.start`.
"""

from __future__ import annotations

import threading

__all__ = ["Component"]


class Component:
    """A thread that runs :meth:`_run` until :meth:`stop`.

    Subclasses must override ``_run`` (the thread's body: it loops while ``self._stop`` is not set,
    never waiting long, e.g. ``while not self._stop.wait(interval_s)``) and may override
    ``_after_stop`` (called by :meth:`stop` once the thread has ended: a last flush, closing what the
    component opened). ``thread_name`` names the thread in logs and stack dumps.

    Example::

        >>> import time
        >>> class Ticks(Component):
        ...     count = 0
        ...     def _run(self):
        ...         while not self._stop.wait(0.01):
        ...             self.count += 1
        >>> ticks = Ticks("ticks")
        >>> ticks.start(); time.sleep(0.1); ticks.stop()
        >>> ticks.count > 0, ticks.running
        (True, False)
    """

    def __init__(self, thread_name: str) -> None:
        self.thread_name = thread_name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Run :meth:`_run` in a thread of its own."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to end, wait for it (at most ``timeout``), then :meth:`_after_stop`."""
        self._stop.set()
        self.join(timeout)
        self._after_stop()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end (some end by themselves: a replay at its end)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        raise NotImplementedError

    def _after_stop(self) -> None:
        """What to do once the thread has ended (default nothing)."""
