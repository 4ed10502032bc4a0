"""Consents are opt-in, per purpose, kept with proof; preferences say how often and when."""

from __future__ import annotations

import uuid
from datetime import time
from typing import Any

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from support.helpers import bearer

from api.auth.tokens import TokenService
from wallet.members.consents import DEFAULT_PREFERENCES, Preferences, QuietHours, in_quiet_hours

Client = AsyncTestClient[Litestar]

PROGRAM: dict[str, Any] = {
    "name": "Café Lumière", "currency": "EUR", "timezone": "Europe/Paris",
    "earn_rate": {"points": 1, "per_amount": 100}, "points_expiry_days": 365,
}
PURPOSES = ["location_offers", "marketing", "personalisation", "partner_sharing"]


@pytest.fixture
async def program_id(client: Client, tokens: TokenService) -> str:
    admin = bearer(tokens.mint_access(sub=uuid.uuid4(), role="admin"))
    r = await client.post("/v1/programs", json=PROGRAM, headers=admin)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _signup(client: Client, program_id: str, email: str = "ann@example.com",
                  **over: Any) -> dict[str, str]:
    r = await client.post(f"/v1/programs/{program_id}/members", json={
        "email": email, "password": "ann's long secret", "first_name": "Ann", **over})
    assert r.status_code == 201, r.text
    return bearer(r.json()["access_token"])


@pytest.fixture
async def ann(client: Client, program_id: str) -> dict[str, str]:
    return await _signup(client, program_id)


@pytest.fixture
async def v(client: Client) -> str:
    """The version of the privacy notice served: a consent must name a published one."""
    return str((await client.get("/v1/privacy/notice")).json()["version"])


OLDER = "0123456789abcdef"  # an earlier notice, published before the current one


def _current(body: dict[str, Any]) -> dict[str, bool]:
    return {c["purpose"]: c["granted"] for c in body["current"]}


async def test_no_consent_is_granted_by_default(client: Client, ann: dict[str, str]) -> None:
    r = await client.get("/v1/me/consents", headers=ann)
    assert r.status_code == 200
    body = r.json()
    assert _current(body) == dict.fromkeys(PURPOSES, False)
    assert all(c["at"] is None and c["policy_version"] is None for c in body["current"])
    assert body["history"] == []


async def test_granting_records_the_proof(client: Client, ann: dict[str, str], v: str) -> None:
    r = await client.put("/v1/me/consents/location_offers", headers=ann,
                         json={"granted": True, "policy_version": v})
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["purpose"] == "location_offers"
    assert state["granted"] is True
    assert state["policy_version"] == v
    assert state["source"] == "app"
    assert state["at"]
    body = (await client.get("/v1/me/consents", headers=ann)).json()
    assert _current(body)["location_offers"] is True
    assert body["history"] == [{"purpose": "location_offers", "granted": True,
                                "policy_version": v, "source": "app",
                                "at": state["at"]}]


async def test_withdrawing_is_the_same_call_and_history_keeps_both(
        client: Client, ann: dict[str, str], v: str) -> None:
    url = "/v1/me/consents/marketing"
    await client.put(url, headers=ann, json={"granted": True, "policy_version": v})
    r = await client.put(url, headers=ann, json={"granted": False, "policy_version": v,
                                                 "source": "web"})
    assert r.status_code == 200
    assert r.json()["granted"] is False
    body = (await client.get("/v1/me/consents", headers=ann)).json()
    assert _current(body)["marketing"] is False
    assert [(h["granted"], h["source"]) for h in body["history"]] == [(True, "app"),
                                                                      (False, "web")]
    assert body["history"][0]["at"] <= body["history"][1]["at"]


async def test_the_current_state_is_the_latest_record_per_purpose(
        client: Client, ann: dict[str, str], v: str, conn: asyncpg.Connection) -> None:
    await conn.execute("INSERT INTO privacy_notices (version, published_at, notice) "
                       "VALUES ($1, now() - interval '1 year', '{}')", OLDER)
    steps = [("location_offers", True, OLDER), ("marketing", True, OLDER),
             ("location_offers", False, OLDER), ("location_offers", True, v),
             ("partner_sharing", False, v)]
    for purpose, granted, version in steps:
        r = await client.put(f"/v1/me/consents/{purpose}", headers=ann,
                             json={"granted": granted, "policy_version": version})
        assert r.status_code == 200
    body = (await client.get("/v1/me/consents", headers=ann)).json()
    assert _current(body) == {"location_offers": True, "marketing": True,
                              "personalisation": False, "partner_sharing": False}
    current = {c["purpose"]: c for c in body["current"]}
    assert current["location_offers"]["policy_version"] == v
    assert len(body["history"]) == len(steps)


