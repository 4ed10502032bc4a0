"""Programs: admins create and change them; a program's own people may read it."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.helpers import bearer, signup

from api.auth.tokens import Role, TokenService
from api.runtime import demo

Client = AsyncTestClient[Litestar]

CAFE: dict[str, Any] = {
    "name": "Café Lumière", "currency": "EUR", "timezone": "Europe/Paris",
    "earn_rate": {"points": 1, "per_amount": 100}, "points_expiry_days": 365,
    "tiers": [{"name": "Gold", "min_points_12m": 2000, "earn_multiplier": 1.5},
              {"name": "Bronze", "min_points_12m": 0, "earn_multiplier": 1},
              {"name": "Silver", "min_points_12m": 500, "earn_multiplier": 1.25}],
    "stored_value": True,
}


def _admin(tokens: TokenService) -> dict[str, str]:
    return bearer(tokens.mint_access(sub=uuid.uuid4(), role="admin"))


def _as(tokens: TokenService, role: Role, program_id: str) -> dict[str, str]:
    return bearer(tokens.mint_access(sub=uuid.uuid4(), role=role,
                                     program_id=uuid.UUID(program_id)))


async def _create(client: Client, tokens: TokenService, **over: Any) -> dict[str, Any]:
    r = await client.post("/v1/programs", json={**CAFE, **over}, headers=_admin(tokens))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_an_admin_creates_a_program_with_tiers_sorted_by_threshold(
        client: Client, tokens: TokenService) -> None:
    p = await _create(client, tokens)
    uuid.UUID(p["id"])
    assert p["name"] == "Café Lumière"
    assert p["currency"] == "EUR"
    assert p["earn_rate"] == {"points": 1, "per_amount": 100}
    assert p["stored_value"] is True
    assert [(t["name"], t["min_points_12m"], t["earn_multiplier"]) for t in p["tiers"]] == [
        ("Bronze", 0, 1.0), ("Silver", 500, 1.25), ("Gold", 2000, 1.5)]


async def test_the_multiplier_is_stored_in_thousandths(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    p = await _create(client, tokens)
    tiers = await conn.fetchval("SELECT tiers::text FROM programs WHERE id = $1",
                                uuid.UUID(p["id"]))
    assert '"multiplier_milli": 1250' in tiers or '"multiplier_milli":1250' in tiers


async def test_a_created_program_reads_back_the_same(client: Client, tokens: TokenService) -> None:
    p = await _create(client, tokens)
    r = await client.get(f"/v1/programs/{p['id']}", headers=_admin(tokens))
    assert r.status_code == 200
    assert r.json() == p


@pytest.mark.parametrize(("over", "field"), [
    ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ({"tiers": [{"name": "A", "min_points_12m": 0, "earn_multiplier": 1},
                {"name": "a", "min_points_12m": 10, "earn_multiplier": 2}]}, "tiers[1].name"),
    ({"tiers": [{"name": "A", "min_points_12m": 0, "earn_multiplier": 1},
                {"name": "B", "min_points_12m": 0, "earn_multiplier": 2}]},
     "tiers[1].min_points_12m"),
    ({"tiers": [{"name": "A", "min_points_12m": 0, "earn_multiplier": 1.2345}]},
     "tiers[0].earn_multiplier"),
], ids=["unknown-timezone", "duplicate-tier-name", "duplicate-threshold", "four-decimals"])
async def test_a_program_refused_by_a_rule_is_422_naming_the_field(
        client: Client, tokens: TokenService, over: dict[str, Any], field: str) -> None:
    r = await client.post("/v1/programs", json={**CAFE, **over}, headers=_admin(tokens))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"] == field


@pytest.mark.parametrize(("over", "field"), [
    ({"earn_rate": {"points": -1, "per_amount": 100}}, "earn_rate.points"),
    ({"earn_rate": {"points": 1, "per_amount": 0}}, "earn_rate.per_amount"),
    ({"points_expiry_days": 0}, "points_expiry_days"),
    ({"currency": "eur"}, "currency"),
    ({"tiers": [{"name": "A", "min_points_12m": 0, "earn_multiplier": 0.5}]},
     "tiers[0].earn_multiplier"),
    ({"tiers": [{"name": "A", "min_points_12m": 0, "earn_multiplier": 11}]},
     "tiers[0].earn_multiplier"),
    ({"tiers": [{"name": "A", "min_points_12m": -1, "earn_multiplier": 1}]},
     "tiers[0].min_points_12m"),
    ({"points_expiry_days": 2**40}, "points_expiry_days"),
    ({"stored_value": "yes"}, "stored_value"),
    ({"tiers": [{"name": "A", "min_points_12m": 0, "earn_multiplier": 1, "perk": "x"}]},
     "tiers[0].perk"),
], ids=["negative-points", "zero-per-amount", "zero-expiry", "lowercase-currency",
        "multiplier-below-1", "multiplier-above-10", "negative-threshold", "huge-int",
        "not-a-bool", "unknown-tier-field"])
async def test_a_malformed_program_is_400_naming_the_field(
        client: Client, tokens: TokenService, over: dict[str, Any], field: str) -> None:
    r = await client.post("/v1/programs", json={**CAFE, **over}, headers=_admin(tokens))
    assert r.status_code == 400, r.text
    assert field in [e["field"] for e in r.json()["errors"]]


@pytest.mark.parametrize("role", ["manager", "staff", "member"])
async def test_only_an_admin_creates_programs(
        client: Client, tokens: TokenService, role: Role) -> None:
    r = await client.post("/v1/programs", json=CAFE,
                          headers=_as(tokens, role, str(uuid.uuid4())))
    assert r.status_code == 403
    assert r.json()["type"] == "/problems/forbidden"


@pytest.mark.parametrize("role", ["manager", "staff", "member"])
async def test_the_programs_own_people_can_read_it(
        client: Client, tokens: TokenService, role: Role) -> None:
    p = await _create(client, tokens)
    headers = _as(tokens, role, p["id"])
    if role == "member":  # a member token must belong to a member who exists (#6: erasure)
        _, headers = await signup(client, p["id"])
    r = await client.get(f"/v1/programs/{p['id']}", headers=headers)
    assert r.status_code == 200
    assert r.json()["id"] == p["id"]


@pytest.mark.parametrize("role", ["manager", "staff", "member"])
async def test_people_of_another_program_cannot_read_it(
        client: Client, tokens: TokenService, role: Role) -> None:
    a = await _create(client, tokens)
    b = await _create(client, tokens, name="Other")
    r = await client.get(f"/v1/programs/{b['id']}", headers=_as(tokens, role, a["id"]))
    assert r.status_code == 403


async def test_an_unknown_program_is_404(client: Client, tokens: TokenService) -> None:
    r = await client.get(f"/v1/programs/{uuid.uuid4()}", headers=_admin(tokens))
    assert r.status_code == 404
    assert r.json()["type"] == "/problems/not-found"


async def test_patch_changes_only_the_given_fields(client: Client, tokens: TokenService) -> None:
    p = await _create(client, tokens)
    r = await client.patch(f"/v1/programs/{p['id']}", headers=_admin(tokens),
                           json={"name": "Café Lumière Paris",
                                 "earn_rate": {"points": 2, "per_amount": 100}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == "Café Lumière Paris"
    assert body["earn_rate"] == {"points": 2, "per_amount": 100}
    assert body["tiers"] == p["tiers"]
    assert body["timezone"] == p["timezone"]
    assert body["updated_at"] >= p["updated_at"]


async def test_patch_validates_like_create(client: Client, tokens: TokenService) -> None:
    p = await _create(client, tokens)
    r = await client.patch(f"/v1/programs/{p['id']}", headers=_admin(tokens),
                           json={"timezone": "Nowhere/Else"})
    assert r.status_code == 422
    assert r.json()["field"] == "timezone"
    r = await client.patch(f"/v1/programs/{p['id']}", headers=_admin(tokens),
                           json={"colour": "red"})
    assert r.status_code == 400


async def test_the_currency_is_fixed_once_the_program_has_members(
        client: Client, tokens: TokenService) -> None:
    p = await _create(client, tokens)
    r = await client.patch(f"/v1/programs/{p['id']}", headers=_admin(tokens),
                           json={"currency": "USD"})
    assert r.status_code == 200
    r = await client.post(f"/v1/programs/{p['id']}/members", json={
        "email": "ann@example.com", "password": "long enough", "first_name": "Ann"})
    assert r.status_code == 201
    r = await client.patch(f"/v1/programs/{p['id']}", headers=_admin(tokens),
                           json={"currency": "EUR"})
    assert r.status_code == 409
    assert r.json()["field"] == "currency"


async def test_a_manager_cannot_patch_even_their_own_program(
        client: Client, tokens: TokenService) -> None:
    p = await _create(client, tokens)
    r = await client.patch(f"/v1/programs/{p['id']}", headers=_as(tokens, "manager", p["id"]),
                           json={"name": "Mine now"})
    assert r.status_code == 403


async def test_the_openapi_document_shows_the_program_routes_and_errors(
        client: Client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    post = doc["paths"]["/v1/programs"]["post"]
    assert "requestBody" in post
    assert {"201", "400", "401", "403", "422"} <= set(post["responses"])
    assert {"get", "patch"} <= set(doc["paths"]["/v1/programs/{program_id}"])
    assert "post" in doc["paths"]["/v1/programs/{program_id}/accounts"]


async def test_the_demo_seed_is_idempotent_and_its_people_can_log_in(
        client: Client, tokens: TokenService, db_url: str, conn: asyncpg.Connection) -> None:
    first = await demo.seed(db_url)
    counts = [await conn.fetchval(f"SELECT count(*) FROM {t}")
              for t in ("programs", "stores", "accounts", "members", "cards", "member_consents")]
    assert counts == [1, 6, 2, 1, 1, 1]
    assert await demo.seed(db_url) == first
    assert [await conn.fetchval(f"SELECT count(*) FROM {t}")
            for t in ("programs", "stores", "accounts", "members", "cards",
                      "member_consents")] == counts
    assert str(demo.PROGRAM_ID) in first
    r = await client.post("/v1/auth/token", json={
        "grant_type": "password", "program_id": str(demo.PROGRAM_ID),
        "email": demo.MANAGER_EMAIL, "password": demo.MANAGER_PASSWORD})
    assert r.status_code == 200, r.text
    manager = bearer(r.json()["access_token"])
    stores = (await client.get(f"/v1/programs/{demo.PROGRAM_ID}/stores",
                               headers=manager)).json()["items"]
    assert sorted(s["zone"]["type"] for s in stores) == ["Circle"] * 4 + ["Polygon"] * 2
    r = await client.post("/v1/auth/token", json={
        "grant_type": "password", "program_id": str(demo.PROGRAM_ID),
        "email": demo.MEMBER_EMAIL, "password": demo.MEMBER_PASSWORD})
    member = bearer(r.json()["access_token"])
    me = (await client.get("/v1/me", headers=member)).json()
    assert me["tier"] == "Bronze"
    assert me["currency"] == "EUR"
    assert await conn.fetchval("SELECT count(*) FROM rewards") == len(demo.REWARDS)
    seen = (await client.get("/v1/me/rewards", headers=member)).json()["items"]
    assert [x["name"] for x in seen] == [r.name for r in demo.REWARDS if not r.tiers]


async def test_a_program_has_a_locale_for_amounts_en_by_default(
        client: Client, tokens: TokenService) -> None:
    p = await _create(client, tokens)
    assert p["locale"] == "en"
    french = await _create(client, tokens, locale="fr-FR")
    assert french["locale"] == "fr-FR"
    r = await client.patch(f"/v1/programs/{p['id']}", headers=_admin(tokens),
                           json={"locale": "fr-BE"})
    assert r.status_code == 200, r.text
    assert (r.json()["locale"], r.json()["currency"]) == ("fr-BE", "EUR")
    for bad in ("french", "fr_FR", "FR-fr", "", "fr-FR; DROP"):
        r = await client.patch(f"/v1/programs/{p['id']}", headers=_admin(tokens),
                               json={"locale": bad})
        assert r.status_code == 400 and "locale" in r.text, (bad, r.text)
    r = await client.get(f"/v1/programs/{p['id']}", headers=_as(tokens, "staff", p["id"]))
    assert r.json()["locale"] == "fr-BE"
