"""The passes' repository: SQL constants right above the functions that run them. Functions
take a connection and never open transactions (the services own them).

Tables (migrations/0012_passes.sql): `passes` (one per member and kind: serial, `ApplePass`
token, update tag), `pass_registrations` (Apple devices), `pass_farewells` (devices still to
learn that an erased member's pass is void), `pass_designs` (a program's colours and flagship
stores), and the outbox `pass_changes` → `pass_pushes`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.errors import NotFound
from wallet.passes import content
from wallet.passes.model import (
    Design,
    OfferLine,
    PassKind,
    PassRef,
    PassView,
    StoreCandidate,
)

# --- issuing ---------------------------------------------------------------------------------

CREATE = """
INSERT INTO passes (id, kind, serial, auth_token, program_id, member_id, wallet_account_id,
                    show_name)
SELECT $2, $3, $4, $5, m.program_id, m.id, m.wallet_account_id, $6
FROM members m WHERE m.id = $1
ON CONFLICT (member_id, kind) WHERE member_id IS NOT NULL DO NOTHING
RETURNING id
"""


async def create(conn: Conn, member_id: uuid.UUID, kind: PassKind, *, serial: str,
                 auth_token: str, show_name: bool) -> bool:
    """Create the member's pass of `kind` unless it exists; True when created."""
    return await conn.fetchval(CREATE, member_id, uuid.uuid4(), kind, serial, auth_token,
                               show_name) is not None


# A change of what the pass shows is queued like any other (see the migration).
SET_SHOW_NAME = """
WITH changed AS (
    UPDATE passes SET show_name = $3
     WHERE member_id = $1 AND kind = $2 AND show_name <> $3 RETURNING id)
INSERT INTO pass_changes (pass_id) SELECT id FROM changed
"""


async def set_show_name(conn: Conn, member_id: uuid.UUID, kind: PassKind, show: bool) -> None:
    await conn.execute(SET_SHOW_NAME, member_id, kind, show)


# Everything a pass shows, in one statement. $2: now (offers still valid). Stores: the most
# recent purchases' (the last 200 purchases looked at), recent visits' only with current
# location_offers consent, then the program's flagship stores.
_VIEW = """
SELECT p.id AS pass_id, p.kind, p.serial, p.auth_token, p.program_id, p.update_seq,
       p.modified_at, p.voided_at IS NOT NULL AS voided, p.show_name,
       pr.name AS program_name, pr.currency, pr.stored_value AS stored_value_enabled,
       d.background_color, d.foreground_color, d.label_color,
       coalesce(d.featured_store_ids, '{}') AS featured_store_ids,
       m.first_name, w.points_balance, w.stored_value_balance, w.tier,
       (SELECT c.number FROM cards c WHERE c.member_id = m.id AND c.status = 'active'
         ORDER BY c.created_at, c.id LIMIT 1) AS card_number,
       (SELECT coalesce(json_agg(json_build_object('title', o.title,
                                                   'expires_at', o.expires_at)
                                 ORDER BY o.issued_at DESC), '[]')::text
          FROM (SELECT title, expires_at, issued_at FROM offers
                 WHERE member_id = m.id AND redeemed_at IS NULL AND expires_at > $2
                 ORDER BY issued_at DESC LIMIT 10) o) AS offers,
       (SELECT coalesce(json_agg(json_build_object('id', s.id, 'name', s.name,
                                                   'zone', s.zone) ORDER BY t.last DESC),
                        '[]')::text
          FROM (SELECT store_id, max(at) AS last
                  FROM (SELECT store_id, at FROM transactions
                         WHERE wallet_account_id = w.id AND kind = 'purchase'
                         ORDER BY at DESC LIMIT 200) recent
                 GROUP BY store_id ORDER BY last DESC LIMIT 10) t
          JOIN stores s ON s.id = t.store_id AND s.deleted_at IS NULL) AS purchase_stores,
       coalesce((SELECT c.granted FROM member_consents c
                  WHERE c.member_id = m.id AND c.purpose = 'location_offers'
                  ORDER BY c.id DESC LIMIT 1), false) AS location_consent,
       (SELECT coalesce(json_agg(json_build_object('id', s.id, 'name', s.name,
                                                   'zone', s.zone) ORDER BY v.last DESC),
                        '[]')::text
          FROM (SELECT store_id, max(entered_at) AS last FROM visits
                 WHERE member_id = m.id
                   AND coalesce((SELECT c.granted FROM member_consents c
                                  WHERE c.member_id = m.id AND c.purpose = 'location_offers'
                                  ORDER BY c.id DESC LIMIT 1), false)
                 GROUP BY store_id ORDER BY last DESC LIMIT 10) v
          JOIN stores s ON s.id = v.store_id AND s.deleted_at IS NULL) AS visit_stores,
       (SELECT coalesce(json_agg(json_build_object('id', s.id, 'name', s.name,
                                                   'zone', s.zone)
                                 ORDER BY array_position(d.featured_store_ids, s.id)),
                        '[]')::text
          FROM stores s WHERE s.id = ANY(d.featured_store_ids) AND s.program_id = p.program_id
                          AND s.deleted_at IS NULL AND m.id IS NOT NULL) AS featured_stores
FROM passes p
JOIN programs pr ON pr.id = p.program_id
LEFT JOIN pass_designs d ON d.program_id = p.program_id
LEFT JOIN members m ON m.id = p.member_id
LEFT JOIN wallet_accounts w ON w.id = p.wallet_account_id
"""
VIEW_BY_ID = _VIEW + "WHERE p.id = $1"
VIEW_BY_SERIAL = _VIEW + "WHERE p.serial = $1"
VIEW_BY_MEMBER = _VIEW + "WHERE p.member_id = $1 AND p.kind = $3"

