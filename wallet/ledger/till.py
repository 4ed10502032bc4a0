"""The till's service layer: it owns the transactions.

Each operation is one transaction on one connection, and concurrent tills on one member are
serialised by the wallet account row, so nothing is double spent. Three ways to get there:

* **One statement** (an earn-only purchase, given the worker's `rules_cache`): the outcome of
  each tier band is decided in Python, one self-committing statement checks, picks and writes
  (`wallet/ledger/earn_fast.py`); when it writes nothing, the optimistic path runs.
* **Optimistic** (almost every purchase): one statement reads card, account, lots and the
  Idempotency-Key's stored response in one snapshot, without a lock, with the account row's
  version (`account_repo.read_card_state`); the pure rule decides; one statement writes it
  all and commits on its own (`ledger_repo.apply(..., version=...)`) only if the account is
  still at that version (every ledger write updates that row), else it refuses as a whole
  and the purchase reads again. Two round trips; the row lock is held only while the write
  runs and commits, so queues on a hot card stay short.
* **Locked** (refunds, top-ups, purchases with vouchers, a purchase that lost the race
  `_OPTIMISTIC_ATTEMPTS` times): BEGIN, lock the row (`SELECT … FOR UPDATE`) and read,
  decide, write, COMMIT. What the rules read must be as of *after* the lock (READ COMMITTED
  re-reads only the locked row): `account_repo.lock_card_state` reads it in the locking
  statement and, when a concurrent writer committed while we waited, again afterwards.
The request's decoding comes before either. The response is stored under
the request's Idempotency-Key by the write statement itself, so a crash can never keep the
one without the other; refusals (HTTP 4xx) write nothing, so a corrected retry can succeed.

Idempotency in three cases: a retry after the first commit finds the stored response in its
read and replays it; a concurrent duplicate on the same card conflicts on the account (or
waits on its lock), reads again and finds the key; a concurrent request with the same key on
another card blocks on the key's unique index, gets `IdempotencyRace` and replays (or answers
409 when its body differs). Serialization failures and deadlocks are retried here only.

PIN checks run between the optimistic read and the write, or before the lock when there is no
optimistic attempt (argon2 takes milliseconds by design: it must not hold the account lock),
and each attempt is counted *before* its PIN is verified and committed at once: by the
optimistic read itself when the purchase reaches its PIN check (`pin_claim_repo`), else by a
statement of its own (`check_pin`). The count sticks although the purchase is refused, and
parallel purchases on one card never check more PINs than the limit (`pin_check.py`). A right
PIN's restart of the count rides on the optimistic write when its attempt took the count's
first place (a PIN purchase in two round trips), else, or when that write does not commit,
it is a statement of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
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
from wallet.ledger import account_repo, earn_fast, limits, pin_claim_repo, rules
from wallet.ledger import ledger_repo as ledger
from wallet.ledger.account_repo import CardContext
from wallet.ledger.pin_check import PinPolicy as PinPolicy  # noqa: PLC0414 - re-exported
from wallet.ledger.pin_check import PurchasePin
from wallet.ledger.pin_check import check_pin as check_pin  # noqa: PLC0414 - re-exported
from wallet.ledger.purchase_answer import PurchaseResult as PurchaseResult  # noqa: PLC0414
from wallet.ledger.purchase_answer import purchase_result
from wallet.ledger.rules import Lot
from wallet.offers import redemption as offer_redemption
from wallet.privacy import access_log
from wallet.privacy.access_log import Access, Action, Actor, ActorRole
from wallet.vouchers import redemption as voucher_redemption
from wallet.vouchers.model import vouchers_discount

LOTS_PAGE = 64  # open lots read with the account, then page by page
_OPTIMISTIC_ATTEMPTS = 2  # reads and version-checked writes before taking the row lock


class TopUpResult(msgspec.Struct, frozen=True, kw_only=True):
    transaction_id: uuid.UUID
    amount: int
    stored_value_balance: int
    points_balance: int


class ScanResult(msgspec.Struct, frozen=True, kw_only=True):
    member_ref: uuid.UUID  # the pseudonymous wallet account, never the member's identity
    first_name: str
    tier: str | None
    points_balance: int
    stored_value_balance: int
    offers: list[offer_redemption.OfferAtTill]  # redeemable at this store, now


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    """The staff or manager account acting, in its program."""

    account_id: uuid.UUID
    program_id: uuid.UUID
    role: ActorRole = "staff"


def till_access(caller: Caller, action: Action, store_id: uuid.UUID) -> Access:
    """The access-log entry of a till operation: it shows the member's data to the staff."""
    return Access(actor=Actor(id=caller.account_id, role=caller.role), action=action,
                  purpose="till_service", store_id=store_id)


