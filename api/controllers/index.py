"""The API's root, `GET /v1/`: where the documentation is and every route, grouped by the
audience that uses it, read from the running app (so it is never out of date)."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Controller, Request, get
from litestar.types import ControllerRouterHandler


class RouteLink(msgspec.Struct, frozen=True, kw_only=True):
    path: str  # an OpenAPI path template, `{program_id}` etc. to fill in
    methods: list[str]
    summary: str


class Index(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: str
    docs: str  # the browsable documentation (works offline)
    openapi: str  # the OpenAPI document: every route, body, error and example
    health: str
    ready: str
    metrics: str
    routes: dict[str, list[RouteLink]]  # by tag: members, till, stores, campaigns...


def _routes(request: Request[Any, Any, Any]) -> dict[str, list[RouteLink]]:
    by_tag: dict[str, dict[str, RouteLink]] = {}
    for route in request.app.routes:
        path = re.sub(r":[a-z]+}", "}", route.path)
        if not path.startswith("/v1/"):
            continue
        for handler in getattr(route, "route_handlers", []):
            if not handler.resolve_include_in_schema():
                continue
            tag = (list(handler.resolve_tags()) or ["other"])[0]
            methods = sorted(m for m in handler.http_methods if m not in {"HEAD", "OPTIONS"})
            links = by_tag.setdefault(tag, {})
            known = links.get(path)
            summary = handler.summary or ""
            if known is None:
                links[path] = RouteLink(path=path, methods=methods, summary=summary)
            else:
                links[path] = RouteLink(path=path, methods=sorted({*known.methods, *methods}),
                                        summary=known.summary or summary)
    return {tag: sorted(links.values(), key=lambda link: link.path)
            for tag, links in sorted(by_tag.items())}


class IndexController(Controller):
    tags = ["operations"]
    opt = {"exclude_from_auth": True}

    @get(["/v1", "/v1/"], summary="The API's root: documentation and every route",
         description="No token needed. `docs` is the browsable documentation (served by this "
                     "app, no internet needed), `openapi` the OpenAPI document; `routes` "
                     "lists every route of version 1 by tag, with its methods and summary.")
    async def index(self, request: Request[Any, Any, Any]) -> Index:
        app_state = request.app.state
        if "api_index" not in app_state:
            app_state.api_index = _routes(request)
        return Index(name="loyalty-geo", version="1", docs="/schema",
                     openapi="/schema/openapi.json", health="/health", ready="/ready",
                     metrics="/metrics", routes=app_state.api_index)


ROUTES: list[ControllerRouterHandler] = [IndexController]
