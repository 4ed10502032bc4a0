"""Campaign managers: stores and their zones (`/v1/programs/{program_id}/stores`).

Managers act in their own program, admins anywhere; staff and members get 403. A zone is a
GeoJSON Polygon or MultiPolygon, or `{"type": "Circle", "center": [lon, lat], "radius_m"}`;
a shape that decodes but is refused by `geo.zones.validate_zone` is a 422
`/problems/invalid-zone` whose `field` points into the zone.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Response, delete, get, patch, post
from litestar.datastructures import State
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter
from litestar.types import ControllerRouterHandler
from msgspec import UNSET, Meta, UnsetType

from api.auth.tokens import roles
from api.controllers.admin import in_path_program
from api.errors import PROBLEM_JSON, ImportProblem, responses
from api.paging import Cursor, Limit, Page, decode_cursor, page_of
from geo import store_import, stores
from geo.store_import import CODE_PATTERN, ImportedRow
from geo.stores import Store
from geo.zones import Zone
from wallet.kernel.text import NO_CONTROL, Text

Code = Annotated[str, Meta(min_length=1, max_length=64, pattern=CODE_PATTERN,
                           description="the store's own reference, unique in the program")]
StoreName = Annotated[Text, Meta(min_length=1, max_length=200)]


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


IMPORT_MAX_BYTES = 64 * 1024 * 1024  # the hard ceiling; Settings.max_import_bytes applies
IMPORT_LIMIT = {"max_body_setting": "max_import_bytes"}  # read by api.boundary
IMPORT_RESPONSES = {**responses(403, 404, 409, 413), 422: ResponseSpec(
    data_container=ImportProblem, media_type=PROBLEM_JSON,
    description="Some features are refused (/problems/invalid-features: each listed by index "
                "in `errors`), or their coordinates look swapped "
                "(/problems/likely-swapped-coordinates: each named by `field`)")}


class FeatureCollectionIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Features are validated one by one (so every bad one can be reported, by index). A GIS
    tool's `bbox`, `name` and `crs` members are accepted and ignored (coordinates are WGS 84
    `[lon, lat]`, as RFC 7946 says)."""

    type: Literal["FeatureCollection"]
    features: Annotated[list[dict[str, Any]], Meta(min_length=1, max_length=100_000)]
    bbox: list[float] | None = None
    name: Text | None = None
    crs: dict[str, Any] | None = None


class ImportResult(msgspec.Struct, frozen=True, kw_only=True):
    """How many stores were created, updated (name or zone differed) and left unchanged
    (identical), and each feature's `{code, id, result}` in the features' order."""

    created: int
    updated: int
    unchanged: int
    stores: list[ImportedRow]


ConfirmLocation = Annotated[bool, Parameter(
    description="keep coordinates that look like latitude and longitude swapped (they are "
                "refused with 422 /problems/likely-swapped-coordinates otherwise)")]
CodeFilter = Annotated[str | None, Parameter(max_length=64, pattern=NO_CONTROL,
                                             description="only the store with this code")]
TextQuery = Annotated[str | None, Parameter(
    min_length=1, max_length=200, pattern=NO_CONTROL,
    description="only stores whose code or name contains this text (case-insensitive)")]


class LikelySwap(msgspec.Struct, frozen=True, kw_only=True):
    index: int  # the feature's index in `features`
    field: str
    reason: str


class ImportCheck(msgspec.Struct, frozen=True, kw_only=True):
    features: int  # all valid: what the import would upsert
    # features the import refuses without `confirm_location=true` (coordinates look swapped)
    likely_swapped: list[LikelySwap] = []


