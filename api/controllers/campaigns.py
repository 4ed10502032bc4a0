"""Drive-to-store campaigns over HTTP: campaigns and their revisions, stats, the weather feed
(managers of the program, or admins), the member's offers, and the offers' webhook delivery.

Validation: a bad shape (type, range, unknown field) is a 400 naming the field; a rule that
needs more than one field or the program (see `geo/campaigns.py`) is a 422 naming the field.
A campaign of another program is a 404. Handlers are thin: decode, call one service.
"""

from __future__ import annotations

import csv
import io
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post, put
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter
from litestar.types import ControllerRouterHandler
from msgspec import UNSET, Meta, UnsetType

from api.auth.tokens import Caller, live_member, roles
from api.boundary import day
from api.controllers.admin import in_path_program
from api.errors import responses
from api.paging import Cursor, Limit, Page, decode_cursor, decode_number, page_of
from geo import campaigns_service as service
from geo.campaign_stats import CSV_HEADER, Stats, csv_rows
from geo.campaigns import (
    Audience,
    Campaign,
    CampaignChanges,
    CampaignRules,
    CampaignSpec,
    Caps,
    Condition,
    Context,
    OfferTemplate,
    Schedule,
    Status,
    Trigger,
)
from geo.campaigns_repo import Observation, Revision
from geo.eligibility import Weather
from wallet.kernel.text import Text
from wallet.offers.model import Offer, OfferStatus

log = logging.getLogger(__name__)

Name = Annotated[Text, Meta(min_length=1, max_length=200)]
StoreIds = Annotated[list[uuid.UUID], Meta(max_length=10_000,
                                           description="[] = every store of the program")]


class CampaignIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    store_ids: StoreIds = []
    trigger: Trigger
    schedule: Schedule
    audience: Audience = msgspec.field(default_factory=Audience)
    context: Context = msgspec.field(default_factory=Context)
    offer: OfferTemplate
    caps: Caps = msgspec.field(default_factory=Caps)

    def to_spec(self) -> CampaignSpec:
        return CampaignSpec(name=self.name, store_ids=tuple(self.store_ids), rules=CampaignRules(
            trigger=self.trigger, schedule=self.schedule, audience=self.audience,
            context=self.context, offer=self.offer, caps=self.caps))


class CampaignPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Each part given replaces the stored one whole; absent parts are kept. Allowed in any
    status; every change is recorded (GET .../revisions) and applies to offers issued from
    then on — offers already issued keep their title, body, reward and expiry."""

    name: Name | UnsetType = UNSET
    store_ids: StoreIds | UnsetType = UNSET
    trigger: Trigger | UnsetType = UNSET
    schedule: Schedule | UnsetType = UNSET
    audience: Audience | UnsetType = UNSET
    context: Context | UnsetType = UNSET
    offer: OfferTemplate | UnsetType = UNSET
    caps: Caps | UnsetType = UNSET

    def to_changes(self) -> CampaignChanges:
        return CampaignChanges(name=self.name, store_ids=self.store_ids, trigger=self.trigger,
                               schedule=self.schedule, audience=self.audience,
                               context=self.context, offer=self.offer, caps=self.caps)


class CampaignOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    program_id: uuid.UUID
    name: str
    status: Status
    store_ids: list[uuid.UUID]
    trigger: Trigger
    schedule: Schedule
    audience: Audience
    context: Context
    offer: OfferTemplate
    caps: Caps
    issued: int  # offers issued so far (what the budget counts)
    revision: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, c: Campaign) -> CampaignOut:
        r = c.rules
        return cls(id=c.id, program_id=c.program_id, name=c.name, status=c.status,
                   store_ids=list(c.store_ids), trigger=r.trigger, schedule=r.schedule,
                   audience=r.audience, context=r.context, offer=r.offer, caps=r.caps,
                   issued=c.issued, revision=c.revision, created_at=c.created_at,
                   updated_at=c.updated_at)


class ObservationIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    store_id: uuid.UUID
    temp_c: Annotated[float, Meta(ge=-100, le=70, description="degrees Celsius")]
    condition: Condition
    observed_at: Annotated[datetime, Meta(tz=True)]


class WeatherIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    observations: Annotated[list[ObservationIn], Meta(min_length=1, max_length=1000)]


class WeatherOut(msgspec.Struct, frozen=True, kw_only=True):
    stored: int  # observations kept (one older than the stored one is ignored)


class RevisionsPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Revision]
    next_cursor: str | None


StatusFilter = Annotated[Status | None, Parameter(description="only campaigns in this status")]
OfferStatusFilter = Annotated[OfferStatus | None, Parameter(description="only these offers")]


def _now() -> datetime:
    return datetime.now(UTC)


CSV = "text/csv"
FromDate = Annotated[date | None, QueryParameter(
    name="from", description="first local date (YYYY-MM-DD, the program's time zone); "
                              "default: the campaign's first day")]
ToDate = Annotated[date | None, Parameter(
    description="last local date, inclusive; default: the campaign's last day or today")]
STATS_DESCRIPTION = (
    "Figures of a period of local dates (`from`..`to`, inclusive, on the program's wall "
    "clock; by default the campaign's schedule up to today): offers issued, opened in the "
    "app, redeemed at the till and expired unredeemed in the period, `conversion_rate` = "
    "redeemed / issued, a `daily` series (one row per day, zeros included) and `by_store` "
    "with each store's code, name and visits that began inside the schedule. `deliveries` "
    "is the webhook outbox, all time. With `Accept: text/csv` (or `.../stats.csv`) the "
    "same figures come as CSV. A range longer than 1000 days, or `to` before `from`, is a "
    "422 naming the parameter.")


def csv_attachment(header: Sequence[str], rows: Iterable[Sequence[object]],
                   filename: str) -> Response[str]:
    """A CSV file (RFC 4180 line ends, UTF-8) the browser saves as `filename`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return Response(out.getvalue(), media_type=f"{CSV}; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _csv(figures: Stats, campaign_id: uuid.UUID) -> Response[str]:
    return csv_attachment(CSV_HEADER, csv_rows(figures),
                          f"campaign-{campaign_id}-{figures.from_}-{figures.to}.csv")


class CampaignsController(Controller):
    path = "/v1/programs/{program_id:uuid}/campaigns"
    tags = ["campaigns"]
    guards = [roles("admin", "manager"), in_path_program]

    @post("/", status_code=201, summary="Create a campaign (status draft)",
          responses=responses(403, 404, 422))
    async def create(self, state: State, principal: Caller, program_id: FromPath[uuid.UUID],
                     data: JSONBody[CampaignIn]) -> CampaignOut:
        return CampaignOut.of(await service.create(state.pool, program_id, data.to_spec(),
                                                   by=principal.sub, now=_now()))

    @get("/", summary="List the program's campaigns (oldest first)",
         responses=responses(403, 404))
    async def list_campaigns(self, state: State, program_id: FromPath[uuid.UUID],
                             status: StatusFilter = None, limit: Limit = 50,
                             cursor: Cursor = None) -> Page[CampaignOut]:
        after = decode_cursor(cursor)
        rows = await service.page(state.pool, program_id, status=status, limit=limit + 1,
                                  after=(after.at, after.id) if after else None)
        last = rows[limit - 1] if len(rows) > limit else None
        return page_of([CampaignOut.of(c) for c in rows], limit,
                       (last.created_at, last.id) if last else None)

    @get("/{campaign_id:uuid}", summary="Read a campaign", responses=responses(403, 404))
    async def read(self, state: State, program_id: FromPath[uuid.UUID],
                   campaign_id: FromPath[uuid.UUID]) -> CampaignOut:
        return CampaignOut.of(await service.get(state.pool, program_id, campaign_id))

    @patch("/{campaign_id:uuid}", summary="Change a campaign (recorded as a revision)",
           responses=responses(403, 404, 422))
    async def change(self, state: State, principal: Caller, program_id: FromPath[uuid.UUID],
                     campaign_id: FromPath[uuid.UUID],
                     data: JSONBody[CampaignPatch]) -> CampaignOut:
        return CampaignOut.of(await service.update(state.pool, program_id, campaign_id,
                                                   data.to_changes(), by=principal.sub,
                                                   now=_now()))

    @post("/{campaign_id:uuid}/activate", status_code=200,
          summary="Activate a draft or paused campaign", responses=responses(403, 404, 422))
    async def activate(self, state: State, principal: Caller, program_id: FromPath[uuid.UUID],
                       campaign_id: FromPath[uuid.UUID]) -> CampaignOut:
        return CampaignOut.of(await service.transition(
            state.pool, program_id, campaign_id, "activate", by=principal.sub, now=_now()))

    @post("/{campaign_id:uuid}/pause", status_code=200, summary="Pause an active campaign",
          responses=responses(403, 404, 409))
    async def pause(self, state: State, principal: Caller, program_id: FromPath[uuid.UUID],
                    campaign_id: FromPath[uuid.UUID]) -> CampaignOut:
        return CampaignOut.of(await service.transition(
            state.pool, program_id, campaign_id, "pause", by=principal.sub, now=_now()))

    @get("/{campaign_id:uuid}/stats",
         summary="What the campaign achieved: offers issued, opened, redeemed, expired; per "
                 "day and per store (with visits); webhook deliveries",
         description=STATS_DESCRIPTION, responses=responses(403, 404, 422))
    async def stats(self, request: Request[Any, Any, Any], state: State, *,
                    program_id: FromPath[uuid.UUID], campaign_id: FromPath[uuid.UUID],
                    from_: FromDate = None, to: ToDate = None) -> Response[Any]:
        figures = await service.stats(state.pool, program_id, campaign_id,
                                      first=day(from_, "from"), last=day(to, "to"), now=_now())
        if request.accept.best_match([MediaType.JSON, CSV], default=MediaType.JSON) == CSV:
            return _csv(figures, campaign_id)
        return Response(figures)

    @get("/{campaign_id:uuid}/stats.csv", media_type=CSV,
         summary="The campaign's figures as CSV (a spreadsheet)",
         description="The figures of `GET .../stats` as one table: a `total` row, a `day` row "
                     "per date and a `store` row per store (columns: " + ", ".join(CSV_HEADER)
                     + "). Same `from` and `to`.",
         responses=responses(403, 404, 422))
    async def stats_csv(self, state: State, program_id: FromPath[uuid.UUID],
                        campaign_id: FromPath[uuid.UUID], from_: FromDate = None,
                        to: ToDate = None) -> Response[str]:
        return _csv(await service.stats(state.pool, program_id, campaign_id,
                                        first=day(from_, "from"), last=day(to, "to"),
                                        now=_now()), campaign_id)

    @get("/{campaign_id:uuid}/revisions",
         summary="Every change of the campaign, newest first: who, when, before, after",
         responses=responses(403, 404))
    async def revisions(self, state: State, program_id: FromPath[uuid.UUID],
                        campaign_id: FromPath[uuid.UUID], limit: Limit = 50,
                        cursor: Cursor = None) -> RevisionsPage:
        before = decode_number(cursor)
        rows = await service.revisions(state.pool, program_id, campaign_id, before=before,
                                       limit=limit + 1)
        more = len(rows) > limit
        return RevisionsPage(items=rows[:limit],
                             next_cursor=str(rows[limit - 1].revision) if more else None)


class WeatherController(Controller):
    path = "/v1/programs/{program_id:uuid}/weather"
    tags = ["campaigns"]
    guards = [roles("admin", "manager"), in_path_program]

    @put("/", status_code=200,
         summary="Feed weather observations (the latest per store is kept)",
         description="An observation older than the configured `weather_max_age_s` satisfies "
                     "no campaign weather condition.",
         responses=responses(403, 404, 422))
    async def put_weather(self, state: State, program_id: FromPath[uuid.UUID],
                          data: JSONBody[WeatherIn]) -> WeatherOut:
        obs = [Observation(store_id=o.store_id, weather=Weather(
            temp_c=o.temp_c, condition=o.condition, observed_at=o.observed_at))
            for o in data.observations]
        return WeatherOut(stored=await service.put_weather(state.pool, program_id, obs,
                                                           now=_now()))


class MyOffersController(Controller):
    path = "/v1/me/offers"
    tags = ["members"]
    guards = [roles("member"), live_member]  # an erased member's token is 401 (#6)

    @get("/", summary="My offers, newest first (status computed now)",
         responses=responses(403))
    async def my_offers(self, state: State, principal: Caller,
                        status: OfferStatusFilter = None, limit: Limit = 50,
                        cursor: Cursor = None) -> Page[Offer]:
        before = decode_cursor(cursor)
        rows = await service.member_offers(state.pool, principal.sub, status=status,
                                           now=_now(), limit=limit + 1,
                                           before=(before.at, before.id) if before else None)
        last = rows[limit - 1] if len(rows) > limit else None
        return page_of(rows, limit,
                       (last.issued_at, last.id) if last else None)

    @post("/{offer_id:uuid}/opened", status_code=204,
          summary="Mark my offer opened (the app showed it to me)",
          description="Idempotent: the first opening is kept and counted once in the "
                      "campaign's `opened` figure; repeating it changes nothing (204 again). "
                      "An offer that is not mine is a 404. No body.",
          responses=responses(403, 404))
    async def opened(self, state: State, principal: Caller,
                     offer_id: FromPath[uuid.UUID]) -> None:
        await service.mark_opened(state.pool, principal.sub, offer_id, now=_now())


# --- webhook delivery ---------------------------------------------------------------------------


ROUTES: list[ControllerRouterHandler] = [CampaignsController, WeatherController,
                                         MyOffersController]
