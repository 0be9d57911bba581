"""Password guessing on the dashboard's sign-in: a user name at an address, and client addresses, locked
after failures; the operations room's networks never address-locked.

On a real server, once on SQLite and once on PostgreSQL (the ``ioc_db`` fixture). The centre's clock
(``ioc.db.now_ms``) is replaced by one the tests move forward, so a lock's end is not waited for.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from click.testing import CliRunner
from helpers import cli, now_ms
from prometheus_client import CollectorRegistry, generate_latest

import ioc.db
from ioc.cli import main as center
from ioc.db import Database
from ioc.metrics import SignInCollector
from ioc.web import WebServer, WebSettings, create_app
from ioc.web.auth import Users
from ioc.web.lockout import SignInLimiter
from ioc.web.settings import WebSettingsError, parse_web_settings

PASSWORD = "correct horse battery"
WRONG = "not the password"


def user_locked(name: str, seconds: int) -> str:
    return (
        f"too many failed sign-ins for this user from this address; try again in {seconds} s "
        f"or ask an operator to unlock with `ioc-center user unlock {name}`"
    )


def address_locked(address: str, seconds: int) -> str:
    return (
        f"too many failed sign-ins from this address ({address}); try again in {seconds} s "
        f"or ask an operator to unlock with `ioc-center user unlock --address {address}`"
    )


class Clock:
    """The centre's clock in the test's hands: it moves only when told."""

    def __init__(self) -> None:
        self.ms = now_ms()

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(ioc.db, "now_ms", clock)
    return clock


@pytest.fixture
def lan(ioc_db: Database) -> Database:
    """Operator ``lan`` in ``ioc_db``."""
    Users(ioc_db).add("lan", "operator", PASSWORD)
    return ioc_db


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The user names whose password was checked (argon2), in order."""
    names: list[str] = []
    real = Users.verify

    def counting(self: Users, username: str, password: str):  # noqa: ANN202 - the real one's
        names.append(username)
        return real(self, username, password)

    monkeypatch.setattr(Users, "verify", counting)
    return names


def sign_in(url: str, username: str, password: str, **headers: str) -> requests.Response:
    return requests.post(
        f"{url}/login", json={"username": username, "password": password}, headers=headers, timeout=30
    )


def fail(url: str, username: str, times: int, **headers: str) -> None:
    for _ in range(times):
        response = sign_in(url, username, WRONG, **headers)
        assert (response.status_code, response.json()) == (401, {"detail": "wrong user name or password"})


def assert_refused(response: requests.Response, detail: str, retry_after: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == {"detail": detail}
    assert response.headers["retry-after"] == str(retry_after)
    assert "set-cookie" not in response.headers


def locks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=signin_locked")]


def test_five_failures_lock_a_user_for_a_delay_that_doubles(web_server, lan, clock, verified, caplog):
    caplog.set_level(logging.INFO, logger="ioc.web.lockout")
    url = web_server.url
    fail(url, "lan", 5)
    # Locked: even the right password is refused, and not checked.
    assert_refused(sign_in(url, "lan", PASSWORD), user_locked("lan", 60), 60)
    assert verified == ["lan"] * 5
    clock.advance(45)
    assert_refused(sign_in(url, "lan", WRONG), user_locked("lan", 15), 15)
    assert verified == ["lan"] * 5
    assert locks(caplog) == ['event=signin_locked scope=user user="lan" addr=127.0.0.1 failures=5 lock_s=60']

    clock.advance(15)  # the lock has ended; one more failure locks again, twice as long
    fail(url, "lan", 1)
    assert_refused(sign_in(url, "lan", PASSWORD), user_locked("lan", 120), 120)
    assert len(locks(caplog)) == 2 and locks(caplog)[1].endswith("failures=6 lock_s=120")

    clock.advance(120)
    assert sign_in(url, "lan", PASSWORD).json() == {"username": "lan", "role": "operator", "next": "/"}
    # The right password after the lock ended: the count starts again; the fifth try may be the right one.
    fail(url, "lan", 4)
    assert sign_in(url, "lan", PASSWORD).status_code == 200
    assert lan.fetch("SELECT failures FROM signin_failures WHERE scope = 'user'") == []
    assert len(locks(caplog)) == 2

    registry = CollectorRegistry()
    registry.register(SignInCollector(web_server.app.state.ctx.signins))
    metrics = generate_latest(registry).decode()
    assert 'ioc_center_signins_refused_total{reason="user"} 3.0' in metrics
    assert 'ioc_center_signins_refused_total{reason="wrong_password"} 10.0' in metrics
    assert 'ioc_center_signins_refused_total{reason="address"} 0.0' in metrics


def test_guesses_sent_at_once_get_no_more_password_checks_than_the_limit(web_server, lan, clock, verified):
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda _: sign_in(web_server.url, "lan", WRONG), range(12)))
    assert sorted(a.status_code for a in answers) == [401] * 5 + [429] * 7
    assert verified == ["lan"] * 5


