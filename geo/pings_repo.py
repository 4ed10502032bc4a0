"""Ping ingestion's SQL: the member's context read under the member lock, the one write of
a batch's visits and last position, and raw pings (only with a retention configured)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from geo import visits as core
from geo.pings import Track
from geo.visits_repo import OPEN_VISITS
from wallet.kernel.db import Conn
from wallet.members.consents_repo import current_consent

MEMBER_CONTEXT = f"""
SELECT m.program_id, p.zones_version, p.campaigns_version, m.last_active_at,
       {current_consent("location_offers", "m.id")} AS consent,
       g.last_ping_at, g.last_lat, g.last_lon,
       {OPEN_VISITS} AS open_visits
FROM members m
JOIN programs p ON p.id = m.program_id
LEFT JOIN member_geo_state g ON g.member_id = m.id
WHERE m.id = $1
"""

# A statement of its own, before MEMBER_CONTEXT: in READ COMMITTED a statement that waits for
# a row lock still reads everything else (the open visits) from the snapshot it took before
# waiting, so a batch queued behind another batch of the same member would miss the visit
# that batch opened. Locked first, every later statement reads after the other committed.
LOCK_MEMBER = "SELECT 1 FROM members WHERE id = $1 FOR UPDATE"


async def lock_member_context(conn: Conn, member_id: uuid.UUID) -> asyncpg.Record | None:
    """Lock the member row, then read the batch's context; None if the member is gone."""
    locked = await conn.fetchval(LOCK_MEMBER, member_id)
    return await conn.fetchrow(MEMBER_CONTEXT, member_id) if locked else None


WRITE = """
WITH upd AS (
    UPDATE visits v
       SET last_seen_at = u.last_seen_at, dwell_at = u.dwell_at,
           outside_since = u.outside_since, exited_at = u.exited_at
      FROM unnest($10::uuid[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[],
                  $14::timestamptz[]) AS u(id, last_seen_at, dwell_at, outside_since, exited_at)
     WHERE v.id = u.id AND v.member_id = $1
    RETURNING 1
), ins AS (
    -- After `upd` (the WHERE makes it run first): a visit closed and the same store entered
    -- again in one batch would otherwise hit `visits_one_open` before the close is applied.
    INSERT INTO visits (id, member_id, program_id, store_id, entered_at, last_seen_at,
                        dwell_at, outside_since, exited_at)
    SELECT u.id, $1, $2, u.store_id, u.entered_at, u.last_seen_at, u.dwell_at,
           u.outside_since, u.exited_at
    FROM unnest($3::uuid[], $4::uuid[], $5::timestamptz[], $6::timestamptz[],
                $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
         AS u(id, store_id, entered_at, last_seen_at, dwell_at, outside_since, exited_at)
    WHERE (SELECT count(*) FROM upd) >= 0
    RETURNING 1
), geo AS (
    INSERT INTO member_geo_state (member_id, last_ping_at, last_lat, last_lon)
    SELECT $1, $15, $16, $17 WHERE $15::timestamptz IS NOT NULL
    ON CONFLICT (member_id) DO UPDATE
       SET last_ping_at = EXCLUDED.last_ping_at, last_lat = EXCLUDED.last_lat,
           last_lon = EXCLUDED.last_lon
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM upd), (SELECT count(*) FROM geo)
"""

INSERT_RAW = """
INSERT INTO raw_pings (member_id, at, lat, lon, accuracy_m, expires_at)
SELECT $1, u.at, u.lat, u.lon, u.acc, u.at + make_interval(secs => $2)
FROM unnest($3::timestamptz[], $4::float8[], $5::float8[], $6::float4[]) AS u(at, lat, lon, acc)
"""


async def insert_raw(conn: Conn, member_id: uuid.UUID, retention_s: int,
                     accepted: Sequence[core.Ping]) -> None:
    """Keep the accepted pings for `retention_s` seconds (only called when it is > 0)."""
    await conn.execute(INSERT_RAW, member_id, float(retention_s), [p.at for p in accepted],
                       [p.lat for p in accepted], [p.lon for p in accepted],
                       [p.accuracy_m for p in accepted])


async def write(conn: Conn, member_id: uuid.UUID, program_id: uuid.UUID,
                 tracks: Sequence[Track], accepted: Sequence[core.Ping]) -> None:
    new = [t for t in tracks if t.new]
    old = [t for t in tracks if not t.new]
    last = accepted[-1] if accepted else None
    if not (new or old or last):
        return
    await conn.fetchrow(
        WRITE, member_id, program_id,
        [t.id for t in new], [t.store_id for t in new], [t.state.entered_at for t in new],
        [t.state.last_seen_at for t in new], [t.dwell_at for t in new],
        [t.state.outside_since for t in new], [t.exited_at for t in new],
        [t.id for t in old], [t.state.last_seen_at for t in old],
        [t.dwell_at for t in old], [t.state.outside_since for t in old],
        [t.exited_at for t in old],
        last.at if last else None, last.lat if last else None, last.lon if last else None)
