"""Zone input types (GeoJSON + a Circle extension), validation and normalised shapes.

Axis order is GeoJSON's everywhere: ``[lon, lat]`` in degrees (WGS 84). Distances are metres.

Metric. Metres are measured on a *local equirectangular* metric attached to each zone: with a
reference latitude ``lat0`` (a circle's centre, a polygon's bounding-box centre),
``x = (lon - lon0) * kx`` and ``y = (lat - lat0) * ky`` where ``ky = M_PER_DEG`` and
``kx = M_PER_DEG * cos(lat0)``. Over the few kilometres a store zone spans the distortion is far
below GPS accuracy, and it makes a circle an exact, cheap algebraic test.

Circle semantics (the single definition used by the index *and* by the brute-force reference):
a point is inside a circle iff :func:`circle_d2` ``<= radius_m ** 2`` evaluated in IEEE float64
in exactly that operation order (so the scalar and vectorised paths agree bit for bit).
Polygons are *covered* (interior or boundary) in plain lon/lat coordinates, as GEOS ``covers``.
"""

from __future__ import annotations

import itertools
import math
from typing import Annotated, Any, TypeVar

import msgspec
import shapely

from geo.errors import InvalidZone

M_PER_DEG = 111_319.490_793_273_57  # metres per degree on the WGS 84 equatorial radius
_MAX_POLE_LAT = 89.0  # circles must stay clear of the poles, where kx -> 0

Position = Annotated[list[float], msgspec.Meta(min_length=2, max_length=3)]


class Polygon(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag=True):
    """GeoJSON Polygon: ``coordinates[ring][position] = [lon, lat]``; ring 0 is the shell."""

    coordinates: list[list[Position]]


class MultiPolygon(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag=True
):
    """GeoJSON MultiPolygon: ``coordinates[polygon][ring][position]``."""

    coordinates: list[list[list[Position]]]


class Circle(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag=True):
    """Extension: a circle of ``radius_m`` metres around ``center = [lon, lat]``."""

    center: Position
    radius_m: float


Zone = Polygon | MultiPolygon | Circle

Ring = tuple[tuple[float, float], ...]


