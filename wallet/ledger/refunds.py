"""Refunds at the till, in what was paid: a purchase of 2,450 on which an offer took 490 off
gives back at most 1,960, split into what goes back by card or in cash and what goes back to
the purse (stored value), in the proportions the purchase was paid; the points it earned are
taken back and the points it redeemed returned in the same proportion (`refund_rules.refund`).

A purchase is named by its transaction id or by its receipt id in the store that rang it up
(the till's, unless the refund names another). Refunds across the program's stores are allowed
unless its `cross_store_refunds` setting is off (CrossStoreRefundDisabled): most chains take
returns anywhere. The refund is recorded at the refunding store (its transaction and ledger
entries), and its access-log entry says that the till read another store's purchase
(`till.refund_other_store`). Like every till operation: one transaction that locks the
wallet account, reads the purchase again under the lock (refunds committed so far), writes
with one statement, and stores the answer under the request's Idempotency-Key
(`wallet.kernel.idempotency`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import msgspec

from wallet.kernel import errors, ids
from wallet.kernel.idempotency import IdemKey, Outcome, encode, replay, retrying
from wallet.ledger import account_repo, refund_rules
from wallet.ledger import ledger_repo as ledger
from wallet.ledger.till import LOTS_PAGE, Caller, cover_lots, till_access
from wallet.vouchers import redemption as voucher_redemption


class RefundResult(msgspec.Struct, frozen=True, kw_only=True):
    """A refund, in what was paid: `refunded_amount` = `cash_back` (by card or in cash) +
    `stored_value_back` (to the purse). `amount` and `stored_value_returned` are the same
    figures under their first names."""

    transaction_id: uuid.UUID
    original_transaction_id: uuid.UUID
    amount: int
    refunded_amount: int = 0
    cash_back: int = 0
    stored_value_back: int = 0
    remaining_refundable: int = 0  # of what was paid for the purchase, after this refund
    points_taken_back: int
    points_shortfall: int  # earned points already spent, which could not be taken back
    points_returned: int
    stored_value_returned: int
    points_balance: int
    stored_value_balance: int
    vouchers_restored: list[uuid.UUID] = []  # usable again: the purchase is fully refunded



async def refund(pool: asyncpg.Pool, caller: Caller, *, store_id: uuid.UUID,
                 purchase: uuid.UUID | str, amount: int | None, idem: IdemKey,
                 receipt_store_id: uuid.UUID | None = None,
                 now: datetime | None = None) -> Outcome[RefundResult]:
    """Refund `amount` (default: all that is left) of what was paid for a purchase, at
    `store_id`; the purchase is named by its transaction id or by its receipt id (`str`) in
    `receipt_store_id` (default `store_id`); see `refund_rules.refund`. The refund that completes it
    makes the reward vouchers the purchase used usable again."""
    now = now or datetime.now(UTC)
    field = "transaction_id" if isinstance(purchase, uuid.UUID) else "receipt_id"
    async with pool.acquire() as conn:

        async def work() -> Outcome[RefundResult]:
            async with conn.transaction():
                found = await ledger.purchase(conn, purchase,
                                              program_id=caller.program_id, store_id=store_id,
                                              receipt_store_id=receipt_store_id)
                if not found.store_ok:
                    raise errors.NotFound("no such store in this program", field="store_id")
                elsewhere = found.store_id != store_id
                if elsewhere and not found.cross_store_refunds:
                    raise errors.CrossStoreRefundDisabled(
                        "this program refunds a purchase only at the store that rang it up",
                        field=field)
                locked = await account_repo.lock_account(conn, found.wallet_account_id)
                p = await ledger.purchase(conn, found.id, program_id=caller.program_id,
                                          store_id=store_id)  # fresh: refunds so far
                state = await account_repo.account_state(
                    conn, p.wallet_account_id, idem=idem, now=now, fifo_limit=LOTS_PAGE,
                    extra_lot=p.earn_lot_id)
                if state.stored is not None:
                    return replay(state.stored, idem, RefundResult)
                left = p.paid - p.refunded_amount
                if (left <= 0 < p.paid) or (p.paid == 0 and p.has_refund):
                    raise errors.RuleViolation("this purchase is already fully refunded",
                                               field=field)
                how_much = (left if p.paid else 0) if amount is None else amount
                original = refund_rules.Original(
                    amount=p.paid, refunded_amount=p.refunded_amount,
                    points_earned=p.points_earned, points_redeemed=p.points_redeemed,
                    stored_value_spent=p.stored_value_spent, earn_lot_id=p.earn_lot_id)
                owed = p.points_earned if p.paid == 0 else refund_rules.share(
                    p.points_earned, p.paid, p.refunded_amount,
                    p.refunded_amount + min(how_much, left))
                lots = await cover_lots(conn, p.wallet_account_id, state.lots, owed, now)
                done = refund_rules.refund(locked.balances, lots, original, amount=how_much,
                                    rules=locked.rules, now=now, return_lot_id=ids.time_ordered(),
                                    limits=locked.limits)
                restored = await voucher_redemption.restore(conn, p.id) if (
                    how_much == left or p.paid == 0) else []
                tx = ledger.TxRow(
                    id=ids.time_ordered(), program_id=p.program_id,
                    wallet_account_id=p.wallet_account_id, store_id=store_id,
                    staff_id=caller.account_id, kind="refund", receipt_id=None,
                    amount=how_much, currency=p.currency, original_transaction_id=p.id,
                    points_taken_back=done.points_taken_back,
                    points_returned=done.points_returned,
                    stored_value_returned=done.stored_value_returned,
                    points_shortfall=done.points_shortfall, at=now)
                result = RefundResult(
                    transaction_id=tx.id, original_transaction_id=p.id, amount=how_much,
                    refunded_amount=how_much, cash_back=done.cash_back,
                    stored_value_back=done.stored_value_returned,
                    remaining_refundable=max(left, 0) - how_much,
                    points_taken_back=done.points_taken_back,
                    points_shortfall=done.points_shortfall,
                    points_returned=done.points_returned,
                    stored_value_returned=done.stored_value_returned,
                    points_balance=done.effect.balances.points,
                    stored_value_balance=done.effect.balances.stored_value,
                    vouchers_restored=restored)
                await ledger.apply(conn, ledger.Write(
                    account_id=p.wallet_account_id, program_id=p.program_id,
                    effect=done.effect, at=now, store_id=store_id, tx=tx,
                    tier_day=p.at.date(), tier_points=done.tier_points_delta,
                    refund_of=p.id, refund_amount=how_much, idem=idem, status_code=201,
                    response=encode(result),
                    access=till_access(caller, "till.refund_other_store" if elsewhere
                                       else "till.refund", store_id)))
                return Outcome(status=201, result=result)

        return await retrying(conn, idem, RefundResult, work)
