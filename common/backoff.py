"""Exponential backoff with jitter, so a fleet cut off together does not reconnect in lockstep."""

from __future__ import annotations

import random
from collections.abc import Callable


class Backoff:
    """Delays that double from ``min_s`` up to ``max_s``, each drawn from the upper half of its range.

    Example::

        >>> b = Backoff(1.0, 8.0, rand=lambda: 1.0)
        >>> [b.next() for _ in range(5)]
        [1.0, 2.0, 4.0, 8.0, 8.0]
        >>> b.reset(); b.next()
        1.0
    """

    def __init__(self, min_s: float, max_s: float, rand: Callable[[], float] = random.random) -> None:
        self.min_s, self.max_s, self._rand = min_s, max_s, rand
        self._attempt = 0

    def next(self) -> float:
        """The delay before the next attempt."""
        ceiling = min(self.max_s, self.min_s * 2**self._attempt)
        self._attempt = min(self._attempt + 1, 32)
        return ceiling / 2 + self._rand() * ceiling / 2

    def reset(self) -> None:
        """Start again from ``min_s`` (after a success)."""
        self._attempt = 0
