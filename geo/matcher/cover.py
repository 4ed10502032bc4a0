"""Cover of zones by a two-level grid of cells: which zones touch which cell, and how.

The cell grid is aligned on powers of two of a degree: cell ``(gx, gy)`` is the lon/lat
rectangle ``[X0 + gx/S, X0 + (gx+1)/S) x [Y0 + gy/S, Y0 + (gy+1)/S)`` with ``S = 2**shift``.
Each cell is split into ``8 x 8`` *subcells* (``2**SUB`` per side, the grid at ``8 S``); subcell
``(j, k)`` (row ``j``, column ``k``) is bit ``8 j + k`` of a 64-bit mask. For each zone we
emit one entry per cell it touches:

- ``FULL``: the cell is wholly covered by the zone: every ping mapped to it is inside;
- ``CIRCLE`` / ``POLY``: the boundary may cross the cell. The entry carries two masks: ``inner``
  (subcells wholly covered: inside without a test) and ``edge`` (subcells the boundary may
  cross: the exact test decides). A ping in a subcell in neither mask is outside.

So the finer level costs 16 bytes per boundary entry, not a finer grid: interiors stay coarse.
Every "wholly covered" / "not touched" decision is made on the cell or subcell grown by ``EPS``
(1e-9 degrees, ~0.1 mm), which absorbs the rounding of mapping a ping to its cell, so the
classification is exact for every ping, not a guess.

Circles are here; polygons in ``geo.polycover``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from geo.zones import CircleShape

EPS = 1e-9  # degrees added around every cell / edge before classifying it
SUB = 3  # a cell has 2**SUB x 2**SUB subcells: one bit each in a uint64 mask
FULL, CIRCLE, POLY = 0, 1, 2
ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
U64 = npt.NDArray[np.uint64]


@dataclass(frozen=True, slots=True)
class Frame:
    """The grid origin ``(x0, y0)`` in degrees, ``shift`` (cells per degree = 2**shift) and size
    in cells; subcells are ``2**SUB`` times finer."""

    x0: float
    y0: float
    shift: int
    width: int
    height: int

    @property
    def scale(self) -> float:
        return float(2**self.shift)

    @property
    def fine_scale(self) -> float:
        return float(2 ** (self.shift + SUB))


@dataclass(frozen=True, slots=True)
class Entries:
    """Cover entries, one per (cell, zone): cell, kind, zone ref, subcell masks (see module)."""

    gx: I64
    gy: I64
    kind: npt.NDArray[np.int8]
    ref: I64
    inner: U64
    edge: U64


@dataclass(frozen=True, slots=True)
class RowEdges:
    """Polygon edges by (polygon, subcell row): the list of polygon ``p``'s subcell row ``r`` is
    ``l = row_off[p] + r``, its edges ``edge[start[l]:start[l+1]]`` (indices into x1..y2)."""

    row_off: I64
    start: I64
    edge: npt.NDArray[np.int32]
    x1: F64
    y1: F64
    x2: F64
    y2: F64


def expand(lo: I64, hi: I64) -> tuple[I64, I64]:
    """For inclusive integer ranges [lo, hi]: (owner index, value) of every member."""
    n = np.maximum(hi - lo + 1, 0)
    owner = np.repeat(np.arange(len(lo)), n)
    first = np.cumsum(n) - n
    return owner, np.arange(int(n.sum())) - np.repeat(first - lo, n)


def cell_of(v: F64 | float, origin: float, scale: float) -> Any:
    return np.floor((np.asarray(v) - origin) * scale).astype(np.int64)


def empty_entries() -> Entries:
    z = np.zeros(0, np.int64)
    u = np.zeros(0, np.uint64)
    return Entries(z, z, np.zeros(0, np.int8), z, u, u)


def concat(parts: list[Entries]) -> Entries:
    if not parts:
        return empty_entries()
    return Entries(*(np.concatenate([getattr(p, f) for p in parts]) for f in Entries.__slots__))


_BIG = 1 << 30  # span bound of an empty row: never the min / max of a cell row


def _circle_spans(
    par: F64, row: I64, frame: Frame
) -> tuple[I32, I32, I32, I32]:
    """Subcells touched ``[t0, t1]`` and wholly inside ``[f0, f1]`` of subcell rows ``row``.

    ``par[i]`` (lon, lat, kx, ky, r²) is the circle of row ``row[i]`` (any broadcastable
    shapes). A row touches the circle over the half-chord at the row's nearest lat and lies
    wholly inside over the half-chord at its farthest lat (subcells grown by ``EPS``, radius
    squared shrunk / grown by one part in 10^9, margins far above float rounding, so that
    rounding never misclassifies). An empty span is ``[_BIG, -_BIG]``.
    """
    cx, cy, kx, ky, r2 = (par[..., j : j + 1] for j in range(5))
    s = frame.fine_scale
    a = row / s
    a += frame.y0 - cy
    yl = (a - EPS) * ky
    a += 1 / s + EPS
    a *= ky  # yh
    near = np.maximum(np.maximum(yl, -a), 0.0)
    far = np.maximum(-yl, a)
    del a, yl
    near *= near
    touch2 = r2 * (1 + 1e-9) - near
    far *= far
    full2 = r2 * (1 - 1e-9) - far
    del near, far
    hit, fit = touch2 >= 0, full2 >= 0
    u = cx - frame.x0
    tx = np.sqrt(np.maximum(touch2, 0.0, out=touch2), out=touch2)
    tx /= kx
    tx += EPS
    fx = np.sqrt(np.maximum(full2, 0.0, out=full2), out=full2)
    fx /= kx
    fx -= EPS
    big = np.int32(_BIG)
    t0 = np.where(hit, np.floor((u - tx) * s), big).astype(np.int32)
    t1 = np.where(hit, np.floor((u + tx) * s), -big).astype(np.int32)
    f0 = np.where(fit, np.ceil((u - fx) * s), big).astype(np.int32)
    f1 = np.where(fit, np.floor((u + fx) * s) - 1, -big).astype(np.int32)
    return t0, t1, f0, f1


def circle_entries(circles: list[CircleShape], frame: Frame) -> Entries:
    """FULL / CIRCLE entries of circles ``0..n-1`` (``ref`` = circle number), with masks.

    Spans are computed once per subcell row; a cell row's spans follow from its 8 subcell rows
    (a cell touches the circle iff one of its subcells does, is inside iff all of them are).
    """
    if not circles:
        return empty_entries()
    sub = 1 << SUB
    par = np.array([(c.lon, c.lat, c.kx, c.ky, c.r2) for c in circles], dtype=np.float64)
    dlat = np.sqrt(par[:, 4]) / par[:, 3] * (1 + 1e-9)
    ci, row = expand(cell_of(par[:, 1] - dlat - EPS, frame.y0, frame.scale),
                     cell_of(par[:, 1] + dlat + EPS, frame.y0, frame.scale))
    spans = _circle_spans(par[ci], row[:, None] * sub + np.arange(sub), frame)
    t0, t1, f0, f1 = spans
    ct0 = t0.min(axis=1).astype(np.int64) >> SUB
    ct1 = t1.max(axis=1).astype(np.int64) >> SUB
    cf0 = -((-f0.max(axis=1).astype(np.int64)) >> SUB)  # ceil: first cell wholly inside
    cf1 = ((f1.min(axis=1).astype(np.int64) + 1) >> SUB) - 1  # last cell wholly inside
    cf1 = np.maximum(cf1, cf0 - 1)
    cf0, cf1 = np.clip(cf0, ct0, ct1 + 1), np.clip(cf1, ct0 - 1, ct1)
    flat = (t0.ravel(), t1.ravel(), f0.ravel(), f1.ravel())
    parts = []
    for lo, hi, kind in ((ct0, cf0 - 1, CIRCLE), (cf0, cf1, FULL), (cf1 + 1, ct1, CIRCLE)):
        k = np.flatnonzero(hi >= lo)
        own, gx = expand(lo[k], hi[k])
        q = k[own]  # cell row of each entry
        n = len(gx)
        if kind == FULL:
            ones = np.full(n, ALL, np.uint64)
            parts.append(Entries(gx, row[q], np.zeros(n, np.int8), ci[q], ones, ones * 0))
            continue
        inner, edge = _circle_masks(q, gx, flat)
        keep = (inner != 0) | (edge != 0)
        kind_arr = np.where(inner == ALL, FULL, CIRCLE).astype(np.int8)[keep]
        parts.append(Entries(gx[keep], row[q][keep], kind_arr, ci[q][keep], inner[keep],
                             edge[keep]))
    return concat(parts)


_RUN = np.array([((1 << max(b, a)) - (1 << a)) for a in range(9) for b in range(9)], np.uint8)


def _run_index(lo: I32, hi: I32) -> I32:
    """Index into ``_RUN`` of the byte with bits ``[lo, hi]`` (clipped to 0..7) set."""
    np.maximum(lo, 0, out=lo)
    np.minimum(lo, 8, out=lo)
    hi += 1
    np.maximum(hi, 0, out=hi)
    np.minimum(hi, 8, out=hi)
    lo *= 9
    lo += hi
    return lo


def _circle_masks(q: I64, gx: I64, spans: tuple[I32, I32, I32, I32]) -> tuple[U64, U64]:
    """(inner, edge) subcell masks of cells ``gx`` of cell rows ``q`` from the subcell spans
    (subcell row ``8 q + j`` is at index ``8 q + j`` of each span array)."""
    t0, t1, f0, f1 = spans
    sub = 1 << SUB
    n = len(q)
    inner = np.zeros((n, sub), np.uint8)
    edge = np.zeros((n, sub), np.uint8)
    col = (gx * sub).astype(np.int32)
    base = q * sub
    for j in range(sub):
        i = base + j
        tb = _RUN[_run_index(t0[i] - col, t1[i] - col)]
        fb = _RUN[_run_index(f0[i] - col, f1[i] - col)]
        inner[:, j] = fb
        edge[:, j] = tb & ~fb
    return inner.view("<u8").ravel().astype(np.uint64), edge.view("<u8").ravel().astype(np.uint64)
