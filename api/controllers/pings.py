"""`POST /v1/me/pings`: a member's location pings become visits, and visits offers.

Consent-gated (403 `/problems/consent-required` without current `location_offers` consent,
and nothing of the batch is kept); idempotent with an optional `Idempotency-Key`. Offers the
batch earns (`geo/issuance.py`) are issued in the same transaction and returned.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Litestar, Request, Response, post
from litestar.datastructures import State
from litestar.params import HeaderParameter, JSONBody
from litestar.types import ControllerRouterHandler
from msgspec import Meta

from api import metrics
from api.auth.tokens import Caller, roles
from api.config import Settings
from api.errors import responses
from api.idempotency import key_for, run_idempotent
from geo.issuance import CampaignCache, IssuedOffer, IssueSettings, issue_for_batch
from geo.pings import IngestResult, Ping, PingRules, ingest
from geo.registry import ZoneRegistry
from wallet.kernel.db import Conn

OptionalIdempotencyKey = Annotated[str | None, HeaderParameter(
    name="Idempotency-Key", min_length=1, max_length=200, required=False,
    description="Optional: a retried batch with the same key and body is not processed twice.")]


class PingIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One GPS fix. Out-of-range coordinates are not refused but ignored (and counted), like
    every other unusable ping, so one bad fix does not lose the rest of the batch."""

    lat: Annotated[float, Meta(description="degrees, WGS 84")]
    lon: Annotated[float, Meta(description="degrees, WGS 84")]
    accuracy_m: Annotated[float, Meta(ge=0, le=100_000, description="1-sigma radius, metres")]
    at: Annotated[datetime, Meta(tz=True, description="RFC 3339 with offset")]


class PingBatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pings: Annotated[list[PingIn], Meta(min_length=1, max_length=100)]


class VisitOut(msgspec.Struct, frozen=True, kw_only=True):
    store_id: uuid.UUID
    event: Literal["enter", "dwell", "exit"]
    at: datetime


class RewardOut(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["bonus_points", "points_multiplier", "percent_off", "amount_off"]
    value: int


class OfferOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    campaign_id: uuid.UUID
    store_id: uuid.UUID
    title: str
    body: str
    reward: RewardOut
    issued_at: datetime
    expires_at: datetime
    status: Literal["active", "redeemed", "expired"]


class PingsOut(msgspec.Struct, frozen=True, kw_only=True):
    visits: list[VisitOut]
    offers: list[OfferOut]
    accepted: int
    ignored: dict[str, int]  # reason -> count of pings not used


def ping_rules(settings: Settings) -> PingRules:
    return PingRules(max_age_s=settings.ping_max_age_s, max_future_s=settings.ping_max_future_s,
                     max_accuracy_m=settings.ping_max_accuracy_m,
                     max_speed_mps=settings.ping_max_speed_mps,
                     exit_after_s=settings.visit_exit_after_s,
                     dwell_s=settings.visit_default_dwell_s,
                     lost_after_s=settings.visit_lost_after_s,
                     raw_retention_s=settings.raw_ping_retention_s)


def offer_out(o: IssuedOffer) -> OfferOut:
    return OfferOut(id=o.id, campaign_id=o.campaign_id, store_id=o.store_id, title=o.title,
                    body=o.body, reward=RewardOut(kind=o.reward.kind, value=o.reward.value),
                    issued_at=o.issued_at, expires_at=o.expires_at, status="active")


def _out(result: IngestResult, offers: list[OfferOut]) -> PingsOut:
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
    async def pings(self, request: Request[Any, Any, Any], state: State, principal: Caller,
                    data: JSONBody[PingBatch],
                    idempotency_key: OptionalIdempotencyKey = None) -> Response[PingsOut]:
        settings: Settings = state.settings
        registry: ZoneRegistry = state.zones
        campaigns: CampaignCache = state.campaigns
        rules = ping_rules(settings)
        batch = [Ping(lat=p.lat, lon=p.lon, accuracy_m=p.accuracy_m, at=p.at)
                 for p in data.pings]

        issuing = IssueSettings(weather_max_age_s=settings.weather_max_age_s,
                                push_enabled=bool(settings.webhook_url))

        async def work(conn: Conn) -> PingsOut:
            now = datetime.now(UTC)
            result = await ingest(conn, registry, principal.sub, batch, now=now, rules=rules)
            offers = []
            if result.matched or result.events:  # in or near a store: offers may be due
                offers = await issue_for_batch(
                    conn, principal.sub, result.program_id, result.events, now=now,
                    settings=issuing, cache=campaigns,
                    campaigns_version=result.campaigns_version)
            _count(result, len(batch))
            metrics.OFFERS_ISSUED.inc(len(offers))
            return _out(result, [offer_out(o) for o in offers])

        if idempotency_key is None:
            async with state.pool.acquire() as conn, conn.transaction():
                return Response(await work(conn))
        key = key_for(principal.sub, idempotency_key, method="POST", path=request.url.path,
                      body=data)
        outcome = await run_idempotent(state.pool, key, work, PingsOut)
        return Response(outcome.result, status_code=outcome.status)


async def start_zone_registry(app: Litestar) -> Any:
    """Lifespan hook: one zone registry per worker, listening for zone changes."""
    registry = ZoneRegistry(app.state.pool)
    settings: Settings = app.state.settings
    await registry.start(settings.database_url)
    app.state.zones = registry
    return registry.stop


async def start_campaign_cache(app: Litestar) -> None:
    """Lifespan hook: one cache of active campaigns per worker (see `geo.issuance`)."""
    app.state.campaigns = CampaignCache()


ROUTES: list[ControllerRouterHandler] = [PingsController]
STARTUP = [start_zone_registry, start_campaign_cache]
