"""Refunds across stores (issue 14, bug 8): most chains take returns at any store, so it stays
allowed by default, but it is the program's setting (`cross_store_refunds`); the refund is
recorded at the store that gives the money back, and the member's access log says the till
read another store's purchase. Everything through the HTTP API."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from support.campaign_helpers import card_number
from support.helpers import (
    Client,
    admin,
    create_program,
    create_store,
    signup,
    staff,
)

from api.auth.tokens import TokenService


class Chain:
    """A program with stores A and B, a staff account at each, and one member."""

    def __init__(self, client: Client, tokens: TokenService) -> None:
        self.client, self.tokens = client, tokens
        self.program_id = self.a = self.b = self.card = ""
        self.member: dict[str, str] = {}

    async def build(self) -> Chain:
        self.program_id = await create_program(self.client, self.tokens)
        self.a = await create_store(self.client, self.tokens, self.program_id, code="A0")
        self.b = await create_store(self.client, self.tokens, self.program_id, code="A1")
        _, self.member = await signup(self.client, self.program_id)
        self.card = await card_number(self.client, self.member)
        return self

    async def till(self, store: str, route: str, body: dict[str, Any]) -> Any:
        return await self.client.post(f"/v1/pos/{route}", json={"store_id": store, **body},
                                      headers={**staff(self.tokens, self.program_id, store),
                                               "Idempotency-Key": uuid.uuid4().hex})

    async def buy_at_a(self, receipt: str, amount: int = 2000) -> str:
        r = await self.till(self.a, "purchases", {
            "card_number": self.card, "receipt_id": receipt, "amount": amount,
            "currency": "EUR"})
        assert r.status_code == 201, r.text
        return str(r.json()["transaction_id"])

    async def transactions(self, store: str) -> list[dict[str, Any]]:
        r = await self.client.get(f"/v1/pos/stores/{store}/transactions",
                                  headers=staff(self.tokens, self.program_id, store))
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    async def access_log(self) -> list[dict[str, Any]]:
        r = await self.client.get("/v1/me/access-log", headers=self.member)
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    async def set_cross_store_refunds(self, allowed: bool) -> None:
        r = await self.client.patch(f"/v1/programs/{self.program_id}",
                                    json={"cross_store_refunds": allowed},
                                    headers=admin(self.tokens))
        assert r.status_code == 200, r.text
        assert r.json()["cross_store_refunds"] is allowed


@pytest.fixture
async def chain(client: Client, tokens: TokenService) -> Chain:
    return await Chain(client, tokens).build()


async def test_by_default_a_purchase_of_store_a_is_refunded_at_store_b_and_recorded_there(
        chain: Chain) -> None:
    r = await chain.client.get(f"/v1/programs/{chain.program_id}", headers=admin(chain.tokens))
    assert r.json()["cross_store_refunds"] is True
    sale = await chain.buy_at_a("R-1")
    r = await chain.till(chain.b, "refunds", {"transaction_id": sale, "amount": 500})
    assert r.status_code == 201, r.text
    refund = r.json()
    assert (refund["original_transaction_id"], refund["refunded_amount"]) == (sale, 500)

    at_b = await chain.transactions(chain.b)
    assert [(t["id"], t["kind"], t["original_transaction_id"]) for t in at_b] == [
        (refund["transaction_id"], "refund", sale)]
    at_a = await chain.transactions(chain.a)
    assert [(t["id"], t["kind"], t["refunded_amount"]) for t in at_a] == [
        (sale, "purchase", 500)]

    # The member sees that store B's till read a purchase of another store.
    log = await chain.access_log()
    assert (log[0]["action"], log[0]["store_id"]) == ("till.refund_other_store", chain.b)
    assert [e["action"] for e in log].count("till.refund_other_store") == 1


async def test_a_refund_at_the_store_of_the_purchase_is_logged_as_a_plain_refund(
        chain: Chain) -> None:
    sale = await chain.buy_at_a("R-2")
    assert (await chain.till(chain.a, "refunds", {"transaction_id": sale})).status_code == 201
    log = await chain.access_log()
    assert (log[0]["action"], log[0]["store_id"]) == ("till.refund", chain.a)


async def test_a_receipt_of_another_store_is_found_with_receipt_store_id(chain: Chain) -> None:
    sale = await chain.buy_at_a("R-3")
    r = await chain.till(chain.b, "refunds", {"receipt_id": "R-3"})
    assert r.status_code == 404 and r.json()["field"] == "receipt_id"  # not a B receipt
    r = await chain.till(chain.b, "refunds", {"receipt_id": "R-3", "receipt_store_id": chain.a})
    assert r.status_code == 201, r.text
    assert r.json()["original_transaction_id"] == sale
    other_program = await create_program(chain.client, chain.tokens)
    elsewhere = await create_store(chain.client, chain.tokens, other_program, code="X1")
    r = await chain.till(chain.b, "refunds", {"receipt_id": "R-3",
                                              "receipt_store_id": elsewhere})
    assert r.status_code == 404 and r.json()["field"] == "receipt_id"
    r = await chain.till(chain.b, "refunds", {"transaction_id": sale,
                                              "receipt_store_id": chain.a})
    assert r.status_code == 400


async def test_with_the_setting_off_only_the_store_of_the_purchase_refunds_it(
        chain: Chain) -> None:
    sale = await chain.buy_at_a("R-4")
    await chain.set_cross_store_refunds(False)
    for body, field in (({"transaction_id": sale}, "transaction_id"),
                        ({"receipt_id": "R-4", "receipt_store_id": chain.a}, "receipt_id")):
        r = await chain.till(chain.b, "refunds", body)
        assert r.status_code == 422, r.text
        assert r.json()["type"] == "/problems/cross-store-refund-disabled"
        assert r.json()["field"] == field
    assert await chain.transactions(chain.b) == []
    assert (await chain.transactions(chain.a))[0]["refunded_amount"] == 0
    r = await chain.till(chain.a, "refunds", {"transaction_id": sale})
    assert r.status_code == 201, r.text
    await chain.set_cross_store_refunds(True)
    sale = await chain.buy_at_a("R-5")
    assert (await chain.till(chain.b, "refunds", {"transaction_id": sale})).status_code == 201
