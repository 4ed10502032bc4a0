"""The application factory: `create_app(settings)` wires configuration, the database pool,
tokens, error handling, metrics and every area's routes. Nothing is read at import time."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ControllerRouterHandler, Middleware

from api import docs, web
from api.auth import keys
from api.auth.browser import csrf_key
from api.auth.tokens import JWTAuthMiddleware, TokenService, provide_principal
from api.boundary import BoundaryRequest
from api.config import Settings, passes_setup
from api.controllers.auth import AuthController
from api.controllers.ops import OpsController
from api.docs import ExampleJson, OfflineSwagger
from api.errors import EXCEPTION_HANDLERS
from api.lifespan import HOOKS
from api.metrics import MetricsMiddleware
from api.schema_plugin import StrictStructSchema
from api.strict_query import StrictQueryMiddleware, accepted_query_names
from wallet.kernel.db import keep_session
from wallet.kernel.hashing import Hasher

log = logging.getLogger("api")

def _routes() -> list[ControllerRouterHandler]:
    from api.controllers import (
        admin,
        campaigns,
        console,
        index,
        locator,
        me_wallet,
        members,
        passes,
        passkit,
        pings,
        pos,
        privacy,
        program_stats,
        rewards,
        stores,
        till_reads,
    )

    routes: list[ControllerRouterHandler] = [OpsController, AuthController]
    for area in (admin, stores, members, me_wallet, pings, pos, campaigns, privacy, console,
                 till_reads, locator, rewards, index, program_stats,
                 passes, passkit):
        routes.extend(area.ROUTES)
    return routes


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the ASGI app. `settings` default to `Settings.from_env()`."""
    settings = settings or Settings.from_env()
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set (use `loyalty serve`, which starts one)")
    if settings.webhook_url and len(settings.webhook_secret) < 16:
        raise RuntimeError("LOYALTY_WEBHOOK_URL needs LOYALTY_WEBHOOK_SECRET (16+ characters) "
                           "to sign deliveries")
    routes = _routes()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # UTC as a connection parameter, not a SET: no session state on pooled connections.
        pool = await asyncpg.create_pool(
            settings.database_url, min_size=min(settings.db_pool_min, settings.db_pool_max),
            max_size=settings.db_pool_max, server_settings={"timezone": "UTC"},
            reset=keep_session)
        app.state.pool = pool
        stops: list[Callable[[], Awaitable[None]]] = []
        try:
            for hook in HOOKS:
                stop = await hook(app)
                if stop is not None:
                    stops.append(stop)
            yield
        finally:
            for stop in reversed(stops):
                await stop()
            await pool.close()

    hasher = Hasher(memory_kib=settings.password_memory_kib,
                    time_cost=settings.password_time_cost)
    tokens = TokenService(keys.load_or_create(settings.keys_file), issuer=settings.jwt_issuer,
                          access_ttl_s=settings.access_token_ttl_s,
                          refresh_ttl_s=settings.refresh_token_ttl_s,
                          card_ttl_s=settings.qr_token_ttl_s)
    console_csp = web.content_security_policy(settings.console_tile_url)
    state: dict[str, Any] = {"settings": settings, "tokens": tokens, "hasher": hasher,
                             "console_pages": web.PageTemplates(), "console_csp": console_csp,
                             "csrf_key": csrf_key(tokens), "passes": passes_setup(settings)}
    openapi = OpenAPIConfig(
        title="Loyalty wallet and geofencing API", version="1.0.0",
        path="/schema", render_plugins=[OfflineSwagger(), ExampleJson()],
        components=Components(security_schemes={
            "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}),
        security=[{"bearer": []}],
    )
    app = Litestar(
        route_handlers=[*routes, *web.static_routers(console_csp), docs.assets_router()],
        lifespan=[lifespan],
        state=State(state),
        dependencies={"principal": Provide(provide_principal)},
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[MetricsMiddleware, *_credential_rate_limit(settings), DefineMiddleware(
            JWTAuthMiddleware,  # PassKit calls carry their own `ApplePass` token
            exclude=["^/schema", "^/health", "^/ready", "^/metrics", "^/v1/passkit/"]),
            StrictQueryMiddleware],
        openapi_config=openapi,
        plugins=[StrictStructSchema()],
        request_max_body_size=settings.max_body_bytes,
        request_class=BoundaryRequest,
        debug=False,
    )
    app.state.query_names = accepted_query_names(app)
    return app


_CREDENTIAL_PATHS = {
    # logins and sign-ups
    "POST": re.compile(
        r"^/(v1/(auth/token|programs/[^/]+/members)|console/session|till/session)/?$"),
    # actions re-authenticated with the password (and the PIN): erasure, a PIN change
    "DELETE": re.compile(r"^/v1/me/?$"),
    "PUT": re.compile(r"^/v1/me/pin/?$"),
}


async def _is_credential_attempt(request: Request[Any, Any, Any]) -> bool:
    """Async on purpose: Litestar runs a synchronous check in a worker thread, on every
    request (a ping batch spent about a tenth of its server CPU on that hop). The path is
    read from the scope as `request.url.path` would build it, without building the URL."""
    scope = request.scope
    paths = _CREDENTIAL_PATHS.get(scope["method"])
    return paths is not None and bool(
        paths.match(scope.get("root_path", "") + scope["path"]))


def _credential_rate_limit(settings: Settings) -> list[Middleware]:
    """Password guessing and sign-up floods: a per-client-address limit on logins, sign-ups
    and the actions that re-check a password or PIN (429 with Retry-After), per worker
    process. 0 turns it off."""
    if settings.credential_attempts_per_minute == 0:
        return []
    return [RateLimitConfig(rate_limit=("minute", settings.credential_attempts_per_minute),
                            check_throttle_handler=_is_credential_attempt).middleware]


__all__: Sequence[str] = ["create_app"]
