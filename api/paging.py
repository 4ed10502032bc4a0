"""Keyset pagination as API.md says: `?limit=` (default 50, max 500) and an opaque `?cursor=`;
bodies are `{"items": [...], "next_cursor": "..." | null}`.

A cursor encodes the sort key of the last item returned, `(at, id)`, so pages stay stable
while rows are added. Repositories query `WHERE (at, id) < ($cursor_at, $cursor_id)` (or `>`
for ascending lists) `ORDER BY at, id LIMIT $limit + 1`. Lists ordered by a number (a ledger's
sequence, a revision) carry that number (`decode_number`).

A cursor the server did not write is malformed input: every decoder here answers the same 400
`/problems/validation` naming `cursor` (API.md: 400 for malformed input), never a 422 or a 500.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import datetime
from typing import Annotated, Generic, TypeVar

import msgspec
from litestar.exceptions import ValidationException
from litestar.params import Parameter

from api.boundary import invalid

T = TypeVar("T")

# Handlers declare `limit: Limit = 50, cursor: Cursor = None`.
Limit = Annotated[int, Parameter(ge=1, le=500, description="page size (max 500)")]
Cursor = Annotated[str | None, Parameter(max_length=200,
                                         description="from the previous page's next_cursor")]


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    items: list[T]
    next_cursor: str | None


class CursorKey(msgspec.Struct, frozen=True, array_like=True):
    at: Annotated[datetime, msgspec.Meta(tz=True)]
    id: uuid.UUID


_NUMBER = re.compile(r"[0-9]{1,18}")  # a bigint, never negative


def _malformed() -> ValidationException:
    return invalid("cursor", "malformed cursor: pass the previous page's next_cursor as is",
                   source="query")


def encode_cursor(at: datetime, id_: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(CursorKey(at, id_))).decode().rstrip("=")


def _unpadded(cursor: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _malformed() from exc


def decode_cursor(cursor: str | None) -> CursorKey | None:
    """Decode a cursor; a malformed one is a 400 naming the `cursor` parameter."""
    if not cursor:
        return None
    try:
        return msgspec.json.decode(_unpadded(cursor), type=CursorKey)
    except msgspec.DecodeError as exc:
        raise _malformed() from exc


def encode_number(n: int, *, opaque: bool = False) -> str:
    """A number-ordered list's cursor: the number, as is or (`opaque`) in base64."""
    text = str(n)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=") if opaque else text


def decode_number(cursor: str | None, *, opaque: bool = False) -> int | None:
    """The number `encode_number` wrote; anything else is a 400 naming `cursor`."""
    if not cursor:
        return None
    text = _unpadded(cursor).decode("ascii", "replace") if opaque else cursor
    if not _NUMBER.fullmatch(text):
        raise _malformed()
    return int(text)


def page_of(rows: list[T], limit: int, key: tuple[datetime, uuid.UUID] | None) -> Page[T]:
    """`rows` fetched with LIMIT limit+1; `key` is the sort key of rows[limit-1] if any."""
    more = len(rows) > limit
    items = rows[:limit]
    return Page(items=items, next_cursor=encode_cursor(*key) if more and key else None)
