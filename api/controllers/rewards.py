"""The rewards catalogue over HTTP: managers define rewards (revisions, retire, stats),
members list what they can claim and claim it, the till uses vouchers.

Validation: a bad shape (type, range, unknown field) is a 400 naming the field; a rule that
needs the program (tiers, stores, stored value) or several fields is a 422 naming the field.
A reward of another program is a 404, as is one a member's tier does not see. Handlers are
thin: decode, call one service.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, Parameter
from litestar.types import ControllerRouterHandler
from msgspec import UNSET, Meta, UnsetType

from api.auth.tokens import Caller, Principal, live_member, roles
from api.controllers import rewards_examples as ex
from api.controllers.admin import in_path_program
from api.errors import responses
from api.idempotency import OptionalIdempotencyKey, request_key, respond
from api.paging import (
    Cursor,
    Limit,
    Page,
    decode_cursor,
    decode_number,
    encode_cursor,
    page_of,
)
from wallet.kernel.text import MultilineText, Text
from wallet.rewards import claims_service, rewards_service
from wallet.rewards.claims_service import ClaimResult
from wallet.rewards.rewards_repo import Revision, Stats
from wallet.rewards.rewards_service import MemberReward
from wallet.rewards.rules import Reward, RewardChanges, RewardSpec, RewardStatus
from wallet.rewards.vouchers_repo import MemberVoucher
from wallet.vouchers.model import RewardKind, VoucherStatus

INT32 = 2**31 - 1
Name = Annotated[Text, Meta(min_length=1, max_length=200)]
Description = Annotated[MultilineText, Meta(max_length=2000)]
ImageUrl = Annotated[str, Meta(max_length=2048, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$",
                               description="an http(s) URL of the reward's picture")]
PointsCost = Annotated[int, Meta(gt=0, le=10**12, description="points a claim debits")]
Value = Annotated[int, Meta(gt=0, le=10**12, description=(
    "minor units: the discount (amount_off), the stored value credited (stored_value), or "
    "the product's face value taken off a purchase that uses it (voucher, optional)"))]
Stock = Annotated[int, Meta(ge=0, le=INT32, description="vouchers that can be claimed in all")]
PerMember = Annotated[int, Meta(gt=0, le=INT32, description="vouchers one member may claim")]
Moment = Annotated[datetime, Meta(tz=True)]
ValidFor = Annotated[int, Meta(gt=0, le=10 * 366 * 86_400,
                               description="seconds a voucher stays usable after its claim")]
TierNames = Annotated[list[Annotated[Text, Meta(min_length=1, max_length=50)]],
                      Meta(max_length=20, description="tiers that see it ([] = every member)")]
StoreIds = Annotated[list[uuid.UUID], Meta(max_length=10_000,
                                           description="stores where vouchers are used "
                                                       "([] = every store)")]


class RewardIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    description: Description = ""
    image_url: ImageUrl | None = None
    points_cost: PointsCost
    kind: RewardKind
    value: Value | None = None
    stock: Stock | None = None
    per_member_limit: PerMember | None = None
    claimable_from: Moment | None = None
    claimable_until: Moment | None = None
    voucher_valid_for_s: ValidFor
    tiers: TierNames = []
    store_ids: StoreIds = []

    def to_spec(self) -> RewardSpec:
        fields = {f: getattr(self, f) for f in self.__struct_fields__}
        return RewardSpec(**{**fields, "tiers": tuple(self.tiers),
                             "store_ids": tuple(self.store_ids)})


class RewardPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Each field given replaces the stored one (`null` clears an optional one: no stock
    limit, no window bound, ...); absent fields are kept. Every change is recorded (GET
    .../revisions) and applies to claims from then on: vouchers already claimed keep their
    name, value, stores and expiry."""

    name: Name | UnsetType = UNSET
    description: Description | UnsetType = UNSET
    image_url: ImageUrl | UnsetType | None = UNSET
    points_cost: PointsCost | UnsetType = UNSET
    kind: RewardKind | UnsetType = UNSET
    value: Value | UnsetType | None = UNSET
    stock: Stock | UnsetType | None = UNSET
    per_member_limit: PerMember | UnsetType | None = UNSET
    claimable_from: Moment | UnsetType | None = UNSET
    claimable_until: Moment | UnsetType | None = UNSET
    voucher_valid_for_s: ValidFor | UnsetType = UNSET
    tiers: TierNames | UnsetType = UNSET
    store_ids: StoreIds | UnsetType = UNSET

    def to_changes(self) -> RewardChanges:
        fields: dict[str, Any] = {f: getattr(self, f) for f in self.__struct_fields__}
        for f in ("tiers", "store_ids"):
            if not isinstance(fields[f], UnsetType):
                fields[f] = tuple(fields[f])
        return RewardChanges(**fields)


class RewardOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    program_id: uuid.UUID
    name: str
    description: str
    image_url: str | None
    points_cost: int
    kind: RewardKind
    value: int | None
    stock: int | None
    stock_left: int | None
    claimed: int
    per_member_limit: int | None
    claimable_from: datetime | None
    claimable_until: datetime | None
    voucher_valid_for_s: int
    tiers: list[str]
    store_ids: list[uuid.UUID]
    status: RewardStatus
    revision: int
    created_at: datetime
    updated_at: datetime
    retired_at: datetime | None

    @classmethod
    def of(cls, r: Reward) -> RewardOut:
        s = r.spec
        return cls(id=r.id, program_id=r.program_id, name=s.name, description=s.description,
                   image_url=s.image_url, points_cost=s.points_cost, kind=s.kind,
                   value=s.value, stock=s.stock,
                   stock_left=None if s.stock is None else max(0, s.stock - r.claimed),
                   claimed=r.claimed, per_member_limit=s.per_member_limit,
                   claimable_from=s.claimable_from, claimable_until=s.claimable_until,
                   voucher_valid_for_s=s.voucher_valid_for_s, tiers=list(s.tiers),
                   store_ids=list(s.store_ids), status=r.status, revision=r.revision,
                   created_at=r.created_at, updated_at=r.updated_at, retired_at=r.retired_at)


class RevisionsPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Revision]
    next_cursor: str | None


class MemberRewardsPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[MemberReward]
    next_cursor: str | None
    points_available: int  # what a claim now can spend (lots due to expire left out)


StatusFilter = Annotated[RewardStatus | None, Parameter(description="only rewards in this "
                                                                    "status")]
VoucherFilter = Annotated[VoucherStatus | None, Parameter(
    description="only these vouchers (active and expired as of now)")]
def _now() -> datetime:
    return datetime.now(UTC)


def _program(principal: Principal) -> uuid.UUID:
    assert principal.program_id is not None  # members always belong to a program
    return principal.program_id


class RewardsController(Controller):
    path = "/v1/programs/{program_id:uuid}/rewards"
    tags = ["rewards"]
    guards = [roles("admin", "manager"), in_path_program]

    @post("/", status_code=201, summary="Create a reward",
          description="Claimable by members at once (within its optional window). A "
                      "`stored_value` reward needs the program's stored value and has no "
                      "stores; `amount_off` and `stored_value` need a `value`.",
          responses={**responses(403, 404, 422),
                     **ex.ok(201, RewardOut, "The reward created", ex.REWARD_OUT)})
    async def create(self, state: State, principal: Caller, program_id: FromPath[uuid.UUID],
                     data: Annotated[RewardIn, ex.body("A gold-tier voucher", ex.REWARD_IN)]
                     ) -> RewardOut:
        return RewardOut.of(await rewards_service.create(state.pool, program_id,
                                                         data.to_spec(), by=principal.sub,
                                                         now=_now()))

    @get("/", summary="List the program's rewards (oldest first)",
         description="Paged with `limit` and `cursor`; `status` keeps active or retired "
                     "rewards only.",
         responses={**responses(403, 404), **ex.ok(200, Page[RewardOut], "A page of rewards",
                                                    {"items": [ex.REWARD_OUT],
                                                     "next_cursor": None})})
    async def list_rewards(self, state: State, program_id: FromPath[uuid.UUID],
                           status: StatusFilter = None, limit: Limit = 50,
                           cursor: Cursor = None) -> Page[RewardOut]:
        after = decode_cursor(cursor)
        rows = await rewards_service.page(state.pool, program_id, status=status,
                                          limit=limit + 1,
                                          after=(after.at, after.id) if after else None)
        last = rows[limit - 1] if len(rows) > limit else None
        return page_of([RewardOut.of(r) for r in rows], limit,
                       (last.created_at, last.id) if last else None)

    @get("/{reward_id:uuid}", summary="Read a reward",
         description="With how many vouchers were claimed and how much stock is left.",
         responses={**responses(403, 404), **ex.ok(200, RewardOut, "The reward",
                                                    ex.REWARD_OUT)})
    async def read(self, state: State, program_id: FromPath[uuid.UUID],
                   reward_id: FromPath[uuid.UUID]) -> RewardOut:
        return RewardOut.of(await rewards_service.get(state.pool, program_id, reward_id))

    @patch("/{reward_id:uuid}", summary="Change a reward (recorded as a revision)",
           description="Applies to claims from then on; vouchers already claimed keep what "
                       "they were claimed with. A stock below the vouchers claimed is a 422.",
           responses={**responses(403, 404, 422),
                      **ex.ok(200, RewardOut, "The reward as changed", ex.REWARD_OUT)})
    async def change(self, state: State, principal: Caller, program_id: FromPath[uuid.UUID],
                     reward_id: FromPath[uuid.UUID],
                     data: Annotated[RewardPatch, ex.body("A cheaper reward without a stock "
                                                          "limit", ex.REWARD_PATCH)]
                     ) -> RewardOut:
        return RewardOut.of(await rewards_service.update(
            state.pool, program_id, reward_id, data.to_changes(), by=principal.sub,
            now=_now()))

    @post("/{reward_id:uuid}/retire", status_code=200, summary="Retire a reward",
          description="No more claims; vouchers already claimed stay usable until they "
                      "expire. Retiring a retired reward changes nothing.",
          responses={**responses(403, 404), **ex.ok(200, RewardOut, "The retired reward", {
              **ex.REWARD_OUT, "status": "retired", "revision": 3,
              "retired_at": "2026-09-01T10:00:00Z"})})
    async def retire(self, state: State, principal: Caller, program_id: FromPath[uuid.UUID],
                     reward_id: FromPath[uuid.UUID]) -> RewardOut:
        return RewardOut.of(await rewards_service.retire(state.pool, program_id, reward_id,
                                                         by=principal.sub, now=_now()))

    @get("/{reward_id:uuid}/revisions",
         summary="Every change of the reward, newest first: who, when, before, after",
         description="`before` and `after` hold the reward's status, revision and "
                     "definition; the cursor is the last revision number of the page.",
         responses={**responses(403, 404),
                    **ex.ok(200, RevisionsPage, "A page of revisions", ex.REVISIONS)})
    async def revisions(self, state: State, program_id: FromPath[uuid.UUID],
                        reward_id: FromPath[uuid.UUID], limit: Limit = 50,
                        cursor: Cursor = None) -> RevisionsPage:
        before = decode_number(cursor)
        rows = await rewards_service.revisions(state.pool, program_id, reward_id,
                                               before=before, limit=limit + 1)
        more = len(rows) > limit
        return RevisionsPage(items=rows[:limit],
                             next_cursor=str(rows[limit - 1].revision) if more else None)

    @get("/{reward_id:uuid}/stats",
         summary="What the reward did: vouchers claimed, active, used, expired, cancelled; "
                 "points spent and returned; stock left",
         description="Aggregates only: no member is named (nothing is logged).",
         responses={**responses(403, 404), **ex.ok(200, Stats, "The reward's figures",
                                                    ex.STATS)})
    async def stats(self, state: State, program_id: FromPath[uuid.UUID],
                    reward_id: FromPath[uuid.UUID]) -> Stats:
        return await rewards_service.stats(state.pool, program_id, reward_id)


