"""The till over HTTP: scan, purchases, refunds, top-ups; scopes, card tokens, PINs,
balances, idempotency. Rows are made with `ledger_fixtures` (plain SQL)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support import ledger_fixtures as fx
from support.helpers import bearer

from api.auth.tokens import TokenService

Client = AsyncTestClient[Litestar]
PIN = "12345"


class Till:
    """A program with two stores, a staff account for the first, and a helper to post."""

    def __init__(self, client: Client, tokens: TokenService, conn: asyncpg.Connection,
                 program_id: uuid.UUID, store_id: uuid.UUID, other_store: uuid.UUID) -> None:
        self.client, self.tokens, self.conn = client, tokens, conn
        self.program_id, self.store_id, self.other_store = program_id, store_id, other_store
        self.staff = tokens.mint_access(sub=uuid.uuid4(), role="staff", program_id=program_id,
                                        store_ids=[store_id])

    async def post(self, path: str, body: dict[str, Any], *, key: str | None = None,
                   token: str | None = None) -> Any:
        headers = bearer(token or self.staff)
        headers["Idempotency-Key"] = key or uuid.uuid4().hex
        return await self.client.post(f"/v1/pos/{path}", json=body, headers=headers)

    def qr(self, m: fx.Member, *, now: float | None = None) -> str:
        return self.tokens.mint_card(card_id=m.card_id, member_id=m.id,
                                     program_id=m.program_id, now=now)[0]

    async def buy(self, m: fx.Member, amount: int, **extra: Any) -> Any:
        key = extra.pop("key", None)
        body = {"store_id": str(self.store_id), "card_number": m.card_number,
                "receipt_id": uuid.uuid4().hex, "amount": amount, "currency": "EUR", **extra}
        return await self.post("purchases", body, key=key)


@pytest.fixture
async def till(client: Client, tokens: TokenService, conn: asyncpg.Connection,
               app: Litestar) -> Till:
    pid = await fx.program(conn, tiers=[
        {"name": "silver", "min_points_12m": 0, "multiplier_milli": 1000},
        {"name": "gold", "min_points_12m": 1000, "multiplier_milli": 1500}])
    return Till(client, tokens, conn, pid, await fx.store(conn, pid), await fx.store(conn, pid))


async def _member(till: Till, app: Litestar, *, points: int = 0, value: int = 0,
                  pin: str | None = PIN) -> fx.Member:
    pin_hash = app.state.hasher.hash(pin) if pin else None
    m = await fx.member(till.conn, till.program_id, pin_hash=pin_hash)
    if points or value:
        await fx.credit(till.conn, m, points=points, stored_value=value)
    return m


# --- purchases ----------------------------------------------------------------------------------


async def test_a_purchase_earns_points_at_the_program_rate_rounded_down(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    r = await till.buy(m, 1299)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["points_earned"] == 12  # 1 point per 1.00, floor(12.99)
    assert body["points_balance"] == 12
    assert body["discount"] == 0 and body["stored_value_spent"] == 0
    assert (await fx.snapshot(till.conn, m)).points == 12
    assert await fx.ledger_sums(till.conn, m.account_id) == (12, 0, 12)


async def test_a_purchase_by_qr_payload_redeems_points_and_spends_stored_value_with_the_pin(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app, points=500, value=3000)
    body = {"store_id": str(till.store_id), "qr_payload": till.qr(m), "receipt_id": "R1",
            "amount": 2000, "currency": "EUR", "redeem": {"points": 200},
            "stored_value": {"amount": 1500, "pin": PIN}}
    r = await till.post("purchases", body)
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["points_redeemed"], out["stored_value_spent"], out["points_earned"]) == (
        200, 1500, 20)
    assert (out["points_balance"], out["stored_value_balance"]) == (320, 1500)
    assert await fx.ledger_sums(till.conn, m.account_id) == (320, 1500, 320)


async def test_tier_multiplier_applies_from_the_tier_reached_before_the_purchase(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    first = (await till.buy(m, 100_000)).json()  # 1000 points at x1: reaches gold after
    second = (await till.buy(m, 1000)).json()  # gold: 10 x 1.5
    assert (first["points_earned"], second["points_earned"]) == (1000, 15)
    tier = await till.conn.fetchval("SELECT tier FROM wallet_accounts WHERE id = $1",
                                    m.account_id)
    assert tier == "gold"


async def test_insufficient_points_is_422_and_nothing_is_written(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app, points=50, value=100)
    before = await fx.snapshot(till.conn, m)
    r = await till.buy(m, 1000, redeem={"points": 51, "pin": PIN})
    assert r.status_code == 422
    assert r.json()["type"] == "/problems/insufficient-balance"
    assert r.json()["field"] == "redeem.points"
    r = await till.buy(m, 1000, stored_value={"amount": 101, "pin": PIN})
    assert r.status_code == 422 and r.json()["field"] == "stored_value.amount"
    assert await fx.snapshot(till.conn, m) == before
    assert await till.conn.fetchval("SELECT count(*) FROM idempotency_keys") == 0


async def test_another_currency_is_422(till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    r = await till.buy(m, 1000, currency="USD")
    assert r.status_code == 422 and r.json()["type"] == "/problems/currency-mismatch"


async def test_unknown_offer_ids_are_refused_naming_the_field(till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    r = await till.buy(m, 1000, redeem={"offer_ids": [str(uuid.uuid4())], "pin": PIN})
    assert r.status_code == 422
    assert r.json()["type"] == "/problems/rule-violation"
    assert r.json()["field"] == "redeem.offer_ids[0]"


async def test_the_same_receipt_twice_in_a_store_is_a_conflict(till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    assert (await till.buy(m, 100, receipt_id="same")).status_code == 201
    r = await till.buy(m, 100, receipt_id="same")
    assert r.status_code == 409 and r.json()["field"] == "receipt_id"


async def test_unknown_fields_and_a_missing_or_double_card_are_400(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    base = {"store_id": str(till.store_id), "receipt_id": "x", "amount": 1, "currency": "EUR"}
    assert (await till.post("purchases", {**base, "card_number": m.card_number,
                                          "tip": 1})).status_code == 400
    assert (await till.post("purchases", base)).status_code == 400
    both = {**base, "card_number": m.card_number, "qr_payload": till.qr(m)}
    assert (await till.post("purchases", both)).status_code == 400


# --- idempotency --------------------------------------------------------------------------------


async def test_every_till_route_requires_an_idempotency_key(till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    for path, body in (
            ("scan", {"store_id": str(till.store_id), "card_number": m.card_number}),
            ("purchases", {"store_id": str(till.store_id), "card_number": m.card_number,
                           "receipt_id": "r", "amount": 1, "currency": "EUR"}),
            ("refunds", {"store_id": str(till.store_id), "transaction_id": str(uuid.uuid4())}),
            ("stored-value/top-ups", {"store_id": str(till.store_id),
                                      "card_number": m.card_number, "amount": 1,
                                      "currency": "EUR"})):
        r = await till.client.post(f"/v1/pos/{path}", json=body, headers=bearer(till.staff))
        assert r.status_code == 400, path
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "Idempotency-Key" in r.text


async def test_a_retried_purchase_replays_the_first_response_and_counts_once(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app, value=1000)
    body = {"store_id": str(till.store_id), "card_number": m.card_number, "receipt_id": "R9",
            "amount": 500, "currency": "EUR", "stored_value": {"amount": 200, "pin": PIN}}
    first = await till.post("purchases", body, key="k-1")
    again = await till.post("purchases", body, key="k-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"
    snap = await fx.snapshot(till.conn, m)
    assert (snap.points, snap.stored_value, snap.transactions) == (5, 800, 1)


async def test_the_same_key_with_another_body_is_409(till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    body = {"store_id": str(till.store_id), "card_number": m.card_number, "receipt_id": "R",
            "amount": 500, "currency": "EUR"}
    assert (await till.post("purchases", body, key="k")).status_code == 201
    r = await till.post("purchases", {**body, "amount": 501}, key="k")
    assert r.status_code == 409
    assert r.json()["type"] == "/problems/idempotency-key-reused"
    assert (await fx.snapshot(till.conn, m)).transactions == 1


async def test_a_refused_request_stores_nothing_so_a_corrected_retry_succeeds(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app, value=100)
    body = {"store_id": str(till.store_id), "card_number": m.card_number, "amount": 500,
            "currency": "EUR"}
    assert (await till.post("stored-value/top-ups", {**body, "currency": "USD"},
                            key="t")).status_code == 422
    r = await till.post("stored-value/top-ups", body, key="t")
    assert r.status_code == 201 and r.json()["stored_value_balance"] == 600


# --- cards and scopes ---------------------------------------------------------------------------


async def test_expired_tampered_and_other_program_qr_payloads_are_invalid_card_tokens(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    other_pid = await fx.program(till.conn)
    stranger = await fx.member(till.conn, other_pid)
    good = till.qr(m)
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for payload in (till.qr(m, now=time.time() - 3600), tampered, till.qr(stranger),
                    "not-a-token"):
        body = {"store_id": str(till.store_id), "qr_payload": payload}
        r = await till.post("scan", body)
        assert r.status_code == 422, payload
        assert r.json()["type"] == "/problems/invalid-card-token"
        r = await till.buy(m, 100, qr_payload=payload, card_number=None)
        assert r.status_code in (400, 422)


async def test_a_blocked_card_is_an_invalid_card_token(till: Till, app: Litestar) -> None:
    m = await fx.member(till.conn, till.program_id, card_status="blocked")
    r = await till.post("scan", {"store_id": str(till.store_id), "qr_payload": till.qr(m)})
    assert r.status_code == 422 and r.json()["type"] == "/problems/invalid-card-token"


async def test_scan_shows_the_cashier_the_minimum(till: Till, app: Litestar) -> None:
    m = await _member(till, app, points=40, value=700)
    r = await till.post("scan", {"store_id": str(till.store_id), "qr_payload": till.qr(m)})
    assert r.status_code == 200, r.text
    assert r.json() == {"member_ref": str(m.account_id), "first_name": "Ada", "tier": None,
                        "points_balance": 40, "stored_value_balance": 700, "offers": []}


async def test_staff_cannot_act_for_a_store_outside_their_store_ids(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    body = {"store_id": str(till.other_store), "card_number": m.card_number}
    r = await till.post("scan", body)
    assert r.status_code == 403
    manager = till.tokens.mint_access(sub=uuid.uuid4(), role="manager",
                                      program_id=till.program_id)
    assert (await till.post("scan", body, token=manager)).status_code == 200


async def test_members_and_admins_cannot_use_the_till(till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    body = {"store_id": str(till.store_id), "card_number": m.card_number}
    member = till.tokens.mint_access(sub=m.id, role="member", program_id=till.program_id)
    admin = till.tokens.mint_access(sub=uuid.uuid4(), role="admin")
    assert (await till.post("scan", body, token=member)).status_code == 403
    assert (await till.post("scan", body, token=admin)).status_code == 403
    r = await till.client.post("/v1/pos/scan", json=body, headers={"Idempotency-Key": "x"})
    assert r.status_code == 401


async def test_a_store_or_card_of_another_program_is_not_found(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    other_pid = await fx.program(till.conn)
    foreign_store = await fx.store(till.conn, other_pid)
    stranger = await fx.member(till.conn, other_pid)
    manager = till.tokens.mint_access(sub=uuid.uuid4(), role="manager",
                                      program_id=till.program_id)
    r = await till.post("scan", {"store_id": str(foreign_store), "card_number": m.card_number},
                        token=manager)
    assert r.status_code == 404 and r.json()["field"] == "store_id"
    r = await till.post("scan", {"store_id": str(till.store_id),
                                 "card_number": stranger.card_number})
    assert r.status_code == 404 and r.json()["field"] == "card_number"


# --- PIN ----------------------------------------------------------------------------------------


async def test_a_wrong_pin_is_counted_and_locks_after_the_limit(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app, value=1000)
    limit = app.state.settings.pin_max_attempts
    for attempt in range(1, limit):
        r = await till.buy(m, 100, stored_value={"amount": 100, "pin": "00000"})
        assert r.status_code == 422 and r.json()["type"] == "/problems/wrong-pin"
        assert await till.conn.fetchval("SELECT pin_failures FROM members WHERE id = $1",
                                        m.id) == attempt
    r = await till.buy(m, 100, stored_value={"amount": 100, "pin": "00000"})
    assert r.status_code == 422 and r.json()["type"] == "/problems/pin-locked"
    r = await till.buy(m, 100, stored_value={"amount": 100, "pin": PIN})  # right, but locked
    assert r.status_code == 422 and r.json()["type"] == "/problems/pin-locked"
    assert int(r.headers["retry-after"]) > 0
    assert (await fx.snapshot(till.conn, m)).stored_value == 1000
    # Points alone need no PIN, even while stored value is locked.
    assert (await till.buy(m, 100)).status_code == 201


async def test_the_right_pin_resets_the_failure_count(till: Till, app: Litestar) -> None:
    m = await _member(till, app, value=1000)
    await till.buy(m, 100, stored_value={"amount": 100, "pin": "00000"})
    assert (await till.buy(m, 100, stored_value={"amount": 100, "pin": PIN})).status_code == 201
    assert await till.conn.fetchval("SELECT pin_failures FROM members WHERE id = $1",
                                    m.id) == 0


async def test_a_right_pin_restarts_the_count_even_when_the_purchase_is_refused(
        till: Till, app: Litestar) -> None:
    """Each attempt is counted before its PIN is verified; a right one restarts the count, so
    a member whose purse is short is not locked out by trying again."""
    m = await _member(till, app, value=100)
    limit = app.state.settings.pin_max_attempts
    for _ in range(limit - 1):
        r = await till.buy(m, 100, stored_value={"amount": 100, "pin": "00000"})
        assert r.json()["type"] == "/problems/wrong-pin"
    r = await till.buy(m, 500, stored_value={"amount": 500, "pin": PIN})  # more than the purse
    assert r.status_code == 422 and r.json()["type"] == "/problems/insufficient-balance"
    assert await till.conn.fetchval("SELECT pin_failures FROM members WHERE id = $1",
                                    m.id) == 0
    r = await till.buy(m, 100, stored_value={"amount": 100, "pin": "00000"})
    assert r.json()["attempts_left"] == limit - 1
    assert (await fx.snapshot(till.conn, m)).stored_value == 100


async def test_the_right_pin_taking_the_last_place_does_not_lock(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app, value=1000)
    limit = app.state.settings.pin_max_attempts
    for _ in range(limit - 1):
        await till.buy(m, 100, stored_value={"amount": 100, "pin": "00000"})
    assert (await till.buy(m, 100, stored_value={"amount": 100, "pin": PIN})).status_code == 201
    row = await till.conn.fetchrow(
        "SELECT pin_failures, pin_locked_until FROM members WHERE id = $1", m.id)
    assert (row["pin_failures"], row["pin_locked_until"]) == (0, None)


async def test_stored_value_without_a_pin_set_is_pin_required(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app, value=1000, pin=None)
    r = await till.buy(m, 100, stored_value={"amount": 100, "pin": PIN})
    assert r.status_code == 422 and r.json()["type"] == "/problems/pin-required"


async def test_stored_value_is_refused_when_the_program_has_none(
        till: Till, app: Litestar, conn: asyncpg.Connection) -> None:
    pid = await fx.program(conn, stored_value=False)
    sid = await fx.store(conn, pid)
    m = await fx.member(conn, pid)
    staff = till.tokens.mint_access(sub=uuid.uuid4(), role="staff", program_id=pid,
                                    store_ids=[sid])
    r = await till.post("stored-value/top-ups", {"store_id": str(sid),
                                                 "card_number": m.card_number, "amount": 100,
                                                 "currency": "EUR"}, token=staff)
    assert r.status_code == 422 and r.json()["type"] == "/problems/stored-value-disabled"


# --- refunds ------------------------------------------------------------------------------------


async def _refund(till: Till, tx: str, amount: int | None = None, **kw: Any) -> Any:
    body: dict[str, Any] = {"store_id": str(till.store_id), "transaction_id": tx}
    if amount is not None:
        body["amount"] = amount
    return await till.post("refunds", body, **kw)


async def test_a_full_refund_with_nothing_spent_restores_the_balances(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app, points=300, value=2000)
    before = await fx.snapshot(till.conn, m)
    buy = (await till.buy(m, 4000, redeem={"points": 100, "pin": PIN},
                          stored_value={"amount": 1000, "pin": PIN})).json()
    r = await _refund(till, buy["transaction_id"])
    assert r.status_code == 201, r.text
    out = r.json()
    assert (out["points_taken_back"], out["points_returned"], out["stored_value_returned"],
            out["points_shortfall"], out["amount"]) == (40, 100, 1000, 0, 4000)
    after = await fx.snapshot(till.conn, m)
    assert (after.points, after.stored_value) == (before.points, before.stored_value)
    assert await fx.ledger_sums(till.conn, m.account_id) == (300, 2000, 300)


async def test_partial_refunds_move_their_share_and_sum_to_the_whole(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app, value=999)
    buy = (await till.buy(m, 999, stored_value={"amount": 999, "pin": PIN})).json()
    assert buy["points_earned"] == 9
    parts = [await _refund(till, buy["transaction_id"], a) for a in (333, 333, 333)]
    outs = [p.json() for p in parts]
    assert [o["points_taken_back"] for o in outs] == [3, 3, 3]
    assert sum(o["stored_value_returned"] for o in outs) == 999
    over = await _refund(till, buy["transaction_id"], 1)
    assert over.status_code == 422
    snap = await fx.snapshot(till.conn, m)
    assert (snap.points, snap.stored_value) == (0, 999)


async def test_a_refund_above_what_is_left_is_422(till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    buy = (await till.buy(m, 1000)).json()
    r = await _refund(till, buy["transaction_id"], 1001)
    assert r.status_code == 422 and r.json()["field"] == "amount"


async def test_a_refund_after_the_earned_points_were_spent_records_a_shortfall(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    buy = (await till.buy(m, 5000)).json()  # earns 50
    assert (await till.buy(m, 0, redeem={"points": 45, "pin": PIN})).status_code == 201
    out = (await _refund(till, buy["transaction_id"])).json()
    assert (out["points_taken_back"], out["points_shortfall"]) == (5, 45)
    assert out["points_balance"] == 0


async def test_a_refund_of_an_unknown_or_foreign_purchase_is_404(
        till: Till, app: Litestar) -> None:
    r = await _refund(till, str(uuid.uuid4()))
    assert r.status_code == 404 and r.json()["field"] == "transaction_id"


async def test_a_retried_refund_replays(till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    buy = (await till.buy(m, 1000)).json()
    a = await _refund(till, buy["transaction_id"], 500, key="rf")
    b = await _refund(till, buy["transaction_id"], 500, key="rf")
    assert a.json() == b.json() and b.headers["idempotent-replayed"] == "true"
    assert (await fx.snapshot(till.conn, m)).points == 5


# --- top-ups and the member's ledger ------------------------------------------------------------


async def test_a_top_up_adds_stored_value(till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    r = await till.post("stored-value/top-ups", {"store_id": str(till.store_id),
                                                 "qr_payload": till.qr(m), "amount": 2500,
                                                 "currency": "EUR"})
    assert r.status_code == 201
    assert r.json()["stored_value_balance"] == 2500 and r.json()["amount"] == 2500


async def test_the_member_reads_their_own_ledger_newest_first_in_pages(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app, value=1000)
    other = await _member(till, app, points=5)
    for amount in (100, 200, 300):
        await till.buy(m, amount)
    token = till.tokens.mint_access(sub=m.id, role="member", program_id=till.program_id)
    r = await till.client.get("/v1/me/ledger?limit=2", headers=bearer(token))
    assert r.status_code == 200
    page = r.json()
    assert [e["points"] for e in page["items"]] == [3, 2]
    assert page["items"][0]["balance_after"] == {"points": 6, "stored_value": 1000}
    assert page["items"][0]["kind"] == "earn"
    assert page["items"][0]["store_id"] == str(till.store_id)
    r = await till.client.get(f"/v1/me/ledger?limit=2&cursor={page['next_cursor']}",
                              headers=bearer(token))
    rest = r.json()
    assert [e["kind"] for e in rest["items"]] == ["earn", "adjust"]
    assert rest["next_cursor"] is None
    ids = {e["id"] for e in page["items"] + rest["items"]}
    theirs = till.tokens.mint_access(sub=other.id, role="member", program_id=till.program_id)
    r = await till.client.get("/v1/me/ledger", headers=bearer(theirs))
    assert not ids & {e["id"] for e in r.json()["items"]}
    staff = await till.client.get("/v1/me/ledger", headers=bearer(till.staff))
    assert staff.status_code == 403


async def test_points_past_their_expiry_are_expired_before_a_redemption(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app)
    long_ago = datetime.now(UTC) - timedelta(days=400)
    await fx.credit(till.conn, m, points=100, now=long_ago)  # expired 35 days ago
    await fx.credit(till.conn, m, points=10)
    r = await till.buy(m, 0, redeem={"points": 11, "pin": PIN})
    assert r.status_code == 422
    r = await till.buy(m, 0, redeem={"points": 10, "pin": PIN})
    assert r.status_code == 201 and r.json()["points_balance"] == 0
    kinds = await till.conn.fetch(
        "SELECT kind, points FROM ledger_entries WHERE wallet_account_id = $1 ORDER BY seq",
        m.account_id)
    assert [(k["kind"], k["points"]) for k in kinds] == [
        ("adjust", 100), ("adjust", 10), ("expire", -100), ("redeem", -10)]


async def test_a_retried_scan_replays_and_another_body_with_its_key_is_409(
        till: Till, app: Litestar) -> None:
    m = await _member(till, app, points=3)
    body = {"store_id": str(till.store_id), "card_number": m.card_number}
    first = await till.post("scan", body, key="s1")
    await fx.credit(till.conn, m, points=4)
    again = await till.post("scan", body, key="s1")
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = await till.post("scan", {**body, "store_id": str(till.store_id),
                                     "qr_payload": None, "card_number": "9" * 16}, key="s1")
    assert other.status_code == 409
