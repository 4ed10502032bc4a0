"""The zone index answers exactly what a brute-force covers check over all zones answers."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from geo.errors import InvalidZone
from geo.matcher.brute import brute_force_pairs, covers_one
from geo.matcher.index import ZoneIndex
from geo.zones import (
    M_PER_DEG,
    Circle,
    CircleShape,
    MultiPolygon,
    Polygon,
    PolygonShape,
    ZoneShape,
    validate_zone,
)

LON0, LAT0 = 2.35, 48.85
MAX = 50_000.0
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def star(draw: st.DrawFn, cx: float, cy: float, size: float, lo: float, hi: float,
         step: float | None) -> list[list[float]]:
    n = draw(st.integers(3, 12))
    ring = []
    for k in range(n):
        a = (k + draw(st.floats(-0.3, 0.3))) * 2 * math.pi / n
        r = draw(st.floats(lo, hi)) * size
        x, y = cx + r * math.cos(a), cy + r * math.sin(a)
        if step:  # snap to a lattice: axis-aligned and collinear edges, exact boundary points
            x, y = round(x / step) * step, round(y / step) * step
        ring.append([x, y])
    return [*ring, ring[0]]


@st.composite
def zones(draw: st.DrawFn) -> ZoneShape:
    cx = LON0 + draw(st.floats(-0.01, 0.01))
    cy = LAT0 + draw(st.floats(-0.01, 0.01))
    size = draw(st.sampled_from([2e-6, 3e-5, 6e-4, 3e-3, 2e-2]))  # ~0.2 m .. ~2 km
    if draw(st.booleans()):
        zone: object = Circle(center=[cx, cy], radius_m=size * M_PER_DEG * draw(st.floats(0.1, 1)))
    else:
        step = draw(st.sampled_from([None, size / 4]))
        parts = []
        for dx in [0.0, 2.5 * size][: draw(st.integers(1, 2))]:
            rings = [star(draw, cx + dx, cy, size, 0.5, 1.0, step)]
            if draw(st.booleans()):
                rings.append(star(draw, cx + dx, cy, size, 0.1, 0.3, step)[::-1])
            parts.append(rings)
        zone = Polygon(coordinates=parts[0]) if len(parts) == 1 else MultiPolygon(coordinates=parts)
    try:
        return validate_zone(zone, max_extent_m=MAX)  # type: ignore[arg-type]
    except InvalidZone:
        assume(False)
        raise


def special_points(shape: ZoneShape) -> list[tuple[float, float]]:
    """Vertices, edge midpoints and circle extremes: the points most likely to disagree."""
    if isinstance(shape, CircleShape):
        dx, dy = shape.radius_m / shape.kx, shape.radius_m / shape.ky
        return [(shape.lon + dx, shape.lat), (shape.lon, shape.lat - dy), (shape.lon, shape.lat),
                (shape.lon - dx * (1 + 1e-15), shape.lat)]
    pts: list[tuple[float, float]] = []
    for part in shape.parts:
        for ring in part:
            pts += list(ring[:-1])
            pts += [((a[0] + b[0]) / 2, (a[1] + b[1]) / 2) for a, b in itertools.pairwise(ring)]
    return pts


@st.composite
def scenes(draw: st.DrawFn) -> tuple[list[ZoneShape], np.ndarray, np.ndarray]:
    shapes = draw(st.lists(zones(), min_size=1, max_size=6))
    special = [p for s in shapes for p in special_points(s)]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pick = rng.choice(len(special), min(len(special), 300), replace=False)
    lons = [special[i][0] for i in pick] + list(LON0 + rng.uniform(-0.03, 0.03, 300))
    lats = [special[i][1] for i in pick] + list(LAT0 + rng.uniform(-0.03, 0.03, 300))
    return shapes, np.array(lons), np.array(lats)


def pairs_of(index: ZoneIndex, lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    p, k = index.match_batch(lons, lats)
    pairs = np.stack([p, k], axis=1).astype(np.int64)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]


def expected(items: list[tuple[int, ZoneShape]], lons: np.ndarray, lats: np.ndarray) -> np.ndarray:
    return brute_force_pairs(items, lons, lats)


@SETTINGS
@given(scenes())
def test_batch_and_single_matching_equal_brute_force_covers(scene) -> None:  # type: ignore[no-untyped-def]
    shapes, lons, lats = scene
    items = list(enumerate(shapes))
    index = ZoneIndex.build(items)
    want = expected(items, lons, lats)
    assert np.array_equal(pairs_of(index, lons, lats), want)
    for i in range(len(lons)):
        got = sorted(index.match_one(float(lons[i]), float(lats[i])))
        assert got == want[want[:, 0] == i, 1].tolist()


@SETTINGS
@given(scenes(), st.sampled_from([2.0**-13, 2.0**-16, 2.0**-19]))
def test_pings_on_cell_and_subcell_lines_match_brute_force(scene, step: float) -> None:  # type: ignore[no-untyped-def]
    """Pings snapped to the lattices the grid cells and subcells are aligned on, and one ulp
    either side: where rounding a ping to its cell or subcell could go wrong."""
    shapes, lons, lats = scene
    x = np.round(lons / step) * step
    y = np.round(lats / step) * step
    lons = np.concatenate([x, np.nextafter(x, -np.inf), np.nextafter(x, np.inf), x])
    lats = np.concatenate([y, y, np.nextafter(y, np.inf), np.nextafter(y, -np.inf)])
    items = list(enumerate(shapes))
    index = ZoneIndex.build(items)
    want = expected(items, lons, lats)
    assert np.array_equal(pairs_of(index, lons, lats), want)
    for i in range(0, len(lons), 5):
        got = sorted(index.match_one(float(lons[i]), float(lats[i])))
        assert got == want[want[:, 0] == i, 1].tolist()


def ring_points(shape: ZoneShape, lon: float, lat: float, r: float) -> list[tuple[float, float]]:
    return [(lon + r * math.cos(a) / shape.kx, lat + r * math.sin(a) / shape.ky)
            for a in np.linspace(0, 2 * math.pi, 24, endpoint=False)]


@SETTINGS
@given(scenes(), st.sampled_from([0.0, 0.5, 5.0, 40.0]))
def test_classify_inside_means_the_accuracy_circle_is_covered_and_absent_means_clear(
    scene, accuracy: float  # type: ignore[no-untyped-def]
) -> None:
    shapes, lons, lats = scene
    index = ZoneIndex.build(list(enumerate(shapes)))
    for lon, lat in list(zip(lons.tolist(), lats.tolist(), strict=True))[::7]:
        got = dict(index.classify(lon, lat, accuracy))
        for key, shape in enumerate(shapes):
            covered = covers_one(shape, lon, lat)
            disc = ring_points(shape, lon, lat, accuracy * (1 - 1e-6)) if accuracy else []
            if key not in got:
                assert not covered and not any(covers_one(shape, x, y) for x, y in disc)
            elif got[key].value == "inside":
                assert covered and all(covers_one(shape, x, y) for x, y in disc)


@SETTINGS
@given(scenes(), st.data())
def test_changes_are_matched_exactly_without_a_rebuild(scene, data) -> None:  # type: ignore[no-untyped-def]
    shapes, lons, lats = scene
    current = dict(enumerate(shapes))
    index = ZoneIndex.build(current.items())
    for _ in range(3):
        new = data.draw(st.lists(zones(), max_size=2))
        ups = [(data.draw(st.integers(0, 9)), s) for s in new]
        gone = data.draw(st.lists(st.integers(0, 9), max_size=2))
        index = index.with_changes(ups, gone)
        current.update(ups)
        for k in gone:
            current.pop(k, None)
        assert sorted(index.keys()) == sorted(current)
        assert len(index) == len(current)
        assert np.array_equal(pairs_of(index, lons, lats), expected(list(current.items()),
                                                                     lons, lats))
        assert np.array_equal(pairs_of(index.compacted(), lons, lats),
                              pairs_of(index, lons, lats))


def square(x: float, y: float, d: float) -> PolygonShape:
    ring = [[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]
    shape = validate_zone(Polygon(coordinates=[ring]), max_extent_m=MAX)
    assert isinstance(shape, PolygonShape)
    return shape


def test_a_ping_on_an_edge_or_a_vertex_is_inside_and_just_beyond_is_not() -> None:
    index = ZoneIndex.build([(7, square(2.0, 48.0, 0.001))])
    assert index.match_one(2.0005, 48.0) == [7]
    assert index.match_one(2.001, 48.001) == [7]
    assert index.match_one(math.nextafter(2.001, 3.0), 48.0005) == []
    p, k = index.match_batch(np.array([2.0005, 2.001, math.nextafter(2.001, 3.0)]),
                             np.array([48.0, 48.001, 48.0005]))
    assert sorted(p.tolist()) == [0, 1] and set(k.tolist()) == {7}


def test_a_ping_in_a_hole_is_outside_but_on_the_hole_edge_is_inside() -> None:
    shell = [[2.0, 48.0], [2.01, 48.0], [2.01, 48.01], [2.0, 48.01], [2.0, 48.0]]
    hole = [[2.004, 48.004], [2.004, 48.006], [2.006, 48.006], [2.006, 48.004], [2.004, 48.004]]
    shape = validate_zone(Polygon(coordinates=[shell, hole]), max_extent_m=MAX)
    index = ZoneIndex.build([(1, shape)])
    assert index.match_one(2.005, 48.005) == []
    assert index.match_one(2.004, 48.005) == [1]
    assert index.match_one(2.002, 48.005) == [1]


def test_overlapping_zones_all_match() -> None:
    circle = validate_zone(Circle(center=[2.0005, 48.0005], radius_m=20.0), max_extent_m=MAX)
    index = ZoneIndex.build([(1, square(2.0, 48.0, 0.001)), (2, circle)])
    assert sorted(index.match_one(2.0005, 48.0005)) == [1, 2]


def test_nan_infinite_and_far_away_pings_match_nothing() -> None:
    index = ZoneIndex.build([(1, square(2.0, 48.0, 0.001))])
    lons = np.array([math.nan, math.inf, -math.inf, 1e300, 2.0005])
    lats = np.array([48.0005, 48.0005, 48.0005, 48.0005, math.nan])
    p, k = index.match_batch(lons, lats)
    assert len(p) == len(k) == 0
    assert all(index.match_one(x, y) == [] for x, y in zip(lons, lats, strict=True))


def test_an_empty_index_matches_nothing() -> None:
    index = ZoneIndex.build([])
    assert len(index) == 0 and index.match_one(2.0, 48.0) == []
    assert len(index.match_batch(np.array([2.0]), np.array([48.0]))[0]) == 0
    grown = index.with_changes([(3, square(2.0, 48.0, 0.001))], [])
    assert grown.match_one(2.0005, 48.0005) == [3]


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        ZoneIndex.build([(1, square(2.0, 48.0, 0.001)), (1, square(3.0, 48.0, 0.001))])


def test_the_original_snapshot_is_unchanged_by_with_changes() -> None:
    before = ZoneIndex.build([(1, square(2.0, 48.0, 0.001))])
    after = before.with_changes([(2, square(2.0, 48.0, 0.002))], [1])
    assert before.match_one(2.0005, 48.0005) == [1]
    assert after.match_one(2.0005, 48.0005) == [2]


def test_a_large_overlay_is_compacted_into_a_fresh_index() -> None:
    base = ZoneIndex.build([(0, square(2.0, 48.0, 0.001))])
    many = [(k, square(2.0 + k * 0.002, 48.0, 0.001)) for k in range(1, 300)]
    index = base.with_changes(many, [])
    assert index.overlay_size == 0 and len(index) == 300
    assert index.match_one(2.0 + 150 * 0.002 + 0.0005, 48.0005) == [150]


def test_classify_reports_edge_near_the_boundary_and_inside_well_within() -> None:
    circle = validate_zone(Circle(center=[2.0, 48.0], radius_m=100.0), max_extent_m=MAX)
    assert isinstance(circle, CircleShape)
    index = ZoneIndex.build([(4, circle)])
    at = lambda m: (2.0 + m / circle.kx, 48.0)  # noqa: E731 - metres east of the centre
    assert index.classify(*at(50), 20.0) == [(4, index.classify(*at(0), 1.0)[0][1])]
    assert index.classify(*at(95), 20.0)[0][1].value == "edge"
    assert index.classify(*at(110), 20.0)[0][1].value == "edge"
    assert index.classify(*at(150), 20.0) == []
    assert index.classify(*at(50), 20.0)[0][1].value == "inside"


def classify_each(index: ZoneIndex, lons: list[float], lats: list[float],
                  accs: list[float]) -> list[list[tuple[int, object]]]:
    return [index.classify(x, y, a) for x, y, a in zip(lons, lats, accs, strict=True)]


@st.composite
def classify_scenes(draw: st.DrawFn) -> tuple[list[ZoneShape], list[float], list[float],
                                               list[float]]:
    """Zones and pings with accuracies, many of them at a boundary or at exactly their
    accuracy from one (where INSIDE / EDGE / absent could disagree)."""
    shapes, lons, lats = draw(scenes())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = len(lons)
    accs = rng.choice([0.0, 0.5, 5.0, 40.0, 300.0], n) * rng.choice([1.0, 1.0, 0.999], n)
    xs, ys, out_acc = lons.tolist(), lats.tolist(), accs.tolist()
    for shape in shapes:  # at `a` metres east of a circle's rim, `a` accurate
        if isinstance(shape, CircleShape):
            for a in (0.5, 5.0, 40.0):
                xs.append(shape.lon + (shape.radius_m + a) / shape.kx)
                ys.append(shape.lat)
                out_acc.append(a)
        for x, y in special_points(shape)[:20]:
            xs.append(x)
            ys.append(y)
            out_acc.append(float(rng.choice([0.0, 5.0])))
    return shapes, xs, ys, out_acc


@SETTINGS
@given(classify_scenes(), st.data())
def test_classify_batch_equals_classify_ping_for_ping(scene, data) -> None:  # type: ignore[no-untyped-def]
    shapes, lons, lats, accs = scene
    index = ZoneIndex.build(list(enumerate(shapes)))
    assert index.classify_batch(lons, lats, accs) == classify_each(index, lons, lats, accs)
    new = data.draw(st.lists(zones(), max_size=2))  # an overlay and dead base zones too
    changed = index.with_changes([(data.draw(st.integers(0, 9)), s) for s in new],
                                 data.draw(st.lists(st.integers(0, 9), max_size=2)))
    assert changed.classify_batch(lons, lats, accs) == classify_each(changed, lons, lats, accs)


def test_classify_batch_of_nan_infinite_far_or_no_pings_equals_classify() -> None:
    circle = validate_zone(Circle(center=[2.0, 48.0], radius_m=100.0), max_extent_m=MAX)
    index = ZoneIndex.build([(1, square(2.0, 48.0, 0.001)), (2, circle)])
    lons = [math.nan, math.inf, 2.0005, 1e300, 2.0005, 2.0, 2.0, 2.0005]
    lats = [48.0005, 48.0005, math.nan, 48.0005, 95.0, 48.0, 48.0, 48.0005]
    accs = [5.0, 5.0, 5.0, 5.0, 5.0, math.inf, -1.0, 0.0]
    assert index.classify_batch(lons, lats, accs) == classify_each(index, lons, lats, accs)
    assert index.classify_batch([], [], []) == []
    assert ZoneIndex.build([]).classify_batch([2.0], [48.0], [5.0]) == [[]]
