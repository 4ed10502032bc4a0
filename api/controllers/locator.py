"""The member's store locator: `GET /v1/me/stores?near=lon,lat&limit=N`, the program's stores
nearest first with their distance in metres (see `geo/locator.py`)."""

from __future__ import annotations

import math
from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.exceptions import ValidationException
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from api.auth.tokens import Caller, live_member, roles
from api.errors import responses
from geo.locator_service import NearStore, nearest_stores

Near = Annotated[str, Parameter(
    description="where the member is: `lon,lat` in degrees (WGS 84), e.g. `2.3522,48.8566`",
    max_length=64)]
NearLimit = Annotated[int, Parameter(ge=1, le=500,
                                     description="how many stores (default 50, max 500)")]


class NearStores(msgspec.Struct, frozen=True, kw_only=True):
    items: list[NearStore]


def parse_near(near: str) -> tuple[float, float]:
    """`lon,lat` → (lon, lat); anything else is a 400 naming `near`."""
    parts = near.split(",")
    try:
        lon, lat = (float(p) for p in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        lon = lat = math.nan
    if not (math.isfinite(lon) and math.isfinite(lat)):
        problem = "expected `lon,lat`, two numbers in degrees"
    elif not (-180 <= lon <= 180 and -90 <= lat <= 90):
        problem = "longitude must be in [-180, 180] and latitude in [-90, 90] (`lon,lat`)"
    else:
        return (lon, lat)
    raise ValidationException(detail=f"near: {problem}", extra=[
        {"key": "near", "message": problem, "source": "query"}])


class MyStoresController(Controller):
    path = "/v1/me/stores"
    tags = ["members"]
    guards = [roles("member"), live_member]

    @get("/", summary="Stores near me, nearest first (the store locator)",
         description="The program's stores ordered by great-circle distance from `near` "
                     "(`lon,lat`), with `distance_m` in whole metres to the store's location "
                     "(a circle zone's centre, else its zone's bounding-box centre) and that "
                     "`location` as `[lon, lat]`. A malformed or out-of-range `near` is a 400 "
                     "naming it. Nothing about the member's position is stored or logged.",
         responses=responses(403))
    async def near_me(self, state: State, principal: Caller, near: Near,
                      limit: NearLimit = 50) -> NearStores:
        lon, lat = parse_near(near)
        assert principal.program_id is not None  # a member always belongs to a program
        return NearStores(items=await nearest_stores(
            state.pool, state.locators, principal.program_id, lon=lon, lat=lat, limit=limit))


ROUTES: list[ControllerRouterHandler] = [MyStoresController]
