"""/metrics tells an operator the truth (issue 10, item 11): a 401 from the token check is a
401, purchases are counted once, and the pool, the offer outbox, the background jobs and PIN
lockouts are there. Every figure is read from /metrics as a Prometheus server would."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from support import ledger_fixtures as fx
from support.campaign_helpers import campaign_body, create_campaign
from support.helpers import INSIDE, ago, bearer, create_program, create_store, ping, signup

from api import metrics
from api.app import create_app
from api.auth.tokens import TokenService
from api.config import Settings

Client = AsyncTestClient[Litestar]


async def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_a_401_from_the_token_check_is_counted_as_401_not_500(client: Client) -> None:
    route = {"method": "GET", "route": "/v1/me"}
    before = await scrape(client)
    for headers in ({}, bearer("not-a-token")):
        assert (await client.get("/v1/me", headers=headers)).status_code == 401
    after = await scrape(client)
    assert value(after, "http_requests_total", **route, status="401") == value(
        before, "http_requests_total", **route, status="401") + 2
    assert value(after, "http_requests_total", **route, status="500") == value(
        before, "http_requests_total", **route, status="500") == 0


async def test_purchases_are_counted_once_and_pin_lockouts_are_reported(
        client: Client, tokens: TokenService, conn: asyncpg.Connection, app: Litestar) -> None:
    pid = await fx.program(conn)
    store = await fx.store(conn, pid)
    m = await fx.member(conn, pid, pin_hash=app.state.hasher.hash("12345"))
    await fx.credit(conn, m, stored_value=1000)
    headers = bearer(tokens.mint_access(sub=uuid.uuid4(), role="staff", program_id=pid,
                                        store_ids=[store]))

    async def buy(key: str, **extra: object) -> int:
        body = {"store_id": str(store), "card_number": m.card_number, "receipt_id": key,
                "amount": 500, "currency": "EUR", **extra}
        r = await client.post("/v1/pos/purchases", json=body,
                              headers={**headers, "Idempotency-Key": key})
        return r.status_code

    before = await scrape(client)
    assert await buy("a") == 201
    assert await buy("a") == 201  # a retry replays the first answer: not a second purchase
    assert await buy("b") == 201
    mid = await scrape(client)
    assert value(mid, "pos_purchases_total") == value(before, "pos_purchases_total") + 2
    assert value(mid, "pin_locked_members") == 0
    wrong = {"stored_value": {"amount": 100, "pin": "00000"}}
    for i in range(app.state.settings.pin_max_attempts):
        assert await buy(f"wrong-{i}", **wrong) == 422
    assert await buy("locked", stored_value={"amount": 100, "pin": "12345"}) == 422
    after = await scrape(client)
    assert value(after, "pin_lockouts_total") == value(mid, "pin_lockouts_total") + 1
    assert value(after, "pin_locked_members") == 1


async def test_the_pin_locked_figure_counts_confirmed_locks_only(
        client: Client, conn: asyncpg.Connection) -> None:
    """A lock is provisional while the PIN attempt that set it is verified (migration 0019,
    milliseconds): not a locked member yet. A lock whose verification never reported is
    confirmed once its bound passes, as the till treats it."""
    pid = await fx.program(conn)
    minute = timedelta(minutes=1)
    states = {"provisional": (15 * minute, minute), "confirmed": (15 * minute, None),
              "never reported": (15 * minute, -minute), "over": (-minute, None)}
    for locked, pending in states.values():
        m = await fx.member(conn, pid, pin_hash="x")
        await conn.execute(
            "UPDATE members SET pin_failures = 5, pin_locked_until = now() + $2, "
            "pin_lock_pending_until = now() + $3 WHERE id = $1",
            m.id, locked, pending)
    assert value(await scrape(client), "pin_locked_members") == 2  # confirmed, never reported


async def test_the_database_pool_is_reported(client: Client) -> None:
    s = await scrape(client)
    in_use = value(s, "db_pool_connections", state="in_use")
    idle = value(s, "db_pool_connections", state="idle")
    assert in_use >= 0 and idle >= 0 and 1 <= in_use + idle <= 4  # settings: pool of 1 to 4
    assert value(s, "db_pool_max_connections") == 4
    assert value(s, "db_pool_waiting") == 0


@pytest.fixture
async def pushing(settings: Settings) -> AsyncIterator[tuple[Litestar, Client]]:
    """An app with a push webhook whose delivery loop is off (offers wait in the outbox) and
    whose periodic jobs run once at start (then every hour)."""
    app = create_app(Settings(**{**{f: getattr(settings, f) for f in settings.__struct_fields__},
                                 "webhook_url": "http://127.0.0.1:9/hook",
                                 "webhook_secret": "s" * 32, "webhook_poll_s": 0,
                                 "jobs_interval_s": 3600}))
    async with AsyncTestClient(app=app) as c:
        yield app, c


async def test_the_outbox_backlog_and_its_oldest_offer_are_reported(
        pushing: tuple[Litestar, Client], conn: asyncpg.Connection) -> None:
    app, client = pushing
    tokens: TokenService = app.state.tokens
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    await create_campaign(client, tokens, program, campaign_body())
    assert value(await scrape(client), "offer_outbox_backlog") == 0
    for _ in range(2):
        _, me = await signup(client, program, consents=["location_offers"])
        r = await client.post("/v1/me/pings", json={"pings": [ping(*INSIDE, ago(20))]},
                              headers=me)
        assert len(r.json()["offers"]) == 1, r.text
    await conn.execute("UPDATE offer_outbox SET created_at = created_at - interval '90 s' "
                       "WHERE offer_id = (SELECT offer_id FROM offer_outbox LIMIT 1)")
    s = await scrape(client)
    assert value(s, "offer_outbox_backlog") == 2
    assert 90 <= value(s, "offer_outbox_oldest_age_seconds") < 3600


async def test_each_background_job_reports_runs_and_duration(
        pushing: tuple[Litestar, Client]) -> None:
    _, client = pushing
    jobs = ("expire", "purge", "periodic-jobs")
    s: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    # The first round starts with the app. A round is counted when it starts and its duration
    # observed when it ends: wait until every job's first round has ended (bounded, ~30 s).
    for _ in range(600):
        s = await scrape(client)
        if all(value(s, "background_job_duration_seconds_count", job=job) >= 1
               for job in jobs):
            break
        await asyncio.sleep(0.05)
    for job in jobs:
        assert value(s, "background_job_runs_total", job=job) >= 1, job
        assert value(s, "background_job_duration_seconds_count", job=job) >= 1, job
    assert value(s, "background_job_failures_total", job="expire") == 0
    assert value(s, "background_job_last_success_timestamp_seconds", job="expire") > 0


def test_a_failed_round_is_counted_as_a_failure() -> None:
    def failures() -> float:
        return REGISTRY.get_sample_value("background_job_failures_total",
                                         {"job": "test-job"}) or 0.0

    before = failures()
    with pytest.raises(RuntimeError), metrics.job_round("test-job"):
        raise RuntimeError("boom")
    assert failures() == before + 1
