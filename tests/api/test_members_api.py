"""Members: signup, profile, card with a short-lived QR, PIN. `/v1/me` is always the caller."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.helpers import bearer

from api.auth.tokens import Role, TokenService
from wallet.kernel.errors import Unauthenticated
from wallet.members.cards import is_valid_card_number

Client = AsyncTestClient[Litestar]

PROGRAM: dict[str, Any] = {
    "name": "Café Lumière", "currency": "EUR", "timezone": "Europe/Paris",
    "earn_rate": {"points": 1, "per_amount": 100}, "points_expiry_days": 365,
    "tiers": [{"name": "Silver", "min_points_12m": 500, "earn_multiplier": 1.25},
              {"name": "Bronze", "min_points_12m": 0, "earn_multiplier": 1}],
    "stored_value": True,
}
ANN = {"email": "ann@example.com", "password": "ann's long secret", "first_name": "Ann"}


async def _program(client: Client, tokens: TokenService, **over: Any) -> str:
    admin = bearer(tokens.mint_access(sub=uuid.uuid4(), role="admin"))
    r = await client.post("/v1/programs", json={**PROGRAM, **over}, headers=admin)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
async def program_id(client: Client, tokens: TokenService) -> str:
    return await _program(client, tokens)


async def _signup(client: Client, program_id: str, **over: Any) -> dict[str, Any]:
    r = await client.post(f"/v1/programs/{program_id}/members", json={**ANN, **over})
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
async def ann(client: Client, program_id: str) -> dict[str, Any]:
    return await _signup(client, program_id)


def _me(signup: dict[str, Any]) -> dict[str, str]:
    return bearer(signup["access_token"])


async def test_signup_returns_the_member_a_card_and_tokens(
        client: Client, program_id: str) -> None:
    body = await _signup(client, program_id)
    member = body["member"]
    uuid.UUID(member["id"])
    assert member["email"] == "ann@example.com"
    assert member["first_name"] == "Ann"
    assert member["points_balance"] == 0
    assert member["stored_value_balance"] == 0
    assert member["currency"] == "EUR"
    assert body["access_token"]
    assert body["refresh_token"]
    assert is_valid_card_number(body["card"]["card_number"])
    assert body["card"]["qr"]["payload"]


async def test_a_new_member_starts_in_the_entry_tier(client: Client, ann: dict[str, Any]) -> None:
    assert ann["member"]["tier"] == "Bronze"


async def test_without_a_zero_threshold_tier_a_new_member_has_no_tier(
        client: Client, tokens: TokenService) -> None:
    pid = await _program(client, tokens, tiers=[
        {"name": "Gold", "min_points_12m": 100, "earn_multiplier": 2}])
    assert (await _signup(client, pid))["member"]["tier"] is None


async def test_signup_creates_a_wallet_account_and_a_card_row(
        client: Client, ann: dict[str, Any], conn: asyncpg.Connection) -> None:
    row = await conn.fetchrow(
        "SELECT w.tier, w.points_balance, c.number, c.status FROM members m "
        "JOIN wallet_accounts w ON w.id = m.wallet_account_id "
        "JOIN cards c ON c.member_id = m.id WHERE m.id = $1", uuid.UUID(ann["member"]["id"]))
    assert row is not None
    assert row["tier"] == "Bronze"
    assert row["number"] == ann["card"]["card_number"]
    assert row["status"] == "active"


async def test_the_signup_tokens_work_and_the_password_logs_in(
        client: Client, program_id: str, ann: dict[str, Any]) -> None:
    assert (await client.get("/v1/me", headers=_me(ann))).status_code == 200
    r = await client.post("/v1/auth/token", json={
        "grant_type": "password", "program_id": program_id, "email": ANN["email"],
        "password": ANN["password"]})
    assert r.status_code == 200, r.text
    r = await client.post("/v1/auth/token", json={
        "grant_type": "refresh_token", "refresh_token": ann["refresh_token"]})
    assert r.status_code == 200, r.text


async def test_signup_with_a_taken_email_is_409(client: Client, program_id: str,
                                                ann: dict[str, Any]) -> None:
    r = await client.post(f"/v1/programs/{program_id}/members",
                          json={**ANN, "email": "ANN@example.com"})
    assert r.status_code == 409
    assert r.json()["field"] == "email"


async def test_signup_to_an_unknown_program_is_404(client: Client) -> None:
    r = await client.post(f"/v1/programs/{uuid.uuid4()}/members", json=ANN)
    assert r.status_code == 404


@pytest.mark.parametrize(("over", "field"), [
    ({"email": "nope"}, "email"),
    ({"password": "short"}, "password"),
    ({"first_name": ""}, "first_name"),
    ({"locale": "not a locale"}, "locale"),
    ({"nickname": "annie"}, "nickname"),
    ({"consents": [{"purpose": "tracking", "granted": True, "policy_version": "1"}]},
     "consents[0].purpose"),
], ids=["bad-email", "short-password", "empty-name", "bad-locale", "unknown-field",
        "unknown-purpose"])
async def test_a_malformed_signup_is_400_naming_the_field(
        client: Client, program_id: str, over: dict[str, Any], field: str) -> None:
    r = await client.post(f"/v1/programs/{program_id}/members", json={**ANN, **over})
    assert r.status_code == 400, r.text
    assert field in r.json()["detail"]


async def test_get_me_reads_the_profile_and_balances(
        client: Client, ann: dict[str, Any]) -> None:
    r = await client.get("/v1/me", headers=_me(ann))
    assert r.status_code == 200
    me = r.json()
    assert {"id", "email", "first_name", "tier", "points_balance", "stored_value_balance",
            "currency"} <= set(me)
    assert me == ann["member"]


async def test_me_is_always_the_caller(client: Client, program_id: str,
                                       ann: dict[str, Any]) -> None:
    bob = await _signup(client, program_id, email="bob@example.com", first_name="Bob")
    assert (await client.get("/v1/me", headers=_me(ann))).json()["first_name"] == "Ann"
    assert (await client.get("/v1/me", headers=_me(bob))).json()["first_name"] == "Bob"
    card_a = (await client.get("/v1/me/card", headers=_me(ann))).json()["card_number"]
    card_b = (await client.get("/v1/me/card", headers=_me(bob))).json()["card_number"]
    assert card_a == ann["card"]["card_number"]
    assert card_b == bob["card"]["card_number"]
    assert card_a != card_b


async def test_patch_me_corrects_the_profile(client: Client, ann: dict[str, Any]) -> None:
    r = await client.patch("/v1/me", headers=_me(ann),
                           json={"first_name": "Anne", "locale": "fr-FR"})
    assert r.status_code == 200, r.text
    assert r.json()["first_name"] == "Anne"
    assert r.json()["locale"] == "fr-FR"
    assert r.json()["email"] == ANN["email"]
    assert (await client.get("/v1/me", headers=_me(ann))).json()["first_name"] == "Anne"


async def test_patch_me_to_another_members_email_is_409(
        client: Client, program_id: str, ann: dict[str, Any]) -> None:
    await _signup(client, program_id, email="bob@example.com", first_name="Bob")
    r = await client.patch("/v1/me", headers=_me(ann), json={"email": "bob@example.com"})
    assert r.status_code == 409


async def test_patch_me_refuses_unknown_and_null_fields(
        client: Client, ann: dict[str, Any]) -> None:
    r = await client.patch("/v1/me", headers=_me(ann), json={"tier": "Gold"})
    assert r.status_code == 400
    r = await client.patch("/v1/me", headers=_me(ann), json={"first_name": None})
    assert r.status_code == 400


async def test_the_card_qr_is_a_signed_card_token_valid_about_a_minute(
        client: Client, tokens: TokenService, ann: dict[str, Any]) -> None:
    before = time.time()
    r = await client.get("/v1/me/card", headers=_me(ann))
    assert r.status_code == 200
    card = r.json()
    assert is_valid_card_number(card["card_number"])
    expires_at = datetime.fromisoformat(card["qr"]["expires_at"]).timestamp()
    assert 50 <= expires_at - before <= 70
    claims = tokens.verify(card["qr"]["payload"], "card")
    assert claims.sub == ann["member"]["id"]
    assert claims.exp == int(expires_at)


async def test_a_qr_payload_lives_sixty_seconds_so_a_screenshot_goes_stale(
        client: Client, tokens: TokenService, ann: dict[str, Any]) -> None:
    payload = (await client.get("/v1/me/card", headers=_me(ann))).json()["qr"]["payload"]
    claims = tokens.verify(payload, "card")
    assert claims.exp - claims.iat == 60
    assert claims.card is not None
    stale, _ = tokens.mint_card(card_id=uuid.UUID(claims.card), member_id=uuid.UUID(claims.sub),
                                program_id=uuid.UUID(str(claims.program_id)),
                                now=time.time() - 61 - 5)  # past the 5 s leeway
    with pytest.raises(Unauthenticated, match="expired"):
        tokens.verify(stale, "card")


async def test_each_card_request_gets_a_fresh_payload(
        client: Client, ann: dict[str, Any]) -> None:
    first = (await client.get("/v1/me/card", headers=_me(ann))).json()
    second = (await client.get("/v1/me/card", headers=_me(ann))).json()
    assert first["card_number"] == second["card_number"]
    assert first["qr"]["payload"] != second["qr"]["payload"]


async def test_put_pin_stores_it_hashed_and_never_returns_it(
        client: Client, ann: dict[str, Any], conn: asyncpg.Connection) -> None:
    r = await client.put("/v1/me/pin", headers=_me(ann), json={"pin": "12345",
                                                               "password": ANN["password"]})
    assert r.status_code == 204
    assert r.content == b""
    stored = await conn.fetchval("SELECT pin_hash FROM members WHERE id = $1",
                                 uuid.UUID(ann["member"]["id"]))
    assert stored.startswith("$argon2id$")
    assert "12345" not in stored
    me = (await client.get("/v1/me", headers=_me(ann))).text
    assert "pin" not in me


async def test_a_new_pin_clears_the_failure_count(
        client: Client, ann: dict[str, Any], conn: asyncpg.Connection) -> None:
    member_id = uuid.UUID(ann["member"]["id"])
    await conn.execute("UPDATE members SET pin_failures = 3 WHERE id = $1", member_id)
    await client.put("/v1/me/pin", headers=_me(ann), json={"pin": "54321",
                                                           "password": ANN["password"]})
    assert await conn.fetchval("SELECT pin_failures FROM members WHERE id = $1", member_id) == 0


@pytest.mark.parametrize("pin", ["1234", "123456", "12a45", "", " 1234", "١٢٣٤٥"])
async def test_a_pin_is_exactly_five_ascii_digits(
        client: Client, ann: dict[str, Any], pin: str) -> None:
    r = await client.put("/v1/me/pin", headers=_me(ann),
                         json={"pin": pin, "password": ANN["password"]})
    assert r.status_code == 400
    assert "pin" in r.json()["detail"]


async def test_a_pin_given_as_a_number_is_400(client: Client, ann: dict[str, Any]) -> None:
    r = await client.put("/v1/me/pin", headers=_me(ann),
                         json={"pin": 12345, "password": ANN["password"]})
    assert r.status_code == 400


async def test_a_token_of_an_erased_member_is_401(
        client: Client, ann: dict[str, Any], conn: asyncpg.Connection) -> None:
    await conn.execute("DELETE FROM members WHERE id = $1", uuid.UUID(ann["member"]["id"]))
    for method, path, body in [("GET", "/v1/me", None), ("GET", "/v1/me/card", None),
                               ("PATCH", "/v1/me", {"first_name": "Zed"}),
                               ("PUT", "/v1/me/pin", {"pin": "12345",
                                                      "password": ANN["password"]}),
                               ("GET", "/v1/me/consents", None),
                               ("GET", "/v1/me/preferences", None)]:
        r = await client.request(method, path, headers=_me(ann), json=body)
        assert r.status_code == 401, (path, r.text)
        assert r.json()["type"] == "/problems/unauthorized"


@pytest.mark.parametrize("role", ["staff", "manager", "admin"])
async def test_operators_have_no_me(client: Client, tokens: TokenService, program_id: str,
                                    role: Role) -> None:
    token = tokens.mint_access(sub=uuid.uuid4(), role=role,
                               program_id=None if role == "admin" else uuid.UUID(program_id))
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 403


async def test_members_cannot_call_manager_routes(
        client: Client, program_id: str, ann: dict[str, Any]) -> None:
    r = await client.get(f"/v1/programs/{program_id}/stores", headers=_me(ann))
    assert r.status_code == 403
    r = await client.post(f"/v1/programs/{program_id}/accounts", headers=_me(ann), json={
        "email": "x@example.com", "password": "long enough!", "role": "manager"})
    assert r.status_code == 403


async def test_me_without_a_token_is_401(client: Client) -> None:
    assert (await client.get("/v1/me")).status_code == 401


async def test_the_openapi_document_shows_the_member_routes(client: Client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    paths = doc["paths"]
    assert "post" in paths["/v1/programs/{program_id}/members"]
    assert {"get", "patch"} <= set(paths["/v1/me"])
    assert "get" in paths["/v1/me/card"]
    assert "put" in paths["/v1/me/pin"]
    assert {"get", "put"} <= set(paths["/v1/me/preferences"])
    assert "get" in paths["/v1/me/consents"]
    assert "put" in paths["/v1/me/consents/{purpose}"]
