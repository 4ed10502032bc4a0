"""Ping ingestion's SQL: the member's context (read under the member lock, or without it and
checked by the write), the one write of a batch's visits and last position, and raw pings
(only with a retention configured)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from geo import visits as core
from geo.pings import Track
from geo.pings_speculation import Speculation
from geo.visits_repo import OPEN_VISITS
from wallet.kernel.db import Conn
from wallet.kernel.idempotency_repo import IdemKey, IdempotencyRace, StoredResponse
from wallet.members.consents_repo import current_consent

_CONTEXT = f"""
SELECT m.program_id, p.zones_version, p.campaigns_version, m.last_active_at,
       {current_consent("location_offers", "m.id")} AS consent,
       g.last_ping_at, g.last_lat, g.last_lon, coalesce(g.xmin::text, '') AS geo_version,
       {OPEN_VISITS} AS open_visits"""
_FROM = """
FROM members m
JOIN programs p ON p.id = m.program_id
LEFT JOIN member_geo_state g ON g.member_id = m.id"""
MEMBER_CONTEXT = _CONTEXT + _FROM + "\nWHERE m.id = $1"
# The optimistic read also reads the Idempotency-Key's stored response ($2, $3: scope, key).
READ_CONTEXT = (_CONTEXT + ", i.request_hash, i.status_code, i.response_body" + _FROM
                + "\nLEFT JOIN idempotency_keys i ON i.scope = $2 AND i.key = $3"
                + "\nWHERE m.id = $1")

# A statement of its own, before MEMBER_CONTEXT: in READ COMMITTED a statement that waits for
# a row lock still reads everything else (the open visits) from the snapshot it took before
# waiting, so a batch queued behind another batch of the same member would miss the visit
# that batch opened. Locked first, every later statement reads after the other committed.
LOCK_MEMBER = "SELECT 1 FROM members WHERE id = $1 FOR UPDATE"


async def lock_member_context(conn: Conn, member_id: uuid.UUID) -> asyncpg.Record | None:
    """Lock the member row, then read the batch's context; None if the member is gone."""
    locked = await conn.fetchval(LOCK_MEMBER, member_id)
    return await conn.fetchrow(MEMBER_CONTEXT, member_id) if locked else None


async def read_context(conn: Conn, member_id: uuid.UUID,
                       idem: IdemKey | None = None) -> asyncpg.Record | None:
    """The batch's context in one snapshot, without a lock (None if the member is gone), and
    the response stored under `idem` if any (`stored`); its `geo_version` is what an
    optimistic `write` checks."""
    return await conn.fetchrow(READ_CONTEXT, member_id, idem.scope if idem else None,
                               idem.key if idem else None)


def stored(ctx: asyncpg.Record) -> StoredResponse | None:
    """The response `read_context` found under its key."""
    if ctx["status_code"] is None:
        return None
    return StoredResponse(request_hash=bytes(ctx["request_hash"]),
                          status_code=ctx["status_code"], body=bytes(ctx["response_body"]))


def _insert_visits(first: int, *, program: str, when: str) -> str:
    """SQL: insert the new visits of member $1, given as the seven arrays of `new_visits`
    from parameter `first` on, if `when`."""
    p = [f"${first + i}" for i in range(7)]
    return f"""INSERT INTO visits (id, member_id, program_id, store_id, entered_at,
                        last_seen_at, dwell_at, outside_since, exited_at)
    SELECT u.id, $1, {program}, u.store_id, u.entered_at, u.last_seen_at, u.dwell_at,
           u.outside_since, u.exited_at
    FROM (SELECT unnest({p[0]}::uuid[]) AS id, unnest({p[1]}::uuid[]) AS store_id,
                 unnest({p[2]}::timestamptz[]) AS entered_at,
                 unnest({p[3]}::timestamptz[]) AS last_seen_at,
                 unnest({p[4]}::timestamptz[]) AS dwell_at,
                 unnest({p[5]}::timestamptz[]) AS outside_since,
                 unnest({p[6]}::timestamptz[]) AS exited_at) AS u
    WHERE {when}
    RETURNING 1"""


