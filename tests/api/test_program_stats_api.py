"""The whole program's results (issue 11: "a dashboard per campaign and per program"): every
campaign together over a range of local dates, per day, per store and per campaign, and the
same figures as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from support.campaign_helpers import campaign_body, card_qr, create_campaign
from support.helpers import (
    INSIDE,
    Client,
    ago,
    circle,
    create_program,
    create_store,
    manager,
    ping,
    signup,
    staff,
)

from api.auth.tokens import TokenService

PARIS = ZoneInfo("Europe/Paris")
BASTILLE = (48.8533, 2.3692)  # lat, lon: 1.3 km from INSIDE


async def _offer_at(client: Client, program: str, where: tuple[float, float]
                    ) -> tuple[dict[str, str], str]:
    _, me = await signup(client, program, consents=["location_offers"])
    r = await client.post("/v1/me/pings", json={"pings": [ping(*where, ago(20))]}, headers=me)
    assert r.status_code == 200, r.text
    (offer,) = r.json()["offers"]
    return me, str(offer["id"])


async def _scenario(client: Client, tokens: TokenService, conn: asyncpg.Connection
                    ) -> dict[str, Any]:
    """Two live campaigns and a draft; three offers (one opened and redeemed, one issued three
    days ago); a third store with nothing."""
    program = await create_program(client, tokens)
    opera = await create_store(client, tokens, program, code="OPERA")
    bastille = await create_store(client, tokens, program, code="BASTILLE",
                                  zone=circle(BASTILLE[1], BASTILLE[0]))
    quiet = await create_store(client, tokens, program, code="QUIET",
                               zone=circle(2.2945, 48.8584))
    gelato = await create_campaign(client, tokens, program,
                                   campaign_body(store_ids=[opera], name="Gelato"))
    coffee = await create_campaign(client, tokens, program,
                                   campaign_body(store_ids=[bastille], name="Coffee"))
    await create_campaign(client, tokens, program, campaign_body(name="Later"), activate=False)
    me, redeemed = await _offer_at(client, program, INSIDE)
    _, old = await _offer_at(client, program, INSIDE)
    await _offer_at(client, program, BASTILLE)
    r = await client.post(f"/v1/me/offers/{redeemed}/opened", headers=me)
    assert r.status_code == 204, r.text
    r = await client.post("/v1/pos/purchases", headers={
        **staff(tokens, program, opera), "Idempotency-Key": str(uuid.uuid4())}, json={
        "store_id": opera, "qr_payload": await card_qr(client, me), "receipt_id": "R-1",
        "amount": 1000, "currency": "EUR", "redeem": {"offer_ids": [redeemed]}})
    assert r.status_code == 201, r.text
    await conn.execute("UPDATE offers SET issued_at = issued_at - interval '3 days', "
                       "expires_at = expires_at - interval '3 days' WHERE id = $1",
                       uuid.UUID(old))
    return {"program": program, "opera": opera, "bastille": bastille, "quiet": quiet,
            "gelato": gelato["id"], "coffee": coffee["id"]}


async def test_program_figures_add_up_every_campaign_per_day_store_and_campaign(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    s = await _scenario(client, tokens, conn)
    url = f"/v1/programs/{s['program']}/stats"
    h = manager(tokens, s["program"])
    r = await client.get(url, headers=h)
    assert r.status_code == 200, r.text
    got = r.json()
    today = datetime.now(UTC).astimezone(PARIS).date()
    earlier = (datetime.now(UTC) - timedelta(days=3)).astimezone(PARIS).date()
    assert (got["from"], got["to"], got["timezone"]) == (
        str(today - timedelta(days=29)), str(today), "Europe/Paris")
    assert (got["issued"], got["opened"], got["redeemed"]) == (3, 1, 1)
    assert got["conversion_rate"] == round(1 / 3, 4)
    # The offer moved back three days is now past its validity, unredeemed.
    assert got["expired"] == 1
    campaigns = {c["name"]: (c["campaign_id"], c["status"], c["issued"], c["opened"],
                             c["redeemed"]) for c in got["by_campaign"]}
    assert campaigns == {"Gelato": (s["gelato"], "active", 2, 1, 1),
                         "Coffee": (s["coffee"], "active", 1, 0, 0)}  # no draft
    stores = {b["store_code"]: (b["store_id"], b["visits"], b["issued"], b["redeemed"])
              for b in got["by_store"]}
    assert stores == {"OPERA": (s["opera"], 2, 2, 1), "BASTILLE": (s["bastille"], 1, 1, 0),
                      "QUIET": (s["quiet"], 0, 0, 0)}
    assert len(got["daily"]) == 30
    by_date = {d["date"]: (d["issued"], d["opened"], d["redeemed"]) for d in got["daily"]}
    assert by_date[str(earlier)] == (1, 0, 0) and by_date[str(today)] == (2, 1, 1)
    assert sum(v[0] for v in by_date.values()) == 3

    only_today = (await client.get(url, params={"from": str(today)}, headers=h)).json()
    assert (only_today["from"], only_today["to"]) == (str(today), str(today))
    assert (only_today["issued"], only_today["expired"]) == (2, 0)
    r = await client.get(url, params={"from": str(today), "to": str(earlier)}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "to"

    # A store deleted since keeps its figures and its name.
    r = await client.delete(f"/v1/programs/{s['program']}/stores/{s['bastille']}", headers=h)
    assert r.status_code == 204, r.text
    after = (await client.get(url, headers=h)).json()
    assert {b["store_code"] for b in after["by_store"]} == {"OPERA", "BASTILLE", "QUIET"}


async def test_program_figures_as_csv_hold_the_same_figures(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    s = await _scenario(client, tokens, conn)
    url = f"/v1/programs/{s['program']}/stats"
    h = manager(tokens, s["program"])
    as_json = (await client.get(url, headers=h)).json()
    by_accept = await client.get(url, headers={**h, "Accept": "text/csv"})
    by_path = await client.get(url + ".csv", headers=h)
    assert by_accept.status_code == by_path.status_code == 200
    assert by_accept.headers["content-type"].startswith("text/csv")
    assert by_accept.text == by_path.text
    assert "attachment" in by_path.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(by_path.text)))
    (total,) = [r for r in rows if r["row"] == "total"]
    assert total["date"] == f"{as_json['from']}/{as_json['to']}"
    assert [int(total[k]) for k in ("visits", "issued", "opened", "redeemed", "expired")] == [
        3, as_json["issued"], as_json["opened"], as_json["redeemed"], as_json["expired"]]
    assert [r["date"] for r in rows if r["row"] == "day"] == [
        d["date"] for d in as_json["daily"]]
    campaigns = {r["campaign_name"]: (r["campaign_id"], int(r["issued"]), int(r["redeemed"]))
                 for r in rows if r["row"] == "campaign"}
    assert campaigns == {"Gelato": (s["gelato"], 2, 1), "Coffee": (s["coffee"], 1, 0)}
    stores = {r["store_code"]: (r["store_id"], int(r["visits"])) for r in rows
              if r["row"] == "store"}
    assert stores == {"OPERA": (s["opera"], 2), "BASTILLE": (s["bastille"], 1),
                      "QUIET": (s["quiet"], 0)}


async def test_only_the_programs_managers_and_admins_read_its_figures(
        client: Client, tokens: TokenService) -> None:
    mine, theirs = await create_program(client, tokens), await create_program(client, tokens)
    store = await create_store(client, tokens, mine)
    for headers in (manager(tokens, theirs), staff(tokens, mine, store)):
        for path in ("stats", "stats.csv"):
            r = await client.get(f"/v1/programs/{mine}/{path}", headers=headers)
            assert r.status_code == 403, r.text
    r = await client.get(f"/v1/programs/{mine}/stats")
    assert r.status_code == 401
    r = await client.get(f"/v1/programs/{uuid.uuid4()}/stats",
                         headers=manager(tokens, mine))
    assert r.status_code == 403
