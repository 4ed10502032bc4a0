"""Vectorised and scalar exact point-in-zone kernels used by ``geo.grid``.

All coordinates are degrees, ``[lon, lat]`` order. See ``geo.grid`` for the exactness argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from geo.cover import RowEdges

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
ORIENT_EPS = 1e-15  # GEOS's DP_SAFE_EPSILON: below this relative bound a sign is not trusted


def expand_ranges(owner: I64, lo: I64, hi: I64) -> tuple[I64, I64]:
    """CSR expansion: for ranges ``[lo[i], hi[i])`` return (owner of each member, member)."""
    n = hi - lo
    total = int(n.sum())
    if total == 0:
        z = np.zeros(0, np.int64)
        return z, z
    own = np.repeat(owner, n)
    pos = np.arange(total, dtype=np.int64)
    pos -= np.repeat(np.cumsum(n) - n - lo, n)
    return own, pos


def circle_pairs(lon: F64, lat: F64, cpar: F64, ci: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Inside test of ping i against circle ``ci[i]`` (``cpar`` rows: lon, lat, kx, ky, r²)."""
    p = cpar[ci]
    dx = lon - p[:, 0]
    dx *= p[:, 2]
    dy = lat - p[:, 1]
    dy *= p[:, 3]
    dx *= dx
    dy *= dy
    dx += dy
    return dx <= p[:, 4]  # type: ignore[no-any-return]


def poly_pairs(  # noqa: PLR0917 - a hot kernel: positional arrays, no wrapper object
    lon: F64,
    lat: F64,
    lo: npt.NDArray[Any],
    hi: npt.NDArray[Any],
    rows: RowEdges,
    geoms: npt.NDArray[Any],
    gi: npt.NDArray[Any],
) -> npt.NDArray[np.bool_]:
    """Covers test of ping i against polygon ``geoms[gi[i]]``, given its edges ``[lo, hi)``.

    Ray crossing to +lon with GEOS's half-open rule (an edge counts iff exactly one endpoint
    lies strictly above the ping). A pair goes to GEOS when the ping's lat equals an edge
    endpoint's (every vertex / horizontal-edge / on-boundary case needs that) or when an
    orientation sign is not certain; every other answer is exact by the filter bound.
    """
    if len(lon) == 0:
        return np.zeros(0, bool)
    n = (hi - lo).astype(np.int64)
    pair, e = expand_ranges(np.arange(len(lon), dtype=np.int64), lo.astype(np.int64), hi)
    px, py = lon[pair], lat[pair]
    x1, y1, x2, y2 = rows.x1[e], rows.y1[e], rows.x2[e], rows.y2[e]
    above2 = y2 > py
    spans = (y1 > py) != above2
    x1 -= px
    x2 -= px
    y1 -= py
    y2 -= py
    dl = x1 * y2
    dr = y1 * x2
    det = dl - dr
    np.abs(dl, out=dl)
    np.abs(dr, out=dr)
    dl += dr
    dl *= ORIENT_EPS
    unsure = np.abs(det) <= dl
    unsure |= y2 == 0.0
    cross = spans & ((det > 0) == above2)
    starts = np.cumsum(n) - n
    inside = np.bitwise_xor.reduceat(cross.view(np.uint8), starts).astype(bool)
    doubt = np.flatnonzero(np.bitwise_or.reduceat(unsure.view(np.uint8), starts))
    if len(doubt):
        inside[doubt] = shapely.intersects_xy(geoms[gi[doubt]], lon[doubt], lat[doubt])
    return inside


def poly_test_one(
    lon: float, lat: float, lo: int, hi: int, rows: tuple[memoryview, ...]
) -> bool | None:
    """Scalar twin of :func:`poly_pairs` for one ping; ``None`` when GEOS must decide."""
    x1s, y1s, x2s, y2s = rows
    inside = False
    for i in range(lo, hi):
        y2 = y2s[i] - lat
        if y2 == 0.0:
            return None
        y1 = y1s[i] - lat
        if (y1 > 0.0) != (y2 > 0.0):
            x1, x2 = x1s[i] - lon, x2s[i] - lon
            dl, dr = x1 * y2, y1 * x2
            det = dl - dr
            if abs(det) <= ORIENT_EPS * (abs(dl) + abs(dr)):
                return None
            if (det > 0) == (y2 > 0.0):
                inside = not inside
    return inside
