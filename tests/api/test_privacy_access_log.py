"""The access log: every staff, manager or admin route that reads a member's data leaves an
entry the member sees; admins find whose data an actor read in a time window."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
from litestar import Litestar
from support.helpers import Client, bearer, create_program, create_store, manager, now, signup
from support.privacy_scenario import pos, rich_member, routes_by_role

from api import web
from api.auth.tokens import TokenService

# Every route staff, managers or admins can call, classified. A new route must be added to
# one of these two tables: the test below fails until it is.
READS_MEMBER_DATA: dict[tuple[str, str], str] = {
    ("POST", "/v1/pos/scan"): "till.scan",
    ("POST", "/v1/pos/purchases"): "till.purchase",
    ("POST", "/v1/pos/refunds"): "till.refund",
    ("POST", "/v1/pos/stored-value/top-ups"): "till.top_up",
    ("POST", "/v1/pos/vouchers/redeem"): "till.voucher",
    ("POST", "/v1/pos/stored-value/payouts"): "till.payout",
    ("POST", "/v1/admin/members/{member_id}/stored-value/payouts"): "admin.payout",
    ("GET", "/v1/programs/{program_id}/members/{member_id}"): "support.view",
    ("GET", "/v1/programs/{program_id}/members/lookup"): "support.view",
    ("GET", "/v1/admin/members/{member_id}/export"): "admin.export",
    ("POST", "/v1/admin/members/{member_id}/erasure"): "admin.erasure",
}
NO_MEMBER_DATA: dict[tuple[str, str], str] = {
    ("POST", "/v1/programs"): "program definition",
    ("GET", "/v1/programs"): "program definition",
    ("GET", "/v1/pos/stores"): "the till's stores: code and name",
    ("GET", "/v1/pos/stores/{store_id}/transactions"):
        "a store's till transactions: amounts, no member identity or account",
    ("GET", "/v1/programs/{program_id}"): "program definition",
    ("PATCH", "/v1/programs/{program_id}"): "program definition",
    ("POST", "/v1/programs/{program_id}/accounts"): "staff accounts, not members",
    ("GET", "/v1/admin/access-log"): "the audit trail itself: ids, no personal data",
    **{(m, p): "stores and zones" for m, p in (
        ("POST", "/v1/programs/{program_id}/stores"),
        ("GET", "/v1/programs/{program_id}/stores"),
        ("GET", "/v1/programs/{program_id}/stores/{store_id}"),
        ("PATCH", "/v1/programs/{program_id}/stores/{store_id}"),
        ("DELETE", "/v1/programs/{program_id}/stores/{store_id}"),
        ("POST", "/v1/programs/{program_id}/stores/import"),
        ("POST", "/v1/programs/{program_id}/stores/import/check"),
        ("GET", "/v1/programs/{program_id}/stores.geojson"),
        ("PUT", "/v1/programs/{program_id}/weather"))},
    **{(m, p): "reward definitions and aggregate statistics" for m, p in (
        ("POST", "/v1/programs/{program_id}/rewards"),
        ("GET", "/v1/programs/{program_id}/rewards"),
        ("GET", "/v1/programs/{program_id}/rewards/{reward_id}"),
        ("PATCH", "/v1/programs/{program_id}/rewards/{reward_id}"),
        ("POST", "/v1/programs/{program_id}/rewards/{reward_id}/retire"),
        ("GET", "/v1/programs/{program_id}/rewards/{reward_id}/revisions"),
        ("GET", "/v1/programs/{program_id}/rewards/{reward_id}/stats"))},
    **{(m, p): "campaign definitions and aggregate statistics" for m, p in (
        ("POST", "/v1/programs/{program_id}/campaigns"),
        ("GET", "/v1/programs/{program_id}/campaigns"),
        ("GET", "/v1/programs/{program_id}/campaigns/{campaign_id}"),
        ("PATCH", "/v1/programs/{program_id}/campaigns/{campaign_id}"),
        ("POST", "/v1/programs/{program_id}/campaigns/{campaign_id}/activate"),
        ("POST", "/v1/programs/{program_id}/campaigns/{campaign_id}/pause"),
        ("GET", "/v1/programs/{program_id}/campaigns/{campaign_id}/stats"),
        ("GET", "/v1/programs/{program_id}/campaigns/{campaign_id}/stats.csv"),
        ("GET", "/v1/programs/{program_id}/campaigns/{campaign_id}/revisions"),
        ("GET", "/v1/programs/{program_id}/stats"),
        ("GET", "/v1/programs/{program_id}/stats.csv"))},
    **{(m, "/v1/programs/{program_id}/pass-design"): "the program's look on wallet passes"
       for m in ("GET", "PUT")},
}
PUBLIC = {("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics"), ("POST", "/v1/auth/token"),
          ("GET", "/v1"),
          ("POST", "/v1/programs/{program_id}/members"), ("GET", "/v1/privacy/notice"),
          ("GET", "/v1/programs/{program_id}/privacy/notice"),
          ("GET", "/v1/privacy/notice/versions"), ("GET", "/v1/privacy/notice/versions/{version}"),
          # The browser apps: their pages are shells with no data in them, their session
          # routes sign a staff account in (or renew, end its session) and return that
          # account, no member's data; what the pages show comes from the guarded v1 routes.
          *{(m, f"/{app}{p}") for app in ("console", "till")
            for m, p in (("GET", ""), ("POST", "/session"), ("POST", "/session/refresh"),
                         ("POST", "/session/logout"))},
          # ... and the files they load: our own code and the pinned front-end packages.
          ("GET", "/static/app/{file_path:path}"),
          *{("GET", f"/static/vendor/{name}/{{file_path:path}}") for name in web.VENDOR}}
# Apple's PassKit web service: no role, each call names a pass and carries its own
# `ApplePass` token (the list of a device's updated serials carries none, as Apple defines).
PASSKIT = {(m, f"{prefix}{path}") for prefix in ("/v1/passkit", "/v1/passkit/v1")
           for m, path in (
               ("POST", "/devices/{device}/registrations/{pass_type}/{serial}"),
               ("DELETE", "/devices/{device}/registrations/{pass_type}/{serial}"),
               ("GET", "/devices/{device}/registrations/{pass_type}"),
               ("GET", "/passes/{pass_type}/{serial}"), ("POST", "/log"))}
OPERATORS = {"staff", "manager", "admin"}


async def member_log(client: Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = await client.get("/v1/me/access-log", params={"limit": 500}, headers=headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_every_route_open_to_staff_managers_or_admins_is_classified(app: Litestar) -> None:
    routes = routes_by_role(app)
    unguarded = {k for k, admitted in routes.items()
                 if not admitted and not k[1].startswith("/schema")}
    assert unguarded == PUBLIC | PASSKIT, "a route without a roles guard: classify it"
    operator = {k for k, admitted in routes.items() if admitted & OPERATORS}
    unclassified = operator - set(READS_MEMBER_DATA) - set(NO_MEMBER_DATA)
    assert not unclassified, f"classify in READS_MEMBER_DATA or NO_MEMBER_DATA: {unclassified}"
    assert not (set(READS_MEMBER_DATA) | set(NO_MEMBER_DATA)) - operator, "stale entries"


async def test_each_route_that_reads_a_members_data_writes_an_entry_the_member_sees(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    r = await rich_member(client, tokens)  # scan, top-up, purchase, refund by staff
    mgr_id = uuid.uuid4()
    mgr = bearer(tokens.mint_access(sub=mgr_id, role="manager",
                                    program_id=uuid.UUID(r.program_id)))
    await pos(client, mgr, "scan", {"store_id": r.store_id, "card_number": r.card_number})
    resp = await client.get(f"/v1/programs/{r.program_id}/members/{r.member_id}", headers=mgr)
    assert resp.status_code == 200, resp.text
    assert resp.json()["email"] == r.email
    resp = await client.get(f"/v1/admin/members/{r.member_id}/export", headers=r.admin)
    assert resp.status_code == 200, resp.text

    seen = {(e["action"], e["actor_role"], e["purpose"])
            for e in await member_log(client, r.headers)}
    assert seen == {
        ("till.scan", "staff", "till_service"), ("till.top_up", "staff", "till_service"),
        ("till.purchase", "staff", "till_service"), ("till.refund", "staff", "till_service"),
        ("till.voucher", "staff", "till_service"),
        ("till.payout", "staff", "till_service"),
        ("till.scan", "manager", "till_service"), ("support.view", "manager", "member_support"),
        ("admin.export", "admin", "data_subject_request")}
    logged = {a for a, _, _ in seen}
    # (an operator's payout is logged too: tests/api/test_payouts_api.py)
    assert logged == set(READS_MEMBER_DATA.values()) - {"admin.erasure", "admin.payout"}

    resp = await client.post(f"/v1/admin/members/{r.member_id}/erasure", headers=r.admin,
                             json={"reason": "ticket 4411"})
    assert resp.status_code == 204
    row = await conn.fetchrow("SELECT member_id, actor_role, purpose, reason FROM access_log "
                              "WHERE action = 'admin.erasure'")
    assert row is not None and tuple(row) == (None, "admin", "data_subject_request",
                                              "ticket 4411")


async def test_an_entry_holds_who_what_why_when_and_whose_but_no_personal_data(
        conn: asyncpg.Connection) -> None:
    columns = {r[0] for r in await conn.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'access_log'")}
    # `reason`: the reference of the request an operator handled (a ticket number), a
    # pattern that fits no e-mail address or phone number.
    assert columns == {"id", "at", "member_id", "program_id", "actor_id", "actor_role",
                       "action", "purpose", "store_id", "reason"}


async def test_the_member_sees_their_log_newest_first_in_pages_without_actor_ids(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    sid = await create_store(client, tokens, pid)
    r = await client.post(f"/v1/programs/{pid}/members", json={
        "email": "pages@example.com", "password": "a long enough password",
        "first_name": "Pat"})
    card, me = r.json()["card"]["card_number"], bearer(r.json()["access_token"])
    till = bearer(tokens.mint_access(sub=uuid.uuid4(), role="staff",
                                     program_id=uuid.UUID(pid), store_ids=[uuid.UUID(sid)]))
    for _ in range(3):
        await pos(client, till, "scan", {"store_id": sid, "card_number": card})
    first = await client.get("/v1/me/access-log", params={"limit": 2}, headers=me)
    body = first.json()
    assert len(body["items"]) == 2 and body["next_cursor"]
    assert set(body["items"][0]) == {"at", "actor_role", "action", "purpose", "store_id"}
    rest = await client.get("/v1/me/access-log", headers=me,
                            params={"limit": 2, "cursor": body["next_cursor"]})
    assert len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
    ats = [e["at"] for e in body["items"] + rest.json()["items"]]
    assert ats == sorted(ats, reverse=True)


async def test_an_admin_lists_whose_data_one_actor_read_in_a_time_window(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    sid = await create_store(client, tokens, pid)
    thief, other = uuid.uuid4(), uuid.uuid4()

    def till(sub: uuid.UUID) -> dict[str, str]:
        return bearer(tokens.mint_access(sub=sub, role="staff", program_id=uuid.UUID(pid),
                                         store_ids=[uuid.UUID(sid)]))

    victims = []
    for i in range(3):
        r = await client.post(f"/v1/programs/{pid}/members", json={
            "email": f"v{i}@example.com", "password": "a long enough password",
            "first_name": "V"})
        victims.append(r.json()["member"]["id"])
        card = r.json()["card"]["card_number"]
        await pos(client, till(thief if i < 2 else other), "scan",
                  {"store_id": sid, "card_number": card})
    admin = bearer(tokens.mint_access(sub=uuid.uuid4(), role="admin"))

    r = await client.get("/v1/admin/access-log", params={"actor_id": str(thief)}, headers=admin)
    assert r.status_code == 200, r.text
    assert sorted(e["member_id"] for e in r.json()["items"]) == sorted(victims[:2])
    assert {e["actor_id"] for e in r.json()["items"]} == {str(thief)}
    earlier = {"actor_id": str(thief), "from": (now() - timedelta(days=9)).isoformat(),
               "to": (now() - timedelta(days=8)).isoformat()}
    r = await client.get("/v1/admin/access-log", params=earlier, headers=admin)
    assert r.json()["items"] == []
    r = await client.get("/v1/admin/access-log", headers=manager(tokens, pid))
    assert r.status_code == 403


async def test_a_manager_sees_only_members_of_their_program(
        client: Client, tokens: TokenService) -> None:
    mine, theirs = await create_program(client, tokens), await create_program(client, tokens)
    member_id, _ = await signup(client, theirs)
    r = await client.get(f"/v1/programs/{mine}/members/{member_id}",
                         headers=manager(tokens, mine))
    assert r.status_code == 404
    r = await client.get(f"/v1/programs/{theirs}/members/{member_id}",
                         headers=manager(tokens, mine))
    assert r.status_code == 403


async def test_a_lookup_by_email_or_card_is_logged_like_a_support_view(
        client: Client, tokens: TokenService) -> None:
    pid = await create_program(client, tokens)
    email = f"found{uuid.uuid4().hex[:8]}@example.com"
    r = await client.post(f"/v1/programs/{pid}/members", json={
        "email": email, "password": "a long enough password", "first_name": "Lou"})
    member_id, me = r.json()["member"]["id"], bearer(r.json()["access_token"])
    card = r.json()["card"]["card_number"]
    lookup = f"/v1/programs/{pid}/members/lookup"
    by_email = await client.get(lookup, params={"email": email}, headers=manager(tokens, pid))
    assert by_email.status_code == 200, by_email.text
    assert (by_email.json()["id"], by_email.json()["email"]) == (member_id, email)
    by_card = await client.get(lookup, params={"card_number": card},
                               headers=manager(tokens, pid))
    assert by_card.json()["id"] == member_id
    both = await client.get(lookup, params={"email": email, "card_number": card},
                            headers=manager(tokens, pid))
    assert both.status_code == 422 and both.json()["field"] == "email"
    staff_read = await client.get(lookup, params={"email": email},
                                  headers=bearer(tokens.mint_access(
                                      sub=uuid.uuid4(), role="staff", program_id=uuid.UUID(pid))))
    assert staff_read.status_code == 403

    seen = [(e["action"], e["actor_role"], e["purpose"]) for e in await member_log(client, me)]
    assert seen == [("support.view", "manager", "member_support")] * 2
