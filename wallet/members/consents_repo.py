"""Consent records and contact preferences: the SQL (see `consents` for the rules).

`current_consent(purpose, member)` is the one SQL fragment for "the member's current consent
to a purpose" (its latest record; never recorded = not granted): every query that gates on
consent (ping ingestion, offer issuance) embeds it rather than restating the rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from wallet.kernel.db import Conn
from wallet.kernel.errors import UnknownPolicyVersion
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


# Nothing is inserted unless every `policy_version` names a published privacy notice (the
# `privacy_notices` table, see wallet.privacy.notice_service): the proof must point at a text.
INSERT_CONSENTS = """
INSERT INTO member_consents (member_id, purpose, granted, policy_version, source)
SELECT $1, c.purpose, c.granted, c.policy_version, c.source
FROM unnest($2::text[], $3::boolean[], $4::text[], $5::text[])
     WITH ORDINALITY AS c(purpose, granted, policy_version, source, n)
WHERE NOT EXISTS (SELECT 1 FROM unnest($4::text[]) AS v(version)
                  WHERE NOT EXISTS (SELECT 1 FROM privacy_notices p
                                     WHERE p.version = v.version))
ORDER BY c.n
RETURNING purpose, granted, policy_version, source, recorded_at AS at
"""
UNKNOWN_VERSION = """
SELECT v.n - 1 AS index,
       (SELECT version FROM privacy_notices ORDER BY published_at DESC LIMIT 1) AS latest
FROM unnest($1::text[]) WITH ORDINALITY AS v(version, n)
WHERE NOT EXISTS (SELECT 1 FROM privacy_notices p WHERE p.version = v.version)
ORDER BY v.n LIMIT 1
"""


async def append_consents(conn: Conn, member_id: uuid.UUID,
                          changes: Sequence[ConsentChange], *,
                          listed_as: str | None = None) -> list[ConsentRecord]:
    """Append one record per change, in order (one round trip). A `policy_version` that no
    published privacy notice has → UnknownPolicyVersion, naming `policy_version` (or
    `<listed_as>[i].policy_version` for changes given as a list), and nothing is appended."""
    if not changes:
        return []
    versions = [c.policy_version for c in changes]
    rows = await conn.fetch(
        INSERT_CONSENTS, member_id, [c.purpose for c in changes],
        [c.granted for c in changes], versions, [c.source for c in changes])
    if not rows:
        unknown = await conn.fetchrow(UNKNOWN_VERSION, versions)
        assert unknown is not None  # the insert only declines for an unknown version
        i = unknown["index"]
        raise UnknownPolicyVersion(
            f"policy version {versions[i]!r} names no published privacy notice; the current "
            "one is at GET /v1/privacy/notice (its `version`), all at "
            "GET /v1/privacy/notice/versions",
            field=f"{listed_as}[{i}].policy_version" if listed_as else "policy_version",
            latest=unknown["latest"])
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
