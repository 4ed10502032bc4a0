"""A login that forgets `program_id` for a program's account says what is missing — to
someone with the right password only; a wrong password gets the usual 401."""

from __future__ import annotations

from support.helpers import Client, admin, create_program, signup

from api.auth.tokens import TokenService

PASSWORD = "a long enough password"  # the one `signup` uses


async def test_a_member_login_without_program_id_names_the_missing_field(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    await signup(client, pid, email="ada@example.com")
    r = await client.post("/v1/auth/token", json={
        "grant_type": "password", "email": "ada@example.com", "password": PASSWORD})
    assert r.status_code == 400, r.text
    problem = r.json()
    assert problem["type"] == "/problems/program-id-required"
    assert problem["field"] == "program_id"
    assert "program_id" in problem["detail"] and "member" in problem["detail"]
    # With it, the same credentials log in.
    r = await client.post("/v1/auth/token", json={
        "grant_type": "password", "email": "ada@example.com", "password": PASSWORD,
        "program_id": pid})
    assert r.status_code == 200, r.text


async def test_a_staff_login_without_program_id_names_the_missing_field(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    r = await client.post(f"/v1/programs/{pid}/accounts", headers=admin(tokens), json={
        "email": "till@example.com", "password": "staff password 123", "role": "manager"})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/auth/token", json={
        "grant_type": "password", "email": "till@example.com",
        "password": "staff password 123"})
    assert r.status_code == 400 and r.json()["type"] == "/problems/program-id-required"
    assert "manager" in r.json()["detail"]


async def test_a_wrong_password_without_program_id_reveals_nothing(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    await signup(client, pid, email="ada@example.com")
    wrong = await client.post("/v1/auth/token", json={
        "grant_type": "password", "email": "ada@example.com", "password": "not the password"})
    unknown = await client.post("/v1/auth/token", json={
        "grant_type": "password", "email": "nobody@example.com", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
