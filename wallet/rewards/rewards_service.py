"""The catalogue's services: each call one transaction, validation by the pure
`wallet.rewards.rules`, SQL by `rewards_repo`.

Managers: every change of a reward (create, update, retire) writes a revision with who made
it, when, and the reward before and after, in the transaction of the change; the row is
locked while it changes, so every revision's `before` is the previous one's `after`. A
change applies to claims from then on; vouchers already claimed keep what they were claimed
with (name, value, stores, expiry). Retiring stops claims; vouchers already held stay usable.

Members: the catalogue they can see (their tier), each reward marked affordable or not.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec

from wallet.kernel.db import Conn
from wallet.rewards import rewards_repo as repo
from wallet.rewards import rules, vouchers_repo
from wallet.rewards.rewards_repo import Revision, Stats
from wallet.rewards.rules import Reward, RewardChanges, RewardSpec, RewardStatus
from wallet.vouchers.model import RewardKind


async def _checked(conn: Conn, program_id: uuid.UUID, spec: RewardSpec, *,
                   claimed: int = 0) -> RewardSpec:
    facts = await repo.program_facts(conn, program_id)
    stores = await repo.live_stores(conn, program_id, spec.store_ids)
    return rules.check_spec(spec, tiers=facts.tier_names, stores=stores,
                            stored_value_enabled=facts.stored_value, claimed=claimed)


async def create(pool: asyncpg.Pool, program_id: uuid.UUID, spec: RewardSpec, *,
                 by: uuid.UUID, now: datetime) -> Reward:
    """A new reward, claimable (within its window) at once."""
    async with pool.acquire() as conn, conn.transaction():
        reward = await repo.insert(conn, program_id, await _checked(conn, program_id, spec), now)
        await repo.record_revision(conn, before=None, after=reward, by=by, action="create",
                                   now=now)
        return reward


async def get(pool: asyncpg.Pool, program_id: uuid.UUID, reward_id: uuid.UUID) -> Reward:
    async with pool.acquire() as conn:
        return await repo.get(conn, program_id, reward_id)


async def page(pool: asyncpg.Pool, program_id: uuid.UUID, *, status: RewardStatus | None,
               after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Reward]:
    async with pool.acquire() as conn:
        return await repo.page(conn, program_id, status=status, after=after, limit=limit)


async def update(pool: asyncpg.Pool, program_id: uuid.UUID, reward_id: uuid.UUID,
                 changes: RewardChanges, *, by: uuid.UUID, now: datetime) -> Reward:
    """Apply a PATCH, validated as a whole, recorded as a revision. A retired reward is
    still corrected (its name, say) but stays retired."""
    async with pool.acquire() as conn, conn.transaction():
        before = await repo.get(conn, program_id, reward_id, for_update=True)
        spec = rules.apply_changes(before.spec, changes)
        if spec == before.spec:
            return before  # nothing changes: no revision
        spec = await _checked(conn, program_id, spec, claimed=before.claimed)
        after = await repo.update(conn, reward_id, spec, now)
        await repo.record_revision(conn, before=before, after=after, by=by, action="update",
                                   now=now)
        return after


async def retire(pool: asyncpg.Pool, program_id: uuid.UUID, reward_id: uuid.UUID, *,
                 by: uuid.UUID, now: datetime) -> Reward:
    """Stop claims of the reward for good; retiring it again changes nothing."""
    async with pool.acquire() as conn, conn.transaction():
        before = await repo.get(conn, program_id, reward_id, for_update=True)
        if before.status == "retired":
            return before
        after = await repo.retire(conn, reward_id, now)
        await repo.record_revision(conn, before=before, after=after, by=by, action="retire",
                                   now=now)
        return after


async def revisions(pool: asyncpg.Pool, program_id: uuid.UUID, reward_id: uuid.UUID, *,
                    before: int | None, limit: int) -> list[Revision]:
    async with pool.acquire() as conn:
        await repo.get(conn, program_id, reward_id)
        return await repo.revisions(conn, reward_id, before=before, limit=limit)


async def stats(pool: asyncpg.Pool, program_id: uuid.UUID, reward_id: uuid.UUID) -> Stats:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        return await repo.stats(conn, await repo.get(conn, program_id, reward_id))


# --- the member's catalogue -----------------------------------------------------------------------


class MemberReward(msgspec.Struct, frozen=True, kw_only=True):
    """A reward as a member sees it. `affordable`: their points available now cover it;
    `claimable`: a claim now would succeed (affordable, in its window, in stock, under the
    member's limit)."""

    id: uuid.UUID
    name: str
    description: str
    image_url: str | None
    points_cost: int
    kind: RewardKind
    value: int | None
    store_ids: list[uuid.UUID]
    claimable_from: datetime | None
    claimable_until: datetime | None
    voucher_valid_for_s: int
    stock_left: int | None  # None: unlimited
    per_member_limit: int | None
    claimed_by_me: int
    affordable: bool
    claimable: bool
    created_at: datetime  # the catalogue's order


class MemberCatalogue(msgspec.Struct, frozen=True, kw_only=True):
    points_available: int
    rewards: list[MemberReward]


async def catalogue(pool: asyncpg.Pool, member_id: uuid.UUID, program_id: uuid.UUID, *,
                    now: datetime, after: tuple[datetime, uuid.UUID] | None,
                    limit: int) -> MemberCatalogue:
    """The active rewards the member can see whose window has not closed, oldest first."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read",
                                                        readonly=True):
        who = await vouchers_repo.claimant(conn, member_id, program_id)
        points = await repo.points_available(conn, who.account_id, now)
        found = await repo.visible_page(conn, program_id, tier=who.tier, now=now, after=after,
                                        limit=limit)
        mine = await vouchers_repo.claims_of(conn, who.account_id, [r.id for r in found])
    items = []
    for r in found:
        s = r.spec
        claims = mine.get(r.id, 0)
        affordable = points >= s.points_cost
        under_limit = s.per_member_limit is None or claims < s.per_member_limit
        items.append(MemberReward(
            id=r.id, name=s.name, description=s.description, image_url=s.image_url,
            points_cost=s.points_cost, kind=s.kind, value=s.value, store_ids=list(s.store_ids),
            claimable_from=s.claimable_from, claimable_until=s.claimable_until,
            voucher_valid_for_s=s.voucher_valid_for_s, stock_left=rules.stock_left(r),
            per_member_limit=s.per_member_limit, claimed_by_me=claims, affordable=affordable,
            claimable=(affordable and under_limit and rules.claimable_now(r, now)
                       and rules.stock_left(r) != 0),
            created_at=r.created_at))
    return MemberCatalogue(points_available=points, rewards=items)
