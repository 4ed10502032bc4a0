"""SQL for members, their wallet account and their cards.

A member row holds identity and the PIN columns; balances and tier live on the pseudonymous
`wallet_accounts` row it points at (the ledger never names the member). A member whose row is
gone (erased) is `Unauthenticated`: their still-valid tokens must stop working at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.errors import Conflict, NotFound, Unauthenticated
from wallet.members import cards


class Profile(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    program_id: uuid.UUID
    email: str
    first_name: str
    locale: str
    tier: str | None
    points_balance: int
    stored_value_balance: int
    currency: str
    created_at: datetime
    timezone: str  # the program's, for times shown to the member
    next_expiry_at: datetime | None = None  # the first of the next day's expiring lots
    next_expiry_points: int | None = None  # points expiring that (local) day


class Card(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    member_id: uuid.UUID
    program_id: uuid.UUID
    number: str


def gone() -> Unauthenticated:
    return Unauthenticated("this member no longer exists")


MEMBER_EXISTS = "SELECT 1 FROM members WHERE id = $1"
MEMBER_KEEP = MEMBER_EXISTS + " FOR KEY SHARE"


async def require_member(conn: Conn, member_id: uuid.UUID, *, keep: bool = True) -> None:
    """Raise Unauthenticated unless the member exists. With `keep`, the row is held until
    the transaction ends (an erasure cannot slip in before a write; other updates of the
    row are not blocked); read-only transactions pass `keep=False`."""
    if await conn.fetchval(MEMBER_KEEP if keep else MEMBER_EXISTS, member_id) is None:
        raise gone()


MEMBER_TIMEZONE = """
SELECT p.timezone FROM members m JOIN programs p ON p.id = m.program_id WHERE m.id = $1
"""


async def member_timezone(conn: Conn, member_id: uuid.UUID) -> str:
    """The time zone of the member's program, for times shown to them (an erased member is
    `gone()`, as `require_member` says)."""
    timezone: str | None = await conn.fetchval(MEMBER_TIMEZONE, member_id)
    if timezone is None:
        raise gone()
    return timezone


TOUCH_ACTIVE = """
UPDATE members SET last_active_at = $2::timestamptz
WHERE id = $1 AND last_active_at < $2::timestamptz - interval '1 day'
"""


async def touch_active(conn: Conn, member_id: uuid.UUID, now: datetime) -> None:
    """Record activity (login, refresh, pings) for the idle-account retention. Writes at
    most once a day per member, so the hot paths almost never pay for it."""
    await conn.execute(TOUCH_ACTIVE, member_id, now)


INSERT_WALLET = """
INSERT INTO wallet_accounts (id, program_id, tier) VALUES ($1, $2, $3) RETURNING id
"""
INSERT_MEMBER = """
INSERT INTO members (id, program_id, email, password_hash, first_name, locale,
                     wallet_account_id)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""


async def insert_member(conn: Conn, *, program_id: uuid.UUID, email: str,
                        password_hash: str, first_name: str, locale: str,
                        tier: str | None, member_id: uuid.UUID | None = None) -> uuid.UUID:
    """A new member (id `member_id`, or a new one) with an empty wallet account in `tier`;
    duplicate e-mail → Conflict."""
    wallet_id = await conn.fetchval(INSERT_WALLET, uuid.uuid4(), program_id, tier)
    member_id = member_id or uuid.uuid4()
    try:
        await conn.execute(INSERT_MEMBER, member_id, program_id, email, password_hash,
                           first_name, locale, wallet_id)
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("this e-mail is already a member of the program", field="email") from exc
    return member_id


INSERT_CARD = """
INSERT INTO cards (id, member_id, program_id, number) VALUES ($1, $2, $3, $4)
"""
_CARD_ATTEMPTS = 5


async def insert_card(conn: Conn, member_id: uuid.UUID,
                      program_id: uuid.UUID) -> Card:
    """Issue a card with a fresh Luhn number, retrying the (rare) number collision."""
    for _ in range(_CARD_ATTEMPTS):
        card = Card(id=uuid.uuid4(), member_id=member_id, program_id=program_id,
                    number=cards.new_card_number())
        try:
            async with conn.transaction():  # a savepoint: a collision keeps the caller's tx
                await conn.execute(INSERT_CARD, card.id, member_id, program_id, card.number)
        except asyncpg.UniqueViolationError:
            continue
        return card
    raise RuntimeError("could not draw a free card number")  # 5 collisions in 10^14: a bug


