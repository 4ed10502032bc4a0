"""The ledger's repository: SQL constants right above the functions that run them.

Repositories are where asyncpg exceptions are caught: a unique violation becomes the precise
domain error (a receipt recorded twice → `Conflict`; an Idempotency-Key taken by a concurrent
request → `IdempotencyRace`, which the service turns into a replay). Functions take a
connection and never open transactions: the service (`wallet/ledger/till.py`) owns them. Every write
of an operation is one statement (`apply`), so a till purchase costs BEGIN, lock and read,
write, COMMIT: four round trips whatever the basket (a fifth after waiting for a hot card).
Stored idempotent responses live in `wallet/kernel/idempotency_repo.py`, the member's own statement
in `wallet/ledger/statement_repo.py`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

import asyncpg
import msgspec

from wallet.kernel import errors
from wallet.kernel.db import Conn
from wallet.kernel.idempotency_repo import IdemKey, IdempotencyRace, StoredResponse
from wallet.kernel.model import Tier
from wallet.ledger.rules import Balances, EarnRules, Effect, Lot
from wallet.privacy.access_log import Access

TxKind = Literal["purchase", "refund", "topup"]


class CardContext(msgspec.Struct, frozen=True, kw_only=True):
    """A card with its member, wallet account and program, as a till needs them."""

    card_id: uuid.UUID
    card_status: str
    member_id: uuid.UUID
    first_name: str
    pin_hash: str | None
    pin_failures: int
    pin_locked_until: datetime | None
    account_id: uuid.UUID
    balances: Balances
    tier: str | None
    program_id: uuid.UUID
    currency: str
    stored_value_enabled: bool
    rules: EarnRules
    store_ok: bool  # the store exists, is not deleted and belongs to the card's program


_TIERS = msgspec.json.Decoder(list[Tier])
_LOTS = msgspec.json.Decoder(list[Lot])


def _rules(row: asyncpg.Record) -> EarnRules:
    tiers = sorted(_TIERS.decode(row["tiers"]), key=lambda t: t.min_points_12m)
    return EarnRules(earn_points=row["earn_points"], earn_per_amount=row["earn_per_amount"],
                     points_expiry_days=row["points_expiry_days"], tiers=tuple(tiers))


# What a till needs of a card, its member, wallet account and program ($2: the till's store).
_CARD_COLUMNS = """
SELECT c.id AS card_id, c.status AS card_status, m.id AS member_id, m.first_name,
       m.pin_hash, m.pin_failures, m.pin_locked_until,
       w.id AS account_id, w.points_balance, w.stored_value_balance, w.tier,
       p.id AS program_id, p.currency, p.stored_value, p.earn_points, p.earn_per_amount,
       p.points_expiry_days, p.tiers::text AS tiers,
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


