"""Examples for the OpenAPI document of the rewards routes: one realistic request and response
per operation (a coffee-shop program, in EUR)."""

from __future__ import annotations

from typing import Any

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body

PROGRAM = "6f1c2a0e-3b7d-4e51-9a2c-1d0e8f7a6b5c"
REWARD = "0b9d8c7a-6e5f-4a3b-8c2d-1e0f9a8b7c6d"
STORE = "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f"
VOUCHER = "9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d7c6b"
ACCOUNT = "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d"

REWARD_IN: dict[str, Any] = {
    "name": "Free flat white", "description": "Any size, in any of our city-centre shops.",
    "image_url": "https://cdn.example.com/rewards/flat-white.png", "points_cost": 250,
    "kind": "voucher", "value": 420, "stock": 500, "per_member_limit": 2,
    "claimable_from": "2026-06-01T00:00:00+02:00",
    "claimable_until": "2026-09-01T00:00:00+02:00", "voucher_valid_for_s": 2_592_000,
    "tiers": ["gold"], "store_ids": [STORE]}

REWARD_OUT: dict[str, Any] = {
    "id": REWARD, "program_id": PROGRAM, **REWARD_IN, "stock_left": 488, "claimed": 12,
    "claimable_from": "2026-05-31T22:00:00Z", "claimable_until": "2026-08-31T22:00:00Z",
    "status": "active", "revision": 2, "created_at": "2026-05-20T09:12:44Z",
    "updated_at": "2026-05-22T16:03:10Z", "retired_at": None}

REWARD_PATCH: dict[str, Any] = {"points_cost": 200, "stock": None}

REVISIONS: dict[str, Any] = {"items": [{
    "revision": 2, "changed_at": "2026-05-22T16:03:10Z",
    "changed_by": "7d6c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a", "action": "update",
    "before": {"status": "active", "revision": 1, "spec": {**REWARD_IN, "points_cost": 300}},
    "after": {"status": "active", "revision": 2, "spec": REWARD_IN}}], "next_cursor": "2"}

STATS: dict[str, Any] = {"reward_id": REWARD, "claimed": 12, "active": 7, "used": 4,
                         "expired": 1, "cancelled": 0, "points_spent": 3000,
                         "points_returned": 250, "stock": 500, "stock_left": 488}

MEMBER_REWARDS: dict[str, Any] = {"items": [{
    "id": REWARD, "name": "Free flat white", "description": "Any size.",
    "image_url": "https://cdn.example.com/rewards/flat-white.png", "points_cost": 250,
    "kind": "voucher", "value": 420, "store_ids": [STORE],
    "claimable_from": None, "claimable_until": "2026-08-31T22:00:00Z",
    "voucher_valid_for_s": 2_592_000, "stock_left": 488, "per_member_limit": 2,
    "claimed_by_me": 0, "affordable": True, "claimable": True,
    "created_at": "2026-05-20T09:12:44Z"}], "next_cursor": None, "points_available": 640}

VOUCHER_OUT: dict[str, Any] = {
    "id": VOUCHER, "code": "K7QM2XJD9P", "qr_payload": "voucher:K7QM2XJD9P",
    "reward_id": REWARD, "name": "Free flat white", "kind": "voucher", "value": 420,
    "store_ids": [STORE], "points_spent": 250, "points_returned": 0, "status": "active",
    "claimed_at": "2026-06-03T08:15:02Z", "expires_at": "2026-07-03T08:15:02Z",
    "used_at": None, "used_store_id": None}

CLAIM: dict[str, Any] = {"voucher": VOUCHER_OUT, "points_balance": 390,
                         "stored_value_balance": 0}

MY_VOUCHERS: dict[str, Any] = {"items": [VOUCHER_OUT], "next_cursor": None}

REDEEM_IN: dict[str, Any] = {"store_id": STORE, "code": "K7QM-2XJD-9P"}

REDEEMED: dict[str, Any] = {
    "voucher_id": VOUCHER, "code": "K7QM2XJD9P", "reward_id": REWARD,
    "name": "Free flat white", "kind": "voucher", "value": 420, "member_ref": ACCOUNT,
    "store_id": STORE, "used_at": "2026-06-10T07:58:31Z"}


def body(summary: str, value: Any) -> Any:
    """A request body marker carrying one example."""
    return Body(examples=[Example(summary=summary, value=value)])


def ok(status: int, container: Any, description: str, value: Any) -> dict[int, ResponseSpec]:
    """The success response of an operation, with its schema and one example."""
    return {status: ResponseSpec(data_container=container, description=description,
                                 examples=[Example(summary=description, value=value)])}
