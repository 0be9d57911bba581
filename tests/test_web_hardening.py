"""The dashboard as an attacker meets it: a sign-in link that sends the operator elsewhere, the API's
description read without signing in, a session cookie sent in clear, a script slipped into a page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from support_browser import PASSWORD, Dashboard, needs_chromium

pytestmark = [needs_chromium, pytest.mark.parametrize("ioc_db_url", ["sqlite"], indirect=True)]

OFF_SITE = [
    "/%5Cevil.example/phish",  # /\evil.example: Chromium reads the backslash as a slash
    "/%09/evil.example/phish",  # a TAB, which URLs drop: //evil.example
    "//evil.example/phish",
    "/%2F%2Fevil.example/phish",
    "https://evil.example/phish",
    "javascript:alert(document.domain)",
    "%2F%0A%2Fevil.example/phish",  # /<LF>/evil.example
]


def test_signing_in_never_leaves_the_dashboards_site(dashboard: Dashboard):
    page = dashboard.open("/login.html")
    # Any other site answers "phished" (there is no network here to reach a real one).
    page.context.route(
        lambda url: not url.startswith(dashboard.url + "/"),
        lambda route: route.fulfill(body="phished", content_type="text/html"),
    )
    landed = {}
    for next_ in OFF_SITE:
        page.goto(f"{dashboard.url}/login.html?next={next_}")
        page.get_by_label("User name").fill("lan")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(lambda url: "/login.html" not in url)
        page.wait_for_load_state()
        landed[next_] = page.url
    assert landed == {next_: dashboard.url + "/" for next_ in OFF_SITE}

    # A path of this site, with the view the operator was going to, still works.
    page.goto(f"{dashboard.url}/login.html?next=%2F%23%2Falarms")
    page.get_by_label("User name").fill("lan")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alarms")
    assert page.url == dashboard.url + "/#/alarms"
