"""Who may use the dashboard: users with a role, sign-in sessions and API tokens, all in the database.

Two roles: a ``viewer`` reads everything; an ``operator`` also acknowledges
alarms and issues commands to nodes. Passwords are stored as argon2id hashes (argon2-cffi's defaults,
upgraded on the next sign-in when those change). Session ids and API tokens
are random 256-bit secrets handed out once; the database keeps only their
SHA-256, which is enough for secrets that long and cheap to check on every
request. Sessions are rows, not process memory, so any ``ioc-center``
process of the centre recognises them.

Example::

    >>> from ioc.db import Database
    >>> db = Database("sqlite:///:memory:")
    >>> Users(db).add("lan", "operator", "correct horse battery")
    >>> Users(db).verify("lan", "correct horse battery")
    Principal(username='lan', role='operator')
    >>> Users(db).verify("lan", "wrong") is None
    True
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal, get_args

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from common.errors import IocEdgeError
from ioc.db import Database

Role = Literal["viewer", "operator"]
ROLES: tuple[str, ...] = get_args(Role)
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
MIN_PASSWORD = 8
TOKEN_PREFIX = "ioc_"

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Checked when the user does not exist, so that a wrong name costs as long as a wrong password."""
    return _hasher.hash(secrets.token_hex(16))


class AuthError(IocEdgeError, ValueError):
    """A user or token operation that cannot be done (unknown user, taken name, short password ...)."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts for: a signed-in user, or the user an API token belongs to."""

    username: str
    role: str

    @property
    def can_ack(self) -> bool:
        return self.role == "operator"

    @property
    def can_command(self) -> bool:
        """Whether the user may issue commands to nodes (the API refuses a viewer's, the page hides them)."""
        return self.role == "operator"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def digest(secret: str) -> str:
    """The SHA-256 (hex) of a session id or token: what the database keeps instead of the secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Users:
    """The dashboard's user accounts.

    Example: ``Users(db).add("lan", "viewer", password)``; ``Users(db).verify("lan", password)``.
    Raises :class:`AuthError` on a bad name, role or password, or a name already taken.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, username: str, role: str, password: str) -> None:
        _check_username(username)
        _check_role(role)
        _check_password(password)
        added = self.db.execute(
            "INSERT INTO users (username, role, password_hash, created_ms) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [username, role, _hasher.hash(password), now_ms()],
        )
        if not added:
            raise AuthError(f"user {username!r} exists already: choose another name or use `user passwd`")

    def set_password(self, username: str, password: str) -> None:
        """A new password; every session of the user ends (their tokens stay)."""
        _check_password(password)
        if not self.db.execute(
            "UPDATE users SET password_hash = ? WHERE username = ?", [_hasher.hash(password), username]
        ):
            raise AuthError(f"no user {username!r}: see `ioc-center user list`")
        self.db.execute("DELETE FROM sessions WHERE username = ?", [username])

    def remove(self, username: str) -> None:
        """Delete the user with their sessions and API tokens."""
        if not self.db.execute("DELETE FROM users WHERE username = ?", [username]):
            raise AuthError(f"no user {username!r}: see `ioc-center user list`")
        self.db.execute("DELETE FROM sessions WHERE username = ?", [username])
        self.db.execute("DELETE FROM api_tokens WHERE username = ?", [username])

    def list(self) -> list[dict]:
        """``[{username, role, created_ms}]`` by name."""
        return self.db.fetch("SELECT username, role, created_ms FROM users ORDER BY username")

    def get(self, username: str) -> Principal | None:
        rows = self.db.fetch("SELECT username, role FROM users WHERE username = ?", [username])
        return Principal(rows[0]["username"], rows[0]["role"]) if rows else None

    def verify(self, username: str, password: str) -> Principal | None:
        """The user when ``password`` is theirs, else None (for an unknown user too)."""
        rows = self.db.fetch("SELECT role, password_hash FROM users WHERE username = ?", [username])
        stored = rows[0]["password_hash"] if rows else _dummy_hash()
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if not rows:
            return None
        if _hasher.check_needs_rehash(stored):
            self.db.execute(
                "UPDATE users SET password_hash = ? WHERE username = ?", [_hasher.hash(password), username]
            )
        return Principal(username, rows[0]["role"])


