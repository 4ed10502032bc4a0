"""A consent's `policy_version` must name a version of the privacy notice that was published
(422 otherwise), so the proof points at the text the member saw; every version served is
kept, listed and readable."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import msgspec
import pytest
from litestar.testing import AsyncTestClient
from support.helpers import Client, create_program, signup

from api.app import create_app
from api.auth.tokens import TokenService
from api.config import Settings


async def current_version(client: Client) -> str:
    return str((await client.get("/v1/privacy/notice")).json()["version"])


@pytest.fixture
async def client_60_days(settings: Settings) -> AsyncIterator[Client]:
    """A worker started after the operator changed a retention period: a new notice."""
    changed = msgspec.structs.replace(settings, retention_visits_days=60)
    async with AsyncTestClient(app=create_app(changed)) as c:
        yield c


async def test_the_served_notice_is_published_listed_and_readable_by_version(
        client: Client, tokens: TokenService) -> None:
    notice = (await client.get("/v1/privacy/notice")).json()
    r = await client.get("/v1/privacy/notice/versions")
    assert r.status_code == 200, r.text
    (listed,) = r.json()["items"]
    assert (listed["version"], listed["current"]) == (notice["version"], True)
    r = await client.get(f"/v1/privacy/notice/versions/{notice['version']}")
    assert r.status_code == 200 and r.json() == notice
    pid = await create_program(client, tokens)
    program_notice = (await client.get(f"/v1/programs/{pid}/privacy/notice")).json()
    assert program_notice["version"] == notice["version"]  # the same terms
    assert (await client.get("/v1/privacy/notice/versions/0123456789abcdef")).status_code == 404
    assert (await client.get("/v1/privacy/notice/versions/v1")).status_code == 400


async def test_a_consent_naming_no_published_notice_is_422_and_nothing_is_recorded(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    _, me = await signup(client, pid)
    version = await current_version(client)
    for bogus in ("v1", "2024-05", "0123456789abcdef"):
        r = await client.put("/v1/me/consents/marketing", headers=me,
                             json={"granted": True, "policy_version": bogus})
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["type"] == "/problems/unknown-policy-version"
        assert problem["field"] == "policy_version" and bogus in problem["detail"]
        assert problem["latest_version"] == version
    assert (await client.get("/v1/me/consents", headers=me)).json()["history"] == []
    r = await client.put("/v1/me/consents/marketing", headers=me,
                         json={"granted": True, "policy_version": version})
    assert r.status_code == 200 and r.json()["policy_version"] == version


async def test_a_signup_with_an_unknown_version_names_the_consent_and_creates_nothing(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    pid = await create_program(client, tokens)
    version = await current_version(client)
    r = await client.post(f"/v1/programs/{pid}/members", json={
        "email": "ann@example.com", "password": "ann's long secret", "first_name": "Ann",
        "consents": [{"purpose": "marketing", "granted": True, "policy_version": version},
                     {"purpose": "location_offers", "granted": True,
                      "policy_version": "2026-01"}]})
    assert r.status_code == 422, r.text
    assert r.json()["field"] == "consents[1].policy_version"
    assert await conn.fetchval("SELECT count(*) FROM members") == 0


async def test_a_changed_notice_is_a_new_version_and_the_earlier_one_stays_valid(
        client: Client, client_60_days: Client, tokens: TokenService) -> None:
    before, after = await current_version(client), await current_version(client_60_days)
    assert before != after
    r = await client_60_days.get("/v1/privacy/notice/versions?limit=1")
    page = r.json()
    assert [(v["version"], v["current"]) for v in page["items"]] == [(after, True)]
    r = await client_60_days.get(
        f"/v1/privacy/notice/versions?limit=1&cursor={page['next_cursor']}")
    assert [(v["version"], v["current"]) for v in r.json()["items"]] == [(before, False)]
    assert r.json()["next_cursor"] is None
    old = (await client_60_days.get(f"/v1/privacy/notice/versions/{before}")).json()
    visits = next(x for x in old["retention"] if x["data_class"] == "visits")
    assert visits["period"] == "180 days"  # the text the member saw then
    # A member who saw the earlier notice (a cached app) still gives proof that holds.
    pid = await create_program(client_60_days, tokens)
    _, me = await signup(client_60_days, pid)
    r = await client_60_days.put("/v1/me/consents/marketing", headers=me,
                                 json={"granted": True, "policy_version": before})
    assert r.status_code == 200, r.text


async def test_the_demo_members_consent_names_the_published_notice(
        db_url: str, conn: asyncpg.Connection) -> None:
    from api.runtime import demo

    await demo.seed(db_url)
    named = await conn.fetchval(
        "SELECT count(*) FROM member_consents c JOIN privacy_notices p "
        "ON p.version = c.policy_version")
    assert named == await conn.fetchval("SELECT count(*) FROM member_consents") == 1
