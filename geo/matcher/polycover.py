"""Cover of polygons by the two-level grid of ``geo.cover``, built from the subcells up.

For each polygon, a dense byte grid over its bounding box holds one byte per (cell, subcell
row), bit ``k`` for the row's subcell ``k``:

- *touched*: the subcells each edge reaches (the edge clipped to the subcell row's strip grown by
  ``EPS``, its lon extent grown by ``EPS``);
- *crossings*: the subcell holding each crossing of an edge with a subcell row's centre line
  (GEOS's half-open rule: exactly one endpoint strictly above). The centre line is a dyadic
  number, so the rule is evaluated exactly, and a crossing lies in a touched subcell.

An untouched subcell is boundary-free, so wholly inside or wholly outside, decided by the parity
of the crossings to its left on its centre line (Jordan). No sort of subcells, no GEOS call.
A cell with a touched subcell becomes a POLY entry (``edge`` = touched, ``inner`` = untouched
and inside), an untouched cell inside becomes a FULL entry. The exact point test then uses the
polygon's edges reaching the ping's subcell row (:class:`geo.cover.RowEdges`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import shapely

from geo.matcher.cover import (
    ALL,
    EPS,
    FULL,
    POLY,
    SUB,
    Entries,
    Frame,
    RowEdges,
    cell_of,
    empty_entries,
    expand,
)
from geo.zones import PolygonShape

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
_S = 1 << SUB  # subcells per cell side


def _prefix_parity_table() -> U8:
    """``T[b]`` bit ``k`` = parity of the set bits of ``b`` below bit ``k``."""
    b = np.arange(256)
    out = np.zeros(256, np.int64)
    acc = np.zeros(256, np.int64)
    for k in range(8):
        out |= acc << k
        acc ^= (b >> k) & 1
    return out.astype(np.uint8)


_PREFIX_PARITY = _prefix_parity_table()
_PARITY = np.array([bin(v).count("1") & 1 for v in range(256)], np.uint8)
_BIT = np.array([1 << k for k in range(8)], np.uint8)


def polygon_edges(polys: list[PolygonShape]) -> tuple[I64, F64]:
    """(polygon number, [x1, y1, x2, y2]) of every edge of every ring of every part."""
    geoms = np.array([p.geom for p in polys], dtype=object)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    xy, vert_of = shapely.get_coordinates(rings, return_index=True)
    same = vert_of[1:] == vert_of[:-1]
    seg = np.hstack([xy[:-1], xy[1:]])[same]
    return part_of[ring_of[vert_of[:-1][same]]].astype(np.int64), seg


class _Boxes:
    """Each polygon's bounding box in cells (one cell of margin) and its dense cell numbering."""

    def __init__(self, owner: I64, seg: F64, n: int, frame: Frame) -> None:
        s = frame.scale
        first = np.searchsorted(owner, np.arange(n))
        xs, ys = seg[:, 0::2], seg[:, 1::2]
        self.x0 = cell_of(np.minimum.reduceat(xs.min(1), first) - EPS, frame.x0, s) - 1
        self.y0 = cell_of(np.minimum.reduceat(ys.min(1), first) - EPS, frame.y0, s) - 1
        x1 = cell_of(np.maximum.reduceat(xs.max(1), first) + EPS, frame.x0, s) + 1
        y1 = cell_of(np.maximum.reduceat(ys.max(1), first) + EPS, frame.y0, s) + 1
        self.w, self.h = x1 - self.x0 + 1, y1 - self.y0 + 1
        area = self.w * self.h
        self.base = np.cumsum(area) - area  # first dense cell of each polygon
        self.n_cells = int(area.sum())


def polygon_entries(polys: list[PolygonShape], frame: Frame) -> tuple[Entries, RowEdges]:
    """FULL / POLY entries of polygons ``0..n-1`` (``ref`` = polygon number) and row lists."""
    if not polys:
        z = np.zeros(0, np.float64)
        zi = np.zeros(0, np.int64)
        empty_rows = RowEdges(zi, np.zeros(1, np.int64), np.zeros(0, np.int32), z, z, z, z)
        return empty_entries(), empty_rows
    owner, seg = polygon_edges(polys)
    box = _Boxes(owner, seg, len(polys), frame)
    x1, y1, x2, y2 = (np.ascontiguousarray(seg[:, j]) for j in range(4))
    fs = frame.fine_scale
    # Every (edge, subcell row) whose strip (grown by EPS) the edge reaches.
    e, row = expand(cell_of(np.minimum(y1, y2) - EPS, frame.y0, fs),
                    cell_of(np.maximum(y1, y2) + EPS, frame.y0, fs))
    p = owner[e]
    rows = _row_lists(box, p, row, e, (x1, y1, x2, y2))
    # Dense byte of (polygon, subcell row, cell x) = rb + x * 8, rb per (edge, subcell row).
    origin = box.base - box.y0 * box.w - box.x0
    rb = (origin[p] + (row >> SUB) * box.w[p]) * _S + (row & (_S - 1))
    del p, origin
    ex1, ey1, ex2, ey2 = x1[e], y1[e], x2[e], y2[e]
    del e
    touch = _touched(frame, box.n_cells, rb, row, (ex1, ey1, ex2, ey2))
    cross = _crossings(frame, box.n_cells, rb, row, (ex1, ey1, ex2, ey2))
    del rb, row, ex1, ey1, ex2, ey2
    return _classify(box, touch, cross), rows


