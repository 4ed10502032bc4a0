"""Members (mobile app): signup, then `/v1/me` — profile, card, PIN, consents, preferences.

Everything under `/v1/me` is the caller's own data, by construction: the member id comes from
the token, never from the request. A token whose member was erased is 401.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Annotated, Literal

import msgspec
from litestar import Controller, delete, get, patch, post, put
from litestar.datastructures import State
from litestar.params import FromPath, JSONBody
from litestar.types import ControllerRouterHandler
from msgspec import UNSET, Meta, UnsetType

from api.auth import sessions
from api.auth.tokens import Caller, TokenService, roles
from api.config import pin_policy
from api.controllers import money_examples as ex
from api.controllers.auth import Email
from api.errors import responses
from wallet.kernel.localtime import local
from wallet.kernel.text import Text
from wallet.ledger import pin_service
from wallet.members import consents, consents_service
from wallet.members import members_service as members
from wallet.members.consents import Channel, Consents, ConsentState, Preferences, Purpose
from wallet.members.members_repo import Card, Profile
from wallet.members.sessions_repo import Identity
from wallet.privacy import erasure

FirstName = Annotated[Text, Meta(min_length=1, max_length=100)]
Locale = Annotated[str, Meta(pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", max_length=35,
                             examples=["fr-FR"])]
PolicyVersion = Annotated[Text, Meta(min_length=1, max_length=64, examples=["2024-05"])]
Source = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]{0,31}$", examples=["app", "web"],
                             description="the channel the choice was made in")]
HHMM = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["22:00"])]


class ConsentIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    purpose: Purpose
    granted: bool
    policy_version: PolicyVersion
    source: Source = consents.DEFAULT_SOURCE


class SignupIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Email
    password: Annotated[Text, Meta(min_length=8, max_length=200)]
    first_name: FirstName
    locale: Locale = "en"
    consents: Annotated[list[ConsentIn], Meta(max_length=4)] = []


class MemberOut(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    program_id: uuid.UUID
    email: str
    first_name: str
    locale: str
    tier: str | None
    points_balance: int
    stored_value_balance: int  # minor units of `currency`
    currency: str
    next_expiry: NextExpiry | None  # None: no points will expire

    @classmethod
    def of(cls, p: Profile) -> MemberOut:
        expiry = None
        if p.next_expiry_at is not None and p.next_expiry_points:
            at = local(p.next_expiry_at, p.timezone)
            expiry = NextExpiry(at=at, date=at.date(), points=p.next_expiry_points)
        return cls(id=p.id, program_id=p.program_id, email=p.email, first_name=p.first_name,
                   locale=p.locale, tier=p.tier, points_balance=p.points_balance,
                   stored_value_balance=p.stored_value_balance, currency=p.currency,
                   next_expiry=expiry)


class NextExpiry(msgspec.Struct, frozen=True, kw_only=True):
    """The next points to expire: `points` expire on `date` (the program's local date), the
    first of them at `at` (with the program's UTC offset)."""

    at: datetime
    date: date
    points: int


class Qr(msgspec.Struct, frozen=True, kw_only=True):
    payload: str  # a signed card token: show it as a QR code, it expires at `expires_at`
    expires_at: datetime


class CardOut(msgspec.Struct, frozen=True, kw_only=True):
    card_number: str
    qr: Qr

    @classmethod
    def of(cls, card: Card, tokens: TokenService) -> CardOut:
        payload, exp = tokens.mint_card(card_id=card.id, member_id=card.member_id,
                                        program_id=card.program_id)
        return cls(card_number=card.number,
                   qr=Qr(payload=payload, expires_at=datetime.fromtimestamp(exp, UTC)))


class SignupOut(msgspec.Struct, frozen=True, kw_only=True):
    member: MemberOut
    card: CardOut
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int


class ProfilePatch(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Email | UnsetType = UNSET
    first_name: FirstName | UnsetType = UNSET
    locale: Locale | UnsetType = UNSET

    def to_changes(self) -> members.ProfileChanges:
        def keep(v: str | UnsetType) -> str | None:
            return None if isinstance(v, UnsetType) else v

        return members.ProfileChanges(email=keep(self.email), first_name=keep(self.first_name),
                                      locale=keep(self.locale))


Pin = Annotated[str, Meta(pattern=r"^[0-9]{5}$", description="exactly 5 digits")]
Password = Annotated[Text, Meta(min_length=1, max_length=200,
                               description="the member's password, to confirm it is them")]


class PinIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The new PIN, confirmed with the password and, once a PIN is set, the current one."""

    pin: Pin
    password: Password
    current_pin: Pin | None = None


class EraseIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    password: Password


class ConsentPut(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    granted: bool
    policy_version: PolicyVersion
    source: Source = consents.DEFAULT_SOURCE


class QuietHoursIO(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Wall-clock times in the program's time zone; `from` after `to` spans midnight."""

    from_: HHMM = msgspec.field(name="from")
    to: HHMM

    def to_domain(self) -> consents.QuietHours:
        return consents.QuietHours(start=time.fromisoformat(self.from_),
                                   end=time.fromisoformat(self.to))


Channels = Annotated[list[Channel], Meta(max_length=4)]


class PreferencesIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Absent fields are kept; `null` clears the daily cap or the quiet hours."""

    max_offers_per_day: Annotated[int, Meta(ge=0, le=100)] | UnsetType | None = UNSET
    quiet_hours: QuietHoursIO | UnsetType | None = UNSET
    channels: Channels | UnsetType = UNSET

    def to_changes(self) -> consents.PreferenceChanges:
        q = self.quiet_hours
        return consents.PreferenceChanges(
            max_offers_per_day=self.max_offers_per_day,
            quiet_hours=q.to_domain() if isinstance(q, QuietHoursIO) else q,
            channels=self.channels)


class PreferencesOut(msgspec.Struct, frozen=True, kw_only=True):
    max_offers_per_day: int | None  # null: no personal cap
    quiet_hours: QuietHoursIO | None
    channels: list[Channel]

    @classmethod
    def of(cls, p: Preferences) -> PreferencesOut:
        q = p.quiet_hours
        return cls(max_offers_per_day=p.max_offers_per_day, channels=list(p.channels),
                   quiet_hours=None if q is None else QuietHoursIO(
                       from_=q.start.strftime("%H:%M"), to=q.end.strftime("%H:%M")))


class SignupController(Controller):
    path = "/v1/programs/{program_id:uuid}/members"
    tags = ["members"]
    opt = {"exclude_from_auth": True}
    security = [{}]

    @post("/", status_code=201, summary="Join a program (no token needed)",
          description="No consent is granted unless listed in `consents`. Sign-ups are "
                      "rate-limited per client address like logins (429 with Retry-After).",
          responses=responses(404, 409, 422, 429))
    async def signup(self, state: State, program_id: FromPath[uuid.UUID],
                     data: JSONBody[SignupIn]) -> SignupOut:
        member_id = uuid.uuid4()
        tokens, session = sessions.mint(
            state.tokens, Identity(id=member_id, role="member", program_id=program_id))
        done = await members.signup(
            state.pool, state.hasher, program_id=program_id, email=data.email,
            password=data.password, first_name=data.first_name, locale=data.locale,
            given_consents=[consents.ConsentChange(
                purpose=c.purpose, granted=c.granted, policy_version=c.policy_version,
                source=c.source) for c in data.consents],
            member_id=member_id, session=session)
        return SignupOut(member=MemberOut.of(done.profile),
                         card=CardOut.of(done.card, state.tokens),
                         access_token=tokens.access_token,
                         refresh_token=tokens.refresh_token,
                         expires_in=tokens.expires_in)


class MeController(Controller):
    path = "/v1/me"
    tags = ["members"]
    guards = [roles("member")]

    @get("/", summary="My profile, tier and balances", responses=responses(403))
    async def me(self, state: State, principal: Caller) -> MemberOut:
        return MemberOut.of(await members.profile_of(state.pool, principal.sub))

    @patch("/", summary="Correct my profile", responses=responses(403, 409))
    async def correct(self, state: State, principal: Caller,
                      data: JSONBody[ProfilePatch]) -> MemberOut:
        return MemberOut.of(
            await members.correct_profile(state.pool, principal.sub, data.to_changes()))

    @delete("/", status_code=204, summary="Erase me (with my password)",
            description="Re-authenticated: the body gives the member's password (wrong → 403 "
                        "`/problems/wrong-password`; attempts are rate-limited per client "
                        "address like logins, 429). While the purse holds stored value → 409 "
                        "`/problems/stored-value-remaining` with `stored_value_balance` and "
                        "`currency`, and nothing is erased: have it paid out first (at a till "
                        "with the PIN, `POST /v1/pos/stored-value/payouts`, or by the "
                        "operator). Then at once: personal data deleted or detached, tokens, "
                        "card and QR codes dead; the financial ledger stays, under a "
                        "pseudonym that no longer leads to you.",
            responses=responses(403, 409, 429))
    async def erase(self, state: State, principal: Caller,
                    data: Annotated[EraseIn, ex.body("My password", ex.ERASE_ME_IN)]) -> None:
        await erasure.erase_self(state.pool, state.hasher, principal.sub, data.password)

    @get("/card", summary="My card number and a short-lived QR payload",
         responses=responses(403, 404))
    async def card(self, state: State, principal: Caller) -> CardOut:
        return CardOut.of(await members.card_of(state.pool, principal.sub), state.tokens)

    @put("/pin", status_code=204, summary="Set or change my 5-digit stored-value PIN",
         description="Re-authenticated: `password` always (wrong → 403 "
                     "`/problems/wrong-password`), and `current_pin` once a PIN is set "
                     "(missing → 422 `/problems/pin-required`; wrong → 422 "
                     "`/problems/wrong-pin` with `attempts_left`, counted with the till's "
                     "wrong PINs; locked → 422 `/problems/pin-locked` with `locked_until`; "
                     "other PIN checks in flight → 409 `/problems/pin-check-in-progress`, "
                     "retry after `Retry-After`). Rate-limited per client address like logins "
                     "(429). The PIN is stored hashed and never returned.",
         responses=responses(403, 422, 429, pin=True))
    async def set_pin(self, state: State, principal: Caller,
                      data: Annotated[PinIn, ex.body("A change of PIN", ex.CHANGE_PIN_IN)]
                      ) -> None:
        await pin_service.change_pin(
            state.pool, state.hasher, principal.sub, pin=data.pin, password=data.password,
            current_pin=data.current_pin, policy=pin_policy(state.settings))

    @get("/consents", summary="My consents: current state and full history with proof",
         responses=responses(403))
    async def get_consents(self, state: State, principal: Caller) -> Consents:
        return await consents_service.consents_of(state.pool, principal.sub)

    @put("/consents/{purpose:str}", summary="Grant or withdraw consent for one purpose",
         description="`policy_version` must name a published version of the privacy notice "
                     "(`GET /v1/privacy/notice/versions`); another is a 422 "
                     "/problems/unknown-policy-version naming the field, with "
                     "`latest_version`.",
         responses=responses(403, 422))
    async def set_consent(self, state: State, principal: Caller,
                          purpose: FromPath[Purpose], data: JSONBody[ConsentPut]) -> ConsentState:
        change = consents.ConsentChange(purpose=purpose, granted=data.granted,
                                        policy_version=data.policy_version, source=data.source)
        return await consents_service.record_consent(state.pool, principal.sub, change)

    @get("/preferences", summary="My contact preferences", responses=responses(403))
    async def preferences(self, state: State, principal: Caller) -> PreferencesOut:
        return PreferencesOut.of(await consents_service.preferences_of(state.pool, principal.sub))

    @put("/preferences", summary="Change my contact preferences (absent fields are kept)",
         responses=responses(403, 422))
    async def set_preferences(self, state: State, principal: Caller,
                              data: JSONBody[PreferencesIn]) -> PreferencesOut:
        return PreferencesOut.of(
            await consents_service.update_preferences(state.pool, principal.sub, data.to_changes()))


ROUTES: list[ControllerRouterHandler] = [SignupController, MeController]
