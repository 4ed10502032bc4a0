"""What the whole program's campaigns achieved (managers of the program, or admins): the
figures of `GET .../campaigns/{id}/stats` for every campaign together, per store and per
campaign, over a range of local dates, as JSON or CSV. Thin: one service call."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import State
from litestar.enums import MediaType
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import FromPath, Parameter, QueryParameter
from litestar.types import ControllerRouterHandler

from api.auth.tokens import roles
from api.boundary import day
from api.controllers.admin import in_path_program
from api.controllers.campaigns import CSV, csv_attachment
from api.errors import responses
from geo import campaigns_service as service
from geo.campaign_stats import PROGRAM_CSV_HEADER, PROGRAM_DAYS, ProgramStats, program_csv_rows

FromDate = Annotated[date | None, QueryParameter(
    name="from", description="first local date (YYYY-MM-DD, the program's time zone); "
                              f"default: {PROGRAM_DAYS} days ending on `to`")]
ToDate = Annotated[date | None, Parameter(
    description="last local date, inclusive; default: today, or the 30th day from `from`")]

DESCRIPTION = (
    "Every campaign of the program together over a period of local dates (`from`..`to`, "
    "inclusive, on the program's wall clock; by default the last 30 days): offers issued, "
    "opened in the app, redeemed at the till and expired unredeemed in the period, "
    "`conversion_rate` = redeemed / issued, a `daily` series (one row per day, zeros "
    "included), `by_store` (every live store, and any deleted one with figures, with its "
    "visits of the period) and `by_campaign` (every campaign but drafts). With `Accept: "
    "text/csv` (or `.../stats.csv`) the same figures come as CSV. A range longer than 1000 "
    "days, or `to` before `from`, is a 422 naming the parameter.")

_PROGRAM = "6f1c2a0e-3b7d-4e51-9a2c-1d0e8f7a6b5c"
_STORE = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
_CAMPAIGN = "8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d"
EXAMPLE = {
    "from": "2026-06-01", "to": "2026-06-03", "timezone": "Europe/Paris", "issued": 42,
    "opened": 30, "redeemed": 11, "expired": 9, "conversion_rate": 0.2619,
    "by_store": [{"store_id": _STORE, "store_code": "OPERA", "store_name": "Opéra",
                  "visits": 318, "issued": 42, "opened": 30, "redeemed": 11}],
    "by_campaign": [{"campaign_id": _CAMPAIGN, "name": "Hot day gelato", "status": "active",
                     "issued": 42, "opened": 30, "redeemed": 11, "expired": 9,
                     "conversion_rate": 0.2619}],
    "daily": [{"date": "2026-06-01", "issued": 12, "opened": 9, "redeemed": 3},
              {"date": "2026-06-02", "issued": 0, "opened": 1, "redeemed": 1},
              {"date": "2026-06-03", "issued": 30, "opened": 20, "redeemed": 7}]}
CSV_EXAMPLE = (",".join(PROGRAM_CSV_HEADER) + "\r\n"
               "total,2026-06-01/2026-06-03,,,,,,318,42,30,11,9,0.2619\r\n"
               "day,2026-06-01,,,,,,,12,9,3,,0.25\r\n"
               f"store,,{_STORE},OPERA,Opéra,,,318,42,30,11,,0.2619\r\n"
               f"campaign,,,,,{_CAMPAIGN},Hot day gelato,,42,30,11,9,0.2619\r\n")


def _csv(figures: ProgramStats, program_id: uuid.UUID) -> Response[str]:
    return csv_attachment(PROGRAM_CSV_HEADER, program_csv_rows(figures),
                          f"program-{program_id}-{figures.from_}-{figures.to}.csv")


def _now() -> datetime:
    return datetime.now(UTC)


class ProgramStatsController(Controller):
    path = "/v1/programs/{program_id:uuid}"
    tags = ["campaigns"]
    guards = [roles("admin", "manager"), in_path_program]

    @get("/stats", summary="What all the program's campaigns achieved: offers issued, opened, "
                           "redeemed, expired; per day, per store (with visits), per campaign",
         description=DESCRIPTION,
         responses={**responses(403, 404, 422), 200: ResponseSpec(
             data_container=ProgramStats, description="The program's figures",
             examples=[Example(summary="Three days of one campaign", value=EXAMPLE)])})
    async def stats(self, request: Request[Any, Any, Any], state: State, *,
                    program_id: FromPath[uuid.UUID], from_: FromDate = None,
                    to: ToDate = None) -> Response[Any]:
        figures = await service.program_stats(state.pool, program_id,
                                              first=day(from_, "from"), last=day(to, "to"),
                                              now=_now())
        if request.accept.best_match([MediaType.JSON, CSV], default=MediaType.JSON) == CSV:
            return _csv(figures, program_id)
        return Response(figures)

    @get("/stats.csv", media_type=CSV, summary="The program's figures as CSV (a spreadsheet)",
         description="The figures of `GET .../stats` as one table: a `total` row, a `day` row "
                     "per date, a `store` row per store and a `campaign` row per campaign "
                     "(columns: " + ", ".join(PROGRAM_CSV_HEADER) + "). Same `from` and `to`.",
         responses={**responses(403, 404, 422), 200: ResponseSpec(
             data_container=str, media_type=CSV, generate_examples=False,
             description="The figures as CSV (an attachment)",
             examples=[Example(summary="Three days of one campaign", value=CSV_EXAMPLE)])})
    async def stats_csv(self, state: State, program_id: FromPath[uuid.UUID],
                        from_: FromDate = None, to: ToDate = None) -> Response[str]:
        return _csv(await service.program_stats(state.pool, program_id,
                                                first=day(from_, "from"), last=day(to, "to"),
                                                now=_now()), program_id)


ROUTES: list[ControllerRouterHandler] = [ProgramStatsController]
