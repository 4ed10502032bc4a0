"""The store locator's core: a program's stores nearest first, by great-circle distance.

A store's *location* is where a member walks to: a circle zone's centre, or the centre of a
(Multi)Polygon zone's bounding box (zones are at most a few kilometres wide, so that point is
on or next to the shop). Distances are great-circle distances on a sphere of the Earth's
mean radius (`EARTH_RADIUS_M`, haversine), in metres.

Index: an `rtree` index of the locations as 3-D points on the unit sphere. The straight-line
(chord) distance between two such points grows with the great-circle distance between them,
so rtree's nearest-neighbour query ranks stores exactly by great-circle distance: no
distortion near the poles or across the antimeridian, where a lon/lat index would be wrong.
Building costs about a microsecond per store (bulk-loaded); a query `O(log n + k)`. A
`StoreLocator` is immutable once built; a change of the program's zones builds a new one.
Pure: no I/O, axis order `(lon, lat)` in degrees.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from rtree import index as rtree_index

from geo.zones import Circle, MultiPolygon, Polygon, Zone

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG), for great-circle distances


def location(zone: Zone) -> tuple[float, float]:
    """The store's point `(lon, lat)`: a circle's centre, else its zone's bounding-box
    centre."""
    match zone:
        case Circle(center=center):
            return (float(center[0]), float(center[1]))
        case Polygon(coordinates=rings):
            points = [p for ring in rings for p in ring]
        case MultiPolygon(coordinates=parts):
            points = [p for part in parts for ring in part for p in ring]
    lons = [float(p[0]) for p in points]
    lats = [float(p[1]) for p in points]
    return ((min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2)


def _unit(lon: float, lat: float) -> tuple[float, float, float]:
    la, lo = math.radians(lat), math.radians(lon)
    return (math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la))


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two `(lon, lat)` points (haversine)."""
    lat1, lat2 = math.radians(a[1]), math.radians(b[1])
    dlat, dlon = lat2 - lat1, math.radians(b[0] - a[0])
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


class Nearby(msgspec.Struct, frozen=True, kw_only=True):
    store_id: uuid.UUID
    location: tuple[float, float]  # (lon, lat)
    distance_m: float


class StoreLocator:
    """An immutable nearest-store index over `(store_id, (lon, lat))` pairs."""

    def __init__(self, stores: Iterable[tuple[uuid.UUID, tuple[float, float]]]) -> None:
        self._ids: list[uuid.UUID] = []
        self._points: list[tuple[float, float]] = []
        for store_id, point in stores:
            self._ids.append(store_id)
            self._points.append(point)
        props = rtree_index.Property(dimension=3)
        self._index: Any = None
        if self._ids:
            self._index = rtree_index.Index(
                ((i, (*_unit(*p), *_unit(*p)), None) for i, p in enumerate(self._points)),
                properties=props)

    def __len__(self) -> int:
        return len(self._ids)

    def nearest(self, lon: float, lat: float, limit: int, *,
                exclude: Sequence[uuid.UUID] = ()) -> list[Nearby]:
        """Up to `limit` stores nearest to `(lon, lat)`, nearest first (ties by store id),
        leaving out `exclude`."""
        if self._index is None or limit <= 0:
            return []
        q = _unit(lon, lat)
        want = min(len(self._ids), limit + len(exclude))
        # rtree may return more than `want` on ties; the distance sort below settles order
        keys = self._index.nearest((*q, *q), num_results=want)
        skip = set(exclude)
        found = [Nearby(store_id=self._ids[k], location=self._points[k],
                        distance_m=distance_m((lon, lat), self._points[k]))
                 for k in keys if self._ids[k] not in skip]
        found.sort(key=lambda n: (n.distance_m, n.store_id.bytes))
        return found[:limit]
