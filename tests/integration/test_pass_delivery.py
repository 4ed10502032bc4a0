"""Pass updates reach the phones and Google: a purchase at the till queues the update in its
own transaction; a delivery round sends one APNs push per registered device to a local HTTP/2
server standing in for APNs (topic, ES256 provider token, device path checked); with that
server down the push waits in the outbox and goes out when it is back; the till is never
held up by any of it. A balance change reaches a stand-in for the Google Wallet REST API
exactly once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import jwt
import msgspec
import pytest
from support.helpers import Client
from support.pass_fixtures import (
    APNS_KEY_ID,
    ISSUER_ID,
    PASS_TYPE_ID,
    TEAM_ID,
    H2StandIn,
    Pki,
    Seen,
    apple_auth,
    apple_pass_of,
    buy,
    google_handler,
    make_pki,
    scene,
    top_up,
)

from api.auth.tokens import TokenService
from api.config import Settings
from wallet.passes import delivery
from wallet.passes.apns import ApnsConfig, ApnsSender
from wallet.passes.google_api import GoogleApiConfig, GoogleWalletApi

CFG = delivery.DeliveryConfig(backoff_s=1.0, max_backoff_s=60.0, google_issuer_id=ISSUER_ID)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def settings(settings: Settings, pki: Pki) -> Settings:
    return msgspec.structs.replace(settings, **pki.settings())


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=2, max_size=4)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def http(pki: Pki) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(http1=False, http2=True, verify=pki.client_ssl()) as c:
        yield c


def apns_sender(pki: Pki, server: H2StandIn, http: httpx.AsyncClient) -> ApnsSender:
    return ApnsSender(ApnsConfig(base_url=server.url, team_id=TEAM_ID, key_id=APNS_KEY_ID,
                                 key_pem=pki.data["apns_key"],
                                 topic=PASS_TYPE_ID, timeout_s=5.0), http)


def check_apns_request(seen: Seen, pki: Pki) -> str:
    """Topic and ES256 provider token as APNs requires; returns the device token pushed."""
    assert seen.method == "POST" and seen.path.startswith("/3/device/")
    assert seen.headers["apns-topic"] == PASS_TYPE_ID
    scheme, _, token = seen.headers["authorization"].partition(" ")
    assert scheme == "bearer"
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT",
                                                "kid": APNS_KEY_ID}
    claims = jwt.decode(token, pki.apns_public, algorithms=["ES256"],
                        options={"require": ["iss", "iat"]})
    assert claims["iss"] == TEAM_ID
    assert json.loads(seen.body) == {}
    return seen.path.removeprefix("/3/device/")


async def pending(conn: asyncpg.Connection) -> list[tuple[str, int]]:
    return [(r["push_token"], r["attempts"]) for r in await conn.fetch(
        "SELECT push_token, attempts FROM pass_pushes ORDER BY push_token")]


async def test_a_purchase_pushes_each_registered_device_once_and_waits_out_an_apns_outage(
        client: Client, tokens: TokenService, pool: asyncpg.Pool, pki: Pki,
        http: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    server = H2StandIn(pki)
    await server.start()
    s = await scene(client, tokens)
    p = await apple_pass_of(client, s)
    for device, push_token in (("phone", "aa01"), ("watch", "aa02")):
        r = await client.post(
            f"/v1/passkit/devices/{device}/registrations/{PASS_TYPE_ID}/{p.serial}",
            json={"pushToken": push_token}, headers=apple_auth(p.token))
        assert r.status_code == 201
    apns = apns_sender(pki, server, http)
    now = datetime.now(UTC)

    await buy(client, s, 4_20)
    report = await delivery.run_round(pool, apns=apns, google=None, cfg=CFG, now=now)
    assert (report.published, report.sent, report.failed) == (1, 2, 0)
    assert sorted(check_apns_request(seen, pki) for seen in server.requests) == [
        "aa01", "aa02"]
    assert (await delivery.run_round(pool, apns=apns, google=None, cfg=CFG, now=now)).due == 0
    assert len(server.requests) == 2

    await server.stop()  # APNs unreachable
    bought = await buy(client, s, 1_00)  # the till works on, unaffected
    assert bought["points_balance"] == 5
    down = await delivery.run_round(pool, apns=apns, google=None, cfg=CFG, now=now)
    assert (down.sent, down.failed) == (0, 2)
    assert await pending(conn) == [("aa01", 1), ("aa02", 1)]

    await server.start()  # back, on the same address
    early = await delivery.run_round(pool, apns=apns, google=None, cfg=CFG, now=now)
    assert early.due == 0  # still backing off
    later = await delivery.run_round(pool, apns=apns, google=None, cfg=CFG,
                                     now=now + timedelta(seconds=2))
    assert (later.sent, later.failed) == (2, 0)
    assert sorted(check_apns_request(seen, pki) for seen in server.requests[2:]) == [
        "aa01", "aa02"]
    assert await pending(conn) == []
    await server.stop()


async def test_the_till_never_waits_for_a_delivery_round_in_flight(
        client: Client, tokens: TokenService, pool: asyncpg.Pool, pki: Pki,
        http: httpx.AsyncClient) -> None:
    arrived, release = asyncio.Event(), asyncio.Event()

    async def stuck(_: Seen) -> tuple[int, bytes]:
        arrived.set()
        await release.wait()  # APNs hangs until the test lets it answer
        return 200, b""

    server = H2StandIn(pki, stuck)
    await server.start()
    s = await scene(client, tokens)
    p = await apple_pass_of(client, s)
    await client.post(f"/v1/passkit/devices/phone/registrations/{PASS_TYPE_ID}/{p.serial}",
                      json={"pushToken": "bb01"}, headers=apple_auth(p.token))
    await buy(client, s, 2_00)
    round_ = asyncio.create_task(delivery.run_round(
        pool, apns=apns_sender(pki, server, http), google=None, cfg=CFG,
        now=datetime.now(UTC)))
    await arrived.wait()  # the push is in flight, the round holds the delivery lock
    for _ in range(3):  # purchases and a top-up commit meanwhile
        await buy(client, s, 1_00)
    assert (await top_up(client, s, 5_00))["stored_value_balance"] == 5_00
    assert not round_.done()
    release.set()
    assert (await round_).sent == 1
    await server.stop()


async def test_a_balance_change_reaches_the_google_wallet_api_once(
        client: Client, tokens: TokenService, pool: asyncpg.Pool, pki: Pki,
        http: httpx.AsyncClient) -> None:
    objects: dict[str, bytes] = {}
    s = await scene(client, tokens)
    link = await client.get("/v1/me/card/google-wallet", headers=s.headers)
    token = link.json()["save_url"].rsplit("/", 1)[1]
    object_id = jwt.decode(token, options={"verify_signature": False})[
        "payload"]["loyaltyObjects"][0]["id"]
    server = H2StandIn(pki, google_handler(objects, saved={object_id}))
    await server.start()
    google = GoogleWalletApi(GoogleApiConfig(
        api_url=server.url, token_url=f"{server.url}/token",
        service_account_json=pki.data["google"]), http)
    now = datetime.now(UTC)

    await top_up(client, s, 25_00)
    await buy(client, s, 3_00)  # two changes before the round: one update, the latest state
    report = await delivery.run_round(pool, apns=None, google=google, cfg=CFG, now=now)
    assert report.sent == 1
    puts = [r for r in server.requests if r.method == "PUT"]
    assert [r.path for r in puts] == [f"/walletobjects/v1/loyaltyObject/{object_id}"]
    sent = json.loads(objects[object_id])
    assert sent["loyaltyPoints"]["balance"] == {"int": 3}
    assert sent["secondaryLoyaltyPoints"]["balance"]["money"] == {
        "micros": 25_000_000, "currencyCode": "EUR"}
    assert puts[0].headers["authorization"].startswith("Bearer tok-")
    (token_request,) = [r for r in server.requests if r.path == "/token"]
    form = dict(pair.split("=", 1) for pair in token_request.body.decode().split("&"))
    assert form["grant_type"] == "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
    assertion = jwt.decode(form["assertion"], pki.google_public, algorithms=["RS256"],
                           audience=f"{server.url}/token")
    assert assertion["scope"] == "https://www.googleapis.com/auth/wallet_object.issuer"

    again = await delivery.run_round(pool, apns=None, google=google, cfg=CFG,
                                     now=now + timedelta(minutes=10))
    assert again.due == 0 and len([r for r in server.requests if r.method == "PUT"]) == 1
    log = await client.get("/v1/me/access-log", headers=s.headers)
    assert [(e["actor_role"], e["action"], e["purpose"]) for e in log.json()["items"]
            if e["actor_role"] == "service"] == [("service", "pass.google_update", "wallet_pass")]
    await server.stop()


async def test_an_object_never_saved_to_google_wallet_is_not_retried(
        client: Client, tokens: TokenService, pool: asyncpg.Pool, pki: Pki,
        http: httpx.AsyncClient, conn: asyncpg.Connection) -> None:
    objects: dict[str, bytes] = {}
    server = H2StandIn(pki, google_handler(objects, saved=set()))
    await server.start()
    s = await scene(client, tokens)
    assert (await client.get("/v1/me/card/google-wallet", headers=s.headers)).status_code == 200
    await top_up(client, s, 10_00)
    google = GoogleWalletApi(GoogleApiConfig(
        api_url=server.url, token_url=f"{server.url}/token",
        service_account_json=pki.data["google"]), http)
    report = await delivery.run_round(pool, apns=None, google=google, cfg=CFG,
                                      now=datetime.now(UTC))
    assert (report.sent, report.gone, report.failed) == (0, 1, 0)
    assert await conn.fetchval("SELECT count(*) FROM pass_pushes") == 0
    assert objects == {}
    await server.stop()
