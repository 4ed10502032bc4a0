"""Claims and expiry of vouchers: the services that move points for rewards. Each operation
is one transaction under the member's wallet account lock, as the till's are.

A claim: lock the account and read what the rules need after the lock (its lots and the
Idempotency-Key's stored response), check the reward (`rules.check_claim`), debit the points
oldest lots first and credit a stored-value reward (`rules.claim_effect`), append that with
the ledger's one write statement (which also stores the response under the key), then take
a unit of stock and insert the voucher in one conditional statement. The stock is taken
last, so the reward's row — shared by every member claiming it — stays locked only for that
statement and the COMMIT. What holds under parallel requests:
* stock: the conditional UPDATE (`claimed < stock`) waits for a concurrent claimer's commit
  and re-checks; a CHECK refuses `claimed > stock` whatever the code does;
* per-member limit: claims of one member serialise on their account lock, and the voucher's
  claim number is unique per (reward, member) anyway;
* each Idempotency-Key once: a retry finds the stored response under the lock and replays
  it; the key's unique index refuses a second insert.
A refusal (out of stock, limit reached, short of points) rolls back everything and stores no
response, so a corrected retry can still succeed. A reward changed between the read and the
stock statement (its revision moved) is claimed again from the start at its new terms.

Expiry (`expire_due`, run by the `expire` job after the points lots): every active voucher
past `expires_at` expires; if the program returns points, exactly its `points_spent` come
back as a `reward_return` ledger entry with its own lot.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import asyncpg
import msgspec

from wallet.kernel import ids
from wallet.kernel.db import Conn, try_job_lock
from wallet.kernel.errors import ClaimLimitReached, OutOfStock, StoredValueDisabled
from wallet.kernel.idempotency import RETRIES, IdemKey, Outcome, encode, replay, retrying
from wallet.ledger import account_repo
from wallet.ledger import ledger_repo as ledger
from wallet.ledger import limits as ledger_limits
from wallet.rewards import rewards_repo, rules, vouchers_repo
from wallet.rewards.vouchers_repo import ClaimRace, MemberVoucher, NewVoucher
from wallet.vouchers.model import VoucherStatus, code_from, qr_payload

T = TypeVar("T")


class ClaimResult(msgspec.Struct, frozen=True, kw_only=True):
    voucher: MemberVoucher
    points_balance: int
    stored_value_balance: int


class _RewardChanged(Exception):
    """The reward's revision moved between the claim's read and its stock statement."""


async def _claiming(conn: Conn, key: IdemKey | None,
                    work: Callable[[], Awaitable[Outcome[T]]], type_: type[T]) -> Outcome[T]:
    """`retrying` (serialization failures, deadlocks, a concurrent twin's replay), and a
    claim run again when the reward changed under it or a voucher code was taken."""
    for attempt in range(RETRIES):
        try:
            return await retrying(conn, key, type_, work)
        except (_RewardChanged, ClaimRace):
            if attempt == RETRIES - 1:
                raise
    raise AssertionError("unreachable")


async def claim(pool: asyncpg.Pool, *, member_id: uuid.UUID, program_id: uuid.UUID,
                reward_id: uuid.UUID, idem: IdemKey | None,
                now: datetime | None = None) -> Outcome[ClaimResult]:
    """The member claims the reward: see the module docstring. Refusals: NotFound (unknown,
    of another program, or not visible to the member's tier), RewardNotClaimable,
    OutOfStock, ClaimLimitReached, InsufficientBalance, StoredValueDisabled (a stored-value
    reward while the program's stored value is off), LimitExceeded (a stored-value reward the
    purse cannot take under the program's `max_stored_value_balance`)."""
    now = now or datetime.now(UTC)
    async with pool.acquire() as conn:

        async def work() -> Outcome[ClaimResult]:
            async with conn.transaction():
                who = await vouchers_repo.claimant(conn, member_id, program_id)
                locked = await account_repo.lock_account(conn, who.account_id)
                state = await account_repo.account_state(conn, who.account_id, idem=idem,
                                                         now=now, fifo_limit=0)
                if state.stored is not None and idem is not None:
                    return replay(state.stored, idem, ClaimResult)
                reward = await rewards_repo.get(conn, program_id, reward_id)
                held = await vouchers_repo.claims_of(conn, who.account_id, [reward.id])
                rules.check_claim(reward, tier=who.tier, claims_so_far=held.get(reward.id, 0),
                                  now=now)
                spec = reward.spec
                credit = 0
                if spec.kind == "stored_value":
                    if not (await rewards_repo.program_facts(conn, program_id)).stored_value:
                        raise StoredValueDisabled("this program has no stored value any more",
                                                  field="reward_id")
                    credit = spec.value or 0
                    ledger_limits.check_credit(locked.balances.stored_value, locked.limits,
                                               credit, field="reward_id")
                lots = [*state.lots, *await account_repo.lots_covering(
                    conn, who.account_id, now=now, points=spec.points_cost)]
                effect = rules.claim_effect(locked.balances, lots, points=spec.points_cost,
                                            stored_value=credit, now=now)
                voucher = NewVoucher(
                    id=uuid.uuid4(), program_id=program_id, reward_id=reward.id,
                    reward_revision=reward.revision, wallet_account_id=who.account_id,
                    code=code_from(secrets.token_bytes(16)), name=spec.name, kind=spec.kind,
                    value=spec.value, store_ids=spec.store_ids, points_spent=spec.points_cost,
                    status="used" if credit else "active", claimed_at=now,
                    expires_at=now if credit else rules.voucher_expiry(
                        now, spec.voucher_valid_for_s))
                result = ClaimResult(
                    voucher=_shown(voucher), points_balance=effect.balances.points,
                    stored_value_balance=effect.balances.stored_value)
                await ledger.apply(conn, ledger.Write(
                    account_id=who.account_id, program_id=program_id, effect=effect, at=now,
                    idem=idem, status_code=201, response=encode(result)))
                taken, inserted = await vouchers_repo.claim(conn, voucher)
                if not taken:
                    fresh = await rewards_repo.get(conn, program_id, reward_id)
                    if fresh.revision != reward.revision:
                        raise _RewardChanged(str(reward_id))
                    rules.check_claim(fresh, tier=who.tier, claims_so_far=0, now=now)
                    raise OutOfStock("this reward is out of stock", field="reward_id")
                if not inserted:
                    raise ClaimLimitReached("the per-member limit of this reward is reached",
                                            field="reward_id")
                return Outcome(status=201, result=result)

        return await _claiming(conn, idem, work, ClaimResult)


def _shown(v: NewVoucher) -> MemberVoucher:
    return MemberVoucher(
        id=v.id, code=v.code, qr_payload=qr_payload(v.code), reward_id=v.reward_id, name=v.name,
        kind=v.kind, value=v.value, store_ids=list(v.store_ids), points_spent=v.points_spent,
        points_returned=0, status=v.status, claimed_at=v.claimed_at, expires_at=v.expires_at,
        used_at=v.claimed_at if v.status == "used" else None, used_store_id=None)


async def my_vouchers(pool: asyncpg.Pool, member_id: uuid.UUID, program_id: uuid.UUID, *,
                      status: VoucherStatus | None, now: datetime,
                      before: tuple[datetime, uuid.UUID] | None,
                      limit: int) -> list[MemberVoucher]:
    """The member's vouchers, newest first (an erased member is `gone()`)."""
    async with pool.acquire() as conn:
        rows = await vouchers_repo.member_vouchers(conn, member_id, program_id, status=status,
                                                   now=now, before=before, limit=limit)
        if not rows:
            await vouchers_repo.claimant(conn, member_id, program_id)  # erased: 401
        return rows


class ExpiryReport(msgspec.Struct, frozen=True, kw_only=True):
    accounts: int = 0
    vouchers: int = 0
    points_returned: int = 0
    skipped: bool = False  # another process held the job lock


VOUCHER_EXPIRY_LOCK = 0x6C6F79616C7415  # advisory lock key of the vouchers' expiry


async def expire_due(pool: asyncpg.Pool, *, now: datetime | None = None,
                     batch: int = 500) -> ExpiryReport:
    """Expire every active voucher past its expiry at `now`, account by account, each in
    its own short transaction under the account's row lock (so the till is never blocked
    for long); returns the points as the program says.

    Idempotent, and safe from several processes at once: one advisory lock lets one of them
    run while the others skip, and even without it each account's due vouchers are re-read
    by the conditional UPDATE under the row lock, so none expires (or returns) twice. The
    `expire` job calls it after the points lots."""
    now = now or datetime.now(UTC)
    accounts = count = returned = 0
    async with pool.acquire() as held, held.transaction():  # see kernel.db.try_job_lock
        if not await try_job_lock(held, VOUCHER_EXPIRY_LOCK):
            return ExpiryReport(skipped=True)
        async with pool.acquire() as conn:
            while due := await vouchers_repo.due_accounts(conn, now, batch):
                for account_id in due:

                    async def work(account_id: uuid.UUID = account_id
                                   ) -> Outcome[list[vouchers_repo.Expired]]:
                        async with conn.transaction():
                            locked = await account_repo.lock_account(conn, account_id)
                            done = await vouchers_repo.expire(conn, account_id, now)
                            back = [(ids.time_ordered(), e.points_returned) for e in done
                                    if e.points_returned]
                            if back:
                                effect = rules.return_effect(
                                    locked.balances, back, now=now,
                                    expiry_days=locked.rules.points_expiry_days)
                                await ledger.apply(conn, ledger.Write(
                                    account_id=account_id, program_id=locked.program_id,
                                    effect=effect, at=now))
                            return Outcome(status=200, result=done)

                    expired = (await retrying(conn, None, list[vouchers_repo.Expired],
                                              work)).result
                    accounts += 1
                    count += len(expired)
                    returned += sum(e.points_returned for e in expired)
    return ExpiryReport(accounts=accounts, vouchers=count, points_returned=returned)
