"""What a pass shows, as Apple's `pass.json` and Google's loyalty object. Pure: no I/O, no
clock (`now` where needed comes in as an argument).

Data minimisation: a pass carries the program's name and colours, the member's tier, points
and stored-value balance, the offers waiting for them, the card number as a barcode and up to
ten store locations. Never the e-mail; the first name only when the member chose to show it.

The barcode is the static card number, so a screenshot of it works as well as the phone.
What it may do at the till (enforced in `wallet/till.py`): identify the member to *earn*
points. Spending points, offers or stored value with a card number needs the member's PIN;
the app's rotating QR code (a signed token valid about a minute) spends points and offers
without it (stored value always needs the PIN).

Locations are chosen without tracking the member (`choose_locations`): the stores of their
recent purchases, then — only with current `location_offers` consent — the stores of their
recent visits, then the program's flagship stores. A location is the store's point (a
circle's centre, a polygon's centroid) with a short text for the lock screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from shapely.geometry import shape

from wallet.passes.model import (
    MAX_LOCATIONS,
    Location,
    PassView,
    StoreCandidate,
)

# ISO 4217 minor units where they are not 2 (the rest of the table is 2).
_EXPONENTS: dict[str, int] = {
              "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
              "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
              "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
              "CLF": 4, "UYW": 4}


def exponent(currency: str) -> int:
    """Digits after the decimal point of `currency` (ISO 4217; 2 when not listed)."""
    return _EXPONENTS.get(currency.upper(), 2)


def major_units(minor: int, currency: str) -> Decimal:
    """`minor` units as an exact decimal amount: 1250 EUR → 12.50; 1250 JPY → 1250."""
    return Decimal(minor).scaleb(-exponent(currency))


def micros(minor: int, currency: str) -> int:
    """`minor` units in millionths of the major unit (Google's `Money.micros`)."""
    return int(minor * 10 ** (6 - exponent(currency)))


def zone_point(zone: dict[str, Any]) -> tuple[float, float] | None:
    """(lat, lon) standing for a store zone: a Circle's centre, a (Multi)Polygon's centroid;
    None for anything else. GeoJSON order is [lon, lat]."""
    if zone.get("type") == "Circle":
        center = zone.get("center")
        if isinstance(center, list) and len(center) == 2:
            return float(center[1]), float(center[0])
        return None
    if zone.get("type") not in ("Polygon", "MultiPolygon"):
        return None
    try:
        c = shape(zone).centroid
    except (ValueError, TypeError, AttributeError, KeyError):
        return None
    return (float(c.y), float(c.x)) if not c.is_empty else None


def choose_locations(purchases: Sequence[StoreCandidate], visits: Sequence[StoreCandidate],
                     featured: Sequence[StoreCandidate], *, location_consent: bool,
                     program_name: str, limit: int = MAX_LOCATIONS) -> list[Location]:
    """At most `limit` (≤ 10) distinct stores: recent purchases first (most recent first),
    then recent visits only if `location_consent`, then the program's flagship stores.
    Stores whose zone gives no point are skipped."""
    out: list[Location] = []
    seen: set[object] = set()
    groups = (purchases, visits if location_consent else (), featured)
    for group in groups:
        for store in group:
            if len(out) >= min(limit, MAX_LOCATIONS):
                return out
            if store.id in seen:
                continue
            point = zone_point(store.zone)
            if point is None:
                continue
            seen.add(store.id)
            out.append(Location(store_id=store.id, latitude=round(point[0], 6),
                                longitude=round(point[1], 6),
                                relevant_text=_relevant_text(store.name, program_name)))
    return out


def _relevant_text(store_name: str, program_name: str) -> str:
    # Shown on the lock screen near the store: nothing personal (no balance, no name).
    return f"{store_name[:80]}: show your {program_name[:40]} card at the till"


def _rgb(color: str) -> str:
    """"#rrggbb" → "rgb(r, g, b)", Apple's colour syntax."""
    r, g, b = (int(color[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


EARN_ONLY_NOTE = ("The barcode shows your card number: the till uses it to add points. "
                  "Spending points, offers or your balance needs your PIN or the app's "
                  "QR code.")
VOID_NOTE = "This card is no longer valid: the membership was closed."


def apple_pass_json(view: PassView, *, pass_type_id: str, team_id: str,
                    web_service_url: str) -> dict[str, Any]:
    """The `pass.json` of a `storeCard` pass (Apple's PassKit format, version 1)."""
    top: dict[str, Any] = {
        "formatVersion": 1, "passTypeIdentifier": pass_type_id, "teamIdentifier": team_id,
        "serialNumber": view.serial, "organizationName": view.program_name,
        "description": f"{view.program_name} loyalty card", "logoText": view.program_name,
        "backgroundColor": _rgb(view.design.background_color),
        "foregroundColor": _rgb(view.design.foreground_color),
        "labelColor": _rgb(view.design.label_color),
        "webServiceURL": web_service_url, "authenticationToken": view.auth_token,
        "sharingProhibited": True,
    }
    if view.voided:
        return {**top, "voided": True, "storeCard": {
            "primaryFields": [{"key": "status", "label": "Card", "value": "Closed"}],
            "backFields": [{"key": "about", "label": "About", "value": VOID_NOTE}]}}
    points = {"key": "points", "label": "Points", "value": view.points,
              "changeMessage": "You now have %@ points"}
    balance = {"key": "stored_value", "label": "Balance",
               "value": major_units(view.stored_value, view.currency),
               "currencyCode": view.currency, "changeMessage": "Your balance is now %@"}
    secondary: list[dict[str, Any]] = []
    if view.tier:
        secondary.append({"key": "tier", "label": "Tier", "value": view.tier,
                          "changeMessage": "Your tier is now %@"})
    if view.first_name:
        secondary.append({"key": "member", "label": "Member", "value": view.first_name})
    back: list[dict[str, Any]] = []
    if view.card_number:
        back.append({"key": "card_number", "label": "Card number", "value": view.card_number})
    back.extend({"key": f"offer_{i}", "label": "Offer", "value": o.title}
                for i, o in enumerate(view.offers))
    back.append({"key": "barcode_use", "label": "At the till", "value": EARN_ONLY_NOTE})
    card: dict[str, Any] = {
        "headerFields": [points] if view.stored_value_enabled else [],
        "primaryFields": [balance] if view.stored_value_enabled else [points],
        "secondaryFields": secondary,
        "auxiliaryFields": [{"key": "offers", "label": "Offers", "value": len(view.offers),
                             "changeMessage": "Offers waiting for you: %@"}],
        "backFields": back,
    }
    out = {**top, "storeCard": card}
    if view.card_number:
        code = {"format": "PKBarcodeFormatQR", "message": view.card_number,
                "messageEncoding": "iso-8859-1", "altText": view.card_number}
        out["barcodes"] = [code]
        out["barcode"] = code  # iOS 8 and older read this one
    if view.locations:
        out["locations"] = [{"latitude": loc.latitude, "longitude": loc.longitude,
                             "relevantText": loc.relevant_text} for loc in view.locations]
    return out


def google_ids(issuer_id: str, view: PassView) -> tuple[str, str]:
    """(object id, class id): one object per pass, one class per program."""
    return f"{issuer_id}.{view.serial}", f"{issuer_id}.program-{view.program_id.hex}"


def google_object(view: PassView, *, issuer_id: str) -> dict[str, Any]:
    """The Google Wallet `loyaltyObject` of a pass (REST resource and save-JWT payload).
    A voided pass is an INACTIVE object without any member data."""
    object_id, class_id = google_ids(issuer_id, view)
    if view.voided:
        return {"id": object_id, "classId": class_id, "state": "INACTIVE"}
    obj: dict[str, Any] = {
        "id": object_id, "classId": class_id, "state": "ACTIVE",
        "loyaltyPoints": {"label": "Points", "balance": {"int": view.points}},
        "textModulesData": [{"id": "barcode_use", "header": "At the till",
                             "body": EARN_ONLY_NOTE}],
    }
    if view.card_number:
        obj["accountId"] = view.card_number
        obj["barcode"] = {"type": "QR_CODE", "value": view.card_number,
                          "alternateText": view.card_number}
    if view.first_name:
        obj["accountName"] = view.first_name
    if view.stored_value_enabled:
        obj["secondaryLoyaltyPoints"] = {"label": "Balance", "balance": {"money": {
            "micros": micros(view.stored_value, view.currency),
            "currencyCode": view.currency}}}
    if view.tier:
        obj["textModulesData"].insert(0, {"id": "tier", "header": "Tier", "body": view.tier})
    obj["textModulesData"].extend({"id": f"offer_{i}", "header": "Offer", "body": o.title}
                                  for i, o in enumerate(view.offers[:8]))
    return obj


def google_class(view: PassView, *, issuer_id: str, issuer_name: str,
                 logo_url: str) -> dict[str, Any]:
    """The program's `loyaltyClass`, for the save JWT (Google creates it on first save)."""
    _, class_id = google_ids(issuer_id, view)
    return {"id": class_id, "issuerName": issuer_name[:20] or view.program_name[:20],
            "programName": view.program_name, "reviewStatus": "UNDER_REVIEW",
            "hexBackgroundColor": view.design.background_color,
            "programLogo": {"sourceUri": {"uri": logo_url}}}
