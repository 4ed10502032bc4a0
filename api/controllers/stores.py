"""Campaign managers: stores and their zones (`/v1/programs/{program_id}/stores`).

Managers act in their own program, admins anywhere; staff and members get 403. A zone is a
GeoJSON Polygon or MultiPolygon, or `{"type": "Circle", "center": [lon, lat], "radius_m"}`;
a shape that decodes but is refused by `geo.zones.validate_zone` is a 422
`/problems/invalid-zone` whose `field` points into the zone.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from litestar.types import ControllerRouterHandler
from msgspec import UNSET, Meta, UnsetType

from api.auth.tokens import roles
from api.controllers.admin import in_path_program
from api.errors import responses
from api.paging import Cursor, Limit, Page, decode_cursor, page_of
from geo import store_import, stores
from geo.stores import Store
from geo.zones import Zone

Code = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$",
                           description="the store's own reference, unique in the program")]
StoreName = Annotated[str, Meta(min_length=1, max_length=200)]


class StoreIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    code: Code
    name: StoreName
    zone: Zone


class StorePatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Any subset; a zone that differs from the stored one bumps `zone_version`."""

    code: Code | UnsetType = UNSET
    name: StoreName | UnsetType = UNSET
    zone: Zone | UnsetType = UNSET


class StoreOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    program_id: uuid.UUID
    code: str
    name: str
    zone: Zone  # normalised: closed rings, [lon, lat]
    zone_version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Store) -> StoreOut:
        return cls(id=s.id, program_id=s.program_id, code=s.code, name=s.name, zone=s.zone,
                   zone_version=s.zone_version, created_at=s.created_at,
                   updated_at=s.updated_at)


IMPORT_MAX_BYTES = 64 * 1024 * 1024  # a whole chain's zones in one request


class FeatureCollectionIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Features are validated one by one (so every bad one can be reported, by index)."""

    type: Literal["FeatureCollection"]
    features: Annotated[list[dict[str, Any]], Meta(min_length=1, max_length=100_000)]


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    created: int
    updated: int


class ImportCheck(msgspec.Struct, frozen=True, kw_only=True):
    features: int  # all valid: what the import would upsert


class StoresController(Controller):
    path = "/v1/programs/{program_id:uuid}/stores"
    tags = ["stores"]
    guards = [roles("admin", "manager"), in_path_program]

    @post("/", status_code=201, summary="Create a store with its zone",
          responses=responses(403, 404, 409, 422))
    async def create_store(self, state: State, program_id: FromPath[uuid.UUID],
                           data: JSONBody[StoreIn]) -> StoreOut:
        return StoreOut.of(await stores.create_store(
            state.pool, program_id=program_id, code=data.code, name=data.name, zone=data.zone,
            max_extent_m=state.settings.max_zone_extent_m))

    @get("/", summary="List the program's stores (oldest first)", responses=responses(403, 422))
    async def list_stores(self, state: State, program_id: FromPath[uuid.UUID],
                          limit: Limit = 50, cursor: Cursor = None) -> Page[StoreOut]:
        after = decode_cursor(cursor)
        rows = await stores.list_stores(state.pool, program_id, limit=limit + 1,
                                        after=(after.at, after.id) if after else None)
        last = rows[limit - 1] if len(rows) > limit else None
        return page_of([StoreOut.of(s) for s in rows], limit,
                       (last.created_at, last.id) if last else None)

    @get("/{store_id:uuid}", summary="Read a store", responses=responses(403, 404))
    async def get_store(self, state: State, program_id: FromPath[uuid.UUID],
                        store_id: FromPath[uuid.UUID]) -> StoreOut:
        return StoreOut.of(await stores.get_store(state.pool, program_id, store_id))

    @patch("/{store_id:uuid}", summary="Change a store's code, name or zone",
           responses=responses(403, 404, 409, 422))
    async def update_store(self, state: State, program_id: FromPath[uuid.UUID],
                           store_id: FromPath[uuid.UUID], data: JSONBody[StorePatch]) -> StoreOut:
        changes = stores.StoreChanges(code=data.code, name=data.name, zone=data.zone)
        return StoreOut.of(await stores.update_store(
            state.pool, program_id=program_id, store_id=store_id, changes=changes,
            max_extent_m=state.settings.max_zone_extent_m))

    @delete("/{store_id:uuid}", status_code=204,
            summary="Delete a store (soft: its ledger history stays)",
            responses=responses(403, 404))
    async def delete_store(self, state: State, program_id: FromPath[uuid.UUID],
                           store_id: FromPath[uuid.UUID]) -> None:
        await stores.delete_store(state.pool, program_id, store_id)

    @post("/import", status_code=200, request_max_body_size=IMPORT_MAX_BYTES,
          summary="Import stores from a GeoJSON FeatureCollection (upsert by properties.code)",
          description="Each feature: `{type: Feature, geometry: <zone>, properties: {code, "
                      "name}}`. All features are validated first; one bad feature → 422 "
                      "listing every bad one by index in `errors`, and nothing is written.",
          responses=responses(403, 404, 409, 413, 422))
    async def import_stores(self, state: State, program_id: FromPath[uuid.UUID],
                            data: JSONBody[FeatureCollectionIn]) -> ImportResult:
        prepared = store_import.prepare_import(
            data.features, max_extent_m=state.settings.max_zone_extent_m)
        created, updated = await store_import.import_stores(state.pool, program_id, prepared)
        return ImportResult(created=created, updated=updated)

    @post("/import/check", status_code=200, request_max_body_size=IMPORT_MAX_BYTES,
          summary="Check a store import without writing anything",
          description="Validates the FeatureCollection exactly as the import does: 200 with "
                      "the number of features when all are good, else the same 422 listing "
                      "every bad feature by index. Nothing is written either way.",
          responses=responses(403, 404, 413, 422))
    async def check_import(self, state: State, program_id: FromPath[uuid.UUID],
                           data: JSONBody[FeatureCollectionIn]) -> ImportCheck:
        prepared = store_import.prepare_import(
            data.features, max_extent_m=state.settings.max_zone_extent_m)
        return ImportCheck(features=len(prepared))


class StoresExportController(Controller):
    path = "/v1/programs/{program_id:uuid}/stores.geojson"
    tags = ["stores"]
    guards = [roles("admin", "manager"), in_path_program]

    @get("/", summary="The program's stores as a GeoJSON FeatureCollection (imports back)",
         media_type="application/geo+json", responses=responses(403))
    async def export_stores(self, state: State, program_id: FromPath[uuid.UUID]
                            ) -> Response[bytes]:
        body = await store_import.export_stores(state.pool, program_id)
        return Response(body, media_type="application/geo+json")


ROUTES: list[ControllerRouterHandler] = [StoresController, StoresExportController]
