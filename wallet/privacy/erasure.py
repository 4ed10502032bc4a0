"""A member's right to erasure.

Erasure (`erase`): in one transaction, under the wallet account's and the member's row locks
(in the till's order: wallet account first), the member row is deleted — cards, consents,
preferences, visits, the last ping and raw pings go with it (ON DELETE CASCADE), access-log
entries and offers lose the member (ON DELETE SET NULL) — and so are their refresh tokens
and their idempotency records (scoped by their id, or a till's stored scan naming their
wallet account); their offers' delivery records lose their payload. The wallet account,
ledger, transactions and lots stay for the accounting obligation: nothing links them to the
person any more.

Nothing forfeits the member's money: while their purse holds stored value, erasure refuses
(409 `/problems/stored-value-remaining`, naming the balance) until it is paid out, at a till
with the PIN or by the operator (`wallet/ledger/payouts.py`). The idle-account purge skips
such members the same way. Points are not money: they go with the account.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.errors import NotFound, StoredValueRemaining
from wallet.kernel.hashing import Hasher
from wallet.members import members_service
from wallet.members.members_repo import gone
from wallet.privacy import access_log
from wallet.privacy.access_log import Access

LOCK_WALLET = """
SELECT w.stored_value_balance, p.currency
FROM wallet_accounts w JOIN programs p ON p.id = w.program_id
WHERE w.id = (SELECT wallet_account_id FROM members WHERE id = $1)
FOR UPDATE OF w
"""
LOCK_MEMBER = """
SELECT id, wallet_account_id FROM members WHERE id = $1 FOR UPDATE
"""
# Under the locks: still idle (see wallet.retention), and holding no stored value.
STILL_IDLE = """
SELECT m.last_active_at <= $2 AND w.stored_value_balance = 0
       AND NOT EXISTS (SELECT 1 FROM transactions t
                        WHERE t.wallet_account_id = w.id AND t.at > $2)
FROM members m JOIN wallet_accounts w ON w.id = m.wallet_account_id
WHERE m.id = $1
"""
# Their offers' delivery records lose the payload (it names the member) but stay counted;
# one not yet delivered never will be. Deleted: the member's idempotency records (scope
# "<member id>:<route>") and the tills' stored scans that name their wallet account
# (`member_ref`); erasure is rare and idempotency records are purged after a day, so scanning
# them is acceptable.
ERASE = """
WITH outbox AS (
    UPDATE offer_outbox o SET payload = '{}',
           state = CASE WHEN o.state = 'pending' THEN 'skipped' ELSE o.state END
      FROM offers f
     WHERE o.offer_id = f.id AND f.member_id = $1 RETURNING 1),
idem AS (
    DELETE FROM idempotency_keys
     WHERE scope = $2::text
        OR position(convert_to($3::text, 'UTF8') IN response_body) > 0 RETURNING 1),
tokens AS (DELETE FROM refresh_tokens WHERE subject_id = $1 RETURNING 1),
member AS (DELETE FROM members WHERE id = $1 RETURNING 1)
SELECT (SELECT count(*) FROM member) AS members
"""


class Erased(msgspec.Struct, frozen=True, kw_only=True):
    member_id: uuid.UUID
    wallet_account_id: uuid.UUID  # kept, now unlinked from any person


async def erase(conn: Conn, member_id: uuid.UUID, *, logged: Access | None = None,
                idle_before: datetime | None = None) -> Erased | None:
    """Erase `member_id` in one transaction (see the module docstring). A member whose
    purse holds stored value is not erased (StoredValueRemaining, with the balance): that
    money would be forfeit. It is paid out first (`wallet.ledger.payouts`).

    `logged`: an operator's erasure request, recorded in the access log (the entry stays,
    without the member). `idle_before`: erase only if the member is still idle (no activity
    after it, no stored value; checked under the locks); None when they came back meanwhile.
    Raises NotFound for an unknown member."""
    async with conn.transaction():
        wallet = await conn.fetchrow(LOCK_WALLET, member_id)
        row = await conn.fetchrow(LOCK_MEMBER, member_id)
        if row is None or wallet is None:
            raise NotFound("no such member")
        if idle_before is not None and not await conn.fetchval(STILL_IDLE, member_id,
                                                               idle_before):
            return None
        if wallet["stored_value_balance"] > 0:
            balance, currency = wallet["stored_value_balance"], wallet["currency"].strip()
            raise StoredValueRemaining(
                f"the purse still holds {balance} (minor units of {currency}) of stored "
                "value: it must be paid out before the erasure (at a till, with the PIN, or "
                "by the operator); nothing was erased", balance=balance, currency=currency)
        if logged is not None:
            await access_log.record(conn, member_id, logged)
        await conn.fetchval(ERASE, member_id, str(member_id), str(row["wallet_account_id"]))
    return Erased(member_id=member_id, wallet_account_id=row["wallet_account_id"])


async def erase_self(pool: asyncpg.Pool, hasher: Hasher, member_id: uuid.UUID,
                     password: str) -> Erased:
    """The member's own erasure (`DELETE /v1/me`), re-authenticated with their password
    (WrongPassword naming `password` otherwise); then `erase_member`."""
    await members_service.reauthenticate(pool, hasher, member_id, password)
    return await erase_member(pool, member_id)


async def erase_member(pool: asyncpg.Pool, member_id: uuid.UUID, *,
                       logged: Access | None = None) -> Erased:
    """`erase` on a pooled connection: the member's own request (`logged` None; already
    erased → `gone()`), or an operator's on their behalf (logged; unknown → NotFound)."""
    async with pool.acquire() as conn:
        try:
            done = await erase(conn, member_id, logged=logged)
        except NotFound:
            if logged is None:
                raise gone() from None
            raise
    assert done is not None  # only an idle-account erasure can decline
    return done
