"""The privacy notice is generated from the configuration that drives consent and purging:
it lists every purpose and every retention period, and changing a period changes both the
notice and what the purge removes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from support import ledger_fixtures as fx
from support.helpers import Client, create_program

from api.app import create_app
from api.config import Settings
from api.jobs import run_job
from wallet.members.consents import PURPOSES


def expected_periods(s: Settings) -> dict[str, int]:
    day, hour = 86400, 3600
    return {"visits": s.retention_visits_days * day, "raw_pings": s.raw_ping_retention_s,
            "expired_offers": s.retention_expired_offers_days * day,
            "access_log": s.retention_access_log_days * day,
            "withdrawn_consents": s.retention_withdrawn_consent_days * day,
            "idle_accounts": s.retention_idle_account_days * day,
            "idempotency_keys": s.retention_idempotency_keys_hours * hour,
            "sessions": s.refresh_token_ttl_s}


@pytest.fixture
def ten_day_visits(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, retention_visits_days=10,
                                   webhook_url="https://push.example.com/hook",
                                   webhook_secret="a-long-enough-signing-secret")


@pytest.fixture
async def client10(ten_day_visits: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(ten_day_visits)) as c:
        yield c


async def test_the_public_notice_lists_each_consent_purpose_and_each_retention_period(
        client: Client, settings: Settings) -> None:
    r = await client.get("/v1/privacy/notice")  # no token
    assert r.status_code == 200, r.text
    notice = r.json()
    assert [p["purpose"] for p in notice["consent_purposes"]] == list(PURPOSES)
    assert all(p["enables"] and p["without_consent"] for p in notice["consent_purposes"])
    periods = {x["data_class"]: x["period_s"] for x in notice["retention"]}
    assert periods == expected_periods(settings)
    assert "no partner sharing exists" in str(notice["recipients"])
    assert "none" in notice["sensitive_data"]
    assert not any("push" in x["recipient"] for x in notice["recipients"])


async def test_changing_a_period_in_settings_changes_both_the_notice_and_the_purge(
        client: Client, client10: Client, settings: Settings, ten_day_visits: Settings,
        conn: asyncpg.Connection, db_url: str) -> None:
    default, ten = (await client.get("/v1/privacy/notice")).json(), \
        (await client10.get("/v1/privacy/notice")).json()
    visits = {n: next(x for x in notice["retention"] if x["data_class"] == "visits")
              for n, notice in (("default", default), ("ten", ten))}
    assert visits["default"]["period"] == "180 days"
    assert (visits["ten"]["period"], visits["ten"]["period_s"]) == ("10 days", 10 * 86400)
    assert default["version"] != ten["version"]
    assert any("push" in x["recipient"] for x in ten["recipients"])

    pid = await fx.program(conn)
    m, sid = await fx.member(conn, pid), await fx.store(conn, pid)
    ended = datetime.now(UTC) - timedelta(days=11)
    await conn.execute(
        "INSERT INTO visits (id, member_id, program_id, store_id, entered_at, last_seen_at, "
        "exited_at) VALUES ($1, $2, $3, $4, $5, $5, $5)", uuid.uuid4(), m.id, pid, sid, ended)
    assert "visits 0," in await run_job("purge", db_url, settings)
    assert await conn.fetchval("SELECT count(*) FROM visits") == 1
    assert "visits 1," in await run_job("purge", db_url, ten_day_visits)
    assert await conn.fetchval("SELECT count(*) FROM visits") == 0


async def test_a_programs_notice_names_it_and_an_unknown_program_is_404(
        client: Client, tokens: object) -> None:
    pid = await create_program(client, tokens)  # type: ignore[arg-type]
    r = await client.get(f"/v1/programs/{pid}/privacy/notice")
    assert r.status_code == 200, r.text
    assert r.json()["program"] == {"id": pid, "name": "Gelato Uno"}
    r = await client.get(f"/v1/programs/{uuid.uuid4()}/privacy/notice")
    assert r.status_code == 404
