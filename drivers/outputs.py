"""Output devices: sirens and lights on GPIO, a text display on a serial line, an acknowledge button.

The node's output side of issue 16, knowing nothing of config files (``edge.outputs`` builds these
from ``[outputs.NAME]``). Like the sensors in ``drivers.gpio``, the GPIO devices take gpiozero's
``pin_factory`` (None: the board's; tests and demos pass a ``MockFactory``), and the display writes
to a transport it did not open (``drivers.transport``). gpiozero is imported when a GPIO device is
made, so the patterns and the display's framing are read without it (the node's config does):

- :class:`Signal`: a siren or a light on a GPIO pin (through a relay), on or off;
- :class:`TextDisplay`: an LED signboard or a cabin display on a serial line, one screen of UTF-8
  lines at a time (the framing is :func:`screen`'s);
- :class:`AckButton`: a push button a person presses to acknowledge a warning;
- :class:`Sounding`: a :class:`Pattern` (blasts, repeats) played on signals in a thread of its own,
  every edge scheduled from one start, stopped at once.

Example::

    >>> from gpiozero.pins.mock import MockFactory
    >>> siren = Signal(17, pin_factory=MockFactory())
    >>> siren.on(); siren.is_on
    True
    >>> siren.close()
"""

from __future__ import annotations

import logging
import threading
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from common.clock import Clock
from common.errors import IocEdgeError
from drivers.transport import Transport

