"""Tokens are verified strictly; refresh tokens rotate and a reused one is refused."""

from __future__ import annotations

import base64
import json
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import msgspec
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.helpers import bearer

from api.auth.tokens import TokenService
from api.config import Settings
from api.runtime.accounts import create_admin
from wallet.kernel.hashing import Hasher

Client = AsyncTestClient[Litestar]
PASSWORD = "correct horse battery staple"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": str(uuid.uuid4()), "role": "admin", "typ": "access", "iss": "loyalty-geo",
            "iat": now, "nbf": now, "exp": now + 300, "jti": "j1"}
    base.update(over)
    return base


async def _probe(client: Client, token: str) -> int:
    """An admin-only read of a program that does not exist: 404 when the token is good."""
    r = await client.get(f"/v1/programs/{uuid.uuid4()}", headers=bearer(token))
    return r.status_code


@pytest.fixture
async def admin_email(settings: Settings) -> str:
    hasher = Hasher(memory_kib=settings.password_memory_kib, time_cost=1)
    await create_admin(settings.database_url, "ops@example.com", hasher.hash(PASSWORD))
    return "ops@example.com"


async def test_a_valid_admin_token_is_accepted(client: Client, tokens: TokenService) -> None:
    token = tokens.mint_access(sub=uuid.uuid4(), role="admin")
    assert await _probe(client, token) == 404


async def test_a_missing_token_is_401_problem(client: Client) -> None:
    r = await client.get(f"/v1/programs/{uuid.uuid4()}")
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "/problems/unauthorized"


async def test_alg_none_is_refused(client: Client) -> None:
    token = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    assert await _probe(client, token) == 401


async def test_an_hmac_token_keyed_with_our_public_key_is_refused(
    client: Client, tokens: TokenService
) -> None:
    kid = tokens.keyset.signing_kid
    public_pem = tokens.keyset.public[kid].public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "kid": kid, "typ": "JWT"}
    signing_input = f"{_b64(header)}.{_b64(_claims())}".encode()
    import hashlib
    import hmac

    sig = hmac.new(public_pem, signing_input, hashlib.sha256).digest()
    token = signing_input.decode() + "." + base64.urlsafe_b64encode(sig).decode().rstrip("=")
    assert await _probe(client, token) == 401


async def test_an_rs256_token_is_refused(client: Client, tokens: TokenService) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(), key, algorithm="RS256",
                       headers={"kid": tokens.keyset.signing_kid})
    assert await _probe(client, token) == 401


async def test_an_unknown_kid_is_refused(client: Client) -> None:
    token = jwt.encode(_claims(), Ed25519PrivateKey.generate(), algorithm="EdDSA",
                       headers={"kid": "not-a-known-kid"})
    assert await _probe(client, token) == 401


async def test_a_token_signed_by_another_key_under_our_kid_is_refused(
    client: Client, tokens: TokenService
) -> None:
    token = jwt.encode(_claims(), Ed25519PrivateKey.generate(), algorithm="EdDSA",
                       headers={"kid": tokens.keyset.signing_kid})
    assert await _probe(client, token) == 401


async def test_an_expired_token_is_refused(client: Client, tokens: TokenService) -> None:
    token = tokens.mint_access(sub=uuid.uuid4(), role="admin", now=time.time() - 3600, ttl_s=60)
    r = await client.get(f"/v1/programs/{uuid.uuid4()}", headers=bearer(token))
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]


async def test_a_not_yet_valid_token_is_refused(client: Client, tokens: TokenService) -> None:
    token = tokens.mint_access(sub=uuid.uuid4(), role="admin", now=time.time() + 3600)
    assert await _probe(client, token) == 401


async def test_a_tampered_payload_is_refused(client: Client, tokens: TokenService) -> None:
    token = tokens.mint_access(sub=uuid.uuid4(), role="manager", program_id=uuid.uuid4())
    header, _, sig = token.split(".")
    forged = f"{header}.{_b64(_claims(role='admin'))}.{sig}"
    assert await _probe(client, forged) == 401


async def test_a_refresh_token_is_not_an_access_token(client: Client, tokens: TokenService
                                                      ) -> None:
    refresh, _, _ = tokens.mint_refresh(sub=uuid.uuid4(), role="admin", program_id=None,
                                        family=uuid.uuid4())
    assert await _probe(client, refresh) == 401


