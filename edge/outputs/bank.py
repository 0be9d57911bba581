"""The node's output devices as one: what the runtime holds to sound, show and take acknowledgements.

Example::

    >>> from gpiozero.pins.mock import MockFactory
    >>> from common.clock import Clock
    >>> from edge.outputs.siren import SirenOutputConfig
    >>> ctx = OutputContext(MockFactory(), transport=None, clock=Clock())
    >>> bank = OutputBank({"siren": SirenOutputConfig(type="siren", pin=17)}, {}, ctx)
    >>> bank.kinds, bank.failed
    ({'siren': 'siren'}, {})
    >>> sounding = bank.sound("exercise")
    >>> bank.silence("cancelled") is sounding, sounding.reason
    (True, 'cancelled')
    >>> bank.close()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from drivers.outputs import AckButton, OnChange, OutputError, Signal, Sounding, TextDisplay
from drivers.transport import TransportError
from edge.outputs import OUTPUT_TYPES
from edge.outputs.base import OutputContext
from edge.outputs.patterns import PatternConfig, patterns

__all__ = ["OutputBank", "OutputContext"]

log = logging.getLogger(__name__)

Ack = Callable[[str, int], None]
"""``callback(button, ms)``: the button's name and the node's time of the press."""


class OutputBank:
    """Every output of the node's ``[outputs.NAME]``, built with ``ctx``, and its patterns (Hue's
    defaults with the config's ``[patterns.NAME]``, ``configured``).

    An output that cannot be built (its pin in use, no GPIO library) is in ``failed`` (name ->
    why) and the others work. ``kinds`` is each built output's type, by name; ``names`` their names.
    One pattern plays at a time, on every siren and light. Thread-safe. The displays' transports
    are the runtime's (``ctx.transport``): :meth:`close` leaves them to it.
    """

    def __init__(
        self, outputs: Mapping[str, Any], configured: Mapping[str, PatternConfig], ctx: OutputContext
    ) -> None:
        self.ctx = ctx
        self.patterns = patterns(configured)
        self.kinds: dict[str, str] = {}
        self.failed: dict[str, str] = {}
        self._signals: list[Signal] = []
        self._displays: dict[str, TextDisplay] = {}
        self._buttons: dict[str, AckButton] = {}
        self._sounding: Sounding | None = None
        self._lock = threading.Lock()
        for name, cfg in outputs.items():
            entry = OUTPUT_TYPES[cfg.type]
            try:
                device = entry.build(name, cfg, ctx)
            except (OutputError, TransportError) as exc:
                self.failed[name] = str(exc)
                log.error("event=output_build_failed output=%s error=%r", name, self.failed[name])
                continue
            self.kinds[name] = cfg.type
            if entry.role == "signal":
                self._signals.append(device)
            elif entry.role == "display":
                self._displays[name] = device
            else:
                self._buttons[name] = device

    @property
    def names(self) -> list[str]:
        """The outputs built, in config order."""
        return list(self.kinds)

    @property
    def sounding(self) -> Sounding | None:
        """The last pattern sounded (playing or ended), None before the first."""
        return self._sounding

    def sound(self, pattern: str, on_change: OnChange | None = None) -> Sounding:
        """Start ``pattern`` on every siren and light, stopping the one playing with reason ``"replaced"``.

        ``on_change`` is the :class:`~drivers.outputs.Sounding`'s (its ``started`` and ``stopped``).
        Raises KeyError naming the known patterns for an unknown one, and
        :class:`~drivers.outputs.OutputError` when the node has no siren or light to sound it on.
        """
        if pattern not in self.patterns:
            raise KeyError(
                f"{pattern!r} is not a pattern; expected one of: {', '.join(sorted(self.patterns))}"
            )
        if not self._signals:
            raise OutputError(f"no siren or light to sound {pattern!r} on ({self._why_none()})")
        with self._lock:
            if self._sounding is not None:
                self._sounding.stop("replaced")
            self._sounding = Sounding(self._signals, self.patterns[pattern], self.ctx.clock, on_change)
            self._sounding.start()
            return self._sounding

    def silence(self, reason: str) -> Sounding | None:
        """Stop the pattern playing, every signal off before this returns; the one stopped, else None."""
        with self._lock:
            sounding = self._sounding
            if sounding is None or not sounding.playing:
                return None
            sounding.stop(reason)
            return sounding

    def show(self, lines: Sequence[str]) -> dict[str, str]:
        """Show ``lines`` on every display; the displays that failed, with why (empty: all showed them)."""
        return self._each_display(lambda display: display.show(lines))

    def clear(self) -> dict[str, str]:
        """Blank every display; the displays that failed, with why."""
        return self._each_display(lambda display: display.clear())

    def on_ack(self, callback: Ack) -> None:
        """Call ``callback(button, ms)`` when a button is pressed (from gpiozero's thread)."""
        for name, button in self._buttons.items():
            button.callback = self._acknowledge(name, callback)

    def close(self) -> None:
        """Silence the signals (reason ``"closed"``) and release every pin."""
        self.silence("closed")
        devices: list[Signal | AckButton] = [*self._signals, *self._buttons.values()]
        for device in devices:
            try:
                device.close()
            except Exception:
                # the other pins must still be released, and close() is called on the way out
                log.exception("event=output_close_failed device=%r", device)
        self._signals, self._buttons = [], {}

    def _acknowledge(self, name: str, callback: Ack) -> Callable[[], None]:
        return lambda: callback(name, self.ctx.clock.now().ts_ms)

    def _each_display(self, write: Callable[[TextDisplay], None]) -> dict[str, str]:
        failed = {}
        for name, display in self._displays.items():
            try:
                write(display)
            except TransportError as exc:
                failed[name] = str(exc)
                log.warning("event=display_failed output=%s error=%r", name, failed[name])
        return failed

    def _why_none(self) -> str:
        broken = [f"{name}: {why}" for name, why in self.failed.items()]
        return "; ".join(broken) if broken else "none configured"
