"""The ledger's write: every row one till operation appends or changes, in one statement.

Repositories are where asyncpg exceptions are caught: a unique violation becomes the precise
domain error (a receipt recorded twice → `Conflict`; an Idempotency-Key taken by a concurrent
request → `IdempotencyRace`, which the service turns into a replay). Functions take a
connection and never open transactions: the service (`wallet/ledger/till.py`) owns them. Every write
of an operation is one statement (`apply`), so a till purchase costs a read and that write,
which commits on its own and checks the account is unchanged since the read (optimistic:
two round trips whatever the basket), or BEGIN, lock and read, write, COMMIT under the lock.
What an operation reads under the account lock is in `wallet/ledger/account_repo.py`, stored
idempotent responses in `wallet/kernel/idempotency_repo.py`, the member's own statement in
`wallet/ledger/statement_repo.py`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Literal

import asyncpg
import msgspec

from wallet.kernel import errors, ids
from wallet.kernel.db import Conn
from wallet.kernel.idempotency_repo import IdemKey, IdempotencyRace
from wallet.kernel.model import EntryFields, PointsLot
from wallet.ledger.rules import Effect
from wallet.privacy.access_log import Access

TxKind = Literal["purchase", "refund", "topup", "payout"]


class TxRow(msgspec.Struct, frozen=True, kw_only=True):
    """A `transactions` row to insert (every column, in the table's order)."""

    id: uuid.UUID
    program_id: uuid.UUID
    wallet_account_id: uuid.UUID
    store_id: uuid.UUID | None  # None: an operator's payout, rung up at no store
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
    reference: str | None = None  # payouts: how it was paid (a transfer's reference)


class EntryRow(EntryFields, frozen=True, kw_only=True):
    """A `ledger_entries` row to insert."""

    wallet_account_id: uuid.UUID
    program_id: uuid.UUID


class LotRow(PointsLot, frozen=True, kw_only=True):
    """A `points_lots` row to insert."""

    wallet_account_id: uuid.UUID


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
    idem: IdemKey | None = None
    status_code: int = 0
    response: bytes = b""
    redeem_offers: tuple[uuid.UUID, ...] = ()  # offers this purchase redeems (unredeemed)
    access: Access | None = None  # the staff read of the member's balances, to log
    pin_restart: uuid.UUID | None = None  # the member whose PIN count restarts with it


# `account` comes first and the rows that other writers of the account also lock (its open
# lots) or check against its last entry (the balance chain) wait for it: with `$27` (the
# version read, optimistic writes) a concurrent writer is met on the account row, first,
# and the statement refuses as a whole (`write_guard`, migration 0013) instead of failing
# half-way on a chain check or deadlocking on a lot. The main SELECT reads `account` first.
_APPLY = """
WITH
account AS (
  UPDATE wallet_accounts SET points_balance = $6::bigint, stored_value_balance = $7::bigint,
         tier = CASE WHEN $8::boolean THEN $11::text ELSE tier END
   WHERE id = $5::uuid AND ($27::text IS NULL OR xmin::text = $27::text) RETURNING id),
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
   WHERE l.id = u.id AND l.wallet_account_id = $5 AND l.remaining > 0
     AND EXISTS (SELECT FROM account) RETURNING l.id),
entries AS (
  INSERT INTO ledger_entries (id, wallet_account_id, program_id, at, kind, points, stored_value,
                              store_id, transaction_id, lot_id, points_balance_after,
                              stored_value_balance_after)
  SELECT id, wallet_account_id, program_id, at, kind, points, stored_value, store_id,
         transaction_id, lot_id, points_balance_after, stored_value_balance_after
    FROM jsonb_populate_recordset(NULL::ledger_entries, $2::jsonb)
   WHERE EXISTS (SELECT FROM account) RETURNING id),
tier_days AS (
  INSERT INTO tier_points_daily (wallet_account_id, day, points)
  SELECT $5::uuid, $12::date, $13::bigint WHERE $13::bigint <> 0
  ON CONFLICT (wallet_account_id, day)
  DO UPDATE SET points = tier_points_daily.points + EXCLUDED.points RETURNING 1),
idem AS (
  INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body)
  SELECT $14::text, $15::text, $16::bytea, $17::integer, $18::bytea
   WHERE $14::text IS NOT NULL RETURNING 1),
offers_used AS (
  UPDATE offers SET redeemed_at = $20::timestamptz, redeemed_store_id = $21::uuid,
         redeemed_transaction_id = $22::uuid
   WHERE id = ANY($19::uuid[]) AND redeemed_at IS NULL RETURNING 1),
access AS (
  INSERT INTO access_log (member_id, program_id, actor_id, actor_role, action, purpose,
                          store_id, at)
  SELECT m.id, m.program_id, $23::uuid, $24::text, $25::text, $26::text, $21::uuid,
         $20::timestamptz
    FROM members m WHERE m.wallet_account_id = $5::uuid AND $23::uuid IS NOT NULL RETURNING 1)
{pin}
SELECT (SELECT count(*) FROM account) AS accounts, (SELECT count(*) FROM entries) AS entries,
       (SELECT count(*) FROM lot_updates) AS lots_updated, (SELECT count(*) FROM orig) AS refunded,
       (SELECT count(*) FROM offers_used) AS offers_redeemed,
       CASE WHEN $27::text IS NULL THEN true  -- locked: the caller checks the counts
            ELSE write_guard((SELECT count(*) FROM account) = 1
                             AND (SELECT count(*) FROM lot_updates) = $28::bigint
                             AND (SELECT count(*) FROM offers_used) = $29::bigint,
                             'wallet account') END AS checked
"""

APPLY = _APPLY.format(pin="")
# The same write restarting the PIN count of the member `$30` (a right PIN's, checked
# before this write: `wallet/ledger/pin_check.py`), in the write's own transaction, only
# when the account's update went through (after it: the account row is locked first).
APPLY_RESTARTING_PIN = _APPLY.format(pin=""",
pin_restart AS (
  UPDATE members SET pin_failures = 0
   WHERE id = $30::uuid AND pin_failures > 0 AND EXISTS (SELECT FROM account) RETURNING 1)""")

_json = msgspec.json.Encoder()


def _access_params(a: Access | None) -> tuple[uuid.UUID | None, str | None, str | None,
                                             str | None]:
    if a is None:
        return None, None, None, None
    return a.actor.id, a.actor.role, a.action, a.purpose


def _rows(w: Write) -> tuple[str, str, str, str]:
    tx_id = w.tx.id if w.tx else None
    entries = [EntryRow(
        id=ids.time_ordered(), wallet_account_id=w.account_id, program_id=w.program_id, at=w.at,
        kind=e.kind, points=e.points, stored_value=e.stored_value, store_id=w.store_id,
        transaction_id=tx_id, lot_id=e.lot_id, points_balance_after=e.points_after,
        stored_value_balance_after=e.stored_value_after) for e in w.effect.entries]
    lots = [LotRow(id=n.id, wallet_account_id=w.account_id, source=n.source,
                   transaction_id=tx_id, earned_at=n.earned_at, expires_at=n.expires_at,
                   points=n.points, remaining=n.remaining) for n in w.effect.new_lots]
    txs = [w.tx] if w.tx else []
    return (_json.encode(txs).decode(), _json.encode(entries).decode(),
            _json.encode(lots).decode(), _json.encode(w.effect.lot_updates).decode())


@contextmanager
def unique_errors() -> Iterator[None]:
    """Map a ledger write's constraint violations to their domain errors: a receipt already
    recorded in this store → Conflict (field `receipt_id`); a concurrent request that
    committed the same Idempotency-Key first → IdempotencyRace; refunds above the purchase
    → RuleViolation (field `amount`); the member erased while the write waited for the
    account row (the access log's foreign key refuses their id) → NotFound."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "transactions_receipt":
            raise errors.Conflict("this receipt is already recorded for this store",
                                  field="receipt_id") from exc
        if exc.constraint_name == "idempotency_keys_pkey":
            raise IdempotencyRace(str(exc)) from exc
        raise
    except asyncpg.ForeignKeyViolationError as exc:
        if exc.constraint_name == "access_log_member_id_fkey":
            raise errors.NotFound("no such member: erased while this request ran") from exc
        raise
    except asyncpg.CheckViolationError as exc:
        if exc.constraint_name == "transactions_refunded_amount_check":
            raise errors.RuleViolation("the refunds would exceed the purchase amount",
                                       field="amount") from exc
        raise


async def apply(conn: Conn, w: Write, *, version: str | None = None) -> None:
    """Append the operation: transaction row, ledger entries, lots, cached balances, tier
    points, redeemed offers, the Idempotency-Key's response and the
    access-log entry of the staff read (of the account's member, if any), in one statement;
    with `w.pin_restart`, the member's PIN count restarts with it.

    `version`: None when the caller holds the account's row lock (in its transaction).
    Otherwise the account row version its read saw (`account_repo.read_card_state`), and
    the statement, run on its own as one transaction, writes only if the account is still
    at that version and the lots and offers it consumes are still there: else nothing is
    written and `asyncpg.SerializationError` is raised (the caller reads again).

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
    restart = () if w.pin_restart is None else (w.pin_restart,)
    with unique_errors():
        row = await conn.fetchrow(
            APPLY_RESTARTING_PIN if restart else APPLY, txs, entries, lots, updates,
            w.account_id, w.effect.balances.points,
            w.effect.balances.stored_value, w.set_tier, w.refund_of, w.refund_amount, w.tier,
            w.tier_day, w.tier_points,
            idem.scope if idem else None, idem.key if idem else None,
            idem.request_hash if idem else None, w.status_code, w.response,
            list(w.redeem_offers), w.at, w.store_id, w.tx.id if w.tx else None,
            *_access_params(w.access), version, len(w.effect.lot_updates),
            len(w.redeem_offers), *restart)
    assert row is not None
    if row["offers_redeemed"] != len(w.redeem_offers):  # the account lock makes this a bug
        raise errors.RuleViolation("an offer was redeemed by a concurrent purchase",
                                   field="redeem.offer_ids")
    if row["accounts"] != 1 or row["lots_updated"] != len(w.effect.lot_updates) or (
            w.refund_of is not None and row["refunded"] != 1):
        raise RuntimeError("ledger write touched unexpected rows")  # a bug, never input


class Purchase(msgspec.Struct, frozen=True, kw_only=True):
    """A recorded purchase, as a refund needs it."""

    id: uuid.UUID
    wallet_account_id: uuid.UUID
    program_id: uuid.UUID
    currency: str
    amount: int
    discount: int  # offers and vouchers: `amount - discount` is what was paid
    refunded_amount: int  # of what was paid
    has_refund: bool  # a refund was recorded (how a purchase nothing was paid for is done)
    points_earned: int
    points_redeemed: int
    stored_value_spent: int
    at: datetime
    earn_lot_id: uuid.UUID | None
    store_ok: bool  # the refunding store is a live store of the program
    store_id: uuid.UUID  # where it was rung up
    cross_store_refunds: bool  # the program's setting: refunds at its other stores allowed

    @property
    def paid(self) -> int:
        return self.amount - self.discount


_PURCHASE = """
SELECT t.id, t.wallet_account_id, t.program_id, t.currency, t.amount, t.discount,
       t.refunded_amount, t.points_earned, t.points_redeemed, t.stored_value_spent, t.at,
       EXISTS (SELECT 1 FROM transactions r WHERE r.original_transaction_id = t.id)
         AS has_refund,
       (SELECT l.id FROM points_lots l WHERE l.transaction_id = t.id AND l.source = 'earn')
         AS earn_lot_id,
       EXISTS (SELECT 1 FROM stores s WHERE s.id = $3 AND s.program_id = t.program_id
                                        AND s.deleted_at IS NULL) AS store_ok,
       t.store_id, p.cross_store_refunds
FROM transactions t JOIN programs p ON p.id = t.program_id
WHERE t.program_id = $2 AND t.kind = 'purchase' AND """
PURCHASE = _PURCHASE + "t.id = $1::uuid"
# A receipt is unique per store (the `transactions_receipt` index): looked up in the store
# that rang it up, `$4` (the till's own, unless the refund names another).
PURCHASE_BY_RECEIPT = _PURCHASE + "t.store_id = $4 AND t.receipt_id = $1::text"


async def purchase(conn: Conn, tx: uuid.UUID | str, *, program_id: uuid.UUID,
                   store_id: uuid.UUID, receipt_store_id: uuid.UUID | None = None) -> Purchase:
    """A purchase of `program_id` by transaction id, or by receipt id (`str`) rung up in
    `receipt_store_id` (default: `store_id`, the till's), NotFound naming `transaction_id` or
    `receipt_id` otherwise; re-read fresh: call it after locking the account to see the
    refunds committed so far. `store_ok` says whether `store_id` is a live store of it."""
    by_id = isinstance(tx, uuid.UUID)
    row = await (conn.fetchrow(PURCHASE, tx, program_id, store_id) if by_id else
                 conn.fetchrow(PURCHASE_BY_RECEIPT, tx, program_id, store_id,
                               receipt_store_id or store_id))
    if row is None:
        if by_id:
            raise errors.NotFound("no such purchase in this program", field="transaction_id")
        raise errors.NotFound("no purchase with this receipt in this store", field="receipt_id")
    return Purchase(**{**dict(row), "currency": row["currency"].strip()})
