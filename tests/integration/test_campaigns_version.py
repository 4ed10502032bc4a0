"""`programs.campaigns_version` (migration 0008) moves on every change that offer planning
reads from a cache (a campaign inserted, changed, deleted; the program's time zone), and not
on the budget count that every issued offer takes."""

from __future__ import annotations

import uuid

import asyncpg

RULES = '{"trigger": {"event": "enter"}}'


async def _program(conn: asyncpg.Connection) -> uuid.UUID:
    pid = uuid.uuid4()
    await conn.execute(
        "INSERT INTO programs (id, name, currency, timezone, earn_points, earn_per_amount,"
        " points_expiry_days, tiers, stored_value) VALUES ($1, 'P', 'EUR', 'Europe/Paris', 1,"
        " 100, 365, '[]'::jsonb, false)", pid)
    return pid


async def _version(conn: asyncpg.Connection, pid: uuid.UUID) -> int:
    v: int = await conn.fetchval("SELECT campaigns_version FROM programs WHERE id = $1", pid)
    return v


async def test_campaign_changes_and_time_zone_changes_bump_the_version_but_budget_counts_do_not(
        conn: asyncpg.Connection) -> None:
    pid, other = await _program(conn), await _program(conn)
    cid = uuid.uuid4()
    await conn.execute(
        "INSERT INTO campaigns (id, program_id, name, rules, starts_at, ends_at, max_issued)"
        " VALUES ($1, $2, 'C', $3::jsonb, now() - interval '1 day', now() + interval '1 day',"
        " 10)", cid, pid, RULES)
    assert await _version(conn, pid) == 1
    await conn.execute("UPDATE campaigns SET status = 'active' WHERE id = $1", cid)
    assert await _version(conn, pid) == 2
    await conn.execute("UPDATE campaigns SET issued = issued + 1 WHERE id = $1", cid)
    assert await _version(conn, pid) == 2
    await conn.execute("UPDATE campaigns SET status = 'active' WHERE id = $1", cid)  # no change
    assert await _version(conn, pid) == 2
    await conn.execute("UPDATE programs SET name = 'Q', timezone = 'Europe/Paris' WHERE id = $1",
                       pid)
    assert await _version(conn, pid) == 2
    await conn.execute("UPDATE programs SET timezone = 'Europe/London' WHERE id = $1", pid)
    assert await _version(conn, pid) == 3
    await conn.execute("DELETE FROM campaigns WHERE id = $1", cid)
    assert await _version(conn, pid) == 4
    assert await _version(conn, other) == 0
