"""The PERFORMANCE.md workload: seeded, deterministic zones and pings over Europe.

- Zones cluster around ~50 European city centres (Gaussian, sigma 6 km): 80% circles of radius
  50-500 m, 20% irregular star-shaped polygons of 8-40 vertices (radius 80-500 m), about a
  third of them with a hole and about one in six a two-part MultiPolygon. Zones overlap.
- Pings: 70% Gaussian around city centres (sigma 5.5 km), 30% uniform over Europe.

Same ``seed`` and sizes give the same output on every machine (numpy PCG64).
Coordinates are ``[lon, lat]`` degrees.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from geo.zones import M_PER_DEG, Circle, MultiPolygon, Polygon, Zone

CITIES: tuple[tuple[str, float, float], ...] = (
    ("Paris", 2.3522, 48.8566), ("London", -0.1276, 51.5072), ("Berlin", 13.4050, 52.5200),
    ("Madrid", -3.7038, 40.4168), ("Rome", 12.4964, 41.9028), ("Vienna", 16.3738, 48.2082),
    ("Amsterdam", 4.9041, 52.3676), ("Brussels", 4.3517, 50.8503), ("Lisbon", -9.1393, 38.7223),
    ("Dublin", -6.2603, 53.3498), ("Copenhagen", 12.5683, 55.6761), ("Oslo", 10.7522, 59.9139),
    ("Stockholm", 18.0686, 59.3293), ("Helsinki", 24.9384, 60.1699), ("Warsaw", 21.0122, 52.2297),
    ("Prague", 14.4378, 50.0755), ("Budapest", 19.0402, 47.4979), ("Athens", 23.7275, 37.9838),
    ("Zurich", 8.5417, 47.3769), ("Munich", 11.5820, 48.1351), ("Milan", 9.1900, 45.4642),
    ("Barcelona", 2.1734, 41.3851), ("Lyon", 4.8357, 45.7640), ("Marseille", 5.3698, 43.2965),
    ("Hamburg", 9.9937, 53.5511), ("Frankfurt", 8.6821, 50.1109), ("Cologne", 6.9603, 50.9375),
    ("Manchester", -2.2426, 53.4808), ("Birmingham", -1.8904, 52.4862),
    ("Glasgow", -4.2518, 55.8642), ("Edinburgh", -3.1883, 55.9533), ("Porto", -8.6291, 41.1579),
    ("Seville", -5.9845, 37.3891), ("Valencia", -0.3763, 39.4699), ("Naples", 14.2681, 40.8518),
    ("Turin", 7.6869, 45.0703), ("Bordeaux", -0.5792, 44.8378), ("Toulouse", 1.4442, 43.6047),
    ("Lille", 3.0573, 50.6292), ("Rotterdam", 4.4777, 51.9244), ("Antwerp", 4.4025, 51.2194),
    ("Geneva", 6.1432, 46.2044), ("Krakow", 19.9450, 50.0647), ("Bucharest", 26.1025, 44.4268),
    ("Sofia", 23.3219, 42.6977), ("Zagreb", 15.9819, 45.8150), ("Ljubljana", 14.5058, 46.0569),
    ("Bratislava", 17.1077, 48.1486), ("Riga", 24.1052, 56.9496), ("Vilnius", 25.2797, 54.6872),
)
EUROPE = (-10.0, 36.0, 30.0, 61.0)  # lon min, lat min, lon max, lat max
ZONE_SIGMA_M = 6_000.0
PING_SIGMA_M = 5_500.0


def _star(
    rng: np.random.Generator, lon: float, lat: float, r: float, *, lo: float, hi: float
) -> list[list[float]]:
    """A closed star-shaped ring around (lon, lat): radii in [lo*r, hi*r] metres, CCW."""
    n = int(rng.integers(8, 41))
    step = 2 * math.pi / n
    ang = np.arange(n) * step + rng.uniform(-0.3, 0.3, n) * step
    rad = rng.uniform(lo, hi, n) * r
    kx = M_PER_DEG * math.cos(math.radians(lat))
    xs = lon + rad * np.cos(ang) / kx
    ys = lat + rad * np.sin(ang) / M_PER_DEG
    ring = [[float(x), float(y)] for x, y in zip(xs, ys, strict=True)]
    return [*ring, ring[0]]


def _polygon(rng: np.random.Generator, lon: float, lat: float, r: float) -> list[list[list[float]]]:
    rings = [_star(rng, lon, lat, r, lo=0.5, hi=1.0)]
    if rng.random() < 0.35:  # the shell stays beyond 0.4 r from the centre, the hole within 0.35 r
        rings.append(_star(rng, lon, lat, r, lo=0.15, hi=0.35)[::-1])
    return rings


def zones(n: int, seed: int = 42) -> list[Zone]:
    """``n`` store zones (GeoJSON inputs, valid for any ``max_extent_m >= 2_500``)."""
    rng = np.random.default_rng(seed)
    city = rng.integers(0, len(CITIES), n)
    out: list[Zone] = []
    for c in city:
        _, clon, clat = CITIES[int(c)]
        kx = M_PER_DEG * math.cos(math.radians(clat))
        dx, dy = rng.normal(0.0, ZONE_SIGMA_M, 2)
        lon, lat = clon + dx / kx, clat + dy / M_PER_DEG
        if rng.random() < 0.8:
            out.append(Circle(center=[lon, lat], radius_m=float(rng.uniform(50, 500))))
            continue
        r = float(rng.uniform(80, 500))
        if rng.random() < 1 / 6:
            off = 1.1 * r / kx
            parts = [_polygon(rng, lon - off, lat, r), _polygon(rng, lon + off, lat, r)]
            out.append(MultiPolygon(coordinates=parts))
        else:
            out.append(Polygon(coordinates=_polygon(rng, lon, lat, r)))
    return out


def pings(
    n: int, seed: int = 7
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """``n`` pings as (lons, lats) float64 arrays: 70% around cities, 30% uniform over Europe."""
    rng = np.random.default_rng(seed)
    near = rng.random(n) < 0.7
    city = rng.integers(0, len(CITIES), n)
    clon = np.array([c[1] for c in CITIES])[city]
    clat = np.array([c[2] for c in CITIES])[city]
    kx = M_PER_DEG * np.cos(np.radians(clat))
    lon = np.where(near, clon + rng.normal(0, PING_SIGMA_M, n) / kx,
                   rng.uniform(EUROPE[0], EUROPE[2], n))
    lat = np.where(near, clat + rng.normal(0, PING_SIGMA_M, n) / M_PER_DEG,
                   rng.uniform(EUROPE[1], EUROPE[3], n))
    return lon.astype(np.float64), lat.astype(np.float64)
