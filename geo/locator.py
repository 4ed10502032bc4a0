"""The store locator's core: a program's stores nearest first, by great-circle distance.

A store's *location* is where a member walks to: a circle zone's centre, or the centre of a
(Multi)Polygon zone's bounding box (zones are at most a few kilometres wide, so that point is
on or next to the shop). Distances are great-circle distances on a sphere of the Earth's
mean radius (`EARTH_RADIUS_M`, haversine), in metres.

Index: an `rtree` index of the locations as 3-D points on the unit sphere. The straight-line
(chord) distance between two such points grows with the great-circle distance between them,
so rtree's nearest-neighbour query ranks stores exactly by great-circle distance: no
distortion near the poles or across the antimeridian, where a lon/lat index would be wrong.
Built once per program and worker (bulk-loaded: about 2 s for 100,000 stores on this
machine), then kept current by `apply` with only the stores that changed; a query costs
`O(log n + k)` (about 0.3–0.8 ms for 20 stores among 1,000–100,000, against 4–490 ms for a
brute-force sort). Pure: no I/O, axis order `(lon, lat)` in degrees.
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
    """A nearest-store index over `(store_id, (lon, lat))` pairs, changed in place by
    `apply` (synchronous: in one event loop no query sees half a change)."""

    def __init__(self, stores: Iterable[tuple[uuid.UUID, tuple[float, float]]] = ()) -> None:
        self._ids: list[uuid.UUID | None] = []  # key → store (None: removed)
        self._points: list[tuple[float, float]] = []
        self._keys: dict[uuid.UUID, int] = {}
        for store_id, point in stores:
            self._keys[store_id] = len(self._ids)
            self._ids.append(store_id)
            self._points.append(point)
        self._index: Any = rtree_index.Index(
            ((i, (*_unit(*p), *_unit(*p)), None) for i, p in enumerate(self._points)),
            properties=rtree_index.Property(dimension=3)) if self._ids else \
            rtree_index.Index(properties=rtree_index.Property(dimension=3))

    def apply(self, upserts: Iterable[tuple[uuid.UUID, tuple[float, float]]],
              deletes: Iterable[uuid.UUID]) -> None:
        """Add or move stores, and remove others: `O(log n)` each, no rebuild."""
        for store_id in deletes:
            self._remove(store_id)
        for store_id, point in upserts:
            self._remove(store_id)
            key = len(self._ids)
            self._keys[store_id] = key
            self._ids.append(store_id)
            self._points.append(point)
            self._index.insert(key, (*_unit(*point), *_unit(*point)))

    def _remove(self, store_id: uuid.UUID) -> None:
        key = self._keys.pop(store_id, None)
        if key is not None:
            point = self._points[key]
            self._index.delete(key, (*_unit(*point), *_unit(*point)))
            self._ids[key] = None

    def __len__(self) -> int:
        return len(self._keys)

    def nearest(self, lon: float, lat: float, limit: int, *,
                exclude: Sequence[uuid.UUID] = ()) -> list[Nearby]:
        """Up to `limit` stores nearest to `(lon, lat)`, nearest first (ties by store id),
        leaving out `exclude`."""
        if not self._keys or limit <= 0:
            return []
        q = _unit(lon, lat)
        want = min(len(self._keys), limit + len(exclude))
        # rtree may return more than `want` on ties; the distance sort below settles order
        keys = self._index.nearest((*q, *q), num_results=want)
        skip = set(exclude)
        found = []
        for k in keys:
            store_id = self._ids[k]
            if store_id is not None and store_id not in skip:
                found.append(Nearby(store_id=store_id, location=self._points[k],
                                    distance_m=distance_m((lon, lat), self._points[k])))
        found.sort(key=lambda n: (n.distance_m, n.store_id.bytes))
        return found[:limit]
