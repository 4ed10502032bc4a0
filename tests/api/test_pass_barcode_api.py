"""What the static barcode of a wallet pass (the card number) may do at the till: earn
points, yes; spend points or offers, only with the member's PIN; the app's rotating QR code
spends them without the PIN. Stored value always needs the PIN."""

from __future__ import annotations

import json
import uuid
from typing import Any

import msgspec
import pytest
from support.helpers import Client
from support.pass_fixtures import Pki, Scene, buy, make_pki, scene, unzip

from api.auth.tokens import TokenService
from api.config import Settings

PIN = "24680"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def settings(settings: Settings, pki: Pki) -> Settings:
    return msgspec.structs.replace(settings, **pki.settings())


async def barcode_of_pass(client: Client, s: Scene) -> str:
    r = await client.get("/v1/me/card/apple-pass", headers=s.headers)
    pass_json = json.loads(unzip(r.content)["pass.json"])
    (code,) = pass_json["barcodes"]
    assert code["format"] == "PKBarcodeFormatQR"
    return str(code["message"])


async def purchase(client: Client, s: Scene, card: dict[str, str], amount: int,
                   **extra: Any) -> Any:
    return await client.post("/v1/pos/purchases", json={
        "store_id": s.store_ids[0], "receipt_id": uuid.uuid4().hex, "amount": amount,
        "currency": "EUR", **card, **extra},
        headers={**s.staff, "Idempotency-Key": uuid.uuid4().hex})


async def member_with_points(client: Client, tokens: TokenService) -> Scene:
    s = await scene(client, tokens)
    r = await client.put("/v1/me/pin", json={"pin": PIN, "password": "a long enough password"},
                         headers=s.headers)
    assert r.status_code in (200, 204), r.text
    await buy(client, s, 50_00)  # 50 points
    return s


async def test_the_pass_barcode_earns_points_without_a_pin(
        client: Client, tokens: TokenService) -> None:
    s = await member_with_points(client, tokens)
    code = await barcode_of_pass(client, s)
    r = await purchase(client, s, {"card_number": code}, 10_00)
    assert r.status_code == 201, r.text
    assert r.json()["points_earned"] == 10 and r.json()["points_balance"] == 60


async def test_spending_points_from_the_pass_barcode_needs_the_pin(
        client: Client, tokens: TokenService) -> None:
    s = await member_with_points(client, tokens)
    code = await barcode_of_pass(client, s)
    refused = await purchase(client, s, {"card_number": code}, 10_00, redeem={"points": 20})
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"] == "/problems/pin-required"
    assert refused.json()["field"] == "redeem.pin"
    wrong = await purchase(client, s, {"card_number": code}, 10_00,
                           redeem={"points": 20, "pin": "11111"})
    assert wrong.status_code == 422 and wrong.json()["type"] == "/problems/wrong-pin"
    assert (await client.get("/v1/me", headers=s.headers)).json()["points_balance"] == 50
    ok = await purchase(client, s, {"card_number": code}, 10_00,
                        redeem={"points": 20, "pin": PIN})
    assert ok.status_code == 201, ok.text
    assert ok.json()["points_redeemed"] == 20


async def test_the_apps_rotating_qr_spends_points_without_the_pin_but_not_stored_value(
        client: Client, tokens: TokenService) -> None:
    s = await member_with_points(client, tokens)
    qr = (await client.get("/v1/me/card", headers=s.headers)).json()["qr"]["payload"]
    ok = await purchase(client, s, {"qr_payload": qr}, 10_00, redeem={"points": 20})
    assert ok.status_code == 201, ok.text
    assert ok.json()["points_redeemed"] == 20
    value = await purchase(client, s, {"qr_payload": qr}, 10_00,
                           stored_value={"amount": 100, "pin": "11111"})
    assert value.status_code == 422 and value.json()["field"] == "stored_value.pin"
