"""Offers end to end over HTTP: pings issue them (the ice-cream scenario against the real
clock), members list them, tills redeem them (each reward kind, each refusal), and stats
count exactly what happened."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from prometheus_client import REGISTRY
from support.campaign_helpers import (
    campaign_body,
    card_number,
    card_qr,
    create_campaign,
    set_tier,
    set_weather,
    window_around_now,
    window_not_now,
)
from support.helpers import (
    INSIDE,
    Client,
    ago,
    bearer,
    circle,
    create_program,
    create_store,
    manager,
    ping,
    signup,
    staff,
)

from api.auth.tokens import TokenService

ICE_CREAM = {"tiers": ["gold"], "context": {"min_temp_c": 25},
             "caps": {"per_member_per_day": 1}}


async def _enter(client: Client, headers: dict[str, str], *, key: str | None = None,
                 batch: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One batch inside the store's zone: an enter when no visit is open."""
    h = {**headers, **({"Idempotency-Key": key} if key else {})}
    r = await client.post("/v1/me/pings", json={"pings": batch or [ping(*INSIDE, ago(20))]},
                          headers=h)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _expire(conn: asyncpg.Connection, offer_id: str | None = None) -> None:
    """Move offers (all, or one) an hour past their expiry: no test waits for a clock."""
    await conn.execute(
        "UPDATE offers SET issued_at = issued_at - interval '2 hours', "
        "expires_at = issued_at - interval '1 hour' WHERE $1::uuid IS NULL OR id = $1",
        uuid.UUID(offer_id) if offer_id else None)


async def _close_visits(conn: asyncpg.Connection) -> None:
    """End every open visit (as leaving the zone for a while would)."""
    await conn.execute("UPDATE visits SET exited_at = last_seen_at WHERE exited_at IS NULL")


async def _member(client: Client, conn: asyncpg.Connection, program: str, tier: str = "gold",
                  consents: tuple[str, ...] = ("location_offers",)) -> dict[str, str]:
    member_id, headers = await signup(client, program, consents=list(consents))
    await set_tier(conn, member_id, tier)
    return headers