class CircleShape(msgspec.Struct, frozen=True, kw_only=True):
    """A validated circle. ``kx``/``ky`` are metres per degree of lon/lat at the centre."""

    lon: float
    lat: float
    radius_m: float
    kx: float
    ky: float

    @property
    def r2(self) -> float:
        return self.radius_m * self.radius_m

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat), padded by one part in 10^9 (never too small)."""
        dlon = self.radius_m / self.kx * (1 + 1e-9)
        dlat = self.radius_m / self.ky * (1 + 1e-9)
        return (self.lon - dlon, self.lat - dlat, self.lon + dlon, self.lat + dlat)


class PolygonShape(msgspec.Struct, frozen=True, kw_only=True):
    """A validated (Multi)Polygon: ``parts[i] = (shell, *holes)``, rings closed, lon/lat.

    ``geom`` is the equivalent prepared shapely geometry (exact GEOS fallback and export);
    ``kx``/``ky`` give the local metric at the bounding-box centre (used for distances only).
    """

    parts: tuple[tuple[Ring, ...], ...]
    multi: bool
    geom: Any
    kx: float
    ky: float

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = shapely.bounds(self.geom).tolist()
        return (x0, y0, x1, y1)


ZoneShape = CircleShape | PolygonShape

N = TypeVar("N", float, Any)


def circle_d2(lon: N, lat: N, c: CircleShape) -> N:
    """Squared distance in m² from (lon, lat) to the centre of ``c`` on its local metric.

    Works on floats and numpy arrays alike with identical rounding: inside iff ``<= c.r2``.
    """
    dx = (lon - c.lon) * c.kx
    dy = (lat - c.lat) * c.ky
    return dx * dx + dy * dy


def _position(p: list[float], field: str) -> tuple[float, float]:
    if not all(math.isfinite(v) for v in p):
        raise InvalidZone(field, "coordinates must be finite numbers")
    lon, lat = float(p[0]), float(p[1])
    if not -180.0 <= lon <= 180.0:
        raise InvalidZone(field, f"longitude {lon} is outside [-180, 180]")
    if not -90.0 <= lat <= 90.0:
        raise InvalidZone(field, f"latitude {lat} is outside [-90, 90]")
    return (lon, lat)


def _ring(raw: list[list[float]], field: str) -> Ring:
    if len(raw) < 4:
        raise InvalidZone(field, f"a ring needs at least 4 positions, got {len(raw)}")
    ring = tuple(_position(p, f"{field}[{i}]") for i, p in enumerate(raw))
    if ring[0] != ring[-1]:
        raise InvalidZone(field, "ring is not closed (first and last positions differ)")
    return ring


def _polygon_part(raw: list[list[list[float]]], field: str) -> tuple[Ring, ...]:
    if not raw:
        raise InvalidZone(field, "a polygon needs a shell ring")
    rings = tuple(_ring(r, f"{field}[{i}]") for i, r in enumerate(raw))
    shell = shapely.Polygon(rings[0])
    if not shell.is_valid:
        raise InvalidZone(f"{field}[0]", f"invalid shell: {shapely.is_valid_reason(shell)}")
    for j, hole in enumerate(rings[1:], start=1):
        hole_poly = shapely.Polygon(hole)
        if not hole_poly.is_valid:
            reason = shapely.is_valid_reason(hole_poly)
            raise InvalidZone(f"{field}[{j}]", f"invalid hole: {reason}")
        if not shell.covers(hole_poly):
            raise InvalidZone(f"{field}[{j}]", "hole lies outside its shell")
    poly = shapely.Polygon(rings[0], rings[1:])
    if not poly.is_valid:
        raise InvalidZone(field, f"invalid polygon: {shapely.is_valid_reason(poly)}")
    return rings


def _extent_m(bbox: tuple[float, float, float, float]) -> tuple[float, float, float]:
    """(width, height, kx) of a bbox in metres on the metric at its centre latitude."""
    kx = M_PER_DEG * math.cos(math.radians((bbox[1] + bbox[3]) / 2))
    return ((bbox[2] - bbox[0]) * kx, (bbox[3] - bbox[1]) * M_PER_DEG, kx)


def vertex_count(zone: Zone) -> int:
    """Positions in a zone's rings (a circle counts as one)."""
    match zone:
        case Circle():
            return 1
        case Polygon(coordinates=rings):
            return sum(len(r) for r in rings)
        case MultiPolygon(coordinates=parts):
            return sum(len(r) for rings in parts for r in rings)