def _row_lists(
    box: _Boxes, p: I64, row: I64, e: I64, xy: tuple[F64, F64, F64, F64]
) -> RowEdges:
    row_off = np.cumsum(box.h * _S) - box.h * _S - box.y0 * _S  # list of (p, subcell row r)
    lid = row_off[p] + row
    order = np.argsort(lid, kind="stable")
    n_lists = int((box.h * _S).sum())
    start = np.searchsorted(lid[order], np.arange(n_lists + 1)).astype(np.int64)
    return RowEdges(row_off, start, e[order].astype(np.int32), *xy)


def _touched(
    frame: Frame, n_cells: int, rb: I64, row: I64, seg: tuple[F64, F64, F64, F64]
) -> U8:
    """Dense bytes of the subcells each edge reaches in each subcell row (all grown by EPS)."""
    x1, y1, x2, y2 = seg
    fs = frame.fine_scale
    ylo = frame.y0 + row / fs - EPS
    yhi = frame.y0 + (row + 1) / fs + EPS
    dy = y2 - y1
    flat = dy == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ta, tb = (ylo - y1) / dy, (yhi - y1) / dy
    del ylo, yhi
    t0 = np.where(flat, 0.0, np.minimum(np.maximum(np.minimum(ta, tb), 0.0), 1.0))
    t1 = np.where(flat, 1.0, np.minimum(np.maximum(np.maximum(ta, tb), 0.0), 1.0))
    del ta, tb, flat
    dx = x2 - x1
    xa, xb = x1 + t0 * dx, x1 + t1 * dx
    del t0, t1, dx
    c0 = cell_of(np.minimum(xa, xb) - EPS, frame.x0, fs)
    c1 = cell_of(np.maximum(xa, xb) + EPS, frame.x0, fs)
    del xa, xb
    touch = np.zeros(n_cells * _S, np.uint8)
    k, fx = expand(c0, c1)
    np.bitwise_or.at(touch, rb[k] + (fx >> SUB) * _S, _BIT[fx & (_S - 1)])
    return touch


def _crossings(
    frame: Frame, n_cells: int, rb: I64, row: I64, seg: tuple[F64, F64, F64, F64]
) -> U8:
    """Dense bytes of the parity of the edge crossings of each subcell row's centre line."""
    x1, y1, x2, y2 = seg
    fs = frame.fine_scale
    yc = frame.y0 + (row + 0.5) / fs  # exact: a dyadic number well within float64
    i = np.flatnonzero((y1 > yc) != (y2 > yc))
    xc = x1[i] + (yc[i] - y1[i]) * (x2[i] - x1[i]) / (y2[i] - y1[i])
    cx = cell_of(xc, frame.x0, fs)
    cross = np.zeros(n_cells * _S, np.uint8)
    np.bitwise_xor.at(cross, rb[i] + (cx >> SUB) * _S, _BIT[cx & (_S - 1)])
    return cross


def _classify(box: _Boxes, touch: U8, cross: U8) -> Entries:
    """Entries from the dense bytes: inner = untouched subcells with an odd crossing count to
    their left; the count runs along each row of cells (uint8 sums wrap modulo 256, which keeps
    the parity)."""
    n = box.n_cells
    par = _PARITY[cross].reshape(n, _S)
    run = np.cumsum(par, axis=0, dtype=np.uint8)
    run -= par  # crossings in earlier cells of the dense order
    row_w = np.repeat(box.w, box.h)
    row_first = np.cumsum(row_w) - row_w
    run -= np.repeat(run[row_first], row_w, axis=0)  # ... of the same row of cells only
    run &= 1
    run *= np.uint8(0xFF)
    del par
    inner_b = _PREFIX_PARITY[cross]
    inner_b ^= run.ravel()
    inner_b &= ~touch
    del run
    edge64 = touch.view("<u8").astype(np.uint64)
    inner64 = inner_b.view("<u8").astype(np.uint64)
    cell = np.flatnonzero((edge64 != 0) | (inner64 != 0))
    poly = np.searchsorted(box.base, cell, side="right") - 1
    local = cell - box.base[poly]
    gy, gx = box.y0[poly] + local // box.w[poly], box.x0[poly] + local % box.w[poly]
    inner, edge = inner64[cell], edge64[cell]
    kind = np.where(inner == ALL, FULL, POLY).astype(np.int8)
    return Entries(gx, gy, kind, poly, inner, edge)
