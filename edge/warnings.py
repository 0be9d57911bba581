"""The node's warnings: the centre's, its own alarms', and a person's on site, sounded, shown and receipted.

A :class:`WarningDesk` holds the warnings in force on this node and is the only thing that drives
its outputs (``edge.outputs.OutputBank``: sirens, lights, displays; the acknowledge buttons call
:meth:`WarningDesk.ack`). It takes:

- the centre's warnings (``sync.warnings.Alert``, the body of a signed ``warning`` command, through
  ``edge.command_kinds``): delivered, then, when the node is inside the alert's area, sounded in
  the alert's pattern and shown on the displays; an ``Update`` replaces the alerts it refers to and
  a ``Cancel`` silences and clears them;
- its own alarms: a rule with ``sound`` (``[alarms.flood] sound = "flood-2"``) sounds at once
  when raised, with no link at all (:meth:`WarningDesk.alarms`, the alarm engine's sink);
- a person on site (``ioc-edge warn sound|silence|ack``, or a button): :meth:`sound`,
  :meth:`silence`, :meth:`ack`.

Inside or outside is decided here, with the node's own position: a vessel's last GPS fix (so a boat
whose last position at the centre is hours old decides where it is now), else the station's
``[node] location``. A vessel just booted, its GPS without a fix yet, waits up to ``[warnings]
fix_wait_s`` for one (then receipts ``located``). A node that knows neither sounds the warning and
says ``inside`` unknown: a needless siren is better than a storm missed. An alert without areas
covers every node it is sent to.

Every step is a :class:`sync.records.WarningReceipt` on the alarm lane (see its docstring for the
events), and on a vessel with a track log, delivery and acknowledgement are also chained into the
signed track (``TrackLog.note``), so the owner can prove later when the boat had the warning.

``status``: ``Actual`` sounds its pattern; ``Exercise`` sounds ``[warnings] exercise_pattern``
(empty: none) and shows the text marked as an exercise; ``Test`` is delivered and receipted, never
sounded or shown (CAP: "technical testing only, all recipients disregard"). An alert that expires
while held is silenced and cleared; one that expired unsounded says so (``expired``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from common.clock import Clock
from common.component import Component
from drivers.base import Sink
from drivers.outputs import OutputError, Sounding
from edge.outputs import OUTPUT_TYPES
from edge.outputs.bank import OutputBank
from sync.records import Alarm, WarningReceipt
from sync.warnings import Alert, Info

__all__ = ["RECEIPTS", "Held", "WarningDesk", "display_lines"]

log = logging.getLogger(__name__)

RECEIPTS = "warning_receipt"
TICK_S = 0.1
"""How often expiries are checked: an expired warning is silent within this."""
LOCAL_S = 3600
"""How long a local sounding (an alarm's, a person's) is held: its pattern ends long before."""
TEXT_LINES = 4
"""Lines a display shows of a warning: the Vietnamese headline and instruction, then the English ones."""


@dataclass
class Held:
    """A warning in force on this node: the alert, whether the node was inside, what it does now."""

    alert: Alert
    inside: int | None
    by: str
    sounding: Sounding | None = None
    shown: bool = False
    sounded: bool = False
    acked: bool = False
    deciding: float = 0.0
    """Until when (``time.monotonic``) it waits for a position before it decides; 0: decided."""


class WarningDesk(Component):
    """The warnings in force on this node and its outputs; see the module's docstring.

    ``bank`` drives the outputs (None: a node without any, which still receipts what it gets);
    ``sink`` takes the receipts (the recorder's append); ``position`` gives the node's position now
    (``(lat, lon)`` or None); ``alarm_patterns`` the pattern each local alarm rule sounds;
    ``exercise_pattern`` what an exercise sounds (empty: none); ``ack_silences``: an acknowledgement
    also silences the sirens (a cabin buzzer; a station's siren warning the public goes on when false);
    ``fix_wait_s``: how long a node with a GPS and no fix yet waits for one before it decides whether
    it is inside (0: it decides at once); ``note`` chains a text into the signed track (None: no track log).

    Example::

        desk = WarningDesk("station-7", bank, recorder.append, clock, lambda: (16.46, 107.59))
        desk.start()
        desk.receive(alert)          # from a ``warning`` command
        desk.ack("button:ack")       # a person on site
    """

    def __init__(
        self,
        device: str,
        bank: OutputBank | None,
        sink: Sink,
        clock: Clock,
        position: Callable[[], tuple[float, float] | None],
        *,
        alarm_patterns: Mapping[str, str] | None = None,
        exercise_pattern: str = "exercise",
        ack_silences: bool = True,
        fix_wait_s: float = 0.0,
        note: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__("warnings")
        self.device, self.bank, self.sink, self.clock, self.position = device, bank, sink, clock, position
        self.alarm_patterns = dict(alarm_patterns or {})
        self.exercise_pattern, self.ack_silences, self.note = exercise_pattern, ack_silences, note
        self.fix_wait_s = fix_wait_s
        self.held: dict[str, Held] = {}
        self.counts: Counter[str] = Counter()
        roles = {n: OUTPUT_TYPES[t].role for n, t in bank.kinds.items()} if bank is not None else {}
        self.signals = [n for n, role in roles.items() if role == "signal"]
        self.displays = [n for n, role in roles.items() if role == "display"]
        # the inbox's thread, the alarm engine's, a button's and the expiry's all change what is held
        self._lock = threading.RLock()

    # -- what comes in -------------------------------------------------------------------------

    def receive(self, alert: Alert, by: str = "centre") -> dict[str, object]:
        """Take one alert: delivered, then sounded and shown when the node is inside; the details of
        the command's result (``inside``, ``sounded``, ``shown``, what it replaced or cancelled, or
        ``deciding_s``: how long it waits for a first GPS fix before it decides)."""
        with self._lock:
            if alert.identifier in self.held:
                self.counts["duplicate"] += 1  # the inbox answers duplicates; a local id never repeats
                return {"inside": self.held[alert.identifier].inside, "duplicate": True}
            here = self.position()
            inside = None if here is None else int(alert.covers(*here))
            self._receipt(alert.identifier, "delivered", by, inside, here, {"msg_type": alert.msg_type})
            self._note("delivered", alert, by, inside)
            ended = [self._end(i, "cancelled", by) for i in alert.refers_to() if i in self.held]
            if alert.msg_type == "Cancel":
                self.counts["cancelled"] += len(ended)
                return {"inside": inside, "cancelled": ended}
            held = self.held[alert.identifier] = Held(alert, inside, by)
            self.counts["received"] += 1
            if self.clock.now().ts_ms >= alert.expires_ms:
                self._end(alert.identifier, "expired", "expiry")
                return {"inside": inside, "expired": True}
            if inside is None and alert.areas and self.fix_wait_s > 0:
                # A vessel just booted has no fix yet: it decides once it has one (the desk's tick),
                # or sounds after fix_wait_s, inside unknown.
                held.deciding = time.monotonic() + self.fix_wait_s
                return {"inside": None, "deciding_s": self.fix_wait_s, "replaced": ended}
            self._act(held)
            return {
                "inside": inside,
                "sounded": held.sounding is not None,
                "shown": held.shown,
                "replaced": ended,
            }

    def _act(self, held: Held) -> None:
        """Show and sound ``held`` when the node is not known to be outside (and it is no Test)."""
        if held.alert.status != "Test" and held.inside != 0:
            self._show(held)
            self._sound(held, self._pattern(held.alert))

    def _decide(self, held: Held) -> None:
        """A deferred decision (see :meth:`receive`): once the node has a position, or at the deadline."""
        here = self.position()
        if here is None and time.monotonic() < held.deciding:
            return
        held.deciding = 0.0
        held.inside = None if here is None else int(held.alert.covers(*here))
        self._receipt(held.alert.identifier, "located", held.by, held.inside, here, {"waited": here is None})
        self._act(held)

    def alarms(self, alarms: Iterable[Alarm]) -> None:
        """The alarm engine's raised alarms: a rule with a pattern sounds it at once (no link needed)."""
        for alarm in alarms:
            pattern = self.alarm_patterns.get(alarm.kind)
            if alarm.state == 1 and pattern:
                self.sound(pattern, f"alarm:{alarm.kind}", alarm.message)

    def sound(self, pattern: str, by: str = "hand", text: str = "") -> str:
        """Sound ``pattern`` now, for the node's own reason (an alarm, a person on site); the local
        warning's identifier (``local:<device>:<who>:<ms>``), receipted as the centre's are."""
        now = self.clock.now()
        identifier = f"local:{self.device}:{by.split(':', 1)[-1]}:{now.ts_ms}"
        info = Info("vi-VN", (text or f"{pattern} ({by})")[:128], "Immediate", "Severe", "Observed")
        alert = Alert.make(
            identifier,
            self.device,
            now.ts_ms,
            "Alert",
            [info],
            [],
            now.ts_ms + LOCAL_S * 1000,
            pattern=pattern,
        )
        with self._lock:
            here = self.position()
            held = self.held[identifier] = Held(alert, None if here is None else 1, by)
            self._receipt(identifier, "delivered", by, held.inside, here, {"pattern": pattern, "local": True})
            self._sound(held, pattern)
        return identifier

    def silence(self, by: str = "hand") -> list[str]:
        """Silence every siren and light now (the warnings stay in force, shown); the identifiers silenced."""
        with self._lock:
            silenced = [i for i, h in self.held.items() if h.sounding is not None and h.sounding.playing]
            for identifier in silenced:
                self._quiet(self.held[identifier], f"silenced:{by}")
        return silenced

    def ack(self, by: str = "hand") -> list[str]:
        """A person on site acknowledges the warnings in force not yet acknowledged (those the node is
        outside of, and Tests, are not theirs to acknowledge); their identifiers."""
        with self._lock:
            # what a person on site may have seen or heard: not a Test, not one the node is outside of
            acked = [
                h for h in self.held.values() if not h.acked and h.alert.status != "Test" and h.inside != 0
            ]
            for held in acked:
                held.acked = True
                here = self.position()
                self._receipt(held.alert.identifier, "acknowledged", by, held.inside, here, {})
                self._note("acknowledged", held.alert, by, held.inside)
                if self.ack_silences and held.sounding is not None:
                    self._quiet(held, "acknowledged")
            self.counts["acknowledged"] += len(acked)
        return [h.alert.identifier for h in acked]

    def pressed(self, button: str, ms: int) -> None:
        """An acknowledge button was pressed (``OutputBank.on_ack``'s callback)."""
        self.ack(f"button:{button}")

    def actions(self) -> dict[str, Callable[[Mapping[str, Any]], Mapping[str, Any]]]:
        """What a person on site may ask through the control socket (``edge.control``, ``ioc-edge warn``)."""
        return {
            "warn.sound": lambda req: {"identifier": self.sound(self._known(req.get("pattern")), "hand")},
            "warn.silence": lambda req: {"silenced": self.silence("hand")},
            "warn.ack": lambda req: {"acknowledged": self.ack("hand")},
            "warn.list": lambda req: {"warnings": self.describe()},
        }

    def _known(self, pattern: object) -> str:
        """``pattern`` when this node can sound it; ValueError saying why not (the socket's refusal)."""
        if self.bank is None or not self.signals:
            raise ValueError("this node has no siren or light: see [outputs] in its config")
        if not isinstance(pattern, str) or pattern not in self.bank.patterns:
            raise ValueError(f"{pattern!r} is not a pattern; expected one of {sorted(self.bank.patterns)}")
        return pattern

    def describe(self) -> dict[str, object]:
        """The warnings in force, for the status's facts and ``ioc-edge warn list``."""
        with self._lock:
            return {
                i: {
                    "event": h.alert.info().event,
                    "inside": h.inside,
                    "sounding": h.sounding is not None and h.sounding.playing,
                    "acknowledged": h.acked,
                    "expires_ms": h.alert.expires_ms,
                    "by": h.by,
                }
                for i, h in self.held.items()
            }

    # -- the outputs ---------------------------------------------------------------------------

    def _pattern(self, alert: Alert) -> str:
        return self.exercise_pattern if alert.status == "Exercise" else alert.pattern

    def _sound(self, held: Held, pattern: str) -> None:
        if not pattern or self.bank is None:
            return
        alert, inside = held.alert, held.inside

        def changed(event: str, ms: int, reason: str) -> None:
            held.sounded = True
            name = "sounded" if event == "started" else "silenced"
            for output in self.signals:
                details = {"pattern": pattern, "reason": reason} if reason else {"pattern": pattern}
                self._receipt(alert.identifier, name, held.by, inside, None, details, output, ms)

        try:
            held.sounding = self.bank.sound(pattern, changed)
        except (KeyError, OutputError) as exc:  # an unknown pattern, or no siren or light to sound it on
            self.counts["not_sounded"] += 1
            why = str(exc).strip("'\"")
            self._receipt(
                alert.identifier, "refused", held.by, inside, None, {"pattern": pattern, "why": why}
            )

    def _show(self, held: Held) -> None:
        if self.bank is None or not self.displays:
            return
        lines = display_lines(held.alert)
        failed = self.bank.show(lines)
        held.shown = True
        for output in self.displays:
            details = {"lines": lines, "failed": failed[output]} if output in failed else {"lines": lines}
            self._receipt(held.alert.identifier, "displayed", held.by, held.inside, None, details, output)

    def _quiet(self, held: Held, reason: str) -> None:
        if held.sounding is not None:
            held.sounding.stop(reason)  # every signal off before it returns
            held.sounding.wait(1.0)  # and its "silenced" receipts written: they come before what follows

    def _end(self, identifier: str, event: str, by: str) -> str:
        """Take ``identifier`` out of force (cancelled, replaced, expired): silenced, cleared, receipted."""
        held = self.held.pop(identifier)
        self._quiet(held, event)
        if held.shown and self.bank is not None and not any(h.shown for h in self.held.values()):
            self.bank.clear()
        self._receipt(identifier, event, by, held.inside, None, {"sounded": held.sounded})
        return identifier

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            now = self.clock.now().ts_ms
            with self._lock:
                for identifier in [i for i, h in self.held.items() if now >= h.alert.expires_ms]:
                    self._end(identifier, "expired", "expiry")
                    self.counts["expired"] += 1
                for held in [h for h in self.held.values() if h.deciding]:
                    self._decide(held)

    def _after_stop(self) -> None:
        with self._lock:
            for held in self.held.values():
                self._quiet(held, "node_stopped")

    # -- receipts ------------------------------------------------------------------------------

    def _receipt(
        self,
        identifier: str,
        event: str,
        by: str,
        inside: int | None,
        here: tuple[float, float] | None,
        details: Mapping[str, object],
        output: str = "",
        at_ms: int | None = None,
    ) -> None:
        stamp = self.clock.now()
        if at_ms is not None:
            stamp = stamp._replace(ts_ms=at_ms)
        if here is None:
            here = self.position()
        lat, lon = here if here is not None else (None, None)
        text = json.dumps(details, sort_keys=True, ensure_ascii=False)
        receipt = WarningReceipt(*stamp, identifier, event, output, by, inside, lat, lon, text)
        self.sink(RECEIPTS, [receipt])
        log.info(
            "event=warning_%s identifier=%s by=%s output=%s inside=%s", event, identifier, by, output, inside
        )

    def _note(self, event: str, alert: Alert, by: str, inside: int | None) -> None:
        if self.note is None:
            return
        text = json.dumps(
            {
                "event": event,
                "identifier": alert.identifier,
                "sender": alert.sender,
                "sent_ms": alert.sent_ms,
                "ts_ms": self.clock.now().ts_ms,
                "by": by,
                "inside": inside,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        self.note(text)


def display_lines(alert: Alert) -> list[str]:
    """What a display shows of ``alert``: the Vietnamese headline and instruction, then the English
    ones, at most :data:`TEXT_LINES`; an exercise's first line marked ``[DIỄN TẬP]`` (exercise)."""
    mark = "[DIỄN TẬP] " if alert.status == "Exercise" else ""
    vi, en = alert.info("vi"), alert.info("en")
    lines = [mark + (vi.headline or vi.event), vi.instruction]
    if en is not vi:
        lines += [en.headline or en.event, en.instruction]
    return [line for line in lines if line][:TEXT_LINES]
