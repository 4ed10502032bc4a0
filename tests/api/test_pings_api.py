"""Location pings: consent-gated, screened, turned into visits; nothing kept without consent."""

from __future__ import annotations

import asyncio
import math
import random
from datetime import timedelta

import asyncpg
from support.helpers import (
    FAR,
    INSIDE,
    Client,
    ago,
    create_program,
    create_store,
    manager,
    now,
    ping,
    set_consent,
    signup,
)

from api.auth.tokens import TokenService


async def _count(conn: asyncpg.Connection, table: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))


async def test_pings_without_location_consent_are_refused_and_nothing_is_kept(
    client: Client, tokens: TokenService, conn: asyncpg.Connection
) -> None:
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    _, me = await signup(client, program, consents=["marketing"])
    r = await client.post("/v1/me/pings", json={"pings": [ping(*INSIDE, ago(5))]}, headers=me)
    assert r.status_code == 403
    assert r.json()["type"] == "/problems/consent-required"
    for table in ("visits", "member_geo_state", "raw_pings", "idempotency_keys"):
        assert await _count(conn, table) == 0, table


async def test_entering_a_zone_yields_one_enter_visit(
    client: Client, tokens: TokenService, conn: asyncpg.Connection
) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    _, me = await signup(client, program, consents=["location_offers"])
    r = await client.post("/v1/me/pings", json={"pings": [
        ping(*FAR, ago(60)), ping(*INSIDE, ago(30))]}, headers=me)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(v["store_id"], v["event"]) for v in body["visits"]] == [(store, "enter")]
    assert body["accepted"] == 2 and body["ignored"] == {}
    assert await _count(conn, "visits") == 1
    assert await _count(conn, "raw_pings") == 0  # raw trails are not kept by default


async def test_withdrawing_consent_stops_processing_at_the_next_ping(
    client: Client, tokens: TokenService, conn: asyncpg.Connection
) -> None:
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    _, me = await signup(client, program, consents=["location_offers"])
    assert (await client.post("/v1/me/pings", json={"pings": [ping(*FAR, ago(60))]},
                              headers=me)).status_code == 200
    await set_consent(client, me, "location_offers", False)
    r = await client.post("/v1/me/pings", json={"pings": [ping(*INSIDE, ago(5))]}, headers=me)
    assert r.status_code == 403
    assert await _count(conn, "visits") == 0


async def test_unusable_pings_are_ignored_and_counted_by_reason(
    client: Client, tokens: TokenService
) -> None:
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    _, me = await signup(client, program, consents=["location_offers"])
    t = now()
    r = await client.post("/v1/me/pings", json={"pings": [
        ping(*INSIDE, t - timedelta(seconds=100)),
        ping(*INSIDE, t + timedelta(hours=1)),  # in the future
        ping(*INSIDE, t - timedelta(days=2)),  # older than the accepted window
        ping(*INSIDE, t - timedelta(seconds=80), accuracy_m=5000),  # too inaccurate
        ping(40.0, -3.7, t - timedelta(seconds=70)),  # Madrid 10 s later: impossible speed
    ]}, headers=me)  # (coordinates off the Earth are a 400: test_ping_bounds_api.py)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 1
    assert sum(body["ignored"].values()) == 4
    assert len(body["ignored"]) == 4  # four distinct reasons
    # A ping older than the member's last processed one is stale.
    r = await client.post("/v1/me/pings", json={"pings": [ping(*INSIDE, t - timedelta(
        seconds=200))]}, headers=me)
    assert r.json()["accepted"] == 0 and sum(r.json()["ignored"].values()) == 1
    metrics = (await client.get("/metrics")).text
    assert "pings_ignored_total" in metrics


async def test_malformed_ping_batches_get_a_400_naming_the_field(
    client: Client, tokens: TokenService
) -> None:
    program = await create_program(client, tokens)
    _, me = await signup(client, program, consents=["location_offers"])
    for body, field in (({"pings": []}, "pings"),
                        ({"pings": [ping(*INSIDE, ago(1))] * 101}, "pings"),
                        ({"pings": [{"lat": 1, "lon": 2, "at": ago(1).isoformat()}]},
                         "accuracy_m"),
                        ({"pings": [{**ping(*INSIDE, ago(1)), "at": "2026-01-01T10:00:00"}]},
                         "at"),
                        ({"pings": [{**ping(*INSIDE, ago(1)), "alt": 3}]}, "alt")):
        r = await client.post("/v1/me/pings", json=body, headers=me)
        assert r.status_code == 400, (body, r.text)
        assert field in str(r.json()), r.text


