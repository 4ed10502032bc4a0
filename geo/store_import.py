"""Store import and export as GeoJSON FeatureCollections.

Import validates every feature first (its shape, `properties.code` and `properties.name`,
its zone by `geo.zones.validate_zone`, duplicate codes) and refuses the whole collection,
listing every bad feature by index, if any is wrong: nothing is written. A good collection is
upserted by `code` in one statement (live stores with that code are updated, others created).
Export writes the live stores in the same format, so an export imports back unchanged.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import asyncpg
import msgspec

from geo.errors import InvalidFeatures, InvalidZone
from geo.zones import Zone, validate_zone, zone_to_geojson
from wallet.kernel.errors import Conflict, NotFound

Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class StoreProperties(msgspec.Struct, frozen=True, kw_only=True):
    code: Code
    name: Name


class Feature(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    type: Literal["Feature"]
    geometry: Zone
    properties: StoreProperties
    id: str | int | None = None


class ImportedStore(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    name: str
    zone: dict[str, Any]  # normalised GeoJSON, as stored


def prepare_import(features: list[dict[str, Any]], *, max_extent_m: float
                   ) -> list[ImportedStore]:
    """Validate every feature (pure); raise InvalidFeatures listing each bad one by index."""
    errors: list[dict[str, object]] = []
    out: list[ImportedStore] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(features):
        try:
            feature = msgspec.convert(raw, Feature)
            zone = zone_to_geojson(validate_zone(feature.geometry, max_extent_m=max_extent_m))
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
        out.append(ImportedStore(code=code, name=feature.properties.name, zone=zone))
    if errors:
        raise InvalidFeatures(errors)
    return out


UPSERT = """
WITH incoming AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::jsonb[]) AS i(code, name, zone)
), upd AS (
    UPDATE stores s
       SET name = i.name, zone = i.zone, updated_at = now(),
           zone_version = s.zone_version + (s.zone IS DISTINCT FROM i.zone)::int
      FROM incoming i
     WHERE s.program_id = $1 AND s.code = i.code AND s.deleted_at IS NULL
    RETURNING s.code
), ins AS (
    INSERT INTO stores (id, program_id, code, name, zone)
    SELECT gen_random_uuid(), $1, i.code, i.name, i.zone
      FROM incoming i WHERE i.code NOT IN (SELECT code FROM upd)
    RETURNING 1
)
SELECT (SELECT count(*) FROM ins) AS created, (SELECT count(*) FROM upd) AS updated
"""


async def import_stores(pool: asyncpg.Pool, program_id: uuid.UUID,
                        stores: list[ImportedStore]) -> tuple[int, int]:
    """Upsert by code in one statement; returns (created, updated)."""
    async with pool.acquire() as conn:
        try:
            row = await conn.fetchrow(
                UPSERT, program_id, [s.code for s in stores], [s.name for s in stores],
                [msgspec.json.encode(s.zone).decode() for s in stores])
        except asyncpg.ForeignKeyViolationError as exc:
            raise NotFound("no such program", field="program_id") from exc
        except asyncpg.UniqueViolationError as exc:
            raise Conflict("a concurrent change created one of these codes; retry",
                           field="features") from exc
    assert row is not None
    return int(row["created"]), int(row["updated"])


EXPORT = """
SELECT id, code, name, zone::text AS zone FROM stores
WHERE program_id = $1 AND deleted_at IS NULL ORDER BY code
"""


async def export_stores(pool: asyncpg.Pool, program_id: uuid.UUID) -> bytes:
    """The program's live stores as a GeoJSON FeatureCollection (UTF-8 JSON bytes)."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(EXPORT, program_id)
    parts = [
        b'{"type":"Feature","id":' + msgspec.json.encode(str(r["id"]))
        + b',"geometry":' + r["zone"].encode()
        + b',"properties":' + msgspec.json.encode({"code": r["code"], "name": r["name"]})
        + b"}"
        for r in rows
    ]
    return b'{"type":"FeatureCollection","features":[' + b",".join(parts) + b"]}"
