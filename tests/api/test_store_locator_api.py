"""The member's store locator and store names (issue 10, item 19): `GET /v1/me/stores?near=`
ranks the program's stores by distance with rtree's nearest-neighbour query, and offers and
ledger entries name their store."""

from __future__ import annotations

import math
import random
import uuid

from support.helpers import (
    Client,
    bearer,
    circle,
    create_program,
    create_store,
    manager,
    signup,
    staff,
)

from api.auth.tokens import TokenService
from geo.locator import StoreLocator, distance_m

# Paris stores (lon, lat): Opéra, Louvre, Bastille, Montmartre.
PARIS = {"OPERA": (2.3316, 48.8708), "LOUVRE": (2.3404, 48.8618),
         "BASTILLE": (2.3703, 48.8537), "MONTMARTRE": (2.3407, 48.8865)}
CHATELET = (2.3470, 48.8583)  # where the member stands


async def test_members_find_the_programs_stores_nearest_first(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    ids = {code: await create_store(client, tokens, program, code=code,
                                    zone=circle(*point, 60))
           for code, point in PARIS.items()}
    other = await create_program(client, tokens)
    await create_store(client, tokens, other, code="NEXT-DOOR", zone=circle(*CHATELET, 30))
    _, me = await signup(client, program)
    r = await client.get("/v1/me/stores", params={"near": "2.3470,48.8583", "limit": 3},
                         headers=me)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    expected = sorted(PARIS, key=lambda c: distance_m(CHATELET, PARIS[c]))[:3]
    assert [i["code"] for i in items] == expected == ["LOUVRE", "BASTILLE", "OPERA"]
    first = items[0]
    assert first["id"] == ids["LOUVRE"] and first["name"] == "Store LOUVRE"
    assert first["distance_m"] == round(distance_m(CHATELET, PARIS["LOUVRE"])) == 620
    assert first["location"] == list(PARIS["LOUVRE"])
    assert [i["distance_m"] for i in items] == sorted(i["distance_m"] for i in items)

    # A deleted store disappears, a renamed one shows its new name at once.
    h = manager(tokens, program)
    assert (await client.delete(f"/v1/programs/{program}/stores/{ids['LOUVRE']}",
                                headers=h)).status_code == 204
    assert (await client.patch(f"/v1/programs/{program}/stores/{ids['BASTILLE']}",
                               json={"name": "Bastille (new)"}, headers=h)).status_code == 200
    items = (await client.get("/v1/me/stores", params={"near": "2.3470,48.8583"},
                              headers=me)).json()["items"]
    assert [i["code"] for i in items] == ["BASTILLE", "OPERA", "MONTMARTRE"]
    assert items[0]["name"] == "Bastille (new)"


async def test_near_is_required_and_checked_and_only_members_use_it(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    await create_store(client, tokens, program)
    _, me = await signup(client, program)
    for bad in ("2.35", "2.35,48.85,1", "east,north", "200,48", "2.35,-91", "nan,1"):
        r = await client.get("/v1/me/stores", params={"near": bad}, headers=me)
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["errors"][0]["field"] == "near", r.text
    r = await client.get("/v1/me/stores", headers=me)
    assert r.status_code == 400 and "near" in r.text
    r = await client.get("/v1/me/stores", params={"near": "2.35,48.85", "limit": 0},
                         headers=me)
    assert r.status_code == 400
    r = await client.get("/v1/me/stores", params={"near": "2.35,48.85"},
                         headers=staff(tokens, program))
    assert r.status_code == 403
    nobody = bearer(tokens.mint_access(sub=uuid.uuid4(), role="member",
                                       program_id=uuid.UUID(program)))
    assert (await client.get("/v1/me/stores", params={"near": "2.35,48.85"},
                             headers=nobody)).status_code == 401


def test_the_nearest_query_agrees_with_a_brute_force_ranking_worldwide() -> None:
    """rtree over unit-sphere points ranks exactly by great-circle distance, also near the
    poles and across the antimeridian, where a lon/lat index would not."""
    rnd = random.Random(7)
    points = [(uuid.UUID(int=i), (rnd.uniform(-180, 180), math.degrees(
        math.asin(rnd.uniform(-1, 1))))) for i in range(2000)]
    locator = StoreLocator(points)
    for q in [(179.9, 0.0), (-179.9, 10.0), (0.0, 89.5), (45.0, -88.0),
              *[(rnd.uniform(-180, 180), rnd.uniform(-90, 90)) for _ in range(50)]]:
        got = [(n.store_id, n.distance_m) for n in locator.nearest(*q, 10)]
        brute = sorted(((sid, distance_m(q, p)) for sid, p in points),
                       key=lambda x: (x[1], x[0].bytes))[:10]
        assert [g[0] for g in got] == [b[0] for b in brute], q
    assert StoreLocator([]).nearest(0, 0, 5) == []


async def test_ledger_entries_and_offers_name_their_store(
        client: Client, tokens: TokenService) -> None:
    program = await create_program(client, tokens)
    store = await create_store(client, tokens, program, code="OPERA")
    _, me = await signup(client, program)
    card = (await client.get("/v1/me/card", headers=me)).json()["card_number"]
    r = await client.post("/v1/pos/purchases", json={
        "store_id": store, "card_number": card, "receipt_id": "r-1", "amount": 1250,
        "currency": "EUR"}, headers={**staff(tokens, program, store), "Idempotency-Key": "k1"})
    assert r.status_code == 201, r.text
    (entry,) = (await client.get("/v1/me/ledger", headers=me)).json()["items"]
    assert (entry["store_id"], entry["store_name"]) == (store, "Store OPERA")
    assert entry["at"].endswith(("+01:00", "+02:00"))  # the program is in Europe/Paris


def test_changes_apply_in_place_and_agree_with_a_fresh_index() -> None:
    rnd = random.Random(11)
    points = {uuid.UUID(int=i): (rnd.uniform(-5, 10), rnd.uniform(42, 52)) for i in range(300)}
    locator = StoreLocator([])
    locator.apply(points.items(), [])
    moved = {sid: (p[0] + 0.5, p[1]) for sid, p in list(points.items())[:50]}
    gone = list(points)[50:100]
    locator.apply(moved.items(), gone)
    points.update(moved)
    for sid in gone:
        del points[sid]
    fresh = StoreLocator(points.items())
    assert len(locator) == len(fresh) == 250
    for _ in range(30):
        q = (rnd.uniform(-5, 10), rnd.uniform(42, 52))
        assert [n.store_id for n in locator.nearest(*q, 15)] == [
            n.store_id for n in fresh.nearest(*q, 15)]