class StoresController(Controller):
    path = "/v1/programs/{program_id:uuid}/stores"
    tags = ["stores"]
    guards = [roles("admin", "manager"), in_path_program]

    @post("/", status_code=201, summary="Create a store with its zone",
          description="The zone is GeoJSON `[lon, lat]`: a Polygon, a MultiPolygon or "
                      "`{type: Circle, center, radius_m}`. A refused shape is a 422 "
                      "/problems/invalid-zone naming the field. Coordinates that look like "
                      "latitude and longitude swapped (the swapped point is where the "
                      "program's other stores are, or the point is far from the program's "
                      "time zone while the swapped one is in it) are a 422 "
                      "/problems/likely-swapped-coordinates, unless `confirm_location=true`.",
          responses=responses(403, 404, 409, 422))
    async def create_store(self, state: State, program_id: FromPath[uuid.UUID],
                           data: JSONBody[StoreIn],
                           confirm_location: ConfirmLocation = False) -> StoreOut:
        return StoreOut.of(await stores.create_store(
            state.pool, program_id=program_id, code=data.code, name=data.name, zone=data.zone,
            max_extent_m=state.settings.max_zone_extent_m,
            max_vertices=state.settings.max_zone_vertices, locators=state.locators,
            confirm_location=confirm_location))

    @get("/", summary="List the program's stores (oldest first)",
         description="Filter with `code` (exact) and `q` (text in the code or the name, "
                     "case-insensitive); paged with `limit` and `cursor`.",
         responses=responses(403, 404))
    async def list_stores(self, state: State, program_id: FromPath[uuid.UUID], *,
                          code: CodeFilter = None, q: TextQuery = None,
                          limit: Limit = 50, cursor: Cursor = None) -> Page[StoreOut]:
        after = decode_cursor(cursor)
        rows = await stores.list_stores(state.pool, program_id, limit=limit + 1,
                                        after=(after.at, after.id) if after else None,
                                        code=code, text=q)
        last = rows[limit - 1] if len(rows) > limit else None
        return page_of([StoreOut.of(s) for s in rows], limit,
                       (last.created_at, last.id) if last else None)

    @get("/{store_id:uuid}", summary="Read a store", responses=responses(403, 404))
    async def get_store(self, state: State, program_id: FromPath[uuid.UUID],
                        store_id: FromPath[uuid.UUID]) -> StoreOut:
        return StoreOut.of(await stores.get_store(state.pool, program_id, store_id))

    @patch("/{store_id:uuid}", summary="Change a store's code, name or zone",
           description="Any subset of `code`, `name`, `zone`; a zone that differs bumps "
                       "`zone_version` and takes effect for matching at once. A new zone "
                       "that looks like latitude and longitude swapped is a 422 unless "
                       "`confirm_location=true` (as for creation).",
           responses=responses(403, 404, 409, 422))
    async def update_store(self, state: State, program_id: FromPath[uuid.UUID],
                           store_id: FromPath[uuid.UUID], data: JSONBody[StorePatch],
                           confirm_location: ConfirmLocation = False) -> StoreOut:
        changes = stores.StoreChanges(code=data.code, name=data.name, zone=data.zone)
        return StoreOut.of(await stores.update_store(
            state.pool, program_id=program_id, store_id=store_id, changes=changes,
            max_extent_m=state.settings.max_zone_extent_m,
            max_vertices=state.settings.max_zone_vertices, locators=state.locators,
            confirm_location=confirm_location))

    @delete("/{store_id:uuid}", status_code=204,
            summary="Delete a store (soft: its ledger history stays)",
            responses=responses(403, 404))
    async def delete_store(self, state: State, program_id: FromPath[uuid.UUID],
                           store_id: FromPath[uuid.UUID]) -> None:
        await stores.delete_store(state.pool, program_id, store_id)

    @post("/import", status_code=200, request_max_body_size=IMPORT_MAX_BYTES, opt=IMPORT_LIMIT,
          summary="Import stores from a GeoJSON FeatureCollection (upsert by properties.code)",
          description="Each feature: `{type: Feature, geometry, properties: {code, name}}` "
                      "where the geometry is a Polygon, a MultiPolygon, a `Point` with "
                      "`properties.radius_m` (a circle, as the export writes it) or our "
                      "`Circle`. All features are validated first; one bad feature → 422 "
                      "listing every bad one by index in `errors`, and nothing is written; "
                      "likewise coordinates that look swapped (422 "
                      "/problems/likely-swapped-coordinates) unless `confirm_location=true`. "
                      "The answer counts the stores created, updated (name or zone changed) "
                      "and unchanged (identical), and gives each feature's `code`, store `id` "
                      "and `result`.",
          responses=IMPORT_RESPONSES)
    async def import_stores(self, state: State, program_id: FromPath[uuid.UUID],
                            data: JSONBody[FeatureCollectionIn],
                            confirm_location: ConfirmLocation = False) -> ImportResult:
        prepared = await asyncio.to_thread(  # seconds of geometry: off the event loop
            store_import.prepare_import, data.features,
            max_extent_m=state.settings.max_zone_extent_m,
            max_vertices=state.settings.max_zone_vertices)
        rows = await store_import.import_stores(state.pool, program_id, prepared,
                                                locators=state.locators,
                                                confirm_location=confirm_location)
        results = [r.result for r in rows]
        return ImportResult(created=results.count("created"), updated=results.count("updated"),
                            unchanged=results.count("unchanged"), stores=rows)

    @post("/import/check", status_code=200, request_max_body_size=IMPORT_MAX_BYTES,
          opt=IMPORT_LIMIT,
          summary="Check a store import without writing anything",
          description="Validates the FeatureCollection exactly as the import does: 200 with "
                      "the number of features when all are good, else the same 422 listing "
                      "every bad feature by index. The 200 also lists in `likely_swapped` "
                      "the features whose coordinates look like latitude and longitude "
                      "swapped (index, field, reason), which the import refuses unless "
                      "`confirm_location=true`. Nothing is written either way.",
          responses=IMPORT_RESPONSES)
    async def check_import(self, state: State, program_id: FromPath[uuid.UUID],
                           data: JSONBody[FeatureCollectionIn]) -> ImportCheck:
        prepared = await asyncio.to_thread(  # seconds of geometry: off the event loop
            store_import.prepare_import, data.features,
            max_extent_m=state.settings.max_zone_extent_m,
            max_vertices=state.settings.max_zone_vertices)
        swaps = await store_import.likely_swaps(state.pool, program_id, prepared,
                                                locators=state.locators)
        return ImportCheck(features=len(prepared),
                           likely_swapped=msgspec.convert(swaps, list[LikelySwap]))


class GeoJSONFeature(msgspec.Struct, frozen=True, kw_only=True):
    type: Literal["Feature"]
    id: str
    geometry: dict[str, Any]
    properties: dict[str, Any]


class GeoJSONStores(msgspec.Struct, frozen=True, kw_only=True):
    """What `stores.geojson` answers (documentation only: the body is written as bytes)."""

    type: Literal["FeatureCollection"]
    features: list[GeoJSONFeature]


class StoresExportController(Controller):
    path = "/v1/programs/{program_id:uuid}/stores.geojson"
    tags = ["stores"]
    guards = [roles("admin", "manager"), in_path_program]

    @get("/", summary="The program's stores as a GeoJSON FeatureCollection (imports back)",
         media_type="application/geo+json",
         responses={**responses(403, 404), 200: ResponseSpec(
             data_container=GeoJSONStores, media_type="application/geo+json",
             description="RFC 7946 FeatureCollection, one Feature per live store")})
    async def export_stores(self, state: State, program_id: FromPath[uuid.UUID]
                            ) -> Response[bytes]:
        body = await store_import.export_stores(state.pool, program_id)
        return Response(body, media_type="application/geo+json")


ROUTES: list[ControllerRouterHandler] = [StoresController, StoresExportController]