CardRef = uuid.UUID | str  # a card id (from a verified QR payload) or a card number


def check_card(ctx: CardContext, *, qr: bool) -> None:
    if ctx.card_status != "active":
        raise errors.InvalidCardToken("this card is blocked",
                                      field="qr_payload" if qr else "card_number")
    if not ctx.store_ok:
        raise errors.NotFound("no such store in this program", field="store_id")


def check_money(ctx: CardContext, currency: str, *, stored_value: int) -> None:
    if currency != ctx.currency:
        raise errors.CurrencyMismatch(f"this program counts in {ctx.currency}",
                                      field="currency")
    if stored_value and not ctx.stored_value_enabled:
        raise errors.StoredValueDisabled("this program has no stored value",
                                         field="stored_value")


async def cover_lots(conn: Conn, account_id: uuid.UUID, lots: list[Lot],
                 need: int, now: datetime) -> list[Lot]:
    """Extend `lots` (a first FIFO page) until the open, non-due ones cover `need` points or
    none are left."""
    open_ = sorted((lot for lot in lots if lot.expires_at > now),
                   key=lambda lot: (lot.expires_at, lot.earned_at, lot.id.bytes))
    have = sum(lot.remaining for lot in open_)
    page = open_
    while have < need and len(page) >= LOTS_PAGE:
        page = await account_repo.more_lots(conn, account_id, open_[-1], LOTS_PAGE)
        open_.extend(page)
        lots = [*lots, *page]
        have += sum(lot.remaining for lot in page)
    return lots


