"""Google Wallet's JWTs, signed RS256 with the operator's service-account key. Pure: the key
and `now` come in as arguments.

* The "save to Google Wallet" JWT (`save_jwt`): `iss` the service account's e-mail,
  `aud: "google"`, `typ: "savetowallet"`, `iat`, `origins` (the web origins allowed to show
  the button), and a `payload` with the `loyaltyObjects` (and, when the operator gave a logo,
  the program's `loyaltyClasses`, which Google creates on the first save). The member opens
  `SAVE_URL + jwt`.
* The OAuth 2.0 JWT-bearer assertion (`token_assertion`, RFC 7523) exchanged at the token
  endpoint for an access token to the Wallet Objects REST API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import jwt
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

SAVE_URL = "https://pay.google.com/gp/v/save/"
SCOPE = "https://www.googleapis.com/auth/wallet_object.issuer"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
ASSERTION_TTL_S = 3600


class ServiceAccount(msgspec.Struct, frozen=True, kw_only=True):
    """The fields of a Google service-account key file (JSON) that signing needs."""

    client_email: str
    private_key_id: str
    private_key: str  # PEM (PKCS #8)
    token_uri: str = DEFAULT_TOKEN_URI


_decoder = msgspec.json.Decoder(ServiceAccount)


def service_account(text: bytes | str) -> tuple[ServiceAccount, rsa.RSAPrivateKey]:
    """Decode a key file and load its RSA key. Raises ValueError naming what is wrong."""
    try:
        account = _decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise ValueError(f"not a Google service-account key file: {exc}") from exc
    key = serialization.load_pem_private_key(account.private_key.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the service-account key is not an RSA key")
    return account, key


def save_jwt(account: ServiceAccount, key: rsa.RSAPrivateKey, *, origins: Sequence[str],
             objects: Sequence[dict[str, Any]], classes: Sequence[dict[str, Any]] = (),
             now: datetime) -> str:
    """The signed "save to Google Wallet" JWT for `objects` (loyalty objects)."""
    payload: dict[str, Any] = {"loyaltyObjects": list(objects)}
    if classes:
        payload["loyaltyClasses"] = list(classes)
    claims = {"iss": account.client_email, "aud": "google", "typ": "savetowallet",
              "iat": int(now.timestamp()), "origins": list(origins), "payload": payload}
    return jwt.encode(claims, key, algorithm="RS256",
                      headers={"kid": account.private_key_id})


def save_url(token: str) -> str:
    return SAVE_URL + token


def token_assertion(account: ServiceAccount, key: rsa.RSAPrivateKey, *, audience: str,
                    now: datetime, scope: str = SCOPE) -> str:
    """The JWT-bearer assertion for `audience` (the token endpoint), valid one hour."""
    iat = int(now.timestamp())
    claims = {"iss": account.client_email, "scope": scope, "aud": audience, "iat": iat,
              "exp": iat + ASSERTION_TTL_S}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": account.private_key_id})