def validate_zone(zone: Zone, *, max_extent_m: float,
                  max_vertices: int | None = None) -> ZoneShape:
    """Validate a zone and return its normalised shape, or raise :class:`InvalidZone`.

    Refused: rings with < 4 positions or not closed, non-finite or out-of-range coordinates
    (lon in [-180, 180], lat in [-90, 90]), invalid topology (self-intersection, holes outside
    their shell, overlapping MultiPolygon parts: GEOS ``is_valid``), ``radius_m <= 0`` or
    non-finite, circles within one degree of a pole, and zones whose *extent* exceeds
    ``max_extent_m``. Extent = the larger of the bounding box's east-west width and
    north-south height in metres (a circle's is its diameter). Zones may not cross the
    antimeridian (such a zone is as wide as the world and fails the extent check).
    With `max_vertices`, a (Multi)Polygon of more positions is refused before any geometry
    is built: a zone is a store's surroundings, and each vertex costs every worker memory
    and every ping on it time (10 polygons of 100,000 vertices stalled a worker for 5 s).
    """
    if max_vertices is not None and (n := vertex_count(zone)) > max_vertices:
        raise InvalidZone("zone.coordinates",
                          f"{n} positions; a zone has at most {max_vertices}")
    match zone:
        case Circle(center=center, radius_m=radius):
            lon, lat = _position(center, "zone.center")
            if not math.isfinite(radius) or radius <= 0:
                raise InvalidZone("zone.radius_m", "radius must be a finite number > 0")
            if abs(lat) > _MAX_POLE_LAT:
                raise InvalidZone("zone.center", "circles must be at least 1 degree from a pole")
            if 2 * radius > max_extent_m:
                raise InvalidZone("zone.radius_m", f"diameter exceeds {max_extent_m:g} m")
            circle = CircleShape(
                lon=lon,
                lat=lat,
                radius_m=float(radius),
                kx=M_PER_DEG * math.cos(math.radians(lat)),
                ky=M_PER_DEG,
            )
            b = circle.bbox
            if b[0] < -180 or b[2] > 180 or b[1] < -90 or b[3] > 90:
                raise InvalidZone("zone.center", "circle crosses the antimeridian or a pole")
            return circle
        case Polygon(coordinates=coords):
            parts: tuple[tuple[Ring, ...], ...] = (_polygon_part(coords, "zone.coordinates"),)
            multi = False
        case MultiPolygon(coordinates=coords):
            if not coords:
                raise InvalidZone("zone.coordinates", "a MultiPolygon needs at least one polygon")
            parts = tuple(_polygon_part(p, f"zone.coordinates[{i}]") for i, p in enumerate(coords))
            multi = True
    polys = [shapely.Polygon(p[0], p[1:]) for p in parts]
    geom = shapely.MultiPolygon(polys) if multi else polys[0]
    if multi and not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        raise InvalidZone("zone.coordinates", f"invalid MultiPolygon: {reason}")
    bounds = shapely.bounds(geom).tolist()
    width, height, kx = _extent_m((bounds[0], bounds[1], bounds[2], bounds[3]))
    if max(width, height) > max_extent_m:
        raise InvalidZone("zone.coordinates", f"zone is wider than {max_extent_m:g} m")
    shapely.prepare(geom)
    return PolygonShape(parts=parts, multi=multi, geom=geom, kx=kx, ky=M_PER_DEG)


def _signed_area(ring: Ring) -> float:
    """Twice the ring's signed area in degrees² (shoelace): > 0 when counterclockwise."""
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring))


def _wound(ring: Ring, *, counterclockwise: bool) -> Ring:
    """The ring in the winding asked for (RFC 7946: shells counterclockwise, holes not)."""
    return ring if (_signed_area(ring) > 0) == counterclockwise else ring[::-1]


def zone_to_geojson(zone: ZoneShape) -> dict[str, Any]:
    """The GeoJSON (plus Circle) dict of a shape; ``decode_zone`` of it validates to the same.

    Rings follow RFC 7946's right-hand rule (exterior counterclockwise, holes clockwise),
    whatever winding they came in: the same area, so validation and matching are unchanged."""
    match zone:
        case CircleShape():
            return {"type": "Circle", "center": [zone.lon, zone.lat], "radius_m": zone.radius_m}
        case PolygonShape(parts=parts, multi=multi):
            rings = [[[list(p) for p in _wound(ring, counterclockwise=j == 0)]
                      for j, ring in enumerate(part)] for part in parts]
            if multi:
                return {"type": "MultiPolygon", "coordinates": rings}
            return {"type": "Polygon", "coordinates": rings[0]}


_DECODER: msgspec.json.Decoder[Zone] = msgspec.json.Decoder(Zone)


def decode_zone(data: bytes | dict[str, Any]) -> Zone:
    """Decode a zone from JSON bytes or a plain dict (raises ``msgspec.ValidationError``)."""
    if isinstance(data, dict):
        zone: Zone = msgspec.convert(data, Zone)
        return zone
    return _DECODER.decode(data)
