"""Scenario helpers for rewards tests: rewards through the public API, and points credited
with the ledger's own repository (earning them through purchases would only add noise)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from support import ledger_fixtures as fx
from support.helpers import Client, manager

from api.auth.tokens import TokenService


def rewards_url(program_id: str, *rest: str) -> str:
    return "/".join([f"/v1/programs/{program_id}/rewards", *rest]).rstrip("/")


def reward_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "Free coffee", "description": "Any size",
                            "points_cost": 100, "kind": "voucher",
                            "voucher_valid_for_s": 86_400}
    return {**body, **over}


async def create_reward(client: Client, tokens: TokenService, program_id: str,
                        **over: Any) -> dict[str, Any]:
    r = await client.post(rewards_url(program_id), json=reward_body(**over),
                          headers=manager(tokens, program_id))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def member_of(conn: asyncpg.Connection, member_id: str) -> fx.Member:
    row = await conn.fetchrow(
        "SELECT m.id, m.wallet_account_id, c.id AS card_id, c.number, m.program_id "
        "FROM members m JOIN cards c ON c.member_id = m.id WHERE m.id = $1",
        uuid.UUID(member_id))
    assert row is not None
    return fx.Member(*row)


async def give_points(conn: asyncpg.Connection, member_id: str, points: int, *,
                      now: datetime | None = None, expiry_days: int = 365) -> None:
    """Credit `points` as one lot earned at `now` (default: now)."""
    await fx.credit(conn, await member_of(conn, member_id), points=points,
                    now=now or datetime.now(UTC), expiry_days=expiry_days)