async def test_consents_given_at_signup_are_recorded_with_proof(
        client: Client, program_id: str, v: str) -> None:
    me = await _signup(client, program_id, consents=[
        {"purpose": "location_offers", "granted": True, "policy_version": v},
        {"purpose": "marketing", "granted": False, "policy_version": v}])
    body = (await client.get("/v1/me/consents", headers=me)).json()
    assert _current(body) == {"location_offers": True, "marketing": False,
                              "personalisation": False, "partner_sharing": False}
    assert [(h["purpose"], h["granted"], h["policy_version"], h["source"])
            for h in body["history"]] == [("location_offers", True, v, "app"),
                                          ("marketing", False, v, "app")]


async def test_the_same_purpose_twice_at_signup_is_422_and_creates_nothing(
        client: Client, program_id: str, conn: asyncpg.Connection, v: str) -> None:
    r = await client.post(f"/v1/programs/{program_id}/members", json={
        "email": "ann@example.com", "password": "ann's long secret", "first_name": "Ann",
        "consents": [{"purpose": "marketing", "granted": True, "policy_version": v},
                     {"purpose": "marketing", "granted": False, "policy_version": v}]})
    assert r.status_code == 422
    assert r.json()["field"] == "consents[1].purpose"
    assert await conn.fetchval("SELECT count(*) FROM members") == 0


async def test_each_member_sees_only_their_own_consents(
        client: Client, program_id: str, ann: dict[str, str], v: str) -> None:
    bob = await _signup(client, program_id, email="bob@example.com")
    await client.put("/v1/me/consents/marketing", headers=ann,
                     json={"granted": True, "policy_version": v})
    body = (await client.get("/v1/me/consents", headers=bob)).json()
    assert body["history"] == []


@pytest.mark.parametrize(("path", "body", "status"), [
    ("/v1/me/consents/tracking", {"granted": True, "policy_version": "1"}, 400),
    ("/v1/me/consents/marketing", {"granted": True}, 400),
    ("/v1/me/consents/marketing", {"granted": "yes", "policy_version": "1"}, 400),
    ("/v1/me/consents/marketing", {"granted": True, "policy_version": ""}, 400),
    ("/v1/me/consents/marketing", {"granted": True, "policy_version": "1", "source": "Shop!"},
     400),
    ("/v1/me/consents/marketing", {"granted": True, "policy_version": "1", "why": "x"}, 400),
], ids=["unknown-purpose", "no-policy-version", "granted-not-bool", "empty-policy-version",
        "bad-source", "unknown-field"])
async def test_a_malformed_consent_change_is_refused_and_not_recorded(
        client: Client, ann: dict[str, str], path: str, body: dict[str, Any],
        status: int) -> None:
    r = await client.put(path, headers=ann, json=body)
    assert r.status_code == status, r.text
    assert (await client.get("/v1/me/consents", headers=ann)).json()["history"] == []


async def test_consent_history_goes_with_the_member(
        client: Client, ann: dict[str, str], conn: asyncpg.Connection, v: str) -> None:
    await client.put("/v1/me/consents/marketing", headers=ann,
                     json={"granted": True, "policy_version": v})
    assert await conn.fetchval("SELECT count(*) FROM member_consents") == 1
    await conn.execute("DELETE FROM members")
    assert await conn.fetchval("SELECT count(*) FROM member_consents") == 0


# --- preferences --------------------------------------------------------------------------


async def test_preferences_start_with_the_defaults(client: Client, ann: dict[str, str]) -> None:
    r = await client.get("/v1/me/preferences", headers=ann)
    assert r.status_code == 200
    assert r.json() == {"max_offers_per_day": None, "quiet_hours": None,
                        "channels": ["push", "in_app"]}


