"""Keyset pagination as API.md says: `?limit=` (default 50, max 500) and an opaque `?cursor=`;
bodies are `{"items": [...], "next_cursor": "..." | null}`.

A cursor encodes the sort key of the last item returned, `(at, id)`, so pages stay stable
while rows are added. Repositories query `WHERE (at, id) < ($cursor_at, $cursor_id)` (or `>`
for ascending lists) `ORDER BY at, id LIMIT $limit + 1`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.params import Parameter

from wallet.kernel.errors import RuleViolation

T = TypeVar("T")

# Handlers declare `limit: Limit = 50, cursor: Cursor = None`.
Limit = Annotated[int, Parameter(ge=1, le=500, description="page size (max 500)")]
Cursor = Annotated[str | None, Parameter(max_length=200,
                                         description="from the previous page's next_cursor")]


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    items: list[T]
    next_cursor: str | None


class CursorKey(msgspec.Struct, frozen=True, array_like=True):
    at: datetime
    id: uuid.UUID


def encode_cursor(at: datetime, id_: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(CursorKey(at, id_))).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> CursorKey | None:
    """Decode a cursor; a malformed one is a clear 422 naming the `cursor` parameter."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return msgspec.json.decode(raw, type=CursorKey)
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise RuleViolation("malformed cursor", field="cursor") from exc


def page_of(rows: list[T], limit: int, key: tuple[datetime, uuid.UUID] | None) -> Page[T]:
    """`rows` fetched with LIMIT limit+1; `key` is the sort key of rows[limit-1] if any."""
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items=items, next_cursor=encode_cursor(*key) if more and key else None)
