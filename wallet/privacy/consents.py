"""What a member allows: consent per purpose (with proof) and contact preferences.

Consent is opt-in and append-only. Each grant or withdrawal is a record with its proof —
when, which policy version, from which channel (`source`) — and the current state of a
purpose is its latest record; a purpose never recorded is *not* granted. Withdrawing is the
same call as granting, with `granted: false`.

Preferences say how often (`max_offers_per_day`, None = no personal cap), when not
(`quiet_hours` in the program's time zone; `start > end` spans midnight) and through which
channels the member agrees to hear from the program. `in_quiet_hours` is the pure check the
offer engine uses.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, time
from typing import Literal

import asyncpg
import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.errors import RuleViolation
from wallet.members.members_repo import require_member

Purpose = Literal["location_offers", "marketing", "personalisation", "partner_sharing"]
PURPOSES: tuple[Purpose, ...] = ("location_offers", "marketing", "personalisation",
                                 "partner_sharing")
Channel = Literal["push", "email", "sms", "in_app"]
CHANNELS: tuple[Channel, ...] = ("push", "email", "sms", "in_app")
DEFAULT_SOURCE = "app"


class ConsentChange(msgspec.Struct, frozen=True, kw_only=True):
    purpose: Purpose
    granted: bool
    policy_version: str
    source: str = DEFAULT_SOURCE


class ConsentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One affirmative act (grant or withdrawal) and its proof."""

    purpose: Purpose
    granted: bool
    policy_version: str
    source: str
    at: datetime


class ConsentState(msgspec.Struct, frozen=True, kw_only=True):
    """A purpose's current state; the proof fields are None when it was never recorded."""

    purpose: Purpose
    granted: bool
    policy_version: str | None
    source: str | None
    at: datetime | None


class Consents(msgspec.Struct, frozen=True, kw_only=True):
    current: list[ConsentState]  # every purpose, in PURPOSES order
    history: list[ConsentRecord]  # every record, oldest first


class QuietHours(msgspec.Struct, frozen=True, kw_only=True):
    start: time
    end: time


class Preferences(msgspec.Struct, frozen=True, kw_only=True):
    max_offers_per_day: int | None
    quiet_hours: QuietHours | None
    channels: tuple[Channel, ...]


DEFAULT_PREFERENCES = Preferences(max_offers_per_day=None, quiet_hours=None,
                                  channels=("push", "in_app"))


class PreferenceChanges(msgspec.Struct, frozen=True, kw_only=True):
    """UNSET = keep; None clears the cap or the quiet hours."""

    max_offers_per_day: int | msgspec.UnsetType | None = msgspec.UNSET
    quiet_hours: QuietHours | msgspec.UnsetType | None = msgspec.UNSET
    channels: Sequence[Channel] | msgspec.UnsetType = msgspec.UNSET


# --- the pure core ------------------------------------------------------------------------


def current_state(history: Sequence[ConsentRecord]) -> list[ConsentState]:
    """Each purpose's latest record (history oldest first); unrecorded → not granted."""
    latest: dict[str, ConsentRecord] = {r.purpose: r for r in history}
    out: list[ConsentState] = []
    for purpose in PURPOSES:
        r = latest.get(purpose)
        out.append(ConsentState(purpose=purpose, granted=False, policy_version=None,
                                source=None, at=None) if r is None else
                   ConsentState(purpose=purpose, granted=r.granted,
                                policy_version=r.policy_version, source=r.source, at=r.at))
    return out


def check_changes(changes: Sequence[ConsentChange], *, field: str = "consents") -> None:
    """One change per purpose in a batch (two would make the proof ambiguous)."""
    seen: set[str] = set()
    for i, c in enumerate(changes):
        if c.purpose in seen:
            raise RuleViolation(f"purpose {c.purpose!r} appears twice",
                                field=f"{field}[{i}].purpose")
        seen.add(c.purpose)


def apply_preferences(current: Preferences, changes: PreferenceChanges) -> Preferences:
    """`current` with `changes` applied; channels deduplicated in their given order."""
    quiet = current.quiet_hours if changes.quiet_hours is msgspec.UNSET else changes.quiet_hours
    if quiet is not None and quiet.start == quiet.end:
        raise RuleViolation("quiet hours must not start and end at the same time",
                            field="quiet_hours.to")
    cap = (current.max_offers_per_day if changes.max_offers_per_day is msgspec.UNSET
           else changes.max_offers_per_day)
    channels = (current.channels if isinstance(changes.channels, msgspec.UnsetType)
                else tuple(dict.fromkeys(changes.channels)))
    return Preferences(max_offers_per_day=cap, quiet_hours=quiet, channels=channels)


def in_quiet_hours(prefs: Preferences, local: time) -> bool:
    """True when the wall-clock `local` time (program time zone) is in the quiet hours.

    The window is half-open, [start, end): 22:00-07:00 holds 23:30 and 06:59, not 07:00.
    """
    q = prefs.quiet_hours
    if q is None:
        return False
    if q.start < q.end:
        return q.start <= local < q.end
    return local >= q.start or local < q.end


# --- SQL ------------------------------------------------------------------------------------

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


# --- services -------------------------------------------------------------------------------


async def record_consent(pool: asyncpg.Pool, member_id: uuid.UUID,
                         change: ConsentChange) -> ConsentState:
    """Append a grant or withdrawal; returns the purpose's new current state."""
    async with pool.acquire() as conn, conn.transaction():
        await require_member(conn, member_id)
        (record,) = await append_consents(conn, member_id, [change])
    return current_state([record])[PURPOSES.index(change.purpose)]


async def consents_of(pool: asyncpg.Pool, member_id: uuid.UUID) -> Consents:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        await require_member(conn, member_id, keep=False)
        history = await fetch_history(conn, member_id)
    return Consents(current=current_state(history), history=history)


async def preferences_of(pool: asyncpg.Pool, member_id: uuid.UUID) -> Preferences:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        await require_member(conn, member_id, keep=False)
        return await fetch_preferences(conn, member_id)


async def update_preferences(pool: asyncpg.Pool, member_id: uuid.UUID,
                             changes: PreferenceChanges) -> Preferences:
    """Merge `changes` into the member's preferences (absent fields are kept)."""
    async with pool.acquire() as conn, conn.transaction():
        await require_member(conn, member_id)
        prefs = apply_preferences(await fetch_preferences(conn, member_id, for_update=True),
                                  changes)
        await store_preferences(conn, member_id, prefs)
        return prefs
