"""Catching a zone typed with latitude and longitude swapped (pure).

GeoJSON is `[lon, lat]`; most people say "lat, lon". A circle centred at `[48.88, 2.35]` is a
valid point — off Somalia — so validation alone accepts it. Two kinds of evidence say a
location was probably meant the other way round:

1. The program's other stores: the swapped point lies near them (within `NEAR_M`) while the
   point as given is at least `FACTOR` times further from every one of them.
2. The program's declared region, its time zone: a zone's standard UTC offset puts its
   shops within about `BAND_DEG` degrees of longitude of `offset × 15°` (Paris, UTC+1:
   15° ± 30°). The point's longitude is outside that band while the swapped one is inside.

Either is enough, unless the point as given is itself near the other stores (then the time
zone is not trusted). A swap is only possible when the longitude is a valid latitude
(|lon| ≤ 90). The caller lets a manager confirm a location that really is unusual.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from wallet.kernel.localtime import zone

NEAR_M = 100_000.0  # the swapped point is "where the other stores are"
FACTOR = 10.0  # ... and the given point this many times further away
BAND_DEG = 30.0  # shops lie within this many degrees of their time zone's meridian

Point = tuple[float, float]  # (lon, lat)
Near = tuple[float, str]  # metres to the program's nearest other store, and that store's code


@lru_cache(maxsize=256)
def standard_meridian(timezone: str) -> float:
    """15° × the zone's standard UTC offset (the smaller of January's and July's, so daylight
    saving is left out in either hemisphere)."""
    tz = zone(timezone)
    offsets = [datetime(2025, month, 1, 12, tzinfo=tz).utcoffset() for month in (1, 7)]
    hours = min(o.total_seconds() for o in offsets if o is not None) / 3600
    return hours * 15.0


def _circular_gap(a: float, b: float) -> float:
    gap = abs(a - b) % 360.0
    return min(gap, 360.0 - gap)


def likely_swap(point: Point, *, timezone: str, given_near: Near | None,
                swapped_near: Near | None) -> str | None:
    """Why `point` (`[lon, lat]`) looks like latitude and longitude swapped, or None.

    `given_near` / `swapped_near`: the program's nearest other store to `point` and to
    `(lat, lon)` (None when the program has no other store)."""
    lon, lat = point
    if abs(lon) > 90 or lon == lat:
        return None
    where = f"[{lon:g}, {lat:g}]"
    if given_near is not None and swapped_near is not None:
        d, _ = given_near
        ds, code = swapped_near
        if ds <= NEAR_M and d >= FACTOR * max(ds, 1000.0):
            return (f"{where} looks like latitude and longitude swapped: as [lon, lat] it is "
                    f"{d / 1000:,.0f} km from the program's nearest store, while "
                    f"[{lat:g}, {lon:g}] is {ds / 1000:,.1f} km from store {code}")
        if d <= NEAR_M:
            return None  # where the other stores are: the time zone is not evidence
    meridian = standard_meridian(timezone)
    if _circular_gap(lon, meridian) > BAND_DEG and _circular_gap(lat, meridian) <= BAND_DEG:
        return (f"{where} looks like latitude and longitude swapped: longitude {lon:g} is far "
                f"from the program's time zone ({timezone}, around {meridian:g}°), while "
                f"[{lat:g}, {lon:g}] is inside it")
    return None