async def test_ice_cream_issues_to_a_gold_member_entering_on_a_hot_afternoon(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    c = await create_campaign(client, tokens, program, campaign_body(
        hours=[window_around_now()], **ICE_CREAM))
    await set_weather(client, tokens, program, store, 28)
    gold = await _member(client, conn, program)
    issued_before = REGISTRY.get_sample_value("offers_issued_total") or 0.0
    body = await _enter(client, gold)
    assert REGISTRY.get_sample_value("offers_issued_total") == issued_before + 1
    assert [v["event"] for v in body["visits"]] == ["enter"]
    (offer,) = body["offers"]
    assert offer["campaign_id"] == c["id"] and offer["store_id"] == store
    assert offer["status"] == "active" and offer["reward"] == {"kind": "percent_off", "value": 20}
    mine = (await client.get("/v1/me/offers", headers=gold)).json()
    assert mine["items"] == [offer]


async def test_ice_cream_is_not_issued_to_silver_outside_hours_when_cold_or_stale_or_quiet(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    hot = campaign_body(hours=[window_around_now()], **ICE_CREAM)
    c = await create_campaign(client, tokens, program, hot)
    await set_weather(client, tokens, program, store, 28)

    silver = await _member(client, conn, program, "silver")
    assert (await _enter(client, silver))["offers"] == []

    quiet = await _member(client, conn, program)
    r = await client.put("/v1/me/preferences", json={"quiet_hours": window_around_now()},
                         headers=quiet)
    assert r.status_code == 200, r.text
    assert (await _enter(client, quiet))["offers"] == []

    h = manager(tokens, program)
    r = await client.patch(f"/v1/programs/{program}/campaigns/{c['id']}",
                           json={"schedule": {**hot["schedule"], "hours": [window_not_now()]}},
                           headers=h)
    assert r.status_code == 200, r.text
    assert (await _enter(client, await _member(client, conn, program)))["offers"] == []
    await client.patch(f"/v1/programs/{program}/campaigns/{c['id']}",
                       json={"schedule": hot["schedule"]}, headers=h)

    await set_weather(client, tokens, program, store, 20)
    assert (await _enter(client, await _member(client, conn, program)))["offers"] == []
    await set_weather(client, tokens, program, store, 30, age_s=2 * 3600)  # stale: ignored
    assert (await _enter(client, await _member(client, conn, program)))["offers"] == []
    await conn.execute("UPDATE store_weather SET observed_at = now() - interval '2 hours'")
    assert (await _enter(client, await _member(client, conn, program)))["offers"] == []
    await set_weather(client, tokens, program, store, 30)
    assert len((await _enter(client, await _member(client, conn, program)))["offers"]) == 1


async def test_ice_cream_is_not_issued_twice_the_same_day(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    await create_campaign(client, tokens, program, campaign_body(**ICE_CREAM))
    await set_weather(client, tokens, program, store, 28)
    gold = await _member(client, conn, program)
    assert len((await _enter(client, gold))["offers"]) == 1
    await _close_visits(conn)
    second = await _enter(client, gold, batch=[ping(*INSIDE, ago(5))])
    assert [v["event"] for v in second["visits"]] == ["enter"] and second["offers"] == []


async def test_the_same_batch_twice_gives_one_offer_with_or_without_an_idempotency_key(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    await create_campaign(client, tokens, program, campaign_body())
    me = await _member(client, conn, program)
    batch = [ping(*INSIDE, ago(30)), ping(*INSIDE, ago(20))]
    first = await _enter(client, me, key="batch-1", batch=batch)
    again = await _enter(client, me, key="batch-1", batch=batch)
    assert again == first and len(first["offers"]) == 1
    r = await client.post("/v1/me/pings", json={"pings": [ping(*INSIDE, ago(10))]}, headers=me)
    assert r.json()["offers"] == []  # same visit: no second offer
    assert await conn.fetchval("SELECT count(*) FROM offers") == 1


async def test_a_dwell_campaign_issues_once_the_member_has_stayed_long_enough(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    await create_campaign(client, tokens, program, campaign_body(
        trigger={"event": "dwell", "dwell_s": 120}))
    me = await _member(client, conn, program)
    r = await client.post("/v1/me/pings", json={"pings": [ping(*INSIDE, ago(200)),
                                                          ping(*INSIDE, ago(100))]}, headers=me)
    assert r.json()["offers"] == []  # inside for 100 s
    r = await client.post("/v1/me/pings", json={"pings": [ping(*INSIDE, ago(60))]}, headers=me)
    assert len(r.json()["offers"]) == 1  # inside for 140 s
    r = await client.post("/v1/me/pings", json={"pings": [ping(*INSIDE, ago(5))]}, headers=me)
    assert r.json()["offers"] == []


async def test_offers_need_location_consent_and_a_paused_campaign_issues_nothing(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    c = await create_campaign(client, tokens, program, campaign_body())
    _, no_consent = await signup(client, program, consents=["marketing"])
    r = await client.post("/v1/me/pings", json={"pings": [ping(*INSIDE, ago(5))]},
                          headers=no_consent)
    assert r.status_code == 403
    await client.post(f"/v1/programs/{program}/campaigns/{c['id']}/pause",
                      headers=manager(tokens, program))
    assert (await _enter(client, await _member(client, conn, program)))["offers"] == []


async def test_a_campaign_activated_paused_or_changed_takes_effect_on_the_very_next_ping(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    """The worker keeps the active campaigns in memory: every change must still be seen by
    the next batch, including after a batch that found no campaign at all."""
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    headers = manager(tokens, program)
    assert (await _enter(client, await _member(client, conn, program)))["offers"] == []
    c = await create_campaign(client, tokens, program, campaign_body())
    assert len((await _enter(client, await _member(client, conn, program)))["offers"]) == 1
    await client.post(f"/v1/programs/{program}/campaigns/{c['id']}/pause", headers=headers)
    assert (await _enter(client, await _member(client, conn, program)))["offers"] == []
    await client.post(f"/v1/programs/{program}/campaigns/{c['id']}/activate", headers=headers)
    r = await client.patch(f"/v1/programs/{program}/campaigns/{c['id']}", headers=headers,
                           json={"offer": {"title": "Changed", "body": "Show this at the till",
                                           "reward": {"kind": "percent_off", "value": 30},
                                           "valid_for_s": 3600}})
    assert r.status_code == 200, r.text
    got = (await _enter(client, await _member(client, conn, program)))["offers"]
    assert [(o["title"], o["reward"]["value"]) for o in got] == [("Changed", 30)]


# --- the till -----------------------------------------------------------------------------------


class Shop:
    def __init__(self, client: Client, tokens: TokenService, conn: asyncpg.Connection,
                 program: str, store: str, far_store: str) -> None:
        self.client, self.tokens, self.conn = client, tokens, conn
        self.program, self.store, self.far_store = program, store, far_store

    async def buy(self, member: dict[str, str], amount: int, offer_ids: list[str], *,
                  store: str | None = None, key: str | None = None) -> Any:
        store = store or self.store
        body = {"store_id": store, "qr_payload": await card_qr(self.client, member),
                "receipt_id": uuid.uuid4().hex, "amount": amount, "currency": "EUR",
                "redeem": {"offer_ids": offer_ids}}
        headers = {**staff(self.tokens, self.program, store),
                   "Idempotency-Key": key or uuid.uuid4().hex}
        return await self.client.post("/v1/pos/purchases", json=body, headers=headers)


async def _shop(client: Client, tokens: TokenService, conn: asyncpg.Connection) -> Shop:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    far = await create_store(client, tokens, program, code="FAR", zone=circle(2.5, 48.9))
    return Shop(client, tokens, conn, program, store, far)


async def _offers(shop: Shop, *rewards: tuple[str, int]) -> tuple[dict[str, str], dict[str, str]]:
    """One campaign per reward (valid at the first store only); a member who enters gets an
    offer of each. Returns (member headers, {reward kind: offer id})."""
    for kind, value in rewards:
        await create_campaign(shop.client, shop.tokens, shop.program, campaign_body(
            name=kind, reward=(kind, value), store_ids=[shop.store]))
    me = await _member(shop.client, shop.conn, shop.program, "silver")
    got = (await _enter(shop.client, me))["offers"]
    return me, {o["reward"]["kind"]: o["id"] for o in got}


async def test_each_reward_kind_is_applied_at_the_till(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    shop = await _shop(client, tokens, conn)
    me, offer = await _offers(shop, ("bonus_points", 50), ("points_multiplier", 3),
                              ("percent_off", 20), ("amount_off", 500))
    r = await shop.buy(me, 10_000, [offer["bonus_points"]])
    assert r.status_code == 201, r.text
    b = r.json()
    assert (b["points_earned"], b["points_bonus"], b["discount"]) == (100, 50, 0)
    assert b["points_balance"] == 150 and b["offers_redeemed"] == [offer["bonus_points"]]
    b = (await shop.buy(me, 10_000, [offer["points_multiplier"]])).json()
    assert (b["points_earned"], b["discount"], b["points_balance"]) == (300, 0, 450)
    b = (await shop.buy(me, 10_000, [offer["percent_off"]])).json()
    assert (b["points_earned"], b["discount"]) == (80, 2000)  # earned on 80.00
    b = (await shop.buy(me, 10_000, [offer["amount_off"]])).json()
    assert (b["points_earned"], b["discount"]) == (95, 500)
    statuses = {o["id"]: o["status"]
                for o in (await client.get("/v1/me/offers", headers=me)).json()["items"]}
    assert set(statuses.values()) == {"redeemed"}
    kinds = await conn.fetch("SELECT kind, points FROM ledger_entries WHERE kind = 'offer_bonus'")
    assert [(k["kind"], k["points"]) for k in kinds] == [("offer_bonus", 50)]


async def test_several_offers_combine_in_one_purchase(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    shop = await _shop(client, tokens, conn)
    me, offer = await _offers(shop, ("percent_off", 10), ("amount_off", 300),
                              ("points_multiplier", 2), ("bonus_points", 7))
    r = await shop.buy(me, 5_000, list(offer.values()))
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["discount"] == 800  # 10 % of 50.00, then 3.00 off
    assert b["points_earned"] == 84 and b["points_bonus"] == 7  # floor(42.00) × 2


async def test_an_offer_cannot_be_redeemed_twice(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    shop = await _shop(client, tokens, conn)
    me, offer = await _offers(shop, ("amount_off", 100))
    assert (await shop.buy(me, 1000, [offer["amount_off"]])).status_code == 201
    r = await shop.buy(me, 1000, [offer["amount_off"]])
    assert r.status_code == 422
    assert r.json()["type"] == "/problems/offer-already-redeemed"
    assert r.json()["field"] == "redeem.offer_ids[0]"


async def test_an_offer_cannot_be_redeemed_after_it_expired(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    shop = await _shop(client, tokens, conn)
    me, offer = await _offers(shop, ("amount_off", 100))
    await _expire(conn)
    r = await shop.buy(me, 1000, [offer["amount_off"]])
    assert r.status_code == 422 and r.json()["type"] == "/problems/offer-expired"
    assert (await client.get("/v1/me/offers", params={"status": "expired"},
                             headers=me)).json()["items"][0]["id"] == offer["amount_off"]


async def test_an_offer_cannot_be_redeemed_by_another_member(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    shop = await _shop(client, tokens, conn)
    _, offer = await _offers(shop, ("amount_off", 100))
    other = await _member(client, conn, shop.program, "silver")
    r = await shop.buy(other, 1000, [offer["amount_off"]])
    assert r.status_code == 422 and r.json()["field"] == "redeem.offer_ids[0]"
    assert "another" not in r.json()["detail"]  # the offer's existence is not revealed
    r = await shop.buy(other, 1000, [str(uuid.uuid4())])
    assert r.status_code == 422 and r.json()["detail"] == "no such offer for this member"


async def test_an_offer_cannot_be_redeemed_at_a_store_outside_its_campaign(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    shop = await _shop(client, tokens, conn)
    me, offer = await _offers(shop, ("amount_off", 100))
    r = await shop.buy(me, 1000, [offer["amount_off"]], store=shop.far_store)
    assert r.status_code == 422 and r.json()["type"] == "/problems/offer-not-valid-at-store"
    assert (await shop.buy(me, 1000, [offer["amount_off"]])).status_code == 201


async def test_a_scan_shows_the_offers_usable_at_that_store_until_redeemed(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    shop = await _shop(client, tokens, conn)
    me, offer = await _offers(shop, ("amount_off", 100))

    async def scan(store: str) -> list[str]:
        body = {"store_id": store, "card_number": await card_number(client, me)}
        headers = {**staff(tokens, shop.program, store), "Idempotency-Key": uuid.uuid4().hex}
        r = await client.post("/v1/pos/scan", json=body, headers=headers)
        assert r.status_code == 200, r.text
        return [o["id"] for o in r.json()["offers"]]

    assert await scan(shop.store) == [offer["amount_off"]]
    assert await scan(shop.far_store) == []  # the campaign is not valid there
    assert (await shop.buy(me, 1000, [offer["amount_off"]])).status_code == 201
    assert await scan(shop.store) == []


async def test_a_retried_purchase_replays_and_redeems_the_offer_once(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    shop = await _shop(client, tokens, conn)
    me, offer = await _offers(shop, ("bonus_points", 40))
    qr = await card_qr(client, me)
    body = {"store_id": shop.store, "qr_payload": qr, "receipt_id": "r-1", "amount": 1000,
            "currency": "EUR", "redeem": {"offer_ids": [offer["bonus_points"]]}}
    headers = {**staff(tokens, shop.program, shop.store), "Idempotency-Key": "k-1"}
    first = await client.post("/v1/pos/purchases", json=body, headers=headers)
    again = await client.post("/v1/pos/purchases", json=body, headers=headers)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert await conn.fetchval(
        "SELECT count(*) FROM ledger_entries WHERE kind = 'offer_bonus'") == 1


async def test_a_refund_takes_back_earned_points_but_the_offer_stays_redeemed(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    shop = await _shop(client, tokens, conn)
    me, offer = await _offers(shop, ("points_multiplier", 2))
    b = (await shop.buy(me, 10_000, [offer["points_multiplier"]])).json()
    assert b["points_earned"] == 200
    r = await client.post("/v1/pos/refunds", json={
        "store_id": shop.store, "transaction_id": b["transaction_id"]},
        headers={**staff(tokens, shop.program, shop.store), "Idempotency-Key": "refund"})
    assert r.status_code == 201, r.text
    assert r.json()["points_taken_back"] == 200 and r.json()["points_balance"] == 0
    (o,) = (await client.get("/v1/me/offers", headers=me)).json()["items"]
    assert o["status"] == "redeemed"


# --- stats --------------------------------------------------------------------------------------


async def test_stats_equal_the_counts_of_what_happened(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    shop = await _shop(client, tokens, conn)
    c = await create_campaign(client, tokens, shop.program, campaign_body(
        store_ids=[shop.store], reward=("amount_off", 100), **ICE_CREAM))
    await set_weather(client, tokens, shop.program, shop.store, 28)
    golds = [await _member(client, conn, shop.program) for _ in range(4)]
    silver = await _member(client, conn, shop.program, "silver")
    offers = [(await _enter(client, m))["offers"][0]["id"] for m in golds]
    assert (await _enter(client, silver))["offers"] == []
    assert (await shop.buy(golds[0], 2000, [offers[0]])).status_code == 201
    assert (await shop.buy(golds[1], 2000, [offers[1]])).status_code == 201
    await _expire(conn, offers[2])
    r = await client.get(f"/v1/programs/{shop.program}/campaigns/{c['id']}/stats",
                         headers=manager(tokens, shop.program))
    assert r.status_code == 200, r.text
    s = r.json()
    assert (s["issued"], s["redeemed"], s["expired"]) == (4, 2, 1)
    assert s["conversion_rate"] == 0.5
    assert s["by_store"] == [{"store_id": shop.store, "store_code": "S1",
                              "store_name": "Store S1", "visits": 5, "issued": 4,
                              "opened": 0, "redeemed": 2}]
    assert s["deliveries"]["pending"] == 0  # no webhook configured: in-app only
    assert await conn.fetchval("SELECT count(*) FROM offer_outbox") == 0
    r = await client.patch(f"/v1/programs/{shop.program}/campaigns/{c['id']}",
                           json={"caps": {"max_issued": 3}}, headers=manager(tokens, shop.program))
    assert r.status_code == 422 and r.json()["field"] == "caps.max_issued"


async def test_my_offers_are_mine_only_and_filter_by_status(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    shop = await _shop(client, tokens, conn)
    me, offer = await _offers(shop, ("amount_off", 100), ("bonus_points", 5))
    other = await _member(client, conn, shop.program)
    assert (await client.get("/v1/me/offers", headers=other)).json()["items"] == []
    await shop.buy(me, 1000, [offer["amount_off"]])
    active = (await client.get("/v1/me/offers", params={"status": "active"},
                               headers=me)).json()["items"]
    assert [o["id"] for o in active] == [offer["bonus_points"]]
    page = (await client.get("/v1/me/offers", params={"limit": 1}, headers=me)).json()
    rest = (await client.get("/v1/me/offers", params={"cursor": page["next_cursor"]},
                             headers=me)).json()
    assert {o["id"] for o in page["items"] + rest["items"]} == set(offer.values())
    staff_token = bearer(tokens.mint_access(sub=uuid.uuid4(), role="staff",
                                            program_id=uuid.UUID(shop.program)))
    assert (await client.get("/v1/me/offers", headers=staff_token)).status_code == 403
