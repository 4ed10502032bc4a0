"""The examples' data (see `api.examples`): `openapi_examples.json` beside this module holds
one entry per operation, keyed by `"METHOD /path/template"`: its `description` (when the
handler has none), a `request` example and `responses` examples by status. They were
recorded from a real scenario run through the API (a coffee chain in Paris, amounts in EUR
minor units; tokens shortened), so they have the exact shape of what the API answers.
`PROBLEM_EXAMPLES` are the `Problem` schema's."""

from __future__ import annotations

from pathlib import Path
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

def _load() -> dict[tuple[str, str], Op]:
    raw = msgspec.json.decode((Path(__file__).parent / "openapi_examples.json").read_bytes(),
                              type=dict[str, _Raw])
    out: dict[tuple[str, str], Op] = {}
    for key, entry in raw.items():
        method, path = key.split(" ", 1)
        out[(method, path)] = Op(description=entry.description, request=entry.request,
                                 responses={int(s): v for s, v in entry.responses.items()})
    return out


class _Raw(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    description: str = ""
    request: Any = None
    responses: dict[str, Any] = {}


OPERATIONS: dict[tuple[str, str], Op] = _load()
