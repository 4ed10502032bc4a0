"""``ZoneIndex``: an immutable, exact snapshot of the zones for matching pings.

Axis order is ``(lon, lat)`` in degrees; distances and accuracies are metres. "Inside" means
*covered*: a ping on a zone's boundary is inside (circles: see ``geo.zones.circle_d2``). Results
equal a brute-force check over all zones exactly (``geo.brute``), never a bounding-box guess.

Changes. :meth:`ZoneIndex.with_changes` returns a new snapshot made of the same base grid (shared,
never copied), a small *overlay* grid rebuilt from the changed zones only, and a mask hiding the
base's stale copies; once the overlay passes ``MAX_OVERLAY`` zones the snapshot is compacted
(fully rebuilt). The caller swaps one reference; readers of the old snapshot are unaffected.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import numpy.typing as npt
import shapely

from geo.matcher.grid import Grid
from geo.matcher.kernels import expand_ranges
from geo.matcher.polycover import polygon_edges
from geo.zones import M_PER_DEG, CircleShape, PolygonShape, ZoneShape, circle_d2

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
MAX_OVERLAY = 256  # zones in the overlay before with_changes compacts (rebuilds) the index


class Where(enum.Enum):
    """How a ping with an accuracy circle relates to a zone (see :meth:`ZoneIndex.classify`)."""

    INSIDE = "inside"  # the whole accuracy circle is inside the zone
    EDGE = "edge"  # the accuracy circle crosses the zone's boundary


class _Layer:
    """A grid plus what maps its zone numbers back to keys and serves ``classify``."""

    def __init__(self, items: Sequence[tuple[int, ZoneShape]]) -> None:
        self.items = list(items)
        self.keys = np.array([k for k, _ in items], np.int64)
        self.keys_list = self.keys.tolist()
        self.pos = {k: i for i, k in enumerate(self.keys_list)}
        if len(self.pos) != len(self.items):
            raise ValueError("duplicate zone keys")
        shapes = [s for _, s in items]
        self.grid = Grid(shapes)
        bb = np.array([s.bbox for s in shapes], np.float64).reshape(-1, 4)
        self.tree = shapely.STRtree(shapely.box(bb[:, 0], bb[:, 1], bb[:, 2], bb[:, 3]))
        polys = [s for s in shapes if isinstance(s, PolygonShape)]
        owner, self.seg = polygon_edges(polys) if polys else (np.zeros(0, np.int64),
                                                               np.zeros((0, 4)))
        self.seg_start = np.searchsorted(owner, np.arange(len(polys) + 1))
        self.poly_no = {z: i for i, z in enumerate(self.grid.poly_z.tolist())}
        # Per zone number, for the vectorised distances: whether it is a circle, its
        # polygon number (-1 for a circle) and (lon, lat, kx, ky, radius) (lon, lat unused
        # for a polygon).
        n = len(shapes)
        self.is_circle = np.zeros(n, bool)
        self.is_circle[self.grid.circle_z] = True
        self.zpoly = np.full(n, -1, np.int64)
        self.zpoly[self.grid.poly_z] = np.arange(len(self.grid.poly_z))
        self.zpar = np.array([(s.lon, s.lat, s.kx, s.ky, s.radius_m) if isinstance(s, CircleShape)
                              else (0.0, 0.0, s.kx, s.ky, 0.0) for s in shapes],
                             np.float64).reshape(-1, 5)

    def boundary_distance_m(self, z: int, lon: float, lat: float) -> float:
        """Metres from the ping to zone ``z``'s boundary on the zone's local metric."""
        shape = self.grid.shapes[z]
        if isinstance(shape, CircleShape):
            return abs(math.sqrt(circle_d2(lon, lat, shape)) - shape.radius_m)
        i = self.poly_no[z]
        seg = self.seg[self.seg_start[i] : self.seg_start[i + 1]]
        ax, ay = (seg[:, 0] - lon) * shape.kx, (seg[:, 1] - lat) * shape.ky
        bx, by = (seg[:, 2] - lon) * shape.kx, (seg[:, 3] - lat) * shape.ky
        dx, dy = bx - ax, by - ay
        den = dx * dx + dy * dy
        t = np.clip(-(ax * dx + ay * dy) / np.where(den > 0, den, 1.0), 0.0, 1.0)
        px, py = ax + t * dx, ay + t * dy
        return float(np.sqrt(np.min(px * px + py * py)))

    def near(self, z: npt.NDArray[np.intp], lon: F64, lat: F64
             ) -> tuple[F64, npt.NDArray[np.bool_]]:
        """(:meth:`boundary_distance_m`, covered) of pairs (zone ``z[i]``, ping ``lon[i]``,
        ``lat[i]``).

        Distances use the scalar path's float64 operations in the same order (and a minimum,
        which does not round), so each equals :meth:`boundary_distance_m` bit for bit.
        "Covered" is the index's own definition, which the grid reproduces exactly (see
        ``geo.grid``): ``circle_d2 <= r2`` (the very sum the distance starts from) for a
        circle, GEOS ``intersects_xy`` (= ``covers`` for a point) for a polygon.
        """
        dist = np.empty(len(z), np.float64)
        covered = np.empty(len(z), bool)
        circ = self.is_circle[z]
        c = np.flatnonzero(circ)
        if len(c):
            par = self.zpar[z[c]]
            dx = (lon[c] - par[:, 0]) * par[:, 2]
            dy = (lat[c] - par[:, 1]) * par[:, 3]
            d2 = dx * dx + dy * dy
            covered[c] = d2 <= par[:, 4] * par[:, 4]
            dist[c] = np.abs(np.sqrt(d2) - par[:, 4])
        p = np.flatnonzero(~circ)
        if len(p):
            zp = z[p]
            i = self.zpoly[zp]
            x, y = lon[p], lat[p]
            covered[p] = shapely.intersects_xy(self.grid.geoms[i], x, y)
            lo, hi = self.seg_start[i], self.seg_start[i + 1]  # never empty: rings have edges
            owner, e = expand_ranges(np.arange(len(p)), lo, hi)
            seg = self.seg[e]
            x, y = x[owner], y[owner]
            kx, ky = self.zpar[zp, 2][owner], self.zpar[zp, 3][owner]
            ax, ay = (seg[:, 0] - x) * kx, (seg[:, 1] - y) * ky
            bx, by = (seg[:, 2] - x) * kx, (seg[:, 3] - y) * ky
            dx, dy = bx - ax, by - ay
            den = dx * dx + dy * dy
            t = np.clip(-(ax * dx + ay * dy) / np.where(den > 0, den, 1.0), 0.0, 1.0)
            px, py = ax + t * dx, ay + t * dy
            first = np.cumsum(hi - lo) - (hi - lo)
            dist[p] = np.sqrt(np.minimum.reduceat(px * px + py * py, first))
        return dist, covered


class ZoneIndex:
    """Immutable exact zone index; keys are caller-chosen ints (e.g. store numbers)."""

    __slots__ = ("_base", "_dead", "_n_dead", "_overlay")

    def __init__(self, base: _Layer, overlay: _Layer | None, dead: npt.NDArray[np.bool_]):
        self._base = base
        self._overlay = overlay
        self._dead = dead
        self._n_dead = int(dead.sum())

    @classmethod
    def build(cls, items: Iterable[tuple[int, ZoneShape]]) -> ZoneIndex:
        """A full build. Raises ``ValueError`` on duplicate keys. ~5 s for 100k zones."""
        base = _Layer(list(items))
        return cls(base, None, np.zeros(len(base.items), bool))

    def __len__(self) -> int:
        return len(self._base.items) - self._n_dead + (len(self._overlay.items)
                                                       if self._overlay else 0)

    def keys(self) -> Iterator[int]:
        """Keys of the zones in the snapshot (base first, then changed ones)."""
        dead = self._dead
        yield from (k for i, k in enumerate(self._base.keys_list) if not dead[i])
        if self._overlay:
            yield from self._overlay.keys_list

    def items(self) -> Iterator[tuple[int, ZoneShape]]:
        """(key, shape) of every zone in the snapshot."""
        dead = self._dead
        yield from (kv for i, kv in enumerate(self._base.items) if not dead[i])
        if self._overlay:
            yield from self._overlay.items

    @property
    def overlay_size(self) -> int:
        """Zones held in the overlay (0 right after ``build`` or a compaction)."""
        return len(self._overlay.items) if self._overlay else 0

    def match_batch(self, lons: F64, lats: F64) -> tuple[I64, I64]:
        """All (ping index, zone key) pairs with the ping covered; pair order unspecified.

        ``lons``/``lats`` are 1-D float64 arrays of equal length (degrees). NaN, infinite or
        far-away pings match nothing. One core: tens of millions of pings/s (see benchmarks).
        """
        lons = np.ascontiguousarray(lons, dtype=np.float64)
        lats = np.ascontiguousarray(lats, dtype=np.float64)
        if lons.shape != lats.shape or lons.ndim != 1:
            raise ValueError("lons and lats must be 1-D arrays of the same length")
        p, z = self._base.grid.match(lons, lats)
        if self._n_dead:
            keep = ~self._dead[z]
            p, z = p[keep], z[keep]
        keys = self._base.keys[z]
        if self._overlay:
            op, oz = self._overlay.grid.match(lons, lats)
            return np.concatenate([p, op]), np.concatenate([keys, self._overlay.keys[oz]])
        return p, keys

    def match_one(self, lon: float, lat: float) -> list[int]:
        """Keys of the zones covering one ping (no numpy per call: a few µs)."""
        base = self._base
        zs = base.grid.match_one(lon, lat)
        if self._n_dead:
            out = [base.keys_list[z] for z in zs if not self._dead[z]]
        else:
            out = [base.keys_list[z] for z in zs]
        if self._overlay:
            out += [self._overlay.keys_list[z] for z in self._overlay.grid.match_one(lon, lat)]
        return out

    def classify(self, lon: float, lat: float, accuracy_m: float) -> list[tuple[int, Where]]:
        """Zones near a ping whose position is only known within ``accuracy_m`` metres.

        ``INSIDE``: covered and farther than ``accuracy_m`` from the boundary (the accuracy
        circle lies inside). ``EDGE``: within ``accuracy_m`` of the boundary (covered or not).
        Zones not returned are clearly outside: not covered and farther than ``accuracy_m``.
        "Covered" is exactly :meth:`match_one`; distances use each zone's local metric
        (``geo.zones``) and are good to ~1e-6 m. Sorted by key.
        """
        acc = max(float(accuracy_m), 0.0)
        covered = set(self.match_one(lon, lat))
        cos = math.cos(math.radians(lat)) if -90.0 <= lat <= 90.0 else 0.0
        dlon = acc / (M_PER_DEG * cos * 0.9) if cos > 0.01 else 360.0
        dlat = acc / M_PER_DEG * 1.01 + 1e-9
        box = shapely.box(lon - dlon - 1e-9, lat - dlat, lon + dlon + 1e-9, lat + dlat)
        out: list[tuple[int, Where]] = []
        for layer, dead in ((self._base, self._dead if self._n_dead else None),
                            (self._overlay, None)):
            if layer is None:
                continue
            for z in layer.tree.query(box).tolist():
                if dead is not None and dead[z]:
                    continue
                key = layer.keys_list[z]
                d = layer.boundary_distance_m(z, lon, lat)
                if key in covered:
                    out.append((key, Where.INSIDE if d > acc else Where.EDGE))
                elif d <= acc:
                    out.append((key, Where.EDGE))
        return sorted(out, key=lambda kw: kw[0])

    def classify_batch(self, lons: Sequence[float], lats: Sequence[float],
                       accuracies: Sequence[float]) -> list[list[tuple[int, Where]]]:
        """:meth:`classify` of every ping of a batch, equal to it ping for ping.

        The same candidate boxes go to each layer's STRtree in one bulk query; "covered" and
        the boundary distance of every candidate pair are then computed at once
        (:meth:`_Layer.near`). A ping far from every zone has no candidate and costs only its
        share of those calls: a batch of 50 costs a few microseconds a ping instead of the
        ~12 µs of per-ping ``classify`` (one STRtree query and one ``shapely.box`` each).
        """
        n = len(lons)
        if not (n == len(lats) == len(accuracies)):
            raise ValueError("lons, lats and accuracies must have the same length")
        out: list[list[tuple[int, Where]]] = [[] for _ in range(n)]
        if n == 0:
            return out
        x = np.array(lons, np.float64)
        y = np.array(lats, np.float64)
        accs = np.maximum(np.array(accuracies, np.float64), 0.0)
        # classify's search box, vectorised. np.cos may differ from math.cos in the last bit,
        # which cannot change an answer: the box only picks candidates, and every zone that
        # can be reported (covered, or within the accuracy of its boundary) overlaps either
        # box by far more than a rounding error (the 0.9, 1.01 and 1e-9 margins).
        with np.errstate(invalid="ignore"):
            cos = np.where((y >= -90.0) & (y <= 90.0), np.cos(np.radians(y)), 0.0)
            far = cos <= 0.01
            dlon = np.where(far, 360.0, accs / (M_PER_DEG * np.where(far, 1.0, cos) * 0.9))
        dlat = accs / M_PER_DEG * 1.01 + 1e-9
        boxes = shapely.box(x - dlon - 1e-9, y - dlat, x + dlon + 1e-9, y + dlat)
        found_p, found_k, found_in = [], [], []
        for layer, dead in ((self._base, self._dead if self._n_dead else None),
                            (self._overlay, None)):
            if layer is None:
                continue
            cp, cz = layer.tree.query(boxes)
            if dead is not None:
                alive = ~dead[cz]
                cp, cz = cp[alive], cz[alive]
            if len(cp) == 0:
                continue
            d, covered = layer.near(cz, x[cp], y[cp])
            a = accs[cp]
            keep = covered | (d <= a)
            found_p.append(cp[keep])
            found_k.append(layer.keys[cz[keep]])
            found_in.append((covered & (d > a))[keep])
        if not found_p:
            return out
        p = np.concatenate(found_p)
        k = np.concatenate(found_k)
        inside = np.concatenate(found_in)
        order = np.lexsort((k, p))
        for i, key, ins in zip(p[order].tolist(), k[order].tolist(), inside[order].tolist(),
                               strict=True):
            out[i].append((key, Where.INSIDE if ins else Where.EDGE))
        return out

    def with_changes(
        self, upserts: Iterable[tuple[int, ZoneShape]], deletes: Iterable[int]
    ) -> ZoneIndex:
        """A new snapshot with zones added / replaced (``upserts``) and removed (``deletes``).

        Deleting an unknown key is a no-op; a key both upserted and deleted ends deleted. Costs
        a rebuild of the overlay only (milliseconds) until it passes ``MAX_OVERLAY`` zones,
        then one full rebuild. ``self`` is left untouched.
        """
        changed = dict(self._overlay.items) if self._overlay else {}
        ups = list(upserts)
        gone = set(deletes)
        changed.update(ups)
        for k in gone:
            changed.pop(k, None)
        dead = self._dead.copy()
        for k in [*gone, *(k for k, _ in ups)]:
            z = self._base.pos.get(k)
            if z is not None:
                dead[z] = True
        if len(changed) > MAX_OVERLAY:
            alive = [kv for i, kv in enumerate(self._base.items) if not dead[i]]
            return ZoneIndex.build([*alive, *changed.items()])
        overlay = _Layer(list(changed.items())) if changed else None
        return ZoneIndex(self._base, overlay, dead)

    def compacted(self) -> ZoneIndex:
        """The same zones in one fully rebuilt grid (e.g. from a background thread)."""
        return ZoneIndex.build(self.items())
