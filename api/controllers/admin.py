"""Operators: programs (admin) and their manager/staff accounts.

`in_path_program` is the guard every `/v1/programs/{program_id}/...` route uses: a manager,
staff member or member acts only inside the program of their token (403 otherwise); an admin
acts in any program that exists (an unknown one is a 404 on every route, as reading it is,
never an empty list or a default).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, get, patch, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.types import ControllerRouterHandler
from msgspec import UNSET, Meta, UnsetType

from api.auth.tokens import Caller, Principal, live_member, roles
from api.controllers.auth import Email
from api.errors import responses
from api.paging import Cursor, Limit, Page, decode_cursor, page_of
from wallet.kernel.model import Limits, Program, Tier
from wallet.kernel.text import Text
from wallet.programs import accounts_repo, programs
from wallet.programs.accounts_repo import Account

INT32 = 2**31 - 1

Name = Annotated[Text, Meta(min_length=1, max_length=200)]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR")]
TimeZone = Annotated[Text, Meta(min_length=1, max_length=64, examples=["Europe/Paris"],
                               description="IANA time zone name")]
ExpiryDays = Annotated[int, Meta(gt=0, le=36_500)]
ReturnsPoints = Annotated[bool, Meta(description=(
    "whether the points of a reward voucher that expires unused come back to the member"))]


async def in_path_program(connection: ASGIConnection[Any, Any, Any, Any],
                          _: BaseRouteHandler) -> None:
    """Guard: the caller's token must be for the `{program_id}` in the path; an admin's
    names no program, so for an admin the program must exist (404 otherwise). Other tokens
    are minted only for programs that exist."""
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise NotAuthorizedException("a bearer token is required")
    program_id = uuid.UUID(str(connection.path_params["program_id"]))
    user.require_program(program_id)
    if user.role == "admin":
        await programs.get_program(connection.app.state.pool, program_id)


class EarnRate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`points` points per `per_amount` minor units spent (1 per 100 = 1 point per euro)."""

    points: Annotated[int, Meta(ge=0, le=1_000_000)]
    per_amount: Annotated[int, Meta(gt=0, le=INT32)]


class TierIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Annotated[Text, Meta(min_length=1, max_length=50)]
    min_points_12m: Annotated[int, Meta(ge=0, le=INT32,
                                        description="points earned in 12 months to reach it")]
    earn_multiplier: Annotated[float, Meta(ge=1, le=10,
                                           description="x1 to x10, at most 3 decimals")]


Tiers = Annotated[list[TierIn], Meta(max_length=20)]


def _tiers(tiers: list[TierIn]) -> tuple[Tier, ...]:
    return tuple(Tier(name=t.name, min_points_12m=t.min_points_12m,
                      multiplier_milli=programs.multiplier_milli(
                          t.earn_multiplier, field=f"tiers[{i}].earn_multiplier"))
                 for i, t in enumerate(tiers))


ProgramLocale = Annotated[str, Meta(
    pattern=r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-([A-Z]{2}|[0-9]{3}))?$", max_length=20,
    examples=["fr-FR"], description="BCP 47 language tag (language, optional script and "
                                    "region): how amounts and numbers are written for people")]


CrossStoreRefunds = Annotated[bool, Meta(
    description="a purchase may be refunded at another store of the program than the one "
                "that rang it up (recorded at the refunding store, the read of the other "
                "store's purchase logged in the member's access log); false: only where it "
                "was bought")]


_DEFAULT = Limits()
Ceiling = Annotated[int, Meta(gt=0, le=10**12, description="minor units of the currency")]
MaxPurchase = Annotated[Ceiling, Meta(description=(
    "the largest purchase amount a till may ring up (a larger one: 422 limit-exceeded)"))]
MaxTopUp = Annotated[Ceiling, Meta(description="the largest stored-value top-up")]
MaxPurse = Annotated[Ceiling, Meta(description=(
    "the most a member's purse (stored value) may hold: a top-up or reward beyond it is "
    "refused, a refund pays the rest in cash; lowering it takes no money away"))]


class LimitsIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The program's limits on money at the till, in minor units (defaults: 10,000.00,
    500.00 and 1,500.00 in a currency with cents)."""

    max_purchase_amount: MaxPurchase = _DEFAULT.max_purchase_amount
    max_top_up_amount: MaxTopUp = _DEFAULT.max_top_up_amount
    max_stored_value_balance: MaxPurse = _DEFAULT.max_stored_value_balance

    def to_limits(self) -> Limits:
        return Limits(max_purchase_amount=self.max_purchase_amount,
                      max_top_up_amount=self.max_top_up_amount,
                      max_stored_value_balance=self.max_stored_value_balance)


class LimitsPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Some of the program's limits; the others stay as they are."""

    max_purchase_amount: MaxPurchase | UnsetType = UNSET
    max_top_up_amount: MaxTopUp | UnsetType = UNSET
    max_stored_value_balance: MaxPurse | UnsetType = UNSET

    def to_changes(self) -> programs.LimitChanges:
        return programs.LimitChanges(max_purchase_amount=self.max_purchase_amount,
                                     max_top_up_amount=self.max_top_up_amount,
                                     max_stored_value_balance=self.max_stored_value_balance)


class LimitsOut(msgspec.Struct, frozen=True, kw_only=True):
    max_purchase_amount: int
    max_top_up_amount: int
    max_stored_value_balance: int


class ProgramIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    currency: Currency
    timezone: TimeZone
    earn_rate: EarnRate
    points_expiry_days: ExpiryDays
    tiers: Tiers = []
    stored_value: bool = False
    voucher_expiry_returns_points: ReturnsPoints = True
    locale: ProgramLocale = "en"
    cross_store_refunds: CrossStoreRefunds = True
    limits: LimitsIn = LimitsIn()

    def to_spec(self) -> programs.ProgramSpec:
        return programs.ProgramSpec(
            name=self.name, currency=self.currency, timezone=self.timezone,
            earn_points=self.earn_rate.points, earn_per_amount=self.earn_rate.per_amount,
            points_expiry_days=self.points_expiry_days, tiers=_tiers(self.tiers),
            stored_value=self.stored_value,
            voucher_expiry_returns_points=self.voucher_expiry_returns_points,
            locale=self.locale, cross_store_refunds=self.cross_store_refunds,
            limits=self.limits.to_limits())


class ProgramPatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Any subset of the program's fields; `tiers` replaces the whole list."""

    name: Name | UnsetType = UNSET
    currency: Currency | UnsetType = UNSET
    timezone: TimeZone | UnsetType = UNSET
    earn_rate: EarnRate | UnsetType = UNSET
    points_expiry_days: ExpiryDays | UnsetType = UNSET
    tiers: Tiers | UnsetType = UNSET
    stored_value: bool | UnsetType = UNSET
    voucher_expiry_returns_points: ReturnsPoints | UnsetType = UNSET
    locale: ProgramLocale | UnsetType = UNSET
    cross_store_refunds: CrossStoreRefunds | UnsetType = UNSET
    limits: LimitsPatch | UnsetType = UNSET

    def to_changes(self) -> programs.ProgramChanges:
        rate = self.earn_rate
        return programs.ProgramChanges(
            name=self.name, currency=self.currency, timezone=self.timezone,
            earn_points=UNSET if isinstance(rate, UnsetType) else rate.points,
            earn_per_amount=UNSET if isinstance(rate, UnsetType) else rate.per_amount,
            points_expiry_days=self.points_expiry_days,
            tiers=UNSET if isinstance(self.tiers, UnsetType) else _tiers(self.tiers),
            stored_value=self.stored_value,
            voucher_expiry_returns_points=self.voucher_expiry_returns_points,
            locale=self.locale, cross_store_refunds=self.cross_store_refunds,
            limits=UNSET if isinstance(self.limits, UnsetType) else self.limits.to_changes())


class TierOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    min_points_12m: int
    earn_multiplier: float


class ProgramOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str
    currency: str
    timezone: str
    earn_rate: EarnRate
    points_expiry_days: int
    tiers: list[TierOut]  # by threshold, ascending
    stored_value: bool
    voucher_expiry_returns_points: bool
    locale: str
    cross_store_refunds: bool
    limits: LimitsOut
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, p: Program) -> ProgramOut:
        return cls(
            id=p.id, name=p.name, currency=p.currency, timezone=p.timezone,
            earn_rate=EarnRate(points=p.earn_points, per_amount=p.earn_per_amount),
            points_expiry_days=p.points_expiry_days, stored_value=p.stored_value,
            voucher_expiry_returns_points=p.voucher_expiry_returns_points, locale=p.locale,
            cross_store_refunds=p.cross_store_refunds,
            tiers=[TierOut(name=t.name, min_points_12m=t.min_points_12m,
                           earn_multiplier=t.multiplier_milli / 1000) for t in p.tiers],
            limits=LimitsOut(max_purchase_amount=p.limits.max_purchase_amount,
                             max_top_up_amount=p.limits.max_top_up_amount,
                             max_stored_value_balance=p.limits.max_stored_value_balance),
            created_at=p.created_at, updated_at=p.updated_at)


class AccountIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Email
    password: Annotated[Text, Meta(min_length=10, max_length=200)]
    role: Literal["staff", "manager"]
    store_ids: Annotated[list[uuid.UUID], Meta(max_length=500,
                                               description="staff only: their stores")] = []


class AccountOut(msgspec.Struct, frozen=True, kw_only=True):
    """An account as created; the password is never returned."""

    id: uuid.UUID
    program_id: uuid.UUID
    email: str
    role: Literal["staff", "manager"]
    store_ids: list[uuid.UUID]
    created_at: datetime

    @classmethod
    def of(cls, a: Account) -> AccountOut:
        return cls(id=a.id, program_id=a.program_id, email=a.email, role=a.role,
                   store_ids=list(a.store_ids), created_at=a.created_at)


class ProgramsController(Controller):
    path = "/v1/programs"
    tags = ["operators"]

    @post("/", status_code=201, guards=[roles("admin")], summary="Create a program",
          responses=responses(403, 422))
    async def create_program(self, state: State, data: JSONBody[ProgramIn]) -> ProgramOut:
        return ProgramOut.of(await programs.create_program(state.pool, data.to_spec()))

    @get("/", guards=[roles("admin")], summary="List every program (admin), oldest first",
         responses=responses(403))
    async def list_programs(self, state: State, limit: Limit = 50,
                            cursor: Cursor = None) -> Page[ProgramOut]:
        after = decode_cursor(cursor)
        rows = await programs.list_programs(state.pool, limit=limit + 1,
                                            after=(after.at, after.id) if after else None)
        last = rows[limit - 1] if len(rows) > limit else None
        return page_of([ProgramOut.of(p) for p in rows], limit,
                       (last.created_at, last.id) if last else None)

    @get("/{program_id:uuid}", guards=[roles("admin", "manager", "staff", "member"),
                                       in_path_program, live_member],
         summary="Read a program (admin, or anyone of that program)",
         responses=responses(403, 404))
    async def get_program(self, state: State, program_id: FromPath[uuid.UUID]) -> ProgramOut:
        return ProgramOut.of(await programs.get_program(state.pool, program_id))

    @patch("/{program_id:uuid}", guards=[roles("admin")], summary="Change a program",
           responses=responses(403, 404, 409, 422))
    async def update_program(self, state: State, program_id: FromPath[uuid.UUID],
                             data: JSONBody[ProgramPatch]) -> ProgramOut:
        return ProgramOut.of(
            await programs.update_program(state.pool, program_id, data.to_changes()))

    @post("/{program_id:uuid}/accounts", status_code=201,
          guards=[roles("admin", "manager"), in_path_program],
          summary="Create a manager (admin) or staff account (admin, or the program's manager)",
          responses=responses(403, 404, 409, 422))
    async def create_account(self, state: State, principal: Caller,
                             program_id: FromPath[uuid.UUID],
                             data: JSONBody[AccountIn]) -> AccountOut:
        return AccountOut.of(await accounts_repo.create_account(
            state.pool, state.hasher, actor_role=principal.role, program_id=program_id,
            email=data.email, password=data.password, role=data.role,
            store_ids=data.store_ids))


ROUTES: list[ControllerRouterHandler] = [ProgramsController]
