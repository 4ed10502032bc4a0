"""What a till operation reads of a card and its wallet account, locked or not.

The account row's lock is how concurrent tills on one member serialise (`FOR UPDATE OF w`);
the reads that follow the lock must see what the previous holder committed, which is why
`lock_card_state` checks the locked row's version against its snapshot (see `_LOCK_STATE`).
Functions take a connection and never open transactions: the services own them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from wallet.kernel import errors
from wallet.kernel.db import Conn
from wallet.kernel.idempotency_repo import IdemKey, StoredResponse
from wallet.kernel.model import Limits, Tier
from wallet.ledger.rules import Balances, EarnRules, Lot


class CardContext(msgspec.Struct, frozen=True, kw_only=True):
    """A card with its member, wallet account and program, as a till needs them."""

    card_id: uuid.UUID
    card_status: str
    member_id: uuid.UUID
    first_name: str
    pin_hash: str | None
    pin_failures: int
    pin_locked_until: datetime | None
    pin_lock_pending_until: datetime | None  # the lock is provisional until then
    account_id: uuid.UUID
    balances: Balances
    tier: str | None
    program_id: uuid.UUID
    currency: str
    stored_value_enabled: bool
    rules: EarnRules
    limits: Limits
    store_ok: bool  # the store exists, is not deleted and belongs to the card's program


_TIERS = msgspec.json.Decoder(list[Tier])
_LOTS = msgspec.json.Decoder(list[Lot])


def earn_rules(row: asyncpg.Record) -> EarnRules:
    """A program's earning rules from its row (`tiers` as JSON text)."""
    tiers = sorted(_TIERS.decode(row["tiers"]), key=lambda t: t.min_points_12m)
    return EarnRules(earn_points=row["earn_points"], earn_per_amount=row["earn_per_amount"],
                     points_expiry_days=row["points_expiry_days"], tiers=tuple(tiers))


def _limits(row: asyncpg.Record) -> Limits:
    return Limits(max_purchase_amount=row["max_purchase_amount"],
                  max_top_up_amount=row["max_top_up_amount"],
                  max_stored_value_balance=row["max_stored_value_balance"])


# The program's limits (`_limits`), for every query that reads a program as `p`.
_LIMIT_COLUMNS = "p.max_purchase_amount, p.max_top_up_amount, p.max_stored_value_balance"


# What a till needs of a card, its member, wallet account and program ($2: the till's store).
_CARD_COLUMNS = """
SELECT c.id AS card_id, c.status AS card_status, m.id AS member_id, m.first_name,
       m.pin_hash, m.pin_failures, m.pin_locked_until, m.pin_lock_pending_until,
       w.id AS account_id, w.points_balance, w.stored_value_balance, w.tier,
       p.id AS program_id, p.currency, p.stored_value, p.earn_points, p.earn_per_amount,
       p.points_expiry_days, p.tiers::text AS tiers, """ + _LIMIT_COLUMNS + """,
       EXISTS (SELECT 1 FROM stores s WHERE s.id = $2 AND s.program_id = c.program_id
                                        AND s.deleted_at IS NULL) AS store_ok"""
_CARD_JOINS = """
FROM cards c
JOIN members m ON m.id = c.member_id
JOIN wallet_accounts w ON w.id = m.wallet_account_id
JOIN programs p ON p.id = c.program_id
"""
_CONTEXT = _CARD_COLUMNS + _CARD_JOINS + "WHERE c.program_id = $3 AND "
CONTEXT_BY_ID = _CONTEXT + "c.id = $1::uuid"
CONTEXT_BY_NUMBER = _CONTEXT + "c.number = $1::text"
LOCK_BY_ID = CONTEXT_BY_ID + " FOR UPDATE OF w"
LOCK_BY_NUMBER = CONTEXT_BY_NUMBER + " FOR UPDATE OF w"


