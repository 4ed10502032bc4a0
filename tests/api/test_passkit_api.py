"""The PassKit web service as Apple's reference describes it: register (201, then 200),
unregister, list the serials updated since a tag (204 when none), the latest pass with
If-Modified-Since (304), the log endpoint; 401 for a wrong `ApplePass` token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import msgspec
import pytest
from support.helpers import Client
from support.pass_fixtures import (
    PASS_TYPE_ID,
    Pki,
    apple_auth,
    apple_pass_of,
    buy,
    make_pki,
    scene,
    unzip,
)

from api.auth.tokens import TokenService
from api.config import Settings
from wallet.passes import delivery

BASE = "/v1/passkit"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def settings(settings: Settings, pki: Pki) -> Settings:
    return msgspec.structs.replace(settings, **pki.settings())


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(db_url, min_size=1, max_size=3)
    try:
        yield p
    finally:
        await p.close()


async def publish(pool: asyncpg.Pool) -> delivery.RoundReport:
    """One delivery round without push senders: changes become new update tags."""
    return await delivery.run_round(pool, apns=None, google=None,
                                    cfg=delivery.DeliveryConfig(), now=datetime.now(UTC))


def registration(device: str, serial: str, prefix: str = BASE) -> str:
    return f"{prefix}/devices/{device}/registrations/{PASS_TYPE_ID}/{serial}"


async def test_register_lists_updates_since_a_tag_and_unregister(
        client: Client, tokens: TokenService, pool: asyncpg.Pool) -> None:
    s = await scene(client, tokens)
    p = await apple_pass_of(client, s)
    url = registration("device-1", p.serial)
    first = await client.post(url, json={"pushToken": "aa11"}, headers=apple_auth(p.token))
    assert first.status_code == 201, first.text
    again = await client.post(url, json={"pushToken": "bb22"}, headers=apple_auth(p.token))
    assert again.status_code == 200

    listed = await client.get(f"{BASE}/devices/device-1/registrations/{PASS_TYPE_ID}")
    assert listed.status_code == 200
    assert listed.json()["serialNumbers"] == [p.serial]
    tag = listed.json()["lastUpdated"]
    nothing = await client.get(f"{BASE}/devices/device-1/registrations/{PASS_TYPE_ID}",
                               params={"passesUpdatedSince": tag})
    assert nothing.status_code == 204 and nothing.content == b""

    await buy(client, s, 3_00)
    assert (await publish(pool)).published == 1
    changed = await client.get(f"{BASE}/devices/device-1/registrations/{PASS_TYPE_ID}",
                               params={"passesUpdatedSince": tag})
    assert changed.status_code == 200
    assert changed.json()["serialNumbers"] == [p.serial]
    assert int(changed.json()["lastUpdated"]) > int(tag)
    since_new = await client.get(f"{BASE}/devices/device-1/registrations/{PASS_TYPE_ID}",
                                 params={"passesUpdatedSince": changed.json()["lastUpdated"]})
    assert since_new.status_code == 204

    gone = await client.delete(url, headers=apple_auth(p.token))
    assert gone.status_code == 200
    assert (await client.get(f"{BASE}/devices/device-1/registrations/{PASS_TYPE_ID}"
                             )).status_code == 204
    assert (await client.delete(url, headers=apple_auth(p.token))).status_code == 200


async def test_a_wrong_or_missing_applepass_token_is_401_and_changes_nothing(
        client: Client, tokens: TokenService, pool: asyncpg.Pool) -> None:
    s = await scene(client, tokens)
    p = await apple_pass_of(client, s)
    other = await apple_pass_of(client, await scene(client, tokens))
    url = registration("device-2", p.serial)
    for headers in (apple_auth(other.token), apple_auth(p.token[:-1]), {},
                    {"Authorization": f"Bearer {p.token}"}):
        r = await client.post(url, json={"pushToken": "aa11"}, headers=headers)
        assert r.status_code == 401, r.text
        assert r.json()["type"] == "/problems/unauthorized"
        assert (await client.delete(url, headers=headers)).status_code == 401
        assert (await client.get(f"{BASE}/passes/{PASS_TYPE_ID}/{p.serial}",
                                 headers=headers)).status_code == 401
    unknown = await client.post(registration("device-2", "x" * 32), json={"pushToken": "aa"},
                                headers=apple_auth(p.token))
    assert unknown.status_code == 401
    assert (await client.get(f"{BASE}/devices/device-2/registrations/{PASS_TYPE_ID}"
                             )).status_code == 204
    wrong_type = await client.post(
        f"{BASE}/devices/device-2/registrations/pass.other/{p.serial}",
        json={"pushToken": "aa11"}, headers=apple_auth(p.token))
    assert wrong_type.status_code == 404


async def test_the_latest_pass_honours_if_modified_since(
        client: Client, tokens: TokenService, pool: asyncpg.Pool, pki: Pki) -> None:
    s = await scene(client, tokens)
    p = await apple_pass_of(client, s)
    url = f"{BASE}/passes/{PASS_TYPE_ID}/{p.serial}"
    latest = await client.get(url, headers=apple_auth(p.token))
    assert latest.status_code == 200
    assert latest.headers["content-type"] == "application/vnd.apple.pkpass"
    modified = latest.headers["last-modified"]
    assert modified == p.last_modified
    unchanged = await client.get(url, headers={**apple_auth(p.token),
                                               "If-Modified-Since": modified})
    assert unchanged.status_code == 304 and unchanged.content == b""

    await buy(client, s, 7_00)
    await publish(pool)
    fresh = await client.get(url, headers={**apple_auth(p.token), "If-Modified-Since": modified})
    assert fresh.status_code == 200
    assert fresh.headers["last-modified"] != modified
    card = json.loads(unzip(fresh.content)["pass.json"])["storeCard"]
    assert card["headerFields"][0]["value"] == 7
    assert (await client.get(url, headers={
        **apple_auth(p.token), "If-Modified-Since": fresh.headers["last-modified"]})
            ).status_code == 304


async def test_phones_reach_the_same_service_under_apples_version_segment(
        client: Client, tokens: TokenService) -> None:
    s = await scene(client, tokens)
    p = await apple_pass_of(client, s)
    alias = f"{BASE}/v1"
    r = await client.post(registration("device-3", p.serial, alias), json={"pushToken": "cc33"},
                          headers=apple_auth(p.token))
    assert r.status_code == 201, r.text
    listed = await client.get(f"{alias}/devices/device-3/registrations/{PASS_TYPE_ID}")
    assert listed.json()["serialNumbers"] == [p.serial]
    assert (await client.get(f"{alias}/passes/{PASS_TYPE_ID}/{p.serial}",
                             headers=apple_auth(p.token))).status_code == 200
    assert (await client.post(f"{alias}/log", json={"logs": ["a device message"]}
                              )).status_code == 200


async def test_bad_input_is_refused_with_a_problem_naming_it(
        client: Client, tokens: TokenService) -> None:
    s = await scene(client, tokens)
    p = await apple_pass_of(client, s)
    bad_token = await client.post(registration("device-4", p.serial),
                                  json={"pushToken": "not hex!"}, headers=apple_auth(p.token))
    assert bad_token.status_code == 400 and "pushToken" in bad_token.text
    bad_device = await client.post(registration("dev%20ice", p.serial),
                                   json={"pushToken": "aa"}, headers=apple_auth(p.token))
    assert bad_device.status_code == 422
    assert bad_device.json()["field"] == "deviceLibraryIdentifier"
    bad_tag = await client.get(f"{BASE}/devices/device-4/registrations/{PASS_TYPE_ID}",
                               params={"passesUpdatedSince": "yesterday"})
    assert bad_tag.status_code == 422 and bad_tag.json()["field"] == "passesUpdatedSince"
    assert (await client.post(f"{BASE}/log", json={"logs": "x"})).status_code == 400
