"""Refunds are in what was paid: a purchase of 2,450 with an offer taking 490 off gives back
at most 1,960, and the answer says how much goes back by card or in cash and how much to the
purse; a purchase is found by its receipt as well as by its transaction id. Everything goes
through the HTTP API: offers come from a campaign and a ping, as in production."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from support.campaign_helpers import campaign_body, card_number, create_campaign
from support.helpers import (
    INSIDE,
    Client,
    ago,
    bearer,
    create_program,
    create_store,
    ping,
    signup,
)

from api.auth.tokens import TokenService

PASSWORD = "a long enough password"  # the one `signup` uses
PIN = "13579"


class Shop:
    def __init__(self, client: Client, tokens: TokenService, program_id: str,
                 store_id: str, other_store: str) -> None:
        self.client, self.tokens = client, tokens
        self.program_id, self.store_id, self.other_store = program_id, store_id, other_store
        self.staff = bearer(tokens.mint_access(
            sub=uuid.uuid4(), role="staff", program_id=uuid.UUID(program_id),
            store_ids=[uuid.UUID(store_id), uuid.UUID(other_store)]))

    async def till(self, path: str, body: dict[str, Any], key: str | None = None) -> Any:
        return await self.client.post(
            f"/v1/pos/{path}", json={"store_id": self.store_id, **body},
            headers={**self.staff, "Idempotency-Key": key or uuid.uuid4().hex})

    async def refundable(self, receipt_id: str) -> bool:
        """What the till's list of recent transactions says of this purchase."""
        r = await self.client.get(f"/v1/pos/stores/{self.store_id}/transactions",
                                  headers=self.staff)
        assert r.status_code == 200, r.text
        (sale,) = [t for t in r.json()["items"] if t["receipt_id"] == receipt_id]
        return bool(sale["refundable"])

    async def member_with_offer(self, reward: tuple[str, int], *, value: int = 0,
                                points: int = 0) -> tuple[dict[str, str], str, str]:
        """A member holding one offer of `reward` and `value` of stored value (PIN set):
        (headers, card number, offer id)."""
        await create_campaign(self.client, self.tokens, self.program_id, campaign_body(
            name=f"{reward[0]} {uuid.uuid4().hex[:6]}", reward=reward,
            store_ids=[self.store_id]))
        _, me = await signup(self.client, self.program_id, consents=["location_offers"])
        r = await self.client.post("/v1/me/pings", headers=me,
                                   json={"pings": [ping(*INSIDE, ago(20))]})
        offers = [o for o in r.json()["offers"] if o["reward"]["kind"] == reward[0]]
        assert len(offers) == 1, r.text
        r = await self.client.put("/v1/me/pin", headers=me,
                                  json={"pin": PIN, "password": PASSWORD})
        assert r.status_code == 204, r.text
        card = await card_number(self.client, me)
        if value:
            r = await self.till("stored-value/top-ups", {"card_number": card, "amount": value,
                                                         "currency": "EUR"})
            assert r.status_code == 201, r.text
        if points:  # earned at the till, on a purchase of its own
            r = await self.till("purchases", {"card_number": card, "receipt_id": "EARN",
                                              "amount": points * 100, "currency": "EUR"})
            assert r.status_code == 201, r.text
        return me, card, offers[0]["id"]


@pytest.fixture
async def shop(client: Client, tokens: TokenService) -> Shop:
    pid = await create_program(client, tokens)
    sid = await create_store(client, tokens, pid)
    other = await create_store(client, tokens, pid, code="S2")
    return Shop(client, tokens, pid, sid, other)


async def _buy_2450_with_490_off(shop: Shop) -> tuple[dict[str, str], dict[str, Any], str]:
    me, card, offer = await shop.member_with_offer(("percent_off", 20), value=3000)
    r = await shop.till("purchases", {
        "card_number": card, "receipt_id": "R-2450", "amount": 2450, "currency": "EUR",
        "redeem": {"offer_ids": [offer]}, "stored_value": {"amount": 1000, "pin": PIN}})
    assert r.status_code == 201, r.text
    return me, r.json(), card