async def purchase(pool: asyncpg.Pool, caller: Caller, *, store_id: uuid.UUID, card: CardRef,
                   receipt_id: str, amount: int, currency: str, redeem_points: int = 0,
                   stored_value: int = 0, pin: str | None = None, idem: IdemKey,
                   hasher: Hasher, pin_policy: PinPolicy, offer_ids: Sequence[uuid.UUID] = (),
                   vouchers: Sequence[str] = (), rules_cache: earn_fast.RulesCache | None = None,
                   now: datetime | None = None) -> Outcome[PurchaseResult]:
    """Record a purchase: earn, redeem points (oldest lots first), offers (see
    `wallet/offers/redemption.py`) and reward vouchers (codes as the till sent them; see
    `wallet/vouchers/redemption.py`), spend stored value. What offers and vouchers take off
    is one discount, at most the amount.

    The PIN: spending stored value always needs it. A card number is static (printed on a
    card, the barcode of a wallet pass, a screenshot): it earns points, but spending points or
    offers with it needs the PIN too; the app's rotating QR code (`card` a card id from a
    verified, short-lived token) spends points and offers without one. (A voucher code is
    itself the member's secret, like the QR.)

    With `rules_cache` (the worker's), an earn-only purchase is one statement
    (`wallet/ledger/earn_fast.py`) unless a precondition fails."""
    now = now or datetime.now(UTC)
    qr = isinstance(card, uuid.UUID)
    needs_pin = bool(stored_value) or (not qr and bool(redeem_points or offer_ids))
    pin_field, spending = (("stored_value.pin", "spending stored value") if stored_value else
                           ("redeem.pin", "spending points or offers with a card number (not "
                                          "the app's QR code)"))
    pin_ = PurchasePin(needs_pin, pin, pin_policy)
    async with pool.acquire() as conn:
        if needs_pin and vouchers:  # straight to the lock: hash the PIN before it
            if (stored := await lookup(conn, idem)) is not None:
                return replay(stored, idem, PurchaseResult)  # skip the PIN's hashing
            ctx = await account_repo.card_context(conn, card, program_id=caller.program_id,
                                            store_id=store_id)
            check_card(ctx, qr=qr)
            check_money(ctx, currency, stored_value=stored_value)
            limits.check_purchase(ctx.limits, amount)  # before a PIN attempt is counted
            await pin_.check(conn, ctx, hasher=hasher, now=now, field=pin_field,
                             spending=spending)

        async def record(ctx: CardContext, state: account_repo.AccountState,
                         version: str | None) -> Outcome[PurchaseResult]:
            """Decide and write, from what was read (under the lock when `version` is None)."""
            check_card(ctx, qr=qr)
            check_money(ctx, currency, stored_value=stored_value)
            if state.stored is not None:
                return replay(state.stored, idem, PurchaseResult)  # no PIN hashing for it
            limits.check_purchase(ctx.limits, amount)  # before a PIN attempt is counted
            # In the first optimistic attempt: no lock is held while argon2 runs.
            await pin_.check(conn, ctx, hasher=hasher, now=now, field=pin_field,
                             spending=spending)
            lots = await cover_lots(conn, ctx.account_id, state.lots, redeem_points, now)
            lot_id = ids.time_ordered()
            gets = offer_redemption.NO_REWARDS
            if offer_ids:
                gets = offer_redemption.rewards(
                    await offer_redemption.load(conn, offer_ids, program_id=ctx.program_id),
                    offer_ids, member_id=ctx.member_id, store_id=store_id, amount=amount,
                    now=now)
            used = voucher_redemption.check(
                await voucher_redemption.load(conn, voucher_redemption.canonical(vouchers),
                                              program_id=ctx.program_id),
                vouchers, account_id=ctx.account_id, store_id=store_id,
                now=now) if vouchers else []
            done = rules.purchase(
                ctx.balances, lots, ctx.rules, amount=amount, redeem_points=redeem_points,
                stored_value=stored_value, points_12m=state.points_12m, now=now,
                earn_lot_id=lot_id,
                discount=min(amount, gets.discount + vouchers_discount(used)),
                points_multiplier=gets.points_multiplier,
                bonus_lots=[(ids.time_ordered(), p) for p in gets.bonus_points])
            tx = ledger.TxRow(
                id=ids.time_ordered(), program_id=ctx.program_id, wallet_account_id=ctx.account_id,
                store_id=store_id, staff_id=caller.account_id, kind="purchase",
                receipt_id=receipt_id, amount=amount, currency=currency,
                points_earned=done.points_earned, points_redeemed=done.points_redeemed,
                stored_value_spent=done.stored_value_spent, discount=done.discount, at=now)
            result = purchase_result(tx.id, amount, done, done.effect.balances.points,
                                     done.effect.balances.stored_value,
                                     offer_ids=offer_ids, vouchers_used=[v.id for v in used])
            await ledger.apply(conn, ledger.Write(
                account_id=ctx.account_id, program_id=ctx.program_id, effect=done.effect,
                at=now, store_id=store_id, tx=tx, tier=done.tier,
                set_tier=bool(ctx.rules.tiers), tier_day=now.date(),
                tier_points=done.points_earned, idem=idem,
                status_code=201, response=encode(result),
                redeem_offers=tuple(offer_ids), pin_restart=pin_.carried(),
                access=till_access(caller, "till.purchase", store_id)), version=version)
            pin_.written()
            if used:  # after the write: they name its transaction
                await voucher_redemption.use(conn, [v.id for v in used], at=now,
                                             store_id=store_id, by=caller.account_id,
                                             transaction_id=tx.id)
            return Outcome(status=201, result=result)

        async def work() -> Outcome[PurchaseResult]:
            if rules_cache is not None and not (  # earn only: one statement, or nothing
                    redeem_points or stored_value or offer_ids or vouchers) and (  # written
                    out := await earn_fast.try_earn(  # and the path below
                        conn, rules_cache, card, program_id=caller.program_id,
                        store_id=store_id, receipt_id=receipt_id, amount=amount,
                        currency=currency, idem=idem, now=now, type_=PurchaseResult,
                        access=till_access(caller, "till.purchase", store_id))) is not None:
                return out
            fifo = LOTS_PAGE if redeem_points else 0
            # Vouchers are marked used by a second statement: that needs the transaction.
            for _ in range(0 if vouchers else _OPTIMISTIC_ATTEMPTS):  # the write checks the
                ctx, state, version, pin_.claimed = await pin_claim_repo.read_and_claim(
                    conn, card, pin_.claim(currency=currency, stored_value=stored_value,
                                           amount=amount, now=now),  # version read; the
                    program_id=caller.program_id, store_id=store_id,  # PIN's attempt is
                    idem=idem, now=now, fifo_limit=fifo)  # counted with it
                try:
                    return await record(ctx, state, version)
                except Exception as exc:
                    # A right PIN's restart its write was to carry: now (the write did not
                    # commit; the count is never held beyond the first write).
                    await pin_.settle(conn)
                    if not isinstance(exc, asyncpg.SerializationError):
                        raise
                    # a concurrent write on this account since the read: read again
            async with conn.transaction():  # a contended card: queue on its row lock
                ctx, state = await account_repo.lock_card_state(
                    conn, card, program_id=caller.program_id, store_id=store_id, idem=idem,
                    now=now, fifo_limit=fifo)
                return await record(ctx, state, None)

        return await retrying(conn, idem, PurchaseResult, work)


