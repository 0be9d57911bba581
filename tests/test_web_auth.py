"""Sign-in, roles, sessions kept in the database, API tokens and alarm acknowledgements, on a real server.

Runs once on SQLite and once on PostgreSQL (the ``ioc_db`` fixture).
"""

from __future__ import annotations

import time

import pytest
import requests
from click.testing import CliRunner

from ioc.cli import main as center
from ioc.db import Database
from ioc.web import WebServer, WebSettings, create_app
from ioc.web.auth import AuthError, Tokens, Users
from sync.records import Alarm, TimeSource
from sync.wire import Batch

PASSWORD = "correct horse battery"
EPOCH = "a1b2c3d4e5f60718"
T0 = 1_714_500_000_000
NTP = int(TimeSource.NTP)


@pytest.fixture
def people(ioc_db: Database) -> Database:
    """Operator ``lan``, viewer ``an``; on river-7 a flood raised (seq 1), cleared (2), raised again (3)."""
    Users(ioc_db).add("lan", "operator", PASSWORD)
    Users(ioc_db).add("an", "viewer", PASSWORD)
    records = [
        Alarm(T0, NTP, T0, "river", "flood", 1, 3.6, "water 3.6 m"),
        Alarm(T0 + 1000, NTP, T0, "river", "flood", 0, 2.9, "water 2.9 m"),
        Alarm(T0 + 2000, NTP, T0, "river", "flood", 1, 3.7, "water 3.7 m"),
    ]
    ioc_db.store(Batch("river-7", EPOCH, "alarm", [1, 2, 3], records))
    return ioc_db


