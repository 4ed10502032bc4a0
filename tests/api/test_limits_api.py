"""A program's limits on money (issue 14, bug 7), through the API: the largest purchase, the
largest top-up and the purse's ceiling are program settings with sane defaults; each
violation is a 422 `/problems/limit-exceeded` naming the limit, and writes nothing."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from support import ledger_fixtures as fx
from support.helpers import PROGRAM, Client, admin
from support.till_helpers import PIN, Till, make_till

from api.auth.tokens import TokenService

DEFAULTS = {"max_purchase_amount": 1_000_000, "max_top_up_amount": 50_000,
            "max_stored_value_balance": 150_000}


@pytest.fixture
async def till(client: Client, app: Litestar, conn: asyncpg.Connection) -> Till:
    return await make_till(client, app, conn)


async def set_limits(till: Till, **limits: int) -> dict[str, Any]:
    r = await till.client.patch(f"/v1/programs/{till.program_id}", json={"limits": limits},
                                headers=admin(till.tokens))
    assert r.status_code == 200, r.text
    return dict(r.json()["limits"])


def refused(r: Any, limit: str, maximum: int, allowed: int) -> None:
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["type"] == "/problems/limit-exceeded"
    assert (body["limit"], body["maximum"], body["allowed"]) == (limit, maximum, allowed)
    assert body["field"] == "amount"
    assert limit in body["detail"]


async def top_up(till: Till, m: fx.Member, amount: int) -> Any:
    return await till.post("stored-value/top-ups", {
        "store_id": str(till.store_id), "card_number": m.card_number, "amount": amount,
        "currency": "EUR"})


async def test_a_program_has_limits_with_sane_defaults_and_changes_one_at_a_time(
        client: Client, tokens: TokenService) -> None:
    r = await client.post("/v1/programs", json=PROGRAM, headers=admin(tokens))
    assert r.status_code == 201, r.text
    assert r.json()["limits"] == DEFAULTS
    pid = r.json()["id"]
    r = await client.patch(f"/v1/programs/{pid}", json={"limits": {"max_top_up_amount": 20_000}},
                           headers=admin(tokens))
    assert r.status_code == 200, r.text
    assert r.json()["limits"] == {**DEFAULTS, "max_top_up_amount": 20_000}
    r = await client.get(f"/v1/programs/{pid}", headers=admin(tokens))
    assert r.json()["limits"] == {**DEFAULTS, "max_top_up_amount": 20_000}


@pytest.mark.parametrize(("limits", "field"), [
    ({"max_purchase_amount": 0}, "limits.max_purchase_amount"),
    ({"max_top_up_amount": -5}, "limits.max_top_up_amount"),
    ({"max_stored_value_balance": "150000"}, "limits.max_stored_value_balance"),
    ({"max_purse": 1}, "limits.max_purse"),
])
async def test_a_limit_that_is_not_a_positive_whole_amount_is_a_400_naming_it(
        client: Client, tokens: TokenService, limits: dict[str, Any], field: str) -> None:
    r = await client.post("/v1/programs", json={**PROGRAM, "limits": limits},
                          headers=admin(tokens))
    assert r.status_code == 400, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


async def test_limits_that_would_let_one_purchase_earn_absurd_points_are_refused(
        client: Client, tokens: TokenService) -> None:
    r = await client.post("/v1/programs", json={
        **PROGRAM, "earn_rate": {"points": 1000, "per_amount": 1},
        "limits": {"max_purchase_amount": 10**12}}, headers=admin(tokens))
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "limits.max_purchase_amount"


async def test_an_absurd_purchase_is_refused_naming_the_limit_and_earns_nothing(
        till: Till) -> None:
    m = await till.member(value=5_000)
    r = await till.buy(m, 10**12)
    refused(r, "max_purchase_amount", 1_000_000, 1_000_000)
    # with stored value too: refused before the PIN is even checked (no attempt counted)
    r = await till.buy(m, 2_000_000, stored_value={"amount": 100, "pin": "00000"})
    refused(r, "max_purchase_amount", 1_000_000, 1_000_000)
    assert await till.conn.fetchval("SELECT pin_failures FROM members WHERE id = $1", m.id) == 0
    after = await fx.snapshot(till.conn, m)
    assert (after.points, after.stored_value, after.transactions) == (0, 5_000, 0)
    r = await till.buy(m, 1_000_000)  # at the limit: accepted, with its points
    assert r.status_code == 201, r.text
    assert r.json()["points_earned"] == 10_000


async def test_a_program_sets_its_own_purchase_ceiling(till: Till) -> None:
    await set_limits(till, max_purchase_amount=50_000)
    m = await till.member()
    refused(await till.buy(m, 50_001), "max_purchase_amount", 50_000, 50_000)
    assert (await till.buy(m, 50_000)).status_code == 201


async def test_a_top_up_above_the_programs_top_up_limit_is_refused(till: Till) -> None:
    m = await till.member()
    refused(await top_up(till, m, 10**12), "max_top_up_amount", 50_000, 50_000)
    refused(await top_up(till, m, 50_001), "max_top_up_amount", 50_000, 50_000)
    r = await top_up(till, m, 50_000)
    assert r.status_code == 201, r.text
    assert r.json()["stored_value_balance"] == 50_000


async def test_the_purse_never_grows_above_its_ceiling(till: Till) -> None:
    await set_limits(till, max_top_up_amount=100_000, max_stored_value_balance=120_000)
    m = await till.member()
    assert (await top_up(till, m, 100_000)).status_code == 201
    refused(await top_up(till, m, 20_001), "max_stored_value_balance", 120_000, 20_000)
    r = await top_up(till, m, 20_000)  # exactly to the ceiling
    assert r.status_code == 201, r.text
    assert r.json()["stored_value_balance"] == 120_000
    refused(await top_up(till, m, 1), "max_stored_value_balance", 120_000, 0)
    assert (await fx.snapshot(till.conn, m)).stored_value == 120_000


async def test_a_lowered_ceiling_takes_nothing_away_and_spending_still_works(
        till: Till) -> None:
    m = await till.member(value=100_000)
    await set_limits(till, max_stored_value_balance=30_000)
    refused(await top_up(till, m, 1), "max_stored_value_balance", 30_000, 0)
    r = await till.buy(m, 10_000, stored_value={"amount": 10_000, "pin": PIN})
    assert r.status_code == 201, r.text
    assert r.json()["stored_value_balance"] == 90_000


async def test_a_refund_the_purse_cannot_take_goes_back_in_cash(till: Till) -> None:
    m = await till.member(value=40_000)
    bought = await till.buy(m, 40_000, stored_value={"amount": 40_000, "pin": PIN})
    assert bought.status_code == 201, bought.text
    await set_limits(till, max_top_up_amount=50_000, max_stored_value_balance=50_000)
    assert (await top_up(till, m, 30_000)).status_code == 201  # the purse: 30,000
    r = await till.post("refunds", {"store_id": str(till.store_id),
                                    "transaction_id": bought.json()["transaction_id"]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["refunded_amount"], body["stored_value_back"], body["cash_back"]) == (
        40_000, 20_000, 20_000)
    assert body["stored_value_balance"] == 50_000
