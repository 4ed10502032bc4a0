"""An immutable radix grid over a zone cover: the exact matcher behind ``ZoneIndex``.

Layout. Pings map to integer cells ``gx = int((lon - x0) * 2**shift)`` (same for lat; the
frame has an empty margin, so clipping maps far-away and NaN pings to empty cells). A dense top
grid of coarse cells points to nodes of ``2**B x 2**B`` children, ``levels`` deep; the last level
holds *slot* ids (0 = no zone). A slot's entries are laid out FULL, CIRCLE, POLY (see
``geo.cover``), so a batch is: one descent of a few gathers per ping, then CSR expansion of the
few non-empty slots, then exact tests only for the boundary pairs.

Exact tests. Circles use :func:`geo.zones.circle_d2` with the same operation order. Polygons
use the GEOS ray-crossing rule (a point on an edge or vertex is covered) over the cell's row
list, with a filtered orientation predicate: where the float determinant cannot be trusted
(``|det| <= 1e-15 * (|l| + |r|)``, GEOS's own filter bound) the pair is decided by GEOS
``intersects_xy`` itself, so results equal GEOS ``covers`` exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import shapely

from geo.cover import CIRCLE, FULL, Entries, Frame, circle_entries, polygon_entries
from geo.kernels import circle_pairs, expand_ranges, poly_pairs, poly_test_one
from geo.zones import CircleShape, PolygonShape, ZoneShape

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
B = 5  # a node has 2**B x 2**B children
MAX_SHIFT = 13  # finest cells: 2**-13 degree (~13.6 m north-south)
ENTRY_BUDGET = 8_000_000  # aim for at most this many (cell, zone) entries
TOP_BUDGET = 1 << 22  # cells in the dense top grid
CHUNK = 1 << 17  # pings matched per vectorised step


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
        # FULL entries carry the zone number; partial ones their circle / polygon number.
        ce_ref = np.where(ce.kind == FULL, self.circle_z[ce.ref] if len(ce.ref) else 0, ce.ref)
        pe_ref = np.where(pe.kind == FULL, self.poly_z[pe.ref] if len(pe.ref) else 0, pe.ref)
        gx = np.concatenate([ce.gx, pe.gx])
        gy = np.concatenate([ce.gy, pe.gy])
        kind = np.concatenate([ce.kind, pe.kind])
        order = np.argsort((gy * self.frame.width + gx) * 4 + kind)
        gx, gy, kind = gx[order], gy[order], kind[order]
        self.ref = np.concatenate([ce_ref, pe_ref])[order].astype(np.int32)
        self.aux = np.concatenate([ce.aux, pe.aux])[order].astype(np.int32)
        self.aux2 = np.concatenate([ce.aux2, pe.aux2])[order].astype(np.int32)
        new = np.r_[True, (gx[1:] != gx[:-1]) | (gy[1:] != gy[:-1])] if len(gx) else gx > 0
        starts = np.flatnonzero(new)
        slot = np.cumsum(new)  # slot of each entry, 1-based
        n = len(starts)
        self.off = np.zeros(n + 2, np.int64)
        self.off[1 : n + 1] = starts
        self.off[n + 1] = len(gx)
        self.coff, self.poff = self.off.copy(), self.off.copy()
        # First CIRCLE / POLY entry of each slot (kinds are sorted within a slot).
        n_full = np.bincount(slot[kind == FULL], minlength=n + 1)[1:]
        n_circ = np.bincount(slot[kind == CIRCLE], minlength=n + 1)[1:]
        self.coff[1 : n + 1] += n_full
        self.poff[1 : n + 1] += n_full + n_circ
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
        self._mv = tuple(a.data for a in (self.off, self.coff, self.poff, self.ref))
        self._mv_aux = self.aux.data
        self._mv_aux2 = self.aux2.data
        self._cpar = self.cpar.tolist()
        self._cz = self.circle_z.tolist()
        self._pz = self.poly_z.tolist()
        r = self.rows
        self._rows = (r.x1.data, r.y1.data, r.x2.data, r.y2.data)

    def __len__(self) -> int:
        return len(self.shapes)

    @property
    def n_entries(self) -> int:
        return len(self.ref)

    def nbytes(self) -> int:
        """Bytes held by the grid's arrays (shapes and shapely geometries not counted)."""
        arrays: list[npt.NDArray[Any]] = [
            self.top, *self.tables, self.off, self.coff, self.poff, self.ref, self.aux,
            self.aux2, self.rows.start, self.rows.x1, self.rows.y1, self.rows.x2, self.rows.y2,
        ]
        return sum(a.nbytes for a in arrays)

    def slots(self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]) -> I32:
        """Slot of every ping (0 = no zone near). Never warns on NaN / inf / far pings."""
        f = self.frame
        with np.errstate(invalid="ignore"):
            gx = ((lon - f.x0) * f.scale).astype(np.int32)
            gy = ((lat - f.y0) * f.scale).astype(np.int32)
        np.clip(gx, 0, f.width - 1, out=gx)
        np.clip(gy, 0, f.height - 1, out=gy)
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
        return v

    def match(
        self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]
    ) -> tuple[I64, I32]:
        """All (ping index, zone number) pairs with the ping covered; order unspecified.

        Works in chunks of ``CHUNK`` pings so every temporary array stays in the CPU cache.
        """
        if len(lon) <= CHUNK:
            return self._match(lon, lat)
        parts = [self._match(lon[a : a + CHUNK], lat[a : a + CHUNK]) for a in
                 range(0, len(lon), CHUNK)]
        pings = np.concatenate([p + a for (p, _), a in zip(parts, range(0, len(lon), CHUNK),
                                                          strict=True)])
        return pings, np.concatenate([z for _, z in parts])

    def _match(
        self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]
    ) -> tuple[I64, I32]:
        slot = self.slots(lon, lat)
        nz = np.flatnonzero(slot)
        s = slot[nz]
        o0, o1, o2, o3 = self.off[s], self.coff[s], self.poff[s], self.off[s + 1]
        fp, fe = expand_ranges(nz, o0, o1)
        cp, ce = expand_ranges(nz, o1, o2)
        pp, pe = expand_ranges(nz, o2, o3)
        ci = self.ref[ce]
        ok_c = circle_pairs(lon[cp], lat[cp], self.cpar, ci)
        pi = self.ref[pe]
        ok_p = poly_pairs(lon[pp], lat[pp], self.aux[pe], self.aux2[pe], self.rows, self.geoms, pi)
        pings = np.concatenate([fp, cp[ok_c], pp[ok_p]])
        zones = np.concatenate(
            [self.ref[fe], self.circle_z[ci[ok_c]], self.poly_z[pi[ok_p]]]
        ).astype(np.int32)
        return pings, zones

    def match_one(self, lon: float, lat: float) -> list[int]:
        """Zone numbers covering one ping: the scalar twin of :meth:`match` (no numpy calls)."""
        f = self.frame
        fx, fy = (lon - f.x0) * f.scale, (lat - f.y0) * f.scale
        if not (0.0 <= fx < f.width and 0.0 <= fy < f.height):
            return []  # also NaN: outside the frame means outside every zone
        gx, gy = int(fx), int(fy)
        sh = B * self.levels
        v = self._mv_top[(gy >> sh) * self.nbx + (gx >> sh)]
        mask = (1 << B) - 1
        for lev, table in enumerate(self._mv_tables, start=1):
            s = B * (self.levels - lev)
            v = table[(v << 2 * B) | (((gy >> s) & mask) << B) | ((gx >> s) & mask)]
        if not v:
            return []
        off, coff, poff, ref = self._mv
        o1, o2 = coff[v], poff[v]
        out = [ref[i] for i in range(off[v], o1)]
        for i in range(o1, o2):
            ci = ref[i]
            cx, cy, kx, ky, r2 = self._cpar[ci]
            dx = (lon - cx) * kx
            dy = (lat - cy) * ky
            if dx * dx + dy * dy <= r2:
                out.append(self._cz[ci])
        for i in range(o2, off[v + 1]):
            pi = ref[i]
            inside = poly_test_one(lon, lat, self._mv_aux[i], self._mv_aux2[i], self._rows)
            if inside is None:
                inside = bool(shapely.intersects_xy(self.geoms[pi], lon, lat))
            if inside:
                out.append(self._pz[pi])
        return out