def _update_visits(first: int) -> str:
    """SQL: update member $1's visits given as the five arrays of `old_visits` from parameter
    `first` on, once `geo` wrote."""
    p = [f"${first + i}" for i in range(5)]
    return f"""UPDATE visits v
       SET last_seen_at = u.last_seen_at, dwell_at = u.dwell_at,
           outside_since = u.outside_since, exited_at = u.exited_at
      FROM (SELECT unnest({p[0]}::uuid[]) AS id, unnest({p[1]}::timestamptz[]) AS last_seen_at,
                   unnest({p[2]}::timestamptz[]) AS dwell_at,
                   unnest({p[3]}::timestamptz[]) AS outside_since,
                   unnest({p[4]}::timestamptz[]) AS exited_at) AS u
     WHERE v.id = u.id AND v.member_id = $1 AND EXISTS (SELECT FROM geo)
    RETURNING 1"""


def old_visits(old: Sequence[Track]) -> tuple[list[Any], ...]:
    """The five arrays `_update_visits` takes."""
    return ([t.id for t in old], [t.state.last_seen_at for t in old], [t.dwell_at for t in old],
            [t.state.outside_since for t in old], [t.exited_at for t in old])


def new_visits(new: Sequence[Track]) -> tuple[list[Any], ...]:
    """The seven arrays `_insert_visits` takes."""
    return ([t.id for t in new], [t.store_id for t in new], [t.state.entered_at for t in new],
            [t.state.last_seen_at for t in new], [t.dwell_at for t in new],
            [t.state.outside_since for t in new], [t.exited_at for t in new])


# `geo` first: the member's last position is the row every batch of the member rewrites, so
# its version says whether anything the batch read (last ping, open visits) has changed. With
# `$18` (the version read, '' for none yet: optimistic) the statement runs as one transaction
# that writes only if the row is still at that version and the location consent still holds,
# else `write_guard` (migration 0013) refuses it as a whole; `upd` and `ins` wait for `geo`.
WRITE = f"""
WITH geo AS (
    INSERT INTO member_geo_state (member_id, last_ping_at, last_lat, last_lon)
    SELECT $1, $15, $16, $17 WHERE $15::timestamptz IS NOT NULL
       AND ($18::text IS NULL OR {current_consent("location_offers", "$1")})
    ON CONFLICT (member_id) DO UPDATE
       SET last_ping_at = EXCLUDED.last_ping_at, last_lat = EXCLUDED.last_lat,
           last_lon = EXCLUDED.last_lon
     WHERE $18::text IS NULL OR member_geo_state.xmin::text = $18::text
    RETURNING xmin::text AS version
), upd AS (
    {_update_visits(10)}
), ins AS (
    -- After `upd` (the WHERE makes it run first): a visit closed and the same store entered
    -- again in one batch would otherwise hit `visits_one_open` before the close is applied.
    -- And after `geo`: a stale write must not insert a visit another batch of the member
    -- opened meanwhile (`visits_one_open` would answer before `write_guard` refuses).
    {_insert_visits(3, program="$2",
                    when="EXISTS (SELECT FROM geo) AND (SELECT count(*) FROM upd) >= 0")}
), idem AS (
    INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body)
    SELECT $19, $20, $21, $22, $23 WHERE $19::text IS NOT NULL AND EXISTS (SELECT FROM geo)
    RETURNING 1
)
SELECT (SELECT version FROM geo), (SELECT count(*) FROM ins), (SELECT count(*) FROM upd),
       CASE WHEN $18::text IS NULL THEN true
            ELSE write_guard((SELECT count(*) FROM geo) = 1, 'member geo state') END
"""