def test_failures_further_apart_than_the_window_are_forgotten(web_server, lan, clock):
    url = web_server.url
    fail(url, "lan", 4)
    fail(url, "ghost", 3)
    clock.advance(15 * 60 + 1)
    fail(url, "lan", 4)
    # Quiet counts are deleted, so that names that were never users do not pile up.
    assert lan.fetch("SELECT scope, subject, failures FROM signin_failures ORDER BY scope") == [
        {"scope": "address", "subject": "127.0.0.1", "failures": 4},
        {"scope": "user", "subject": '"lan" 127.0.0.1', "failures": 4},
    ]
    assert sign_in(url, "lan", PASSWORD).status_code == 200


def test_an_unknown_user_name_is_locked_exactly_like_a_user(web_server, lan, clock, verified):
    url = web_server.url
    answers = {}
    for name in ("lan", "nobody"):
        fail(url, name, 5)
        refused = sign_in(url, name, PASSWORD)
        assert_refused(refused, user_locked(name, 60), 60)
        answers[name] = (refused.status_code, sorted(refused.headers.keys()))
    assert answers["lan"] == answers["nobody"]
    assert verified == ["lan"] * 5 + ["nobody"] * 5
    # A name that could not be a user's is not offered as a command to paste.
    fail(url, "Robert'); DROP", 5)
    assert_refused(sign_in(url, "Robert'); DROP", WRONG), user_locked("NAME", 60), 60)


def test_the_cli_lists_and_unlocks_a_locked_user(web_server, ioc_db_url, lan, clock):
    url = web_server.url
    Users(lan).add("an", "viewer", PASSWORD)
    fail(url, "lan", 5)
    clock.advance(10)
    assert cli(center, ["user", "list", "--db", ioc_db_url]) == (
        "an\tviewer\nlan\toperator\tlocked for 50 s (`ioc-center user unlock lan`)\n"
    )
    assert cli(center, ["user", "unlock", "lan", "--db", ioc_db_url]) == "unlocked lan\n"
    assert sign_in(url, "lan", PASSWORD).status_code == 200
    assert cli(center, ["user", "list", "--db", ioc_db_url]) == "an\tviewer\nlan\toperator\n"

    runner = CliRunner()
    unknown = runner.invoke(center, ["user", "unlock", "ghost", "--db", ioc_db_url])
    assert (unknown.exit_code, unknown.output) == (1, "no user 'ghost': see `ioc-center user list`\n")
    neither = runner.invoke(center, ["user", "unlock", "--db", ioc_db_url])
    assert (neither.exit_code, neither.output) == (1, "give a user NAME or --address ADDRESS (one of them)\n")


def test_twenty_failures_lock_an_address_whatever_the_names(web_server, ioc_db_url, lan, clock):
    url = web_server.url
    # X-Forwarded-For is not believed unless the settings name the proxy: every guess is 127.0.0.1's.
    for n in range(19):
        fail(url, f"guess-{n}", 1, **{"X-Forwarded-For": f"10.0.0.{n}"})
    # A right password does not wipe the address's count (one account of an attacker's own would), but
    # neither does it count as a failure.
    assert sign_in(url, "lan", PASSWORD).status_code == 200
    fail(url, "guess-19", 1)
    assert_refused(sign_in(url, "lan", PASSWORD), address_locked("127.0.0.1", 60), 60)
    assert cli(center, ["user", "unlock", "--address", "127.0.0.1", "--db", ioc_db_url]) == (
        "unlocked address 127.0.0.1\n"
    )
    assert sign_in(url, "lan", PASSWORD).status_code == 200


def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(ioc_db, lan, clock):
    server = WebServer(create_app(ioc_db, WebSettings(trusted_proxies=["127.0.0.1"])), "127.0.0.1", 0)
    server.start()
    try:
        for n in range(20):
            fail(server.url, f"guess-{n}", 1, **{"X-Forwarded-For": "203.0.113.9"})
        refused = sign_in(server.url, "lan", PASSWORD, **{"X-Forwarded-For": "203.0.113.9"})
        assert_refused(refused, address_locked("203.0.113.9", 60), 60)
        assert sign_in(server.url, "lan", PASSWORD, **{"X-Forwarded-For": "198.51.100.4"}).status_code == 200
    finally:
        server.stop()


def test_two_processes_of_the_centre_share_the_count(ioc_db_url, web_server, lan, clock):
    """Two ioc-center processes on one database (each its own connection) count the same failures."""
    other_db = Database(ioc_db_url)
    other = WebServer(create_app(other_db, WebSettings()), "127.0.0.1", 0)
    other.start()
    try:
        fail(web_server.url, "lan", 3)
        fail(other.url, "lan", 2)
        for url in (web_server.url, other.url):
            assert_refused(sign_in(url, "lan", PASSWORD), user_locked("lan", 60), 60)
        assert cli(center, ["user", "unlock", "lan", "--db", ioc_db_url]) == "unlocked lan\n"
        assert sign_in(other.url, "lan", PASSWORD).status_code == 200
    finally:
        other.stop()
        other_db.close()


