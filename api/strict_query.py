"""Unknown query parameters are refused (400 naming them), on every route, in one place.

A misspelt or unsupported filter (`?code=` on a route without it, `?form=` for `?from=`) used
to be ignored, so a list looked filtered when it was not. Each route's accepted names are
the query parameters its handler (and its dependencies) declare, as Litestar resolved them
at start-up (`KwargsModel.expected_query_params`, aliases included: `from`, not `from_`):
nothing is declared twice, and a new route or parameter is covered by construction.

An ASGI middleware rather than a per-route check: it runs after routing (the route handler
is in the scope) and after authentication (a stranger gets 401, not a list of parameters),
and costs nothing on requests without a query string. Routes under `/schema` (the docs UI
and its assets), static files and a handler whose `opt` sets `any_query` are left alone.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.exceptions import ValidationException
from litestar.routes import HTTPRoute
from litestar.types import ASGIApp, Receive, Scope, Send

ANY_QUERY = "any_query"  # a handler `opt` key: this route takes any query string
_STATIC_FILES = "litestar.static_files.config"  # files: a cache-busting `?v=` is fine
Accepted = dict[int, frozenset[str]]  # id(route handler) -> accepted query parameter names


def accepted_query_names(app: Litestar) -> Accepted:
    """Every HTTP route handler's declared query parameters (by alias)."""
    out: Accepted = {}
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith("/schema"):
            continue
        for handler, model in route.route_handler_map.values():
            if ("query" in model.expected_reserved_kwargs  # it reads the raw query itself
                    or handler.opt.get(ANY_QUERY)
                    or getattr(handler.fn, "__module__", "") == _STATIC_FILES):
                continue
            out[id(handler)] = frozenset(p.field_alias for p in model.expected_query_params)
    return out


class StrictQueryMiddleware:
    """Refuse a request whose query string names a parameter its route does not declare."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope.get("query_string")
        if query and scope["type"] == ScopeType.HTTP:
            accepted: Accepted | None = getattr(scope["litestar_app"].state, "query_names",
                                                None)
            names = None if accepted is None else accepted.get(id(scope["route_handler"]))
            if names is not None:
                _refuse_unknown(query, names)
        await self.app(scope, receive, send)


def _refuse_unknown(query: bytes, names: frozenset[str]) -> None:
    given = {k for k, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)}
    unknown = sorted(given - names)
    if not unknown:
        return
    accepts = ", ".join(sorted(names)) or "none"
    extra: list[dict[str, Any]] = [
        {"key": name, "source": "query",
         "message": f"unknown query parameter (this route accepts: {accepts})"}
        for name in unknown]
    raise ValidationException(f"unknown query parameter(s): {', '.join(unknown)}", extra=extra)