async def test_a_retried_batch_with_the_same_key_is_processed_once(
    client: Client, tokens: TokenService, conn: asyncpg.Connection
) -> None:
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    _, me = await signup(client, program, consents=["location_offers"])
    body = {"pings": [ping(*INSIDE, ago(10))]}
    headers = {**me, "Idempotency-Key": "batch-1"}
    first = await client.post("/v1/me/pings", json=body, headers=headers)
    again = await client.post("/v1/me/pings", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert await _count(conn, "visits") == 1
    other = await client.post("/v1/me/pings", json={"pings": [ping(*FAR, ago(5))]},
                              headers=headers)
    assert other.status_code == 409


async def test_a_moved_zone_changes_the_answer_of_the_next_ping(
    client: Client, tokens: TokenService
) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    _, me = await signup(client, program, consents=["location_offers"])
    r = await client.post("/v1/me/pings", json={"pings": [ping(*FAR, ago(100))]}, headers=me)
    assert r.json()["visits"] == []
    moved = {"type": "Circle", "center": [FAR[1], FAR[0]], "radius_m": 80}
    r = await client.patch(f"/v1/programs/{program}/stores/{store}", json={"zone": moved},
                           headers=manager(tokens, program))
    assert r.status_code == 200, r.text
    r = await client.post("/v1/me/pings", json={"pings": [ping(*FAR, ago(90))]}, headers=me)
    assert [v["event"] for v in r.json()["visits"]] == ["enter"]


async def test_leaving_and_coming_back_within_one_batch_closes_one_visit_and_opens_another(
    client: Client, tokens: TokenService, conn: asyncpg.Connection
) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)
    _, me = await signup(client, program, consents=["location_offers"])
    track = [ping(*INSIDE, ago(900)), ping(*FAR, ago(700)), ping(*FAR, ago(400)),
             ping(*INSIDE, ago(200))]  # away for longer than the exit hysteresis
    r = await client.post("/v1/me/pings", json={"pings": track}, headers=me)
    assert r.status_code == 200, r.text
    assert [(v["store_id"], v["event"]) for v in r.json()["visits"]] == [
        (store, "enter"), (store, "exit"), (store, "enter")]
    rows = await conn.fetch("SELECT exited_at IS NULL AS open FROM visits ORDER BY entered_at")
    assert [r["open"] for r in rows] == [False, True]


async def test_concurrent_batches_of_one_member_are_processed_one_after_another(
    client: Client, tokens: TokenService, conn: asyncpg.Connection
) -> None:
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    _, me = await signup(client, program, consents=["location_offers"])
    body = {"pings": [ping(*INSIDE, ago(30))]}
    responses = await asyncio.gather(*(client.post("/v1/me/pings", json=body, headers=me)
                                       for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert sum(len(r.json()["visits"]) for r in responses) == 1
    assert await _count(conn, "visits") == 1


async def test_hovering_at_a_zone_edge_gives_one_visit_across_batches(
    client: Client, tokens: TokenService, conn: asyncpg.Connection
) -> None:
    """30 minutes at the edge of a 100 m circle with ±15 m GPS noise, sent in batches of 30,
    then walking away: one enter and one exit through the whole stack, one visit row."""
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program)  # circle of 100 m around CENTER
    _, me = await signup(client, program, consents=["location_offers"])
    rng = random.Random(15)
    m_per_deg_lat = 111_319.49
    m_per_deg_lon = m_per_deg_lat * math.cos(math.radians(INSIDE[0]))
    track = [100.0] * 180 + [100.0 + 10 * i for i in range(1, 31)] + [400.0] * 30
    start = now() - timedelta(seconds=10 * len(track) + 60)
    pings = []
    for i, dist in enumerate(track):
        x, y = dist + rng.gauss(0, 15), rng.gauss(0, 15)
        pings.append(ping(INSIDE[0] + y / m_per_deg_lat, INSIDE[1] + x / m_per_deg_lon,
                          start + timedelta(seconds=10 * i), accuracy_m=20))
    events = []
    for i in range(0, len(pings), 30):
        r = await client.post("/v1/me/pings", json={"pings": pings[i:i + 30]}, headers=me)
        assert r.status_code == 200, r.text
        events += [(v["store_id"], v["event"]) for v in r.json()["visits"]]
    assert [e for e in events if e[1] != "dwell"] == [(store, "enter"), (store, "exit")]
    assert await _count(conn, "visits") == 1


async def test_a_retried_batch_that_changed_nothing_replays_its_answer(
    client: Client, tokens: TokenService, conn: asyncpg.Connection
) -> None:
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    _, me = await signup(client, program, consents=["location_offers"])
    body = {"pings": [ping(*INSIDE, ago(7200))]}  # too old: ignored, nothing to write
    headers = {**me, "Idempotency-Key": "stale-1"}
    first = await client.post("/v1/me/pings", json=body, headers=headers)
    again = await client.post("/v1/me/pings", json=body, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert first.json() == again.json()
    assert first.json()["accepted"] == 0 and first.json()["ignored"] == {"too_old": 1}
    assert await _count(conn, "member_geo_state") == 0
    assert await _count(conn, "idempotency_keys") == 1
