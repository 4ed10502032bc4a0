"""The member's store locator (`GET /v1/me/stores?near=`) and the placement check of store
zones: per worker, one `StoreLocator` per program, brought up to date when the program's
`zones_version` has moved (every store create, zone change and delete bumps it: migration
0005), with only the stores changed since. Names and codes are read fresh for the stores
returned, so a renamed store shows its new name at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import asyncpg
import msgspec

from geo.errors import LikelySwappedCoordinates
from geo.locator import Nearby, StoreLocator, location
from geo.placement import Near, likely_swap
from geo.registry import CHANGED_SINCE
from geo.zones import Zone, decode_zone
from wallet.kernel.db import Conn
from wallet.kernel.errors import NotFound

VERSION = "SELECT zones_version FROM programs WHERE id = $1"
LIVE_ZONES = """
SELECT p.zones_version, s.id, s.zone::text AS zone
FROM programs p LEFT JOIN stores s ON s.program_id = p.id AND s.deleted_at IS NULL
WHERE p.id = $1
"""
NAMES = "SELECT id, code, name FROM stores WHERE id = ANY($1::uuid[])"


class NearStore(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    code: str
    name: str
    distance_m: int  # great-circle distance to the store's location, rounded to the metre
    location: tuple[float, float]  # [lon, lat]: a circle's centre, a polygon's bbox centre


class LocatorCache:
    """The worker's locators, one per program, each with the zones version it reflects:
    built from every live store once, then brought up to date with only the stores changed
    since (`stores.zone_seq`, migration 0005)."""

    def __init__(self) -> None:
        self._by_program: dict[uuid.UUID, tuple[int, StoreLocator]] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}

    async def current(self, conn: Conn, program_id: uuid.UUID) -> StoreLocator:
        """The program's locator at its current zones version (NotFound: no such program)."""
        version = await conn.fetchval(VERSION, program_id)
        if version is None:
            raise NotFound("no such program", field="program_id")
        held = self._by_program.get(program_id)
        if held is not None and held[0] >= version:
            return held[1]
        async with self._locks.setdefault(program_id, asyncio.Lock()):
            held = self._by_program.get(program_id)
            if held is not None and held[0] >= version:
                return held[1]
            if held is None:
                rows = await conn.fetch(LIVE_ZONES, program_id)
                locator = StoreLocator((r["id"], _point(r["zone"])) for r in rows
                                       if r["id"] is not None)
                now = rows[0]["zones_version"] if rows else version
            else:
                rows = await conn.fetch(CHANGED_SINCE, program_id, held[0])
                locator = held[1]
                locator.apply(
                    [(r["id"], _point(r["zone"])) for r in rows
                     if r["id"] is not None and not r["deleted"]],
                    [r["id"] for r in rows if r["id"] is not None and r["deleted"]])
                now = rows[0]["zones_version"] if rows else version
            self._by_program[program_id] = (now, locator)
            return locator


def _point(zone: str) -> tuple[float, float]:
    return location(decode_zone(zone.encode()))


async def named(conn: Conn, found: list[Nearby]) -> list[NearStore]:
    """The stores found, with their current code and name (a store deleted meanwhile is
    left out)."""
    rows = {r["id"]: r for r in await conn.fetch(NAMES, [n.store_id for n in found])}
    return [NearStore(id=n.store_id, code=rows[n.store_id]["code"],
                      name=rows[n.store_id]["name"], distance_m=round(n.distance_m),
                      location=n.location)
            for n in found if n.store_id in rows]


async def nearest_stores(pool: asyncpg.Pool, cache: LocatorCache, program_id: uuid.UUID, *,
                         lon: float, lat: float, limit: int) -> list[NearStore]:
    """The program's live stores nearest to `(lon, lat)`, nearest first, at most `limit`."""
    async with pool.acquire() as conn:
        locator = await cache.current(conn, program_id)
        return await named(conn, locator.nearest(lon, lat, limit))


TIMEZONE = "SELECT timezone FROM programs WHERE id = $1"


async def check_placements(conn: Conn, cache: LocatorCache, program_id: uuid.UUID,
                           zones: Sequence[tuple[str, Zone]], *,
                           exclude: Sequence[uuid.UUID] = ()) -> None:
    """Refuse zones whose coordinates look swapped (`geo.placement`), each named by its
    field (`zone.center`, `features[3].geometry`...); `exclude`: stores being replaced."""
    timezone = await conn.fetchval(TIMEZONE, program_id)
    if timezone is None:
        raise NotFound("no such program", field="program_id")
    locator = await cache.current(conn, program_id)
    asked: list[tuple[str, tuple[float, float], Nearby | None, Nearby | None]] = []
    for field, zone in zones:
        lon, lat = location(zone)
        given = locator.nearest(lon, lat, 1, exclude=exclude)
        swapped = locator.nearest(lat, lon, 1, exclude=exclude) if abs(lon) <= 90 else []
        asked.append((field, (lon, lat), given[0] if given else None,
                      swapped[0] if swapped else None))
    ids = {n.store_id for _, _, *near in asked for n in near if n is not None}
    codes = {r["id"]: r["code"] for r in await conn.fetch(NAMES, list(ids))} if ids else {}

    def near(n: Nearby | None) -> Near | None:
        return None if n is None else (n.distance_m, codes.get(n.store_id, "?"))

    errors: list[dict[str, object]] = []
    for field, point, given_near, swapped_near in asked:
        reason = likely_swap(point, timezone=timezone, given_near=near(given_near),
                             swapped_near=near(swapped_near))
        if reason is not None:
            errors.append({"field": field, "reason": reason})
    if errors:
        raise LikelySwappedCoordinates(errors, field=str(errors[0]["field"]))
