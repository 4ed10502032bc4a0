"""The public privacy notice, generated — never written by hand.

`notice(policy, context)` builds it from the same `RetentionPolicy` that drives the purge and
the same consent purposes (`wallet.members.consents.PURPOSES`) that the consent records and
checks use, so the notice cannot promise one thing while the system does another. Pure: no
I/O, no clock.

What each consent purpose enables, and what does *not* need it, is defined here once:
* `location_offers`: pings become visits and can trigger drive-to-store offers (checked on
  every ping batch, in its transaction: `geo.pings.ingest`).
* `marketing`: messages not triggered by a visit (newsletters, campaigns by e-mail or SMS).
* `personalisation`: profiling — choosing what a member sees from their own visit or
  purchase history or a segment derived from it. Not profiling: the member's tier (earned
  under the program's published rules) or the store they are at choosing an offer.
* `partner_sharing`: giving member data to partner brands. No partner integration exists:
  nothing is shared, whatever the consent says (the notice says so).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from typing import Literal

import msgspec

from wallet.members.consents import PURPOSES, Purpose
from wallet.privacy.retention import RetentionPolicy


class PurposeInfo(msgspec.Struct, frozen=True, kw_only=True):
    purpose: Purpose
    title: str
    enables: str
    data_used: list[str]
    without_consent: str


PURPOSE_INFO: dict[Purpose, PurposeInfo] = {p.purpose: p for p in (
    PurposeInfo(
        purpose="location_offers", title="Location-based offers",
        enables="The app sends your location; the program records when you enter, stay in "
                "and leave its stores (visits) and may show you an offer for the store you "
                "are at or near.",
        data_used=["location pings (latitude, longitude, accuracy, time)", "visits"],
        without_consent="No location is accepted or processed; no location-based offer."),
    PurposeInfo(
        purpose="marketing", title="Marketing messages",
        enables="Program news and offers that are not triggered by a visit, through the "
                "channels you choose, within your daily cap and quiet hours.",
        data_used=["e-mail", "first name", "contact preferences"],
        without_consent="No marketing message is sent to you."),
    PurposeInfo(
        purpose="personalisation", title="Personalisation (profiling)",
        enables="Offers and content chosen from your own visit and purchase history or a "
                "segment derived from it. Your tier, earned under the program's published "
                "rules, and the store you are at are not profiling and do not need this "
                "consent.",
        data_used=["visits", "purchases and points history"],
        without_consent="Offers are chosen only by store, time, weather and tier."),
    PurposeInfo(
        purpose="partner_sharing", title="Sharing with partners",
        enables="Sharing your membership data with partner brands of the program. No "
                "partner sharing exists today: nothing is shared with anyone, whatever you "
                "choose here.",
        data_used=[],
        without_consent="Nothing is shared with partners."),
)}
if set(PURPOSE_INFO) != set(PURPOSES):  # pragma: no cover - a purpose without a description
    raise RuntimeError("every consent purpose needs a description in wallet/privacy/notice.py")

RetentionClass = Literal["visits", "raw_pings", "expired_offers", "access_log",
                         "withdrawn_consents", "idle_accounts", "idempotency_keys", "sessions"]

_RETENTION_TEXT: dict[RetentionClass, tuple[str, str]] = {
    "visits": ("Store visits (enter, stay, leave)", "deleted after the visit ended"),
    "raw_pings": ("Raw location pings", "deleted after the ping (a period of 0: never stored)"),
    "expired_offers": ("Offers issued to you", "detached from you after the offer expired "
                                               "(kept anonymously for campaign statistics)"),
    "access_log": ("Who accessed your data", "deleted after the access"),
    "withdrawn_consents": ("Records of a consent you withdrew",
                           "deleted after the withdrawal (kept until then as proof)"),
    "idle_accounts": ("Your account, if unused",
                      "erased after your last login, location ping or purchase (not while it "
                      "holds stored value)"),
    "idempotency_keys": ("Records of retried requests", "deleted after the request"),
    "sessions": ("Login sessions (refresh tokens)", "deleted when they expire"),
}
if set(_RETENTION_TEXT) != set(RetentionPolicy.__struct_fields__):  # pragma: no cover
    raise RuntimeError("every retention class needs a description in wallet/privacy/notice.py")


class Retention(msgspec.Struct, frozen=True, kw_only=True):
    data_class: RetentionClass
    data: str
    period_s: int
    period: str  # the same, for people: "180 days", "24 hours", "not stored"
    rule: str


class Category(msgspec.Struct, frozen=True, kw_only=True):
    category: str
    fields: list[str]
    why: str
    kept: str


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    recipient: str
    receives: str
    logged: bool  # every access is in the member's access log


class Right(msgspec.Struct, frozen=True, kw_only=True):
    right: str
    how: str


class ProgramRef(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    name: str


class NoticeContext(msgspec.Struct, frozen=True, kw_only=True):
    """What the notice needs besides the retention policy (from the settings)."""

    controller: str
    contact: str
    push_webhook: bool  # offers are delivered to a push service
    program: ProgramRef | None = None
    apple_passes: bool = False  # Apple Wallet passes are offered (and APNs pushes)
    google_passes: bool = False  # Google Wallet passes are offered
    google_updates: bool = False  # saved Google objects are kept current through Google's API
    pass_farewell_days: int = 30


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    # A digest of everything below but `program`: it changes whenever the terms do. Every
    # version served is kept (`notice_service.publish`) and a consent's `policy_version`
    # must name one.
    version: str
    controller: str
    contact: str
    program: ProgramRef | None
    consent_purposes: list[PurposeInfo]
    other_purposes: list[str]
    data_categories: list[Category]
    sensitive_data: str
    retention: list[Retention]
    recipients: list[Recipient]
    rights: list[Right]


def _human(period: timedelta) -> str:
    s = int(period.total_seconds())
    if s == 0:
        return "not stored"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if s % size == 0:
            n = s // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{s} seconds"


def retention_of(policy: RetentionPolicy) -> list[Retention]:
    """Every data class of the policy, with its period."""
    out: list[Retention] = []
    for name, (data, rule) in _RETENTION_TEXT.items():
        period: timedelta = getattr(policy, name)
        out.append(Retention(data_class=name, data=data, period_s=int(period.total_seconds()),
                             period=_human(period), rule=rule))
    return out


def _categories(policy: RetentionPolicy, context: NoticeContext) -> list[Category]:
    h = _human
    passes = [Category(
        category="wallet passes",
        fields=["pass serial number and its update token",
                "for Apple Wallet: the identifiers and push tokens of the devices that "
                "registered the pass", "whether your first name is shown on it"],
        why="your card in your phone's wallet, kept current (at your request: you add it)",
        kept=f"until you remove the pass or erasure; at erasure the pass is voided and the "
             f"devices may fetch the void pass for {context.pass_farewell_days} days, without "
             "anything that leads to you")] if context.apple_passes or context.google_passes \
        else []
    return [
        Category(category="identity", fields=["e-mail", "first name", "language",
                                              "password (hashed)"],
                 why="your membership", kept=f"until erasure, or {h(policy.idle_accounts)} "
                                             "without activity"),
        Category(category="card", fields=["card number", "status", "PIN (hashed)"],
                 why="your membership, at the till", kept="until erasure"),
        Category(category="consents and preferences",
                 fields=["each choice with its time, policy version and channel",
                         "daily cap, quiet hours, channels"],
                 why="proof of consent, honouring your choices",
                 kept=f"until erasure; a withdrawn purpose's records "
                      f"{h(policy.withdrawn_consents)} after the withdrawal"),
        Category(category="wallet", fields=["points and stored-value ledger", "transactions",
                                            "points lots", "tier"],
                 why="your membership; accounting obligation",
                 kept="as accounting law requires; at erasure (once any stored value is "
                      "paid out to you) it is detached from you and kept under a pseudonym "
                      "that no longer leads to you"),
        Category(category="location", fields=["visits", "last accepted position",
                                              "raw pings (only if configured)"],
                 why="location-based offers (with your consent only)",
                 kept=f"visits {h(policy.visits)}; raw pings {h(policy.raw_pings)}; "
                      "the last position is replaced by each ping"),
        Category(category="offers", fields=["offers issued to you and their redemption"],
                 why="location-based offers",
                 kept=f"{h(policy.expired_offers)} after expiry, then anonymous"),
        Category(category="access log", fields=["when, who (role), what and why"],
                 why="accountability; breach notification",
                 kept=h(policy.access_log)),
        Category(category="sessions", fields=["login sessions", "records of retried requests"],
                 why="security; not counting a retried request twice",
                 kept=f"sessions until they expire; retried requests "
                      f"{h(policy.idempotency_keys)}"),
        *passes,
    ]


def _recipients(context: NoticeContext) -> list[Recipient]:
    out = [
        Recipient(recipient="store staff of the program",
                  receives="at the till, when your card is scanned: first name, tier, "
                           "balances and your offers", logged=True),
        Recipient(recipient="the program's managers",
                  receives="campaign statistics (aggregates); your account when they help "
                           "you", logged=True),
        Recipient(recipient="the operator's administrators",
                  receives="your data when answering your requests (export, erasure)",
                  logged=True),
    ]
    if context.push_webhook:
        out.append(Recipient(recipient="the app's push-notification service",
                             receives="offers to show you (title, text, expiry)",
                             logged=False))
    if context.apple_passes:
        out.append(Recipient(
            recipient="Apple (push notification service)",
            receives="a content-free notification to your device's push token when your pass "
                     "changed; your phone then fetches the pass from us. The store locations on "
                     "the pass are used by the phone itself: no location is sent to anyone",
            logged=False))
    if context.google_passes:
        out.append(Recipient(
            recipient="Google (Google Wallet), if you save your card there",
            receives="card number, points and stored-value balance, tier, offer titles, and "
                     "your first name only if you chose to show it"
                     + ("; updated whenever they change" if context.google_updates else ""),
            logged=context.google_updates))
    out.append(Recipient(recipient="partners", receives="nothing: no partner sharing exists",
                         logged=False))
    return out


_RIGHTS = [
    Right(right="access and portability",
          how="GET /v1/me/export: everything held about you, as JSON"),
    Right(right="see who accessed your data", how="GET /v1/me/access-log"),
    Right(right="rectification", how="PATCH /v1/me"),
    Right(right="erasure",
          how="DELETE /v1/me, with your password: at once, tokens and card stop working. "
              "Stored value is never forfeited: while your purse holds money, the erasure "
              "waits until it is paid out to you (see the next right), and says how much"),
    Right(right="get your stored value back",
          how="at any till of the program, in cash, with your PIN "
              "(POST /v1/pos/stored-value/payouts), or by asking the operator, who pays it "
              "to you (e.g. by bank transfer) and records it in your ledger before an "
              "erasure"),
    Right(right="withdraw or give consent",
          how="PUT /v1/me/consents/{purpose}: takes effect at once"),
    Right(right="choose how often and when you hear from us", how="PUT /v1/me/preferences"),
]

_encoder = msgspec.json.Encoder(order="deterministic")


def notice(policy: RetentionPolicy, context: NoticeContext) -> Notice:
    """The notice for these settings (and program, if any)."""
    draft = Notice(
        version="", controller=context.controller, contact=context.contact,
        program=context.program,
        consent_purposes=[PURPOSE_INFO[p] for p in PURPOSES],
        other_purposes=[
            "your membership (contract): account, card, points, stored value, tier, till",
            "accounting (legal obligation): transactions and ledger",
            "security and accountability (legitimate interest): access log, sessions",
            *(["your card in your phone's wallet (at your request): Apple Wallet or Google "
               "Wallet passes kept current"]
              if context.apple_passes or context.google_passes else [])],
        data_categories=_categories(policy, context),
        sensitive_data="none: no health, religion, political opinion, ethnic origin, sex "
                       "life or orientation, criminal conviction, biometric or genetic data "
                       "is collected, and the database has no place for it",
        retention=retention_of(policy), recipients=_recipients(context), rights=_RIGHTS)
    # The program only names whose notice it is: every program's notice has the terms (and
    # so the version) of the operator's.
    digest = hashlib.sha256(_encoder.encode(
        msgspec.structs.replace(draft, program=None))).hexdigest()[:16]
    return msgspec.structs.replace(draft, version=digest)