_offers = msgspec.json.Decoder(list[OfferLine])
_stores = msgspec.json.Decoder(list[StoreCandidate])


def _view(row: Any) -> PassView:
    design = Design(
        background_color=row["background_color"] or Design().background_color,
        foreground_color=row["foreground_color"] or Design().foreground_color,
        label_color=row["label_color"] or Design().label_color,
        featured_store_ids=list(row["featured_store_ids"]))
    base: dict[str, Any] = {
        "pass_id": row["pass_id"], "kind": row["kind"], "serial": row["serial"],
        "auth_token": row["auth_token"], "program_id": row["program_id"],
        "program_name": row["program_name"], "currency": row["currency"].strip(),
        "stored_value_enabled": row["stored_value_enabled"], "design": design,
        "update_seq": row["update_seq"], "modified_at": row["modified_at"],
        "voided": row["voided"]}
    if row["voided"]:
        return PassView(**base)
    return PassView(
        **base, card_number=row["card_number"],
        first_name=row["first_name"] if row["show_name"] else None, tier=row["tier"],
        points=row["points_balance"] or 0, stored_value=row["stored_value_balance"] or 0,
        offers=_offers.decode(row["offers"]),
        locations=content.choose_locations(
            _stores.decode(row["purchase_stores"]), _stores.decode(row["visit_stores"]),
            _stores.decode(row["featured_stores"]), location_consent=row["location_consent"],
            program_name=row["program_name"]))


async def view_by_id(conn: Conn, pass_id: uuid.UUID, now: datetime) -> PassView | None:
    row = await conn.fetchrow(VIEW_BY_ID, pass_id, now)
    return None if row is None else _view(row)


async def view_by_serial(conn: Conn, serial: str, now: datetime) -> PassView | None:
    row = await conn.fetchrow(VIEW_BY_SERIAL, serial, now)
    return None if row is None else _view(row)


async def view_of_member(conn: Conn, member_id: uuid.UUID, kind: PassKind,
                         now: datetime) -> PassView | None:
    row = await conn.fetchrow(VIEW_BY_MEMBER, member_id, now, kind)
    return None if row is None else _view(row)


# --- the PassKit web service --------------------------------------------------------------------

REF = """
SELECT id AS pass_id, serial, auth_token, modified_at, voided_at IS NOT NULL AS voided
FROM passes WHERE serial = $1 AND kind = 'apple'
"""


