"""An immutable radix grid over a zone cover: the exact matcher behind ``ZoneIndex``.

Layout. Pings map to integer subcells ``fx = int((lon - x0) * 2**(shift + SUB))`` (same for
lat; the frame has an empty margin, so clipping maps far-away and NaN pings to empty cells), and
to the cell ``fx >> SUB``. A dense top grid of coarse cells points to nodes of ``2**B x 2**B``
children, ``levels`` deep; the last level holds *slot* ids (0 = no zone). A slot's entries are
laid out FULL, then boundary entries (CIRCLE, POLY) with their subcell masks (see
``geo.cover``), so a batch is: one descent of a few gathers per ping, CSR expansion of the
few non-empty slots, one mask test per boundary pair, and exact tests only for the pairs whose
subcell the boundary crosses.

Exact tests. Circles use :func:`geo.zones.circle_d2` with the same operation order. Polygons
use the GEOS ray-crossing rule (a point on an edge or vertex is covered) over the edges reaching
the ping's subcell row, with a filtered orientation predicate: where the float determinant
cannot be trusted (``|det| <= 1e-15 * (|l| + |r|)``, GEOS's own filter bound) the pair is
decided by GEOS ``intersects_xy`` itself, so results equal GEOS ``covers`` exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from geo.matcher.cover import CIRCLE, FULL, SUB, Entries, Frame, circle_entries
from geo.matcher.kernels import circle_pairs, expand_ranges, poly_pairs, poly_test_one
from geo.matcher.polycover import polygon_entries
from geo.zones import CircleShape, PolygonShape, ZoneShape

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
B = 5  # a node has 2**B x 2**B children
MAX_SHIFT = 13  # finest cells: 2**-13 degree (~13.6 m north-south), subcells 8 times finer
ENTRY_BUDGET = 8_000_000  # aim for at most this many (cell, zone) entries
TOP_BUDGET = 1 << 22  # cells in the dense top grid
CHUNK = 1 << 17  # pings matched per vectorised step
_SUBMASK = (1 << SUB) - 1


def _choose_shift(bb: npt.NDArray[np.float64]) -> int:
    w, h = bb[:, 2] - bb[:, 0], bb[:, 3] - bb[:, 1]
    for shift in range(MAX_SHIFT, 5, -1):
        s = 2.0**shift
        if float(np.sum((w * s + 2) * (h * s + 2))) <= ENTRY_BUDGET:
            return shift
    return 6


class Grid:
    """The exact matcher for a fixed set of zones numbered ``0..n-1`` (see module doc)."""

    def __init__(self, shapes: Sequence[ZoneShape], *, shift: int | None = None) -> None:
        self.shapes = list(shapes)
        circ = [i for i, z in enumerate(self.shapes) if isinstance(z, CircleShape)]
        poly = [i for i, z in enumerate(self.shapes) if isinstance(z, PolygonShape)]
        self.circle_z = np.array(circ, np.int32)
        self.poly_z = np.array(poly, np.int32)
        circles = [self.shapes[i] for i in circ]
        polys = [self.shapes[i] for i in poly]
        assert all(isinstance(c, CircleShape) for c in circles)
        self.cpar = np.array(
            [(c.lon, c.lat, c.kx, c.ky, c.r2) for c in circles if isinstance(c, CircleShape)],
            np.float64,
        ).reshape(-1, 5)
        self.geoms = np.array([p.geom for p in polys if isinstance(p, PolygonShape)], object)
        bb = np.array([z.bbox for z in self.shapes], np.float64).reshape(-1, 4)
        self.frame, self.levels, self.nbx, top_shift = self._frame(bb, shift)
        ce = circle_entries([c for c in circles if isinstance(c, CircleShape)], self.frame)
        pe, self.rows = polygon_entries(
            [p for p in polys if isinstance(p, PolygonShape)], self.frame
        )
        self._layout(ce, pe)
        self._tree(top_shift)
        self._scalar_views()

    def _frame(
        self, bb: npt.NDArray[np.float64], shift: int | None
    ) -> tuple[Frame, int, int, int]:
        if len(bb) == 0:
            bb = np.zeros((1, 4))
        shift = _choose_shift(bb) if shift is None else shift
        lo_x, lo_y = float(bb[:, 0].min()), float(bb[:, 1].min())
        hi_x, hi_y = float(bb[:, 2].max()), float(bb[:, 3].max())
        area = max((hi_x - lo_x) * (hi_y - lo_y), 1e-12)
        top = min(shift, math.floor(0.5 * math.log2(TOP_BUDGET / area)))
        levels = max(1, math.ceil((shift - top) / B))
        top = shift - B * levels
        t = 2.0**top
        ix0, iy0 = math.floor(lo_x * t) - 1, math.floor(lo_y * t) - 1
        nbx = math.floor(hi_x * t) - ix0 + 2
        nby = math.floor(hi_y * t) - iy0 + 2
        frame = Frame(ix0 / t, iy0 / t, shift, nbx << (B * levels), nby << (B * levels))
        return frame, levels, nbx, top

    def _layout(self, ce: Entries, pe: Entries) -> None:
        # ``zone``: the zone number of every entry; ``ref``: its circle / polygon number.
        zone = np.concatenate([self.circle_z[ce.ref], self.poly_z[pe.ref]])
        gx = np.concatenate([ce.gx, pe.gx])
        gy = np.concatenate([ce.gy, pe.gy])
        kind = np.concatenate([ce.kind, pe.kind])
        order = np.argsort((gy * self.frame.width + gx) * 4 + kind)
        gx, gy, kind = gx[order], gy[order], kind[order]
        self.kind = kind
        self.zone = zone[order].astype(np.int32)
        self.ref = np.concatenate([ce.ref, pe.ref])[order].astype(np.int32)
        self.inner = np.concatenate([ce.inner, pe.inner])[order]
        self.edge = np.concatenate([ce.edge, pe.edge])[order]
        new = np.r_[True, (gx[1:] != gx[:-1]) | (gy[1:] != gy[:-1])] if len(gx) else gx > 0
        starts = np.flatnonzero(new)
        slot = np.cumsum(new)  # slot of each entry, 1-based
        n = len(starts)
        if len(gx) >= 2**31:
            raise ValueError("too many cover entries for int32 offsets")
        self.off = np.zeros(n + 2, np.int32)
        self.off[1 : n + 1] = starts
        self.off[n + 1] = len(gx)
        # First boundary entry of each slot (FULL entries come first within a slot).
        self.coff = self.off.copy()
        self.coff[1 : n + 1] += np.bincount(slot[kind == FULL], minlength=n + 1)[1:]
        self.cell_gx, self.cell_gy = gx[starts], gy[starts]

    def _tree(self, top_shift: int) -> None:
        gx, gy, f = self.cell_gx, self.cell_gy, self.frame
        sh = B * self.levels
        nby = f.height >> sh
        self.top = np.zeros(self.nbx * nby, np.int32)
        key = (gy >> sh) * self.nbx + (gx >> sh)
        u, inv = np.unique(key, return_inverse=True)
        self.top[u] = np.arange(1, len(u) + 1)
        node = inv + 1
        n_nodes = len(u)
        self.tables: list[I32] = []
        mask = (1 << B) - 1
        for lev in range(1, self.levels + 1):
            s = B * (self.levels - lev)
            key = (gy >> s) * (f.width >> s) + (gx >> s)
            u, first, inv = np.unique(key, return_index=True, return_inverse=True)
            local = (((gy[first] >> s) & mask) << B) | ((gx[first] >> s) & mask)
            table = np.zeros((n_nodes + 1) << (2 * B), np.int32)
            value = np.arange(1, len(u) + 1)  # next-level node ids, or slots at the last level
            table[(node[first] << (2 * B)) | local] = value
            self.tables.append(table)
            node, n_nodes = inv + 1, len(u)
        self.top_shift = top_shift

    def _scalar_views(self) -> None:
        # memoryview item access returns plain ints / floats, far cheaper than numpy scalars.
        self._mv_top = self.top.data
        self._mv_tables = [t.data for t in self.tables]
        self._mv = tuple(a.data for a in (self.off, self.coff, self.zone, self.ref))
        self._mv_masks = (self.inner.data, self.edge.data, self.kind.data)
        self._cpar = self.cpar.tolist()
        r = self.rows
        self._rows = (r.start.data, r.edge.data, r.x1.data, r.y1.data, r.x2.data, r.y2.data)
        self._row_off = r.row_off.data

    def __len__(self) -> int:
        return len(self.shapes)

    @property
    def n_entries(self) -> int:
        return len(self.ref)

    def nbytes(self) -> int:
        """Bytes held by the grid's arrays (shapes and shapely geometries not counted)."""
        r = self.rows
        arrays: list[npt.NDArray[Any]] = [
            self.top, *self.tables, self.off, self.coff, self.zone, self.ref, self.kind,
            self.inner, self.edge, r.row_off, r.start, r.edge, r.x1, r.y1, r.x2, r.y2,
        ]
        return sum(a.nbytes for a in arrays)

    def slots(self, lon: F64, lat: F64) -> tuple[I32, I32, I32]:
        """(slot, subcell bit, subcell row) of every ping (slot 0 = no zone near).

        Never warns on NaN / inf / far pings: they land in the empty margin.
        """
        f = self.frame
        fs = f.fine_scale
        with np.errstate(invalid="ignore"):
            fx = ((lon - f.x0) * fs).astype(np.int32)
            fy = ((lat - f.y0) * fs).astype(np.int32)
        np.clip(fx, 0, (f.width << SUB) - 1, out=fx)
        np.clip(fy, 0, (f.height << SUB) - 1, out=fy)
        bit = fy & _SUBMASK
        bit <<= SUB
        bit |= fx & _SUBMASK
        gx = fx >> SUB
        gy = fy >> SUB
        sh = B * self.levels
        t = gy >> sh
        t *= self.nbx
        t += gx >> sh
        v: I32 = self.top[t]
        mask = (1 << B) - 1
        for lev, table in enumerate(self.tables, start=1):
            s = B * (self.levels - lev)
            loc = (gy >> s) & mask if s else gy & mask
            loc <<= B
            loc |= (gx >> s) & mask if s else gx & mask
            v <<= 2 * B
            v |= loc
            v = table[v]
        return v, bit, fy

    def match(self, lon: F64, lat: F64) -> tuple[I64, I32]:
        """All (ping index, zone number) pairs with the ping covered; order unspecified.

        Works in chunks of ``CHUNK`` pings so every temporary array stays in the CPU cache.
        """
        pings, zones = [], []
        for a in range(0, len(lon), CHUNK):
            p, z = self._match(lon[a : a + CHUNK], lat[a : a + CHUNK])
            p64 = p.astype(np.int64)
            p64 += a
            pings.append(p64)
            zones.append(z)
        if len(pings) == 1:
            return pings[0], zones[0]
        if not pings:
            return np.zeros(0, np.int64), np.zeros(0, np.int32)
        return np.concatenate(pings), np.concatenate(zones)

    def _match(self, lon: F64, lat: F64) -> tuple[I32, I32]:
        slot, bit, fy = self.slots(lon, lat)
        nz = np.flatnonzero(slot).astype(np.int32)
        s = slot[nz]
        o0, o1, o2 = self.off[s], self.coff[s], self.off[s + 1]
        fp, fe = expand_ranges(nz, o0, o1)
        bp, be = expand_ranges(nz, o1, o2)
        b = bit[bp].astype(np.uint64)
        sel = np.uint64(1) << b
        inside = (self.inner[be] & sel) != 0
        test = np.flatnonzero((self.edge[be] & sel) != 0)
        tp, te = bp[test], be[test]
        is_c = self.kind[te] == CIRCLE
        cp, ce = tp[is_c], te[is_c]
        ok_c = circle_pairs(lon[cp], lat[cp], self.cpar, self.ref[ce])
        is_p = ~is_c
        pp, pe = tp[is_p], te[is_p]
        pi = self.ref[pe]
        ok_p = poly_pairs(lon[pp], lat[pp], self.rows.row_off[pi] + fy[pp], self.rows,
                          self.geoms, pi)
        pings = np.concatenate([fp, bp[inside], cp[ok_c], pp[ok_p]])
        zones = np.concatenate([self.zone[fe], self.zone[be[inside]], self.zone[ce[ok_c]],
                                self.zone[pe[ok_p]]])
        return pings, zones

    def match_one(self, lon: float, lat: float) -> list[int]:
        """Zone numbers covering one ping: the scalar twin of :meth:`match` (no numpy calls)."""
        f = self.frame
        fs = f.fine_scale
        fx, fy = (lon - f.x0) * fs, (lat - f.y0) * fs
        if not (0.0 <= fx < (f.width << SUB) and 0.0 <= fy < (f.height << SUB)):
            return []  # also NaN: outside the frame means outside every zone
        ix, iy = int(fx), int(fy)
        gx, gy = ix >> SUB, iy >> SUB
        sh = B * self.levels
        v = self._mv_top[(gy >> sh) * self.nbx + (gx >> sh)]
        mask = (1 << B) - 1
        for lev, table in enumerate(self._mv_tables, start=1):
            s = B * (self.levels - lev)
            v = table[(v << 2 * B) | (((gy >> s) & mask) << B) | ((gx >> s) & mask)]
        if not v:
            return []
        off, coff, zone, ref = self._mv
        o1, o2 = coff[v], off[v + 1]
        out = [zone[i] for i in range(off[v], o1)]
        if o1 == o2:
            return out
        sel = 1 << (((iy & _SUBMASK) << SUB) | (ix & _SUBMASK))
        inner, edge, kind = self._mv_masks
        for i in range(o1, o2):
            if inner[i] & sel:
                out.append(zone[i])
            elif edge[i] & sel:
                if kind[i] == CIRCLE:
                    cx, cy, kx, ky, r2 = self._cpar[ref[i]]
                    dx = (lon - cx) * kx
                    dy = (lat - cy) * ky
                    if dx * dx + dy * dy <= r2:
                        out.append(zone[i])
                    continue
                pi = ref[i]
                inside = poly_test_one(lon, lat, self._row_off[pi] + iy, self._rows)
                if inside is None:
                    inside = bool(shapely.intersects_xy(self.geoms[pi], lon, lat))
                if inside:
                    out.append(zone[i])
        return out
