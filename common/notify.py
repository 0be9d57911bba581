"""Telling systemd how a service is doing: sd_notify(3), and a watchdog fed only while healthy.

The protocol is one datagram per message to the ``AF_UNIX`` socket named in ``$NOTIFY_SOCKET``
(a path, or the abstract namespace when it starts with ``@``), holding newline-separated
``KEY=VALUE`` assignments: ``READY=1``, ``STATUS=...``, ``WATCHDOG=1``, ``STOPPING=1``. It is
written here in a few lines rather than taken from a library: ``systemd-python`` needs
libsystemd's headers and a compiler on the device, ``sdnotify`` has had no release since 2017,
and the documented protocol is this small.

Example::

    >>> notify = SdNotify({})          # not started by systemd: nothing to tell, nothing sent
    >>> notify.enabled, notify.send("READY=1"), notify.watchdog_s
    (False, False, None)
    >>> SdNotify({"NOTIFY_SOCKET": "@ioc", "WATCHDOG_USEC": "30000000"}).watchdog_s
    30.0
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from common.component import Component

__all__ = ["Health", "SdNotify", "ServiceWatchdog"]

log = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0
"""How often the status line is refreshed when systemd runs no watchdog."""


@dataclass(frozen=True)
class Health:
    """A verdict on a service: healthy when nothing is wrong; ``detail`` says what it is doing.

    Example::

        >>> Health(("driver gps silent for 130 s",), "1 driver").status
        'stalled: driver gps silent for 130 s'
        >>> Health((), "1 driver, 500 records committed").status
        'running: 1 driver, 500 records committed'
    """

    problems: tuple[str, ...] = ()
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def status(self) -> str:
        """The one line for systemd's ``STATUS=`` (``systemctl status`` shows it)."""
        return f"stalled: {'; '.join(self.problems)}" if self.problems else f"running: {self.detail}"


def _address(value: str) -> str | None:
    if value.startswith("@"):
        return "\0" + value[1:]  # the abstract namespace
    return value if value.startswith("/") else None  # vsock and other kinds: not on our targets


def _watchdog_s(env: Mapping[str, str]) -> float | None:
    """``WATCHDOG_USEC`` in seconds, when it is meant for this process (sd_watchdog_enabled(3))."""
    pid = env.get("WATCHDOG_PID")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 1e6 if usec > 0 else None


class SdNotify:
    """A client of systemd's notification socket, read from ``env`` (``os.environ`` by default).

    ``send`` never raises: a service must not fail because systemd went away; the first
    failure is logged. See the module's example.
    """

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self.watchdog_s = _watchdog_s(env) if self.address else None
        """systemd's ``WatchdogSec=`` when it watches this process, else None."""
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._failing = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=VALUE`` assignments in one datagram; False when not sent."""
        if self.address is None:
            return False
        with self._lock:
            try:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.sendto("\n".join(assignments).encode(), self.address)
            except OSError as exc:
                if not self._failing:
                    log.warning("event=sd_notify_failed socket=%r error=%s", self.address, exc)
                self._failing = True
                return False
            self._failing = False
            return True

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


class ServiceWatchdog(Component):
    """Says READY when started, feeds systemd's watchdog while ``check()`` is healthy, says STOPPING.

    Every half ``WatchdogSec=`` (sd_watchdog_enabled(3)'s advice) it runs ``check`` and sends
    ``WATCHDOG=1`` with the status line only when the verdict is healthy; an unhealthy verdict
    sends the status line alone, so systemd kills and restarts the service once ``WatchdogSec``
    passes without a ping (a stall that ends sooner costs nothing). Without a watchdog it
    refreshes the status line every ``STATUS_EVERY_S``; outside systemd it does nothing.
    ``check`` raising counts as unhealthy. Started last and stopped first by its service.

    Example::

        watchdog = ServiceWatchdog(SdNotify(), health.check)
        watchdog.start()    # READY=1, then WATCHDOG=1 while health.check() finds nothing wrong
        ...
        watchdog.stop()     # STOPPING=1
    """

    def __init__(self, notify: SdNotify, check: Callable[[], Health]) -> None:
        super().__init__("sd-watchdog")
        self.notify, self.check = notify, check
        self.interval_s = notify.watchdog_s / 2 if notify.watchdog_s else STATUS_EVERY_S
        self.last: Health | None = None

    def start(self) -> None:
        if not self.notify.enabled:
            return
        health = self._verdict()
        self.notify.send("READY=1", f"STATUS={health.status}")
        log.info("event=sd_ready watchdog_s=%s", self.notify.watchdog_s)
        super().start()

    def _after_stop(self) -> None:
        self.notify.send("STOPPING=1", "STATUS=stopping")
        self.notify.close()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.beat()

    def beat(self) -> Health:
        """Check once and tell systemd: a ping and the status if healthy, else the status alone."""
        health = self._verdict()
        if health.healthy and self.notify.watchdog_s:
            self.notify.send("WATCHDOG=1", f"STATUS={health.status}")
        else:
            self.notify.send(f"STATUS={health.status}")
        return health

    def _verdict(self) -> Health:
        try:
            health = self.check()
        except Exception as exc:  # a bug in a check: say so, and let systemd restart the service
            log.exception("event=health_check_failed")
            health = Health((f"health check failed: {exc!r}",))
        if health.healthy != (self.last.healthy if self.last else True):
            if health.healthy:
                log.warning("event=healthy_again status=%r", health.status)
            else:
                log.warning("event=stalled problems=%r action=stop_feeding_watchdog", list(health.problems))
        self.last = health
        return health
