"""Privacy: the member's access log and export (erasure, `DELETE /v1/me`, sits with the
profile in `api/controllers/members.py`); operators' access log, export and erasure on a member's
request, and a logged support view; the public privacy notice.

Every operator route here that reads a member's data writes an access-log entry in the same
transaction (`wallet.access_log`). The notice and the purge are both built from
`retention_policy(settings)`, so the notice says what the purge does.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import (
    FromPath,
    FromQuery,
    Parameter,
    PathParameter,
    QueryParameter,
)
from litestar.types import ControllerRouterHandler
from msgspec import Meta

from api.auth.tokens import Caller, Principal, roles
from api.boundary import RFC3339, instant
from api.config import privacy_notice
from api.controllers import money_examples as ex
from api.controllers.admin import in_path_program
from api.errors import responses
from api.idempotency import IdempotencyKey, request_key, respond
from api.paging import Cursor, Limit, Page, decode_cursor, page_of
from wallet.kernel.errors import AccessDenied, RuleViolation
from wallet.kernel.text import NO_CONTROL
from wallet.ledger import payouts
from wallet.ledger.payouts import PayoutResult
from wallet.members.members_repo import Profile
from wallet.privacy import access_service, erasure, notice_service
from wallet.privacy import rights as privacy
from wallet.privacy.access_log import (
    Access,
    AccessPurpose,
    Action,
    Actor,
    ActorRole,
    Entry,
    MemberView,
)
from wallet.privacy.notice import Notice, ProgramRef
from wallet.privacy.notice_repo import Published
from wallet.privacy.rights import Export
from wallet.programs import programs

BREACH_WINDOW = timedelta(hours=72)


def _actor(principal: Principal) -> Actor:
    if principal.role == "member":  # guards keep members out; this is the type's proof
        raise AccessDenied("members do not read other members' data")
    return Actor(id=principal.sub, role=principal.role)


def _access(principal: Principal, action: Action, purpose: AccessPurpose, *,
            reason: str | None = None) -> Access:
    return Access(actor=_actor(principal), action=action, purpose=purpose, reason=reason)


Reason = Annotated[str, Meta(
    pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._:/#()-]{0,199}$", examples=["ticket 4411"],
    description="why: the reference of the request being handled, kept in the access log "
                "(which outlives an erasure): a reference, not personal data — letters, "
                "digits, spaces and . _ : / # ( ) - only")]


class OperatorRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason


class OperatorPayout(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Reason
    amount: Annotated[int, Meta(gt=0, le=10**12, description="minor units; default: all of "
                                                             "the purse")] | None = None
    reference: Annotated[str, Meta(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/#-]{0,99}$", examples=["SEPA-2026-000123"],
        description="how it was paid (a transfer's reference); kept with the books, so a "
                    "code, not personal data")] | None = None


class AccessLogItem(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    actor_role: ActorRole
    action: Action
    purpose: AccessPurpose
    store_id: uuid.UUID | None  # the store whose till read it, for till actions

    @classmethod
    def of(cls, v: MemberView) -> AccessLogItem:
        return cls(at=v.at, actor_role=v.actor_role, action=v.action, purpose=v.purpose,
                   store_id=v.store_id)


class SupportView(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    program_id: uuid.UUID
    email: str
    first_name: str
    locale: str
    created_at: datetime
    tier: str | None
    points_balance: int
    stored_value_balance: int
    currency: str

    @classmethod
    def of(cls, p: Profile) -> SupportView:
        return cls(id=p.id, program_id=p.program_id, email=p.email, first_name=p.first_name,
                   locale=p.locale, created_at=p.created_at, tier=p.tier,
                   points_balance=p.points_balance,
                   stored_value_balance=p.stored_value_balance, currency=p.currency)


def _before(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    key = decode_cursor(cursor)
    return (key.at, key.id) if key else None


NoticeVersionId = Annotated[str, PathParameter(pattern=r"^[0-9a-f]{16}$",
                                                description="a notice `version`")]


class NoticeVersion(msgspec.Struct, frozen=True, kw_only=True):
    version: str
    published_at: datetime  # first served
    current: bool  # the version served now

    @classmethod
    def of(cls, p: Published, current: str) -> NoticeVersion:
        return cls(version=p.version, published_at=p.published_at, current=p.version == current)


def _version_cursor(last: Published | None) -> tuple[datetime, uuid.UUID] | None:
    """The page's cursor: the (published_at, version) of its last item (a version is 64 bits
    of hex, carried as the cursor's id)."""
    return None if last is None else (last.published_at, uuid.UUID(int=int(last.version, 16)))


def _version_key(cursor: str | None) -> tuple[datetime, str] | None:
    key = decode_cursor(cursor)
    return None if key is None else (key.at, f"{key.id.int:016x}")