async def test_a_refund_by_receipt_gives_back_what_was_paid_split_by_how_it_was_paid(
        shop: Shop) -> None:
    me, bought, _ = await _buy_2450_with_490_off(shop)
    assert (bought["discount"], bought["stored_value_spent"], bought["amount_due"]) == (
        490, 1000, 960)
    assert await shop.refundable("R-2450") is True
    r = await shop.till("refunds", {"receipt_id": "R-2450"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["refunded_amount"], out["cash_back"], out["stored_value_back"]) == (
        1960, 960, 1000)
    assert out["remaining_refundable"] == 0
    assert out["original_transaction_id"] == bought["transaction_id"]
    assert out["points_taken_back"] == bought["points_earned"] == 19
    assert (await shop.client.get("/v1/me", headers=me)).json()["stored_value_balance"] == 3000
    r = await shop.till("refunds", {"receipt_id": "R-2450", "amount": 1})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "receipt_id" and "fully refunded" in r.json()["detail"]
    assert await shop.refundable("R-2450") is False  # the till offers no refund any more


async def test_partial_refunds_are_capped_at_what_was_paid_and_split_in_proportion(
        shop: Shop) -> None:
    _, bought, _ = await _buy_2450_with_490_off(shop)
    tx = bought["transaction_id"]
    first = (await shop.till("refunds", {"transaction_id": tx, "amount": 980})).json()
    assert (first["cash_back"], first["stored_value_back"]) == (480, 500)
    assert first["remaining_refundable"] == 980
    over = await shop.till("refunds", {"transaction_id": tx, "amount": 981})
    assert over.status_code == 422 and over.json()["field"] == "amount"
    assert "980" in over.json()["detail"]
    rest = (await shop.till("refunds", {"transaction_id": tx})).json()
    assert (rest["refunded_amount"], rest["cash_back"], rest["stored_value_back"]) == (
        980, 480, 500)
    assert first["cash_back"] + rest["cash_back"] == 960  # what was paid by card or cash


async def test_a_receipt_is_found_in_the_tills_store_only_and_one_reference_is_required(
        shop: Shop) -> None:
    await _buy_2450_with_490_off(shop)
    r = await shop.till("refunds", {"store_id": shop.other_store, "receipt_id": "R-2450"})
    assert r.status_code == 404 and r.json()["field"] == "receipt_id"
    r = await shop.till("refunds", {"receipt_id": "R-nope"})
    assert r.status_code == 404 and r.json()["field"] == "receipt_id"
    r = await shop.till("refunds", {})
    assert r.status_code == 400 and "receipt_id" in r.json()["detail"]
    r = await shop.till("refunds", {"receipt_id": "R-2450",
                                    "transaction_id": str(uuid.uuid4())})
    assert r.status_code == 400


async def test_a_purchase_nothing_was_paid_for_is_refunded_whole_once(shop: Shop) -> None:
    me, card, offer = await shop.member_with_offer(("amount_off", 500), points=30)
    r = await shop.till("purchases", {
        "card_number": card, "receipt_id": "FREE", "amount": 500, "currency": "EUR",
        "redeem": {"offer_ids": [offer], "points": 20, "pin": PIN}})
    assert r.status_code == 201, r.text
    assert (r.json()["discount"], r.json()["amount_due"]) == (500, 0)
    r = await shop.till("refunds", {"receipt_id": "FREE", "amount": 1})
    assert r.status_code == 422 and r.json()["field"] == "amount"
    assert await shop.refundable("FREE") is True
    r = await shop.till("refunds", {"receipt_id": "FREE"})
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["refunded_amount"], out["cash_back"], out["points_returned"]) == (0, 0, 20)
    assert (await shop.client.get("/v1/me", headers=me)).json()["points_balance"] == 30
    r = await shop.till("refunds", {"receipt_id": "FREE"})
    assert r.status_code == 422 and "fully refunded" in r.json()["detail"]
    assert await shop.refundable("FREE") is False
