"""Protection against password guessing: failed sign-ins counted per user name at an address and per
client address.

After ``max_failures`` failed sign-ins for one user name from one address (``max_failures_per_address``
from one address, whatever the names), further attempts are refused for a delay that doubles with each
further failure, from :data:`FIRST_DELAY_S` up to :data:`MAX_DELAY_S`, without the password being
checked: a refusal costs the attacker no argon2 time of the centre's and tells nothing by its timing.
A user name is locked at the guesser's address only: anyone who can reach the sign-in page could
otherwise lock an operator out everywhere. Addresses in ``allow`` (the operations room's networks) are
never address-locked, so one mistyping operator does not lock out the room. The counts live in the
database (table ``signin_failures``), so every ``ioc-center`` process of the centre shares them. A
count is forgotten after :data:`WINDOW_S` without a failure (counted from the end of the last lock),
and a user's count at an address when they sign in correctly from there. Unknown user names are
counted like any other: the answers do not tell whether a user exists.

Time is ``ioc.db.now_ms()`` (looked up at each call, so that tests can replace it).

Example::

    >>> from ioc.db import Database
    >>> limiter = SignInLimiter(Database("sqlite:///:memory:"), max_failures=2, max_failures_per_address=10)
    >>> for _ in range(2):
    ...     limiter.failed(limiter.begin("lan", "10.0.0.7"))     # two wrong passwords
    >>> limiter.begin("lan", "10.0.0.7").refusal.message  # doctest: +ELLIPSIS
    'too many failed sign-ins for this user from this address; try again in 60 s or ask an operator ...'
    >>> limiter.begin("lan", "10.0.0.8").refusal    # from elsewhere: not locked
    >>> limiter.unlock_user("lan"), limiter.begin("lan", "10.0.0.7").refusal
    (True, None)
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import ioc.db
from ioc.db import Database
from ioc.web.auth import USERNAME_RE

log = logging.getLogger(__name__)

Scope = Literal["user", "address"]
"""``user``: a user name at one address (the row's subject is :func:`pair`); ``address``: an address."""
FIRST_DELAY_S = 60
"""The first lock's length; each failure after it doubles the next one."""
MAX_DELAY_S = 15 * 60
WINDOW_S = 15 * 60
"""A count older than this (since its last failure or the end of its lock) starts again from zero."""


_LOCKED = (
    "SELECT scope, subject, locked_until_ms FROM signin_failures "
    "WHERE ((scope = 'user' AND subject = ?) OR (scope = 'address' AND subject = ?)) "
    "AND locked_until_ms > ? ORDER BY locked_until_ms DESC, scope DESC"
)
"""The locks in force on a user name at an address and on the address, the longer first (``user`` on a
tie). An address that is never address-locked is passed as NULL, which equals no subject."""


def pair(username: str, address: str) -> str:
    """The subject of a user name's count at an address: the name as JSON first (so that one user's
    counts are found by that prefix), then the address.

    >>> pair("lan", "10.0.0.7")
    '"lan" 10.0.0.7'
    """
    return f"{json.dumps(username)} {address}"


@dataclass(frozen=True)
class Refusal:
    """A sign-in refused without checking the password: who is locked and for how many more seconds."""

    scope: Scope
    subject: str
    retry_after_s: int

    @property
    def message(self) -> str:
        if self.scope == "user":
            # A name that cannot be a user's is not repeated in a command to paste.
            name = self.subject if USERNAME_RE.fullmatch(self.subject) else "NAME"
            return (
                "too many failed sign-ins for this user from this address; "
                f"try again in {self.retry_after_s} s or ask an operator to unlock with "
                f"`ioc-center user unlock {name}`"
            )
        return (
            f"too many failed sign-ins from this address ({self.subject}); try again in "
            f"{self.retry_after_s} s or ask an operator to unlock with "
            f"`ioc-center user unlock --address {self.subject}`"
        )


def lock_delay_s(failures: int, threshold: int) -> int:
    """How long the ``failures``-th failure locks for: none below ``threshold``, then doubling, capped.

    >>> [lock_delay_s(n, 5) for n in (4, 5, 6, 7, 8, 9, 10)]
    [0, 60, 120, 240, 480, 900, 900]
    """
    if failures < threshold:
        return 0
    return min(FIRST_DELAY_S << min(failures - threshold, 16), MAX_DELAY_S)


@dataclass(frozen=True)
class Lock:
    """A lock an attempt's count set: its scope, the failures counted and how long it lasts."""

    scope: Scope
    failures: int
    delay_s: int


@dataclass(frozen=True)
class Attempt:
    """A sign-in attempt as :meth:`SignInLimiter.begin` admitted it (``refusal`` None) or refused it."""

    username: str
    address: str
    refusal: Refusal | None = None
    locks: tuple[Lock, ...] = ()


class SignInLimiter:
    """Counts failed sign-ins per user name at an address and per address in the database, and refuses
    while locked; addresses in the ``allow`` networks are never address-locked.

    An attempt counts as a failure from the moment it is admitted, in the same transaction as the
    check, so that guesses sent in parallel cannot all slip past the count while their passwords are
    being checked; a right password takes its count back. ``refused`` counts this process's
    refusals (``user``, ``address``) and wrong passwords (``wrong_password``), for the metrics.

    Example::

        attempt = limiter.begin(name, addr)
        if attempt.refusal: ...                 # 429, Retry-After: attempt.refusal.retry_after_s
        elif password_ok: limiter.succeeded(attempt)
        else: limiter.failed(attempt)
    """

    def __init__(
        self,
        db: Database,
        max_failures: int = 5,
        max_failures_per_address: int = 20,
        allow: Iterable[str] = (),
    ) -> None:
        self.db = db
        self.thresholds: dict[Scope, int] = {"user": max_failures, "address": max_failures_per_address}
        self.allow = [ipaddress.ip_network(net) for net in allow]
        self.refused: Counter[str] = Counter()
        self._pruned_ms = 0

    def allowed(self, address: str) -> bool:
        """Whether ``address`` is in an ``allow`` network (never address-locked)."""
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:  # "unknown": no peer address
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:  # a dual-stack socket's IPv4 client
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.allow)

    def begin(self, username: str, address: str) -> Attempt:
        """Refused while the user name at this address or the address is locked (the longer lock is
        named), else counted."""
        now = ioc.db.now_ms()
        stale = now - WINDOW_S * 1000
        user_key = pair(username, address)
        address_key = None if self.allowed(address) else address
        # Refused at once when locked already: a flood of locked attempts costs no write.
        locked = self.db.fetch(_LOCKED, [user_key, address_key, now])
        if locked:
            first = locked[0]
            return self._refused(
                username, address, first["scope"], first["subject"], first["locked_until_ms"], now
            )
        keys: list[tuple[Scope, str]] = [("user", user_key)]
        if address_key is not None:
            keys.append(("address", address_key))
        with self.db.transaction() as cur:
            # First take both rows (always user, then address: two attempts never wait on each other
            # crosswise), forgetting a count quiet for the window; on PostgreSQL this waits for an attempt
            # in progress on the same rows, so the check below sees its count.
            for scope, subject in keys:
                cur.execute(
                    "INSERT INTO signin_failures (scope, subject, failures, last_failed_ms, locked_until_ms) "
                    "VALUES (?, ?, 0, ?, 0) ON CONFLICT (scope, subject) DO UPDATE SET "
                    "failures = CASE WHEN signin_failures.last_failed_ms < ? "
                    "AND signin_failures.locked_until_ms < ? THEN 0 ELSE signin_failures.failures END",
                    [scope, subject, now, stale, stale],
                )
            cur.execute(_LOCKED, [user_key, address_key, now])
            lock = cur.fetchone()
            if lock is not None:
                scope, subject, until_ms = lock
                return self._refused(username, address, scope, subject, until_ms, now)
            locks = []
            for scope, subject in keys:
                cur.execute(
                    "UPDATE signin_failures SET failures = failures + 1, last_failed_ms = ? "
                    "WHERE scope = ? AND subject = ?",
                    [now, scope, subject],
                )
                cur.execute(
                    "SELECT failures FROM signin_failures WHERE scope = ? AND subject = ?", [scope, subject]
                )
                row = cur.fetchone()
                assert row is not None, "the row was inserted above, in this transaction"
                (failures,) = row
                delay_s = lock_delay_s(failures, self.thresholds[scope])
                if delay_s:
                    cur.execute(
                        "UPDATE signin_failures SET locked_until_ms = ? WHERE scope = ? AND subject = ?",
                        [now + delay_s * 1000, scope, subject],
                    )
                    locks.append(Lock(scope, failures, delay_s))
        self._prune(now)
        return Attempt(username, address, locks=tuple(locks))

    def _refused(
        self, username: str, address: str, scope: Scope, subject: str, until_ms: int, now: int
    ) -> Attempt:
        self.refused[scope] += 1
        named = username if scope == "user" else subject
        return Attempt(username, address, Refusal(scope, named, math.ceil((until_ms - now) / 1000)))

    def _prune(self, now: int) -> None:
        """Delete counts quiet for the window (names that were never users pile up otherwise).

        At most once a minute per process, a row per statement: holding one row at a time, a prune
        never deadlocks with attempts in progress.
        """
        if now - self._pruned_ms < 60_000:
            return
        self._pruned_ms = now
        stale = now - WINDOW_S * 1000
        rows = self.db.fetch(
            "SELECT scope, subject FROM signin_failures WHERE last_failed_ms < ? AND locked_until_ms < ? "
            "LIMIT 1000",
            [stale, stale],
        )
        for row in rows:
            self.db.execute(
                "DELETE FROM signin_failures WHERE scope = ? AND subject = ? AND last_failed_ms < ? "
                "AND locked_until_ms < ?",
                [row["scope"], row["subject"], stale, stale],
            )

    def failed(self, attempt: Attempt) -> None:
        """A wrong password: the attempt's count stands; the locks it set are logged, once each."""
        self.refused["wrong_password"] += 1
        for lock in attempt.locks:
            log.warning(
                "event=signin_locked scope=%s user=%s addr=%s failures=%d lock_s=%d",
                lock.scope,
                _quoted(attempt.username),
                attempt.address,
                lock.failures,
                lock.delay_s,
            )

    def succeeded(self, attempt: Attempt) -> None:
        """A right password: the user's count at this address starts again, the address's loses this
        attempt.

        The address's count is not reset: one account of an attacker's own must not wipe the count
        of guesses at the others'. Nor are the user's counts at other addresses: those are someone
        else's guesses.
        """
        unlock_address = any(lock.scope == "address" for lock in attempt.locks)
        with self.db.transaction() as cur:
            cur.execute(
                "DELETE FROM signin_failures WHERE scope = 'user' AND subject = ?",
                [pair(attempt.username, attempt.address)],
            )
            cur.execute(
                "UPDATE signin_failures SET failures = failures - 1, "
                "locked_until_ms = CASE WHEN ? THEN 0 ELSE locked_until_ms END "
                "WHERE scope = 'address' AND subject = ?",
                [unlock_address, attempt.address],
            )

    def unlock_user(self, username: str) -> bool:
        """Forget ``username``'s failures, from every address; whether there were any."""
        prefix = pair(username, "")
        return bool(
            self.db.execute(
                "DELETE FROM signin_failures WHERE scope = 'user' AND substr(subject, 1, ?) = ?",
                [len(prefix), prefix],
            )
        )

    def unlock_address(self, address: str) -> bool:
        """Forget the failures from ``address``; whether there were any."""
        return bool(
            self.db.execute("DELETE FROM signin_failures WHERE scope = 'address' AND subject = ?", [address])
        )

    def locked(self, scope: Scope) -> dict[str, int]:
        """``{user name or address: seconds left}`` of those locked now (a user name at any address: the
        longest of its locks)."""
        now = ioc.db.now_ms()
        rows = self.db.fetch(
            "SELECT subject, locked_until_ms FROM signin_failures WHERE scope = ? AND locked_until_ms > ?",
            [scope, now],
        )
        found: dict[str, int] = {}
        for row in rows:
            subject = _username(row["subject"]) if scope == "user" else row["subject"]
            if subject is not None:
                left = math.ceil((row["locked_until_ms"] - now) / 1000)
                found[subject] = max(left, found.get(subject, 0))
        return found


def _username(subject: str) -> str | None:
    """The user name of a :func:`pair` subject; None for a count from before names were paired with
    addresses (forgotten after the window)."""
    try:
        name, _ = json.JSONDecoder().raw_decode(subject)
    except ValueError:
        return None
    return name if isinstance(name, str) else None


def _quoted(name: str) -> str:
    """A user name as typed, fit for one key=value log field (quoted, at most 64 characters)."""
    return json.dumps(name[:64])
