"""Store import and export as GeoJSON FeatureCollections (RFC 7946).

A circle zone travels as a `Point` geometry (its centre) with `properties.radius_m`: RFC 7946
has no circle, and GIS tools refuse unknown geometry types. Import also accepts our `Circle`
extension geometry. Polygons are exported with RFC 7946's winding (exterior rings
counterclockwise, holes clockwise), as they are stored.

Import validates every feature first (its shape, `properties.code` and `properties.name`,
its zone by `geo.zones.validate_zone`, duplicate codes) and refuses the whole collection,
listing every bad feature by index, if any is wrong: nothing is written. Coordinates that
look swapped (`geo.placement`) refuse it the same way unless the manager confirms. A good
collection is upserted by `code` in one statement: live stores with that code whose name or
zone differ are updated, identical ones are left `unchanged`, others created; the answer
gives each feature's code, store id and result, in the features' order. Export writes the
live stores in the same format, so an export imports back `unchanged`.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import asyncpg
import msgspec

from geo.errors import InvalidFeatures, InvalidZone, LikelySwappedCoordinates
from geo.locator_service import LocatorCache, check_placements
from geo.stores import zone_field
from geo.zones import (
    Circle,
    MultiPolygon,
    Polygon,
    Position,
    Zone,
    validate_zone,
    zone_to_geojson,
)
from wallet.kernel.db import Conn
from wallet.kernel.errors import Conflict, NotFound
from wallet.kernel.text import CONTROL, VISIBLE, Text, patterned

# A code: no control characters, no leading or trailing white space.
CODE_PATTERN = patterned(rf"^[^\s{CONTROL}]({VISIBLE}*[^\s{CONTROL}])?$",
                         "must not contain control characters nor start or end with a space")
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=CODE_PATTERN)]
Name = Annotated[Text, msgspec.Meta(min_length=1, max_length=200)]


class StoreProperties(msgspec.Struct, frozen=True, kw_only=True):
    """Other properties (a GIS tool's own) are ignored."""

    code: Code
    name: Name
    radius_m: float | None = None  # a `Point` geometry's circle radius, metres


class Point(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag=True):
    """GeoJSON Point: a circle's centre `[lon, lat]`; its radius is `properties.radius_m`."""

    coordinates: Position


class Feature(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: Literal["Feature"]
    geometry: Polygon | MultiPolygon | Circle | Point
    properties: StoreProperties
    id: Annotated[Text, msgspec.Meta(max_length=200)] | int | None = None
    bbox: list[float] | None = None  # RFC 7946 allows one; ignored


def _zone(feature: Feature, i: int) -> Zone:
    """The feature's zone: a `Point` with `properties.radius_m` is that circle."""
    g = feature.geometry
    if not isinstance(g, Point):
        return g
    radius = feature.properties.radius_m
    if radius is None:
        raise InvalidZone(f"features[{i}].properties.radius_m",
                          "a Point store needs properties.radius_m (its circle, in metres)")
    return Circle(center=g.coordinates, radius_m=radius)


class ImportedStore(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    zone: dict[str, Any]  # normalised GeoJSON, as stored
    given: Zone  # as it came in (for the placement check)
    index: int  # the feature's position in the collection


ImportResult = Literal["created", "updated", "unchanged"]


class ImportedRow(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    id: uuid.UUID
    result: ImportResult


def prepare_import(features: list[dict[str, Any]], *, max_extent_m: float,
                   max_vertices: int | None = None
                   ) -> list[ImportedStore]:
    """Validate every feature (pure); raise InvalidFeatures listing each bad one by index."""
    errors: list[dict[str, object]] = []
    out: list[ImportedStore] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(features):
        try:
            feature = msgspec.convert(raw, Feature)
            given = _zone(feature, i)
            zone = zone_to_geojson(validate_zone(given, max_extent_m=max_extent_m,
                                                 max_vertices=max_vertices))
        except msgspec.ValidationError as exc:
            errors.append({"index": i, "field": f"features[{i}]", "reason": str(exc)})
            continue
        except InvalidZone as exc:
            field = (exc.field or "zone").replace("zone", f"features[{i}].geometry", 1)
            errors.append({"index": i, "field": field, "reason": exc.reason})
            continue
        code = feature.properties.code
        if code in seen:
            errors.append({"index": i, "field": f"features[{i}].properties.code",
                           "reason": f"duplicate code {code!r} (also feature {seen[code]})"})
            continue
        seen[code] = i
        out.append(ImportedStore(code=code, name=feature.properties.name, zone=zone,
                                 given=given, index=i))
    if errors:
        raise InvalidFeatures(errors)
    return out


# One snapshot for every CTE: `same` and `upd` see the stores as they were, and are disjoint.
UPSERT = """
WITH incoming AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS i(code, name,
                                                                                 zone, n)
), upd AS (
    UPDATE stores s
       SET name = i.name, zone = i.zone, updated_at = now(),
           zone_version = s.zone_version + (s.zone IS DISTINCT FROM i.zone)::int
      FROM incoming i
     WHERE s.program_id = $1 AND s.code = i.code AND s.deleted_at IS NULL
       AND (s.name IS DISTINCT FROM i.name OR s.zone IS DISTINCT FROM i.zone)
    RETURNING s.code, s.id
), same AS (
    SELECT s.code, s.id FROM stores s JOIN incoming i ON i.code = s.code
     WHERE s.program_id = $1 AND s.deleted_at IS NULL AND s.name = i.name AND s.zone = i.zone
), ins AS (
    INSERT INTO stores (id, program_id, code, name, zone)
    SELECT gen_random_uuid(), $1, i.code, i.name, i.zone FROM incoming i
     WHERE NOT EXISTS (SELECT 1 FROM stores s WHERE s.program_id = $1 AND s.code = i.code
                                                AND s.deleted_at IS NULL)
    RETURNING code, id
)
SELECT i.code, coalesce(u.id, n.id, sm.id) AS id,
       CASE WHEN u.id IS NOT NULL THEN 'updated' WHEN n.id IS NOT NULL THEN 'created'
            ELSE 'unchanged' END AS result
FROM incoming i LEFT JOIN upd u USING (code) LEFT JOIN ins n USING (code)
     LEFT JOIN same sm USING (code)
ORDER BY i.n
"""


async def _check_placements(conn: Conn, locators: LocatorCache,
                            program_id: uuid.UUID, stores: list[ImportedStore]) -> None:
    try:
        await check_placements(conn, locators, program_id, [
            (zone_field(s.given, f"features[{s.index}].geometry"), s.given) for s in stores])
    except LikelySwappedCoordinates as exc:
        for e in exc.errors:  # name each feature by index too, as InvalidFeatures does
            e["index"] = int(str(e["field"]).split("[")[1].split("]")[0])
        raise


async def likely_swaps(pool: asyncpg.Pool, program_id: uuid.UUID,
                       stores: list[ImportedStore], *, locators: LocatorCache
                       ) -> list[dict[str, object]]:
    """The features whose coordinates look swapped (`{index, field, reason}` each), as the
    import would refuse them without `confirm_location`; nothing is written."""
    async with pool.acquire() as conn:
        try:
            await _check_placements(conn, locators, program_id, stores)
        except LikelySwappedCoordinates as exc:
            return exc.errors
    return []


async def import_stores(pool: asyncpg.Pool, program_id: uuid.UUID,
                        stores: list[ImportedStore], *, locators: LocatorCache,
                        confirm_location: bool = False) -> list[ImportedRow]:
    """Upsert by code in one statement; each feature's code, store id and result, in order.
    Coordinates that look swapped refuse the whole import unless `confirm_location`."""
    async with pool.acquire() as conn, conn.transaction():
        if not confirm_location:
            await _check_placements(conn, locators, program_id, stores)
        try:
            rows = await conn.fetch(
                UPSERT, program_id, [s.code for s in stores], [s.name for s in stores],
                [msgspec.json.encode(s.zone).decode() for s in stores])
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFound("no such program", field="program_id") from exc
        except asyncpg.UniqueViolationError as exc:
            raise Conflict("a concurrent change created one of these codes; retry",
                           field="features") from exc
    return [ImportedRow(code=r["code"], id=r["id"], result=r["result"]) for r in rows]


EXPORT = """
SELECT id, code, name, zone::text AS zone FROM stores
WHERE program_id = $1 AND deleted_at IS NULL ORDER BY code
"""


async def export_stores(pool: asyncpg.Pool, program_id: uuid.UUID) -> bytes:
    """The program's live stores as an RFC 7946 FeatureCollection (UTF-8 JSON bytes): a
    circle as a `Point` with `properties.radius_m`, polygons as stored."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(EXPORT, program_id)
    parts = []
    for r in rows:
        zone = _ZONE.decode(r["zone"].encode())
        props: dict[str, Any] = {"code": r["code"], "name": r["name"]}
        if isinstance(zone, Circle):
            geometry = msgspec.json.encode({"type": "Point", "coordinates": zone.center})
            props["radius_m"] = zone.radius_m
        else:
            geometry = r["zone"].encode()
        parts.append(b'{"type":"Feature","id":' + msgspec.json.encode(str(r["id"]))
                     + b',"geometry":' + geometry
                     + b',"properties":' + msgspec.json.encode(props) + b"}")
    return b'{"type":"FeatureCollection","features":[' + b",".join(parts) + b"]}"


_ZONE: msgspec.json.Decoder[Zone] = msgspec.json.Decoder(Zone)
