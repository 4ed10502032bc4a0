"""Operations routes: liveness, readiness, metrics."""

from __future__ import annotations

from typing import Any

import asyncpg
import msgspec
from litestar import Controller, Response, get
from litestar.datastructures import State
from litestar.openapi import ResponseSpec

from api import metrics
from migrations.runner import MigrationError, pending


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    database: str
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
        except (OSError, asyncpg.PostgresError, TimeoutError, MigrationError) as exc:
            body = Readiness(status="unavailable", database=type(exc).__name__,
                             pending_migrations=[])
            return Response(body, status_code=503)
        ok = not missing
        return Response(Readiness(status="ok" if ok else "migrations pending", database="ok",
                                  pending_migrations=missing), status_code=200 if ok else 503)

    @get("/metrics", summary="Prometheus metrics", media_type="text/plain")
    async def metrics(self) -> Response[Any]:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)