async def card_row(conn: Conn, card: uuid.UUID | str, by_id: str, by_number: str,
                    *args: object) -> asyncpg.Record:
    """The one row of `by_id` (card id) or `by_number`, run with (card, *args). Raises
    NotFound naming `card_number` for an unknown number, InvalidCardToken for an unknown card
    id (it came from a QR payload)."""
    row = await conn.fetchrow(by_id if isinstance(card, uuid.UUID) else by_number, card, *args)
    if row is not None:
        return row
    if isinstance(card, uuid.UUID):
        raise errors.InvalidCardToken("this card does not exist in this program",
                                      field="qr_payload")
    raise errors.NotFound("no such card in this program", field="card_number")


async def card_context(conn: Conn, card: uuid.UUID | str, *,
                       program_id: uuid.UUID, store_id: uuid.UUID,
                       lock: bool = False) -> CardContext:
    """The card (by id or number) in `program_id`; with `lock`, its wallet account row is
    locked until the transaction ends (concurrent tills on one member serialise here).
    Raises NotFound naming `card_number` for an unknown number, InvalidCardToken for an
    unknown card id (it came from a QR payload)."""
    row = await card_row(conn, card, LOCK_BY_ID if lock else CONTEXT_BY_ID,
                          LOCK_BY_NUMBER if lock else CONTEXT_BY_NUMBER, store_id, program_id)
    return _context(row)


def _context(row: asyncpg.Record) -> CardContext:
    return CardContext(
        card_id=row["card_id"], card_status=row["card_status"], member_id=row["member_id"],
        first_name=row["first_name"], pin_hash=row["pin_hash"],
        pin_failures=row["pin_failures"], pin_locked_until=row["pin_locked_until"],
        pin_lock_pending_until=row["pin_lock_pending_until"], account_id=row["account_id"],
        balances=Balances(points=row["points_balance"],
                          stored_value=row["stored_value_balance"]),
        tier=row["tier"], program_id=row["program_id"], currency=row["currency"].strip(),
        stored_value_enabled=row["stored_value"], rules=earn_rules(row), limits=_limits(row),
        store_ok=row["store_ok"])


class AccountState(msgspec.Struct, frozen=True, kw_only=True):
    """What a locked account's operation reads after the lock (a fresh snapshot)."""

    stored: StoredResponse | None
    points_12m: int
    lots: list[Lot]  # every due lot, then the first `fifo_limit` open lots, then `extra_lot`


def _points_12m(account: str, day: str) -> str:
    """Points earned in the trailing 12 months (the tier's measure) of account `account`."""
    return f"""(SELECT coalesce(sum(d.points), 0)::bigint FROM tier_points_daily d
    WHERE d.wallet_account_id = {account} AND d.day > {day}::date - 365) AS points_12m"""


def _lots(account: str, now: str, fifo_limit: str, extra: str | None = None) -> str:
    """As JSON: every lot of `account` due at `now`, its first `fifo_limit` open lots in FIFO
    order and, with `extra`, that one lot (a refund's earn lot)."""
    extra_lot = "" if extra is None else f"""
           UNION
           (SELECT * FROM points_lots WHERE id = {extra} AND wallet_account_id = {account}
                                        AND remaining > 0)"""
    return f"""(SELECT coalesce(json_agg(json_build_object(
              'id', l.id, 'earned_at', l.earned_at, 'expires_at', l.expires_at,
              'points', l.points, 'remaining', l.remaining)), '[]')::text
     FROM ((SELECT * FROM points_lots WHERE wallet_account_id = {account} AND remaining > 0
                                        AND expires_at <= {now})
           UNION
           (SELECT * FROM points_lots WHERE wallet_account_id = {account} AND remaining > 0
                                        AND expires_at > {now}
             ORDER BY expires_at, earned_at, id LIMIT {fifo_limit}){extra_lot}) l) AS lots"""


STATE = f"""
SELECT i.request_hash, i.status_code, i.response_body,
  {_points_12m("$1", "$4")},
  {_lots("$1", "$5", "$6", extra="$7")}
FROM (SELECT 1) AS one
LEFT JOIN idempotency_keys i ON i.scope = $2 AND i.key = $3
"""


