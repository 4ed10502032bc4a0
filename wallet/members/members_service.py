"""Member services: signup, profile, card, PIN. Each owns its transaction.

Signup creates, in one transaction, the member, a wallet account in the program's entry tier
(the tier whose threshold is 0; none if the program has no such tier), a card with a Luhn
number and the consents given at signup (none is granted by default). Passwords and PINs are
hashed with argon2id before the transaction opens, so no connection waits on the KDF.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
import msgspec

from wallet.kernel.errors import WrongPassword
from wallet.kernel.hashing import Hasher
from wallet.members import consents, consents_repo, sessions_repo
from wallet.members.members_repo import (
    Card,
    Credentials,
    Profile,
    fetch_card,
    fetch_credentials,
    fetch_profile,
    insert_card,
    insert_member,
    require_member,
    set_pin_hash,
    update_profile_row,
)
from wallet.programs.programs import entry_tier, fetch_program


class Signup(msgspec.Struct, frozen=True, kw_only=True):
    profile: Profile
    card: Card


class ProfileChanges(msgspec.Struct, frozen=True, kw_only=True):
    """Fields a member may correct; None = keep."""

    email: str | None = None
    first_name: str | None = None
    locale: str | None = None


async def signup(pool: asyncpg.Pool, hasher: Hasher, *, program_id: uuid.UUID, email: str,
                 password: str, first_name: str, locale: str,
                 given_consents: Sequence[consents.ConsentChange],
                 member_id: uuid.UUID, session: sessions_repo.NewRefresh | None = None
                 ) -> Signup:
    """Create member `member_id` with wallet account, card and consents, and store its first
    refresh token (`session`, minted by the caller for `member_id`) in the same transaction,
    so a failure leaves nothing behind.

    Unknown program → NotFound; e-mail already a member → Conflict; the same purpose twice
    in `given_consents` → RuleViolation; a `policy_version` no privacy notice has →
    UnknownPolicyVersion.
    """
    consents.check_changes(given_consents)
    password_hash = await hasher.hash_async(password)
    async with pool.acquire() as conn, conn.transaction():
        program = await fetch_program(conn, program_id)
        tier = entry_tier(program.tiers)
        await insert_member(
            conn, program_id=program_id, email=email, password_hash=password_hash,
            first_name=first_name, locale=locale, tier=tier.name if tier else None,
            member_id=member_id)
        card = await insert_card(conn, member_id, program_id)
        await consents_repo.append_consents(conn, member_id, given_consents,
                                            listed_as="consents")
        if session is not None:
            await sessions_repo.store_refresh(conn, session)
        profile = await fetch_profile(conn, member_id)
    return Signup(profile=profile, card=card)


async def profile_of(pool: asyncpg.Pool, member_id: uuid.UUID) -> Profile:
    """The member's profile with balances and tier (Unauthenticated if erased)."""
    async with pool.acquire() as conn:
        return await fetch_profile(conn, member_id)


async def correct_profile(pool: asyncpg.Pool, member_id: uuid.UUID,
                          changes: ProfileChanges) -> Profile:
    async with pool.acquire() as conn, conn.transaction():
        await update_profile_row(conn, member_id, email=changes.email,
                                 first_name=changes.first_name, locale=changes.locale)
        return await fetch_profile(conn, member_id)


async def card_of(pool: asyncpg.Pool, member_id: uuid.UUID) -> Card:
    async with pool.acquire() as conn:
        return await fetch_card(conn, member_id)


async def reauthenticate(pool: asyncpg.Pool, hasher: Hasher, member_id: uuid.UUID,
                         password: str) -> Credentials:
    """Check the member's password again before a dangerous action (erasure, a PIN change):
    WrongPassword (naming `password`) if it is wrong, `gone()` if the member was erased.
    Returns their credentials (the PIN's hash and lock, for a PIN change)."""
    async with pool.acquire() as conn:
        credentials = await fetch_credentials(conn, member_id)
    if not await hasher.verify_async(credentials.password_hash, password):
        raise WrongPassword("the password is wrong", field="password")
    return credentials


async def store_pin(pool: asyncpg.Pool, hasher: Hasher, member_id: uuid.UUID, pin: str) -> None:
    """Store the stored-value PIN hashed (argon2id); it is never returned. Callers check
    the member's password and current PIN first (`wallet.ledger.pin_service`)."""
    pin_hash = await hasher.hash_async(pin)
    async with pool.acquire() as conn:
        await set_pin_hash(conn, member_id, pin_hash)


async def ensure_member(pool: asyncpg.Pool, member_id: uuid.UUID) -> None:
    """Unauthenticated (`gone()`) when the member was erased: their token must stop working."""
    async with pool.acquire() as conn:
        await require_member(conn, member_id, keep=False)