# One round trip (`pings_service`, `geo/pings_speculation.py`): READ_CONTEXT's columns ($1-$3)
# and `done`: whether the batch's speculated writes were made. They are made, in this one
# self-committing statement, only if the state read is one the speculation holds for: current
# consent, the token's program ($4), the zones and campaigns versions Python decided with ($5,
# $6), no stored answer under the key, and
# - from the empty state (`ONE_TRIP`): no open visit, and a last ping at or before the stale
#   bound ($20) that the first accepted ping ($21-$24) is not too fast from ($25 m/s;
#   haversine as in `geo.visits.distance_m`, with a margin: a rounding difference can only
#   refuse);
# - from the state the worker remembers writing (`ONE_TRIP_REMEMBERED`, `geo/pings_memory.py`):
#   the last position's row at the version that write returned ($20) and as many open visits
#   ($21: the purge may delete one without a new version), whose changes ($22-$26) it writes.
# Else nothing is written and the service goes on from the returned context. As in WRITE, the
# last position is written only if its row is still the version read (`xmin`), or
# `write_guard` rolls the whole statement back (another batch of the member since the
# snapshot); `version` is the row's new one.
_FROM_EMPTY = """ctx.open_visits = '[]'
       AND (ctx.last_ping_at IS NULL OR (
            ($20::timestamptz IS NULL OR ctx.last_ping_at <= $20::timestamptz)
            AND ($21::timestamptz IS NULL
                 OR 2 * 6371008.8 * asin(least(1, sqrt(
                        sin((radians($23::float8) - radians(ctx.last_lat)) / 2) ^ 2
                        + cos(radians(ctx.last_lat)) * cos(radians($23::float8))
                          * sin(radians($22::float8 - ctx.last_lon) / 2) ^ 2)))
                    * (1 + 1e-9) + 1e-6 - $24::float8
                    <= $25::float8 * extract(epoch FROM $21::timestamptz
                                                          - ctx.last_ping_at)::float8)))"""
_FROM_MEMORY = """ctx.geo_version = (SELECT version FROM memory)
       AND json_array_length(ctx.open_visits::json) = (SELECT open_visits FROM memory)"""


def _one_trip(remembered: bool) -> str:
    upd = f"""
), upd AS (
    {_update_visits(22)}""" if remembered else ""
    after_upd = " AND (SELECT count(*) FROM upd) >= 0" if remembered else ""
    # ONE_TRIP_REMEMBERED starts with what the worker remembers (and pg_stat_statements, which
    # keeps a query's first 160 characters in the load test, tells the two apart).
    first = "WITH memory AS (SELECT $20::text AS version, $21::int AS open_visits),\nctx" \
        if remembered else "WITH ctx"
    return f"""
{first} AS ({READ_CONTEXT}
), ok AS (
    SELECT FROM ctx
     WHERE ctx.consent AND ctx.status_code IS NULL
       AND ctx.program_id = $4 AND ctx.zones_version = $5 AND ctx.campaigns_version = $6
       AND {_FROM_MEMORY if remembered else _FROM_EMPTY}
), touch AS (
    -- First: the member row, then the last position (`geo`), the order the locked
    -- transaction locks them in (the other order could deadlock with it).
    UPDATE members SET last_active_at = $7::timestamptz  -- at most once a day
     WHERE id = $1 AND last_active_at < $7::timestamptz - interval '1 day'
       AND EXISTS (SELECT FROM ok)
       AND (SELECT last_active_at FROM ctx) < $7::timestamptz - interval '1 day'
    RETURNING 1
), geo AS (
    INSERT INTO member_geo_state (member_id, last_ping_at, last_lat, last_lon)
    SELECT $1, $8, $9, $10 FROM ok
     WHERE $8::timestamptz IS NOT NULL AND (SELECT count(*) FROM touch) >= 0
    ON CONFLICT (member_id) DO UPDATE
       SET last_ping_at = EXCLUDED.last_ping_at, last_lat = EXCLUDED.last_lat,
           last_lon = EXCLUDED.last_lon
     WHERE member_geo_state.xmin::text = (SELECT geo_version FROM ctx)
    RETURNING xmin::text AS version{upd}
), ins AS (
    {_insert_visits(11, program="$4", when="EXISTS (SELECT FROM geo)" + after_upd)}
), idem AS (
    INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body)
    SELECT $2, $3, $18, 200, $19 FROM ok
     WHERE $2::text IS NOT NULL AND ($8::timestamptz IS NULL OR EXISTS (SELECT FROM geo))
    RETURNING 1
)
SELECT ctx.*, EXISTS (SELECT FROM ok) AS done, (SELECT version FROM geo) AS version,
       CASE WHEN $8::timestamptz IS NULL OR NOT EXISTS (SELECT FROM ok) THEN true
            ELSE write_guard((SELECT count(*) FROM geo) = 1, 'member geo state') END AS guarded,
       (SELECT count(*) FROM ins) + (SELECT count(*) FROM idem) + (SELECT count(*) FROM touch)
       AS written
FROM ctx
"""


