"""Operations routes: liveness, readiness, metrics."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec

from api import metrics
from geo import operations_repo
from migrations.runner import MigrationError, pending

log = logging.getLogger(__name__)

METRICS_DESCRIPTION = (
    "Prometheus text format, every worker's figures aggregated: `http_requests_total` and "
    "`http_request_duration_seconds` by route template and status (a 401 from the token "
    "check counts as 401); pings received, matched and ignored, visit events, offers "
    "issued, webhook deliveries; `pos_purchases_total`; `pin_lockouts_total` and "
    "`pin_locked_members`; the database pool (`db_pool_connections{state=in_use|idle}`, "
    "`db_pool_waiting`, `db_pool_max_connections`); the offer outbox "
    "(`offer_outbox_backlog`, `offer_outbox_oldest_age_seconds`); each background job and "
    "loop (`background_job_runs_total`, `background_job_failures_total`, "
    "`background_job_duration_seconds`, `background_job_last_success_timestamp_seconds`, "
    "label `job`).")


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    """Terse on purpose: it is public, so it names no exception, host or version."""

    status: Literal["ok", "migrations pending", "unavailable"]
    database: Literal["ok", "unreachable"]
    pending_migrations: list[str]


class OpsController(Controller):
    tags = ["operations"]
    opt = {"exclude_from_auth": True}

    @get("/health", summary="Liveness: the process answers")
    async def health(self) -> Health:
        return Health(status="ok")

    @get("/ready", summary="Readiness: database reachable and migrations current",
         responses={503: ResponseSpec(data_container=Readiness, description="Not ready")})
    async def ready(self, state: State) -> Response[Readiness]:
        pool: asyncpg.Pool = state.pool
        try:
            async with pool.acquire(timeout=2) as conn:
                missing = await pending(conn)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError,
                MigrationError):
            body = Readiness(status="unavailable", database="unreachable",
                             pending_migrations=[])
            return Response(body, status_code=503, headers={"Retry-After": "1"})
        ok = not missing
        return Response(Readiness(status="ok" if ok else "migrations pending", database="ok",
                                  pending_migrations=missing), status_code=200 if ok else 503)

    @get("/metrics", summary="Prometheus metrics", media_type="text/plain",
         description=METRICS_DESCRIPTION)
    async def metrics(self, state: State) -> Response[Any]:
        metrics.sample_pool(state.pool)  # before this request takes a connection itself
        try:
            f = await operations_repo.figures(state.pool, now=datetime.now(UTC))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            log.warning("metrics: database figures unavailable", exc_info=True)
        else:
            metrics.set_database_figures(backlog=f.outbox_backlog,
                                         oldest_age_s=f.outbox_oldest_age_s,
                                         pin_locked=f.pin_locked)
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)