async def ref(conn: Conn, serial: str) -> PassRef | None:
    row = await conn.fetchrow(REF, serial)
    return None if row is None else PassRef(**dict(row))


# (xmax = 0): the row was inserted, not updated (a device registering again: 200, not 201).
REGISTER = """
INSERT INTO pass_registrations (device_library_id, pass_id, push_token)
VALUES ($1, $2, $3)
ON CONFLICT (device_library_id, pass_id) DO UPDATE SET push_token = EXCLUDED.push_token
RETURNING (xmax = 0) AS created
"""


async def register(conn: Conn, device: str, pass_id: uuid.UUID, push_token: str) -> bool:
    """Register `device` for `pass_id`'s updates; True when new (an existing registration
    takes the new push token)."""
    return bool(await conn.fetchval(REGISTER, device, pass_id, push_token))


UNREGISTER = """
WITH r AS (DELETE FROM pass_registrations WHERE device_library_id = $1 AND pass_id = $2
           RETURNING 1),
     f AS (DELETE FROM pass_farewells WHERE device_library_id = $1 AND pass_id = $2
           RETURNING 1)
SELECT (SELECT count(*) FROM r) + (SELECT count(*) FROM f)
"""


async def unregister(conn: Conn, device: str, pass_id: uuid.UUID) -> bool:
    """Forget `device` for `pass_id` (also a voided pass's farewell); True if it was there."""
    return bool(await conn.fetchval(UNREGISTER, device, pass_id))


UPDATED_SINCE = """
SELECT p.serial, p.update_seq FROM pass_registrations r JOIN passes p ON p.id = r.pass_id
WHERE r.device_library_id = $1 AND p.update_seq > $2
UNION
SELECT p.serial, p.update_seq FROM pass_farewells f JOIN passes p ON p.id = f.pass_id
WHERE f.device_library_id = $1 AND p.update_seq > $2
ORDER BY 1
"""


async def updated_since(conn: Conn, device: str, since: int) -> list[tuple[str, int]]:
    """(serial, update tag) of `device`'s passes updated after tag `since` (-1: all)."""
    return [(r["serial"], r["update_seq"]) for r in
            await conn.fetch(UPDATED_SINCE, device, since)]


# --- designs ---------------------------------------------------------------------------------

DESIGN = """
SELECT background_color, foreground_color, label_color, featured_store_ids
FROM pass_designs WHERE program_id = $1
"""


async def design(conn: Conn, program_id: uuid.UUID) -> Design:
    row = await conn.fetchrow(DESIGN, program_id)
    return Design() if row is None else Design(**dict(row))


# Changing the look changes every pass of the program: each is queued for an update.
PUT_DESIGN = """
WITH d AS (
    INSERT INTO pass_designs (program_id, background_color, foreground_color, label_color,
                              featured_store_ids)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (program_id) DO UPDATE SET
        background_color = EXCLUDED.background_color,
        foreground_color = EXCLUDED.foreground_color,
        label_color = EXCLUDED.label_color,
        featured_store_ids = EXCLUDED.featured_store_ids, updated_at = now()
    RETURNING 1)
INSERT INTO pass_changes (pass_id)
SELECT p.id FROM passes p, d WHERE p.program_id = $1 AND p.voided_at IS NULL
"""
UNKNOWN_STORES = """
SELECT array_agg(x) FROM unnest($2::uuid[]) x
WHERE NOT EXISTS (SELECT 1 FROM stores s WHERE s.id = x AND s.program_id = $1
                                           AND s.deleted_at IS NULL)
"""


async def unknown_stores(conn: Conn, program_id: uuid.UUID,
                         store_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """The ids in `store_ids` that are not live stores of the program."""
    return list(await conn.fetchval(UNKNOWN_STORES, program_id, store_ids) or [])


async def put_design(conn: Conn, program_id: uuid.UUID, d: Design) -> None:
    """Set the program's design (NotFound when there is no such program)."""
    try:
        await conn.execute(PUT_DESIGN, program_id, d.background_color, d.foreground_color,
                           d.label_color, d.featured_store_ids)
    except asyncpg.ForeignKeyViolationError as exc:
        raise NotFound("no such program", field="program_id") from exc
