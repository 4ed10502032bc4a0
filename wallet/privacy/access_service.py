"""The access log's services: what a member reads of who read their data, an operator's
search (a breach, a complaint), and the support lookup that is itself logged."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from wallet.kernel.errors import NotFound, Unauthenticated
from wallet.kernel.localtime import local
from wallet.members.members_repo import (
    Profile,
    fetch_profile,
    find_member,
    member_timezone,
)
from wallet.privacy import access_log
from wallet.privacy.access_log import Access, Entry, MemberView


async def access_log_of(pool: asyncpg.Pool, member_id: uuid.UUID, *,
                        before: tuple[datetime, uuid.UUID] | None,
                        limit: int) -> list[MemberView]:
    """The member's access log, newest first (an erased member is `gone()`)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        timezone = await member_timezone(conn, member_id)
        rows = await access_log.member_entries(conn, member_id, before=before, limit=limit)
    # on the program's wall clock, as the member reads it
    return [msgspec.structs.replace(r, at=local(r.at, timezone)) for r in rows]


async def search_access_log(pool: asyncpg.Pool, *, actor_id: uuid.UUID | None,
                            member_id: uuid.UUID | None, start: datetime, end: datetime,
                            after: tuple[datetime, uuid.UUID] | None,
                            limit: int) -> list[Entry]:
    """Entries in [start, end), oldest first: whose data one actor read (a breach), or who
    read one member's data."""
    async with pool.acquire() as conn:
        return await access_log.search(conn, actor_id=actor_id, member_id=member_id,
                                       start=start, end=end, after=after, limit=limit)


async def support_view(pool: asyncpg.Pool, program_id: uuid.UUID, member_id: uuid.UUID,
                       logged: Access) -> Profile:
    """A member's profile and balances for a manager or admin helping them; logged in the
    same transaction. A member of another program is NotFound."""
    async with pool.acquire() as conn, conn.transaction():
        try:
            profile = await fetch_profile(conn, member_id)
        except Unauthenticated:
            raise NotFound("no such member in this program") from None
        if profile.program_id != program_id:
            raise NotFound("no such member in this program")
        await access_log.record(conn, member_id, logged)
        return profile


async def support_lookup(pool: asyncpg.Pool, program_id: uuid.UUID, logged: Access, *,
                         email: str | None = None, card_number: str | None = None) -> Profile:
    """`support_view` of the member found by e-mail or card number (logged the same way)."""
    async with pool.acquire() as conn:
        member_id = await find_member(conn, program_id, email=email, card_number=card_number)
    return await support_view(pool, program_id, member_id, logged)
