"""What a pass shows: balances, tier, barcode, at most ten locations chosen without tracking,
no e-mail, the first name only when chosen; a voided pass shows nothing of the member."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from wallet.passes import content
from wallet.passes.model import Design, OfferLine, PassView, StoreCandidate

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def store(n: int, kind: str = "Circle") -> StoreCandidate:
    lon, lat = 2.30 + n / 1000, 48.85 + n / 1000
    zone: dict[str, Any] = {"type": "Circle", "center": [lon, lat], "radius_m": 100}
    if kind == "Polygon":
        zone = {"type": "Polygon", "coordinates": [[[lon - 0.001, lat - 0.001],
                                                    [lon + 0.001, lat - 0.001],
                                                    [lon + 0.001, lat + 0.001],
                                                    [lon - 0.001, lat + 0.001],
                                                    [lon - 0.001, lat - 0.001]]]}
    return StoreCandidate(id=uuid.UUID(int=n), name=f"Store {n}", zone=zone)


def view(**over: Any) -> PassView:
    base: dict[str, Any] = dict(
        pass_id=uuid.uuid4(), kind="apple", serial="S" * 32, auth_token="t" * 43,
        program_id=uuid.uuid4(), program_name="Gelato Uno", currency="EUR",
        stored_value_enabled=True, design=Design(background_color="#102030"),
        update_seq=3, modified_at=AT, voided=False, card_number="9000000000000012",
        tier="gold", points=1234, stored_value=2550,
        offers=[OfferLine(title="A free scoop", expires_at=AT)])
    return PassView(**{**base, **over})


def test_locations_are_recent_purchases_then_flagship_stores_at_most_ten() -> None:
    purchases = [store(i) for i in range(1, 5)]
    featured = [store(i) for i in range(3, 20)]  # overlaps two purchase stores
    chosen = content.choose_locations(purchases, [], featured, location_consent=False,
                                      program_name="P")
    assert len(chosen) == 10
    assert [loc.store_id.int for loc in chosen] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert chosen[0].latitude == 48.851 and chosen[0].longitude == 2.301


def test_visit_stores_are_used_only_with_location_consent() -> None:
    visits = [store(50), store(51)]
    without = content.choose_locations([], visits, [store(60)], location_consent=False,
                                       program_name="P")
    assert [loc.store_id.int for loc in without] == [60]
    with_consent = content.choose_locations([], visits, [store(60)], location_consent=True,
                                            program_name="P")
    assert [loc.store_id.int for loc in with_consent] == [50, 51, 60]


def test_a_polygon_store_is_located_at_its_centroid() -> None:
    (loc,) = content.choose_locations([store(7, "Polygon")], [], [], location_consent=False,
                                      program_name="P")
    assert abs(loc.latitude - 48.857) < 1e-9 and abs(loc.longitude - 2.307) < 1e-9
    assert "Store 7" in loc.relevant_text and "1234" not in loc.relevant_text


def test_amounts_use_the_currencys_minor_units() -> None:
    assert content.major_units(2550, "EUR") == Decimal("25.50")
    assert content.major_units(2550, "JPY") == Decimal(2550)
    assert content.major_units(2550, "KWD") == Decimal("2.550")
    assert content.micros(2550, "EUR") == 25_500_000


def test_pass_json_carries_balances_tier_offers_and_the_card_number_barcode() -> None:
    data = content.apple_pass_json(view(), pass_type_id="pass.x", team_id="T",
                                   web_service_url="https://h/v1/passkit")
    card = data["storeCard"]
    assert card["primaryFields"][0]["value"] == Decimal("25.50")
    assert card["primaryFields"][0]["currencyCode"] == "EUR"
    assert card["headerFields"][0]["value"] == 1234
    assert card["secondaryFields"] == [{"key": "tier", "label": "Tier", "value": "gold",
                                        "changeMessage": "Your tier is now %@"}]
    assert card["auxiliaryFields"][0]["value"] == 1
    assert data["barcodes"][0]["message"] == "9000000000000012"
    assert data["backgroundColor"] == "rgb(16, 32, 48)"
    assert data["authenticationToken"] == "t" * 43 and data["serialNumber"] == "S" * 32
    assert "voided" not in data


def test_the_first_name_appears_only_when_the_member_chose_it() -> None:
    hidden = content.apple_pass_json(view(), pass_type_id="p", team_id="T", web_service_url="u")
    assert "Alex" not in str(hidden)
    shown = content.apple_pass_json(view(first_name="Alex"), pass_type_id="p", team_id="T",
                                    web_service_url="u")
    assert {"key": "member", "label": "Member", "value": "Alex"} in (
        shown["storeCard"]["secondaryFields"])


def test_a_voided_pass_shows_no_member_data() -> None:
    data = content.apple_pass_json(view(voided=True), pass_type_id="p", team_id="T",
                                   web_service_url="u")
    assert data["voided"] is True
    text = str(data)
    for secret in ("9000000000000012", "1234", "gold", "scoop"):
        assert secret not in text
    assert "barcodes" not in data and "locations" not in data
    google = content.google_object(view(voided=True), issuer_id="338")
    assert google == {"id": f"338.{'S' * 32}", "classId": google["classId"],
                      "state": "INACTIVE"}


def test_google_object_carries_account_id_balances_and_barcode() -> None:
    obj = content.google_object(view(), issuer_id="338")
    assert obj["accountId"] == "9000000000000012"
    assert obj["barcode"]["value"] == "9000000000000012"
    assert obj["loyaltyPoints"]["balance"] == {"int": 1234}
    assert obj["secondaryLoyaltyPoints"]["balance"]["money"] == {
        "micros": 25_500_000, "currencyCode": "EUR"}
    assert "accountName" not in obj and obj["state"] == "ACTIVE"
