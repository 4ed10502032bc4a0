"""A campaign manager draws zones on the console's map, and imports a GeoJSON file.

Done when (#11): the manager logs in, draws a polygon zone and a circle zone on the map, and the
API then returns exactly those zones; a self-intersecting polygon shows the error on the map
and writes nothing; a GeoJSON import with one bad feature shows it and writes nothing.
"""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

from playwright.sync_api import Page, expect
from support.browser import Api, OpenTab, make_shop, shoot, sign_in

ZOOM, LAT, LON = 16, 48.8566, 2.3522
VIEW = f"#/stores?view={ZOOM}/{LAT}/{LON}"
PARIS = [{"code": "OPERA", "name": "Opéra",
          "zone": {"type": "Circle", "center": [2.3316, 48.8708], "radius_m": 100}},
         {"code": "BASTILLE", "name": "Bastille",
          "zone": {"type": "Circle", "center": [2.3703, 48.8537], "radius_m": 120}}]


def world(lat: float, lon: float) -> tuple[float, float]:
    """Web Mercator pixel coordinates at ZOOM (what Leaflet's map projects to)."""
    scale = 256 * 2**ZOOM
    x = (lon + 180) / 360 * scale
    s = math.sin(math.radians(lat))
    y = (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * scale
    return x, y


def latlon_at(page: Page, px: float, py: float) -> tuple[float, float]:
    """The position under a point of the map element (inverse Mercator from the view)."""
    box = page.locator("#stores-map").bounding_box()
    assert box is not None
    cx, cy = world(LAT, LON)
    x, y = cx + px - box["width"] / 2, cy + py - box["height"] / 2
    scale = 256 * 2**ZOOM
    lon = x / scale * 360 - 180
    lat = math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * y / scale))))
    return lat, lon


def click_map(page: Page, px: float, py: float) -> None:
    page.locator("#stores-map").click(position={"x": px, "y": py})


def stores(api: Api, shop: Any) -> dict[str, dict[str, Any]]:
    page = api.call("GET", f"/v1/programs/{shop.program_id}/stores", headers=shop.manager)
    return {s["code"]: s for s in page["items"]}


def create_drawn(page: Page, code: str, name: str) -> dict[str, Any]:
    """Fill the new store's form after drawing; returns the zone the page sends."""
    expect(page.get_by_role("heading", name="New store")).to_be_visible()
    page.get_by_label("Code", exact=True).fill(code)
    page.get_by_label("Name", exact=True).fill(name)
    zone: dict[str, Any] = json.loads(page.locator("textarea[name=zone]").input_value())
    page.get_by_role("button", name="Create the store").click()
    return zone


