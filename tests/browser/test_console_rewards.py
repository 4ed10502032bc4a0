"""A manager runs the rewards catalogue from the console.

Done when (#15): the console gains a rewards page — the manager creates a reward, changes it
(a revision), reads its figures once a member has claimed it, and retires it; the page passes
axe-core at 1280 and 390 px.
"""

from __future__ import annotations

import uuid

from playwright.sync_api import Locator, Page, expect
from support.browser import Api, OpenTab, axe_violations, make_shop, shoot, sign_in

OPERA = {"code": "OPERA", "name": "Opéra",
         "zone": {"type": "Circle", "center": [2.3316, 48.8708], "radius_m": 100}}


def row(page: Page, name: str) -> Locator:
    return page.locator("#rewards-table tbody tr", has_text=name)


def test_manager_creates_changes_reads_and_retires_a_reward(
        api: Api, tabs: OpenTab) -> None:
    shop = make_shop(api, stores=[OPERA])
    page = tabs().page
    sign_in(page, shop.manager_email)
    expect(page.get_by_role("heading", name="Stores and zones")).to_be_visible()
    page.get_by_role("link", name="Rewards").click()
    expect(page.get_by_role("heading", name="Rewards catalogue")).to_be_visible()
    page.get_by_role("link", name="New reward").click()

    form = page.locator("#reward-form")
    form.get_by_label("Name", exact=True).fill("Two scoops")
    form.get_by_label("Points cost").fill("150")
    form.get_by_label("Kind", exact=True).select_option("amount_off")
    form.get_by_label("Stock", exact=True).fill("20")
    form.get_by_label("Voucher valid for").fill("14")
    form.get_by_label("OPERA — Opéra").check()
    form.get_by_role("button", name="Create the reward").click()
    expect(page.locator("#reward-message")).to_contain_text("needs a value")  # the API's 422
    expect(form.get_by_label("Value (EUR)")).to_have_attribute("aria-invalid", "true")
    form.get_by_label("Value (EUR)").fill("3.50")
    form.get_by_role("button", name="Create the reward").click()
    expect(page.locator("#rewards-status")).to_contain_text("Reward saved")
    expect(row(page, "Two scoops")).to_contain_text("€3.50")
    expect(row(page, "Two scoops")).to_contain_text("20 / 20")
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        shoot(page, f"console-rewards-{width}")
        assert axe_violations(page) == [], width
    page.set_viewport_size({"width": 1280, "height": 900})

    [reward] = api.call("GET", f"/v1/programs/{shop.program_id}/rewards",
                        headers=shop.manager)["items"]
    assert (reward["value"], reward["store_ids"], reward["voucher_valid_for_s"]) == (
        350, shop.store_ids, 14 * 86400)
    row(page, "Two scoops").get_by_role("link", name="Two scoops").click()
    page.locator("#reward-form").get_by_label("Points cost").fill("120")
    page.get_by_role("button", name="Save").click()
    expect(row(page, "Two scoops")).to_contain_text("120")
    row(page, "Two scoops").get_by_role("link", name="Revisions").click()
    expect(page.locator("ol.revisions")).to_contain_text("spec.points_cost")
    expect(page.locator("ol.revisions")).to_contain_text("150 → 120")

    member = shop.member()
    till = {**api.token("staff", shop.program_id, tuple(shop.store_ids)),
            "Idempotency-Key": uuid.uuid4().hex}
    api.call("POST", "/v1/pos/purchases", headers=till, expect=201, json={
        "store_id": shop.store_ids[0], "card_number": member["card_number"],
        "receipt_id": "R-1", "amount": 50_000, "currency": "EUR"})  # earns 500 points
    claimed = api.call("POST", f"/v1/me/rewards/{reward['id']}/claims",
                       headers=member["headers"], expect=201)
    assert claimed["points_balance"] == 380
    page.goto(f"/console#/rewards/{reward['id']}/stats")
    expect(page.locator("#figure-claimed .value")).to_have_text("1")
    expect(page.locator("#figure-points_spent .value")).to_have_text("120")
    expect(page.locator("#figure-stock_left .value")).to_have_text("19 / 20")

    page.get_by_role("link", name="Back to the rewards").click()
    page.once("dialog", lambda d: d.accept())
    row(page, "Two scoops").get_by_role("button", name="Retire").click()
    expect(row(page, "Two scoops")).to_contain_text("retired")
    assert not page.locator("#returns-points").is_enabled()  # a program setting: admins only


def test_cashier_uses_one_voucher_on_its_own_and_another_in_a_purchase(
        api: Api, tabs: OpenTab) -> None:
    shop = make_shop(api, stores=[OPERA])
    base = f"/v1/programs/{shop.program_id}/rewards"
    coffee = api.call("POST", base, headers=shop.manager, expect=201, json={
        "name": "Free coffee", "points_cost": 50, "kind": "voucher",
        "voucher_valid_for_s": 86_400})
    off = api.call("POST", base, headers=shop.manager, expect=201, json={
        "name": "Five euros off", "points_cost": 100, "kind": "amount_off", "value": 500,
        "voucher_valid_for_s": 86_400})
    member = shop.member()
    till = api.token("staff", shop.program_id, tuple(shop.store_ids))
    api.call("POST", "/v1/pos/purchases", headers={**till, "Idempotency-Key": "earn"},
             expect=201, json={"store_id": shop.store_ids[0], "receipt_id": "R-0",
                               "card_number": member["card_number"], "amount": 20_000,
                               "currency": "EUR"})
    codes = [api.call("POST", f"/v1/me/rewards/{r['id']}/claims", headers=member["headers"],
                      expect=201)["voucher"]["code"] for r in (coffee, off)]

    page = tabs(width=390, height=844).page
    sign_in(page, shop.staff_email, "/till")
    page.get_by_role("tab", name="Voucher").click()
    page.get_by_label("Voucher code").fill(f"{codes[0][:5].lower()} {codes[0][5:]}")
    page.get_by_role("button", name="Use the voucher").click()
    expect(page.locator("#voucher-name")).to_have_text("Free coffee")
    page.get_by_role("button", name="Done").click()
    page.get_by_label("Voucher code").fill(codes[0])
    page.get_by_role("button", name="Use the voucher").click()
    expect(page.locator("#voucher-message")).to_contain_text("already used")
    shoot(page, "till-voucher-390")

    page.get_by_label("Or type the card number").fill(member["card_number"])
    page.get_by_role("button", name="Find").click()
    page.get_by_role("tab", name="Purchase").click()
    page.get_by_label("Amount", exact=True).fill("12.00")
    page.get_by_label("Reward vouchers").fill(codes[1])
    page.get_by_role("button", name="Record the purchase").click()
    expect(page.locator("#amount-due")).to_have_text("€7.00")
    expect(page.locator("#result-discount")).to_have_text("€5.00")