async def account_state(conn: Conn, account_id: uuid.UUID, *,
                        idem: IdemKey | None, now: datetime, fifo_limit: int,
                        extra_lot: uuid.UUID | None = None) -> AccountState:
    """Read, after locking the account: the Idempotency-Key's stored response if any, the
    points earned in the trailing 12 months, the due lots and the oldest open lots."""
    row = await conn.fetchrow(
        STATE, account_id, idem.scope if idem else None, idem.key if idem else None,
        now.date(), now, fifo_limit, extra_lot)
    assert row is not None  # one row by construction
    return AccountState(stored=_stored(row), points_12m=row["points_12m"],
                        lots=_LOTS.decode(row["lots"]))


# The lock and the post-lock read in one round trip. The state columns are read in the
# statement's snapshot, taken *before* the row lock was granted: when a concurrent writer held
# the lock, that snapshot misses what it committed (READ COMMITTED re-reads only the locked
# row). Every writer under the lock updates the wallet account row (`apply` always does), so
# the locked row version (`w.xmin`, the writer that made it) differs from the version the
# snapshot sees exactly when the snapshot may be stale; then `lock_card_state` reads the state
# again in a fresh snapshot. Uncontended (most cards, most of the time): one round trip.
_LOCK_STATE = _CARD_COLUMNS + f""",
       w.xmin::text AS locked_version,
       (SELECT v.xmin::text FROM wallet_accounts v WHERE v.id = w.id) AS read_version,
       i.request_hash, i.status_code, i.response_body,
  {_points_12m("w.id", "$6")},
  {_lots("w.id", "$7", "$8")}
""" + _CARD_JOINS + """LEFT JOIN idempotency_keys i ON i.scope = $4 AND i.key = $5
WHERE c.program_id = $3 AND """
READ_STATE_BY_ID = _LOCK_STATE + "c.id = $1::uuid"
READ_STATE_BY_NUMBER = _LOCK_STATE + "c.number = $1::text"
LOCK_STATE_BY_ID = _LOCK_STATE + "c.id = $1::uuid FOR UPDATE OF w"
LOCK_STATE_BY_NUMBER = _LOCK_STATE + "c.number = $1::text FOR UPDATE OF w"


def _stored(row: asyncpg.Record) -> StoredResponse | None:
    if row["status_code"] is None:
        return None
    return StoredResponse(request_hash=bytes(row["request_hash"]),
                          status_code=row["status_code"], body=bytes(row["response_body"]))


async def lock_card_state(conn: Conn, card: uuid.UUID | str, *, program_id: uuid.UUID,
                          store_id: uuid.UUID, idem: IdemKey, now: datetime,
                          fifo_limit: int) -> tuple[CardContext, AccountState]:
    """`card_context(..., lock=True)` then `account_state(...)`, in one round trip unless a
    concurrent writer committed on this account while we waited for its lock (then two).

    Errors as `card_context`. The lock is held until the transaction ends."""
    row = await card_row(conn, card, LOCK_STATE_BY_ID, LOCK_STATE_BY_NUMBER, store_id,
                          program_id, idem.scope, idem.key, now.date(), now, fifo_limit)
    ctx = _context(row)
    if row["locked_version"] != row["read_version"]:  # the snapshot predates the lock
        return ctx, await account_state(conn, ctx.account_id, idem=idem, now=now,
                                        fifo_limit=fifo_limit)
    return ctx, AccountState(stored=_stored(row), points_12m=row["points_12m"],
                             lots=_LOTS.decode(row["lots"]))


async def read_card_state(conn: Conn, card: uuid.UUID | str, *, program_id: uuid.UUID,
                          store_id: uuid.UUID, idem: IdemKey, now: datetime,
                          fifo_limit: int) -> tuple[CardContext, AccountState, str]:
    """What `lock_card_state` reads, without the lock, in one consistent snapshot; and the
    account row's version in it, which an optimistic `ledger_repo.apply` checks."""
    row = await card_row(conn, card, READ_STATE_BY_ID, READ_STATE_BY_NUMBER, store_id,
                          program_id, idem.scope, idem.key, now.date(), now, fifo_limit)
    return card_state(row)


