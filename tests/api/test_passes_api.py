"""Members' wallet passes over HTTP: the signed .pkpass (unpacked, manifest and signature
checked against the test CA), its content (balances, ≤ 10 locations as specified, no e-mail),
the Google save link (JWT verified with the service account's public key), the program's
pass design, and the "not configured" problem."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import jwt
import msgspec
import pytest
from support.helpers import Client, manager
from support.pass_fixtures import (
    ISSUER_ID,
    PASS_TYPE_ID,
    TEAM_ID,
    Pki,
    buy,
    make_pki,
    scene,
    unzip,
    verify_pkcs7_detached,
)

from api.auth.tokens import TokenService
from api.config import Settings


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def settings(settings: Settings, pki: Pki) -> Settings:
    return msgspec.structs.replace(settings, **pki.settings())


def unpack(data: bytes, pki: Pki) -> tuple[dict[str, Any], dict[str, bytes]]:
    files = unzip(data)
    manifest = json.loads(files["manifest.json"])
    assert set(manifest) == set(files) - {"manifest.json", "signature"}
    for name, digest in manifest.items():
        assert hashlib.sha1(files[name], usedforsecurity=False).hexdigest() == digest, name
    assert verify_pkcs7_detached(files["signature"], files["manifest.json"],
                                 root=pki.root) == pki.pass_cert
    return json.loads(files["pass.json"]), files


async def test_the_pkpass_is_signed_and_carries_the_balances_without_the_email(
        client: Client, tokens: TokenService, pki: Pki) -> None:
    s = await scene(client, tokens)
    await buy(client, s, 12_50)
    r = await client.get("/v1/me/card/apple-pass", headers=s.headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/vnd.apple.pkpass"
    assert r.headers["last-modified"].endswith("GMT")
    pass_json, files = unpack(r.content, pki)
    me = (await client.get("/v1/me", headers=s.headers)).json()
    card = pass_json["storeCard"]
    assert me["points_balance"] == 12
    assert card["headerFields"][0]["value"] == 12
    assert card["primaryFields"][0] == {
        "key": "stored_value", "label": "Balance", "value": 0.0, "currencyCode": "EUR",
        "changeMessage": "Your balance is now %@"}
    assert card["secondaryFields"][0]["value"] == me["tier"] == "silver"
    assert pass_json["passTypeIdentifier"] == PASS_TYPE_ID
    assert pass_json["teamIdentifier"] == TEAM_ID
    assert pass_json["barcodes"][0]["message"] == s.card_number
    assert pass_json["webServiceURL"] == "https://loyalty.example.com/v1/passkit"
    everything = b"".join(files.values()).lower()
    assert s.email.lower().encode() not in everything
    assert b"alex" not in everything  # the first name: not chosen


async def test_locations_are_the_stores_of_recent_purchases_at_most_ten(
        client: Client, tokens: TokenService, pki: Pki) -> None:
    s = await scene(client, tokens, stores=12)
    for i in range(12):
        await buy(client, s, 100, store=i)
    r = await client.get("/v1/me/card/apple-pass", headers=s.headers)
    pass_json, _ = unpack(r.content, pki)
    locations = pass_json["locations"]
    assert len(locations) == 10
    # the ten most recent purchases' stores, most recent first (store i at lon 2.30+0.01 i)
    assert [round((loc["longitude"] - 2.30) / 0.01) for loc in locations] == list(
        range(11, 1, -1))
    assert all("Store S" in loc["relevantText"] for loc in locations)


async def test_no_location_without_a_purchase_a_consented_visit_or_a_flagship_store(
        client: Client, tokens: TokenService, pki: Pki) -> None:
    s = await scene(client, tokens, stores=2)
    pass_json, _ = unpack((await client.get("/v1/me/card/apple-pass",
                                            headers=s.headers)).content, pki)
    assert "locations" not in pass_json
    design = {"background_color": "#112233", "foreground_color": "#FFFFFF",
              "label_color": "#aabbcc", "featured_store_ids": [s.store_ids[1]]}
    put = await client.put(f"/v1/programs/{s.program_id}/pass-design", json=design,
                           headers=manager(tokens, s.program_id))
    assert put.status_code == 200, put.text
    assert put.json()["foreground_color"] == "#ffffff"
    pass_json, _ = unpack((await client.get("/v1/me/card/apple-pass",
                                            headers=s.headers)).content, pki)
    assert [round((loc["longitude"] - 2.30) / 0.01) for loc in pass_json["locations"]] == [1]
    assert pass_json["backgroundColor"] == "rgb(17, 34, 51)"


async def test_the_name_is_shown_only_when_the_member_asks_and_the_choice_is_kept(
        client: Client, tokens: TokenService, pki: Pki) -> None:
    s = await scene(client, tokens)
    shown, _ = unpack((await client.get("/v1/me/card/apple-pass?show_name=true",
                                        headers=s.headers)).content, pki)
    assert {"key": "member", "label": "Member", "value": "Alex"} in (
        shown["storeCard"]["secondaryFields"])
    again, _ = unpack((await client.get("/v1/me/card/apple-pass", headers=s.headers)).content,
                      pki)
    assert again["serialNumber"] == shown["serialNumber"]
    assert "Alex" in json.dumps(again)
    hidden, _ = unpack((await client.get("/v1/me/card/apple-pass?show_name=false",
                                         headers=s.headers)).content, pki)
    assert "Alex" not in json.dumps(hidden)


async def test_the_google_save_link_carries_a_jwt_signed_by_the_service_account(
        client: Client, tokens: TokenService, pki: Pki) -> None:
    s = await scene(client, tokens)
    await buy(client, s, 5_00)
    r = await client.get("/v1/me/card/google-wallet", headers=s.headers)
    assert r.status_code == 200, r.text
    url = r.json()["save_url"]
    prefix = "https://pay.google.com/gp/v/save/"
    assert url.startswith(prefix)
    token = url[len(prefix):]
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT",
                                                "kid": "google-key-1"}
    claims = jwt.decode(token, pki.google_public, algorithms=["RS256"], audience="google")
    assert claims["iss"] == pki.google_email and claims["typ"] == "savetowallet"
    assert claims["origins"] == ["https://app.example.com"]
    (obj,) = claims["payload"]["loyaltyObjects"]
    assert obj["id"].startswith(f"{ISSUER_ID}.") and obj["classId"].startswith(f"{ISSUER_ID}.")
    assert obj["accountId"] == s.card_number == obj["barcode"]["value"]
    assert obj["loyaltyPoints"]["balance"] == {"int": 5}
    assert obj["secondaryLoyaltyPoints"]["balance"]["money"] == {"micros": 0,
                                                                 "currencyCode": "EUR"}
    assert s.email not in json.dumps(claims) and "accountName" not in obj
    other = pki.directory / "other"
    other.mkdir(exist_ok=True)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, make_pki(other).google_public, algorithms=["RS256"],
                   audience="google")


async def test_a_design_naming_a_store_of_another_program_is_404(
        client: Client, tokens: TokenService) -> None:
    s, other = await scene(client, tokens), await scene(client, tokens)
    r = await client.put(f"/v1/programs/{s.program_id}/pass-design", json={
        "background_color": "#000000", "foreground_color": "#ffffff",
        "label_color": "#ffffff", "featured_store_ids": [other.store_ids[0]]},
        headers=manager(tokens, s.program_id))
    assert r.status_code == 404, r.text
    assert r.json()["field"] == "featured_store_ids"
    bad = await client.put(f"/v1/programs/{s.program_id}/pass-design", json={
        "background_color": "red", "foreground_color": "#ffffff", "label_color": "#ffffff"},
        headers=manager(tokens, s.program_id))
    assert bad.status_code == 400 and "background_color" in bad.text
    other_manager = await client.get(f"/v1/programs/{s.program_id}/pass-design",
                                     headers=manager(tokens, other.program_id))
    assert other_manager.status_code == 403


async def test_the_privacy_notice_covers_passes_and_their_recipients(client: Client) -> None:
    notice = (await client.get("/v1/privacy/notice")).json()
    (passes,) = [c for c in notice["data_categories"] if c["category"] == "wallet passes"]
    assert "push tokens" in " ".join(passes["fields"])
    assert "30 days" in passes["kept"]
    recipients = {r["recipient"]: r for r in notice["recipients"]}
    assert "push token" in recipients["Apple (push notification service)"]["receives"]
    google = recipients["Google (Google Wallet), if you save your card there"]
    assert google["logged"] is True and "first name only if" in google["receives"]
