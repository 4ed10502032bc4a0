"""Erasure: afterwards no table holds the member's e-mail, name, card number or id; their
tokens, refresh tokens and QR codes are dead; the books and campaign statistics are as
before."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import msgspec
import pytest
from support.helpers import INSIDE, Client, ago, ping
from support.pass_fixtures import Pki, make_pki
from support.privacy_scenario import FIRST_NAME, PASSWORD, Rich, rich_member, routes_by_role

from api.auth.tokens import TokenService
from api.config import Settings


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def settings(settings: Settings, pki: Pki) -> Settings:
    # raw pings kept; wallet passes configured (the scenario adds a pass and a device)
    return msgspec.structs.replace(settings, raw_ping_retention_s=3600, **pki.settings())


async def dump(conn: asyncpg.Connection) -> str:
    """Every row of every table of the public schema, as JSON text."""
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1")
    out = []
    for (name,) in tables:
        rows = await conn.fetchval(
            f'SELECT coalesce(string_agg(row_to_json(t)::text, E\'\\n\'), \'\') FROM "{name}" t')
        out.append(f"== {name}\n{rows}")
    return "\n".join(out)


async def erase_me(client: Client, r: Rich) -> Any:
    return await client.request("DELETE", "/v1/me", json={"password": PASSWORD},
                                headers=r.headers)


def needles(r: Rich) -> dict[str, str]:
    return {"email": r.email, "first name": FIRST_NAME, "card number": r.card_number,
            "member id": r.member_id}


def found_in(text: str, needle: str) -> bool:
    """As text, or inside a bytea (rendered as hex by row_to_json)."""
    return needle.lower() in text.lower() or needle.encode().hex() in text.lower()


async def books(conn: asyncpg.Connection) -> tuple[Any, ...]:
    row = await conn.fetchrow(
        "SELECT (SELECT coalesce(sum(points), 0) FROM ledger_entries),"
        " (SELECT coalesce(sum(stored_value), 0) FROM ledger_entries),"
        " (SELECT coalesce(sum(points_balance), 0) FROM wallet_accounts),"
        " (SELECT coalesce(sum(stored_value_balance), 0) FROM wallet_accounts),"
        " (SELECT count(*) FROM transactions), (SELECT coalesce(sum(amount), 0) FROM transactions),"
        " (SELECT count(*) FROM points_lots), (SELECT count(*) FROM wallet_accounts)")
    assert row is not None
    return tuple(row)


async def campaign_stats(client: Client, r: Rich) -> dict[str, Any]:
    resp = await client.get(f"/v1/programs/{r.program_id}/campaigns/{r.campaign_id}/stats",
                            headers=r.manager)
    assert resp.status_code == 200, resp.text
    stats: dict[str, Any] = resp.json()
    stats.pop("deliveries", None)  # an erased member's pending push is never delivered
    return stats


@pytest.mark.parametrize("who", ["member", "admin"])
async def test_after_erasure_no_table_holds_the_members_email_name_card_number_or_id(
        client: Client, tokens: TokenService, conn: asyncpg.Connection, who: str) -> None:
    r = await rich_member(client, tokens)
    before = await dump(conn)
    for what, needle in needles(r).items():
        assert found_in(before, needle), f"the scenario should have stored the {what}"

    if who == "member":
        resp = await erase_me(client, r)
    else:
        resp = await client.post(f"/v1/admin/members/{r.member_id}/erasure", headers=r.admin,
                                 json={"reason": "ticket 1"})
    assert resp.status_code == 204, resp.text

    after = await dump(conn)
    for what, needle in needles(r).items():
        lines = [line for line in after.splitlines() if found_in(line, needle)]
        assert not lines, f"the {what} is still in: {lines}"


async def test_after_erasure_old_tokens_are_401_and_old_qr_codes_422(
        client: Client, tokens: TokenService) -> None:
    r = await rich_member(client, tokens)
    login = await client.post("/v1/auth/token", json={
        "grant_type": "password", "program_id": r.program_id, "email": r.email,
        "password": "a long enough password"})
    assert login.status_code == 200
    assert (await erase_me(client, r)).status_code == 204

    assert (await client.get("/v1/me", headers=r.headers)).status_code == 401
    again = await client.post("/v1/auth/token", json={
        "grant_type": "refresh_token", "refresh_token": login.json()["refresh_token"]})
    assert again.status_code == 401
    relogin = await client.post("/v1/auth/token", json={
        "grant_type": "password", "program_id": r.program_id, "email": r.email,
        "password": "a long enough password"})
    assert relogin.status_code == 401
    for body, status in (({"qr_payload": r.qr}, 422), ({"card_number": r.card_number}, 404)):
        resp = await client.post("/v1/pos/scan", json={"store_id": r.store_id, **body},
                                 headers={**r.staff, "Idempotency-Key": r.card_number[:8]
                                          + str(status)})
        assert resp.status_code == status, resp.text
        if status == 422:
            assert resp.json()["type"] == "/problems/invalid-card-token"


async def test_after_erasure_ledger_sums_and_campaign_stats_are_unchanged(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    r = await rich_member(client, tokens)
    books_before, stats_before = await books(conn), await campaign_stats(client, r)
    counted_before = await conn.fetchval("SELECT count(*) FROM visit_counts")
    assert stats_before["issued"] == 1 and stats_before["redeemed"] == 1

    assert (await erase_me(client, r)).status_code == 204

    assert await books(conn) == books_before
    assert await campaign_stats(client, r) == stats_before
    assert await conn.fetchval("SELECT count(*) FROM visit_counts") == counted_before
    assert await conn.fetchval("SELECT count(*) FROM offers WHERE member_id IS NULL") == 1


async def test_every_member_route_answers_401_to_an_erased_members_token(
        client: Client, tokens: TokenService, app: Any) -> None:
    """Walks the app's routes open to members: a new one must be listed here with a body."""
    r = await rich_member(client, tokens)
    bodies: dict[tuple[str, str], Any] = {
        ("GET", "/v1/me"): None, ("PATCH", "/v1/me"): {"first_name": "X"},
        ("DELETE", "/v1/me"): {"password": PASSWORD}, ("GET", "/v1/me/card"): None,
        ("PUT", "/v1/me/pin"): {"pin": "12345", "password": PASSWORD, "current_pin": "24680"},
        ("GET", "/v1/me/consents"): None,
        ("PUT", "/v1/me/consents/{purpose}"): {"granted": True,
                                                "policy_version": "0123456789abcdef"},
        ("GET", "/v1/me/preferences"): None, ("PUT", "/v1/me/preferences"): {},
        ("GET", "/v1/me/ledger"): None, ("GET", "/v1/me/offers"): None,
        ("POST", "/v1/me/pings"): {"pings": [ping(*INSIDE, ago(5))]},
        ("GET", "/v1/me/access-log"): None, ("GET", "/v1/me/export"): None,
        ("GET", "/v1/programs/{program_id}"): None,
        ("POST", "/v1/me/offers/{offer_id}/opened"): None, ("GET", "/v1/me/stores"): None,
        ("GET", "/v1/me/rewards"): None,
        ("POST", "/v1/me/rewards/{reward_id}/claims"): None, ("GET", "/v1/me/vouchers"): None,
        ("GET", "/v1/me/card/apple-pass"): None, ("GET", "/v1/me/card/google-wallet"): None,
    }
    assert (await erase_me(client, r)).status_code == 204
    for method, path in member_routes(app):
        assert (method, path) in bodies, f"{method} {path}: add it to this walk"
        url = path.replace("{purpose}", "marketing").replace("{program_id}", r.program_id)
        url = url.replace("{offer_id}", str(uuid.uuid4()))
        url = url.replace("{reward_id}", str(uuid.uuid4()))
        resp = await client.request(method, url, json=bodies[method, path], headers=r.headers)
        assert resp.status_code == 401, f"{method} {path}: {resp.status_code} {resp.text}"


def member_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route whose `roles` guard admits members."""
    return sorted(k for k, admitted in routes_by_role(app).items() if "member" in admitted)
