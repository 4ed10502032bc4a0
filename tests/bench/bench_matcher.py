"""Benchmark of the geofence matcher on the PERFORMANCE.md workload (not a pass/fail test).

    .venv/bin/python tests/bench/bench_matcher.py [--zones 1000,10000,100000] [--pings 1000000]

For each zone count: index build time and peak traced memory, batch pings/s (median of 3,
after a warm-up), single-ping median latency, the per-ping rtree + shapely prepared covers
baseline measured in the same run on a sample (extrapolated) and the ratio, the time for one
added / moved / deleted zone to become visible, and the agreement of every (ping, zone) pair
with the brute-force check. One core (numpy is single-threaded here).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np
import rtree
import shapely

from geo.matcher.brute import brute_force_pairs
from geo.matcher.index import ZoneIndex
from geo.zones import CircleShape, ZoneShape, validate_zone
from loadtests import workload

MAX_EXTENT_M = 5_000.0


def as_polygon(shape: ZoneShape) -> shapely.Geometry:
    """What most code does with a circle: a 64-gon in degrees (approximate, timing only)."""
    if isinstance(shape, CircleShape):
        a = np.linspace(0, 2 * math.pi, 65)
        return shapely.Polygon(np.stack([shape.lon + shape.radius_m * np.cos(a) / shape.kx,
                                         shape.lat + shape.radius_m * np.sin(a) / shape.ky], 1))
    return shape.geom


def baseline_pps(shapes: list[ZoneShape], lons: np.ndarray, lats: np.ndarray) -> float:
    """Per-ping rtree bbox query + prepared shapely covers, on the given sample."""
    geoms = [as_polygon(s) for s in shapes]
    for g in geoms:
        shapely.prepare(g)
    tree = rtree.index.Index(((i, g.bounds, None) for i, g in enumerate(geoms)))
    t = time.perf_counter()
    hits = 0
    for x, y in zip(lons.tolist(), lats.tolist(), strict=True):
        p = shapely.Point(x, y)
        for i in tree.intersection((x, y, x, y)):
            if geoms[i].covers(p):
                hits += 1
    return len(lons) / (time.perf_counter() - t)


def median_time(fn: object, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def classify_costs(index: ZoneIndex, xs: list[float], ys: list[float]
                   ) -> tuple[float, float, bool]:
    """µs per ping of ``classify`` one ping at a time and of ``classify_batch`` on batches of
    50 (the API's batch), accuracies 5-40 m, and whether both gave the same answers."""
    acc = np.random.default_rng(5).uniform(5, 40, len(xs)).tolist()
    t = time.perf_counter()
    one = [index.classify(x, y, a) for x, y, a in zip(xs, ys, acc, strict=True)]
    one_s = time.perf_counter() - t
    t = time.perf_counter()
    batched = [r for i in range(0, len(xs), 50)
               for r in index.classify_batch(xs[i : i + 50], ys[i : i + 50], acc[i : i + 50])]
    batch_s = time.perf_counter() - t
    return one_s / len(xs) * 1e6, batch_s / len(xs) * 1e6, one == batched


def bench(n_zones: int, n_pings: int, sample: int) -> dict[str, float | str]:
    zones = workload.zones(n_zones)
    t = time.perf_counter()
    items = [(i, validate_zone(z, max_extent_m=MAX_EXTENT_M)) for i, z in enumerate(zones)]
    validate_s = time.perf_counter() - t
    lons, lats = workload.pings(n_pings)

    t = time.perf_counter()
    index = ZoneIndex.build(items)
    build_s = time.perf_counter() - t
    del index
    tracemalloc.start()
    index = ZoneIndex.build(items)
    peak_mb = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()

    index.match_batch(lons[:10_000], lats[:10_000])  # warm-up
    batch_s = median_time(lambda: index.match_batch(lons, lats))
    p, k = index.match_batch(lons, lats)

    one: list[int] = []
    xs, ys = lons[:20_000].tolist(), lats[:20_000].tolist()
    for x, y in zip(xs, ys, strict=True):
        t0 = time.perf_counter_ns()
        index.match_one(x, y)
        one.append(time.perf_counter_ns() - t0)
    single_us = statistics.median(one) / 1_000
    classify_us, classify_batch_us, classify_agree = classify_costs(index, xs[:5_000],
                                                                    ys[:5_000])

    rng = np.random.default_rng(3)
    pick = rng.choice(n_pings, min(sample, n_pings), replace=False)
    base = baseline_pps([s for _, s in items], lons[pick], lats[pick])

    changes = []
    moved = items[1][1]
    for ups, dels in (([(n_zones + 1, items[0][1])], []), ([(2, moved)], []), ([], [3])):
        t = time.perf_counter()
        changed = index.with_changes(ups, dels)
        changed.match_one(float(lons[0]), float(lats[0]))
        changes.append(time.perf_counter() - t)

    t = time.perf_counter()
    brute = brute_force_pairs(items, lons, lats)
    brute_s = time.perf_counter() - t
    mine = np.stack([p, k], axis=1)
    mine = mine[np.lexsort((mine[:, 1], mine[:, 0]))]
    agree = np.array_equal(mine, brute)
    pps = n_pings / batch_s
    row: dict[str, float | str] = {
        "zones": f"{n_zones:,}", "batch Mpings/s": pps / 1e6, "single µs (median)": single_us,
        "build s": build_s, "peak MB": peak_mb, "baseline kpings/s": base / 1e3,
        "ratio": pps / base, "change visible ms": max(changes) * 1e3,
        "classify µs/ping": classify_us, "classify_batch µs/ping": classify_batch_us,
        "agreement": f"{'yes' if agree and classify_agree else 'NO'} ({len(brute):,} pairs)",
    }
    print(f"\n== {n_zones:,} zones, {n_pings:,} pings (validate {validate_s:.1f} s, "
          f"brute force {brute_s:.1f} s, {len(np.unique(p)) / n_pings:.0%} of pings in a zone)")
    for key, value in row.items():
        print(f"  {key:>20}: {value:.3f}" if isinstance(value, float) else f"  {key:>20}: {value}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zones", default="1000,10000,100000")
    parser.add_argument("--pings", type=int, default=1_000_000)
    parser.add_argument("--baseline-sample", type=int, default=20_000)
    args = parser.parse_args()
    rows = [bench(int(n), args.pings, args.baseline_sample) for n in args.zones.split(",")]
    print("\n| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        cells = [f"{v:,.1f}" if isinstance(v, float) and v >= 10 else
                 f"{v:.2f}" if isinstance(v, float) else v for v in row.values()]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
