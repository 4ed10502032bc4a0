"""Times as people read them: instants are stored in UTC and shown in the program's time zone,
with its offset (`2026-03-01T09:30:00+01:00`), so an app or a console shows the wall clock of
the shops without knowing the zone rules. Pure."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (validated when the program was written)."""
    return ZoneInfo(name)


def local(at: datetime, timezone: str) -> datetime:
    """The same instant on the wall clock of `timezone`, offset included."""
    return at.astimezone(zone(timezone))


def local_or_none(at: datetime | None, timezone: str) -> datetime | None:
    return None if at is None else local(at, timezone)