async def _card_row(conn: Conn, card: uuid.UUID | str, by_id: str, by_number: str,
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
    row = await _card_row(conn, card, LOCK_BY_ID if lock else CONTEXT_BY_ID,
                          LOCK_BY_NUMBER if lock else CONTEXT_BY_NUMBER, store_id, program_id)
    return _context(row)


def _context(row: asyncpg.Record) -> CardContext:
    return CardContext(
        card_id=row["card_id"], card_status=row["card_status"], member_id=row["member_id"],
        first_name=row["first_name"], pin_hash=row["pin_hash"],
        pin_failures=row["pin_failures"], pin_locked_until=row["pin_locked_until"],
        account_id=row["account_id"],
        balances=Balances(points=row["points_balance"],
                          stored_value=row["stored_value_balance"]),
        tier=row["tier"], program_id=row["program_id"], currency=row["currency"].strip(),
        stored_value_enabled=row["stored_value"], rules=_rules(row), store_ok=row["store_ok"])


class AccountState(msgspec.Struct, frozen=True, kw_only=True):
    """What a locked account's operation reads after the lock (a fresh snapshot)."""

    stored: StoredResponse | None
    points_12m: int
    lots: list[Lot]  # every due lot, then the first `fifo_limit` open lots, then `extra_lot`


STATE = """
SELECT i.request_hash, i.status_code, i.response_body,
  (SELECT coalesce(sum(d.points), 0)::bigint FROM tier_points_daily d
    WHERE d.wallet_account_id = $1 AND d.day > $4::date - 365) AS points_12m,
  (SELECT coalesce(json_agg(json_build_object(
              'id', l.id, 'earned_at', l.earned_at, 'expires_at', l.expires_at,
              'points', l.points, 'remaining', l.remaining)), '[]')::text
     FROM ((SELECT * FROM points_lots WHERE wallet_account_id = $1 AND remaining > 0
                                        AND expires_at <= $5)
           UNION
           (SELECT * FROM points_lots WHERE wallet_account_id = $1 AND remaining > 0
                                        AND expires_at > $5
             ORDER BY expires_at, earned_at, id LIMIT $6)
           UNION
           (SELECT * FROM points_lots WHERE id = $7 AND wallet_account_id = $1
                                        AND remaining > 0)) l) AS lots
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
_LOCK_STATE = _CARD_COLUMNS + """,
       w.xmin::text AS locked_version,
       (SELECT v.xmin::text FROM wallet_accounts v WHERE v.id = w.id) AS read_version,
       i.request_hash, i.status_code, i.response_body,
  (SELECT coalesce(sum(d.points), 0)::bigint FROM tier_points_daily d
    WHERE d.wallet_account_id = w.id AND d.day > $6::date - 365) AS points_12m,
  (SELECT coalesce(json_agg(json_build_object(
              'id', l.id, 'earned_at', l.earned_at, 'expires_at', l.expires_at,
              'points', l.points, 'remaining', l.remaining)), '[]')::text
     FROM ((SELECT * FROM points_lots WHERE wallet_account_id = w.id AND remaining > 0
                                        AND expires_at <= $7)
           UNION
           (SELECT * FROM points_lots WHERE wallet_account_id = w.id AND remaining > 0
                                        AND expires_at > $7
             ORDER BY expires_at, earned_at, id LIMIT $8)) l) AS lots
""" + _CARD_JOINS + """LEFT JOIN idempotency_keys i ON i.scope = $4 AND i.key = $5
WHERE c.program_id = $3 AND """
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
    row = await _card_row(conn, card, LOCK_STATE_BY_ID, LOCK_STATE_BY_NUMBER, store_id,
                          program_id, idem.scope, idem.key, now.date(), now, fifo_limit)
    ctx = _context(row)
    if row["locked_version"] != row["read_version"]:  # the snapshot predates the lock
        return ctx, await account_state(conn, ctx.account_id, idem=idem, now=now,
                                        fifo_limit=fifo_limit)
    return ctx, AccountState(stored=_stored(row), points_12m=row["points_12m"],
                             lots=_LOTS.decode(row["lots"]))


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


class TxRow(msgspec.Struct, frozen=True, kw_only=True):
    """A `transactions` row to insert (every column, in the table's order)."""

    id: uuid.UUID
    program_id: uuid.UUID
    wallet_account_id: uuid.UUID
    store_id: uuid.UUID
    staff_id: uuid.UUID | None
    kind: TxKind
    receipt_id: str | None
    amount: int
    currency: str
    original_transaction_id: uuid.UUID | None = None
    points_earned: int = 0
    points_redeemed: int = 0
    stored_value_spent: int = 0
    discount: int = 0
    refunded_amount: int = 0
    points_taken_back: int = 0
    points_returned: int = 0
    stored_value_returned: int = 0
    points_shortfall: int = 0
    at: datetime


class EntryRow(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    wallet_account_id: uuid.UUID
    program_id: uuid.UUID
    at: datetime
    kind: str
    points: int
    stored_value: int
    store_id: uuid.UUID | None
    transaction_id: uuid.UUID | None
    lot_id: uuid.UUID | None
    points_balance_after: int
    stored_value_balance_after: int


class LotRow(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    wallet_account_id: uuid.UUID
    source: str
    transaction_id: uuid.UUID | None
    earned_at: datetime
    expires_at: datetime
    points: int
    remaining: int


class Write(msgspec.Struct, frozen=True, kw_only=True):
    """Everything one operation appends or changes, written by one statement."""

    account_id: uuid.UUID
    program_id: uuid.UUID
    effect: Effect
    at: datetime
    store_id: uuid.UUID | None = None
    tx: TxRow | None = None
    tier: str | None = None
    set_tier: bool = False
    tier_day: date | None = None
    tier_points: int = 0
    refund_of: uuid.UUID | None = None
    refund_amount: int = 0
    reset_pin_of: uuid.UUID | None = None
    idem: IdemKey | None = None
    status_code: int = 0
    response: bytes = b""
    redeem_offers: tuple[uuid.UUID, ...] = ()  # offers this purchase redeems (unredeemed)
    access: Access | None = None  # the staff read of the member's balances, to log


APPLY = """
WITH
tx AS (
  INSERT INTO transactions
  SELECT * FROM jsonb_populate_recordset(NULL::transactions, $1::jsonb) RETURNING id),
orig AS (
  UPDATE transactions SET refunded_amount = refunded_amount + $10::bigint
   WHERE id = $9::uuid RETURNING id),
new_lots AS (
  INSERT INTO points_lots (id, wallet_account_id, source, transaction_id, earned_at,
                           expires_at, points, remaining)
  SELECT id, wallet_account_id, source, transaction_id, earned_at, expires_at, points, remaining
    FROM jsonb_populate_recordset(NULL::points_lots, $3::jsonb) RETURNING id),
lot_updates AS (
  UPDATE points_lots l SET remaining = u.remaining
    FROM jsonb_populate_recordset(NULL::points_lots, $4::jsonb) AS u
   WHERE l.id = u.id AND l.wallet_account_id = $5 AND l.remaining > 0 RETURNING l.id),
entries AS (
  INSERT INTO ledger_entries (id, wallet_account_id, program_id, at, kind, points, stored_value,
                              store_id, transaction_id, lot_id, points_balance_after,
                              stored_value_balance_after)
  SELECT id, wallet_account_id, program_id, at, kind, points, stored_value, store_id,
         transaction_id, lot_id, points_balance_after, stored_value_balance_after
    FROM jsonb_populate_recordset(NULL::ledger_entries, $2::jsonb) RETURNING id),
account AS (
  UPDATE wallet_accounts SET points_balance = $6::bigint, stored_value_balance = $7::bigint,
         tier = CASE WHEN $8::boolean THEN $11::text ELSE tier END
   WHERE id = $5::uuid RETURNING id),
tier_days AS (
  INSERT INTO tier_points_daily (wallet_account_id, day, points)
  SELECT $5::uuid, $12::date, $13::bigint WHERE $13::bigint <> 0
  ON CONFLICT (wallet_account_id, day)
  DO UPDATE SET points = tier_points_daily.points + EXCLUDED.points RETURNING 1),
pin AS (
  UPDATE members SET pin_failures = 0, pin_locked_until = NULL
   WHERE id = $14::uuid AND (pin_failures > 0 OR pin_locked_until IS NOT NULL) RETURNING 1),
idem AS (
  INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body)
  SELECT $15::text, $16::text, $17::bytea, $18::integer, $19::bytea
   WHERE $15::text IS NOT NULL RETURNING 1),
offers_used AS (
  UPDATE offers SET redeemed_at = $21::timestamptz, redeemed_store_id = $22::uuid,
         redeemed_transaction_id = $23::uuid
   WHERE id = ANY($20::uuid[]) AND redeemed_at IS NULL RETURNING 1),
access AS (
  INSERT INTO access_log (member_id, program_id, actor_id, actor_role, action, purpose,
                          store_id, at)
  SELECT m.id, m.program_id, $24::uuid, $25::text, $26::text, $27::text, $22::uuid,
         $21::timestamptz
    FROM members m WHERE m.wallet_account_id = $5::uuid AND $24::uuid IS NOT NULL RETURNING 1)
SELECT (SELECT count(*) FROM entries) AS entries, (SELECT count(*) FROM account) AS accounts,
       (SELECT count(*) FROM lot_updates) AS lots_updated, (SELECT count(*) FROM orig) AS refunded,
       (SELECT count(*) FROM offers_used) AS offers_redeemed
"""

_json = msgspec.json.Encoder()


def _access_params(a: Access | None) -> tuple[uuid.UUID | None, str | None, str | None,
                                             str | None]:
    if a is None:
        return None, None, None, None
    return a.actor.id, a.actor.role, a.action, a.purpose


def _rows(w: Write) -> tuple[str, str, str, str]:
    tx_id = w.tx.id if w.tx else None
    entries = [EntryRow(
        id=uuid.uuid4(), wallet_account_id=w.account_id, program_id=w.program_id, at=w.at,
        kind=e.kind, points=e.points, stored_value=e.stored_value, store_id=w.store_id,
        transaction_id=tx_id, lot_id=e.lot_id, points_balance_after=e.points_after,
        stored_value_balance_after=e.stored_value_after) for e in w.effect.entries]
    lots = [LotRow(id=n.id, wallet_account_id=w.account_id, source=n.source,
                   transaction_id=tx_id, earned_at=n.earned_at, expires_at=n.expires_at,
                   points=n.points, remaining=n.remaining) for n in w.effect.new_lots]
    txs = [w.tx] if w.tx else []
    return (_json.encode(txs).decode(), _json.encode(entries).decode(),
            _json.encode(lots).decode(), _json.encode(w.effect.lot_updates).decode())


async def apply(conn: Conn, w: Write) -> None:
    """Append the operation: transaction row, ledger entries, lots, cached balances, tier
    points, PIN counter reset, redeemed offers, the Idempotency-Key's response and the
    access-log entry of the staff read (of the account's member, if any), in one statement.

    Lot updates only ever consume open lots (the rules take from lots with points left), so
    `lot_updates` says `remaining > 0`: that lets it find them by the account's open-lots
    index instead of scanning every lot of every account (it did: the planner expects 100
    rows from jsonb_populate_recordset and hash-joined a sequential scan, on each write, and
    the table grows with every purchase). A stale lot would be a bug: the count check below
    refuses the write then.

    Raises Conflict (field `receipt_id`) for a receipt already recorded in this store, and
    IdempotencyRace when a concurrent request committed the same key first."""
    txs, entries, lots, updates = _rows(w)
    idem = w.idem
    try:
        row = await conn.fetchrow(
            APPLY, txs, entries, lots, updates, w.account_id, w.effect.balances.points,
            w.effect.balances.stored_value, w.set_tier, w.refund_of, w.refund_amount, w.tier,
            w.tier_day, w.tier_points, w.reset_pin_of,
            idem.scope if idem else None, idem.key if idem else None,
            idem.request_hash if idem else None, w.status_code, w.response,
            list(w.redeem_offers), w.at, w.store_id, w.tx.id if w.tx else None,
            *_access_params(w.access))
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "transactions_receipt":
            raise errors.Conflict("this receipt is already recorded for this store",
                                  field="receipt_id") from exc
        if exc.constraint_name == "idempotency_keys_pkey":
            raise IdempotencyRace(str(exc)) from exc
        raise
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == "transactions_refunded_amount_check":
            raise errors.RuleViolation("the refunds would exceed the purchase amount",
                                       field="amount") from exc
        raise
    assert row is not None
    if row["offers_redeemed"] != len(w.redeem_offers):  # the account lock makes this a bug
        raise errors.RuleViolation("an offer was redeemed by a concurrent purchase",
                                   field="redeem.offer_ids")
    if row["accounts"] != 1 or row["lots_updated"] != len(w.effect.lot_updates) or (
            w.refund_of is not None and row["refunded"] != 1):
        raise RuntimeError("ledger write touched unexpected rows")  # a bug, never input


PIN_FAILED = """
UPDATE members SET
  pin_failures = CASE WHEN pin_failures + 1 >= $2 THEN 0 ELSE pin_failures + 1 END,
  pin_locked_until = CASE WHEN pin_failures + 1 >= $2 THEN $3 ELSE pin_locked_until END
WHERE id = $1
RETURNING pin_locked_until
"""


async def record_pin_failure(conn: Conn, member_id: uuid.UUID, *,
                             max_attempts: int, lock_until: datetime) -> datetime | None:
    """Count one wrong PIN; the `max_attempts`-th locks spending until `lock_until` (and
    restarts the count). Returns the lock's end if the PIN is now locked."""
    locked: datetime | None = await conn.fetchval(PIN_FAILED, member_id, max_attempts,
                                                  lock_until)
    return locked if locked is not None and locked >= lock_until else None


class Purchase(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded purchase, as a refund needs it."""

    id: uuid.UUID
    wallet_account_id: uuid.UUID
    program_id: uuid.UUID
    currency: str
    amount: int
    refunded_amount: int
    points_earned: int
    points_redeemed: int
    stored_value_spent: int
    at: datetime
    earn_lot_id: uuid.UUID | None
    store_ok: bool


PURCHASE = """
SELECT t.id, t.wallet_account_id, t.program_id, t.currency, t.amount, t.refunded_amount,
       t.points_earned, t.points_redeemed, t.stored_value_spent, t.at,
       (SELECT l.id FROM points_lots l WHERE l.transaction_id = t.id AND l.source = 'earn')
         AS earn_lot_id,
       EXISTS (SELECT 1 FROM stores s WHERE s.id = $3 AND s.program_id = t.program_id
                                        AND s.deleted_at IS NULL) AS store_ok
FROM transactions t
WHERE t.id = $1 AND t.program_id = $2 AND t.kind = 'purchase'
"""


async def purchase(conn: Conn, tx_id: uuid.UUID, *, program_id: uuid.UUID,
                   store_id: uuid.UUID) -> Purchase:
    """A purchase of `program_id` (NotFound naming `transaction_id` otherwise), re-read
    fresh: call it after locking the account to see the refunds committed so far."""
    row = await conn.fetchrow(PURCHASE, tx_id, program_id, store_id)
    if row is None:
        raise errors.NotFound("no such purchase in this program", field="transaction_id")
    return Purchase(**{**dict(row), "currency": row["currency"].strip()})


class LockedAccount(msgspec.Struct, frozen=True, kw_only=True):
    program_id: uuid.UUID
    balances: Balances
    rules: EarnRules


LOCK_ACCOUNT = """
SELECT w.program_id, w.points_balance, w.stored_value_balance, p.earn_points,
       p.earn_per_amount, p.points_expiry_days, p.tiers::text AS tiers
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
        program_id=row["program_id"], rules=_rules(row),
        balances=Balances(points=row["points_balance"], stored_value=row["stored_value_balance"]))


DUE_ACCOUNTS = """
SELECT DISTINCT wallet_account_id FROM points_lots
WHERE remaining > 0 AND expires_at <= $1
LIMIT $2
"""


async def due_accounts(conn: Conn, now: datetime, limit: int) -> list[uuid.UUID]:
    """Wallet accounts holding at least one lot due to expire at `now`."""
    return [r[0] for r in await conn.fetch(DUE_ACCOUNTS, now, limit)]


TRY_LOCK = "SELECT pg_try_advisory_xact_lock($1)"


async def try_job_lock(conn: Conn, key: int) -> bool:
    """Take a job's advisory lock if free (a periodic job runs in one process at a time),
    until `conn`'s transaction ends.

    Transaction-scoped, never session-scoped: pools do not reset sessions on release (see
    `wallet.db.keep_session`), and a transaction always ends (even on cancellation the pool
    rolls it back), so the lock cannot outlive the job on a pooled connection. A job holds it
    with a transaction open on a connection of its own and works on a second one (its
    own short transactions). That idle transaction wrote nothing and holds no snapshot
    between statements (READ COMMITTED), so it holds back no vacuum."""
    return bool(await conn.fetchval(TRY_LOCK, key))