ONE_TRIP = _one_trip(remembered=False)
ONE_TRIP_REMEMBERED = _one_trip(remembered=True)


async def one_trip(conn: Conn, member_id: uuid.UUID, spec: Speculation, *,
                   max_speed_mps: float, now: datetime,
                   idem: IdemKey | None, response: bytes) -> asyncpg.Record | None:
    """Run ONE_TRIP (or ONE_TRIP_REMEMBERED, for a `spec` decided from `spec.memory`): the
    context read (None if the member is gone) with `done` and, if it wrote the last position,
    its new `version`. `response` is stored under `idem` (status 200) when it is done; a
    concurrent request that committed the key first makes it raise IdempotencyRace, and
    another batch of the member since the snapshot `asyncpg.SerializationError`, nothing
    written."""
    result, first, memory = spec.result, spec.first, spec.memory
    last = spec.accepted[-1] if spec.accepted else None
    args: list[Any] = [
        member_id, idem.scope if idem else None, idem.key if idem else None,
        result.program_id, spec.zones_version, result.campaigns_version, now,
        last.at if last else None, last.lat if last else None, last.lon if last else None,
        *new_visits([t for t in spec.tracks if t.new]),
        idem.request_hash if idem else None, response]
    if memory is None:  # from the empty state: every track is new
        args += [spec.stale_bound, first.at if first else None, first.lon if first else None,
                 first.lat if first else None, first.accuracy_m if first else None,
                 max_speed_mps]
    else:
        args += [memory.version, len(memory.open_visits),
                 *old_visits([t for t in spec.tracks if not t.new])]
    try:
        return await conn.fetchrow(ONE_TRIP if memory is None else ONE_TRIP_REMEMBERED, *args)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "idempotency_keys_pkey":
            raise IdempotencyRace(str(exc)) from exc
        raise


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
                tracks: Sequence[Track], accepted: Sequence[core.Ping], *,
                version: str | None = None, idem: IdemKey | None = None,
                response: bytes = b"") -> str | None:
    """The batch's visits and last position; nothing when it accepted no ping (its visits
    are then unchanged). `version`: the `geo_version` the batch read (under the member lock
    or not: the optimistic and one-trip writes don't take that lock), and the write refuses
    (`asyncpg.SerializationError`, nothing written) if another batch of the member, an
    erasure or a consent withdrawal came in between; None writes unchecked. With `idem`
    (optimistic only) the same statement stores `response` (status 200) under the key; a
    concurrent request that committed the key first makes it raise IdempotencyRace, nothing
    written. Returns the last position's new version (None when nothing was written)."""
    if not accepted:
        return None
    new = [t for t in tracks if t.new]
    old = [t for t in tracks if not t.new]
    last = accepted[-1]
    try:
        written: str | None = await conn.fetchval(
            WRITE, member_id, program_id, *new_visits(new), *old_visits(old),
            last.at, last.lat, last.lon,
            version, idem.scope if idem else None, idem.key if idem else None,
            idem.request_hash if idem else None, 200, response)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "idempotency_keys_pkey":
            raise IdempotencyRace(str(exc)) from exc
        raise
    return written
