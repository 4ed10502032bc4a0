"""Erasure never forfeits stored value: it refuses (409, naming the balance) until the purse is
paid out — in cash at a till with the member's PIN, or by an admin handling the request —
each payout a ledger entry like any other, idempotent, logged."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest
from support.helpers import Client, admin, bearer, create_program, create_store, manager, signup

from api.auth.tokens import TokenService

PASSWORD = "a long enough password"  # the one `signup` uses
PIN = "13579"


class Member:
    """A member (through the API) with 4,400 of stored value and a PIN, and a till."""

    def __init__(self, client: Client, tokens: TokenService, program_id: str, store_id: str,
                 member_id: str, headers: dict[str, str], card_number: str) -> None:
        self.client, self.tokens = client, tokens
        self.program_id, self.store_id, self.id = program_id, store_id, member_id
        self.headers, self.card_number = headers, card_number
        self.staff = bearer(tokens.mint_access(
            sub=uuid.uuid4(), role="staff", program_id=uuid.UUID(program_id),
            store_ids=[uuid.UUID(store_id)]))

    async def till(self, path: str, body: dict[str, Any], key: str | None = None) -> Any:
        return await self.client.post(
            f"/v1/pos/{path}", json={"store_id": self.store_id, **body},
            headers={**self.staff, "Idempotency-Key": key or uuid.uuid4().hex})

    async def payout(self, amount: int, pin: str = PIN, key: str | None = None) -> Any:
        return await self.till("stored-value/payouts", {
            "card_number": self.card_number, "amount": amount, "currency": "EUR",
            "pin": pin}, key)

    async def erase(self) -> Any:
        return await self.client.request("DELETE", "/v1/me", json={"password": PASSWORD},
                                         headers=self.headers)

    async def balance(self) -> int:
        r = await self.client.get("/v1/me", headers=self.headers)
        assert r.status_code == 200, r.text
        return int(r.json()["stored_value_balance"])


@pytest.fixture
async def member(client: Client, tokens: TokenService) -> Member:
    pid = await create_program(client, tokens)
    sid = await create_store(client, tokens, pid)
    member_id, headers = await signup(client, pid)
    card = (await client.get("/v1/me/card", headers=headers)).json()["card_number"]
    m = Member(client, tokens, pid, sid, member_id, headers, card)
    r = await client.put("/v1/me/pin", headers=headers, json={"pin": PIN, "password": PASSWORD})
    assert r.status_code == 204, r.text
    r = await m.till("stored-value/top-ups", {"card_number": card, "amount": 4400,
                                              "currency": "EUR"})
    assert r.status_code == 201, r.text
    return m


async def test_erasing_myself_with_stored_value_is_refused_naming_the_balance(
        member: Member) -> None:
    r = await member.erase()
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["type"] == "/problems/stored-value-remaining"
    assert (problem["stored_value_balance"], problem["currency"]) == (4400, "EUR")
    assert "4400" in problem["detail"] and "paid out" in problem["detail"]
    assert await member.balance() == 4400  # nothing was erased: the token still works


async def test_a_till_payout_with_the_pin_empties_the_purse_then_erasure_succeeds(
        member: Member, conn: asyncpg.Connection) -> None:
    r = await member.payout(4000, key="cash-1")
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["amount"], out["currency"], out["stored_value_balance"]) == (4000, "EUR", 400)
    again = await member.payout(4000, key="cash-1")  # a retry: replayed, paid once
    assert again.json() == out and again.headers["idempotent-replayed"] == "true"
    assert await member.balance() == 400
    assert (await member.erase()).status_code == 409
    assert (await member.payout(400)).json()["stored_value_balance"] == 0

    tx = await conn.fetchrow("SELECT kind, amount, store_id FROM transactions WHERE id = $1",
                             uuid.UUID(out["transaction_id"]))
    assert tuple(tx) == ("payout", 4000, uuid.UUID(member.store_id))
    entries = await conn.fetch(
        "SELECT kind, stored_value FROM ledger_entries WHERE transaction_id = $1",
        uuid.UUID(out["transaction_id"]))
    assert [tuple(e) for e in entries] == [("stored_value_payout", -4000)]
    log = (await member.client.get("/v1/me/access-log", headers=member.headers)).json()
    assert sum(e["action"] == "till.payout" for e in log["items"]) == 2

    assert (await member.erase()).status_code == 204
    assert (await member.client.get("/v1/me", headers=member.headers)).status_code == 401


async def test_a_till_payout_needs_the_right_pin_and_no_more_than_the_purse(
        member: Member) -> None:
    r = await member.payout(100, pin="00000")
    assert r.status_code == 422
    assert (r.json()["type"], r.json()["field"]) == ("/problems/wrong-pin", "pin")
    assert r.json()["attempts_left"] >= 1
    r = await member.payout(4401)
    assert r.status_code == 422
    assert (r.json()["type"], r.json()["field"]) == ("/problems/insufficient-balance", "amount")
    r = await member.till("stored-value/payouts", {"card_number": member.card_number,
                                                   "amount": 100, "currency": "USD",
                                                   "pin": PIN})
    assert r.status_code == 422 and r.json()["type"] == "/problems/currency-mismatch"
    r = await member.client.post("/v1/pos/stored-value/payouts", headers=member.staff, json={
        "store_id": member.store_id, "card_number": member.card_number, "amount": 1,
        "currency": "EUR", "pin": PIN})
    assert r.status_code == 400 and r.json()["type"] == "/problems/idempotency-key-missing"
    assert await member.balance() == 4400


async def test_an_admin_pays_the_purse_out_on_request_then_erases(
        member: Member, conn: asyncpg.Connection) -> None:
    client, boss = member.client, admin(member.tokens)
    erasure = f"/v1/admin/members/{member.id}/erasure"
    r = await client.post(erasure, headers=boss, json={"reason": "ticket 4411"})
    assert r.status_code == 409 and r.json()["stored_value_balance"] == 4400

    url = f"/v1/admin/members/{member.id}/stored-value/payouts"
    body = {"reason": "ticket 4411", "reference": "SEPA-2026-000123"}
    r = await client.post(url, headers={**boss, "Idempotency-Key": "t4411"}, json=body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["amount"], out["stored_value_balance"]) == (4400, 0)
    again = await client.post(url, headers={**boss, "Idempotency-Key": "t4411"}, json=body)
    assert again.json() == out and again.headers["idempotent-replayed"] == "true"
    r = await client.post(url, headers={**boss, "Idempotency-Key": "t4412"}, json=body)
    assert r.status_code == 422 and r.json()["field"] == "amount"  # nothing left
    export = (await client.get("/v1/me/export", headers=member.headers)).json()
    (paid,) = [t for t in export["transactions"] if t["kind"] == "payout"]
    assert (paid["amount"], paid["store_id"], paid["reference"]) == (
        4400, None, "SEPA-2026-000123")

    assert (await client.post(erasure, headers=boss, json={"reason": "ticket 4411"})
            ).status_code == 204
    tx = await conn.fetchrow(
        "SELECT kind, amount, store_id, reference FROM transactions WHERE id = $1",
        uuid.UUID(out["transaction_id"]))
    assert tuple(tx) == ("payout", 4400, None, "SEPA-2026-000123")  # kept with the books
    log = await conn.fetch("SELECT action, reason, member_id FROM access_log "
                           "WHERE actor_role = 'admin' ORDER BY at")
    assert [tuple(e) for e in log] == [("admin.payout", "ticket 4411", None),
                                       ("admin.erasure", "ticket 4411", None)]


async def test_only_admins_record_payouts_and_the_request_is_named(
        member: Member) -> None:
    url = f"/v1/admin/members/{member.id}/stored-value/payouts"
    r = await member.client.post(url, headers={**manager(member.tokens, member.program_id),
                                               "Idempotency-Key": "k"}, json={"reason": "x"})
    assert r.status_code == 403
    boss = {**admin(member.tokens), "Idempotency-Key": "k"}
    r = await member.client.post(url, headers=boss, json={})
    assert r.status_code == 400 and "reason" in r.text
    r = await member.client.post(url, headers=boss, json={"reason": "mail from a@b.example"})
    assert r.status_code == 400  # a reference, not an e-mail address: it outlives erasure
    r = await member.client.post(f"/v1/admin/members/{uuid.uuid4()}/stored-value/payouts",
                                 headers=boss, json={"reason": "ticket 1"})
    assert r.status_code == 404
    assert await member.balance() == 4400


async def test_the_privacy_notice_says_how_stored_value_is_paid_out(client: Client) -> None:
    rights = (await client.get("/v1/privacy/notice")).json()["rights"]
    erasure = next(r for r in rights if r["right"] == "erasure")
    assert "stored value" in erasure["how"].lower() and "paid out" in erasure["how"]
    payout = next(r for r in rights if "stored value" in r["right"])
    assert "PIN" in payout["how"] and "/v1/pos/stored-value/payouts" in payout["how"]
