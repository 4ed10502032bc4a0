"""What the till answers tells the cashier what to do: the amount left to pay after
discounts and stored value, how many PIN attempts are left, until when a PIN is locked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from litestar import Litestar
from support import ledger_fixtures as fx
from support.helpers import Client
from support.till_helpers import PIN, Till, make_till


@pytest.fixture
async def till(client: Client, app: Litestar, conn: asyncpg.Connection) -> Till:
    return await make_till(client, app, conn)


async def test_the_purchase_answer_says_what_is_left_to_pay(till: Till) -> None:
    m = await till.member(value=1000)
    r = await till.buy(m, 2450, stored_value={"amount": 700, "pin": PIN})
    assert r.status_code == 201, r.text
    assert r.json()["amount_due"] == 1750
    r = await till.buy(m, 300, stored_value={"amount": 300, "pin": PIN})
    assert r.json()["amount_due"] == 0  # paid in full from stored value
    r = await till.buy(m, 999)
    assert r.json()["amount_due"] == 999


async def test_a_wrong_pin_says_how_many_attempts_are_left(till: Till) -> None:
    m = await till.member(value=1000)
    limit = till.app.state.settings.pin_max_attempts
    for attempt in range(1, limit):
        r = await till.buy(m, 100, stored_value={"amount": 100, "pin": "00000"})
        assert r.status_code == 422
        problem = r.json()
        assert problem["type"] == "/problems/wrong-pin"
        assert problem["attempts_left"] == limit - attempt
        assert f"{limit - attempt} attempt" in problem["detail"]


async def test_the_locking_attempt_and_later_ones_say_until_when(till: Till) -> None:
    m = await till.member(value=1000)
    limit = till.app.state.settings.pin_max_attempts
    before = datetime.now(UTC)
    for _ in range(limit):
        r = await till.buy(m, 100, stored_value={"amount": 100, "pin": "00000"})
    problem = r.json()
    assert problem["type"] == "/problems/pin-locked" and problem["attempts_left"] == 0
    until = datetime.fromisoformat(problem["locked_until"])
    lock_s = till.app.state.settings.pin_lock_s
    assert before + timedelta(seconds=lock_s - 5) <= until <= datetime.now(UTC) + timedelta(
        seconds=lock_s)
    r = await till.buy(m, 100, stored_value={"amount": 100, "pin": PIN})  # right, but locked
    assert r.json()["type"] == "/problems/pin-locked"
    assert datetime.fromisoformat(r.json()["locked_until"]) == until
    assert until.isoformat(timespec="seconds")[:19] in r.json()["detail"]
    assert (await fx.snapshot(till.conn, m)).stored_value == 1000
