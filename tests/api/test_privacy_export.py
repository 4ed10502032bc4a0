"""`GET /v1/me/export`: everything held about the member. The coverage test reads the
schema's foreign keys, so a table added later that references members (or their wallet
account) fails it until the export covers it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import pytest
from support.helpers import Client, admin, create_program, signup
from support.pass_fixtures import Pki, make_pki
from support.privacy_scenario import FIRST_NAME, rich_member

from api.auth.tokens import TokenService
from api.config import Settings
from wallet.privacy.rights import EXPORTED_TABLES

# Tables that name a member without a foreign key (checked by the erasure dump test too).
WITHOUT_FK = {"refresh_tokens": "subject_id"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def settings(settings: Settings, pki: Pki) -> Settings:
    # raw pings kept; wallet passes configured (the scenario adds a pass and a device)
    return msgspec.structs.replace(settings, raw_ping_retention_s=3600, **pki.settings())


async def member_tables(conn: asyncpg.Connection) -> dict[str, tuple[str, str]]:
    """table → (column, what it holds: 'member' or 'wallet') for every table that
    references members or wallet_accounts, plus those two tables themselves."""
    rows = await conn.fetch("""
        SELECT c.conrelid::regclass::text AS tbl, a.attname AS col,
               c.confrelid::regclass::text AS target
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        WHERE c.contype = 'f' AND c.confrelid IN ('members'::regclass,
                                                   'wallet_accounts'::regclass)""")
    found = {"members": ("id", "member"), "wallet_accounts": ("id", "wallet")}
    for r in rows:
        if r["tbl"] == "members":  # members → wallet_accounts: the link itself
            continue
        found[r["tbl"]] = (r["col"], "member" if r["target"] == "members" else "wallet")
    for table, col in WITHOUT_FK.items():
        found[table] = (col, "member")
    return found


def section(export: dict[str, Any], path: str) -> list[Any]:
    value: Any = export
    for part in path.split("."):
        value = value[part]
    return value if isinstance(value, list) else [] if value is None else [value]


async def test_the_export_covers_every_table_that_references_a_member_or_their_wallet(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    tables = await member_tables(conn)
    missing = set(tables) - set(EXPORTED_TABLES)
    assert not missing, f"add to wallet.privacy.EXPORTED_TABLES and the export: {missing}"

    r = await rich_member(client, tokens)
    resp = await client.get("/v1/me/export", headers=r.headers)
    assert resp.status_code == 200, resp.text
    export = resp.json()
    wallet_id = await conn.fetchval("SELECT wallet_account_id FROM members WHERE id = $1",
                                    uuid.UUID(r.member_id))
    for table, (col, holds) in sorted(tables.items()):
        key = uuid.UUID(r.member_id) if holds == "member" else wallet_id
        if table == "members":
            key = uuid.UUID(r.member_id)
        held = await conn.fetchval(f'SELECT count(*) FROM "{table}" WHERE "{col}" = $1', key)
        assert held > 0, f"the scenario should put a row in {table}: extend privacy_scenario"
        exported = section(export, EXPORTED_TABLES[table])
        assert len(exported) == held, f"{table}: {held} rows held, {len(exported)} exported"


async def test_the_export_is_the_members_own_data_without_secrets(
        client: Client, tokens: TokenService) -> None:
    r = await rich_member(client, tokens)
    export = (await client.get("/v1/me/export", headers=r.headers)).json()
    assert export["member"]["email"] == r.email
    assert export["member"]["first_name"] == FIRST_NAME
    assert export["member"]["pin_set"] is True
    assert [c["number"] for c in export["cards"]] == [r.card_number]
    history = [(c["purpose"], c["granted"]) for c in export["consents"]["history"]]
    assert history == [("location_offers", True), ("marketing", True), ("marketing", False)]
    current = {c["purpose"]: c["granted"] for c in export["consents"]["current"]}
    assert current == {"location_offers": True, "marketing": False,
                       "personalisation": False, "partner_sharing": False}
    assert sum(e["points"] for e in export["ledger"]) == export["wallet"]["points_balance"]
    text = str(export)
    assert "hash" not in text.replace("pin_set", "") and "password" not in text
    assert all("actor_id" not in e for e in export["access_log"])


async def test_the_export_shows_the_pin_lock_and_whether_it_is_provisional(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    """The member's security state: a lock set by an attempt whose PIN is still being
    verified (`pin_lock_pending_until`, migration 0019) is shown with its bound, and the
    OpenAPI document describes both fields."""
    r = await rich_member(client, tokens)
    member_id = uuid.UUID(r.member_id)
    held = await conn.fetchrow(
        "UPDATE members SET pin_failures = 5, pin_locked_until = now() + interval '15 minutes',"
        " pin_lock_pending_until = now() + interval '5 seconds' WHERE id = $1 "
        "RETURNING pin_locked_until, pin_lock_pending_until", member_id)
    member = (await client.get("/v1/me/export", headers=r.headers)).json()["member"]
    exported = {k: datetime.fromisoformat(member[k])
                for k in ("pin_locked_until", "pin_lock_pending_until")}
    assert exported == dict(held) and member["pin_failures"] == 5
    await conn.execute("UPDATE members SET pin_lock_pending_until = NULL WHERE id = $1",
                       member_id)  # the wrong PIN confirmed it
    member = (await client.get(f"/v1/admin/members/{member_id}/export",
                               headers=admin(tokens))).json()["member"]
    assert member["pin_lock_pending_until"] is None and member["pin_locked_until"] is not None
    doc = (await client.get("/schema/openapi.json")).json()
    fields = doc["components"]["schemas"]["MemberRecord"]["properties"]
    assert "verified" in str(fields["pin_lock_pending_until"])
    assert "wrong PIN" in str(fields["pin_locked_until"])


async def test_an_admin_export_of_an_unknown_member_is_404_and_logs_nothing(
        client: Client, tokens: TokenService, conn: asyncpg.Connection) -> None:
    pid = await create_program(client, tokens)
    await signup(client, pid)
    r = await client.get(f"/v1/admin/members/{uuid.uuid4()}/export", headers=admin(tokens))
    assert r.status_code == 404
    assert await conn.fetchval("SELECT count(*) FROM access_log") == 0
