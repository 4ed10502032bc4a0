"""A cashier at a phone-sized till: scan, purchase with an offer and stored value, refund.

Done when (#11): a cashier at 390 px width scans a QR (a camera stream faked by the test
browser), records a purchase redeeming the offer and paying part with stored value on the PIN
pad; a double-tapped submit records one purchase; a refund by receipt returns the right amounts.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, expect
from support.browser import Api, OpenTab, Shop, launch, make_shop, qr_y4m, shoot, sign_in

OPERA = {"code": "OPERA", "name": "Opéra",
         "zone": {"type": "Circle", "center": [2.3316, 48.8708], "radius_m": 100}}
PHONE = {"width": 390, "height": 844}


def iso(at: datetime) -> str:
    return at.isoformat()


def shop_with_offer(api: Api, *, locale: str | None = None
                    ) -> tuple[Shop, dict[str, Any], dict[str, Any]]:
    """A program, a 20%-off campaign at the Opéra, and a member holding its offer and 30.00
    of stored value."""
    shop = make_shop(api, stores=[OPERA], locale=locale)
    store = shop.store_ids[0]
    now = datetime.now(UTC)
    campaign = api.call("POST", f"/v1/programs/{shop.program_id}/campaigns", expect=201,
                        headers=shop.manager, json={
                            "name": "Welcome", "store_ids": [store],
                            "trigger": {"event": "enter"},
                            "schedule": {"starts_at": iso(now - timedelta(hours=1)),
                                         "ends_at": iso(now + timedelta(days=1))},
                            "offer": {"title": "20% off today", "body": "Show this.",
                                      "reward": {"kind": "percent_off", "value": 20},
                                      "valid_for_s": 7200}})
    api.call("POST", f"/v1/programs/{shop.program_id}/campaigns/{campaign['id']}/activate",
             headers=shop.manager)
    member = shop.member()
    answer = api.call("POST", "/v1/me/pings", headers=member["headers"], json={"pings": [
        {"lat": 48.8708, "lon": 2.3316, "accuracy_m": 10, "at": iso(now)}]})
    [offer] = answer["offers"]
    staff = api.token("staff", shop.program_id, (store,))
    api.call("POST", "/v1/pos/stored-value/top-ups", expect=201,
             headers={**staff, "Idempotency-Key": str(uuid.uuid4())},
             json={"store_id": store, "card_number": member["card_number"], "amount": 3000,
                   "currency": "EUR"})
    return shop, member, offer


def transactions(api: Api, shop: Shop) -> list[dict[str, Any]]:
    staff = api.token("staff", shop.program_id, (shop.store_ids[0],))
    page = api.call("GET", f"/v1/pos/stores/{shop.store_ids[0]}/transactions", headers=staff)
    return list(page["items"])


def tap_pin(page: Page, pin: str) -> None:
    pad = page.get_by_role("group", name="PIN pad")
    for digit in pin:
        pad.get_by_role("button", name=digit, exact=True).click()


@pytest.fixture
def camera(playwright: Playwright, tmp_path: Path, api: Api) -> Iterator[tuple[Browser, Any]]:
    """A Chromium whose camera shows the member's card QR code (a fake capture device)."""
    shop, member, offer = shop_with_offer(api)
    card = api.call("GET", "/v1/me/card", headers=member["headers"])
    browser = launch(playwright, camera_y4m=qr_y4m(card["qr"]["payload"], tmp_path / "qr.y4m"))
    try:
        yield browser, (shop, member, offer)
    finally:
        browser.close()


