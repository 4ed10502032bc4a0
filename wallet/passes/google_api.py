"""Google Wallet Objects REST API: keeps a saved loyalty object in step with the pass.

An update is `PUT {api}/walletobjects/v1/loyaltyObject/{object id}` with the whole object as
`wallet/passes/content.google_object` renders it now (so a retried or merged update always
sends the latest state, and sending it twice changes nothing). The access token comes from
the service account: a JWT-bearer assertion (RFC 7523) posted to the token endpoint, cached
until a minute before it expires.

Answers: 2xx sent; 404: the member never saved the object to Google Wallet (nothing to
update; the save link carries the current state anyway), never retried; 401: the access
token is dropped and the update retried; 429, 5xx, no answer: retried later with back-off;
any other 4xx: our request is wrong and retrying cannot help (`gone`, logged with the error).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from wallet.passes.google_jwt import service_account, token_assertion
from wallet.passes.model import PushOutcome

DEFAULT_API_URL = "https://walletobjects.googleapis.com"
_REFRESH_MARGIN_S = 60


class GoogleApiConfig(msgspec.Struct, frozen=True, kw_only=True):
    api_url: str  # DEFAULT_API_URL or a stand-in
    token_url: str  # "" = the service account's token_uri
    service_account_json: bytes
    timeout_s: float = 10.0


class _Token(msgspec.Struct):
    access_token: str
    expires_in: int = 3600


class TokenError(Exception):
    """The token endpoint refused the assertion or could not be reached."""


class GoogleWalletApi:
    """Updates loyalty objects over one HTTP client. `clock` returns Unix seconds."""

    def __init__(self, config: GoogleApiConfig, client: httpx.AsyncClient, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.client = client
        self.account, self._key = service_account(config.service_account_json)
        self._clock = clock
        self._token: tuple[float, str] | None = None  # (expires at, token)

    @property
    def token_url(self) -> str:
        return self.config.token_url or self.account.token_uri

    async def access_token(self) -> str:
        now = float(self._clock())
        if self._token is not None and now < self._token[0] - _REFRESH_MARGIN_S:
            return self._token[1]
        assertion = token_assertion(self.account, self._key, audience=self.token_url,
                                    now=datetime.fromtimestamp(now, UTC))
        try:
            r = await self.client.post(self.token_url, data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion}, timeout=self.config.timeout_s)
        except httpx.HTTPError as exc:
            raise TokenError(f"token endpoint: {type(exc).__name__}: {exc}") from exc
        if r.status_code != 200:
            raise TokenError(f"token endpoint: HTTP {r.status_code}")
        try:
            token = msgspec.json.decode(r.content, type=_Token)
        except msgspec.DecodeError as exc:
            raise TokenError("token endpoint: malformed answer") from exc
        self._token = (now + token.expires_in, token.access_token)
        return token.access_token

    async def update(self, obj: dict[str, Any]) -> PushOutcome:
        """PUT `obj` (a loyalty object with its `id`)."""
        try:
            token = await self.access_token()
        except TokenError as exc:
            return PushOutcome(status="retry", error=str(exc)[:500])
        url = (f"{self.config.api_url.rstrip('/')}/walletobjects/v1/loyaltyObject/"
               f"{quote(str(obj['id']), safe='')}")
        try:
            r = await self.client.put(url, content=msgspec.json.encode(obj),
                                      headers={"authorization": f"Bearer {token}",
                                               "content-type": "application/json"},
                                      timeout=self.config.timeout_s)
        except httpx.HTTPError as exc:
            return PushOutcome(status="retry", error=f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= r.status_code < 300:
            return PushOutcome(status="sent")
        error = f"HTTP {r.status_code}"
        if r.status_code == 401:
            self._token = None
            return PushOutcome(status="retry", error=error)
        if r.status_code == 429 or r.status_code >= 500:
            return PushOutcome(status="retry", error=error)
        return PushOutcome(status="gone", error=error)