def test_manager_draws_a_polygon_and_a_circle_and_the_api_has_exactly_those(
        api: Api, tabs: OpenTab) -> None:
    shop = make_shop(api, stores=PARIS)
    tab = tabs()
    page = tab.page
    sign_in(page, shop.manager_email)
    expect(page.get_by_role("heading", name="Stores and zones")).to_be_visible()
    page.goto(f"/console{VIEW}")
    expect(page.locator("#stores-table")).to_contain_text("OPERA")

    corners = [(300, 150), (420, 160), (430, 280), (310, 290)]
    page.get_by_role("button", name="Draw a polygon").click()
    for x, y in corners:
        click_map(page, x, y)
    click_map(page, *corners[0])
    polygon = create_drawn(page, "NORD", "Gare du Nord kiosk")
    expect(page.locator("#stores-table")).to_contain_text("NORD")

    page.get_by_role("button", name="Draw a circle").click()
    click_map(page, 200, 250)
    click_map(page, 260, 250)
    circle = create_drawn(page, "EST", "Gare de l'Est kiosk")
    expect(page.locator("#stores-table")).to_contain_text("EST")

    saved = stores(api, shop)
    assert set(saved) == {"OPERA", "BASTILLE", "NORD", "EST"}
    assert saved["NORD"]["zone"] == polygon
    assert saved["EST"]["zone"] == circle
    # ... and they are where the manager clicked (within a pixel, ~2 m at this zoom), the
    # ring wound as RFC 7946 says (counterclockwise: the clicks went clockwise on screen).
    ring = saved["NORD"]["zone"]["coordinates"][0]
    assert len(ring) == len(corners) + 1 and ring[0] == ring[-1]
    assert sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in itertools.pairwise(ring)) > 0
    clicked = [latlon_at(page, x, y) for x, y in corners]
    clicked = clicked[:1] + clicked[:0:-1]
    for (lon, lat), (want_lat, want_lon) in zip(ring, clicked, strict=False):
        assert abs(lat - want_lat) < 3e-5 and abs(lon - want_lon) < 3e-5
    c_lat, c_lon = latlon_at(page, 200, 250)
    lon, lat = saved["EST"]["zone"]["center"]
    assert abs(lat - c_lat) < 3e-5 and abs(lon - c_lon) < 3e-5
    e_lat, e_lon = latlon_at(page, 260, 250)
    metres = math.hypot((e_lon - c_lon) * 111_195 * math.cos(math.radians(c_lat)),
                        (e_lat - c_lat) * 111_195)
    assert abs(saved["EST"]["zone"]["radius_m"] - metres) < 3

    shoot(page, "console-stores-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "console-stores-390")
    assert tab.errors == []


def test_a_self_intersecting_polygon_shows_the_error_on_the_map_and_writes_nothing(
        api: Api, tabs: OpenTab) -> None:
    shop = make_shop(api, stores=PARIS)
    page = tabs().page
    sign_in(page, shop.manager_email)
    page.goto(f"/console{VIEW}")
    expect(page.locator("#stores-table")).to_contain_text("OPERA")

    bow_tie = [(300, 150), (420, 290), (420, 150), (300, 290)]
    page.get_by_role("button", name="Draw a polygon").click()
    for x, y in bow_tie:
        click_map(page, x, y)
    click_map(page, *bow_tie[0])
    create_drawn(page, "KNOT", "Crossed")

    error = page.locator("#zone-error")
    expect(error).to_contain_text("Self-intersection")
    tooltip = page.locator(".leaflet-tooltip.zone-error")
    expect(tooltip.first).to_be_visible()
    expect(page.get_by_label("Zone (GeoJSON, [longitude, latitude])")).to_have_attribute(
        "aria-invalid", "true")
    # The pin sits where the rings cross: the middle of the bow tie.
    pin = page.locator(".error-pin").bounding_box()
    box = page.locator("#stores-map").bounding_box()
    assert pin is not None and box is not None
    assert abs(pin["x"] + pin["width"] / 2 - box["x"] - 360) < 4
    assert abs(pin["y"] + pin["height"] / 2 - box["y"] - 220) < 4
    shoot(page, "console-zone-error-1280")
    assert set(stores(api, shop)) == {"OPERA", "BASTILLE"}


def test_a_geojson_import_with_one_bad_feature_shows_it_and_writes_nothing(
        api: Api, tabs: OpenTab) -> None:
    shop = make_shop(api, stores=PARIS)
    page = tabs().page
    sign_in(page, shop.manager_email)
    expect(page.locator("#stores-table")).to_contain_text("OPERA")
    features = [
        {"type": "Feature", "properties": {"code": "OPERA", "name": "Opéra (new name)"},
         "geometry": {"type": "Circle", "center": [2.3316, 48.8708], "radius_m": 90}},
        {"type": "Feature", "properties": {"code": "LOUVRE", "name": "Louvre"},
         "geometry": {"type": "Polygon", "coordinates": [[[2.340, 48.861], [2.341, 48.862],
                                                           [2.341, 48.861], [2.340, 48.862],
                                                           [2.340, 48.861]]]}},
        {"type": "Feature", "properties": {"code": "MARAIS", "name": "Marais"},
         "geometry": {"type": "Circle", "center": [2.359, 48.857], "radius_m": 60}},
    ]
    body = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    page.locator("#import-file").set_input_files(
        files=[{"name": "paris.geojson", "mimeType": "application/geo+json", "buffer": body}])

    expect(page.locator("#import-errors")).to_contain_text("1 feature is refused")
    bad = page.locator("#import-table tr.bad")
    expect(bad).to_have_count(1)
    expect(bad).to_contain_text("LOUVRE")
    expect(bad).to_contain_text("Self-intersection")
    expect(page.locator("#import-table tr[data-index='0']")).to_contain_text("updates the store")
    expect(page.locator("#import-table tr[data-index='2']")).to_contain_text("new store")
    expect(page.locator("#import-confirm")).to_be_disabled()
    expect(page.locator(".leaflet-tooltip.zone-error")).to_have_count(1)
    shoot(page, "console-import-1280")
    saved = stores(api, shop)
    assert set(saved) == {"OPERA", "BASTILLE"}
    assert saved["OPERA"]["name"] == "Opéra"


def test_likely_swapped_coordinates_are_flagged_swapped_or_kept_on_the_managers_word(
        api: Api, tabs: OpenTab) -> None:
    shop = make_shop(api, stores=PARIS)
    swapped = {"type": "Circle", "center": [48.8809, 2.3553], "radius_m": 80}
    api.call("POST", f"/v1/programs/{shop.program_id}/stores", headers=shop.manager,
             expect=201, params={"confirm_location": "true"},
             json={"code": "GDN", "name": "Gare du Nord", "zone": swapped})
    tab = tabs()
    page = tab.page
    sign_in(page, shop.manager_email)
    expect(page.get_by_role("heading", name="Stores and zones")).to_be_visible()
    page.goto(f"/console{VIEW}")
    # The map and the list flag it, saying why (the API's rule: near the other stores once
    # swapped, thousands of km from them as given).
    flags = page.locator("#swap-list")
    expect(flags).to_contain_text("GDN")
    expect(flags).to_contain_text("km from the program's nearest other store")
    expect(page.locator(".warn-pin")).to_have_count(1)
    expect(page.locator("#stores-table tr", has_text="GDN")).to_contain_text("swapped?")
    flags.get_by_role("button", name="GDN").click()
    expect(page.locator("#swap-flag")).to_contain_text("2.1 km from OPERA")
    shoot(page, "console-swap-flag-1280")
    page.get_by_role("button", name="Swap latitude and longitude").click()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#swap-list")).to_have_count(0)
    assert stores(api, shop)["GDN"]["zone"]["center"] == [2.3553, 48.8809]

    # An import with a swapped feature: marked in the preview, swapped there, then imported.
    point = {"type": "Point", "coordinates": [48.8763, 2.3589]}
    body = json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": point,
         "properties": {"code": "EST", "name": "Gare de l'Est", "radius_m": 60}}]}).encode()
    page.locator("#import-file").set_input_files(
        files=[{"name": "est.geojson", "mimeType": "application/geo+json", "buffer": body}])
    expect(page.locator("#import-swaps")).to_contain_text("1 feature looks like latitude")
    expect(page.locator("#import-table tr.warn")).to_contain_text("EST")
    expect(page.locator("#import-confirm")).to_have_text(
        "Import 1 store, keeping the flagged locations")
    page.get_by_role("button", name="Swap latitude and longitude of 1 feature").click()
    expect(page.locator("#import-table tr.warn")).to_have_count(0)
    page.get_by_role("button", name="Import 1 store", exact=True).click()
    expect(page.locator("#stores-table")).to_contain_text("EST")
    assert stores(api, shop)["EST"]["zone"]["center"] == [2.3589, 48.8763]

    # Typed swapped in the editor: the API refuses it until the manager keeps it.
    page.locator("#stores-table").get_by_role("button", name="EST").click()
    zone = page.locator("textarea[name=zone]")
    zone.fill(json.dumps({"type": "Circle", "center": [48.8763, 2.3589], "radius_m": 60}))
    zone.dispatch_event("change")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#swap-problem")).to_contain_text("looks like latitude and longitude")
    assert stores(api, shop)["EST"]["zone"]["center"] == [2.3589, 48.8763]
    shoot(page, "console-swap-refused-1280")
    page.get_by_role("button", name="Keep this location").click()
    expect(page.locator("#swap-list")).to_contain_text("EST")
    assert stores(api, shop)["EST"]["zone"]["center"] == [48.8763, 2.3589]
    assert tab.errors == []