async def test_a_wrong_role_is_403(client: Client, tokens: TokenService) -> None:
    member = tokens.mint_access(sub=uuid.uuid4(), role="member", program_id=uuid.uuid4())
    r = await client.get(f"/v1/programs/{uuid.uuid4()}", headers=bearer(member))
    assert r.status_code == 403
    assert r.json()["type"] == "/problems/forbidden"


async def test_password_login_returns_a_working_token_pair(client: Client, admin_email: str
                                                           ) -> None:
    r = await client.post("/v1/auth/token", json={
        "grant_type": "password", "email": admin_email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert await _probe(client, body["access_token"]) == 404


async def test_a_wrong_password_is_401(client: Client, admin_email: str) -> None:
    r = await client.post("/v1/auth/token", json={
        "grant_type": "password", "email": admin_email, "password": "wrong password"})
    assert r.status_code == 401
    r = await client.post("/v1/auth/token", json={
        "grant_type": "password", "email": "nobody@example.com", "password": PASSWORD})
    assert r.status_code == 401


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(
    client: Client, admin_email: str
) -> None:
    first = (await client.post("/v1/auth/token", json={
        "grant_type": "password", "email": admin_email, "password": PASSWORD})).json()
    r = await client.post("/v1/auth/token", json={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert await _probe(client, second["access_token"]) == 404

    reused = await client.post("/v1/auth/token", json={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert reused.status_code == 401
    # The reuse revoked the whole login: the newer token of the same family is dead too.
    after = await client.post("/v1/auth/token", json={
        "grant_type": "refresh_token", "refresh_token": second["refresh_token"]})
    assert after.status_code == 401


async def test_a_rotated_signing_key_keeps_old_tokens_valid(
    settings: Settings, tokens: TokenService
) -> None:
    from api.app import create_app
    from api.auth.keys import rotate

    old = tokens.mint_access(sub=uuid.uuid4(), role="admin")
    keys_copy = settings.keys_file + ".rot"
    with open(settings.keys_file, "rb") as src, open(keys_copy, "wb") as dst:
        dst.write(src.read())
    new_kid = rotate(keys_copy)
    rotated = create_app(Settings(**{**{f: getattr(settings, f)
                                        for f in settings.__struct_fields__},
                                     "jwt_keys_file": keys_copy}))
    svc: TokenService = rotated.state.tokens
    assert svc.keyset.signing_kid == new_kid
    async with AsyncTestClient(app=rotated) as c:
        assert await _probe(c, old) == 404
        assert await _probe(c, svc.mint_access(sub=uuid.uuid4(), role="admin")) == 404


async def test_repeated_login_attempts_from_one_address_are_rate_limited(
    settings: Settings
) -> None:
    from api.app import create_app

    limited = create_app(msgspec.structs.replace(settings, credential_attempts_per_minute=3))
    async with AsyncTestClient(app=limited) as c:
        body = {"grant_type": "password", "email": "x@example.com", "password": "guess"}
        codes = [(await c.post("/v1/auth/token", json=body)).status_code for _ in range(3)]
        assert codes == [401, 401, 401]
        r = await c.post("/v1/auth/token", json=body)
        assert r.status_code == 429
        assert r.headers["content-type"].startswith("application/problem+json")
        assert int(r.headers["retry-after"]) > 0
        # Other routes are not limited.
        assert (await c.get("/health")).status_code == 200


async def test_a_retired_key_no_longer_verifies_its_tokens(
    settings: Settings, tokens: TokenService, tmp_path: Path
) -> None:
    from api.app import create_app
    from api.auth.keys import load_or_create, retire, rotate

    keys = tmp_path / "keys.json"
    shutil.copyfile(settings.keys_file, keys)
    old_kid = tokens.keyset.signing_kid
    old = tokens.mint_access(sub=uuid.uuid4(), role="admin")
    rotate(keys)
    retire(keys, old_kid)
    with pytest.raises(ValueError, match="signing key"):
        retire(keys, load_or_create(keys).signing_kid)
    app = create_app(msgspec.structs.replace(settings, jwt_keys_file=str(keys)))
    async with AsyncTestClient(app=app) as c:
        assert await _probe(c, old) == 401

