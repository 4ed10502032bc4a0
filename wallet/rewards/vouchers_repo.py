"""Vouchers' SQL on the member's side: the claim's write (stock, per-member limit and the
voucher in one statement), the member's vouchers, and expiry. The till's side is
`redemption.py`. Functions take a connection and never open transactions."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from wallet.kernel.db import Conn
from wallet.members.members_repo import gone
from wallet.vouchers.model import RewardKind, VoucherStatus, qr_payload, shown_status


class ClaimRace(Exception):
    """A concurrent claim took the same code or claim number first: run the claim again."""


class Claimant(msgspec.Struct, frozen=True, kw_only=True):
    """A member as a claim needs them: their wallet account and tier."""

    account_id: uuid.UUID
    tier: str | None


CLAIMANT = """
SELECT m.wallet_account_id AS account_id, w.tier
FROM members m JOIN wallet_accounts w ON w.id = m.wallet_account_id
WHERE m.id = $1 AND m.program_id = $2
"""


async def claimant(conn: Conn, member_id: uuid.UUID, program_id: uuid.UUID) -> Claimant:
    """The member's wallet account and tier; `gone()` (401) for an erased member."""
    row = await conn.fetchrow(CLAIMANT, member_id, program_id)
    if row is None:
        raise gone()
    return Claimant(account_id=row["account_id"], tier=row["tier"])


CLAIMS_OF = """
SELECT reward_id, count(*)::int AS n FROM vouchers
WHERE wallet_account_id = $1 AND reward_id = ANY($2::uuid[])
GROUP BY reward_id
"""


