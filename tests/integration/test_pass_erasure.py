"""Erasure and passes: the member's passes become void (Apple: an update with `voided`,
Google: the object INACTIVE), device registrations are deleted, and no row links a device
token or pass serial to the member; once the devices learnt it (or the farewell period
ended), neither is held at all."""

from __future__ import annotations

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
    unzip,
)
from test_erasure_dump import dump

from api.auth.tokens import TokenService
from api.config import Settings
from wallet.passes import delivery
from wallet.passes.apns import ApnsConfig, ApnsSender
from wallet.passes.google_api import GoogleApiConfig, GoogleWalletApi

PUSH_TOKEN = "cafe0123beef"


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


async def test_erasure_voids_the_passes_and_leaves_no_device_or_serial_linked_to_the_member(
        client: Client, tokens: TokenService, pool: asyncpg.Pool, pki: Pki,
        conn: asyncpg.Connection) -> None:
    objects: dict[str, bytes] = {}
    saved: set[str] = set()
    google_server = H2StandIn(pki, google_handler(objects, saved=saved))
    apns_server = H2StandIn(pki)
    await google_server.start()
    await apns_server.start()
    s = await scene(client, tokens)
    await buy(client, s, 9_00)
    p = await apple_pass_of(client, s)
    r = await client.post(
        f"/v1/passkit/devices/phone/registrations/{PASS_TYPE_ID}/{p.serial}",
        json={"pushToken": PUSH_TOKEN}, headers=apple_auth(p.token))
    assert r.status_code == 201
    link = (await client.get("/v1/me/card/google-wallet", headers=s.headers)).json()
    google_id = jwt.decode(link["save_url"].rsplit("/", 1)[1], options={
        "verify_signature": False})["payload"]["loyaltyObjects"][0]["id"]
    saved.add(google_id)
    wallet_account = str(await conn.fetchval(
        "SELECT wallet_account_id FROM members WHERE id = $1", s.member_id))
    export = (await client.get("/v1/me/export", headers=s.headers)).json()
    assert {(x["kind"], x["serial"]) for x in export["passes"]} == {
        ("apple", p.serial), ("google", google_id.split(".", 1)[1])}
    (apple_export,) = [x for x in export["passes"] if x["kind"] == "apple"]
    assert [d["device_library_id"] for d in apple_export["devices"]] == ["phone"]

    erased = await client.request("DELETE", "/v1/me", headers=s.headers,
                                  json={"password": "a long enough password"})
    assert erased.status_code == 204, erased.text

    assert await conn.fetchval("SELECT count(*) FROM pass_registrations") == 0
    rows = await conn.fetch("SELECT member_id, wallet_account_id, voided_at FROM passes")
    assert len(rows) == 2
    assert all(r["member_id"] is None and r["wallet_account_id"] is None
               and r["voided_at"] is not None for r in rows)
    identity = [s.member_id, s.email, s.card_number, wallet_account]
    for line in (await dump(conn)).splitlines():
        if PUSH_TOKEN in line or p.serial in line:
            assert not [x for x in identity if x.lower() in line.lower()], line

    http = httpx.AsyncClient(http1=False, http2=True, verify=pki.client_ssl())
    apns = ApnsSender(ApnsConfig(base_url=apns_server.url, team_id=TEAM_ID,
                                 key_id=APNS_KEY_ID,
                                 key_pem=pki.data["apns_key"],
                                 topic=PASS_TYPE_ID), http)
    google = GoogleWalletApi(GoogleApiConfig(
        api_url=google_server.url, token_url=f"{google_server.url}/token",
        service_account_json=pki.data["google"]), http)
    cfg = delivery.DeliveryConfig(google_issuer_id=ISSUER_ID, farewell_s=86400)
    now = datetime.now(UTC)
    report = await delivery.run_round(pool, apns=apns, google=google, cfg=cfg, now=now)
    assert report.sent == 2
    pushed: list[Seen] = apns_server.requests
    assert [seen.path for seen in pushed] == [f"/3/device/{PUSH_TOKEN}"]
    assert json.loads(objects[google_id]) == {
        "id": google_id, "classId": f"{ISSUER_ID}.program-{s.program_id.replace('-', '')}",
        "state": "INACTIVE"}

    # The phone, woken by the push, lists its passes and fetches the void one.
    listed = await client.get(f"/v1/passkit/v1/devices/phone/registrations/{PASS_TYPE_ID}")
    assert listed.json()["serialNumbers"] == [p.serial]
    voided = await client.get(f"/v1/passkit/v1/passes/{PASS_TYPE_ID}/{p.serial}",
                              headers=apple_auth(p.token))
    assert voided.status_code == 200
    pass_json = json.loads(unzip(voided.content)["pass.json"])
    assert pass_json["voided"] is True
    assert s.card_number not in json.dumps(pass_json) and "barcodes" not in pass_json
    # The user deletes the dead card: the phone unregisters; the period ends.
    assert (await client.delete(
        f"/v1/passkit/v1/devices/phone/registrations/{PASS_TYPE_ID}/{p.serial}",
        headers=apple_auth(p.token))).status_code == 200
    await delivery.run_round(pool, apns=apns, google=google, cfg=cfg,
                             now=now + timedelta(days=2), purge=True)
    after = await dump(conn)
    assert PUSH_TOKEN not in after and p.serial not in after
    assert google_id.split(".", 1)[1] not in after
    await http.aclose()
    await google_server.stop()
    await apns_server.stop()
