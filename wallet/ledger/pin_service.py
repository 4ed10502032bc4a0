"""Changing the stored-value PIN (`PUT /v1/me/pin`): a dangerous action, re-authenticated.

The PIN guards the member's money at the till, so whoever changes it must show the password
and, once a PIN is set, the current PIN. A wrong current PIN counts towards the same lockout
as a wrong PIN at the till (`till.check_pin`): changing the PIN is no way around it, and while
it is locked the PIN cannot be changed either (the lock ends by itself after `lock_s`). The
argon2 checks run before any write; the new PIN is stored hashed, and the failure count is
cleared (a running lock is kept, see `members_repo.set_pin_hash`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import asyncpg

from wallet.kernel import errors
from wallet.kernel.hashing import Hasher
from wallet.ledger.till import PinPolicy, check_pin
from wallet.members import members_service


async def change_pin(pool: asyncpg.Pool, hasher: Hasher, member_id: uuid.UUID, *, pin: str,
                     password: str, current_pin: str | None, policy: PinPolicy,
                     now: datetime | None = None) -> None:
    """Set `pin` after checking `password` (WrongPassword) and, when a PIN is set,
    `current_pin` (PinRequired when absent; WrongPin with the attempts left, or PinLocked
    with until when, each naming `current_pin`)."""
    credentials = await members_service.reauthenticate(pool, hasher, member_id, password)
    if credentials.pin_hash is not None:
        if current_pin is None:
            raise errors.PinRequired("a PIN is set: give it as `current_pin` to change it",
                                     field="current_pin")
        async with pool.acquire() as conn:
            await check_pin(conn, credentials, current_pin, hasher=hasher, policy=policy,
                            now=now or datetime.now(UTC), field="current_pin")
    await members_service.store_pin(pool, hasher, member_id, pin)
