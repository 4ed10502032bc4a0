"""Every page of the console and the till passes axe-core with no serious or critical
violation, at 1280 px and at 390 px wide, with a screenshot of each (build/screenshots/).

Done when (#11): an accessibility check (axe-core, from a maintained package) finds no serious
or critical violation on each page; the tests save a screenshot of each page at 1280 and 390 px.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

from playwright.sync_api import Page, expect
from support.browser import (
    PASSWORD,
    Api,
    OpenTab,
    axe_violations,
    make_shop,
    next_frames,
    shoot,
    sign_in,
    wide_elements,
)

from api.runtime.accounts import create_admin
from wallet.kernel.hashing import Hasher

OPERA = {"code": "OPERA", "name": "Opéra",
         "zone": {"type": "Circle", "center": [2.3316, 48.8708], "radius_m": 100}}
MARAIS = {"code": "MARAIS", "name": "Marais", "zone": {"type": "Polygon", "coordinates": [[
    [2.3583, 48.8567], [2.3601, 48.8569], [2.3600, 48.8577], [2.3582, 48.8575],
    [2.3583, 48.8567]]]}}
WIDTHS = (1280, 390)


def check(page: Page, name: str, failures: dict[str, object]) -> None:
    """Axe, the page's width (nothing wider than the screen) and a screenshot, at both
    widths."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900 if width > 500 else 844})
        next_frames(page)  # the layout of the new width
        shoot(page, f"{name}-{width}")
        found = axe_violations(page)
        if found:
            failures[f"{name}@{width}"] = found
        wider = page.evaluate("() => document.documentElement.scrollWidth")
        if wider > width:
            failures[f"{name}@{width} is {wider} px wide"] = wide_elements(page, width)


def admin_account(db_url: str) -> str:
    email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
    hashed = Hasher(memory_kib=8, time_cost=1).hash(PASSWORD)
    with ThreadPoolExecutor(1) as pool:  # this thread runs Playwright's event loop
        pool.submit(asyncio.run, create_admin(db_url, email, hashed)).result()
    return email


def test_console_pages_have_no_serious_accessibility_violation(
        api: Api, web_db: str, tabs: OpenTab) -> None:
    program_name = f"Gelato {uuid.uuid4().hex[:6]}"
    shop = make_shop(api, stores=[OPERA, MARAIS], name=program_name)
    make_shop(api, stores=[OPERA], name="Another program")  # an admin has a choice to make
    failures: dict[str, object] = {}
    page = tabs().page
    page.goto("/console")
    expect(page.get_by_role("heading", name="Sign in to the console")).to_be_visible()
    check(page, "console-login", failures)
    sign_in(page, shop.manager_email)
    expect(page.locator("#stores-table")).to_contain_text("MARAIS")
    check(page, "console-stores", failures)
    page.get_by_role("button", name="MARAIS").click()
    expect(page.get_by_role("heading", name="Store MARAIS")).to_be_visible()
    check(page, "console-store-edit", failures)
    for link, heading, shot in (("Campaigns", "Campaigns", "console-campaigns"),
                                ("Results", "Results", "console-results"),
                                ("Weather", "Weather", "console-weather")):
        page.set_viewport_size({"width": 1280, "height": 900})
        page.get_by_role("link", name=link).click()
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        check(page, shot, failures)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/console#/campaigns/new")
    expect(page.get_by_role("heading", name="New campaign")).to_be_visible()
    check(page, "console-campaign-new", failures)

    admin = tabs().page
    sign_in(admin, admin_account(web_db))
    expect(admin.get_by_role("heading", name="Choose a program")).to_be_visible()
    check(admin, "console-choose-program", failures)
    admin.set_viewport_size({"width": 1280, "height": 900})
    admin.get_by_role("button", name=program_name).click()
    expect(admin.get_by_role("heading", name="Stores and zones")).to_be_visible()
    admin.get_by_role("link", name="Access log").click()
    expect(admin.get_by_role("heading", name="Access log")).to_be_visible()
    check(admin, "console-access-log", failures)
    admin.set_viewport_size({"width": 1280, "height": 900})
    member = shop.member()
    admin.get_by_role("link", name="Member lookup").click()
    admin.get_by_label("Value").fill(member["email"])
    admin.get_by_role("button", name="Look up").click()
    expect(admin.locator("#member-title")).to_have_text("Camille")
    check(admin, "console-member-lookup", failures)
    assert failures == {}, json.dumps(failures, indent=1)


def test_till_pages_have_no_serious_accessibility_violation(
        api: Api, tabs: OpenTab) -> None:
    shop = make_shop(api, stores=[OPERA])
    member = shop.member()
    failures: dict[str, object] = {}
    page = tabs(width=390, height=844).page
    page.goto("/till")
    expect(page.get_by_role("heading", name="Sign in to the till")).to_be_visible()
    check(page, "till-login", failures)
    sign_in(page, shop.staff_email, "/till")
    expect(page.get_by_role("button", name="Scan the card")).to_be_visible()
    check(page, "till-scan", failures)
    page.get_by_label("Or type the card number").fill(member["card_number"])
    page.get_by_role("button", name="Find").click()
    expect(page.locator("#member-name")).to_have_text("Camille")
    check(page, "till-purchase", failures)
    for tab in ("Top up", "Pay out", "Refund", "Recent"):
        page.get_by_role("tab", name=tab).click()
        expect(page.get_by_role("heading", name=tab, exact=True)).to_be_visible()
        check(page, f"till-{tab.lower().replace(' ', '-')}", failures)
    assert failures == {}, json.dumps(failures, indent=1)
