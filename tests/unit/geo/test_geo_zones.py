"""Zone validation names the offending field; valid zones round-trip through GeoJSON."""

from __future__ import annotations

import math

import msgspec
import pytest

from geo.errors import InvalidZone
from geo.zones import (
    Circle,
    CircleShape,
    MultiPolygon,
    Polygon,
    PolygonShape,
    decode_zone,
    validate_zone,
    zone_to_geojson,
)

SQUARE = [[2.35, 48.85], [2.36, 48.85], [2.36, 48.86], [2.35, 48.86], [2.35, 48.85]]
HOLE = [[2.352, 48.852], [2.352, 48.854], [2.354, 48.854], [2.354, 48.852], [2.352, 48.852]]
MAX = 5_000.0


def refused(zone: object) -> InvalidZone:
    with pytest.raises(InvalidZone) as info:
        validate_zone(zone, max_extent_m=MAX)  # type: ignore[arg-type]
    return info.value


def test_a_valid_polygon_with_a_hole_is_accepted() -> None:
    shape = validate_zone(Polygon(coordinates=[SQUARE, HOLE]), max_extent_m=MAX)
    assert isinstance(shape, PolygonShape)
    assert len(shape.parts) == 1 and len(shape.parts[0]) == 2


def test_an_unclosed_ring_is_refused_naming_the_ring() -> None:
    err = refused(Polygon(coordinates=[[*SQUARE[:-1], [2.351, 48.85]]]))
    assert err.field == "zone.coordinates[0]" and "not closed" in err.reason


def test_a_ring_with_fewer_than_four_positions_is_refused() -> None:
    err = refused(Polygon(coordinates=[[[2.35, 48.85], [2.36, 48.85], [2.35, 48.85]]]))
    assert err.field == "zone.coordinates[0]" and "at least 4" in err.reason


@pytest.mark.parametrize(
    ("position", "word"), [([181.0, 48.85], "longitude"), ([2.35, -90.5], "latitude")]
)
def test_out_of_range_coordinates_are_refused_naming_the_position(
    position: list[float], word: str
) -> None:
    ring = [list(p) for p in SQUARE]
    ring[2] = position
    err = refused(Polygon(coordinates=[ring]))
    assert err.field == "zone.coordinates[0][2]" and word in err.reason


def test_non_finite_coordinates_are_refused() -> None:
    err = refused(Circle(center=[math.nan, 48.85], radius_m=50))
    assert err.field == "zone.center"


def test_a_self_intersecting_bow_tie_is_refused() -> None:
    bow = [[2.35, 48.85], [2.36, 48.86], [2.36, 48.85], [2.35, 48.86], [2.35, 48.85]]
    err = refused(Polygon(coordinates=[bow]))
    assert err.field == "zone.coordinates[0]" and "Self-intersection" in err.reason


def test_a_hole_outside_its_shell_is_refused_naming_the_hole() -> None:
    far = [[x + 0.1, y] for x, y in HOLE]
    err = refused(Polygon(coordinates=[SQUARE, far]))
    assert err.field == "zone.coordinates[1]" and "outside" in err.reason


def test_overlapping_multipolygon_parts_are_refused() -> None:
    err = refused(MultiPolygon(coordinates=[[SQUARE], [SQUARE]]))
    assert err.field == "zone.coordinates"


def test_a_bad_part_of_a_multipolygon_is_named_by_index() -> None:
    other = [*[[x + 0.02, y] for x, y in SQUARE][:-1], [2.0, 48.0]]
    err = refused(MultiPolygon(coordinates=[[SQUARE], [other]]))
    assert err.field == "zone.coordinates[1][0]"


def test_a_zone_wider_than_the_maximum_is_refused() -> None:
    wide = [[2.0, 48.85], [2.2, 48.85], [2.2, 48.86], [2.0, 48.86], [2.0, 48.85]]
    err = refused(Polygon(coordinates=[wide]))
    assert err.field == "zone.coordinates" and "wider" in err.reason


@pytest.mark.parametrize("radius", [0.0, -5.0, math.inf, math.nan])
def test_a_circle_radius_must_be_finite_and_positive(radius: float) -> None:
    err = refused(Circle(center=[2.35, 48.85], radius_m=radius))
    assert err.field == "zone.radius_m"


def test_a_circle_wider_than_the_maximum_is_refused() -> None:
    err = refused(Circle(center=[2.35, 48.85], radius_m=MAX))
    assert err.field == "zone.radius_m"


def test_unknown_fields_and_unknown_types_are_rejected_when_decoding() -> None:
    with pytest.raises(msgspec.ValidationError):
        decode_zone({"type": "Circle", "center": [2.0, 48.0], "radius_m": 5, "x": 1})
    with pytest.raises(msgspec.ValidationError):
        decode_zone(b'{"type": "Point", "coordinates": [2.0, 48.0]}')


@pytest.mark.parametrize(
    "zone",
    [
        Circle(center=[2.35, 48.85], radius_m=150.0),
        Polygon(coordinates=[SQUARE, HOLE]),
        MultiPolygon(coordinates=[[SQUARE], [[[x + 0.02, y] for x, y in SQUARE]]]),
    ],
)
def test_export_round_trips_through_decode_and_validation(zone: object) -> None:
    shape = validate_zone(zone, max_extent_m=MAX)  # type: ignore[arg-type]
    exported = zone_to_geojson(shape)
    again = validate_zone(decode_zone(msgspec.json.encode(exported)), max_extent_m=MAX)
    assert zone_to_geojson(again) == exported
    assert exported["type"] == type(zone).__name__


def test_a_circle_keeps_its_exact_centre_and_radius() -> None:
    shape = validate_zone(Circle(center=[2.35, 48.85], radius_m=150.0), max_extent_m=MAX)
    assert isinstance(shape, CircleShape)
    assert (shape.lon, shape.lat, shape.radius_m) == (2.35, 48.85, 150.0)