class NoticeController(Controller):
    path = "/v1"
    tags = ["privacy"]
    opt = {"exclude_from_auth": True}
    security = [{}]

    @get("/privacy/notice", summary="The privacy notice (public)",
         description="Generated from the running configuration: the purposes and what each "
                     "consent enables, data categories, retention periods, recipients. "
                     "`version` names this text: a consent's `policy_version` must be a "
                     "version that was published (the app shows the notice, then sends its "
                     "`version` with the member's choice; any other value → 422 "
                     "`/problems/unknown-policy-version`).",
         responses=responses())
    async def public_notice(self, state: State) -> Notice:
        return privacy_notice(state.settings)

    @get("/privacy/notice/versions", summary="Every version of the privacy notice (public)",
         description="Newest first: each version ever served, and when it was first. "
                     "`current` is the one served now.",
         responses={**responses(), **ex.ok(
             200, Page[NoticeVersion], "The current version and an earlier one",
             ex.notice_versions())})
    async def notice_versions(self, state: State, limit: Limit = 50,
                              cursor: Cursor = None) -> Page[NoticeVersion]:
        current = privacy_notice(state.settings).version
        rows = await notice_service.versions(state.pool, before=_version_key(cursor),
                                             limit=limit + 1)
        last = rows[limit - 1] if len(rows) > limit else None
        return page_of([NoticeVersion.of(r, current) for r in rows], limit,
                       _version_cursor(last))

    @get("/privacy/notice/versions/{version:str}",
         summary="One version of the privacy notice, as it was published (public)",
         description="The text a consent's `policy_version` points at. Unknown → 404.",
         responses={**responses(404), **ex.ok(200, Notice, "The notice as published",
                                               ex.notice_example())})
    async def notice_version(self, state: State, version: NoticeVersionId) -> Notice:
        return await notice_service.text_of(state.pool, version)

    @get("/programs/{program_id:uuid}/privacy/notice",
         summary="A program's privacy notice (public)", responses=responses(404))
    async def program_notice(self, state: State, program_id: FromPath[uuid.UUID]) -> Notice:
        p = await programs.get_program(state.pool, program_id)
        return privacy_notice(state.settings, ProgramRef(id=p.id, name=p.name))


class MePrivacyController(Controller):
    path = "/v1/me"
    tags = ["members"]
    guards = [roles("member")]

    @get("/access-log", summary="Who accessed my data, newest first",
         responses=responses(403))
    async def access_log(self, state: State, principal: Caller, limit: Limit = 50,
                         cursor: Cursor = None) -> Page[AccessLogItem]:
        rows = await access_service.access_log_of(state.pool, principal.sub, before=_before(cursor),
                                           limit=limit + 1)
        last = rows[limit - 1] if len(rows) > limit else None
        return page_of([AccessLogItem.of(r) for r in rows], limit,
                       (last.at, last.id) if last else None)

    @get("/export", summary="Everything held about me, machine-readable",
         responses=responses(403))
    async def export(self, state: State, principal: Caller) -> Export:
        return await privacy.export_member(state.pool, principal.sub)


class MemberSupportController(Controller):
    path = "/v1/programs/{program_id:uuid}/members/{member_id:uuid}"
    tags = ["operators"]
    guards = [roles("admin", "manager"), in_path_program]

    @get("/", summary="A member's profile and balances, to help them (logged)",
         responses=responses(403, 404))
    async def support_view(self, state: State, principal: Caller,
                           program_id: FromPath[uuid.UUID],
                           member_id: FromPath[uuid.UUID]) -> SupportView:
        return SupportView.of(await access_service.support_view(
            state.pool, program_id, member_id,
            _access(principal, "support.view", "member_support")))


LookupEmail = Annotated[str | None, Parameter(min_length=3, max_length=254, pattern=NO_CONTROL,
                                              description="the member's e-mail")]
LookupCard = Annotated[str | None, Parameter(pattern=r"^[0-9]{12,19}$",
                                             description="one of the member's card numbers")]


class MemberLookupController(Controller):
    path = "/v1/programs/{program_id:uuid}/members/lookup"
    tags = ["operators"]
    guards = [roles("admin", "manager"), in_path_program]

    @get("/", summary="Find a member by e-mail or card number, to help them (logged)",
         description="Exactly one of `email` and `card_number`. The read is recorded in the "
                     "member's access log like `GET .../members/{member_id}`.",
         responses=responses(403, 404, 422))
    async def lookup(self, state: State, principal: Caller, program_id: FromPath[uuid.UUID],
                     email: LookupEmail = None, card_number: LookupCard = None) -> SupportView:
        if (email is None) == (card_number is None):
            raise RuleViolation("give exactly one of email and card_number", field="email")
        return SupportView.of(await access_service.support_lookup(
            state.pool, program_id, _access(principal, "support.view", "member_support"),
            email=email, card_number=card_number))