__all__ = [
    "AckButton",
    "OutputError",
    "Pattern",
    "Signal",
    "Sounding",
    "TextDisplay",
    "screen",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

START_SCREEN = b"\x0c"
"""Form feed: the display clears itself and starts a new screen at its top left."""
END_LINE = b"\r\n"
"""Ends every line of a screen."""
STRIPPED = frozenset({"Cc", "Cs"})
"""Unicode categories left out of a display's text: control characters (C0 including tab, CR, LF and
form feed, DEL, C1), which would break the framing, and lone surrogates, which UTF-8 cannot carry."""


class OutputError(IocEdgeError, RuntimeError):
    """An output device cannot be taken (a GPIO pin in use, no GPIO library); the message names
    gpiozero's error. The node reports it and runs on without that output."""


def _gpio(make: Callable[[], T]) -> T:
    """``make()`` with gpiozero's errors raised as :class:`OutputError` naming the error's class."""
    from gpiozero import GPIOZeroError

    try:
        return make()
    except GPIOZeroError as exc:
        raise OutputError(f"{type(exc).__name__}: {exc}") from exc


class Signal:
    """A siren or a light on a GPIO pin, off until :meth:`on`.

    ``active_high=False`` for a relay board that switches on a low input (most opto-isolated ones).
    Raises :class:`OutputError` when the pin cannot be taken.

    Example::

        >>> from gpiozero.pins.mock import MockFactory
        >>> light = Signal("GPIO22", active_high=False, pin_factory=MockFactory())
        >>> light.is_on, light.pin.state       # off: the relay's input held high
        (False, True)
        >>> light.close()
    """

    def __init__(self, pin: int | str, active_high: bool = True, pin_factory: Any = None) -> None:
        from gpiozero import DigitalOutputDevice

        self._device = _gpio(
            lambda: DigitalOutputDevice(
                pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
            )
        )

    @property
    def pin(self) -> Any:
        """gpiozero's pin (a mock pin's ``states`` are its history)."""
        return self._device.pin

    def on(self) -> None:
        self._device.on()

    def off(self) -> None:
        self._device.off()

    @property
    def is_on(self) -> bool:
        return bool(self._device.value)

    def close(self) -> None:
        """Release the pin (the output floats: a relay board's pull decides, hence :meth:`off` first)."""
        self._device.close()


def screen(lines: Sequence[str]) -> bytes:
    """The bytes of one screen of ``lines``: a form feed, then each line in UTF-8 ended by CR LF.

    Each line is normalised to NFC (a precomposed letter where Unicode has one: a display's font has
    "ả", rarely "a" + a combining hook) and its characters of the :data:`STRIPPED` categories are
    left out. No lines is an empty screen (a form feed alone: the display clears).

    Example::

        >>> screen(["Bão số 9", "tab\\there"])
        b'\\x0cB\\xc3\\xa3o s\\xe1\\xbb\\x91 9\\r\\ntabhere\\r\\n'
    """
    text = (unicodedata.normalize("NFC", line) for line in lines)
    shown = ("".join(c for c in line if unicodedata.category(c) not in STRIPPED) for line in text)
    return START_SCREEN + b"".join(line.encode("utf-8") + END_LINE for line in shown)


class TextDisplay:
    """An LED signboard or a cabin display on a transport the node opened: one screen at a time.

    The framing is :func:`screen`'s: a form feed starts a screen, each line ends with CR LF, UTF-8.

    Example::

        >>> from drivers.transport import MemoryTransport
        >>> port = MemoryTransport()
        >>> TextDisplay(port).show(["Lũ báo động 2"])
        >>> bytes(port.written)
        b'\\x0cL\\xc5\\xa9 b\\xc3\\xa1o \\xc4\\x91\\xe1\\xbb\\x99ng 2\\r\\n'
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    def show(self, lines: Sequence[str]) -> None:
        """Replace the screen with ``lines``; raises :class:`~drivers.transport.TransportError` when
        the display does not take them (unplugged, a stuck line)."""
        self.transport.write(screen(lines))

    def clear(self) -> None:
        """Blank the screen; raises :class:`~drivers.transport.TransportError` as :meth:`show`."""
        self.transport.write(START_SCREEN)


class AckButton:
    """A push button (to ground, with the internal pull-up by default) that calls ``callback()`` when
    pressed, from gpiozero's thread; presses within ``bounce_s`` of the last are contact bounce.

    ``callback`` may be set later (``button.callback = ...``). Raises :class:`OutputError` when the
    pin cannot be taken.

    Example::

        >>> from gpiozero.pins.mock import MockFactory
        >>> factory = MockFactory()
        >>> button = AckButton(5, lambda: print("acknowledged"), pin_factory=factory)
        >>> factory.pin(5).drive_low()
        acknowledged
        >>> button.close()
    """

    def __init__(
        self,
        pin: int | str,
        callback: Callable[[], None] | None = None,
        pull_up: bool = True,
        bounce_s: float = 0.05,
        pin_factory: Any = None,
    ) -> None:
        from gpiozero import Button

        self.callback = callback
        self._button = _gpio(
            lambda: Button(pin, pull_up=pull_up, bounce_time=bounce_s or None, pin_factory=pin_factory)
        )
        self._button.when_pressed = self._pressed

    def _pressed(self) -> None:
        if self.callback is not None:
            self.callback()

    def close(self) -> None:
        self._button.close()


@dataclass(frozen=True)
class Pattern:
    """A signal: ``blasts`` of ``on_s`` with ``off_s`` between, the whole ``repeat`` times with
    ``pause_s`` between repeats.

    Example::

        >>> signal = Pattern(on_s=0.2, off_s=0.1, blasts=2, repeat=2, pause_s=0.3)
        >>> signal.edges()[:5], signal.duration_s
        ([(0.0, True), (0.2, False), (0.3, True), (0.5, False), (0.8, True)], 1.3)
    """

    on_s: float
    off_s: float
    blasts: int
    repeat: int = 1
    pause_s: float = 0.0

    def __post_init__(self) -> None:
        if self.on_s <= 0 or self.off_s < 0 or self.pause_s < 0 or self.blasts < 1 or self.repeat < 1:
            raise ValueError(f"not a pattern: {self!r}; expected on_s > 0, blasts and repeat >= 1")

    def edges(self) -> list[tuple[float, bool]]:
        """``(seconds from the start, on)`` of every edge, the first an ``on`` at 0, the last an ``off``."""
        out: list[tuple[float, bool]] = []
        t = 0.0
        for r in range(self.repeat):
            for b in range(self.blasts):
                out += [(round(t, 6), True), (round(t + self.on_s, 6), False)]
                t += self.on_s + (self.off_s if b < self.blasts - 1 else 0.0)
            t += self.pause_s if r < self.repeat - 1 else 0.0
        return out

    @property
    def duration_s(self) -> float:
        """From the first blast's start to the last one's end."""
        return self.edges()[-1][0]


OnChange = Callable[[str, int, str], None]
"""``on_change(event, ms, reason)``: ``"started"`` (reason ``""``) and ``"stopped"`` with the time."""


class Sounding:
    """One playing of a :class:`Pattern` on ``signals``, in a thread of its own.

    Every edge is due at the monotonic start plus its offset in :meth:`Pattern.edges` (never slept
    one after another, so no delay accumulates), and all signals switch together. :meth:`stop`
    switches every signal off in the caller's thread, before it returns; after it, none is switched
    on again. ``started_ms``/``stopped_ms`` are the node's time (``clock.now().ts_ms``, as records
    are stamped) of the first edge and of the moment the signals went off; ``reason`` is ``"done"``
    when the pattern played to its end, else what :meth:`stop` was given. ``on_change`` is called
    from the thread: ``("started", started_ms, "")`` at the first edge, then ``("stopped",
    stopped_ms, reason)``; a sounding stopped before its first edge never sounded and calls neither.

    Example::

        >>> from gpiozero.pins.mock import MockFactory
        >>> siren = Signal(17, pin_factory=MockFactory())
        >>> sounding = Sounding([siren], Pattern(on_s=0.05, off_s=0.05, blasts=2), Clock())
        >>> sounding.start(); sounding.wait(2.0), sounding.reason
        (True, 'done')
    """

    def __init__(
        self, signals: Sequence[Signal], pattern: Pattern, clock: Clock, on_change: OnChange | None = None
    ) -> None:
        self.signals = list(signals)
        self.pattern = pattern
        self.clock = clock
        self.on_change = on_change
        self.started_ms: int | None = None
        self.stopped_ms: int | None = None
        self.reason = ""
        self._stop = threading.Event()
        self._done = threading.Event()
        # held while signals switch: stop() cannot interleave with an edge being played
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Play the pattern from now; raises RuntimeError when started before."""
        if self._thread is not None:
            raise RuntimeError("a sounding plays once; make another")
        self._thread = threading.Thread(target=self._run, name="sounding", daemon=True)
        self._thread.start()

    def stop(self, reason: str) -> None:
        """Switch every signal off now and end the playing with ``reason``; harmless once it ended."""
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
            self.reason = reason
            if self.started_ms is not None:
                self._switch(False)
                self.stopped_ms = self.clock.now().ts_ms

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the playing ended (done or stopped, its ``stopped`` event sent); whether it did."""
        return self._done.wait(timeout)

    @property
    def playing(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    def _switch(self, on: bool) -> None:
        for signal in self.signals:
            try:
                if on:
                    signal.on()
                else:
                    signal.off()
            except Exception:
                # the other signals must still switch; a failing pin is logged, the pattern goes on
                log.exception("event=signal_failed signal=%r on=%s", signal, on)

    def _run(self) -> None:
        t0 = time.monotonic()
        try:
            for offset, on in self.pattern.edges():
                if self._stop.wait(max(0.0, t0 + offset - time.monotonic())):
                    break
                with self._lock:
                    if self._stop.is_set():
                        break
                    self._switch(on)
                    first = self.started_ms is None
                    if first:
                        self.started_ms = started = self.clock.now().ts_ms
                if first:
                    self._tell("started", started, "")
            with self._lock:
                if not self._stop.is_set():  # played to its end
                    self._stop.set()
                    self.reason = "done"
                    self.stopped_ms = self.clock.now().ts_ms
                stopped = self.stopped_ms
            if stopped is not None:
                self._tell("stopped", stopped, self.reason)
        finally:
            self._done.set()

    def _tell(self, event: str, ms: int, reason: str) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(event, ms, reason)
        except Exception:
            # a receipt's failure must not leave a siren on: the pattern goes on
            log.exception("event=sounding_callback_failed sounding_event=%s", event)
