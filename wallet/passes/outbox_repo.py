"""The pass-update outbox's SQL: `pass_changes` (appended by triggers in the writers'
transactions) → a new update tag and `pass_pushes` (one per device or Google object) → sent,
retried or dropped. Functions take a connection; `wallet/passes/delivery.py` owns the
transactions and the single-worker lock.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import msgspec

from wallet.kernel.db import Conn

Target = Literal["apns", "google"]

PUBLISH_LOCK = 0x6C6F79616C7450  # advisory lock: one publisher/deliverer at a time

TRY_LOCK = "SELECT pg_try_advisory_xact_lock($1)"


async def try_lock(conn: Conn) -> bool:
    """The delivery lock until `conn`'s transaction ends (see `wallet.ledger.try_job_lock`
    for why transaction-scoped)."""
    return bool(await conn.fetchval(TRY_LOCK, PUBLISH_LOCK))


class Published(msgspec.Struct, frozen=True, kw_only=True):
    changes: int  # change rows consumed
    passes: int  # passes given a new update tag
    pushes: int  # push rows created (others merged into pending ones)


# Under the lock, so tags are handed out in commit order: a device that listed up to tag T
# can never see a tag below T commit later. `modified_at` (the pass's Last-Modified, whole
# seconds as HTTP dates are) strictly grows, so If-Modified-Since never hides an update.
# $3 / $4: whether APNs / Google pushes are configured (otherwise no push rows are made).
PUBLISH = """
WITH changed AS (
    DELETE FROM pass_changes
     WHERE id IN (SELECT id FROM pass_changes ORDER BY id LIMIT $1)
    RETURNING pass_id),
bumped AS (
    UPDATE passes p SET update_seq = nextval('pass_update_seq'),
           modified_at = greatest(date_trunc('second', $2::timestamptz),
                                  p.modified_at + interval '1 second')
     WHERE p.id IN (SELECT pass_id FROM changed)
    RETURNING p.id, p.kind),
devices AS (
    SELECT pass_id, push_token FROM pass_registrations
     WHERE pass_id IN (SELECT id FROM bumped WHERE kind = 'apple')
    UNION
    SELECT pass_id, push_token FROM pass_farewells
     WHERE pass_id IN (SELECT id FROM bumped WHERE kind = 'apple')),
pushes AS (
    INSERT INTO pass_pushes (pass_id, target, push_token, next_attempt_at)
    SELECT pass_id, 'apns', push_token, $2 FROM devices WHERE $3
    UNION ALL
    SELECT id, 'google', '', $2 FROM bumped WHERE kind = 'google' AND $4
    ON CONFLICT (pass_id, target, push_token) DO NOTHING
    RETURNING 1)
SELECT (SELECT count(*) FROM changed) AS changes, (SELECT count(*) FROM bumped) AS passes,
       (SELECT count(*) FROM pushes) AS pushes
"""


async def publish(conn: Conn, *, now: datetime, batch: int, apns: bool,
                  google: bool) -> Published:
    """Turn up to `batch` change rows into update tags and push rows (under the lock)."""
    row = await conn.fetchrow(PUBLISH, batch, now, apns, google)
    assert row is not None
    return Published(**dict(row))


class Push(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    pass_id: uuid.UUID
    target: Target
    push_token: str
    attempts: int


DUE = """
SELECT id, pass_id, target, push_token, attempts FROM pass_pushes
WHERE next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2
"""


async def due(conn: Conn, *, now: datetime, batch: int) -> list[Push]:
    return [Push(**dict(r)) for r in await conn.fetch(DUE, now, batch)]


# Outcomes of one round in one statement: sent and gone rows are deleted; a gone device
# loses its registrations and farewells; retries wait; a Google object update sent for a
# member is recorded in their access log (their data went to Google).
RECORD = """
WITH u AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[])
        AS u(id, status, next_at, error)),
done AS (
    DELETE FROM pass_pushes p USING u
     WHERE p.id = u.id AND u.status IN ('sent', 'gone')
    RETURNING p.pass_id, p.target, p.push_token, u.status),
gone_devices AS (
    DELETE FROM pass_registrations r USING done d
     WHERE d.status = 'gone' AND d.target = 'apns' AND r.pass_id = d.pass_id
       AND r.push_token = d.push_token RETURNING 1),
gone_farewells AS (
    DELETE FROM pass_farewells f USING done d
     WHERE d.status = 'gone' AND d.target = 'apns' AND f.pass_id = d.pass_id
       AND f.push_token = d.push_token RETURNING 1),
retried AS (
    UPDATE pass_pushes p SET attempts = p.attempts + 1, next_attempt_at = u.next_at,
           last_error = left(u.error, 500)
      FROM u WHERE p.id = u.id AND u.status = 'retry' RETURNING 1),
logged AS (
    INSERT INTO access_log (member_id, program_id, actor_id, actor_role, action, purpose)
    SELECT s.member_id, s.program_id, $5, 'service', 'pass.google_update', 'wallet_pass'
      FROM done d JOIN passes s ON s.id = d.pass_id
     WHERE d.status = 'sent' AND d.target = 'google' AND s.member_id IS NOT NULL
    RETURNING 1)
SELECT (SELECT count(*) FROM gone_devices) + (SELECT count(*) FROM gone_farewells)
       + (SELECT count(*) FROM retried) + (SELECT count(*) FROM logged)
"""


async def record(conn: Conn, ids: list[int], statuses: list[str], next_at: list[datetime],
                 errors: list[str | None], *, google_actor: uuid.UUID) -> None:
    await conn.execute(RECORD, ids, statuses, next_at, errors, google_actor)


class Backlog(msgspec.Struct, frozen=True, kw_only=True):
    changes: int  # changes not yet published
    pushes: int  # pushes waiting to be sent (due or backing off)


BACKLOG = """
SELECT (SELECT count(*) FROM pass_changes) AS changes,
       (SELECT count(*) FROM pass_pushes) AS pushes
"""


async def backlog(conn: Conn) -> Backlog:
    row = await conn.fetchrow(BACKLOG)
    assert row is not None
    return Backlog(**dict(row))


# Farewells end after the period; voided passes go once no device still has to learn it.
PURGE = """
WITH f AS (DELETE FROM pass_farewells WHERE created_at < $1 RETURNING 1),
     p AS (DELETE FROM passes s WHERE s.voided_at < $1
             AND NOT EXISTS (SELECT 1 FROM pass_farewells x WHERE x.pass_id = s.id
                                                         AND x.created_at >= $1)
           RETURNING 1)
SELECT (SELECT count(*) FROM f) + (SELECT count(*) FROM p)
"""


async def purge(conn: Conn, before: datetime) -> int:
    return int(await conn.fetchval(PURGE, before))