class MyRewardsController(Controller):
    path = "/v1/me"
    tags = ["members"]
    guards = [roles("member"), live_member]  # an erased member's token is 401

    @get("/rewards", summary="The rewards I can claim, each marked affordable or not",
         description="Active rewards my tier sees whose claiming window has not closed, "
                     "oldest first. `affordable`: my points available now cover it; "
                     "`claimable`: a claim now would succeed.",
         responses={**responses(403), **ex.ok(200, MemberRewardsPage, "My catalogue",
                                                    ex.MEMBER_REWARDS)})
    async def my_rewards(self, state: State, principal: Caller, limit: Limit = 50,
                         cursor: Cursor = None) -> MemberRewardsPage:
        after = decode_cursor(cursor)
        found = await rewards_service.catalogue(
            state.pool, principal.sub, _program(principal), now=_now(), limit=limit + 1,
            after=(after.at, after.id) if after else None)
        more = len(found.rewards) > limit
        last = found.rewards[limit - 1] if more else None
        return MemberRewardsPage(
            items=found.rewards[:limit], points_available=found.points_available,
            next_cursor=encode_cursor(last.created_at, last.id) if last else None)

    @post("/rewards/{reward_id:uuid}/claims", status_code=201,
          summary="Claim a reward: points debited, a voucher created",
          description="The points are debited oldest lots first, as a ledger entry; the "
                      "voucher has a short `code` and a `qr_payload` to show at the till. A "
                      "stored-value reward credits the purse at once (its voucher is `used`). "
                      "Out of stock: 422 /problems/out-of-stock. No body.",
          responses={**responses(403, 404, 409, 422),
                     **ex.ok(201, ClaimResult, "The voucher claimed", ex.CLAIM)})
    async def claim(self, request: Request[Any, Any, Any], state: State, principal: Caller,
                    reward_id: FromPath[uuid.UUID],
                    idempotency_key: OptionalIdempotencyKey = None) -> Response[ClaimResult]:
        idem = request_key(request, principal.sub, idempotency_key,
                           None) if idempotency_key else None
        return respond(await claims_service.claim(state.pool, member_id=principal.sub,
                                                  program_id=_program(principal),
                                                  reward_id=reward_id, idem=idem))

    @get("/vouchers", summary="My vouchers, newest first",
         description="Status as of now: an unused voucher past its expiry is `expired`.",
         responses={**responses(403), **ex.ok(200, Page[MemberVoucher], "My vouchers",
                                                    ex.MY_VOUCHERS)})
    async def my_vouchers(self, state: State, principal: Caller, status: VoucherFilter = None,
                          limit: Limit = 50, cursor: Cursor = None) -> Page[MemberVoucher]:
        before = decode_cursor(cursor)
        rows = await claims_service.my_vouchers(
            state.pool, principal.sub, _program(principal), status=status, now=_now(),
            limit=limit + 1, before=(before.at, before.id) if before else None)
        last = rows[limit - 1] if len(rows) > limit else None
        return page_of(rows, limit, (last.claimed_at, last.id) if last else None)


ROUTES: list[ControllerRouterHandler] = [RewardsController, MyRewardsController]
