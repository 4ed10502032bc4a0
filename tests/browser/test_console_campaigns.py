"""A manager runs a weather campaign from the console and watches its results.

Done when (#11): the manager creates, activates and pauses a weather campaign; pings sent
through the API by a member inside the zone issue an offer; the dashboard shows 1 issued, and
after the member opens it and a cashier redeems it, 1 opened and 1 redeemed; the CSV has the
same figures.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect
from support.browser import Api, OpenTab, make_shop, shoot, sign_in

OPERA = {"code": "OPERA", "name": "Opéra",
         "zone": {"type": "Circle", "center": [2.3316, 48.8708], "radius_m": 100}}
LOUVRE = {"code": "LOUVRE", "name": "Louvre",
          "zone": {"type": "Circle", "center": [2.3404, 48.8618], "radius_m": 80}}


def figures(page: Page) -> dict[str, str]:
    return {k: page.locator(f"#figure-{k} .value").inner_text()
            for k in ("issued", "opened", "redeemed", "conversion")}


def create_weather_campaign(page: Page) -> None:
    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name="New campaign").click()
    form = page.locator("#campaign-form")
    form.get_by_label("Name", exact=True).fill("Hot day gelato")
    form.get_by_label("When the member enters the zone").check()
    form.get_by_label("Minimum temperature (°C)").fill("25")
    form.get_by_label("clear").check()
    form.get_by_label("Title").fill("A cone on us")
    form.get_by_label("Text", exact=True).fill("20% off a gelato in the next two hours.")
    form.get_by_label("Reward", exact=True).select_option("percent_off")
    form.get_by_label("Value").fill("20")
    form.get_by_label("Valid for").fill("2")
    form.get_by_label("Per member per day").fill("1")
    form.get_by_label("Budget: offers in total").fill("500")
    form.get_by_label("Chosen stores").check()
    form.get_by_label("OPERA — Opéra").check()
    shoot(page, "console-campaign-form-1280")
    form.get_by_role("button", name="Create the campaign (draft)").click()
    expect(page.locator("#campaigns-status")).to_contain_text("Campaign saved")


def campaign_row(page: Page) -> Any:
    return page.locator("#campaigns-table tbody tr", has_text="Hot day gelato")


def test_manager_runs_a_weather_campaign_and_reads_its_results(
        api: Api, tabs: OpenTab) -> None:
    shop = make_shop(api, stores=[OPERA, LOUVRE])
    opera_id = shop.store_ids[0]
    member = shop.member()
    tab = tabs()
    page = tab.page
    sign_in(page, shop.manager_email)
    expect(page.get_by_role("heading", name="Stores and zones")).to_be_visible()

    create_weather_campaign(page)
    row = campaign_row(page)
    expect(row).to_contain_text("draft")
    row.get_by_role("button", name="Activate").click()
    expect(campaign_row(page)).to_contain_text("active")
    campaign_row(page).get_by_role("button", name="Pause").click()
    expect(campaign_row(page)).to_contain_text("paused")
    campaign_row(page).get_by_role("button", name="Activate").click()
    expect(campaign_row(page)).to_contain_text("active")
    shoot(page, "console-campaigns-1280")
    [campaign] = api.call("GET", f"/v1/programs/{shop.program_id}/campaigns",
                          headers=shop.manager)["items"]
    assert campaign["status"] == "active"
    assert campaign["store_ids"] == [opera_id]
    assert campaign["context"]["min_temp_c"] == 25
    assert campaign["context"]["conditions"] == ["clear"]
    assert campaign["offer"]["reward"] == {"kind": "percent_off", "value": 20}
    assert campaign["offer"]["valid_for_s"] == 7200
    assert campaign["caps"]["per_member_per_day"] == 1
    assert campaign["caps"]["max_issued"] == 500

    # The weather integration's input, by hand: hot and clear at the Opéra.
    page.get_by_role("link", name="Weather").click()
    page.get_by_label("Temperature at OPERA (°C)").fill("29")
    page.get_by_label("Condition at OPERA").select_option("clear")
    page.get_by_role("button", name="Send the observations").click()
    expect(page.locator("#weather-message")).to_contain_text("1 observation stored")

    # The member walks into the zone: the app's pings issue the offer.
    now = datetime.now(UTC).isoformat()
    answer = api.call("POST", "/v1/me/pings", headers={**member["headers"],
                      "Idempotency-Key": str(uuid.uuid4())},
                      json={"pings": [{"lat": 48.8708, "lon": 2.3316, "accuracy_m": 10,
                                       "at": now}]})
    [offer] = answer["offers"]

    page.get_by_role("link", name="Results").click()
    page.get_by_label("Campaign", exact=True).select_option(label="Hot day gelato")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#figure-issued .value")).to_have_text("1")
    assert figures(page) == {"issued": "1", "opened": "0", "redeemed": "0",
                             "conversion": "0%"}

    # The member opens the offer in the app; a cashier redeems it at the Opéra.
    api.call("POST", f"/v1/me/offers/{offer['id']}/opened", headers=member["headers"],
             expect=204)
    staff = api.token("staff", shop.program_id, (opera_id,))
    api.call("POST", "/v1/pos/purchases", expect=201,
             headers={**staff, "Idempotency-Key": str(uuid.uuid4())},
             json={"store_id": opera_id, "card_number": member["card_number"],
                   "receipt_id": "R-1", "amount": 500, "currency": "EUR",
                   "redeem": {"offer_ids": [offer["id"]], "pin": "24680"}})

    page.get_by_role("button", name="Show").click()
    expect(page.locator("#figure-redeemed .value")).to_have_text("1")
    assert figures(page) == {"issued": "1", "opened": "1", "redeemed": "1",
                             "conversion": "100%"}
    expect(page.locator("#by-store-table")).to_contain_text("Opéra")
    expect(page.locator("#results-chart canvas")).to_have_count(1)
    shoot(page, "console-results-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "console-results-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename.endswith(".csv")
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    figures_of = {"issued": 1, "opened": 1, "redeemed": 1}
    [total] = [r for r in rows if r["row"] == "total"]
    assert {k: int(total[k]) for k in figures_of} == figures_of, text
    period = (page.locator("#results-from").input_value(),
              page.locator("#results-to").input_value())
    assert total["date"] == "/".join(period)
    days = [r for r in rows if r["row"] == "day"]
    assert {k: sum(int(r[k]) for r in days) for k in figures_of} == figures_of, text
    [opera] = [r for r in rows if r["row"] == "store" and int(r["issued"])]
    assert (opera["store_name"], opera["visits"]) == ("Opéra", "1")

    # The whole program: every campaign together, the same figures here.
    page.get_by_label("Campaign", exact=True).select_option(label="The whole program")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#by-campaign-table")).to_contain_text("Hot day gelato")
    assert figures(page) == {"issued": "1", "opened": "1", "redeemed": "1",
                             "conversion": "100%"}
    expect(page.locator("#by-store-table")).to_contain_text("LOUVRE — Louvre")
    shoot(page, "console-results-program-1280")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text("utf-8"))))
    [total] = [r for r in rows if r["row"] == "total"]
    assert {k: int(total[k]) for k in figures_of} == figures_of
    assert [r["campaign_name"] for r in rows if r["row"] == "campaign"] == ["Hot day gelato"]
    assert tab.errors == []
