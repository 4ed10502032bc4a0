"""The till's earn-only purchase goes through one statement (`wallet/ledger/earn_fast.py`);
what the client gets must not depend on which path answered: a retry with the same key gets
the first answer byte for byte, with a tiered program, and the worker's rules cache follows
a change of the program's rules."""

from __future__ import annotations

import json

import asyncpg
import pytest
from litestar import Litestar
from support import ledger_fixtures as fx
from support.helpers import Client
from support.till_helpers import Till


@pytest.fixture
async def till(client: Client, app: Litestar, conn: asyncpg.Connection) -> Till:
    pid = await fx.program(conn, tiers=[
        {"name": "silver", "min_points_12m": 0, "multiplier_milli": 1000},
        {"name": "gold", "min_points_12m": 30, "multiplier_milli": 1500}])
    return Till(client, app, conn, pid, await fx.store(conn, pid), await fx.store(conn, pid))


async def test_a_retried_earn_only_purchase_gets_the_first_answer_byte_for_byte(
        till: Till) -> None:
    m = await till.member(points=5)
    first = await till.buy(m, 4_150, key="till-1", receipt_id="R-1")
    assert first.status_code == 201, first.text
    again = await till.buy(m, 4_150, key="till-1", receipt_id="R-1")
    assert again.status_code == 201
    assert again.content == first.content
    assert (first.headers.get("idempotent-replayed"),
            again.headers.get("idempotent-replayed")) == (None, "true")
    body = first.json()
    assert (body["points_earned"], body["points_balance"], body["amount_due"]) == (41, 46, 4150)
    other = await till.buy(m, 4_151, key="till-1", receipt_id="R-1")
    assert other.status_code == 409


async def test_the_tier_reached_raises_the_next_purchase_and_a_rules_change_is_seen(
        till: Till) -> None:
    m = await till.member()
    assert (await till.buy(m, 3_000)).json()["points_earned"] == 30  # silver: now gold
    assert (await till.buy(m, 1_000)).json()["points_earned"] == 15  # gold: ×1.5
    await till.conn.execute("UPDATE programs SET tiers = $2::jsonb WHERE id = $1",
                            till.program_id, json.dumps([]))  # tiers removed
    assert (await till.buy(m, 1_000)).json()["points_earned"] == 10
    assert (await till.buy(m, 1_000)).json()["points_earned"] == 10
    assert await fx.ledger_sums(till.conn, m.account_id) == (65, 0, 65)
