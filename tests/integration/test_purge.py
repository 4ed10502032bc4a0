"""`loyalty purge`: with the clock moved past each retention period, exactly what is due goes
(deleted, anonymised or erased), nothing more; a second run finds nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from support import ledger_fixtures as fx

from api.config import Settings
from api.jobs import run_job
from wallet.kernel import db as ledger
from wallet.privacy.purge import PURGE_LOCK, PurgeReport, purge
from wallet.privacy.retention import RetentionPolicy

NOW = datetime(2031, 6, 1, 12, 0, tzinfo=UTC)
EPS = timedelta(seconds=1)
POLICY = RetentionPolicy(
    visits=timedelta(days=30), raw_pings=timedelta(hours=1),
    expired_offers=timedelta(days=7), access_log=timedelta(days=90),
    withdrawn_consents=timedelta(days=365), idle_accounts=timedelta(days=700),
    idempotency_keys=timedelta(hours=24), sessions=timedelta(days=30))


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    try:
        yield p
    finally:
        await p.close()


async def ids(conn: asyncpg.Connection, sql: str) -> set[str]:
    return {str(r[0]) for r in await conn.fetch(sql)}


async def test_purge_removes_exactly_what_is_past_each_period_and_nothing_more(
        conn: asyncpg.Connection, pool: asyncpg.Pool) -> None:
    pid = await fx.program(conn)
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    await conn.execute("UPDATE members SET last_active_at = $1", NOW)

    def due(period: timedelta) -> datetime:
        return NOW - period - EPS

    def kept(period: timedelta) -> datetime:
        return NOW - period + EPS

    visit = "INSERT INTO visits (id, member_id, program_id, store_id, entered_at, " \
            "last_seen_at, exited_at) " \
            "VALUES ($1, $2, $3, $4, $5::timestamptz - interval '1 hour', $5, $6)"
    for name, at, exited in (("v-due", due(POLICY.visits), True),
                             ("v-kept", kept(POLICY.visits), True),
                             ("v-open-due", due(POLICY.visits), False)):
        sid_n = await fx.store(conn, pid) if not exited else sid
        await conn.execute(visit, uuid.uuid5(uuid.NAMESPACE_OID, name), m.id, pid, sid_n, at,
                           at if exited else None)
    await conn.execute(visit, uuid.uuid5(uuid.NAMESPACE_OID, "v-kept-2"), m.id, pid,
                       await fx.store(conn, pid), kept(POLICY.visits), None)
    for at in (due(POLICY.raw_pings), kept(POLICY.raw_pings)):
        await conn.execute("INSERT INTO raw_pings (member_id, at, lat, lon, accuracy_m, "
                           "expires_at) VALUES ($1, $2, 48.8, 2.3, 10, $2)", m.id, at)

    campaign = uuid.uuid4()
    await conn.execute("INSERT INTO campaigns (id, program_id, name, rules, starts_at, ends_at)"
                       " VALUES ($1, $2, 'c', '{}', $3, $4)", campaign, pid,
                       NOW - timedelta(days=60), NOW)
    offers = {"o-due": due(POLICY.expired_offers), "o-kept": kept(POLICY.expired_offers)}
    for name, expires in offers.items():
        oid = uuid.uuid5(uuid.NAMESPACE_OID, name)
        await conn.execute(
            "INSERT INTO offers (id, program_id, campaign_id, campaign_revision, member_id, "
            "visit_id, store_id, title, body, reward_kind, reward_value, issued_at, expires_at)"
            " VALUES ($1, $2, $3, 1, $4, $5, $6, 't', 'b', 'bonus_points', 5, $7, $8)",
            oid, pid, campaign, m.id, uuid.uuid4(), sid, expires - timedelta(hours=1), expires)
        await conn.execute("INSERT INTO offer_outbox (offer_id, campaign_id, payload, "
                           "next_attempt_at) VALUES ($1, $2, $3, $4)", oid, campaign,
                           json.dumps({"member_id": str(m.id)}), expires)

    for name, at in (("a-due", due(POLICY.access_log)), ("a-kept", kept(POLICY.access_log))):
        await conn.execute("INSERT INTO access_log (id, at, member_id, program_id, actor_id, "
                           "actor_role, action, purpose) VALUES ($1, $2, $3, $4, $5, 'staff', "
                           "'till.scan', 'till_service')", uuid.uuid5(uuid.NAMESPACE_OID, name),
                           at, m.id, pid, uuid.uuid4())

    consent = "INSERT INTO member_consents (member_id, purpose, granted, policy_version, " \
              "source, recorded_at) VALUES ($1, $2, $3, 'v1', 'app', $4)"
    old = NOW - timedelta(days=2000)
    for purpose, rows in (
            ("marketing", [(True, old), (False, due(POLICY.withdrawn_consents))]),  # due
            ("location_offers", [(True, old), (False, kept(POLICY.withdrawn_consents))]),
            ("personalisation", [(False, old), (True, old + EPS)])):  # granted again
        for granted, at in rows:
            await conn.execute(consent, m.id, purpose, granted, at)

    for name, at in (("k-due", due(POLICY.idempotency_keys)),
                     ("k-kept", kept(POLICY.idempotency_keys))):
        await conn.execute("INSERT INTO idempotency_keys (scope, key, request_hash, "
                           "status_code, response_body, created_at) VALUES ('s', $1, '', 200, "
                           "'', $2)", name, at)
    for name, expires in (("t-due", NOW), ("t-kept", NOW + EPS)):
        await conn.execute("INSERT INTO refresh_tokens (token_hash, family_id, subject_id, "
                           "role, expires_at) VALUES ($1, $2, $3, 'member', $4)",
                           name.encode(), uuid.uuid4(), m.id, expires)

    idle, with_value, shopper, back = [await fx.member(conn, pid) for _ in range(4)]
    await fx.credit(conn, with_value, stored_value=100)
    await conn.execute("INSERT INTO transactions (id, program_id, wallet_account_id, store_id, "
                       "kind, amount, currency, at) VALUES ($1, $2, $3, $4, 'topup', 0, 'EUR',"
                       " $5)", uuid.uuid4(), pid, shopper.account_id, sid,
                       kept(POLICY.idle_accounts))
    for x in (idle, with_value, shopper):
        await conn.execute("UPDATE members SET last_active_at = $2 WHERE id = $1", x.id,
                           due(POLICY.idle_accounts))
    await conn.execute("UPDATE members SET last_active_at = $2 WHERE id = $1", back.id,
                       kept(POLICY.idle_accounts))

    report = await purge(pool, POLICY, now=NOW)

    assert report == PurgeReport(visits=2, raw_pings=1, expired_offers=1, access_log=1,
                                 withdrawn_consents=2, idle_accounts=1,
                                 idle_with_stored_value=1, idempotency_keys=1, sessions=1)
    name = {str(uuid.uuid5(uuid.NAMESPACE_OID, n)): n
            for n in ("v-kept", "v-kept-2", "o-kept", "a-kept")}
    assert {name[i] for i in await ids(conn, "SELECT id FROM visits")} == {"v-kept", "v-kept-2"}
    assert await conn.fetchval("SELECT count(*) FROM raw_pings") == 1
    assert {name.get(i, i) for i in await ids(
        conn, "SELECT id FROM offers WHERE member_id IS NOT NULL")} == {"o-kept"}
    assert await conn.fetchval("SELECT count(*) FROM offers") == 2  # stats keep counting
    payloads = [r[0] for r in await conn.fetch("SELECT payload::text FROM offer_outbox")]
    assert sorted(payloads) == sorted(["{}", json.dumps({"member_id": str(m.id)})])
    assert {name[i] for i in await ids(conn, "SELECT id FROM access_log")} == {"a-kept"}
    assert [tuple(r) for r in await conn.fetch(
        "SELECT purpose, granted FROM member_consents WHERE member_id = $1 ORDER BY id",
        m.id)] == [("location_offers", True), ("location_offers", False),
                   ("personalisation", False), ("personalisation", True)]
    assert await ids(conn, "SELECT key FROM idempotency_keys") == {"k-kept"}
    assert await conn.fetchval("SELECT count(*) FROM refresh_tokens") == 1
    assert await ids(conn, "SELECT id FROM members") == {
        str(x.id) for x in (m, with_value, shopper, back)}
    assert await conn.fetchval("SELECT count(*) FROM wallet_accounts") == 5  # books stay

    assert await purge(pool, POLICY, now=NOW) == PurgeReport(idle_with_stored_value=1)


async def test_a_purge_while_another_runs_skips_its_round(
        conn: asyncpg.Connection, pool: asyncpg.Pool) -> None:
    async with conn.transaction():
        assert await ledger.try_job_lock(conn, PURGE_LOCK)
        assert (await purge(pool, POLICY, now=NOW)).skipped
    assert not (await purge(pool, POLICY, now=NOW)).skipped


async def test_loyalty_purge_runs_with_the_configured_periods(
        db_url: str, settings: Settings) -> None:
    first, second = await asyncio.gather(run_job("purge", db_url, settings),
                                         run_job("purge", db_url, settings))
    assert "purge: visits 0, raw_pings 0" in first + second
