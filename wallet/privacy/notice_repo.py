"""SQL for the published privacy notices: every version ever served, with its full text, so
that a consent's `policy_version` points at the text the member saw."""

from __future__ import annotations

from datetime import datetime

import msgspec

from wallet.kernel.db import Conn
from wallet.privacy.notice import Notice

_json = msgspec.json.Encoder(order="deterministic")


class Published(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    published_at: datetime


PUBLISH = """
INSERT INTO privacy_notices (version, notice) VALUES ($1, $2::jsonb)
ON CONFLICT (version) DO NOTHING
"""


async def publish(conn: Conn, notice: Notice) -> None:
    """Keep this version of the notice (its first publication time wins)."""
    await conn.execute(PUBLISH, notice.version,
                       _json.encode(msgspec.structs.replace(notice, program=None)).decode())


VERSIONS = """
SELECT version, published_at FROM privacy_notices
WHERE $1::timestamptz IS NULL OR (published_at, version) < ($1::timestamptz, $2::text)
ORDER BY published_at DESC, version DESC
LIMIT $3
"""


async def versions(conn: Conn, *, before: tuple[datetime, str] | None,
                   limit: int) -> list[Published]:
    """Published versions, newest first, strictly before `before` (published_at, version)."""
    at, version = before if before else (None, None)
    rows = await conn.fetch(VERSIONS, at, version, limit)
    return [Published(**dict(r)) for r in rows]


TEXT = "SELECT notice::text FROM privacy_notices WHERE version = $1"


async def text_of(conn: Conn, version: str) -> Notice | None:
    """The notice as it was published under `version` (None if it never was)."""
    text: str | None = await conn.fetchval(TEXT, version)
    return None if text is None else msgspec.json.decode(text, type=Notice)