def test_cashier_scans_sells_with_offer_and_stored_value_then_refunds_by_receipt(
        camera: tuple[Browser, Any], api: Api, tabs: OpenTab) -> None:
    browser, (shop, member, offer) = camera
    tab = tabs(browser=browser, width=PHONE["width"], height=PHONE["height"],
               permissions=["camera"], has_touch=True)
    page = tab.page
    sign_in(page, shop.staff_email, "/till")
    page.get_by_role("button", name="Scan the card").click()
    expect(page.locator("#member-name")).to_have_text("Camille")
    expect(page.locator("#member-stored-value")).to_have_text("€30.00")
    expect(page.locator("#member-tier")).to_have_text("Silver")
    assert page.locator("#scanner-video").count() == 0  # the camera is off again
    shoot(page, "till-member-390")

    page.get_by_label("Amount", exact=True).fill("24.50")
    page.get_by_label("20% off today").check()
    page.get_by_label("Pay with stored value").fill("10")
    tap_pin(page, "24680")
    receipt = page.get_by_label("Receipt number").input_value()
    page.get_by_role("button", name="Record the purchase").dblclick()
    expect(page.locator("#amount-due")).to_have_text("€9.60")
    expect(page.locator("#result-discount")).to_have_text("€4.90")
    expect(page.locator("#result-stored-value")).to_have_text("€10.00")
    shoot(page, "till-purchase-390")

    sales = [t for t in transactions(api, shop) if t["kind"] == "purchase"]
    assert len(sales) == 1, sales  # the double tap counted once
    assert sales[0]["receipt_id"] == receipt
    assert sales[0]["amount"] == 2450 and sales[0]["discount"] == 490
    assert sales[0]["stored_value_spent"] == 1000
    offers = api.call("GET", "/v1/me/offers", headers=member["headers"])["items"]
    assert [o["status"] for o in offers if o["id"] == offer["id"]] == ["redeemed"]

    page.get_by_role("tab", name="Refund").click()
    page.get_by_label("Receipt number").fill(receipt)
    page.get_by_role("button", name="Refund", exact=True).last.click()
    expect(page.locator("#refund-total")).to_have_text("€19.60")
    expect(page.locator("#refund-cash")).to_have_text("€9.60")
    expect(page.locator("#refund-stored-value")).to_have_text("€10.00")
    expect(page.locator("#refund-remaining")).to_have_text("€0.00")
    shoot(page, "till-refund-390")
    me = api.call("GET", "/v1/me", headers=member["headers"])
    assert me["stored_value_balance"] == 3000

    # The member takes €5.00 of their purse back in cash, with their PIN.
    page.get_by_role("button", name="Done").click()
    page.get_by_role("tab", name="Pay out").click()
    page.get_by_label("Amount", exact=True).fill("5")
    tap_pin(page, "24680")
    page.get_by_role("button", name="Pay out", exact=True).last.click()
    expect(page.locator("#result-stored-value-balance")).to_have_text("€25.00")
    assert api.call("GET", "/v1/me", headers=member["headers"])["stored_value_balance"] == 2500
    page.get_by_role("button", name="Done").click()
    page.get_by_role("tab", name="Recent").click()
    expect(page.locator("#recent-table tbody tr")).to_have_count(4)  # top-up, sale, refund, payout
    payout = page.locator("#recent-table tbody tr").first
    expect(payout).to_contain_text("payout")
    expect(payout).to_contain_text("−€5.00")
    shoot(page, "till-recent-390")
    assert tab.errors == []


def test_a_purchase_whose_answer_is_lost_is_retried_with_the_same_key_and_counts_once(
        api: Api, tabs: OpenTab) -> None:
    shop, member, _ = shop_with_offer(api, locale="fr-FR")  # amounts written the French way
    tab = tabs(width=PHONE["width"], height=PHONE["height"])
    page = tab.page
    sign_in(page, shop.staff_email, "/till")
    page.get_by_label("Or type the card number").fill(member["card_number"])
    page.get_by_role("button", name="Find").click()
    expect(page.locator("#member-name")).to_have_text("Camille")
    expect(page.locator("#member-stored-value")).to_have_text(re.compile(r"^30,00\s€$"))

    keys: list[str] = []

    def lose_first_answer(route: Route) -> None:
        keys.append(route.request.headers["idempotency-key"])
        if len(keys) == 1:
            route.fetch()  # the server records the purchase...
            route.abort("connectionreset")  # ...and the till never hears back
        else:
            route.continue_()

    page.route("**/v1/pos/purchases", lose_first_answer)
    page.get_by_label("Amount", exact=True).fill("12.00")
    submit = page.get_by_role("button", name="Record the purchase")
    submit.click()
    expect(page.locator("#purchase-message")).to_contain_text("will not count twice")
    submit.click()
    expect(page.locator("#amount-due")).to_have_text(re.compile(r"^12,00\s€$"))
    assert len(keys) == 2 and keys[0] == keys[1]
    assert len([t for t in transactions(api, shop) if t["kind"] == "purchase"]) == 1


def test_a_typed_card_number_spends_the_offer_only_with_the_pin(
        api: Api, tabs: OpenTab) -> None:
    """A card number is static (a wallet pass's barcode, a screenshot): the till asks for
    the member's PIN before spending an offer with it."""
    shop, member, offer = shop_with_offer(api)
    tab = tabs(width=PHONE["width"], height=PHONE["height"])
    page = tab.page
    sign_in(page, shop.staff_email, "/till")
    page.get_by_label("Or type the card number").fill(member["card_number"])
    page.get_by_role("button", name="Find").click()
    expect(page.locator("#member-name")).to_have_text("Camille")
    page.get_by_label("Amount", exact=True).fill("10.00")
    pad = page.get_by_role("group", name="PIN pad")
    expect(pad).to_be_hidden()
    page.get_by_label("20% off today").check()
    expect(pad).to_be_visible()
    page.get_by_role("button", name="Record the purchase").click()
    expect(page.locator("#purchase-form")).to_contain_text("The PIN has 5 digits.")
    tap_pin(page, "24680")
    page.get_by_role("button", name="Record the purchase").click()
    expect(page.locator("#amount-due")).to_have_text("€8.00")
    offers = api.call("GET", "/v1/me/offers", headers=member["headers"])["items"]
    assert [o["status"] for o in offers if o["id"] == offer["id"]] == ["redeemed"]
    assert tab.errors == []