FromTime = Annotated[str | None, QueryParameter(
    name="from", pattern=RFC3339, format="date-time", max_length=40,
    description=f"start of the window, RFC 3339 (default: `to` - {BREACH_WINDOW})")]
ToTime = Annotated[str | None, QueryParameter(
    name="to", pattern=RFC3339, format="date-time", max_length=40,
    description="end of the window, RFC 3339 (default: now)")]


class AdminPrivacyController(Controller):
    path = "/v1/admin"
    tags = ["operators"]
    guards = [roles("admin")]

    @get("/access-log", summary="Access-log entries in a window, e.g. one actor's (breaches)",
         description="Whose data an actor read between `from` and `to` (default: the last "
                     "72 hours), oldest first. `member_id` is null once a member is erased.",
         responses=responses(403))
    async def search(self, state: State, *, actor_id: FromQuery[uuid.UUID | None] = None,
                     member_id: FromQuery[uuid.UUID | None] = None, from_: FromTime = None,
                     to: ToTime = None, limit: Limit = 50,
                     cursor: Cursor = None) -> Page[Entry]:
        end = instant(to, "to") or datetime.now(UTC)
        start = instant(from_, "from") or end - BREACH_WINDOW
        rows = await access_service.search_access_log(
            state.pool, actor_id=actor_id, member_id=member_id, start=start, end=end,
            after=_before(cursor), limit=limit + 1)
        last = rows[limit - 1] if len(rows) > limit else None
        return page_of(rows, limit, (last.at, last.id) if last else None)

    @get("/members/{member_id:uuid}/export",
         summary="Export a member's data on their request (logged)",
         responses=responses(403, 404))
    async def export(self, state: State, principal: Caller,
                     member_id: FromPath[uuid.UUID]) -> Export:
        return await privacy.export_member(
            state.pool, member_id,
            logged=_access(principal, "admin.export", "data_subject_request"))

    @post("/members/{member_id:uuid}/erasure", status_code=204,
          summary="Erase a member on their request (logged, without the member)",
          description="`reason` (e.g. the request's ticket) is kept in the access-log "
                      "entry, which stays without the member. While the member's purse holds "
                      "stored value → 409 `/problems/stored-value-remaining` with "
                      "`stored_value_balance` and `currency`, and nothing is erased: pay it "
                      "out first (`POST /v1/admin/members/{member_id}/stored-value/payouts`).",
          responses=responses(403, 404, 409))
    async def erase(self, state: State, principal: Caller, member_id: FromPath[uuid.UUID],
                    data: Annotated[OperatorRequest, ex.body(
                        "The request being handled", ex.OPERATOR_ERASURE_IN)]) -> None:
        await erasure.erase_member(
            state.pool, member_id,
            logged=_access(principal, "admin.erasure", "data_subject_request",
                           reason=data.reason))

    @post("/members/{member_id:uuid}/stored-value/payouts", status_code=201,
          summary="Record a payout of a member's stored value on their request (logged)",
          description="An admin handling a member's request (typically before erasing them) "
                      "records that their stored value was paid to them outside the till "
                      "(e.g. a bank transfer: `reference`). `amount` defaults to the whole "
                      "purse; more than it holds → 422 `/problems/insufficient-balance`, an "
                      "empty purse → 422. A transaction of kind `payout` at no store, with "
                      "its ledger entry; the access log keeps `reason`. Idempotent: the same "
                      "`Idempotency-Key` and body replay the first answer.",
          responses={**responses(403, 404, 409, 422), **ex.ok(
              201, PayoutResult, "Recorded: the purse is empty", ex.OPERATOR_PAYOUT)})
    async def payout(self, request: Request[Any, Any, Any], state: State, *, principal: Caller,
                     member_id: FromPath[uuid.UUID],
                     data: Annotated[OperatorPayout, ex.body(
                         "The whole purse, paid by bank transfer", ex.OPERATOR_PAYOUT_IN)],
                     idempotency_key: IdempotencyKey) -> Response[PayoutResult]:
        return respond(await payouts.operator_payout(
            state.pool, member_id, amount=data.amount, reference=data.reference,
            logged=_access(principal, "admin.payout", "data_subject_request",
                           reason=data.reason),
            idem=request_key(request, principal.sub, idempotency_key, data)))


ROUTES: list[ControllerRouterHandler] = [NoticeController, MePrivacyController,
                                         MemberSupportController, MemberLookupController,
                                         AdminPrivacyController]
