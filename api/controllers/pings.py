"""`POST /v1/me/pings`: a member's location pings become visits, and visits offers.

Consent-gated (403 `/problems/consent-required` without current `location_offers` consent,
and nothing of the batch is kept); idempotent with an optional `Idempotency-Key`. Offers the
batch earns (`geo/issuance.py`) are issued in the same transaction and returned.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, post
from litestar.params import JSONBody
from litestar.types import ControllerRouterHandler
from msgspec import Meta

from api import metrics
from api.auth.tokens import caller_of, roles
from api.boundary import invalid
from api.config import Settings, issue_settings, ping_rules
from api.errors import responses
from api.idempotency import OptionalIdempotencyKey, request_key
from geo.pings import IngestResult, Ping
from geo.pings_service import ingest_batch
from wallet.offers.model import Offer

# A fix no phone can have taken: before 2000 (a clock reset to its epoch) or more than a day
# ahead (further than any time zone mistake). A 400 naming `pings[i].at`. Fixes a little
# ahead or too old are possible and answer 200, counted in `ignored` ("future", "too_old").
EARLIEST_PING = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_PING_AHEAD = timedelta(days=1)


class PingIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One GPS fix. Coordinates off the Earth and impossible times are a 400 naming the
    field (nothing of the batch is kept); a fix that is possible but unusable (inaccurate,
    stale, too old, a little early, too fast) is ignored and counted by reason, so one bad
    fix does not lose the rest of the batch."""

    lat: Annotated[float, Meta(ge=-90, le=90, description="degrees, WGS 84")]
    lon: Annotated[float, Meta(ge=-180, le=180, description="degrees, WGS 84")]
    accuracy_m: Annotated[float, Meta(ge=0, le=100_000, description="1-sigma radius, metres")]
    at: Annotated[datetime, Meta(tz=True, description=(
        "RFC 3339 with offset; from 2000-01-01 to a day ahead of the server's clock"))]


class PingBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pings: Annotated[list[PingIn], Meta(min_length=1, max_length=100)]


class VisitOut(msgspec.Struct, frozen=True, kw_only=True):
    store_id: uuid.UUID
    event: Literal["enter", "dwell", "exit"]
    at: datetime


class PingsOut(msgspec.Struct, frozen=True, kw_only=True):
    visits: list[VisitOut]
    offers: list[Offer]
    accepted: int
    ignored: dict[str, int]  # reason -> count of pings not used


def _refuse_impossible_times(pings: Sequence[PingIn], now: datetime) -> None:
    """A 400 naming the first ping whose time no phone can have: see `EARLIEST_PING`."""
    for i, p in enumerate(pings):
        if not EARLIEST_PING <= p.at <= now + LATEST_PING_AHEAD:
            raise invalid(f"pings[{i}].at", "a fix taken from 2000-01-01 to a day ahead of "
                          f"the server's clock ({now.isoformat(timespec='seconds')}) is expected")


def _out(result: IngestResult, offers: list[Offer]) -> PingsOut:
    return PingsOut(
        visits=[VisitOut(store_id=e.store_id, event=e.event, at=e.at)  # type: ignore[arg-type]
                for e in result.events],
        offers=offers, accepted=result.accepted, ignored=result.ignored)


def _count(result: IngestResult, received: int) -> None:
    metrics.PINGS_RECEIVED.inc(received)
    metrics.PINGS_MATCHED.inc(result.matched)
    for reason, n in result.ignored.items():
        metrics.PINGS_IGNORED.labels(reason).inc(n)
    for e in result.events:
        metrics.VISIT_EVENTS.labels(e.event).inc()


class PingsController(Controller):
    path = "/v1/me/pings"
    tags = ["members"]
    guards = [roles("member")]

    @post("", status_code=200, summary="Send a batch of location pings",
          responses=responses(403, 404, 409))
    async def pings(self, request: Request[Any, Any, Any], data: JSONBody[PingBatch],
                    idempotency_key: OptionalIdempotencyKey = None) -> Response[PingsOut]:
        # The caller and the app's state straight from the request: injected as parameters
        # (`principal: Caller`, `state: State`) they cost a dependency resolution and a copy
        # of the state per batch (README Performance, "HTTP layer, profiled").
        principal, state = caller_of(request), request.app.state
        settings: Settings = state.settings
        now = datetime.now(UTC)
        _refuse_impossible_times(data.pings, now)
        batch = [Ping(lat=p.lat, lon=p.lon, accuracy_m=p.accuracy_m, at=p.at)
                 for p in data.pings]
        outcome = await ingest_batch(
            state.pool, principal.sub, batch, registry=state.zones, campaigns=state.campaigns,
            rules=ping_rules(settings), issuing=issue_settings(settings), now=now,
            program_id=principal.program_id if settings.pings_one_trip else None,
            memory=state.pings_memory if settings.pings_one_trip else None,
            idem=None if idempotency_key is None
            else request_key(request, principal.sub, idempotency_key, data))
        done = outcome.result
        if not outcome.replayed:
            _count(done.ingest, len(batch))
            metrics.OFFERS_ISSUED.inc(len(done.offers))
        return Response(_out(done.ingest, done.offers), status_code=outcome.status)


ROUTES: list[ControllerRouterHandler] = [PingsController]
