"""The examples' data (see `api.examples`): one entry per operation, keyed by (METHOD, path
template), and the `Problem` examples. Ids are made up but well-formed; a coffee chain in
Paris, prices in EUR minor units."""

from __future__ import annotations

from typing import Any

import msgspec


class Op(msgspec.Struct, frozen=True, kw_only=True):
    description: str = ""
    request: Any = None
    responses: dict[int, Any] = {}


PROBLEM_EXAMPLES: list[dict[str, Any]] = [
    {"type": "/problems/validation", "title": "Invalid request", "status": 400,
     "detail": "zone.radius_m: Expected `float`, got `str`",
     "errors": [{"field": "zone.radius_m", "message": "Expected `float`, got `str`",
                 "source": "body"}]},
    {"type": "/problems/insufficient-balance", "title": "Insufficient balance", "status": 422,
     "detail": "the member has 1200 points; 2000 were asked for", "field": "redeem.points"},
    {"type": "/problems/consent-required", "title": "Consent required", "status": 403,
     "detail": "no current consent for location_offers"},
]

OPERATIONS: dict[tuple[str, str], Op] = {}
