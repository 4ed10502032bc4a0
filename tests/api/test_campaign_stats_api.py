"""Campaign statistics as a manager reads them (issue 10, item 18): offers opened in the app,
a range of local dates, a daily series, store names, and the same figures as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
from support.campaign_helpers import campaign_body, create_campaign
from support.helpers import INSIDE, Client, ago, create_program, create_store, manager, ping
from support.helpers import signup as member_signup

from api.auth.tokens import TokenService

PARIS = ZoneInfo("Europe/Paris")


async def _issue(client: Client, program: str) -> tuple[dict[str, str], str]:
    """A member who enters the store and gets the campaign's offer: (headers, offer id)."""
    _, me = await member_signup(client, program, consents=["location_offers"])
    r = await client.post("/v1/me/pings", json={"pings": [ping(*INSIDE, ago(20))]}, headers=me)
    assert r.status_code == 200, r.text
    (offer,) = r.json()["offers"]
    return me, str(offer["id"])


async def _setup(client: Client, tokens: TokenService) -> tuple[str, str, str]:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program, code="OPERA")
    c = await create_campaign(client, tokens, program, campaign_body(store_ids=[store]))
    return program, store, str(c["id"])


async def test_opening_an_offer_is_idempotent_and_counted_once_in_stats(
        client: Client, tokens: TokenService) -> None:
    program, store, campaign = await _setup(client, tokens)
    me, offer = await _issue(client, program)
    _, not_opened = await _issue(client, program)
    for _ in range(2):  # the app may call it every time the offer is shown
        r = await client.post(f"/v1/me/offers/{offer}/opened", headers=me)
        assert r.status_code == 204, r.text
    (mine,) = (await client.get("/v1/me/offers", headers=me)).json()["items"]
    assert mine["opened_at"] is not None and mine["store_name"] == "Store OPERA"
    assert mine["opened_at"].endswith(("+01:00", "+02:00"))  # Paris wall clock
    _, other = await member_signup(client, program)
    r = await client.post(f"/v1/me/offers/{offer}/opened", headers=other)
    assert r.status_code == 404  # another member's offer does not exist for them
    r = await client.post(f"/v1/me/offers/{uuid.uuid4()}/opened", headers=me)
    assert r.status_code == 404
    s = (await client.get(f"/v1/programs/{program}/campaigns/{campaign}/stats",
                          headers=manager(tokens, program))).json()
    assert (s["issued"], s["opened"], s["redeemed"]) == (2, 1, 0)
    assert not_opened != offer
    (b,) = s["by_store"]
    assert (b["store_id"], b["store_code"], b["store_name"]) == (store, "OPERA", "Store OPERA")
    assert (b["issued"], b["opened"]) == (2, 1)


async def test_stats_cover_a_range_of_local_dates_with_a_daily_series(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program, _, campaign = await _setup(client, tokens)
    me, offer = await _issue(client, program)
    await _issue(client, program)
    await client.post(f"/v1/me/offers/{offer}/opened", headers=me)
    # One of the two offers was issued (and opened) three days ago, by the shops' clock.
    await conn.execute("UPDATE offers SET issued_at = issued_at - interval '3 days', "
                       "expires_at = expires_at - interval '3 days', "
                       "opened_at = opened_at - interval '3 days' WHERE id = $1",
                       uuid.UUID(offer))
    now = datetime.now(UTC)
    r = await client.patch(f"/v1/programs/{program}/campaigns/{campaign}", json={"schedule": {
        "starts_at": (now - timedelta(days=10)).isoformat(),
        "ends_at": (now + timedelta(days=1)).isoformat()}}, headers=manager(tokens, program))
    assert r.status_code == 200, r.text
    today = datetime.now(UTC).astimezone(PARIS).date()
    earlier = (datetime.now(UTC) - timedelta(days=3)).astimezone(PARIS).date()
    url = f"/v1/programs/{program}/campaigns/{campaign}/stats"
    h = manager(tokens, program)
    s = (await client.get(url, params={"from": str(earlier), "to": str(today)},
                          headers=h)).json()
    assert (s["from"], s["to"], s["timezone"]) == (str(earlier), str(today), "Europe/Paris")
    assert [d["date"] for d in s["daily"]] == [str(earlier + timedelta(days=i))
                                               for i in range((today - earlier).days + 1)]
    by_date = {d["date"]: (d["issued"], d["opened"], d["redeemed"]) for d in s["daily"]}
    assert by_date[str(earlier)] == (1, 1, 0) and by_date[str(today)] == (1, 0, 0)
    assert sum(v[0] for v in by_date.values()) == s["issued"] == 2
    only_today = (await client.get(url, params={"from": str(today)}, headers=h)).json()
    assert (only_today["issued"], only_today["opened"]) == (1, 0)
    assert [d["date"] for d in only_today["daily"]] == [str(today)]
    r = await client.get(url, params={"from": str(today), "to": str(earlier)}, headers=h)
    assert r.status_code == 422 and r.json()["field"] == "to"
    r = await client.get(url, params={"from": "yesterday"}, headers=h)
    assert r.status_code == 400 and "from" in r.text


async def test_stats_as_csv_hold_the_same_figures(client: Client, tokens: TokenService) -> None:
    program, store, campaign = await _setup(client, tokens)
    me, offer = await _issue(client, program)
    await client.post(f"/v1/me/offers/{offer}/opened", headers=me)
    url = f"/v1/programs/{program}/campaigns/{campaign}/stats"
    h = manager(tokens, program)
    as_json = (await client.get(url, headers=h)).json()
    by_accept = await client.get(url, headers={**h, "Accept": "text/csv"})
    by_path = await client.get(url + ".csv", headers=h)
    assert by_accept.status_code == by_path.status_code == 200
    assert by_accept.headers["content-type"].startswith("text/csv")
    assert by_accept.text == by_path.text
    rows = list(csv.DictReader(io.StringIO(by_path.text)))
    total = next(r for r in rows if r["row"] == "total")
    assert (int(total["issued"]), int(total["opened"]), int(total["redeemed"])) == (
        as_json["issued"], as_json["opened"], as_json["redeemed"])
    days = [r for r in rows if r["row"] == "day"]
    assert [r["date"] for r in days] == [d["date"] for d in as_json["daily"]]
    (st,) = [r for r in rows if r["row"] == "store"]
    assert (st["store_id"], st["store_code"], st["store_name"]) == (store, "OPERA",
                                                                    "Store OPERA")
    assert int(st["visits"]) == as_json["by_store"][0]["visits"] == 1
    assert "attachment" in by_path.headers["content-disposition"]
