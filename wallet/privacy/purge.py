"""The purge: it enforces the `RetentionPolicy` (`wallet.privacy.retention`). A row is due
when its reference time is at or before `now - period`:

| class              | reference time                         | what happens                     |
|--------------------|----------------------------------------|----------------------------------|
| visits             | end of the visit (last seen, if open)  | deleted                          |
| raw_pings          | time of the ping                       | deleted (period 0: not stored)   |
| expired_offers     | expiry of the offer                    | anonymised (stats keep counting) |
| access_log         | time of the access                     | deleted                          |
| withdrawn_consents | the withdrawal still in force          | that purpose's records deleted   |
| idle_accounts      | last login, refresh, ping or purchase  | the member is erased             |
| idempotency_keys   | time of the request                    | deleted                          |
| sessions           | expiry of the refresh token            | deleted                          |

Idle members who still hold stored value are not erased: the money is theirs (they are
counted in the report for the operator to contact). The ledger is never purged: it is kept,
pseudonymous once its member is erased, for the accounting obligation.

`purge` may run from several workers at once: an advisory lock lets one run and the others
skip the round (held by a transaction on a second connection, see `try_job_lock`).
Each statement commits on its own; each idle member is erased in its own transaction (see
`wallet.privacy.erasure.erase`).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from wallet.kernel import errors
from wallet.kernel.db import Conn, try_job_lock
from wallet.privacy import erasure
from wallet.privacy.retention import RetentionPolicy


class PurgeReport(msgspec.Struct, frozen=True, kw_only=True):
    visits: int = 0
    raw_pings: int = 0
    expired_offers: int = 0  # anonymised
    access_log: int = 0
    withdrawn_consents: int = 0  # consent records deleted
    idle_accounts: int = 0  # members erased
    idle_with_stored_value: int = 0  # idle members kept because they hold stored value
    idempotency_keys: int = 0
    sessions: int = 0
    skipped: bool = False  # another process held the purge lock


PURGE_LOCK = 0x6C6F79616C7403  # advisory lock key of the purge job

PURGE_VISITS = "DELETE FROM visits WHERE coalesce(exited_at, last_seen_at) <= $1"
PURGE_RAW_PINGS = "DELETE FROM raw_pings WHERE at <= $1"
ANONYMISE_OFFERS = """
WITH due AS (
    UPDATE offers SET member_id = NULL
     WHERE member_id IS NOT NULL AND expires_at <= $1 RETURNING id),
outbox AS (
    UPDATE offer_outbox SET payload = '{}',
           state = CASE WHEN state = 'pending' THEN 'expired' ELSE state END
     WHERE offer_id IN (SELECT id FROM due) RETURNING 1)
SELECT count(*) FROM due
"""
PURGE_ACCESS_LOG = "DELETE FROM access_log WHERE at <= $1"
# A purpose whose latest record is a withdrawal older than the period loses its records:
# the proof of the past consent is no longer needed, and "no record" means "not granted".
PURGE_WITHDRAWN = """
DELETE FROM member_consents c
USING (SELECT w.member_id, w.purpose FROM member_consents w
        WHERE NOT w.granted AND w.recorded_at <= $1
          AND NOT EXISTS (SELECT 1 FROM member_consents n
                           WHERE n.member_id = w.member_id AND n.purpose = w.purpose
                             AND n.id > w.id)) due
WHERE c.member_id = due.member_id AND c.purpose = due.purpose
"""
PURGE_IDEMPOTENCY = "DELETE FROM idempotency_keys WHERE created_at <= $1"
PURGE_SESSIONS = "DELETE FROM refresh_tokens WHERE expires_at <= $1"
# Activity is the last login, refresh or ping (members.last_active_at) or the last till
# transaction on the member's card: a member who only shops in store is not idle.
IDLE = """
SELECT m.id, w.stored_value_balance > 0 AS holds_value
FROM members m JOIN wallet_accounts w ON w.id = m.wallet_account_id
WHERE m.last_active_at <= $1
  AND NOT EXISTS (SELECT 1 FROM transactions t
                   WHERE t.wallet_account_id = m.wallet_account_id AND t.at > $1)
ORDER BY m.last_active_at, m.id
"""


def _count(status: str) -> int:
    """Rows affected, from a command status such as 'DELETE 3'."""
    return int(status.rsplit(" ", 1)[-1])


async def _delete(conn: Conn, sql: str, cutoff: datetime) -> int:
    return _count(await conn.execute(sql, cutoff))


async def purge(pool: asyncpg.Pool, policy: RetentionPolicy, *, now: datetime) -> PurgeReport:
    """Remove (or anonymise) everything past its retention period at `now`; idempotent."""
    async with pool.acquire() as held, held.transaction():  # the job lock, see try_job_lock
        if not await try_job_lock(held, PURGE_LOCK):
            return PurgeReport(skipped=True)
        async with pool.acquire() as conn:
            return await _purge(conn, policy, now)


async def _purge(conn: Conn, policy: RetentionPolicy, now: datetime) -> PurgeReport:
    visits = await _delete(conn, PURGE_VISITS, now - policy.visits)
    raw = await _delete(conn, PURGE_RAW_PINGS, now - policy.raw_pings)
    offers = int(await conn.fetchval(ANONYMISE_OFFERS, now - policy.expired_offers))
    log = await _delete(conn, PURGE_ACCESS_LOG, now - policy.access_log)
    withdrawn = await _delete(conn, PURGE_WITHDRAWN, now - policy.withdrawn_consents)
    idem = await _delete(conn, PURGE_IDEMPOTENCY, now - policy.idempotency_keys)
    sessions = await _delete(conn, PURGE_SESSIONS, now)
    idle_before = now - policy.idle_accounts
    erased = kept = 0
    for row in await conn.fetch(IDLE, idle_before):
        if row["holds_value"]:
            kept += 1
            continue
        try:
            done = await erasure.erase(conn, row["id"], idle_before=idle_before)
        except errors.NotFound:  # erased by its member meanwhile
            continue
        erased += done is not None
    return PurgeReport(visits=visits, raw_pings=raw, expired_offers=offers, access_log=log,
                       withdrawn_consents=withdrawn, idle_accounts=erased,
                       idle_with_stored_value=kept, idempotency_keys=idem, sessions=sessions)
