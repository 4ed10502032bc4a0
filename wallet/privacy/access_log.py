"""The access log: every read of a member's personal data by staff, managers or admins, and
every disclosure of it by the service itself to a third party (role `service`: the member's
balances sent to Google Wallet, `wallet/passes/outbox_repo.RECORD`).

An entry says who (actor id and role), what (`action`), why (`purpose`), when, and whose data
(the member) — never the data itself. Entries are written in the transaction that reads the
data (one INSERT; the till folds it into its single write statement, see `wallet.ledger`), so
a read that commits is always logged. An erased member's entries keep the actor's trail but
lose the member (the foreign key is ON DELETE SET NULL).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from wallet.kernel import errors
from wallet.kernel.db import Conn

ActorRole = Literal["staff", "manager", "admin", "service"]
# What was done with the member's data. Add a value when a new route reads it.
# `till.refund_other_store`: a refund at one store of a purchase rung up at another (the till
# read that store's transaction; the refund names it as its original).
Action = Literal["till.scan", "till.purchase", "till.refund", "till.refund_other_store",
                 "till.top_up", "till.payout", "till.voucher", "support.view", "admin.export",
                 "admin.erasure", "admin.payout", "pass.google_update"]
# Why: serving the member at the till, answering the member's own request (support, a
# data-subject request received by the operator), keeping the member's wallet pass current.
AccessPurpose = Literal["till_service", "member_support", "data_subject_request",
                        "wallet_pass"]


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """Who reads: the token's subject and role."""

    id: uuid.UUID
    role: ActorRole


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """One read to record: what and why, and at which store when at a till."""

    actor: Actor
    action: Action
    purpose: AccessPurpose
    store_id: uuid.UUID | None = None
    reason: str | None = None  # an operator acting on a request says why (a ticket number)


class MemberView(msgspec.Struct, frozen=True, kw_only=True):
    """An entry as the member sees it (the actor's identity is the operator's business)."""

    id: uuid.UUID
    at: datetime
    actor_role: ActorRole
    action: Action
    purpose: AccessPurpose
    store_id: uuid.UUID | None


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """A full entry, for operators (breach notification, audits). `member_id` is None once
    the member was erased."""

    id: uuid.UUID
    at: datetime
    member_id: uuid.UUID | None
    program_id: uuid.UUID
    actor_id: uuid.UUID
    actor_role: ActorRole
    action: Action
    purpose: AccessPurpose
    store_id: uuid.UUID | None
    reason: str | None  # why an operator acted on the member's request


INSERT = """
INSERT INTO access_log (member_id, program_id, actor_id, actor_role, action, purpose, store_id,
                        reason)
SELECT m.id, m.program_id, $2, $3, $4, $5, $6, $7 FROM members m WHERE m.id = $1
"""


async def record(conn: Conn, member_id: uuid.UUID, access: Access) -> None:
    """Log one read of `member_id`'s data, in the caller's transaction. A member erased in
    the meantime leaves nothing to log; one being erased right now is NotFound."""
    try:
        await conn.execute(INSERT, member_id, access.actor.id, access.actor.role,
                           access.action, access.purpose, access.store_id, access.reason)
    except asyncpg.ForeignKeyViolationError as exc:  # erased while we read
        raise errors.NotFound("this member no longer exists") from exc


MEMBER_PAGE = """
SELECT id, at, actor_role, action, purpose, store_id FROM access_log
WHERE member_id = $1 AND ($2::timestamptz IS NULL OR (at, id) < ($2, $3))
ORDER BY at DESC, id DESC
LIMIT $4
"""


async def member_entries(conn: Conn, member_id: uuid.UUID, *,
                         before: tuple[datetime, uuid.UUID] | None,
                         limit: int) -> list[MemberView]:
    """The member's entries, newest first, strictly before `before` (at, id) when given."""
    at, id_ = before if before else (None, None)
    rows = await conn.fetch(MEMBER_PAGE, member_id, at, id_, limit)
    return [MemberView(**dict(r)) for r in rows]


SEARCH = """
SELECT id, at, member_id, program_id, actor_id, actor_role, action, purpose, store_id, reason
FROM access_log
WHERE ($1::uuid IS NULL OR actor_id = $1)
  AND ($2::uuid IS NULL OR member_id = $2)
  AND at >= $3 AND at < $4
  AND ($5::timestamptz IS NULL OR (at, id) > ($5, $6))
ORDER BY at, id
LIMIT $7
"""


async def search(conn: Conn, *, actor_id: uuid.UUID | None, member_id: uuid.UUID | None,
                 start: datetime, end: datetime,
                 after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Entry]:
    """Entries in [start, end), oldest first, optionally of one actor and/or one member."""
    at, id_ = after if after else (None, None)
    rows = await conn.fetch(SEARCH, actor_id, member_id, start, end, at, id_, limit)
    return [Entry(**dict(r)) for r in rows]
