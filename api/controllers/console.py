"""`/console` (managers, admins) and `/till` (staff): the pages, and their cookie sessions.

Thin: the session logic is `api.auth.browser`, the headers and static routes `api.web`. The
pages are public shells (no data in them); everything they show comes from the v1 API with
the access token the session gives them.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie, State
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.types import ControllerRouterHandler
from msgspec import Meta

from api import web
from api.auth import browser
from api.auth.browser import BrowserApp, BrowserSession
from api.controllers import rewards_examples as ex
from api.controllers.auth import Email
from api.errors import problem, responses
from wallet.kernel import errors

CSRF_HEADER = "x-csrf-token"


class SessionLogin(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Email
    password: Annotated[str, Meta(min_length=1, max_length=200)]
    program_id: uuid.UUID | None = None


def _cookie(app: BrowserApp, request: Request[Any, Any, Any], value: str, max_age: int
            ) -> Cookie:
    return Cookie(key=app.cookie, value=value, path=app.path, httponly=True,
                  secure=not browser.is_loopback(request.headers.get("host", "")),
                  samesite="strict", max_age=max_age)


def _with_cookie(body: Any, app: BrowserApp, request: Request[Any, Any, Any], value: str, *,
                 max_age: int, status: int = 200) -> Response[Any]:
    return Response(body, status_code=status, cookies=[_cookie(app, request, value, max_age)],
                    headers={"Cache-Control": "no-store"})


def _problem_clearing(exc: errors.DomainError, app: BrowserApp,
                      request: Request[Any, Any, Any]) -> Response[Any]:
    status = 403 if isinstance(exc, errors.AccessDenied) else 401
    kind = "/problems/forbidden" if status == 403 else "/problems/unauthorized"
    resp = problem(status, kind, "Forbidden" if status == 403 else "Unauthorized",
                   exc.detail, field=getattr(exc, "field", None))
    resp.cookies.append(_cookie(app, request, "", 0))
    return resp


class _BrowserAppController(Controller):
    """One browser app: GET its page; POST its session, session/refresh, session/logout."""

    app: BrowserApp
    tags = ["console"]
    opt = {"exclude_from_auth": True}
    security = [{}]
    include_in_schema = True

    def _page(self, request: Request[Any, Any, Any], state: State) -> Response[str]:
        csp: str = state.console_csp
        missing = web.assets_missing()
        if missing:
            body = ("<!doctype html><title>Not installed</title><p>The front-end packages are "
                    f"not installed ({', '.join(missing)}): run <code>make install</code>.")
            return web.page_response(body, csp, status=503)
        tokens = state.tokens
        claims = browser.cookie_claims(tokens, self.app, request.cookies.get(self.app.cookie))
        csrf = browser.csrf_token(state.csrf_key, self.app, claims.fam or "") if claims else ""
        settings = state.settings
        body = state.console_pages.render(self.app.name, {
            "lang": web.pick_language(request.headers.get("accept-language", "")),
            "csrf_token": csrf,
            "tile_url": settings.console_tile_url,
            "tile_attribution": settings.console_tile_attribution,
        })
        return web.page_response(body, csp)

    async def _login(self, request: Request[Any, Any, Any], state: State,
                     data: SessionLogin) -> Response[Any]:
        browser.check_same_origin(request.headers, request.headers.get("host", ""))
        try:
            done = await browser.login(state.pool, state.tokens, state.hasher, state.csrf_key,
                                       self.app, email=data.email, password=data.password,
                                       program_id=data.program_id)
        except browser.ChooseProgram as exc:
            return problem(409, "/problems/choose-program", "Choose a program", str(exc),
                           field="program_id", programs=msgspec.to_builtins(exc.programs))
        return _with_cookie(done.session, self.app, request, done.refresh_token,
                            max_age=state.settings.refresh_token_ttl_s)

    async def _refresh(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        browser.check_same_origin(request.headers, request.headers.get("host", ""))
        try:
            done = await browser.refresh(
                state.pool, state.tokens, state.csrf_key, self.app,
                cookie=request.cookies.get(self.app.cookie),
                csrf=request.headers.get(CSRF_HEADER, ""))
        except (errors.Unauthenticated, errors.AccessDenied) as exc:
            return _problem_clearing(exc, self.app, request)
        return _with_cookie(done.session, self.app, request, done.refresh_token,
                            max_age=state.settings.refresh_token_ttl_s)

    async def _logout(self, request: Request[Any, Any, Any], state: State) -> Response[Any]:
        browser.check_same_origin(request.headers, request.headers.get("host", ""))
        await browser.logout(state.pool, state.tokens, state.csrf_key, self.app,
                             cookie=request.cookies.get(self.app.cookie),
                             csrf=request.headers.get(CSRF_HEADER, ""))
        return _with_cookie(None, self.app, request, "", max_age=0, status=204)


_ACCOUNT = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"
_PROGRAM = "6f1c2a0e-3b7d-4e51-9a2c-1d0e8f7a6b5c"
_SESSION_OUT = {
    "access_token": "eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiI1YTZi…",
    "expires_in": 900, "csrf_token": "q2hV0mXl9c3r7oPZk1Jd8Tz4bYwN6eLs5aUfGiHjKkQ",
    "account": {"id": _ACCOUNT, "email": "manager@cafe-lumiere.example", "role": "manager",
                "program_id": _PROGRAM, "store_ids": []}}
_LOGIN_BODY = ex.body("A manager signs in", {
    "email": "manager@cafe-lumiere.example", "password": "correct horse battery staple"})


def _session_ok(what: str) -> dict[int, ResponseSpec]:
    return ex.ok(200, BrowserSession, what, _SESSION_OUT)


def _page_responses(app: str) -> dict[int, ResponseSpec]:
    return {
        200: ResponseSpec(data_container=str, media_type="text/html", generate_examples=False,
                          description=f"The {app}'s page: an HTML shell that loads its scripts "
                                      "from /static/; no data in it. Sent with a strict "
                                      "Content-Security-Policy and no-store.",
                          examples=[Example(summary="The page", value=(
                              '<!doctype html><html lang="en">…<meta name="csrf-token" '
                              'content="">…<script type="module" src="/static/app/…">'))]),
        503: ResponseSpec(data_container=str, media_type="text/html", generate_examples=False,
                          description="The front-end packages are not installed (run "
                                      "`make install`): an HTML page saying so.",
                          examples=[Example(summary="Not installed", value=(
                              "<!doctype html><title>Not installed</title><p>The front-end "
                              "packages are not installed (web/node_modules/leaflet/dist): "
                              "run <code>make install</code>."))]),
    }


_SESSION_DOC = ("The browser session of the app: the refresh token is set in an HttpOnly, "
                "SameSite=Strict cookie (Secure except on loopback) scoped to the app's path; "
                "the response carries the access token (keep it in memory only), the CSRF "
                "token that refresh and logout need in `X-CSRF-Token`, and the account.")


class ConsoleController(_BrowserAppController):
    path = "/console"
    app = browser.CONSOLE

    @get("/", media_type="text/html", summary="The console (managers, admins)",
         responses=_page_responses("console"),
         description="A page: stores and zones on a map, campaigns, results, weather; for "
                     "admins the access log and the member lookup.")
    async def page(self, request: Request[Any, Any, Any], state: State) -> Response[str]:
        return self._page(request, state)

    @post("/session", status_code=200, summary="Sign in to the console", description=_SESSION_DOC,
          responses={**responses(403, 409, 429), **_session_ok("Signed in; the cookie is set")})
    async def login(self, request: Request[Any, Any, Any], state: State,
                    data: Annotated[SessionLogin, _LOGIN_BODY]) -> Response[BrowserSession]:
        return await self._login(request, state, data)

    @post("/session/refresh", status_code=200, summary="Renew the console session (cookie)",
          description="Rotates the cookie's refresh token. Needs `X-CSRF-Token`.",
          responses={**responses(403), **_session_ok("Renewed; the cookie is rotated")})
    async def refresh(self, request: Request[Any, Any, Any], state: State
                      ) -> Response[BrowserSession]:
        return await self._refresh(request, state)

    @post("/session/logout", status_code=204, summary="End the console session",
          description="Revokes the session's refresh tokens and clears the cookie. Needs "
                      "`X-CSRF-Token`.", responses=responses(403))
    async def logout(self, request: Request[Any, Any, Any], state: State) -> Response[None]:
        return await self._logout(request, state)


class TillController(_BrowserAppController):
    path = "/till"
    app = browser.TILL

    @get("/", media_type="text/html", summary="The browser till (store staff)",
         responses=_page_responses("till"),
         description="A page for a phone or tablet at the counter: scan the member's card, "
                     "purchases, top-ups, payouts, refunds, the store's recent transactions.")
    async def page(self, request: Request[Any, Any, Any], state: State) -> Response[str]:
        return self._page(request, state)

    @post("/session", status_code=200, summary="Sign in to the till", description=_SESSION_DOC,
          responses={**responses(403, 409, 429), **_session_ok("Signed in; the cookie is set")})
    async def login(self, request: Request[Any, Any, Any], state: State,
                    data: Annotated[SessionLogin, _LOGIN_BODY]) -> Response[BrowserSession]:
        return await self._login(request, state, data)

    @post("/session/refresh", status_code=200, summary="Renew the till session (cookie)",
          description="Rotates the cookie's refresh token. Needs `X-CSRF-Token`.",
          responses={**responses(403), **_session_ok("Renewed; the cookie is rotated")})
    async def refresh(self, request: Request[Any, Any, Any], state: State
                      ) -> Response[BrowserSession]:
        return await self._refresh(request, state)

    @post("/session/logout", status_code=204, summary="End the till session",
          description="Revokes the session's refresh tokens and clears the cookie. Needs "
                      "`X-CSRF-Token`.", responses=responses(403))
    async def logout(self, request: Request[Any, Any, Any], state: State) -> Response[None]:
        return await self._logout(request, state)


ROUTES: list[ControllerRouterHandler] = [ConsoleController, TillController]

