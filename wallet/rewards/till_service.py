"""A voucher used on its own at the till (`POST /v1/pos/vouchers/redeem`): one transaction.

The cashier scans or types the voucher's code; the member's card may be presented with it
(then the voucher must be theirs). The voucher row is locked first, then the request's
Idempotency-Key is looked up (so a retry that waited for its twin's lock replays the twin's
answer instead of finding the voucher used), then the voucher is checked
(`vouchers.check_usable`), marked used, the read of the member's voucher logged in their
access log, and the response stored under the key — all in that one transaction. A refusal
rolls back and stores nothing. Vouchers used inside a purchase go through the till's
purchase instead (`redemption.py`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import msgspec

from wallet.kernel import errors
from wallet.kernel.idempotency import IdemKey, Outcome, encode, lookup, replay, retrying
from wallet.kernel.idempotency_repo import record
from wallet.ledger import account_repo
from wallet.ledger.till import Caller, CardRef
from wallet.privacy import access_log
from wallet.privacy.access_log import Access, Actor
from wallet.rewards import rewards_repo
from wallet.vouchers import redemption
from wallet.vouchers.model import RewardKind, check_usable, normalise_code


class VoucherRedeemed(msgspec.Struct, frozen=True, kw_only=True):
    """What the cashier needs once a voucher is used: what to hand over or take off."""

    voucher_id: uuid.UUID
    code: str
    reward_id: uuid.UUID
    name: str
    kind: RewardKind
    value: int | None  # minor units to take off (amount_off), or the product's face value
    member_ref: uuid.UUID  # the pseudonymous wallet account, never the member's identity
    store_id: uuid.UUID
    used_at: datetime


async def redeem(pool: asyncpg.Pool, caller: Caller, *, store_id: uuid.UUID, code: str,
                 card: CardRef | None, idem: IdemKey,
                 now: datetime | None = None) -> Outcome[VoucherRedeemed]:
    """Use the voucher `code` at `store_id` now. Refusals: NotFound (no such store, or no
    such voucher in the program: field `code`), VoucherOfAnotherMember, VoucherAlreadyUsed,
    VoucherExpired, VoucherNotValidHere, InvalidCardToken (a blocked card)."""
    now = now or datetime.now(UTC)
    canonical = normalise_code(code)
    if canonical is None:
        raise errors.NotFound("no such voucher", field="code")
    async with pool.acquire() as conn:

        async def work() -> Outcome[VoucherRedeemed]:
            async with conn.transaction():
                if store_id not in await rewards_repo.live_stores(conn, caller.program_id,
                                                                  (store_id,)):
                    raise errors.NotFound("no such store in this program", field="store_id")
                found = (await redemption.load(conn, [canonical],
                                               program_id=caller.program_id)).get(canonical)
                if (stored := await lookup(conn, idem)) is not None:
                    return replay(stored, idem, VoucherRedeemed)
                if found is None:
                    raise errors.NotFound("no such voucher", field="code")
                account = None
                if card is not None:
                    ctx = await account_repo.card_context(
                        conn, card, program_id=caller.program_id, store_id=store_id)
                    if ctx.card_status != "active":
                        raise errors.InvalidCardToken(
                            "this card is blocked",
                            field="qr_payload" if isinstance(card, uuid.UUID) else "card_number")
                    account = ctx.account_id
                v = found.voucher
                check_usable(v, account_id=account, store_id=store_id, now=now, field="code")
                await redemption.use(conn, [v.id], at=now, store_id=store_id,
                                     by=caller.account_id, transaction_id=None)
                if found.member_id is not None:
                    await access_log.record(conn, found.member_id, Access(
                        actor=Actor(id=caller.account_id, role=caller.role),
                        action="till.voucher", purpose="till_service", store_id=store_id))
                result = VoucherRedeemed(
                    voucher_id=v.id, code=v.code, reward_id=v.reward_id, name=v.name,
                    kind=v.kind, value=v.value, member_ref=v.wallet_account_id,
                    store_id=store_id, used_at=now)
                await record(conn, idem, 200, encode(result))
                return Outcome(status=200, result=result)

        return await retrying(conn, idem, VoucherRedeemed, work)
