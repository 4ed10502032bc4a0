"""Stores and their zones: SQL and the services that own transactions.

Zones are validated by `geo.zones.validate_zone` and stored normalised (`zone_to_geojson`:
closed rings, `[lon, lat]`, no altitude) as jsonb. `zone_version` starts at 1 and grows by one
each time the stored zone actually changes. A delete is soft (`deleted_at`): the ledger keeps
pointing at the store, the matcher forgets it. Every write notifies `zones_changed` inside its
transaction, so listeners hear of it exactly when it commits (and not at all on rollback).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from geo.locator_service import LocatorCache, check_placements
from geo.zones import Circle, Zone, validate_zone, zone_to_geojson
from wallet.kernel.db import Conn
from wallet.kernel.errors import Conflict, NotFound


class Store(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    program_id: uuid.UUID
    code: str
    name: str
    zone: Zone
    zone_version: int
    created_at: datetime
    updated_at: datetime


class StoreChanges(msgspec.Struct, frozen=True, kw_only=True):
    """A partial update: UNSET fields stay as they are."""

    code: str | msgspec.UnsetType = msgspec.UNSET
    name: str | msgspec.UnsetType = msgspec.UNSET
    zone: Zone | msgspec.UnsetType = msgspec.UNSET


_ZONE = msgspec.json.Decoder(Zone)


def normalised_zone(zone: Zone, max_extent_m: float, max_vertices: int | None = None
                    ) -> dict[str, Any]:
    """The zone as stored: validated (InvalidZone names the problem), then normalised."""
    return zone_to_geojson(validate_zone(zone, max_extent_m=max_extent_m,
                                         max_vertices=max_vertices))


def _store(row: asyncpg.Record) -> Store:
    return Store(id=row["id"], program_id=row["program_id"], code=row["code"],
                 name=row["name"], zone=_ZONE.decode(row["zone"]),
                 zone_version=row["zone_version"], created_at=row["created_at"],
                 updated_at=row["updated_at"])


def _json(value: dict[str, Any]) -> str:
    return msgspec.json.encode(value).decode()


COLUMNS = "id, program_id, code, name, zone, zone_version, created_at, updated_at"

INSERT_STORE = f"""
INSERT INTO stores (id, program_id, code, name, zone)
VALUES ($1, $2, $3, $4, $5::jsonb)
RETURNING {COLUMNS}
"""


async def insert_store(conn: Conn, *, program_id: uuid.UUID, code: str,
                       name: str, zone: dict[str, Any]) -> Store:
    try:
        row = await conn.fetchrow(INSERT_STORE, uuid.uuid4(), program_id, code, name,
                                  _json(zone))
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a store with code {code!r} already exists", field="code") from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound("no such program", field="program_id") from exc
    assert row is not None
    return _store(row)


SELECT_STORE = f"""
SELECT {COLUMNS} FROM stores WHERE id = $1 AND program_id = $2 AND deleted_at IS NULL
"""
SELECT_STORE_FOR_UPDATE = SELECT_STORE + " FOR UPDATE"


async def fetch_store(conn: Conn, program_id: uuid.UUID, store_id: uuid.UUID,
                      *, for_update: bool = False) -> Store:
    """A live store of the program, or NotFound (deleted stores are gone for the API)."""
    query = SELECT_STORE_FOR_UPDATE if for_update else SELECT_STORE
    row = await conn.fetchrow(query, store_id, program_id)
    if row is None:
        raise NotFound("no such store", field="store_id")
    return _store(row)


LIST_STORES = f"""
SELECT {COLUMNS} FROM stores
WHERE program_id = $1 AND deleted_at IS NULL
  AND ($2::timestamptz IS NULL OR (created_at, id) > ($2::timestamptz, $3::uuid))
  AND ($5::text IS NULL OR code = $5)
  AND ($6::text IS NULL OR code ILIKE $6 ESCAPE '\\' OR name ILIKE $6 ESCAPE '\\')
ORDER BY created_at, id
LIMIT $4
"""


def contains_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` anywhere, its own `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def fetch_stores(conn: Conn, program_id: uuid.UUID, *, limit: int,
                       after: tuple[datetime, uuid.UUID] | None, code: str | None = None,
                       text: str | None = None) -> list[Store]:
    at, id_ = after if after else (None, None)
    return [_store(r) for r in await conn.fetch(
        LIST_STORES, program_id, at, id_, limit, code,
        contains_pattern(text) if text else None)]


class StoreRef(msgspec.Struct, frozen=True, kw_only=True):
    """A store named, without its zone (what a till needs to show where it is)."""

    id: uuid.UUID
    code: str
    name: str


STORE_REFS = """
SELECT id, code, name FROM stores
WHERE program_id = $1 AND deleted_at IS NULL AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[]))
ORDER BY code
LIMIT 10000
"""


async def store_refs(pool: asyncpg.Pool, program_id: uuid.UUID,
                     ids: Sequence[uuid.UUID] | None) -> list[StoreRef]:
    """The program's live stores among `ids` (None: all of them), by code."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(STORE_REFS, program_id, list(ids) if ids is not None else None)
    return [StoreRef(id=r["id"], code=r["code"], name=r["name"]) for r in rows]


