"""Idempotency-Key scoped per caller across routes (issue 14, bug 6; Stripe's rule): a key
names one request of its sender. The same key from the same caller on another route, or with
another body, is a 409 and runs nothing; another caller's key of the same name is its own.
Before, keys were scoped per caller *and route*: a purchase's key reused for a top-up ran
both."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support import ledger_fixtures as fx
from support.helpers import bearer

from api.auth.tokens import TokenService

Client = AsyncTestClient[Litestar]


class Till:
    def __init__(self, client: Client, tokens: TokenService, conn: asyncpg.Connection,
                 program_id: uuid.UUID, store_id: uuid.UUID) -> None:
        self.client, self.conn, self.store_id = client, conn, store_id
        self.tokens, self.program_id = tokens, program_id
        self.staff = self.new_staff()

    def new_staff(self) -> str:
        return self.tokens.mint_access(sub=uuid.uuid4(), role="staff",
                                       program_id=self.program_id, store_ids=[self.store_id])

    async def post(self, route: str, body: dict[str, Any], key: str,
                   token: str | None = None) -> Any:
        return await self.client.post(f"/v1/pos/{route}", json=body, headers={
            **bearer(token or self.staff), "Idempotency-Key": key})

    def purchase(self, m: fx.Member, amount: int = 1000) -> dict[str, Any]:
        return {"store_id": str(self.store_id), "card_number": m.card_number,
                "receipt_id": uuid.uuid4().hex, "amount": amount, "currency": "EUR"}

    def top_up(self, m: fx.Member, amount: int = 5000) -> dict[str, Any]:
        return {"store_id": str(self.store_id), "card_number": m.card_number,
                "amount": amount, "currency": "EUR"}


@pytest.fixture
async def till(client: Client, tokens: TokenService, conn: asyncpg.Connection) -> Till:
    pid = await fx.program(conn)
    return Till(client, tokens, conn, pid, await fx.store(conn, pid))


async def test_a_purchase_key_reused_for_a_top_up_is_409_and_the_top_up_does_not_run(
        till: Till) -> None:
    m = await fx.member(till.conn, till.program_id)
    assert (await till.post("purchases", till.purchase(m), "k-1")).status_code == 201
    r = await till.post("stored-value/top-ups", till.top_up(m), "k-1")
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["type"] == "/problems/idempotency-key-reused"
    assert "another route or body" in problem["detail"]
    snap = await fx.snapshot(till.conn, m)
    assert (snap.transactions, snap.stored_value, snap.points) == (1, 0, 10)


async def test_a_scan_key_reused_for_a_purchase_is_409_and_nothing_is_bought(
        till: Till) -> None:
    m = await fx.member(till.conn, till.program_id)
    scan = {"store_id": str(till.store_id), "card_number": m.card_number}
    assert (await till.post("scan", scan, "k-2")).status_code == 200
    r = await till.post("purchases", till.purchase(m), "k-2")
    assert r.status_code == 409, r.text
    assert (await fx.snapshot(till.conn, m)).transactions == 0


async def test_the_same_request_retried_still_replays_after_another_route_refused_it(
        till: Till) -> None:
    m = await fx.member(till.conn, till.program_id)
    body = till.top_up(m)
    first = await till.post("stored-value/top-ups", body, "k-3")
    assert (await till.post("purchases", till.purchase(m), "k-3")).status_code == 409
    again = await till.post("stored-value/top-ups", body, "k-3")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert (await fx.snapshot(till.conn, m)).stored_value == 5000


async def test_another_caller_using_the_same_key_is_not_affected(till: Till) -> None:
    m = await fx.member(till.conn, till.program_id)
    assert (await till.post("purchases", till.purchase(m), "shared")).status_code == 201
    other = till.new_staff()
    r = await till.post("stored-value/top-ups", till.top_up(m), "shared", token=other)
    assert r.status_code == 201, r.text
    r = await till.post("purchases", till.purchase(m), "shared", token=other)
    assert r.status_code == 409  # the other caller's own key, now taken by its top-up
    snap = await fx.snapshot(till.conn, m)
    assert (snap.transactions, snap.stored_value) == (2, 5000)
