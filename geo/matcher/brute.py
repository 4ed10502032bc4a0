"""Brute-force reference matcher: every zone against every ping, no index.

Slow on purpose and simple enough to trust: circles by :func:`geo.zones.circle_d2`, polygons by
GEOS ``covers`` on shapely Points. The only shortcut is skipping pings outside a zone's bounding
box (sorted by longitude), which cannot change the answer. Used by tests and benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import shapely

from geo.zones import CircleShape, PolygonShape, ZoneShape, circle_d2

F64 = npt.NDArray[np.float64]


def covers_one(shape: ZoneShape, lon: float, lat: float) -> bool:
    """Whether ``shape`` covers the point (boundary included)."""
    if isinstance(shape, CircleShape):
        return bool(circle_d2(lon, lat, shape) <= shape.r2)
    return bool(shapely.covers(shape.geom, shapely.Point(lon, lat)))


def brute_force_pairs(
    items: Sequence[tuple[int, ZoneShape]], lons: F64, lats: F64
) -> npt.NDArray[np.int64]:
    """All (ping index, key) pairs with the ping covered, as an ``(n, 2)`` array sorted by row."""
    order = np.argsort(lons, kind="stable")
    slon, slat = lons[order], lats[order]
    out: list[npt.NDArray[np.int64]] = []
    for key, shape in items:
        x0, y0, x1, y1 = shape.bbox
        lo, hi = np.searchsorted(slon, x0, "left"), np.searchsorted(slon, x1, "right")
        cand = np.arange(lo, hi)
        cand = cand[(slat[cand] >= y0) & (slat[cand] <= y1)]
        x, y = slon[cand], slat[cand]
        if isinstance(shape, CircleShape):
            hit = circle_d2(x, y, shape) <= shape.r2
        else:
            assert isinstance(shape, PolygonShape)
            hit = shapely.covers(shape.geom, shapely.points(x, y))
        idx = order[cand[hit]]
        out.append(np.stack([idx, np.full(len(idx), key)], axis=1).astype(np.int64))
    if not out:
        return np.zeros((0, 2), np.int64)
    pairs = np.concatenate(out)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
