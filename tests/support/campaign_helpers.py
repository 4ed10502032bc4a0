"""Scenario helpers for campaign and offer tests, through the public API (plus one SQL
shortcut: a member's tier, which otherwise takes a year of purchases)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from support.helpers import Client, manager

from api.auth.tokens import TokenService

PARIS = ZoneInfo("Europe/Paris")


def iso(at: datetime) -> str:
    return at.isoformat()


def hhmm(at: datetime) -> str:
    return at.astimezone(PARIS).strftime("%H:%M")


def window_around_now(before_s: int = 3600, after_s: int = 3600) -> dict[str, str]:
    """An hour window (program time, Europe/Paris) that holds the current time."""
    now = datetime.now(UTC)
    return {"from": hhmm(now - timedelta(seconds=before_s)),
            "to": hhmm(now + timedelta(seconds=after_s))}


def window_not_now() -> dict[str, str]:
    """An hour window that does not hold the current time (it starts in 2 hours)."""
    now = datetime.now(UTC)
    return {"from": hhmm(now + timedelta(hours=2)), "to": hhmm(now + timedelta(hours=3))}


def campaign_body(*, store_ids: list[str] | None = None,
                  reward: tuple[str, int] = ("percent_off", 20),
                  hours: list[dict[str, str]] | None = None, tiers: list[str] | None = None,
                  context: dict[str, Any] | None = None, caps: dict[str, int] | None = None,
                  trigger: dict[str, Any] | None = None, valid_for_s: int = 3600,
                  name: str = "Ice cream", weekdays: list[int] | None = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    schedule: dict[str, Any] = {"starts_at": iso(now - timedelta(days=1)),
                                "ends_at": iso(now + timedelta(days=1))}
    if hours is not None:
        schedule["hours"] = hours
    if weekdays is not None:
        schedule["weekdays"] = weekdays
    body: dict[str, Any] = {
        "name": name, "store_ids": store_ids or [],
        "trigger": trigger or {"event": "enter"}, "schedule": schedule,
        "offer": {"title": name, "body": "Show this at the till",
                  "reward": {"kind": reward[0], "value": reward[1]},
                  "valid_for_s": valid_for_s}}
    if tiers is not None:
        body["audience"] = {"tiers": tiers}
    if context is not None:
        body["context"] = context
    if caps is not None:
        body["caps"] = caps
    return body


async def create_campaign(client: Client, tokens: TokenService, program_id: str,
                          body: dict[str, Any], *, activate: bool = True) -> dict[str, Any]:
    headers = manager(tokens, program_id)
    r = await client.post(f"/v1/programs/{program_id}/campaigns", json=body, headers=headers)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    if activate:
        r = await client.post(f"/v1/programs/{program_id}/campaigns/{out['id']}/activate",
                              headers=headers)
        assert r.status_code == 200, r.text
        out = r.json()
    return out


async def set_weather(client: Client, tokens: TokenService, program_id: str, store_id: str,
                      temp_c: float, *, age_s: int = 60, condition: str = "clear") -> None:
    at = datetime.now(UTC) - timedelta(seconds=age_s)
    r = await client.put(f"/v1/programs/{program_id}/weather", json={"observations": [
        {"store_id": store_id, "temp_c": temp_c, "condition": condition,
         "observed_at": iso(at)}]}, headers=manager(tokens, program_id))
    assert r.status_code == 200, r.text


async def set_tier(conn: asyncpg.Connection, member_id: str, tier: str) -> None:
    await conn.execute(
        "UPDATE wallet_accounts SET tier = $2 WHERE id = "
        "(SELECT wallet_account_id FROM members WHERE id = $1)", uuid.UUID(member_id), tier)


async def card_number(client: Client, headers: dict[str, str]) -> str:
    r = await client.get("/v1/me/card", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["card_number"])


async def card_qr(client: Client, headers: dict[str, str]) -> str:
    """The app's rotating QR payload (spends points and offers without the PIN)."""
    r = await client.get("/v1/me/card", headers=headers)
    assert r.status_code == 200, r.text
    return str(r.json()["qr"]["payload"])
