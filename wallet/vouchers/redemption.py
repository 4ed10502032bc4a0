"""Vouchers at the till: the SQL a till operation runs for them, inside its own transaction.

A purchase lists `vouchers` (codes); the till reads them locked (`load`), checks them with
the member's card (`check`: each refusal names `vouchers[i]`), takes their value off the
amount, and marks them used by its transaction (`use`) after its ledger write. A refund that
completes the refund of that purchase makes them usable again (`restore`). A voucher used on
its own (`POST /v1/pos/vouchers/redeem`) goes through `till_service.redeem`.

Locks: a voucher row is locked (`FOR UPDATE`) before it is checked, so two tills racing for
one voucher use it once; the till holds the member's account lock first, as the expiry of
vouchers does, so the order is always account, then voucher.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.errors import RuleViolation
from wallet.vouchers.model import VoucherAtTill, check_usable, normalise_code


class LoadedVoucher(msgspec.Struct, frozen=True, kw_only=True):
    voucher: VoucherAtTill
    member_id: uuid.UUID | None  # None once the member was erased


LOAD = """
SELECT v.id, v.code, v.reward_id, v.wallet_account_id, v.name, v.kind, v.value, v.store_ids,
       v.status, v.expires_at, m.id AS member_id
FROM vouchers v LEFT JOIN members m ON m.wallet_account_id = v.wallet_account_id
WHERE v.code = ANY($1::text[]) AND v.program_id = $2
FOR UPDATE OF v
"""


async def load(conn: Conn, codes: Sequence[str], *,
               program_id: uuid.UUID) -> dict[str, LoadedVoucher]:
    """The vouchers of `program_id` with these (canonical) codes, locked until the
    transaction ends, by code."""
    rows = await conn.fetch(LOAD, list(codes), program_id)
    return {r["code"]: LoadedVoucher(
        voucher=VoucherAtTill(
            id=r["id"], code=r["code"], reward_id=r["reward_id"],
            wallet_account_id=r["wallet_account_id"], name=r["name"], kind=r["kind"],
            value=r["value"], store_ids=tuple(r["store_ids"]), status=r["status"],
            expires_at=r["expires_at"]),
        member_id=r["member_id"]) for r in rows}


def canonical(texts: Sequence[str]) -> list[str]:
    """The codes among what a till sent (typed or scanned), in canonical form; what cannot
    be a code is left out (`check` refuses it)."""
    return [code for text in texts if (code := normalise_code(text)) is not None]


def check(found: dict[str, LoadedVoucher], texts: Sequence[str], *, account_id: uuid.UUID,
          store_id: uuid.UUID, now: datetime) -> list[VoucherAtTill]:
    """The vouchers a purchase by the member of `account_id` lists (as the till sent them),
    each usable here now, or the refusal of the first that is not, naming `vouchers[i]`:
    an unknown code, or one of another program, is a 422 like the others (it is part of a
    purchase); so is a voucher listed twice."""
    out: list[VoucherAtTill] = []
    for i, text in enumerate(texts):
        field = f"vouchers[{i}]"
        code = normalise_code(text)
        got = found.get(code) if code is not None else None
        if got is None or got.voucher.status == "cancelled":
            raise RuleViolation("no such voucher", field=field)
        if any(v.id == got.voucher.id for v in out):
            raise RuleViolation("this voucher is listed twice", field=field)
        check_usable(got.voucher, account_id=account_id, store_id=store_id, now=now,
                     field=field)
        out.append(got.voucher)
    return out


USE = """
UPDATE vouchers SET status = 'used', used_at = $2, used_store_id = $3, used_by = $4,
       used_transaction_id = $5
WHERE id = ANY($1::uuid[]) AND status = 'active'
"""


async def use(conn: Conn, ids: Sequence[uuid.UUID], *, at: datetime, store_id: uuid.UUID,
              by: uuid.UUID, transaction_id: uuid.UUID | None) -> None:
    """Mark the (locked, checked) vouchers used, by `transaction_id` when inside a
    purchase (written already). A voucher not active any more is a bug: raises."""
    status = await conn.execute(USE, list(ids), at, store_id, by, transaction_id)
    if status != f"UPDATE {len(ids)}":
        raise RuntimeError("a checked voucher was not active any more")  # the lock forbids it


RESTORE = """
UPDATE vouchers SET status = 'active', used_at = NULL, used_store_id = NULL, used_by = NULL,
       used_transaction_id = NULL
WHERE used_transaction_id = $1 AND status = 'used'
RETURNING id
"""


async def restore(conn: Conn, transaction_id: uuid.UUID) -> list[uuid.UUID]:
    """Make the vouchers a purchase used usable again (its refund is complete); they keep
    their expiry, so one already past it expires at the next run of the expiry job."""
    return sorted((r["id"] for r in await conn.fetch(RESTORE, transaction_id)),
                  key=lambda i: i.bytes)