async def claims_of(conn: Conn, account_id: uuid.UUID,
                    reward_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """How many vouchers of each reward the account holds (every status counts)."""
    rows = await conn.fetch(CLAIMS_OF, account_id, reward_ids)
    return {r["reward_id"]: r["n"] for r in rows}


class NewVoucher(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    program_id: uuid.UUID
    reward_id: uuid.UUID
    reward_revision: int
    wallet_account_id: uuid.UUID
    code: str
    name: str
    kind: RewardKind
    value: int | None
    store_ids: tuple[uuid.UUID, ...]
    points_spent: int
    status: VoucherStatus  # active, or used for a stored-value reward (credited at once)
    claimed_at: datetime
    expires_at: datetime


# Takes one unit of stock (only from the revision the claim priced, while active and in
# stock), numbers the member's claim, and inserts the voucher while within the limit.
CLAIM = """
WITH taken AS (
  UPDATE rewards SET claimed = claimed + 1
   WHERE id = $1 AND revision = $2 AND status = 'active'
     AND (stock IS NULL OR claimed < stock)
  RETURNING per_member_limit),
numbered AS (
  SELECT count(*)::int + 1 AS claim_no FROM vouchers
   WHERE reward_id = $1 AND wallet_account_id = $3),
inserted AS (
  INSERT INTO vouchers (id, program_id, reward_id, reward_revision, wallet_account_id,
                        claim_no, code, name, kind, value, store_ids, points_spent, status,
                        claimed_at, expires_at, used_at)
  SELECT $4, $5, $1, $2, $3, n.claim_no, $6, $7, $8, $9, $10::uuid[], $11, $12, $13, $14,
         CASE WHEN $12 = 'used' THEN $13::timestamptz END
    FROM taken t, numbered n
   WHERE t.per_member_limit IS NULL OR n.claim_no <= t.per_member_limit
  RETURNING 1)
SELECT (SELECT count(*) FROM taken) AS taken, (SELECT count(*) FROM inserted) AS inserted
"""


async def claim(conn: Conn, v: NewVoucher) -> tuple[bool, bool]:
    """Take a unit of the reward's stock and insert the voucher, in one statement: returns
    (a unit was taken, the voucher was inserted). Not taken: the reward changed, was retired
    or ran out since it was read; taken but not inserted: the member's limit is reached
    (the caller must roll back). Raises ClaimRace when a concurrent claim took the code or
    the claim number first."""
    try:
        row = await conn.fetchrow(
            CLAIM, v.reward_id, v.reward_revision, v.wallet_account_id, v.id, v.program_id,
            v.code, v.name, v.kind, v.value, list(v.store_ids), v.points_spent, v.status,
            v.claimed_at, v.expires_at)
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name in ("vouchers_code", "vouchers_claim_no"):
            raise ClaimRace(str(exc)) from exc
        raise
    assert row is not None
    return row["taken"] == 1, row["inserted"] == 1


class MemberVoucher(msgspec.Struct, frozen=True, kw_only=True):
    """A voucher as its member sees it (status computed at `now`)."""

    id: uuid.UUID
    code: str
    qr_payload: str
    reward_id: uuid.UUID
    name: str
    kind: RewardKind
    value: int | None
    store_ids: list[uuid.UUID]
    points_spent: int
    points_returned: int
    status: VoucherStatus
    claimed_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_store_id: uuid.UUID | None


def member_voucher(row: asyncpg.Record, now: datetime) -> MemberVoucher:
    return MemberVoucher(
        id=row["id"], code=row["code"], qr_payload=qr_payload(row["code"]),
        reward_id=row["reward_id"], name=row["name"], kind=row["kind"], value=row["value"],
        store_ids=list(row["store_ids"]), points_spent=row["points_spent"],
        points_returned=row["points_returned"],
        status=shown_status(row["status"], row["expires_at"], now),
        claimed_at=row["claimed_at"], expires_at=row["expires_at"], used_at=row["used_at"],
        used_store_id=row["used_store_id"])


VOUCHER_COLUMNS = """v.id, v.code, v.reward_id, v.name, v.kind, v.value, v.store_ids,
  v.points_spent, v.points_returned, v.status, v.claimed_at, v.expires_at, v.used_at,
  v.used_store_id"""

# $3: the status as shown (active and expired are computed against $4, now).
MEMBER_VOUCHERS = f"""
SELECT {VOUCHER_COLUMNS} FROM vouchers v
WHERE v.wallet_account_id = (SELECT wallet_account_id FROM members
                              WHERE id = $1 AND program_id = $2)
  AND CASE $3::text
        WHEN 'active' THEN v.status = 'active' AND v.expires_at > $4
        WHEN 'expired' THEN v.status = 'expired' OR (v.status = 'active'
                                                     AND v.expires_at <= $4)
        ELSE $3::text IS NULL OR v.status = $3::text END
  AND ($5::timestamptz IS NULL OR (v.claimed_at, v.id) < ($5, $6::uuid))
ORDER BY v.claimed_at DESC, v.id DESC
LIMIT $7
"""


async def member_vouchers(conn: Conn, member_id: uuid.UUID, program_id: uuid.UUID, *,
                          status: VoucherStatus | None, now: datetime,
                          before: tuple[datetime, uuid.UUID] | None,
                          limit: int) -> list[MemberVoucher]:
    """The member's vouchers, newest first, strictly before the key `before` when given."""
    rows = await conn.fetch(MEMBER_VOUCHERS, member_id, program_id, status, now,
                            before[0] if before else None, before[1] if before else None,
                            limit)
    return [member_voucher(r, now) for r in rows]


DUE_ACCOUNTS = """
SELECT DISTINCT wallet_account_id FROM vouchers
WHERE status = 'active' AND expires_at <= $1
LIMIT $2
"""


async def due_accounts(conn: Conn, now: datetime, limit: int) -> list[uuid.UUID]:
    """Wallet accounts holding at least one active voucher past its expiry at `now`."""
    return [r[0] for r in await conn.fetch(DUE_ACCOUNTS, now, limit)]


class Expired(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    points_returned: int


# The program decides, at expiry, whether the points come back.
EXPIRE = """
UPDATE vouchers v SET status = 'expired', ended_at = $2,
       points_returned = CASE WHEN p.voucher_expiry_returns_points THEN v.points_spent
                              ELSE 0 END
  FROM programs p
 WHERE p.id = v.program_id AND v.wallet_account_id = $1 AND v.status = 'active'
   AND v.expires_at <= $2
RETURNING v.id, v.points_returned
"""


async def expire(conn: Conn, account_id: uuid.UUID, now: datetime) -> list[Expired]:
    """Expire the account's active vouchers due at `now` (lock the account first): each
    with the points to return (0 when the program keeps them)."""
    rows = await conn.fetch(EXPIRE, account_id, now)
    return sorted((Expired(id=r["id"], points_returned=r["points_returned"]) for r in rows),
                  key=lambda e: e.id.bytes)
