"""Apple Push Notification service for pass updates: HTTP/2, token-based authentication.

A pass update push is `POST {base}/3/device/{push token}` with an empty JSON object, the
topic (`apns-topic`) being the pass type identifier, and `authorization: bearer <provider
token>`: an ES256 JWT signed with the operator's `.p8` key, `kid` = its key id, `iss` = the
team id, `iat`. Apple accepts a provider token for an hour and refuses one renewed more than
once every 20 minutes, so it is cached and renewed after `TOKEN_TTL_S`.

Answers: 200 sent; 410 (Unregistered), or 400 BadDeviceToken / DeviceTokenNotForTopic: the
device is gone (its registration is deleted, never retried); 403 ExpiredProviderToken or
InvalidProviderToken: the token is renewed and the push retried; 429 and 5xx, or no answer:
retried later with back-off (see `wallet/passes/delivery.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import jwt
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from wallet.passes.model import PushOutcome

PRODUCTION_URL = "https://api.push.apple.com"
SANDBOX_URL = "https://api.sandbox.push.apple.com"
TOKEN_TTL_S = 45 * 60
_GONE_REASONS = {"BadDeviceToken", "DeviceTokenNotForTopic", "Unregistered"}
_TOKEN_REASONS = {"ExpiredProviderToken", "InvalidProviderToken"}


class ApnsConfig(msgspec.Struct, frozen=True, kw_only=True):
    base_url: str  # PRODUCTION_URL, SANDBOX_URL or a stand-in
    team_id: str
    key_id: str
    key_pem: bytes  # the .p8 file (PKCS #8, P-256)
    topic: str  # the pass type identifier
    timeout_s: float = 10.0


def load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("the APNs key must be a P-256 EC key (.p8)")
    return key


class ApnsSender:
    """Sends pass-update pushes over one HTTP/2 client (connections are reused and
    multiplexed by httpx). `clock` returns Unix seconds (tests move it)."""

    def __init__(self, config: ApnsConfig, client: httpx.AsyncClient, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.client = client
        self._key = load_key(config.key_pem)
        self._clock = clock
        self._token: tuple[float, str] | None = None

    def provider_token(self) -> str:
        """The cached ES256 provider token, renewed after `TOKEN_TTL_S`."""
        now = float(self._clock())
        if self._token is None or now - self._token[0] >= TOKEN_TTL_S:
            token = jwt.encode({"iss": self.config.team_id, "iat": int(now)}, self._key,
                               algorithm="ES256", headers={"kid": self.config.key_id})
            self._token = (now, token)
        return self._token[1]

    async def push(self, push_token: str) -> PushOutcome:
        url = f"{self.config.base_url.rstrip('/')}/3/device/{push_token}"
        headers = {"authorization": f"bearer {self.provider_token()}",
                   "apns-topic": self.config.topic, "apns-push-type": "background",
                   "apns-priority": "5", "content-type": "application/json"}
        try:
            r = await self.client.post(url, content=b"{}", headers=headers,
                                       timeout=self.config.timeout_s)
        except httpx.HTTPError as exc:
            return PushOutcome(status="retry", error=f"{type(exc).__name__}: {exc}"[:500])
        if r.status_code == 200:
            return PushOutcome(status="sent")
        reason = _reason(r)
        error = f"HTTP {r.status_code} {reason}".strip()
        if r.status_code == 410 or reason in _GONE_REASONS:
            return PushOutcome(status="gone", error=error)
        if reason in _TOKEN_REASONS:
            self._token = None  # a fresh token on the retry
        return PushOutcome(status="retry", error=error)


class _Reason(msgspec.Struct):
    reason: str = ""


def _reason(r: httpx.Response) -> str:
    try:
        return msgspec.json.decode(r.content, type=_Reason).reason[:100]
    except msgspec.DecodeError:
        return ""
