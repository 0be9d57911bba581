"""Local alarms: thresholds with hysteresis, raised and cleared on the node with no IOC involved.

A riverside node must warn of a flood even when its link is down: each rule
watches one quantity of one sensor (or of every sensor, ``"*"``) and raises
an :class:`~sync.records.Alarm` when the value crosses ``above`` (or falls
under ``below``), and clears it only once the value is back beyond the
threshold by ``hysteresis``, so a level hovering on the line does not flap.
Alarms travel in the uplink's alarm lane, ahead of any backlog, and are
kept longest by the store's retention.

The value a rule watches is the reading itself, or over the last
``window_s``: the mean (a PM2.5 band), the rain rate in mm/h from the
tips (``rain_mm_per_h``), or the rate of rise of the water in m/h from a
least-squares slope (``water_rise_m_per_h``).

Example::

    >>> rule = Rule("flood", sensor="river", quantity="water_level_m", above=3.5, hysteresis=0.1)
    >>> state = RuleState()
    >>> [step(rule, state, v) for v in (3.0, 3.6, 3.45, 3.41, 3.39)]
    [None, 'raise', None, None, 'clear']
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from common.clock import Clock
from common.component import Component
from edge.summary import slope_per_hour
from sync.records import Alarm, Reading

Sink = Callable[[str, list], None]

DERIVED_FROM = {"rain_mm_per_h": "rain_mm", "water_rise_m_per_h": "water_level_m"}
"""Quantities a rule may watch that are computed from another quantity's readings."""


@dataclass(frozen=True)
class Rule:
    """One threshold: exactly one of ``above``/``below``; ``window_s`` 0 watches each reading as it is."""

    name: str
    sensor: str
    quantity: str
    above: float | None = None
    below: float | None = None
    hysteresis: float = 0.0
    window_s: float = 0.0

    def matches(self, sensor: str, quantity: str) -> bool:
        return self.sensor in ("*", sensor) and DERIVED_FROM.get(self.quantity, self.quantity) == quantity


@dataclass
class RuleState:
    raised: bool = False


def step(rule: Rule, state: RuleState, value: float | None) -> str | None:
    """Feed one value: ``"raise"``, ``"clear"`` or None (no change). Pure apart from ``state``."""
    if value is None or math.isnan(value):
        return None
    if rule.above is not None:
        trip, back = value > rule.above, value < rule.above - rule.hysteresis
    else:
        assert rule.below is not None, "a rule has exactly one of above/below (edge.config checks it)"
        trip, back = value < rule.below, value > rule.below + rule.hysteresis
    if not state.raised and trip:
        state.raised = True
        return "raise"
    if state.raised and back:
        state.raised = False
        return "clear"
    return None


def windowed(rule: Rule, points: Iterable[tuple[int, float]], now_ms: int) -> float | None:
    """The value ``rule`` watches, from the ``(ts_ms, value)`` points of its source quantity."""
    recent = [(t, v) for t, v in points if t > now_ms - rule.window_s * 1000]
    if rule.quantity == "rain_mm_per_h":
        return math.fsum(v for _, v in recent) * 3600 / rule.window_s
    if rule.quantity == "water_rise_m_per_h":
        return slope_per_hour(recent)
    if not recent:
        return None
    return math.fsum(v for _, v in recent) / len(recent)


class AlarmEngine(Component):
    """Applies the rules to the readings as they come, and to the clock's ticks for windowed rules.

    Ticks matter: a rain alarm must clear when the tips stop, which no new
    reading would tell. ``feed`` may be called from any thread.

    A node starts it (``start``/``stop``: the ticks); ``feed`` alone applies the rules to readings::

        >>> from sync.records import Reading
        >>> alarms = []
        >>> engine = AlarmEngine(
        ...     [Rule("flood", "river", "water_level_m", above=3.5, hysteresis=0.1)],
        ...     lambda stream, batch: alarms.extend(batch),  # the recorder's append in a node
        ...     Clock(),
        ... )
        >>> t = 1700000000000
        >>> engine.feed([Reading(t, 1, t, "river", "water_level_m", v) for v in (3.4, 3.6, 3.55)])
        >>> [(a.source, a.kind, a.state, a.message) for a in alarms]
        [('river', 'flood', 1, 'flood raised: water_level_m 3.600 (above 3.5, hysteresis 0.1)')]
    """

    def __init__(self, rules: Iterable[Rule], sink: Sink, clock: Clock, tick_s: float = 1.0) -> None:
        super().__init__("alarms")
        self.rules = list(rules)
        self.sink, self.clock, self.tick_s = sink, clock, tick_s
        self._states: dict[tuple[str, str], RuleState] = defaultdict(RuleState)  # (rule, sensor)
        self._history: dict[tuple[str, str], deque[tuple[int, float]]] = defaultdict(deque)
        self._horizon_ms = max((r.window_s for r in self.rules), default=0) * 1000
        self._lock = threading.Lock()
        self.raised = 0

    def feed(self, readings: Iterable[Reading]) -> None:
        alarms: list[Alarm] = []
        with self._lock:
            for r in readings:
                rules = [rule for rule in self.rules if rule.matches(r.sensor, r.quantity)]
                if not rules:
                    continue
                history = self._history[(r.sensor, r.quantity)]
                history.append((r.ts_ms, r.value))
                while history and history[0][0] <= r.ts_ms - self._horizon_ms:
                    history.popleft()
                for rule in rules:
                    value = windowed(rule, history, r.ts_ms) if rule.window_s else r.value
                    alarms += self._apply(rule, r.sensor, value)
        self._emit(alarms)

    def tick(self) -> None:
        """Re-evaluate the windowed rules at the clock's time."""
        now_ms = self.clock.now().ts_ms
        alarms: list[Alarm] = []
        with self._lock:
            for (sensor, quantity), history in list(self._history.items()):
                for rule in self.rules:
                    if rule.window_s and rule.matches(sensor, quantity):
                        alarms += self._apply(rule, sensor, windowed(rule, history, now_ms))
        self._emit(alarms)

    def _apply(self, rule: Rule, sensor: str, value: float | None) -> list[Alarm]:
        change = step(rule, self._states[(rule.name, sensor)], value)
        if change is None:
            return []
        threshold = rule.above if rule.above is not None else rule.below
        relation = "above" if rule.above is not None else "below"
        verb = "raised" if change == "raise" else "cleared"
        message = (
            f"{rule.name} {verb}: {rule.quantity} {value:.3f} "
            f"({relation} {threshold}, hysteresis {rule.hysteresis})"
        )
        return [Alarm(*self.clock.now(), sensor, rule.name, int(change == "raise"), value, message)]

    def _emit(self, alarms: list[Alarm]) -> None:
        if alarms:
            self.raised += sum(a.state for a in alarms)
            self.sink("alarm", alarms)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            self.tick()
