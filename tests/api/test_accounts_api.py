"""Accounts: admins create managers and staff; a manager creates staff of their own program."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.helpers import bearer

from api.auth.tokens import Role, TokenService

Client = AsyncTestClient[Litestar]

PROGRAM: dict[str, Any] = {
    "name": "Café Lumière", "currency": "EUR", "timezone": "Europe/Paris",
    "earn_rate": {"points": 1, "per_amount": 100}, "points_expiry_days": 365,
}
ZONE = {"type": "Circle", "center": [2.3319, 48.8710], "radius_m": 80}
PASSWORD = "a long passphrase"


def _admin(tokens: TokenService) -> dict[str, str]:
    return bearer(tokens.mint_access(sub=uuid.uuid4(), role="admin"))


def _as(tokens: TokenService, role: Role, program_id: str) -> dict[str, str]:
    return bearer(tokens.mint_access(sub=uuid.uuid4(), role=role,
                                     program_id=uuid.UUID(program_id)))


async def _program(client: Client, tokens: TokenService) -> str:
    r = await client.post("/v1/programs", json=PROGRAM, headers=_admin(tokens))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _store(client: Client, tokens: TokenService, program_id: str, code: str) -> str:
    r = await client.post(f"/v1/programs/{program_id}/stores", headers=_admin(tokens),
                          json={"code": code, "name": code, "zone": ZONE})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
async def program_id(client: Client, tokens: TokenService) -> str:
    return await _program(client, tokens)


async def test_an_admin_creates_a_manager_who_can_then_log_in(
        client: Client, tokens: TokenService, program_id: str) -> None:
    r = await client.post(f"/v1/programs/{program_id}/accounts", headers=_admin(tokens),
                          json={"email": "boss@example.com", "password": PASSWORD,
                                "role": "manager"})
    assert r.status_code == 201, r.text
    account = r.json()
    assert account["role"] == "manager"
    assert account["program_id"] == program_id
    assert account["store_ids"] == []
    assert "password" not in account
    assert not any("hash" in k for k in account)
    r = await client.post("/v1/auth/token", json={
        "grant_type": "password", "program_id": program_id, "email": "boss@example.com",
        "password": PASSWORD})
    assert r.status_code == 200, r.text


async def test_the_password_is_stored_hashed(
        client: Client, tokens: TokenService, program_id: str,
        conn: asyncpg.Connection) -> None:
    await client.post(f"/v1/programs/{program_id}/accounts", headers=_admin(tokens),
                      json={"email": "boss@example.com", "password": PASSWORD,
                            "role": "manager"})
    stored = await conn.fetchval("SELECT password_hash FROM accounts WHERE email = $1",
                                 "boss@example.com")
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_a_manager_creates_staff_for_stores_of_their_program(
        client: Client, tokens: TokenService, program_id: str) -> None:
    store = await _store(client, tokens, program_id, "OPERA")
    r = await client.post(f"/v1/programs/{program_id}/accounts",
                          headers=_as(tokens, "manager", program_id),
                          json={"email": "till@example.com", "password": PASSWORD,
                                "role": "staff", "store_ids": [store]})
    assert r.status_code == 201, r.text
    assert r.json()["store_ids"] == [store]


async def test_a_manager_cannot_create_a_manager(
        client: Client, tokens: TokenService, program_id: str) -> None:
    r = await client.post(f"/v1/programs/{program_id}/accounts",
                          headers=_as(tokens, "manager", program_id),
                          json={"email": "boss2@example.com", "password": PASSWORD,
                                "role": "manager"})
    assert r.status_code == 403
    assert r.json()["field"] == "role"


async def test_a_manager_of_another_program_cannot_create_accounts_here(
        client: Client, tokens: TokenService, program_id: str) -> None:
    other = await _program(client, tokens)
    store = await _store(client, tokens, program_id, "OPERA")
    r = await client.post(f"/v1/programs/{program_id}/accounts",
                          headers=_as(tokens, "manager", other),
                          json={"email": "spy@example.com", "password": PASSWORD,
                                "role": "staff", "store_ids": [store]})
    assert r.status_code == 403


@pytest.mark.parametrize("role", ["staff", "member"])
async def test_staff_and_members_cannot_create_accounts(
        client: Client, tokens: TokenService, program_id: str, role: Role) -> None:
    store = await _store(client, tokens, program_id, "OPERA")
    r = await client.post(f"/v1/programs/{program_id}/accounts",
                          headers=_as(tokens, role, program_id),
                          json={"email": "x@example.com", "password": PASSWORD,
                                "role": "staff", "store_ids": [store]})
    assert r.status_code == 403


async def test_staff_stores_must_belong_to_the_program(
        client: Client, tokens: TokenService, program_id: str) -> None:
    other = await _program(client, tokens)
    foreign = await _store(client, tokens, other, "ELSEWHERE")
    r = await client.post(f"/v1/programs/{program_id}/accounts", headers=_admin(tokens),
                          json={"email": "till@example.com", "password": PASSWORD,
                                "role": "staff", "store_ids": [foreign]})
    assert r.status_code == 422
    assert r.json()["field"] == "store_ids"
    assert foreign in r.json()["detail"]


async def test_staff_need_a_store_and_managers_have_none(
        client: Client, tokens: TokenService, program_id: str) -> None:
    store = await _store(client, tokens, program_id, "OPERA")
    url = f"/v1/programs/{program_id}/accounts"
    r = await client.post(url, headers=_admin(tokens), json={
        "email": "till@example.com", "password": PASSWORD, "role": "staff"})
    assert r.status_code == 422
    assert r.json()["field"] == "store_ids"
    r = await client.post(url, headers=_admin(tokens), json={
        "email": "boss@example.com", "password": PASSWORD, "role": "manager",
        "store_ids": [store]})
    assert r.status_code == 422
    assert r.json()["field"] == "store_ids"


async def test_a_duplicate_email_in_the_program_is_409(
        client: Client, tokens: TokenService, program_id: str) -> None:
    url = f"/v1/programs/{program_id}/accounts"
    body = {"email": "boss@example.com", "password": PASSWORD, "role": "manager"}
    assert (await client.post(url, headers=_admin(tokens), json=body)).status_code == 201
    r = await client.post(url, headers=_admin(tokens), json={**body, "email": "BOSS@example.com"})
    assert r.status_code == 409
    assert r.json()["field"] == "email"


async def test_the_same_email_may_work_for_two_programs(
        client: Client, tokens: TokenService, program_id: str) -> None:
    other = await _program(client, tokens)
    body = {"email": "boss@example.com", "password": PASSWORD, "role": "manager"}
    for pid in (program_id, other):
        r = await client.post(f"/v1/programs/{pid}/accounts", headers=_admin(tokens), json=body)
        assert r.status_code == 201


@pytest.mark.parametrize(("body", "field"), [
    ({"email": "boss@example.com", "password": "short", "role": "manager"}, "password"),
    ({"email": "not-an-email", "password": PASSWORD, "role": "manager"}, "email"),
    ({"email": "boss@example.com", "password": PASSWORD, "role": "admin"}, "role"),
    ({"email": "boss@example.com", "password": PASSWORD, "role": "staff",
      "store_ids": ["nope"]}, "store_ids[0]"),
    ({"email": "boss@example.com", "password": PASSWORD, "role": "manager", "x": 1}, "x"),
], ids=["short-password", "bad-email", "admin-role", "bad-store-id", "unknown-field"])
async def test_a_malformed_account_is_400(
        client: Client, tokens: TokenService, program_id: str, body: dict[str, Any],
        field: str) -> None:
    r = await client.post(f"/v1/programs/{program_id}/accounts", headers=_admin(tokens),
                          json=body)
    assert r.status_code == 400, r.text
    assert field in r.json()["detail"]


async def test_accounts_of_an_unknown_program_are_404(
        client: Client, tokens: TokenService) -> None:
    r = await client.post(f"/v1/programs/{uuid.uuid4()}/accounts", headers=_admin(tokens),
                          json={"email": "boss@example.com", "password": PASSWORD,
                                "role": "manager"})
    assert r.status_code == 404
