"""The dashboard in Debian's headless Chromium: the skip mark without it, and pages opened as a user.

Example: ``page = dashboard.sign_in("lan", "nodes")`` with the ``dashboard`` fixture of conftest.py, in a
module marked ``pytestmark = needs_chromium``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import CHROMIUM
from playwright.sync_api import Browser, BrowserContext, Page, expect

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"Debian's Chromium is not at {CHROMIUM} (apt-get install chromium); "
    "these tests never download a browser",
)

ARTIFACTS = Path(
    os.environ.get("IOC_TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "build" / "artifacts")
)
PASSWORD = "correct horse battery"
"""The password of the ``dashboard`` fixture's users."""
BROWSER_ZONE = "America/New_York"  # not the centre's: times on the pages must still be the centre's


class Dashboard:
    """Pages of the dashboard, each in its own browser context; JavaScript errors and 5xx answers are kept
    and fail the test at the end.

    Example: ``page = dashboard.sign_in("lan"); page.goto(dashboard.url + "/#/alarms")``
    """

    def __init__(self, browser: Browser, url: str, engine: str) -> None:
        self.browser, self.url, self.engine = browser, url, engine
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def open(self, path: str = "/") -> Page:
        context = self.browser.new_context(
            viewport={"width": 1600, "height": 1000}, timezone_id=BROWSER_ZONE, locale="en-US"
        )
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.errors.append(f"{path}: {exc}"))
        # An expected 401/403 is logged by Chromium as a failed resource: not a page error.
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                and not m.text.startswith("Failed to load resource")
                and self.errors.append(f"{path}: console: {m.text}")
            ),
        )
        page.on("response", lambda r: r.status >= 500 and self.errors.append(f"{r.status} {r.url}"))
        page.goto(self.url + path)
        return page

    def sign_in(self, username: str, view: str = "") -> Page:
        page = self.open("/login.html")
        page.get_by_label("User name").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(self.url + "/")
        expect(page.locator("#user")).to_contain_text(username)
        if view:
            page.goto(f"{self.url}/#/{view}")
        return page

    def screenshot(self, page: Page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}-{self.engine}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        for context in self.contexts:
            context.close()
