"""Examples for the OpenAPI document of the money and privacy routes of issue 10: payouts,
refunds in what was paid, the re-authenticated member actions and the privacy notice's
versions (the coffee chain in Paris, in EUR). The helpers are the rewards routes' own."""

from __future__ import annotations

from typing import Any

import msgspec

from api.config import Settings, privacy_notice
from api.controllers.rewards_examples import body, ok

__all__ = ["body", "ok"]

STORE = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
PURCHASE = "7d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"
PASSWORD = "correct horse battery staple"  # noqa: S105 - an example, not a secret

TILL_PAYOUT_IN: dict[str, Any] = {
    "store_id": STORE, "card_number": "9250001234567890", "amount": 4400, "currency": "EUR",
    "pin": "13579"}
TILL_PAYOUT: dict[str, Any] = {
    "transaction_id": "b5e4d3c2-a1f0-4e9d-8c7b-6a5f4e3d2c1b", "amount": 4400,
    "currency": "EUR", "stored_value_balance": 0, "points_balance": 312}

OPERATOR_PAYOUT_IN: dict[str, Any] = {"reason": "ticket 4411",
                                      "reference": "SEPA-2026-000123"}
OPERATOR_PAYOUT: dict[str, Any] = {
    "transaction_id": "c6f5e4d3-b2a1-4f0e-9d8c-7b6a5f4e3d2c", "amount": 4400,
    "currency": "EUR", "stored_value_balance": 0, "points_balance": 312}

REFUND_IN: dict[str, Any] = {"store_id": STORE, "receipt_id": "R-2026-06-10-0042"}
REFUND: dict[str, Any] = {
    "transaction_id": "d7a6f5e4-c3b2-4a1f-8e9d-0c1b2a3f4e5d",
    "original_transaction_id": PURCHASE, "amount": 1960, "refunded_amount": 1960,
    "cash_back": 960, "stored_value_back": 1000, "remaining_refundable": 0,
    "points_taken_back": 19, "points_shortfall": 0, "points_returned": 0,
    "stored_value_returned": 1000, "points_balance": 293, "stored_value_balance": 3000,
    "vouchers_restored": []}

ERASE_ME_IN: dict[str, Any] = {"password": PASSWORD}
CHANGE_PIN_IN: dict[str, Any] = {"pin": "24680", "password": PASSWORD, "current_pin": "13579"}
OPERATOR_ERASURE_IN: dict[str, Any] = {"reason": "ticket 4411"}


def notice_example() -> dict[str, Any]:
    """The notice with the default settings, as served and as published."""
    out: dict[str, Any] = msgspec.to_builtins(privacy_notice(Settings()))
    return out


def notice_versions() -> dict[str, Any]:
    current = privacy_notice(Settings()).version
    return {"items": [
        {"version": current, "published_at": "2026-06-01T08:00:00Z", "current": True},
        {"version": "5d1c0b9a8f7e6d5c", "published_at": "2026-01-15T09:30:00Z",
         "current": False}], "next_cursor": "WyIyMDI2LTAxLTE1VDA5OjMwOjAwWiIsIjVkMWMwYjlhIl0"}
