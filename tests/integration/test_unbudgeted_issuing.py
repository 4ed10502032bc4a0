"""A campaign without a budget issues without an exclusive lock on its row (issue #13), and its
`issued` stays "offers issued so far" (geo/issuance_repo.py, geo/campaigns_repo.ISSUED):

* offers of one campaign in open transactions at once don't wait for each other; 200 offers
  from 8 connections in parallel are 200 offers, each counted once in `issued`, and the row's
  stored counter is never written;
* a pause racing an issue: the pause waits for the offer in flight (which counts), and an
  issue that comes after the pause began waits for it and then issues nothing;
* giving it a budget starts the counter at its offers so far (below them: refused, naming
  `caps.max_issued`); a budgeted campaign still counts on its row.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from support import ledger_fixtures as fx
from support.locks import wait_until_blocked

from geo import campaigns_repo, issuance_repo
from geo.campaigns import (
    CampaignRules,
    CampaignSpec,
    Caps,
    OfferTemplate,
    Schedule,
    Trigger,
)
from wallet.kernel.errors import RuleViolation
from wallet.offers.model import Reward

NOW = datetime.now(UTC)


def _spec(max_issued: int | None = None) -> CampaignSpec:
    return CampaignSpec(name="Welcome", store_ids=(), rules=CampaignRules(
        trigger=Trigger(event="enter"),
        schedule=Schedule(starts_at=NOW - timedelta(days=1), ends_at=NOW + timedelta(days=1)),
        offer=OfferTemplate(title="Welcome", body="Hello", valid_for_s=3600,
                            reward=Reward(kind="bonus_points", value=50)),
        caps=Caps(max_issued=max_issued)))


class World:
    def __init__(self, program: uuid.UUID, store: uuid.UUID, member: uuid.UUID,
                 campaign: uuid.UUID) -> None:
        self.program, self.store, self.member, self.campaign = program, store, member, campaign


async def _world(conn: asyncpg.Connection, max_issued: int | None = None) -> World:
    program = await fx.program(conn)
    store = await fx.store(conn, program)
    member = (await fx.member(conn, program)).id
    c = await campaigns_repo.insert(conn, program, _spec(max_issued))
    await conn.execute("UPDATE campaigns SET status = 'active' WHERE id = $1", c.id)
    return World(program, store, member, c.id)


async def _issue(conn: asyncpg.Connection, w: World, *, budgeted: bool = False) -> bool:
    """One offer of `w.campaign` for a new visit (what `geo.issuance` runs per offer)."""
    return await issuance_repo.issue_one(
        conn, uuid.uuid4(), w.campaign, w.program, w.member, uuid.uuid4(), w.store, "Welcome",
        "Hello", "bonus_points", 50, NOW, NOW + timedelta(hours=1), None, "{}",
        budgeted=budgeted) is not None


async def _issued(conn: asyncpg.Connection, w: World) -> tuple[int, int]:
    """(`issued` as the API shows it, the counter stored in the row)."""
    shown = (await campaigns_repo.get(conn, w.program, w.campaign)).issued
    return shown, await conn.fetchval("SELECT issued FROM campaigns WHERE id = $1", w.campaign)


@contextlib.asynccontextmanager
async def _two(db_url: str) -> AsyncIterator[tuple[asyncpg.Connection, asyncpg.Connection]]:
    """Two connections of their own (each its own backend), closed after."""
    first, second = await asyncpg.connect(db_url), await asyncpg.connect(db_url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_unbudgeted_offers_in_open_transactions_do_not_wait_for_each_other(
        conn: asyncpg.Connection, db_url: str) -> None:
    w = await _world(conn)
    async with _two(db_url) as (first, second), first.transaction(), second.transaction():
        assert await _issue(first, w)
        # a wait on the first's lock would be an error here, not a hang
        await second.execute("SET LOCAL lock_timeout = '10s'")
        assert await _issue(second, w)
    assert await _issued(conn, w) == (2, 0)


async def test_200_unbudgeted_offers_from_8_connections_are_each_counted_once(
        conn: asyncpg.Connection, db_url: str) -> None:
    w = await _world(conn)
    async with asyncpg.create_pool(db_url, min_size=8, max_size=8) as pool:

        async def one() -> bool:
            async with pool.acquire() as c, c.transaction():
                return await _issue(c, w)

        results = await asyncio.gather(*(one() for _ in range(200)))
    assert all(results)
    assert await conn.fetchval("SELECT count(*) FROM offers WHERE campaign_id = $1",
                               w.campaign) == 200
    assert await _issued(conn, w) == (200, 0)
    listed = await campaigns_repo.page(conn, w.program, status=None, after=None, limit=10)
    assert [c.issued for c in listed] == [200]


async def test_a_pause_waits_for_the_offer_in_flight_and_later_issues_see_it(
        conn: asyncpg.Connection, db_url: str) -> None:
    w = await _world(conn)
    async with _two(db_url) as (issuer, manager):
        tx = issuer.transaction()
        await tx.start()
        assert await _issue(issuer, w)
        pause = asyncio.ensure_future(manager.execute(
            "UPDATE campaigns SET status = 'paused' WHERE id = $1", w.campaign))
        await wait_until_blocked(conn, manager.get_server_pid(), issuer.get_server_pid(),
                                 running=pause)
        await tx.commit()
        await pause
        assert not await _issue(issuer, w)
    assert await _issued(conn, w) == (1, 0)


async def test_an_issue_that_comes_after_a_pause_began_waits_and_issues_nothing(
        conn: asyncpg.Connection, db_url: str) -> None:
    w = await _world(conn)
    async with _two(db_url) as (issuer, manager):
        tx = manager.transaction()
        await tx.start()
        await manager.execute("UPDATE campaigns SET status = 'paused' WHERE id = $1",
                              w.campaign)
        issue = asyncio.ensure_future(_issue(issuer, w))
        await wait_until_blocked(conn, issuer.get_server_pid(), manager.get_server_pid(),
                                 running=issue)
        await tx.commit()
        assert not await issue
    assert await _issued(conn, w) == (0, 0)


async def test_giving_a_budget_starts_the_counter_at_the_offers_so_far(
        conn: asyncpg.Connection) -> None:
    w = await _world(conn)
    for _ in range(3):
        assert await _issue(conn, w)
    async with conn.transaction():
        await campaigns_repo.get(conn, w.program, w.campaign, for_update=True)
        with pytest.raises(RuleViolation) as low:
            async with conn.transaction():
                await campaigns_repo.update(conn, w.campaign, _spec(2), NOW)
        assert low.value.field == "caps.max_issued"
        after = await campaigns_repo.update(conn, w.campaign, _spec(4), NOW)
    assert after.issued == 3
    assert not await _issue(conn, w), "the unbudgeted statement refuses a budgeted campaign"
    assert await _issue(conn, w, budgeted=True)
    assert not await _issue(conn, w, budgeted=True), "budget of 4 spent"
    assert await _issued(conn, w) == (4, 4)
    async with conn.transaction():
        await campaigns_repo.get(conn, w.program, w.campaign, for_update=True)
        await campaigns_repo.update(conn, w.campaign, _spec(None), NOW)
    assert not await _issue(conn, w, budgeted=True), "the budget statement refuses it now"
    assert await _issue(conn, w)
    assert await _issued(conn, w) == (5, 4)