# The next expiry: the points of open lots expiring on the first local date (the program's
# wall clock) on which any does, and when the first of them goes (index points_lots_open).
SELECT_PROFILE = """
SELECT m.id, m.program_id, m.email, m.first_name, m.locale, m.created_at,
       w.tier, w.points_balance, w.stored_value_balance, p.currency, p.timezone,
       e.at AS next_expiry_at, e.points AS next_expiry_points
FROM members m
JOIN wallet_accounts w ON w.id = m.wallet_account_id
JOIN programs p ON p.id = m.program_id
LEFT JOIN LATERAL (
    SELECT min(l.expires_at) AS at, sum(l.remaining)::bigint AS points
      FROM points_lots l
     WHERE l.wallet_account_id = w.id AND l.remaining > 0 AND l.expires_at > now()
       AND (l.expires_at AT TIME ZONE p.timezone)::date = (
             SELECT (min(x.expires_at) AT TIME ZONE p.timezone)::date FROM points_lots x
              WHERE x.wallet_account_id = w.id AND x.remaining > 0 AND x.expires_at > now())
) e ON true
WHERE m.id = $1
"""


async def fetch_profile(conn: Conn, member_id: uuid.UUID) -> Profile:
    row = await conn.fetchrow(SELECT_PROFILE, member_id)
    if row is None:
        raise gone()
    return Profile(**dict(row))


UPDATE_PROFILE = """
UPDATE members SET email = coalesce($2, email), first_name = coalesce($3, first_name),
       locale = coalesce($4, locale), updated_at = now()
WHERE id = $1
RETURNING id
"""


async def update_profile_row(conn: Conn, member_id: uuid.UUID, *,
                             email: str | None, first_name: str | None,
                             locale: str | None) -> None:
    """Change the given fields (None = keep). Another member's e-mail → Conflict."""
    try:
        found = await conn.fetchval(UPDATE_PROFILE, member_id, email, first_name, locale)
    except asyncpg.UniqueViolationError as exc:
        raise Conflict("this e-mail is already a member of the program", field="email") from exc
    if found is None:
        raise gone()


class Credentials(msgspec.Struct, frozen=True, kw_only=True):
    """What re-authenticates a member: the password's and the PIN's hashes, the PIN lock."""

    member_id: uuid.UUID
    password_hash: str
    pin_hash: str | None
    pin_locked_until: datetime | None
    pin_lock_pending_until: datetime | None


SELECT_CREDENTIALS = """
SELECT id AS member_id, password_hash, pin_hash, pin_locked_until, pin_lock_pending_until
FROM members WHERE id = $1
"""


async def fetch_credentials(conn: Conn, member_id: uuid.UUID) -> Credentials:
    row = await conn.fetchrow(SELECT_CREDENTIALS, member_id)
    if row is None:
        raise gone()
    return Credentials(**dict(row))


SET_PIN = """
UPDATE members SET pin_hash = $2, pin_failures = 0, updated_at = now()
WHERE id = $1
RETURNING id
"""


async def set_pin_hash(conn: Conn, member_id: uuid.UUID, pin_hash: str) -> None:
    """Store a new PIN hash and clear the failure count. A running lock (pin_locked_until)
    is kept: changing the PIN must not be a way around it."""
    if await conn.fetchval(SET_PIN, member_id, pin_hash) is None:
        raise gone()


SELECT_CARD = """
SELECT m.id AS member_id, m.program_id, c.id, c.number
FROM members m
LEFT JOIN LATERAL (
    SELECT id, number FROM cards
    WHERE member_id = m.id AND status = 'active'
    ORDER BY created_at DESC LIMIT 1
) c ON true
WHERE m.id = $1
"""


async def fetch_card(conn: Conn, member_id: uuid.UUID) -> Card:
    """The member's active card (the newest, should there be several)."""
    row = await conn.fetchrow(SELECT_CARD, member_id)
    if row is None:
        raise gone()
    if row["id"] is None:
        raise NotFound("this member has no active card")
    return Card(**dict(row))


FIND_BY_EMAIL = "SELECT id FROM members WHERE program_id = $1 AND lower(email) = lower($2)"
FIND_BY_CARD = "SELECT member_id FROM cards WHERE program_id = $1 AND number = $2"


async def find_member(conn: Conn, program_id: uuid.UUID, *, email: str | None = None,
                      card_number: str | None = None) -> uuid.UUID:
    """The member of the program with this e-mail or card number (any card, active or not),
    or NotFound."""
    if email is not None:
        found = await conn.fetchval(FIND_BY_EMAIL, program_id, email)
    else:
        found = await conn.fetchval(FIND_BY_CARD, program_id, card_number)
    if found is None:
        raise NotFound("no member of this program has that e-mail or card number")
    return uuid.UUID(str(found))