async def top_up(pool: asyncpg.Pool, caller: Caller, *, store_id: uuid.UUID, card: CardRef,
                 amount: int, currency: str, idem: IdemKey,
                 now: datetime | None = None) -> Outcome[TopUpResult]:
    """Add stored value paid at the till."""
    now = now or datetime.now(UTC)
    qr = isinstance(card, uuid.UUID)
    async with pool.acquire() as conn:

        async def work() -> Outcome[TopUpResult]:
            async with conn.transaction():
                ctx, state = await account_repo.lock_card_state(
                    conn, card, program_id=caller.program_id, store_id=store_id, idem=idem,
                    now=now, fifo_limit=0)
                check_card(ctx, qr=qr)
                check_money(ctx, currency, stored_value=amount)
                if state.stored is not None:
                    return replay(state.stored, idem, TopUpResult)
                limits.check_top_up(ctx.balances.stored_value, ctx.limits, amount)
                effect = rules.top_up(ctx.balances, amount)
                tx = ledger.TxRow(
                    id=ids.time_ordered(), program_id=ctx.program_id,
                    wallet_account_id=ctx.account_id,
                    store_id=store_id, staff_id=caller.account_id, kind="topup",
                    receipt_id=None, amount=amount, currency=currency, at=now)
                result = TopUpResult(transaction_id=tx.id, amount=amount,
                                     stored_value_balance=effect.balances.stored_value,
                                     points_balance=effect.balances.points)
                await ledger.apply(conn, ledger.Write(
                    account_id=ctx.account_id, program_id=ctx.program_id, effect=effect,
                    at=now, store_id=store_id, tx=tx, idem=idem, status_code=201,
                    response=encode(result),
                    access=till_access(caller, "till.top_up", store_id)))
                return Outcome(status=201, result=result)

        return await retrying(conn, idem, TopUpResult, work)


async def scan(pool: asyncpg.Pool, caller: Caller, *, store_id: uuid.UUID, card: CardRef,
               idem: IdemKey, now: datetime | None = None) -> Outcome[ScanResult]:
    """What the cashier sees after scanning a card, logged in the member's access log in the
    same transaction; a retried scan (same key) replays and logs nothing more."""
    at = now or datetime.now(UTC)

    async def work(conn: Conn) -> ScanResult:
        ctx = await account_repo.card_context(conn, card, program_id=caller.program_id,
                                        store_id=store_id)
        check_card(ctx, qr=isinstance(card, uuid.UUID))
        await access_log.record(conn, ctx.member_id, till_access(caller, "till.scan", store_id))
        offers = await offer_redemption.usable_here(conn, ctx.member_id, store_id=store_id,
                                                    now=at)
        return ScanResult(member_ref=ctx.account_id, first_name=ctx.first_name, tier=ctx.tier,
                          points_balance=ctx.balances.points,
                          stored_value_balance=ctx.balances.stored_value, offers=offers)

    return await run_idempotent(pool, idem, work, ScanResult)
