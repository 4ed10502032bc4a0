"""Cover of zones by a grid of cells: which zones touch which cell, and how.

The cell grid is aligned on powers of two of a degree: cell ``(gx, gy)`` is the lon/lat
rectangle ``[X0 + gx/S, X0 + (gx+1)/S) x [Y0 + gy/S, Y0 + (gy+1)/S)`` with ``S = 2**shift``.
For each zone we emit one entry per cell it touches:

- ``FULL``: the cell (grown by ``EPS`` degrees on every side) is wholly covered by the zone,
  so every ping mapped to that cell is inside without any test;
- ``CIRCLE`` / ``POLY``: the zone's boundary may cross the cell, so pings there need the exact
  test (``POLY`` entries carry the id of the *row list*: the polygon's edges that reach the
  cell's row strip, enough for an exact ray-crossing test from any point of the cell).

Cells a zone does not touch get no entry. ``EPS`` (1e-9 degrees, ~0.1 mm) absorbs the rounding
of mapping a ping to its cell, so the classification is exact for every ping, not a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from geo.zones import CircleShape, PolygonShape

EPS = 1e-9  # degrees added around every cell / edge before classifying it
FULL, CIRCLE, POLY = 0, 1, 2
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
_CHUNK = 2_000_000  # cells classified per vectorised step (bounds temporary memory)


@dataclass(frozen=True, slots=True)
class Frame:
    """The grid origin ``(x0, y0)`` in degrees, ``shift`` (cells per degree = 2**shift) and size."""

    x0: float
    y0: float
    shift: int
    width: int
    height: int

    @property
    def scale(self) -> float:
        return float(2**self.shift)


@dataclass(frozen=True, slots=True)
class Entries:
    """Cover entries, one per (cell, zone): cell, kind, zone ref and, for POLY entries, the
    range ``[aux, aux2)`` of row-list edges to test (edges not wholly left of the cell)."""

    gx: I64
    gy: I64
    kind: npt.NDArray[np.int8]
    ref: I64
    aux: I64
    aux2: I64


@dataclass(frozen=True, slots=True)
class RowEdges:
    """Polygon edges grouped by (polygon, cell row): list ``i`` is ``[start[i], start[i+1])``,
    each list sorted by decreasing ``max(x1, x2)``."""

    start: I64
    x1: F64
    y1: F64
    x2: F64
    y2: F64


def _expand(lo: I64, hi: I64) -> tuple[I64, I64]:
    """For inclusive integer ranges [lo, hi]: (owner index, value) of every member."""
    n = hi - lo + 1
    owner = np.repeat(np.arange(len(lo)), n)
    first = np.cumsum(n) - n
    return owner, np.arange(int(n.sum())) - np.repeat(first - lo, n)


def _cell(v: F64 | float, origin: float, scale: float) -> Any:
    return np.floor((np.asarray(v) - origin) * scale).astype(np.int64)


def circle_entries(circles: list[CircleShape], frame: Frame) -> Entries:
    """FULL / CIRCLE entries of circles ``0..n-1`` (``ref`` = circle number).

    Row by row: a cell row touches the circle over the half-chord at the row's nearest lat,
    and lies wholly inside over the half-chord at its farthest lat (cells grown by ``EPS``,
    radius squared shrunk / grown by one part in 10^9 so that rounding never misclassifies).
    """
    if not circles:
        return _concat([])
    par = np.array([(c.lon, c.lat, c.kx, c.ky, c.r2) for c in circles], dtype=np.float64)
    cx, cy, kx, ky, r2 = (par[:, j] for j in range(5))
    s, x0, y0 = frame.scale, frame.x0, frame.y0
    dlat = np.sqrt(r2) / ky * (1 + 1e-9)
    ci, row = _expand(_cell(cy - dlat - EPS, y0, s), _cell(cy + dlat + EPS, y0, s))
    cx, kx, ky, r2 = cx[ci], kx[ci], ky[ci], r2[ci]
    yl = (y0 + row / s - EPS - cy[ci]) * ky
    yh = (y0 + (row + 1) / s + EPS - cy[ci]) * ky
    near = np.maximum(np.maximum(yl, -yh), 0.0)
    far = np.maximum(np.abs(yl), np.abs(yh))
    with np.errstate(invalid="ignore"):
        touch = np.sqrt(r2 * (1 + 1e-9) - near * near) / kx  # NaN: the row misses the circle
        full = np.sqrt(r2 * (1 - 1e-9) - far * far) / kx
    ok = np.isfinite(touch)
    ci, row, cx, touch, full = ci[ok], row[ok], cx[ok], touch[ok], full[ok]
    t0, t1 = _cell(cx - touch - EPS, x0, s), _cell(cx + touch + EPS, x0, s)
    has_full = np.isfinite(full)
    full = np.where(has_full, full, 0.0)
    f0 = np.where(has_full, np.ceil((cx - full + EPS - x0) * s), t1 + 1).astype(np.int64)
    f1 = np.where(has_full, np.floor((cx + full - EPS - x0) * s) - 1, t1).astype(np.int64)
    f1 = np.maximum(f1, f0 - 1)  # empty full range when no whole cell fits
    f0, f1 = np.clip(f0, t0, t1 + 1), np.clip(f1, t0 - 1, t1)
    parts = []
    for lo, hi, kind in ((t0, f0 - 1, CIRCLE), (f0, f1, FULL), (f1 + 1, t1, CIRCLE)):
        k = hi >= lo
        own, gx = _expand(lo[k], np.maximum(hi[k], lo[k] - 1))
        n = len(gx)
        zero = np.zeros(n, np.int64)
        parts.append(Entries(gx, row[k][own], np.full(n, kind, np.int8), ci[k][own], zero, zero))
    return _concat(parts)


def _concat(parts: list[Entries]) -> Entries:
    if not parts:
        z = np.zeros(0, np.int64)
        return Entries(z, z, np.zeros(0, np.int8), z, z, z)
    return Entries(*(np.concatenate([getattr(p, f) for p in parts]) for f in Entries.__slots__))


def polygon_edges(polys: list[PolygonShape]) -> tuple[I64, F64]:
    """(polygon number, [x1, y1, x2, y2]) of every edge of every ring of every part."""
    geoms = np.array([p.geom for p in polys], dtype=object)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    xy, vert_of = shapely.get_coordinates(rings, return_index=True)
    same = vert_of[1:] == vert_of[:-1]
    seg = np.hstack([xy[:-1], xy[1:]])[same]
    return part_of[ring_of[vert_of[:-1][same]]].astype(np.int64), seg


def polygon_entries(polys: list[PolygonShape], frame: Frame) -> tuple[Entries, RowEdges]:
    """FULL / POLY entries of polygons ``0..n-1`` (``ref`` = polygon number) and row lists."""
    if not polys:
        z = np.zeros(0, np.float64)
        return _concat([]), RowEdges(np.zeros(1, np.int64), z, z, z, z)
    s, x0, y0 = frame.scale, frame.x0, frame.y0
    owner, seg = polygon_edges(polys)
    x1, y1, x2, y2 = seg[:, 0], seg[:, 1], seg[:, 2], seg[:, 3]
    r0 = _cell(np.minimum(y1, y2) - EPS, y0, s)
    r1 = _cell(np.maximum(y1, y2) + EPS, y0, s)
    e, row = _expand(r0, r1)
    # Row lists: edges of each (polygon, row), contiguous, by decreasing max lon, so the edges
    # that can matter to a cell (those not wholly left of it) are a prefix of its row list.
    xmax = np.maximum(x1, x2)
    order = np.lexsort((-xmax[e], row, owner[e]))
    e, row = e[order], row[order]
    pr_key = owner[e] * (frame.height + 1) + row
    first = np.flatnonzero(np.r_[True, pr_key[1:] != pr_key[:-1]])
    rl_id = np.cumsum(np.r_[True, pr_key[1:] != pr_key[:-1]]) - 1
    rows = RowEdges(np.r_[first, len(e)].astype(np.int64), x1[e], y1[e], x2[e], y2[e])
    # Cells each edge touches in each row: clip the edge to the row strip (grown by EPS).
    ylo = y0 + row / s - EPS
    yhi = y0 + (row + 1) / s + EPS
    ex1, ey1, ex2, ey2 = x1[e], y1[e], x2[e], y2[e]
    dy = ey2 - ey1
    flat = dy == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ta, tb = (ylo - ey1) / dy, (yhi - ey1) / dy
    t0 = np.where(flat, 0.0, np.clip(np.minimum(ta, tb), 0.0, 1.0))
    t1 = np.where(flat, 1.0, np.clip(np.maximum(ta, tb), 0.0, 1.0))
    xa, xb = ex1 + t0 * (ex2 - ex1), ex1 + t1 * (ex2 - ex1)
    c0 = _cell(np.minimum(xa, xb) - EPS, x0, s)
    c1 = _cell(np.maximum(xa, xb) + EPS, x0, s)
    k, gx = _expand(c0, c1)
    pid, prow = owner[e[k]], row[k]
    order = np.lexsort((gx, prow, pid))
    pid, prow, pgx, k = pid[order], prow[order], gx[order], k[order]
    new = np.r_[True, (pid[1:] != pid[:-1]) | (prow[1:] != prow[:-1]) | (pgx[1:] != pgx[:-1])]
    pid, prow, pgx, prl = pid[new], prow[new], pgx[new], rl_id[k[new]]
    n_edges = _edges_reaching(xmax[e], rl_id, x0 + pgx / s - EPS, prl)
    start = rows.start[prl]
    part = Entries(pgx, prow, np.full(len(pid), POLY, np.int8), pid, start, start + n_edges)
    return _concat([part, _interior_runs(polys, frame, pid, prow, pgx)]), rows


def _edges_reaching(xmax: F64, rl: I64, qx: F64, qrl: I64) -> I64:
    """For each query (row list ``qrl[i]``, lon ``qx[i]``): edges of the list with xmax >= qx."""
    vals = np.concatenate([xmax, qx])
    rls = np.concatenate([rl, qrl])
    is_q = np.concatenate([np.zeros(len(xmax), np.int8), np.ones(len(qx), np.int8)])
    order = np.lexsort((is_q, -vals, rls))  # edges before queries on ties: ">=" counts them
    edges_before = np.cumsum(is_q[order] == 0)
    out = np.empty(len(qx), np.int64)
    q_at = np.flatnonzero(is_q[order] == 1)
    out[order[q_at] - len(xmax)] = edges_before[q_at]
    first_edge = np.searchsorted(rl, qrl)  # rl is sorted: edges of list r start here
    return out - first_edge


def _interior_runs(
    polys: list[PolygonShape], frame: Frame, pid: I64, prow: I64, pgx: I64
) -> Entries:
    """FULL entries: runs of untouched cells between two boundary cells of a row, if inside.

    A run of cells that no edge touches is connected and boundary-free, hence wholly inside
    or wholly outside; one exact GEOS test of its first cell's centre decides. Cells before
    the first or after the last boundary cell of a row are outside (a ray to them crosses
    no edge).
    """
    same = (pid[1:] == pid[:-1]) & (prow[1:] == prow[:-1])
    gap = same & (pgx[1:] - pgx[:-1] > 1)
    at = np.flatnonzero(gap)
    lo, hi = pgx[at] + 1, pgx[at + 1] - 1
    rp, rr = pid[at], prow[at]
    s = frame.scale
    geoms = np.array([p.geom for p in polys], dtype=object)[rp]
    cx = frame.x0 + (lo + 0.5) / s
    cy = frame.y0 + (rr + 0.5) / s
    inside = shapely.contains_xy(geoms, cx, cy) if len(at) else np.zeros(0, bool)
    lo, hi, rp, rr = lo[inside], hi[inside], rp[inside], rr[inside]
    run, gx = _expand(lo, hi)
    n = len(gx)
    zero = np.zeros(n, np.int64)
    return Entries(gx, rr[run], np.full(n, FULL, np.int8), rp[run], zero, zero)
