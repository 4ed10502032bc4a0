"""The privacy notice's versions: publish the one being served, list them, read one back.

A running worker publishes its notice when it starts (`api.lifespan`), so every version a
member could have been shown is kept; consents are checked against them in SQL when they are
recorded (`wallet.members.consents_repo`, in the consent's own transaction).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from wallet.kernel.errors import NotFound
from wallet.privacy import notice_repo
from wallet.privacy.notice import Notice
from wallet.privacy.notice_repo import Published


async def publish(pool: asyncpg.Pool, notice: Notice) -> None:
    async with pool.acquire() as conn:
        await notice_repo.publish(conn, notice)


async def versions(pool: asyncpg.Pool, *, before: tuple[datetime, str] | None,
                   limit: int) -> list[Published]:
    async with pool.acquire() as conn:
        return await notice_repo.versions(conn, before=before, limit=limit)


async def text_of(pool: asyncpg.Pool, version: str) -> Notice:
    """The notice published as `version` (NotFound naming `version` if none was)."""
    async with pool.acquire() as conn:
        found = await notice_repo.text_of(conn, version)
    if found is None:
        raise NotFound("no privacy notice was published with this version", field="version")
    return found