async def test_put_preferences_sets_cap_quiet_hours_and_channels(
        client: Client, ann: dict[str, str]) -> None:
    prefs = {"max_offers_per_day": 2, "quiet_hours": {"from": "21:30", "to": "08:00"},
             "channels": ["email", "push"]}
    r = await client.put("/v1/me/preferences", headers=ann, json=prefs)
    assert r.status_code == 200, r.text
    assert r.json() == prefs
    assert (await client.get("/v1/me/preferences", headers=ann)).json() == prefs


async def test_absent_fields_are_kept_and_null_clears(
        client: Client, ann: dict[str, str]) -> None:
    await client.put("/v1/me/preferences", headers=ann, json={
        "max_offers_per_day": 3, "quiet_hours": {"from": "22:00", "to": "07:00"}})
    r = await client.put("/v1/me/preferences", headers=ann, json={"channels": ["sms"]})
    assert r.json() == {"max_offers_per_day": 3,
                        "quiet_hours": {"from": "22:00", "to": "07:00"}, "channels": ["sms"]}
    r = await client.put("/v1/me/preferences", headers=ann,
                         json={"quiet_hours": None, "max_offers_per_day": None})
    assert r.json() == {"max_offers_per_day": None, "quiet_hours": None, "channels": ["sms"]}


async def test_no_channel_at_all_is_a_valid_choice(client: Client, ann: dict[str, str]) -> None:
    r = await client.put("/v1/me/preferences", headers=ann, json={"channels": []})
    assert r.status_code == 200
    assert r.json()["channels"] == []


async def test_duplicate_channels_are_kept_once(client: Client, ann: dict[str, str]) -> None:
    r = await client.put("/v1/me/preferences", headers=ann,
                         json={"channels": ["push", "push", "email"]})
    assert r.json()["channels"] == ["push", "email"]


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"channels": ["pigeon"]}, 400, "channels[0]"),
    ({"channels": None}, 400, "channels"),
    ({"max_offers_per_day": -1}, 400, "max_offers_per_day"),
    ({"max_offers_per_day": 1000}, 400, "max_offers_per_day"),
    ({"quiet_hours": {"from": "25:00", "to": "07:00"}}, 400, "quiet_hours.from"),
    ({"quiet_hours": {"from": "7:00", "to": "09:00"}}, 400, "quiet_hours.from"),
    ({"quiet_hours": {"from": "22:00"}}, 400, "quiet_hours"),
    ({"quiet_hours": {"from": "22:00", "to": "22:00"}}, 422, "quiet_hours.to"),
    ({"frequency": "daily"}, 400, "frequency"),
], ids=["unknown-channel", "null-channels", "negative-cap", "huge-cap", "hour-25",
        "one-digit-hour", "missing-to", "empty-window", "unknown-field"])
async def test_bad_preferences_are_refused_naming_the_field(
        client: Client, ann: dict[str, str], body: dict[str, Any], status: int,
        field: str) -> None:
    r = await client.put("/v1/me/preferences", headers=ann, json=body)
    assert r.status_code == status, r.text
    problem = r.json()
    assert field in (problem.get("field") or problem["detail"])
    assert (await client.get("/v1/me/preferences", headers=ann)).json()["channels"] == [
        "push", "in_app"]


# --- the pure quiet-hours rule the offer engine uses --------------------------------------


@pytest.mark.parametrize(("start", "end", "now", "quiet"), [
    ("22:00", "07:00", "23:30", True), ("22:00", "07:00", "06:59", True),
    ("22:00", "07:00", "07:00", False), ("22:00", "07:00", "12:00", False),
    ("22:00", "07:00", "22:00", True), ("12:00", "14:00", "13:00", True),
    ("12:00", "14:00", "14:00", False), ("12:00", "14:00", "11:59", False),
])
def test_quiet_hours_are_half_open_and_may_span_midnight(
        start: str, end: str, now: str, quiet: bool) -> None:
    prefs = Preferences(
        max_offers_per_day=None, channels=("push",),
        quiet_hours=QuietHours(start=time.fromisoformat(start), end=time.fromisoformat(end)))
    assert in_quiet_hours(prefs, time.fromisoformat(now)) is quiet
    assert in_quiet_hours(DEFAULT_PREFERENCES, time.fromisoformat(now)) is False
