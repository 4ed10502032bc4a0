"""Consents and preferences services: each call one transaction."""

from __future__ import annotations

import uuid

import asyncpg
import msgspec

from wallet.kernel.localtime import local
from wallet.members.consents import (
    PURPOSES,
    ConsentChange,
    ConsentRecord,
    Consents,
    ConsentState,
    PreferenceChanges,
    Preferences,
    apply_preferences,
    current_state,
)
from wallet.members.consents_repo import (
    append_consents,
    fetch_history,
    fetch_preferences,
    store_preferences,
)
from wallet.members.members_repo import member_timezone, require_member


async def record_consent(pool: asyncpg.Pool, member_id: uuid.UUID,
                         change: ConsentChange) -> ConsentState:
    """Append a grant or withdrawal; returns the purpose's new current state."""
    async with pool.acquire() as conn, conn.transaction():
        await require_member(conn, member_id)
        timezone = await member_timezone(conn, member_id)
        (record,) = await append_consents(conn, member_id, [change])
    return current_state([_local(record, timezone)])[PURPOSES.index(change.purpose)]


def _local(record: ConsentRecord, timezone: str) -> ConsentRecord:
    """The record with its time on the program's wall clock, as the member reads it."""
    return msgspec.structs.replace(record, at=local(record.at, timezone))


async def consents_of(pool: asyncpg.Pool, member_id: uuid.UUID) -> Consents:
    """Current state and history; times with the program's UTC offset."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        timezone = await member_timezone(conn, member_id)
        history = [_local(r, timezone) for r in await fetch_history(conn, member_id)]
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
