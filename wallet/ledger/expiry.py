"""Points expiry: lots past their date lose what is left, as a ledger entry like any other.

`expire_due` is the periodic job (`loyalty expire`, or in the app every
`LOYALTY_JOBS_INTERVAL_S`): account by account, each in its own short transaction under the
account's row lock, so a till never waits long behind it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg
import msgspec

from wallet.kernel.db import Conn, try_job_lock
from wallet.kernel.idempotency import Outcome, retrying
from wallet.ledger import account_repo, rules
from wallet.ledger import ledger_repo as ledger

DUE_ACCOUNTS = """
SELECT DISTINCT wallet_account_id FROM points_lots
WHERE remaining > 0 AND expires_at <= $1
LIMIT $2
"""


async def due_accounts(conn: Conn, now: datetime, limit: int) -> list[uuid.UUID]:
    """Wallet accounts holding at least one lot due to expire at `now`."""
    return [r[0] for r in await conn.fetch(DUE_ACCOUNTS, now, limit)]


class ExpiryReport(msgspec.Struct, frozen=True, kw_only=True):
    accounts: int = 0
    lots: int = 0
    points: int = 0
    skipped: bool = False  # another process held the job lock


EXPIRY_LOCK = 0x6C6F79616C7402  # advisory lock key of the expiry job


async def expire_due(pool: asyncpg.Pool, *, now: datetime | None = None,
                     batch: int = 500) -> ExpiryReport:
    """Expire every lot due at `now`, account by account (each its own short transaction,
    under the account's row lock, so tills are never blocked for long).

    Idempotent: a second run finds nothing due. Several workers may call it at once: one
    advisory lock lets one of them run while the others skip; even without it, every account
    re-reads its due lots under the row lock, so no lot can be expired twice."""
    now = now or datetime.now(UTC)
    accounts = lots = points = 0
    async with pool.acquire() as held, held.transaction():  # the job lock, see try_job_lock
        if not await try_job_lock(held, EXPIRY_LOCK):
            return ExpiryReport(skipped=True)
        async with pool.acquire() as conn:
            while due := await due_accounts(conn, now, batch):
                for account_id in due:

                    async def work(account_id: uuid.UUID = account_id) -> Outcome[rules.Effect]:
                        async with conn.transaction():
                            locked = await account_repo.lock_account(conn, account_id)
                            state = await account_repo.account_state(conn, account_id, idem=None,
                                                               now=now, fifo_limit=0)
                            effect = rules.expire(locked.balances, state.lots, now)
                            if effect.entries:
                                await ledger.apply(conn, ledger.Write(
                                    account_id=account_id, program_id=locked.program_id,
                                    effect=effect, at=now))
                            return Outcome(status=200, result=effect)

                    done = await retrying(conn, None, rules.Effect, work)
                    accounts += 1
                    lots += len(done.result.entries)
                    points -= sum(e.points for e in done.result.entries)
    return ExpiryReport(accounts=accounts, lots=lots, points=points)