def test_trusted_proxies_must_be_addresses():
    with pytest.raises(WebSettingsError) as raised:
        parse_web_settings('trusted_proxies = ["*"]\n', "web.toml")
    assert str(raised.value) == (
        "trusted_proxies (web.toml line 1): '*' is not an IP address or network, "
        "e.g. '127.0.0.1' or '10.0.0.0/24'"
    )


def from_(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def test_a_strangers_failures_do_not_lock_the_operator_out_elsewhere(ioc_db, lan, clock, verified):
    """The attack: anyone who reaches the sign-in page sends 20 wrong passwords for an operator's name."""
    server = WebServer(create_app(ioc_db, WebSettings(trusted_proxies=["127.0.0.1"])), "127.0.0.1", 0)
    server.start()
    try:
        stranger = from_("203.0.113.9")
        fail(server.url, "lan", 5, **stranger)
        assert [sign_in(server.url, "lan", WRONG, **stranger).status_code for _ in range(15)] == [429] * 15
        # The operator, at their own address, signs in at once ...
        operator = sign_in(server.url, "lan", PASSWORD, **from_("198.51.100.4"))
        assert (operator.status_code, operator.json()) == (
            200,
            {"username": "lan", "role": "operator", "next": "/"},
        )
        # ... while the stranger gets no more password checks, even with the right password.
        assert_refused(sign_in(server.url, "lan", PASSWORD, **stranger), user_locked("lan", 60), 60)
        assert verified == ["lan"] * 6
    finally:
        server.stop()
    # The operator's sign-in does not wipe the stranger's count: it is someone else's guesses.
    assert lan.fetch("SELECT subject, failures FROM signin_failures WHERE scope = 'user'") == [
        {"subject": '"lan" 203.0.113.9', "failures": 5}
    ]


def test_the_operations_room_is_never_address_locked_but_its_user_names_are(ioc_db_url, ioc_db, lan, clock):
    settings = WebSettings(
        trusted_proxies=["127.0.0.1"], signin_allow=["10.20.0.0/24"], signin_max_failures_per_address=3
    )
    server = WebServer(create_app(ioc_db, settings), "127.0.0.1", 0)
    server.start()
    try:
        # Mistyped names in the room beyond the address's limit: no address lock, every operator there can
        # still sign in.
        for n in range(4):
            fail(server.url, f"typo-{n}", 1, **from_("10.20.0.5"))
        assert sign_in(server.url, "lan", PASSWORD, **from_("10.20.0.5")).status_code == 200
        # A user name is still limited from inside the room (an insider guessing a colleague's password).
        fail(server.url, "lan", 5, **from_("10.20.0.5"))
        assert_refused(sign_in(server.url, "lan", PASSWORD, **from_("10.20.0.5")), user_locked("lan", 60), 60)
        assert sign_in(server.url, "lan", PASSWORD, **from_("10.20.0.6")).status_code == 200
        # Outside the room, the address's limit still holds.
        for n in range(3):
            fail(server.url, f"guess-{n}", 1, **from_("203.0.113.9"))
        refused = sign_in(server.url, "lan", PASSWORD, **from_("203.0.113.9"))
        assert_refused(refused, address_locked("203.0.113.9", 60), 60)
    finally:
        server.stop()
    assert ioc_db.fetch("SELECT subject FROM signin_failures WHERE scope = 'address'") == [
        {"subject": "203.0.113.9"}
    ]
    assert cli(center, ["user", "unlock", "lan", "--db", ioc_db_url]) == "unlocked lan\n"
    assert ioc_db.fetch("SELECT subject FROM signin_failures WHERE subject LIKE '\"lan\"%'") == []


def test_signin_allow_takes_networks_from_the_file_or_the_option(tmp_path):
    assert parse_web_settings('signin_allow = ["10.20.0.0/24", "::ffff:10.20.0.0/120"]\n').signin_allow == [
        "10.20.0.0/24",
        "::ffff:10.20.0.0/120",
    ]
    limiter = SignInLimiter(Database("sqlite:///:memory:"), allow=["10.20.0.0/24"])
    # A dual-stack socket's IPv4 client is in an IPv4 network; no peer address is in none.
    assert [limiter.allowed(a) for a in ("10.20.0.9", "::ffff:10.20.0.9", "10.20.1.9", "unknown")] == [
        True,
        True,
        False,
        False,
    ]
    db = f"sqlite:///{tmp_path / 'ioc.db'}"
    result = CliRunner().invoke(
        center, ["serve", "--db", db, "--http-port", "0", "--signin-allow", "ops-room"]
    )
    assert (result.exit_code, result.output) == (
        1,
        "signin_allow (option --signin-allow): 'ops-room' is not an IP address or network, "
        "e.g. '127.0.0.1' or '10.0.0.0/24'\n",
    )
