"""Consent records and contact preferences: the SQL (see `consents` for the rules).

`current_consent(purpose, member)` is the one SQL fragment for "the member's current consent
to a purpose" (its latest record; never recorded = not granted): every query that gates on
consent (ping ingestion, offer issuance) embeds it rather than restating the rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from wallet.kernel.db import Conn
from wallet.members.consents import (
    DEFAULT_PREFERENCES,
    ConsentChange,
    ConsentRecord,
    Preferences,
    Purpose,
    QuietHours,
)


def current_consent(purpose: Purpose, member: str) -> str:
    """SQL: true when the latest consent record of `member` (an SQL expression, e.g. `m.id`)
    for `purpose` grants it; false when it withdraws it or none exists."""
    assert purpose.isidentifier()  # a Literal, never input: safe to inline
    return f"""coalesce((SELECT c.granted FROM member_consents c
                  WHERE c.member_id = {member} AND c.purpose = '{purpose}'
                  ORDER BY c.id DESC LIMIT 1), false)"""


INSERT_CONSENTS = """
INSERT INTO member_consents (member_id, purpose, granted, policy_version, source)
SELECT $1, c.purpose, c.granted, c.policy_version, c.source
FROM unnest($2::text[], $3::boolean[], $4::text[], $5::text[])
     WITH ORDINALITY AS c(purpose, granted, policy_version, source, n)
ORDER BY c.n
RETURNING purpose, granted, policy_version, source, recorded_at AS at
"""


async def append_consents(conn: Conn, member_id: uuid.UUID,
                          changes: Sequence[ConsentChange]) -> list[ConsentRecord]:
    """Append one record per change, in order (one round trip)."""
    if not changes:
        return []
    rows = await conn.fetch(
        INSERT_CONSENTS, member_id, [c.purpose for c in changes],
        [c.granted for c in changes], [c.policy_version for c in changes],
        [c.source for c in changes])
    return [ConsentRecord(**dict(r)) for r in rows]


SELECT_HISTORY = """
SELECT purpose, granted, policy_version, source, recorded_at AS at
FROM member_consents WHERE member_id = $1 ORDER BY id
"""


async def fetch_history(conn: Conn, member_id: uuid.UUID) -> list[ConsentRecord]:
    return [ConsentRecord(**dict(r)) for r in await conn.fetch(SELECT_HISTORY, member_id)]


SELECT_PREFERENCES = """
SELECT max_offers_per_day, quiet_from, quiet_to, channels
FROM member_preferences WHERE member_id = $1
"""


async def fetch_preferences(conn: Conn, member_id: uuid.UUID, *,
                            for_update: bool = False) -> Preferences:
    """The member's preferences, or DEFAULT_PREFERENCES if they never set any."""
    query = SELECT_PREFERENCES + (" FOR UPDATE" if for_update else "")
    row = await conn.fetchrow(query, member_id)
    if row is None:
        return DEFAULT_PREFERENCES
    quiet = (None if row["quiet_from"] is None
             else QuietHours(start=row["quiet_from"], end=row["quiet_to"]))
    return Preferences(max_offers_per_day=row["max_offers_per_day"], quiet_hours=quiet,
                       channels=tuple(row["channels"]))


UPSERT_PREFERENCES = """
INSERT INTO member_preferences (member_id, max_offers_per_day, quiet_from, quiet_to, channels)
VALUES ($1, $2, $3, $4, $5::text[])
ON CONFLICT (member_id) DO UPDATE SET
    max_offers_per_day = EXCLUDED.max_offers_per_day, quiet_from = EXCLUDED.quiet_from,
    quiet_to = EXCLUDED.quiet_to, channels = EXCLUDED.channels, updated_at = now()
"""


async def store_preferences(conn: Conn, member_id: uuid.UUID,
                            prefs: Preferences) -> None:
    q = prefs.quiet_hours
    await conn.execute(UPSERT_PREFERENCES, member_id, prefs.max_offers_per_day,
                       q.start if q else None, q.end if q else None, list(prefs.channels))