def sign_in(url: str, username: str, password: str = PASSWORD) -> requests.Session:
    session = requests.Session()
    response = session.post(f"{url}/login", json={"username": username, "password": password}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["username"] == username
    return session


def ack_url(url: str, seq: int) -> str:
    return f"{url}/api/v1/alarms/river-7/{EPOCH}/{seq}/ack"


def test_sign_in_with_the_right_password_only(web_server, people):
    url = web_server.url
    for username, password in (("lan", "wrong password"), ("nobody", PASSWORD)):
        response = requests.post(
            f"{url}/login", json={"username": username, "password": password}, timeout=30
        )
        assert response.status_code == 401
        assert response.json() == {"detail": "wrong user name or password"}
        assert "set-cookie" not in response.headers
    assert requests.get(f"{url}/api/v1/me", timeout=30).status_code == 401
    assert requests.get(f"{url}/api/v1/me", timeout=30).json() == {
        "detail": "not signed in: sign in at /login.html, or send Authorization: Bearer <token>"
    }

    viewer = requests.post(f"{url}/login", json={"username": "an", "password": PASSWORD}, timeout=30)
    assert viewer.json() == {"username": "an", "role": "viewer", "next": "/"}
    session = sign_in(url, "lan")
    cookie = next(c for c in session.cookies if c.name == "ioc_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and cookie.expires > time.time() + 11 * 3600
    assert session.get(f"{url}/api/v1/me", timeout=30).json() == {"username": "lan", "role": "operator"}
    # The database keeps a hash of the session id and an argon2id hash of the password, never either secret.
    (row,) = people.fetch("SELECT id_hash FROM sessions WHERE username = 'lan'")
    assert cookie.value not in row["id_hash"] and len(row["id_hash"]) == 64
    stored = people.fetch("SELECT password_hash FROM users WHERE username = 'lan'")[0]["password_hash"]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored

    assert session.post(f"{url}/logout", timeout=30).json() == {"signed_out": True}
    assert (
        requests.get(f"{url}/api/v1/me", cookies={"ioc_session": cookie.value}, timeout=30).status_code == 401
    )
    assert people.fetch("SELECT username FROM sessions") == [{"username": "an"}]


def test_a_form_sign_in_goes_back_to_a_page_of_this_site_only(web_server, people):
    url = web_server.url
    form = {"username": "an", "password": PASSWORD}
    response = requests.post(f"{url}/login?next=/%23/alarms", data=form, allow_redirects=False, timeout=30)
    assert (response.status_code, response.headers["location"]) == (303, "/#/alarms")
    assert "ioc_session=" in response.headers["set-cookie"]
    for target in (
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "/\n/x",
    ):
        response = requests.post(
            f"{url}/login", params={"next": target}, data=form, allow_redirects=False, timeout=30
        )
        assert (response.status_code, response.headers["location"]) == (303, "/")
    response = requests.post(f"{url}/login", json={"username": "an"}, timeout=30)
    assert response.status_code == 422
    assert response.json() == {"detail": "body field 'password': required, a string of 1 to 1024 characters"}
    for name in ("a\x00n", "a\ud800n"):  # no user's name; PostgreSQL's text refuses a NUL
        response = requests.post(f"{url}/login", json={"username": name, "password": PASSWORD}, timeout=30)
        assert response.status_code == 422
        assert response.json() == {"detail": "body field 'username': holds a NUL or an unpaired surrogate"}
    response = requests.post(f"{url}/login", data=b"x", headers={"Content-Type": "text/plain"}, timeout=30)
    assert response.status_code == 415
    assert response.json() == {
        "detail": "request body: send application/json or a urlencoded form, not text/plain"
    }


def test_pages_need_a_session_but_the_sign_in_page(web_server, people):
    url = web_server.url
    response = requests.get(f"{url}/", allow_redirects=False, timeout=30)
    assert (response.status_code, response.headers["location"]) == (303, "/login.html?next=%2F")
    login = requests.get(f"{url}/login.html", timeout=30)
    assert login.status_code == 200 and 'action="/login"' in login.text
    session = sign_in(url, "an")
    index = session.get(f"{url}/", timeout=30)
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    missing = session.get(f"{url}/nothing.html", timeout=30)
    assert missing.status_code == 404 and missing.json()["detail"].startswith("no page nothing.html")


def test_a_viewer_cannot_acknowledge_an_operator_can_and_the_first_ack_is_kept(web_server, people):
    url = web_server.url
    viewer = sign_in(url, "an")
    refused = viewer.post(ack_url(url, 3), timeout=30)
    assert refused.status_code == 403
    assert refused.json() == {"detail": "user 'an' is a viewer: only operators acknowledge alarms"}
    assert people.fetch("SELECT COUNT(*) AS n FROM alarm_acks")[0]["n"] == 0

    operator = sign_in(url, "lan")
    before = time.time_ns() // 1_000_000
    response = operator.post(ack_url(url, 3), json={"note": "team sent to the gauge"}, timeout=30)
    after = time.time_ns() // 1_000_000
    assert response.status_code == 200, response.text
    ack = response.json()
    assert (
        ack["id"] == f"river-7/{EPOCH}/3"
        and ack["acked_by"] == "lan"
        and ack["note"] == "team sent to the gauge"
    )
    assert before <= ack["acked_ms"] <= after
    (row,) = people.fetch("SELECT device, epoch, seq, acked_by, acked_ms, note FROM alarm_acks")
    assert row == {
        "device": "river-7",
        "epoch": EPOCH,
        "seq": 3,
        **{k: ack[k] for k in ("acked_by", "acked_ms", "note")},
    }

    Users(people).add("mai", "operator", PASSWORD)
    again = sign_in(url, "mai").post(ack_url(url, 3), timeout=30)
    assert again.status_code == 200 and again.json() == ack  # the first acknowledgement stays on record
    listed = viewer.get(f"{url}/api/v1/alarms", timeout=30).json()["items"]
    assert [(a["seq"], a["acked_by"], a["acked_ms"]) for a in listed] == [(3, "lan", ack["acked_ms"])]

    closed = operator.post(ack_url(url, 1), timeout=30)  # a raise already cleared can still be acknowledged
    assert closed.status_code == 200 and closed.json()["acked_by"] == "lan"
    clear = operator.post(ack_url(url, 2), timeout=30)
    assert clear.status_code == 409
    assert clear.json() == {
        "detail": f"alarm record river-7/{EPOCH}/2 is a clear (state 0): acknowledge the raise it clears"
    }
    unknown = operator.post(ack_url(url, 99), timeout=30)
    assert unknown.status_code == 404 and unknown.json() == {"detail": f"no alarm river-7/{EPOCH}/99"}
    too_long = operator.post(ack_url(url, 3), json={"note": "x" * 501}, timeout=30)
    assert too_long.status_code == 422
    assert too_long.json() == {"detail": "body field 'note': String should have at most 500 characters"}


def test_a_cookie_post_from_another_site_is_refused(web_server, people):
    operator = sign_in(web_server.url, "lan")
    response = operator.post(
        ack_url(web_server.url, 3), headers={"Origin": "https://evil.example"}, timeout=30
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "cross-site request from https://evil.example refused"}
    same = operator.post(ack_url(web_server.url, 3), headers={"Origin": web_server.url}, timeout=30)
    assert same.status_code == 200


def test_tokens_act_as_their_user_until_revoked(web_server, people):
    url = web_server.url
    token_id, token = Tokens(people).create("an", "wall screen")
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{url}/api/v1/me", headers=bearer, timeout=30).json() == {
        "username": "an",
        "role": "viewer",
    }
    refused = requests.post(ack_url(url, 3), headers=bearer, timeout=30)
    assert refused.status_code == 403
    wrong = requests.get(f"{url}/api/v1/me", headers={"Authorization": "Bearer ioc_not-a-token"}, timeout=30)
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert people.fetch("SELECT token_id, label FROM api_tokens") == [
        {"token_id": token_id, "label": "wall screen"}
    ]
    assert token not in str(people.fetch("SELECT * FROM api_tokens"))
    Tokens(people).revoke(token_id)
    assert requests.get(f"{url}/api/v1/me", headers=bearer, timeout=30).status_code == 401
    with pytest.raises(AuthError, match=f"no token '{token_id}': see `ioc-center token list`"):
        Tokens(people).revoke(token_id)


def test_a_session_works_on_every_process_of_the_centre(ioc_db_url, web_server, people):
    """Two ioc-center processes on one database (each its own connection): a sign-in on one works on both."""
    other_db = Database(ioc_db_url)
    other = WebServer(create_app(other_db, WebSettings()), "127.0.0.1", 0)
    other.start()
    try:
        session = sign_in(web_server.url, "lan")
        assert session.get(f"{other.url}/api/v1/me", timeout=30).json() == {
            "username": "lan",
            "role": "operator",
        }
        session.post(f"{other.url}/logout", timeout=30)
        sid = {"ioc_session": next(c.value for c in sign_in(other.url, "an").cookies)}
        Users(other_db).set_password("an", "a new long password")  # ends her sessions everywhere
        assert requests.get(f"{web_server.url}/api/v1/me", cookies=sid, timeout=30).status_code == 401
    finally:
        other.stop()
        other_db.close()


def test_user_rules_give_clear_errors(ioc_db):
    users = Users(ioc_db)
    users.add("lan", "operator", PASSWORD)
    with pytest.raises(
        AuthError, match="^user 'lan' exists already: choose another name or use `user passwd`$"
    ):
        users.add("lan", "viewer", PASSWORD)
    with pytest.raises(AuthError, match=r"^role 'admin' is not one of: viewer, operator$"):
        users.add("mai", "admin", PASSWORD)
    with pytest.raises(AuthError, match="^the password is too short: at least 8 characters$"):
        users.add("mai", "viewer", "short")
    with pytest.raises(AuthError, match="^user name 'Mai Tran' is not allowed"):
        users.add("Mai Tran", "viewer", PASSWORD)
    with pytest.raises(AuthError, match="^no user 'mai': add it first with `ioc-center user add`$"):
        Tokens(ioc_db).create("mai")
    users.remove("lan")
    assert users.list() == [] and users.verify("lan", PASSWORD) is None


def test_cli_adds_users_and_makes_tokens_that_the_api_accepts(tmp_path, ioc_db_url, web_server, people):
    (tmp_path / "pw").write_text("a long enough password\n")
    runner = CliRunner()
    added = runner.invoke(
        center,
        [
            "user",
            "add",
            "mai",
            "--role",
            "operator",
            "--password-file",
            str(tmp_path / "pw"),
            "--db",
            ioc_db_url,
        ],
    )
    assert (added.exit_code, added.output) == (0, "added operator mai\n")
    again = runner.invoke(
        center,
        [
            "user",
            "add",
            "mai",
            "--role",
            "viewer",
            "--password-file",
            str(tmp_path / "pw"),
            "--db",
            ioc_db_url,
        ],
    )
    assert (
        again.exit_code == 1
        and again.output == "user 'mai' exists already: choose another name or use `user passwd`\n"
    )
    prompted = runner.invoke(
        center,
        ["user", "add", "hoa", "--role", "viewer", "--db", ioc_db_url],
        input="pass-word-1\npass-word-1\n",
    )
    assert prompted.exit_code == 0 and Users(people).verify("hoa", "pass-word-1") is not None
    assert sign_in(web_server.url, "mai", "a long enough password")

    made = runner.invoke(center, ["token", "create", "mai", "--label", "report", "--db", ioc_db_url])
    assert made.exit_code == 0
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("ioc_")
    me = requests.get(f"{web_server.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert me.json() == {"username": "mai", "role": "operator"}
    listed = runner.invoke(center, ["token", "list", "--db", ioc_db_url])
    assert listed.output.endswith("\tmai\treport\n")
    listing = runner.invoke(center, ["user", "list", "--db", ioc_db_url])
    assert listing.output == "an\tviewer\nhoa\tviewer\nlan\toperator\nmai\toperator\n"


sqlite_only = pytest.mark.parametrize("ioc_db_url", ["sqlite"], indirect=True)


@sqlite_only
def test_the_api_description_and_its_page_need_a_sign_in(web_server, people):
    url = web_server.url
    description = requests.get(f"{url}/api/v1/openapi.json", timeout=30)
    assert (description.status_code, description.json()) == (
        401,
        {"detail": "not signed in: sign in at /login.html, or send Authorization: Bearer <token>"},
    )
    page = requests.get(f"{url}/api/v1/docs", allow_redirects=False, timeout=30)
    assert (page.status_code, page.headers["location"]) == (303, "/login.html?next=%2Fapi%2Fv1%2Fdocs")

    session = sign_in(url, "an")
    assert "/api/v1/positions" in session.get(f"{url}/api/v1/openapi.json", timeout=30).json()["paths"]
    page = session.get(f"{url}/api/v1/docs", timeout=30)
    assert page.status_code == 200 and '<script src="/static/js/api-docs.js" defer>' in page.text
    token = Tokens(people).create("an", "docs")[1]
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(f"{url}/api/v1/openapi.json", headers=headers, timeout=30).status_code == 200


@sqlite_only
def test_the_session_cookie_is_secure_when_the_dashboard_is_served_over_https(ioc_db, people):
    """Behind a TLS proxy the centre trusts, X-Forwarded-Proto says the browser used HTTPS."""
    https = {"X-Forwarded-Proto": "https"}
    cookies = {}
    for name, settings in {
        "proxy": WebSettings(trusted_proxies=["127.0.0.1"]),
        "untrusted": WebSettings(),  # anyone could send the header: not believed
        "forced": WebSettings(secure_cookie=True),
        "off": WebSettings(trusted_proxies=["127.0.0.1"], secure_cookie=False),
    }.items():
        server = WebServer(create_app(ioc_db, settings), "127.0.0.1", 0)
        server.start()
        try:
            for scheme, headers in (("https", https), ("http", {})):
                response = requests.post(
                    f"{server.url}/login",
                    json={"username": "an", "password": PASSWORD},
                    headers=headers,
                    timeout=30,
                )
                cookies[name, scheme] = "; Secure" in response.headers["set-cookie"]
        finally:
            server.stop()
    assert cookies == {
        ("proxy", "https"): True,
        ("proxy", "http"): False,
        ("untrusted", "https"): False,
        ("untrusted", "http"): False,
        ("forced", "https"): True,
        ("forced", "http"): True,
        ("off", "https"): False,
        ("off", "http"): False,
    }


@sqlite_only
def test_every_answer_carries_the_content_security_policy(ioc_db, people):
    settings = WebSettings(tile_url="https://{s}.tile.example.org/{z}/{x}/{y}.png")
    server = WebServer(create_app(ioc_db, settings), "127.0.0.1", 0)
    server.start()
    try:
        answers = [
            requests.get(f"{server.url}{path}", allow_redirects=False, timeout=30)
            for path in ("/login.html", "/", "/api/v1/me", "/static/js/app.js")
        ]
    finally:
        server.stop()
    for answer in answers:
        assert answer.headers["content-security-policy"] == (
            "default-src 'self'; script-src 'self'; style-src 'self'; "
            "img-src 'self' data: https://*.tile.example.org; connect-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        ), answer.url
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert answer.headers["x-frame-options"] == "DENY"
