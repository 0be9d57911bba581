"""Which link is up, and its profile: what the node sends on it (``[link]`` in the node's config).

A vessel is on a satellite modem at sea (billed by the byte), on 4G near the coast and on the
harbour's Wi-Fi in port. The profile in force is, first found:

0. the one the centre pinned, until the pin expires (the command ``link.pin``: :meth:`LinkMonitor.pin`);
1. the one named in ``link.file`` (a modem script writes ``satellite`` or ``cheap`` there);
2. the one of the interface carrying the default route (``link.interfaces``; the route with the
   lowest metric in ``/proc/net/route``);
3. ``link.default``.

The live track thins positions with the profile's figures (``edge.thinning.LiveTrack``) and the
uplink leaves the profile's ``hold`` streams in the store until a profile without them is in force.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from common.component import Component
from edge.config import LinkConfig, LinkProfileConfig

__all__ = ["MAX_PIN_S", "ROUTE_FILE", "LinkMonitor", "default_route_interface"]

log = logging.getLogger(__name__)

ROUTE_FILE = Path("/proc/net/route")
RTF_UP = 0x1
MAX_PIN_S = 7 * 86_400
"""The longest a profile may be pinned: a profile wanted for longer is a config change."""


def default_route_interface(route_file: Path = ROUTE_FILE) -> str | None:
    """The interface of the IPv4 default route with the lowest metric, or None when there is none.

    ``route_file`` has the format of Linux's ``/proc/net/route`` (a header line, then
    ``Iface Destination Gateway Flags RefCnt Use Metric Mask ...`` in hexadecimal). Raises
    ``OSError`` when it cannot be read.

    Example (Wi-Fi and a cellular modem; the lower metric wins)::

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     routes = Path(tmp, "route")
        ...     _ = routes.write_text(
        ...         "Iface\\tDestination\\tGateway\\tFlags\\tRefCnt\\tUse\\tMetric\\tMask\\n"
        ...         "wwan0\\t00000000\\t01000A0A\\t0003\\t0\\t0\\t700\\t00000000\\n"
        ...         "wlan0\\t00000000\\t0102A8C0\\t0003\\t0\\t0\\t600\\t00000000\\n"
        ...     )
        ...     default_route_interface(routes)
        'wlan0'
    """
    best: tuple[int, str] | None = None
    for line in route_file.read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        interface, destination, flags, metric, mask = fields[0], fields[1], fields[3], fields[6], fields[7]
        try:
            up = int(flags, 16) & RTF_UP
            default = int(destination, 16) == 0 and int(mask, 16) == 0
            rank = int(metric)
        except ValueError:
            continue
        if up and default and (best is None or rank < best[0]):
            best = (rank, interface)
    return best[1] if best else None


class LinkMonitor(Component):
    """Looks at the link every ``poll_s`` and keeps the profile in force; logs each change.

    ``name`` is the profile's name, ``source`` why (``pinned``, ``file``, ``interface``, ``default``),
    ``profile`` its figures and :meth:`held` the streams to keep on the node now. The first
    choice is made in the constructor, so the profile is known before anything reads it.
    ``route_file`` is Linux's ``/proc/net/route`` (tests pass a file of their own).

    Example::

        monitor = LinkMonitor(config.link)
        monitor.start()
        monitor.name, monitor.profile.thin_tolerance_m, monitor.held()
        # ('satellite', 25.0, frozenset({'track', 'track_sig'}))
        monitor.stop()
    """

    def __init__(self, config: LinkConfig, route_file: Path = ROUTE_FILE) -> None:
        super().__init__("link")
        self.config, self.route_file = config, route_file
        self.name, self.source = "", ""
        self._warned: set[str] = set()  # what was logged about, so a bad file is not logged every poll
        self._pin: tuple[str, float, int] | None = None  # profile, until (monotonic), until (epoch ms)
        self._lock = threading.Lock()  # check() runs in the monitor's thread and, for a pin, the inbox's
        self.check()

    @property
    def profile(self) -> LinkProfileConfig:
        """The figures of the profile in force."""
        return self.config.profiles[self.name]

    def held(self) -> frozenset[str]:
        """The streams the uplink leaves in the store while this profile is in force."""
        return frozenset(self.profile.hold)

    def describe(self) -> dict:
        """For the status report: the profile in force, what chose it, the streams it holds, and until
        when (ms since the epoch) it is pinned, if it is."""
        pin = self._pin
        pinned = {"pinned_until_ms": pin[2]} if pin is not None and self.source == "pinned" else {}
        return {"profile": self.name, "source": self.source, "held": sorted(self.held()), **pinned}

    def pin(self, name: str, for_s: float) -> None:
        """Keep profile ``name`` in force for ``for_s`` seconds, whatever the link says; then the usual
        choice again. A new pin replaces the last. Raises ``ValueError`` for a profile the config does
        not have or a time outside 1 s .. :data:`MAX_PIN_S`."""
        if name not in self.config.profiles:
            raise ValueError(f"{name!r} is not one of the profiles {sorted(self.config.profiles)}")
        if not 1 <= for_s <= MAX_PIN_S:
            raise ValueError(f"for_s: {for_s} is not 1..{MAX_PIN_S}")
        self._pin = (name, time.monotonic() + for_s, time.time_ns() // 1_000_000 + round(for_s * 1000))
        self.check()

    def check(self) -> bool:
        """Look at the link now; True when the profile changed."""
        with self._lock:
            return self._check()

    def _check(self) -> bool:
        name, source, detail = self._choose()
        changed = name != self.name
        # A pin that begins or ends is logged even when the profile stays: the status says why it is in force.
        if not changed and (source == self.source or "pinned" not in (source, self.source)):
            return False
        log.info(
            "event=link_changed profile=%s previous=%s source=%s %s",
            name,
            self.name or "none",
            source,
            detail,
        )
        self.name, self.source = name, source
        return changed

    def _run(self) -> None:
        while not self._stop.wait(self.config.poll_s):
            self.check()

    def _choose(self) -> tuple[str, str, str]:
        """(profile, source, a ``key=value`` detail for the log)."""
        pin = self._pin
        if pin is not None and time.monotonic() < pin[1]:
            return pin[0], "pinned", f"until_ms={pin[2]}"
        named = self._from_file()
        if named is not None:
            return named, "file", f"file={self.config.file}"
        try:
            interface = default_route_interface(self.route_file)
        except OSError as exc:
            self._warn_once(
                f"route:{exc}", "event=link_route_unreadable file=%s error=%s", self.route_file, exc
            )
            interface = None
        if interface in self.config.interfaces:
            return self.config.interfaces[interface], "interface", f"interface={interface}"
        return self.config.default, "default", f"interface={interface or 'none'}"

    def _from_file(self) -> str | None:
        try:
            text = self.config.file.read_text(encoding="utf-8", errors="replace").strip()
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn_once(
                f"file:{exc}", "event=link_file_unreadable file=%s error=%s", self.config.file, exc
            )
            return None
        if text in self.config.profiles:
            return text
        self._warn_once(
            f"name:{text}",
            "event=link_file_unknown file=%s profile=%r profiles=%s action=ignored",
            self.config.file,
            text,
            ",".join(sorted(self.config.profiles)),
        )
        return None

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)