UPDATE_STORE = f"""
UPDATE stores SET code = $3, name = $4, zone = $5::jsonb,
       zone_version = zone_version + $6, updated_at = now()
WHERE id = $1 AND program_id = $2
RETURNING {COLUMNS}
"""


async def update_store_row(conn: Conn, store: Store, *, code: str, name: str,
                           zone: dict[str, Any], zone_changed: bool) -> Store:
    try:
        row = await conn.fetchrow(UPDATE_STORE, store.id, store.program_id, code, name,
                                  _json(zone), int(zone_changed))
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(f"a store with code {code!r} already exists", field="code") from exc
    assert row is not None
    return _store(row)


SOFT_DELETE = """
UPDATE stores SET deleted_at = now(), updated_at = now()
WHERE id = $1 AND program_id = $2 AND deleted_at IS NULL
RETURNING id
"""


async def soft_delete_store(conn: Conn, program_id: uuid.UUID,
                            store_id: uuid.UUID) -> None:
    if await conn.fetchval(SOFT_DELETE, store_id, program_id) is None:
        raise NotFound("no such store", field="store_id")


# --- services -------------------------------------------------------------------------------


def zone_field(zone: Zone, prefix: str = "zone") -> str:
    """Where a zone's position is, for an error naming it."""
    return f"{prefix}.center" if isinstance(zone, Circle) else f"{prefix}.coordinates"


async def create_store(pool: asyncpg.Pool, *, program_id: uuid.UUID, code: str, name: str,
                       zone: Zone, max_extent_m: float, locators: LocatorCache,
                       confirm_location: bool = False, max_vertices: int | None = None
                       ) -> Store:
    """Validate the zone and store it. Duplicate live code → Conflict; coordinates that look
    swapped → LikelySwappedCoordinates unless `confirm_location` (see `geo.placement`).

    Every worker's zone registry hears of it through the `stores` trigger (migration 0005),
    which bumps the program's zones version and NOTIFYs `zones_changed` on commit.
    """
    stored_zone = normalised_zone(zone, max_extent_m, max_vertices)
    async with pool.acquire() as conn, conn.transaction():
        if not confirm_location:
            await check_placements(conn, locators, program_id, [(zone_field(zone), zone)])
        store = await insert_store(conn, program_id=program_id, code=code, name=name,
                                   zone=stored_zone)
        return store


async def get_store(pool: asyncpg.Pool, program_id: uuid.UUID, store_id: uuid.UUID) -> Store:
    async with pool.acquire() as conn:
        return await fetch_store(conn, program_id, store_id)


async def list_stores(pool: asyncpg.Pool, program_id: uuid.UUID, *, limit: int,
                      after: tuple[datetime, uuid.UUID] | None, code: str | None = None,
                      text: str | None = None) -> list[Store]:
    """Up to `limit` live stores in creation order, after the `(created_at, id)` key; only
    the one with `code`, and only those whose code or name contains `text` (any case)."""
    async with pool.acquire() as conn:
        return await fetch_stores(conn, program_id, limit=limit, after=after, code=code,
                                  text=text)


async def update_store(pool: asyncpg.Pool, *, program_id: uuid.UUID, store_id: uuid.UUID,
                       changes: StoreChanges, max_extent_m: float, locators: LocatorCache,
                       confirm_location: bool = False, max_vertices: int | None = None
                       ) -> Store:
    """Apply a partial update; `zone_version` grows only if the normalised zone differs. A
    changed zone whose coordinates look swapped is refused unless `confirm_location`."""
    new_zone = (None if isinstance(changes.zone, msgspec.UnsetType)
                else normalised_zone(changes.zone, max_extent_m, max_vertices))
    async with pool.acquire() as conn, conn.transaction():
        store = await fetch_store(conn, program_id, store_id, for_update=True)
        old_zone = msgspec.to_builtins(store.zone)
        zone = old_zone if new_zone is None else new_zone
        if (new_zone is not None and new_zone != old_zone and not confirm_location
                and not isinstance(changes.zone, msgspec.UnsetType)):
            await check_placements(conn, locators, program_id,
                                   [(zone_field(changes.zone), changes.zone)],
                                   exclude=[store_id])
        updated = await update_store_row(
            conn, store,
            code=store.code if isinstance(changes.code, msgspec.UnsetType) else changes.code,
            name=store.name if isinstance(changes.name, msgspec.UnsetType) else changes.name,
            zone=zone, zone_changed=zone != old_zone)
        return updated


async def delete_store(pool: asyncpg.Pool, program_id: uuid.UUID, store_id: uuid.UUID) -> None:
    """Soft-delete a live store (NotFound if it is not one); the trigger notifies."""
    async with pool.acquire() as conn, conn.transaction():
        await soft_delete_store(conn, program_id, store_id)
