"""The Warnings page in headless Chromium (issue 16, point 7): an operator draws an area on the map, sees how
many nodes it reaches, issues, and watches the receipts arrive live while the nodes' batches are stored; the
target that does not acknowledge in time is flagged and one click away; an Update, then a Cancel; a viewer
gets no Issue button and the API answers 403. Once on SQLite and once on PostgreSQL."""

from __future__ import annotations

from playwright.sync_api import Page, expect
from support_browser import Dashboard, needs_chromium
from support_warnings import places, receipt

from ioc.db import Database
from ioc.warnings import Warnings

pytestmark = needs_chromium


def click_map(page: Page, *offsets: tuple[int, int]) -> None:
    """Click the map at these offsets (px) from its centre, where the page opens it: Huế."""
    box = page.locator("#warning-map").bounding_box()
    assert box is not None
    for dx, dy in offsets:
        page.mouse.click(box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2 + dy)


def test_an_operator_draws_issues_and_sees_receipts_live_a_viewer_cannot_issue(
    dashboard: Dashboard, ioc_db: Database
) -> None:
    places(ioc_db)
    page = dashboard.sign_in("lan", "warnings")
    expect(page.locator("#w-reach")).to_have_text("Reach: 4 nodes")  # no area, no labels: every node
    page.locator("#w-event").fill("Bão")
    page.locator("#w-headline").fill("Bão số 9")
    page.locator("#w-instruction").fill("Vào bờ ngay")
    page.locator("#w-area-desc").fill("Biển Huế")
    page.locator("#w-ack-within").fill("0.02")  # 1 s: the vessel is flagged while the page is open
    page.get_by_role("button", name="Draw polygon").click()
    click_map(page, (-150, -150), (150, -150), (150, 150), (-150, 150))  # st-in (16.7, 107.7) inside
    page.get_by_role("button", name="Close polygon").click()
    expect(page.locator("#w-reach")).to_have_text("Reach: 2 nodes")
    expect(page.locator("#w-reach-list")).to_have_text(
        "st-in (station inside), vessel-1 (vessel: decides on board)"
    )
    dashboard.screenshot(page, "warning-compose")
    page.get_by_role("button", name="Issue").click()

    expect(page.locator("#w-state")).to_have_text("active")
    (issued,) = Warnings(ioc_db).list()
    alert = issued.alert()
    assert alert is not None and (issued.issuer, issued.event, issued.targets) == ("lan", "Bão", 2)
    assert len(alert.areas[0].polygons[0]) == 5 and alert.areas[0].area_desc == "Biển Huế"
    st_in = page.locator('#w-receipts tr[data-device="st-in"]')
    expect(st_in).to_have_attribute("data-delivered", "false")
    receipt(
        ioc_db,
        "st-in",
        1,
        issued.identifier,
        ("delivered", "", "centre", 1),
        ("sounded", "siren", "centre", 1),
    )
    expect(st_in).to_have_attribute("data-delivered", "true")
    expect(st_in).to_contain_text("siren")
    receipt(ioc_db, "st-in", 3, issued.identifier, ("acknowledged", "", "button:ack", 1))
    expect(st_in).to_have_attribute("data-acknowledged", "true")
    expect(st_in).to_contain_text("by button:ack")
    receipt(ioc_db, "vessel-1", 1, issued.identifier, ("delivered", "", "centre", 1))
    vessel = page.locator('#w-receipts tr[data-device="vessel-1"]')
    expect(vessel).to_have_attribute("data-flagged", "true")
    expect(page.locator("#w-counts")).to_have_text("2 targets · 2 delivered · 1 sounded · 1 acknowledged")
    page.get_by_role("button", name="Unacknowledged (1)").click()
    expect(page.locator("#w-receipts tbody tr")).to_have_count(1)
    expect(page.locator("#w-receipts tbody tr.flagged")).to_contain_text("vessel-1")
    dashboard.screenshot(page, "warning-receipts")
    page.get_by_role("button", name="Update").click()
    expect(page.locator("#w-headline")).to_have_value("Bão số 9")  # the original's, to change
    page.locator("#w-headline").fill("Bão số 9 mạnh lên")
    page.get_by_role("button", name="Send update").click()
    expect(page.locator("#warning-head h2")).to_have_text("Bão: Bão số 9 mạnh lên")
    expect(page.locator("#warning-head")).to_contain_text(f"Changes {issued.identifier}")
    page.get_by_role("button", name="Cancel warning").click()
    expect(page.locator("#w-state")).to_have_text("cancelled")

    viewer = dashboard.sign_in("an", "warnings")
    expect(viewer.locator("#warnings-viewer-note")).to_have_text(
        "Signed in as a viewer: issuing warnings needs an operator."
    )
    expect(viewer.locator(f'#warnings tr[data-identifier="{issued.identifier}"]')).to_contain_text("Bão số 9")
    expect(viewer.get_by_role("button", name="Issue")).to_have_count(0)
    status = viewer.evaluate(
        """() => fetch("/api/v1/warnings", {method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({vi: {event: "Bão"}})}).then((r) => r.status)"""
    )
    assert status == 403 and len(Warnings(ioc_db).list()) == 3  # the alert, its Update and a Cancel, no more
