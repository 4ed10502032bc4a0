"""Vectorised and scalar exact point-in-zone kernels used by ``geo.grid``.

All coordinates are degrees, ``[lon, lat]`` order. See ``geo.grid`` for the exactness argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from geo.matcher.cover import RowEdges

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
ORIENT_EPS = 1e-15  # GEOS's DP_SAFE_EPSILON: below this relative bound a sign is not trusted


def expand_ranges(
    owner: npt.NDArray[Any], lo: npt.NDArray[Any], hi: npt.NDArray[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """CSR expansion: for ranges ``[lo[i], hi[i])`` return (owner of each member, member).

    Both outputs are running sums of a step array (1 inside a range, a jump at each range's
    start), which is several times faster than ``np.repeat`` of the offsets. Works in the
    dtype of ``lo`` (int32 halves the memory traffic); ``owner`` must fit in it.
    """
    dt = lo.dtype
    n = hi - lo
    k = np.flatnonzero(n)
    if len(k) == 0:
        z = np.zeros(0, dt)
        return z, z
    if len(k) < len(n):
        owner, lo, n = owner[k], lo[k], n[k]
    ends = np.cumsum(n)
    at = ends[:-1]
    step = np.ones(int(ends[-1]), dt)
    step[0] = lo[0]
    step[at] = lo[1:] - lo[:-1] - n[:-1] + 1
    pos = np.cumsum(step, dtype=dt)
    step[:] = 0
    step[0] = owner[0]
    step[at] = np.diff(owner)
    return np.cumsum(step, dtype=dt), pos


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
    lon: F64, lat: F64, lists: npt.NDArray[Any], rows: RowEdges, geoms: npt.NDArray[Any],
    gi: npt.NDArray[Any],
) -> npt.NDArray[np.bool_]:
    """Covers test of ping i against polygon ``geoms[gi[i]]``, given its row list ``lists[i]``
    (the polygon's edges reaching the ping's subcell row, see ``geo.cover.RowEdges``).

    Ray crossing to +lon with GEOS's half-open rule (an edge counts iff exactly one endpoint
    lies strictly above the ping). A pair goes to GEOS when the ping's lat equals an edge
    endpoint's (every vertex / horizontal-edge / on-boundary case needs that) or when the
    orientation sign of a spanning edge is not certain; every other answer is exact by the
    filter bound.
    """
    if len(lon) == 0:
        return np.zeros(0, bool)
    lo, hi = rows.start[lists], rows.start[lists + 1]
    n = hi - lo
    pair, pos = expand_ranges(np.arange(len(lon), dtype=lo.dtype), lo, hi)
    e = rows.edge[pos]
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
    unsure &= spans
    unsure |= y2 == 0.0
    cross = spans & ((det > 0) == above2)
    starts = np.cumsum(n) - n
    has = n > 0  # reduceat needs a non-empty segment; an empty row list means outside
    inside = np.zeros(len(lon), bool)
    doubt_any = np.zeros(len(lon), bool)
    if len(cross):
        st = starts[has]
        inside[has] = np.bitwise_xor.reduceat(cross.view(np.uint8), st).astype(bool)
        doubt_any[has] = np.bitwise_or.reduceat(unsure.view(np.uint8), st).astype(bool)
    doubt = np.flatnonzero(doubt_any)
    if len(doubt):
        inside[doubt] = shapely.intersects_xy(geoms[gi[doubt]], lon[doubt], lat[doubt])
    return inside


def poly_test_one(lon: float, lat: float, lst: int, rows: tuple[memoryview, ...]) -> bool | None:
    """Scalar twin of :func:`poly_pairs` for one ping; ``None`` when GEOS must decide."""
    start, edge, x1s, y1s, x2s, y2s = rows
    inside = False
    for k in range(start[lst], start[lst + 1]):
        i = edge[k]
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