class Sessions:
    """Sign-in sessions: a random id in the browser's cookie, its hash and expiry in the database.

    Example: ``sid = Sessions(db, 12 * 3600).create("lan")``; ``Sessions(db, ...).resolve(sid)``.
    """

    def __init__(self, db: Database, ttl_s: float) -> None:
        self.db, self.ttl_ms = db, int(ttl_s * 1000)

    def create(self, username: str) -> str:
        sid = secrets.token_urlsafe(32)
        now = now_ms()
        # Expired sessions go when someone signs in: no timer needed, and the table stays small.
        self.db.execute("DELETE FROM sessions WHERE expires_ms < ?", [now])
        self.db.execute(
            "INSERT INTO sessions (id_hash, username, created_ms, expires_ms) VALUES (?, ?, ?, ?)",
            [digest(sid), username, now, now + self.ttl_ms],
        )
        return sid

    def resolve(self, sid: str) -> Principal | None:
        rows = self.db.fetch(
            "SELECT u.username, u.role FROM sessions s JOIN users u ON u.username = s.username "
            "WHERE s.id_hash = ? AND s.expires_ms > ?",
            [digest(sid), now_ms()],
        )
        return Principal(rows[0]["username"], rows[0]["role"]) if rows else None

    def end(self, sid: str) -> None:
        self.db.execute("DELETE FROM sessions WHERE id_hash = ?", [digest(sid)])


class Tokens:
    """API tokens for scripts and other systems: each acts as the user it was created for.

    A token (``ioc_...``) is shown once, when created; it is listed and revoked
    by its short id.

    Example: ``token_id, token = Tokens(db).create("lan", "report script")``, then send
    ``Authorization: Bearer <token>``.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, username: str, label: str = "") -> tuple[str, str]:
        """``(token_id, token)`` for a new token of ``username``; raises AuthError for an unknown user."""
        if Users(self.db).get(username) is None:
            raise AuthError(f"no user {username!r}: add it first with `ioc-center user add`")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token_id = digest(token)[:12]
        self.db.execute(
            "INSERT INTO api_tokens (token_hash, token_id, username, label, created_ms) "
            "VALUES (?, ?, ?, ?, ?)",
            [digest(token), token_id, username, label, now_ms()],
        )
        return token_id, token

    def resolve(self, token: str) -> Principal | None:
        rows = self.db.fetch(
            "SELECT u.username, u.role FROM api_tokens t JOIN users u ON u.username = t.username "
            "WHERE t.token_hash = ?",
            [digest(token)],
        )
        return Principal(rows[0]["username"], rows[0]["role"]) if rows else None

    def list(self) -> list[dict]:
        """``[{token_id, username, label, created_ms}]``, oldest first."""
        return self.db.fetch(
            "SELECT token_id, username, label, created_ms FROM api_tokens ORDER BY created_ms, token_id"
        )

    def revoke(self, token_id: str) -> None:
        if not self.db.execute("DELETE FROM api_tokens WHERE token_id = ?", [token_id]):
            raise AuthError(f"no token {token_id!r}: see `ioc-center token list`")


def _check_username(username: str) -> None:
    if not USERNAME_RE.fullmatch(username):
        raise AuthError(
            f"user name {username!r} is not allowed: use 1-64 of a-z 0-9 . _ @ - (starting with a letter "
            "or digit)"
        )


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AuthError(f"role {role!r} is not one of: {', '.join(ROLES)}")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"the password is too short: at least {MIN_PASSWORD} characters")