def card_state(row: asyncpg.Record) -> tuple[CardContext, AccountState, str]:
    """What a row of `READ_STATE_BY_*` says: the card, the account's state, its version."""
    state = AccountState(stored=_stored(row), points_12m=row["points_12m"],
                         lots=_LOTS.decode(row["lots"]))
    return _context(row), state, str(row["locked_version"])


MORE_LOTS = """
SELECT id, earned_at, expires_at, points, remaining FROM points_lots
WHERE wallet_account_id = $1 AND remaining > 0 AND (expires_at, earned_at, id) > ($2, $3, $4)
ORDER BY expires_at, earned_at, id LIMIT $5
"""


async def more_lots(conn: Conn, account_id: uuid.UUID, after: Lot,
                    limit: int) -> list[Lot]:
    """The next open lots in FIFO order after `after` (when the first page did not cover)."""
    rows = await conn.fetch(MORE_LOTS, account_id, after.expires_at, after.earned_at,
                            after.id, limit)
    return [Lot(**dict(r)) for r in rows]


# The open lots, oldest first, up to the first whose running sum reaches the points wanted.
LOTS_COVERING = """
SELECT id, earned_at, expires_at, points, remaining FROM (
  SELECT id, earned_at, expires_at, points, remaining,
         sum(remaining) OVER (ORDER BY expires_at, earned_at, id) - remaining AS before
    FROM points_lots
   WHERE wallet_account_id = $1 AND remaining > 0 AND expires_at > $2) l
WHERE before < $3
ORDER BY expires_at, earned_at, id
"""


async def lots_covering(conn: Conn, account_id: uuid.UUID, *, now: datetime,
                        points: int) -> list[Lot]:
    """The open lots not due at `now`, oldest first, that a debit of `points` takes from
    (all of them if they hold fewer): one query, however many lots it needs."""
    rows = await conn.fetch(LOTS_COVERING, account_id, now, points)
    return [Lot(**dict(r)) for r in rows]


class LockedAccount(msgspec.Struct, frozen=True, kw_only=True):
    program_id: uuid.UUID
    balances: Balances
    rules: EarnRules
    limits: Limits


LOCK_ACCOUNT = """
SELECT w.program_id, w.points_balance, w.stored_value_balance, p.earn_points,
       p.earn_per_amount, p.points_expiry_days, p.tiers::text AS tiers, """ + _LIMIT_COLUMNS + """
FROM wallet_accounts w JOIN programs p ON p.id = w.program_id
WHERE w.id = $1
FOR UPDATE OF w
"""


async def lock_account(conn: Conn, account_id: uuid.UUID) -> LockedAccount:
    """Lock a wallet account row until the transaction ends; its balances and program rules."""
    row = await conn.fetchrow(LOCK_ACCOUNT, account_id)
    if row is None:
        raise errors.NotFound("no such wallet account")
    return LockedAccount(
        program_id=row["program_id"], rules=earn_rules(row), limits=_limits(row),
        balances=Balances(points=row["points_balance"], stored_value=row["stored_value_balance"]))


class MemberAccount(msgspec.Struct, frozen=True, kw_only=True):
    account_id: uuid.UUID
    currency: str


MEMBER_ACCOUNT = """
SELECT m.wallet_account_id AS account_id, p.currency
FROM members m JOIN programs p ON p.id = m.program_id
WHERE m.id = $1
"""


async def member_account(conn: Conn, member_id: uuid.UUID) -> MemberAccount:
    """A member's wallet account and its currency (NotFound for an unknown or erased member);
    an operator acting for the member locks it with `lock_account`."""
    row = await conn.fetchrow(MEMBER_ACCOUNT, member_id)
    if row is None:
        raise errors.NotFound("no such member")
    return MemberAccount(account_id=row["account_id"], currency=row["currency"].strip())
