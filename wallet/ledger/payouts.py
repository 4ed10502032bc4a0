"""Stored-value payouts: money in the member's purse handed back to them, so that nothing
forfeits it (an erasure refuses while the purse holds money, see `wallet.privacy.erasure`).

Two ways, each a transaction of kind `payout` with one `stored_value_payout` ledger entry,
idempotent through `wallet.kernel.idempotency` like every write:

* at a till (`till_payout`): cash from the till, for the card's member, with their PIN —
  checked like a purchase's (argon2 before the account lock, a wrong PIN counted towards the
  lockout, the right one clears the count) and logged in the member's access log. The
  currency must be the program's; a program that stopped offering stored value still pays
  its members' purses out.
* by an operator (`operator_payout`): an admin handling a member's request (typically before
  erasing them) records that the balance was paid (a bank transfer, say: `reference`), at no
  store, with the reason in the access log. No PIN: the operator answers a verified request.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import msgspec

from wallet.kernel import errors, ids
from wallet.kernel.db import Conn
from wallet.kernel.hashing import Hasher
from wallet.kernel.idempotency import (
    IdemKey,
    Outcome,
    encode,
    lookup,
    replay,
    retrying,
    run_idempotent,
)
from wallet.ledger import account_repo, rules
from wallet.ledger import ledger_repo as ledger
from wallet.ledger.till import (
    Caller,
    CardRef,
    PinPolicy,
    check_card,
    check_money,
    check_pin,
    till_access,
)
from wallet.privacy import access_log
from wallet.privacy.access_log import Access


class PayoutResult(msgspec.Struct, frozen=True, kw_only=True):
    transaction_id: uuid.UUID
    amount: int  # paid out, minor units of `currency`
    currency: str
    stored_value_balance: int  # left in the purse
    points_balance: int


async def till_payout(pool: asyncpg.Pool, caller: Caller, *, store_id: uuid.UUID,
                      card: CardRef, amount: int, currency: str, pin: str, idem: IdemKey,
                      hasher: Hasher, pin_policy: PinPolicy,
                      now: datetime | None = None) -> Outcome[PayoutResult]:
    """Pay `amount` of the card's stored value out in cash. More than the purse holds →
    InsufficientBalance naming `amount`; PIN refusals name `pin`."""
    now = now or datetime.now(UTC)
    qr = isinstance(card, uuid.UUID)
    async with pool.acquire() as conn:
        if (stored := await lookup(conn, idem)) is not None:
            return replay(stored, idem, PayoutResult)  # skip the PIN's hashing
        ctx = await account_repo.card_context(conn, card, program_id=caller.program_id,
                                              store_id=store_id)
        check_card(ctx, qr=qr)
        check_money(ctx, currency, stored_value=0)
        await check_pin(conn, ctx, pin, hasher=hasher, policy=pin_policy, now=now, field="pin")

        async def work() -> Outcome[PayoutResult]:
            async with conn.transaction():
                ctx, state = await account_repo.lock_card_state(
                    conn, card, program_id=caller.program_id, store_id=store_id, idem=idem,
                    now=now, fifo_limit=0)
                check_card(ctx, qr=qr)
                if state.stored is not None:
                    return replay(state.stored, idem, PayoutResult)
                effect = rules.payout(ctx.balances, amount)
                tx = ledger.TxRow(
                    id=ids.time_ordered(), program_id=ctx.program_id,
                    wallet_account_id=ctx.account_id,
                    store_id=store_id, staff_id=caller.account_id, kind="payout",
                    receipt_id=None, amount=amount, currency=ctx.currency, at=now)
                result = PayoutResult(transaction_id=tx.id, amount=amount, currency=ctx.currency,
                                      stored_value_balance=effect.balances.stored_value,
                                      points_balance=effect.balances.points)
                await ledger.apply(conn, ledger.Write(
                    account_id=ctx.account_id, program_id=ctx.program_id, effect=effect,
                    at=now, store_id=store_id, tx=tx, idem=idem,
                    status_code=201, response=encode(result),
                    access=till_access(caller, "till.payout", store_id)))
                return Outcome(status=201, result=result)

        return await retrying(conn, idem, PayoutResult, work)


async def operator_payout(pool: asyncpg.Pool, member_id: uuid.UUID, *, amount: int | None,
                          reference: str | None, logged: Access, idem: IdemKey,
                          now: datetime | None = None) -> Outcome[PayoutResult]:
    """Record that an operator paid `amount` (default: the whole purse) of `member_id`'s
    stored value out, logged as `logged`. Unknown or erased member → NotFound; an empty
    purse or more than it holds → 422 naming `amount`."""
    at = now or datetime.now(UTC)

    async def work(conn: Conn) -> PayoutResult:
        member = await account_repo.member_account(conn, member_id)
        locked = await account_repo.lock_account(conn, member.account_id)
        how_much = locked.balances.stored_value if amount is None else amount
        if how_much == 0:
            raise errors.RuleViolation("the member holds no stored value", field="amount")
        effect = rules.payout(locked.balances, how_much)
        tx = ledger.TxRow(
            id=ids.time_ordered(), program_id=locked.program_id,
            wallet_account_id=member.account_id, store_id=None, staff_id=logged.actor.id,
            kind="payout", receipt_id=None, amount=how_much, currency=member.currency,
            reference=reference, at=at)
        await access_log.record(conn, member_id, logged)
        await ledger.apply(conn, ledger.Write(
            account_id=member.account_id, program_id=locked.program_id, effect=effect, at=at,
            tx=tx))
        return PayoutResult(transaction_id=tx.id, amount=how_much, currency=member.currency,
                            stored_value_balance=effect.balances.stored_value,
                            points_balance=effect.balances.points)

    return await run_idempotent(pool, idem, work, PayoutResult, status=201)
