"""A member's right of access: the complete, machine-readable export.

Export (`export`): everything held about the member, read by one statement (one consistent
snapshot): profile, cards, consents with history, preferences, the wallet account with its
ledger, transactions, points lots and tier points, visits, the last accepted ping, raw pings,
offers, reward vouchers, the access log, sessions, and wallet passes with their registered
devices. `EXPORTED_TABLES` names, for every table that holds a member's data, the export
section it lands in; a test compares it with the foreign keys of the schema, so a table added
later cannot be forgotten.

Erasure is in `erasure.py`; the access-log services in `access_service.py`.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

import asyncpg
import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.errors import NotFound
from wallet.kernel.model import LedgerEntry, PointsLot
from wallet.members import consents
from wallet.members.consents import Consents
from wallet.members.members_repo import gone
from wallet.privacy import access_log
from wallet.privacy.access_log import Access, MemberView

# Table → export section. Tables reached through members.wallet_account_id are exported via
# the wallet account; `members` and `wallet_accounts` are the profile and the wallet.
EXPORTED_TABLES: dict[str, str] = {
    "members": "member",
    "wallet_accounts": "wallet",
    "cards": "cards",
    "member_consents": "consents.history",
    "member_preferences": "preferences",
    "ledger_entries": "ledger",
    "transactions": "transactions",
    "points_lots": "points_lots",
    "tier_points_daily": "tier_points",
    "visits": "visits",
    "member_geo_state": "geo_state",
    "raw_pings": "raw_pings",
    "offers": "offers",
    "vouchers": "vouchers",
    "access_log": "access_log",
    "refresh_tokens": "sessions",
    "passes": "passes",  # with their device registrations (pass_registrations)
}


class MemberRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    program_id: uuid.UUID
    email: str
    first_name: str
    locale: str
    created_at: datetime
    updated_at: datetime
    last_active_at: datetime
    pin_set: bool  # the PIN itself is stored only as a hash, never exported
    pin_failures: int
    pin_locked_until: Annotated[datetime | None, msgspec.Meta(
        description="stored-value spending is locked until then, after too many wrong PINs "
                    "(null: not locked)")]
    pin_lock_pending_until: Annotated[datetime | None, msgspec.Meta(
        description="the lock is provisional until then: the PIN of the attempt that set it "
                    "is being verified (a right PIN lifts it, a wrong one confirms it; one "
                    "never verified is confirmed once this passes); null: not provisional")]


class WalletRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID  # the pseudonymous `member_ref` a till shows
    program_id: uuid.UUID
    currency: str
    tier: str | None
    points_balance: int
    stored_value_balance: int
    created_at: datetime


class CardRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    number: str
    status: str
    created_at: datetime


# A time of day on the wall clock, as PostgreSQL writes a `time` (`22:00:00`). A string, not a
# `time`: the OpenAPI document would call it a `duration`, which it is not.
TimeOfDay = Annotated[str, msgspec.Meta(description="time of day, HH:MM:SS",
                                        examples=["22:00:00"])]


class PreferencesRecord(msgspec.Struct, frozen=True, kw_only=True):
    max_offers_per_day: int | None
    quiet_from: TimeOfDay | None
    quiet_to: TimeOfDay | None
    channels: list[str]
    updated_at: datetime


class TransactionRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    at: datetime
    kind: str
    store_id: uuid.UUID | None  # None: an operator's payout, at no store
    receipt_id: str | None
    amount: int
    currency: str
    original_transaction_id: uuid.UUID | None
    points_earned: int
    points_redeemed: int
    stored_value_spent: int
    discount: int
    refunded_amount: int
    points_taken_back: int
    points_returned: int
    stored_value_returned: int
    points_shortfall: int
    reference: str | None = None  # payouts: how the operator paid it


class TierPointsRecord(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    points: int


class VisitRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    store_id: uuid.UUID
    entered_at: datetime
    last_seen_at: datetime
    dwell_at: datetime | None
    exited_at: datetime | None


class GeoStateRecord(msgspec.Struct, frozen=True, kw_only=True):
    last_ping_at: datetime
    last_lat: float
    last_lon: float


class RawPingRecord(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    lat: float
    lon: float
    accuracy_m: float
    expires_at: datetime


class OfferRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    campaign_id: uuid.UUID
    store_id: uuid.UUID
    title: str
    body: str
    reward_kind: str
    reward_value: int
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    redeemed_store_id: uuid.UUID | None
    redeemed_transaction_id: uuid.UUID | None


class VoucherRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A reward voucher the member claimed (with the points it cost and what came back)."""

    id: uuid.UUID
    reward_id: uuid.UUID
    code: str
    name: str
    kind: str
    value: int | None
    store_ids: list[uuid.UUID]
    points_spent: int
    points_returned: int
    status: str
    claimed_at: datetime
    expires_at: datetime
    used_at: datetime | None
    used_store_id: uuid.UUID | None
    used_transaction_id: uuid.UUID | None
    ended_at: datetime | None


class SessionRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A refresh token (only its hash is stored, and not exported)."""

    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class PassDeviceRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An Apple device registered for a pass's updates."""

    device_library_id: str
    push_token: str
    registered_at: datetime


class PassRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A wallet pass (its content is never stored: it shows the rest of this export)."""

    kind: str  # apple | google
    serial: str
    show_name: bool
    created_at: datetime
    modified_at: datetime
    devices: list[PassDeviceRecord]


class _Sections(msgspec.Struct, frozen=True, kw_only=True):
    exported_at: datetime
    member: MemberRecord
    wallet: WalletRecord
    cards: list[CardRecord]
    preferences: PreferencesRecord | None  # None: never set, the defaults apply
    ledger: list[LedgerEntry]
    transactions: list[TransactionRecord]
    points_lots: list[PointsLot]
    tier_points: list[TierPointsRecord]
    visits: list[VisitRecord]
    geo_state: GeoStateRecord | None
    raw_pings: list[RawPingRecord]
    offers: list[OfferRecord]
    vouchers: list[VoucherRecord]
    access_log: list[MemberView]
    sessions: list[SessionRecord]
    passes: list[PassRecord]


class Export(_Sections, frozen=True, kw_only=True):
    """Everything held about one member (see the module docstring)."""

    consents: Consents


class _Raw(_Sections, frozen=True, kw_only=True):
    consents: list[consents.ConsentRecord]  # the history; `Export` adds the current state


_raw = msgspec.json.Decoder(_Raw)


def _list(select: str, order: str) -> str:
    return f"(SELECT coalesce(json_agg(x ORDER BY {order}), '[]') FROM ({select}) x)"


EXPORT = f"""
SELECT json_build_object(
  'exported_at', now(),
  'member', (SELECT row_to_json(x) FROM (
      SELECT m.id, m.program_id, m.email, m.first_name, m.locale, m.created_at, m.updated_at,
             m.last_active_at, m.pin_hash IS NOT NULL AS pin_set, m.pin_failures,
             m.pin_locked_until, m.pin_lock_pending_until) x),
  'wallet', (SELECT row_to_json(x) FROM (
      SELECT w.id, w.program_id, p.currency, w.tier, w.points_balance, w.stored_value_balance,
             w.created_at) x),
  'cards', {_list("SELECT id, number, status, created_at FROM cards WHERE member_id = m.id",
                  "x.created_at, x.id")},
  'consents', {_list("SELECT id, purpose, granted, policy_version, source, recorded_at AS at "
                     "FROM member_consents WHERE member_id = m.id", "x.id")},
  'preferences', (SELECT row_to_json(x) FROM (
      SELECT max_offers_per_day, quiet_from, quiet_to, channels, updated_at
      FROM member_preferences WHERE member_id = m.id) x),
  'ledger', {_list("SELECT seq, id, at, kind, points, stored_value, store_id, transaction_id, "
                   "lot_id, points_balance_after, stored_value_balance_after "
                   "FROM ledger_entries WHERE wallet_account_id = w.id", "x.seq")},
  'transactions', {_list("SELECT * FROM transactions WHERE wallet_account_id = w.id",
                         "x.at, x.id")},
  'points_lots', {_list("SELECT * FROM points_lots WHERE wallet_account_id = w.id",
                        "x.earned_at, x.id")},
  'tier_points', {_list("SELECT day, points FROM tier_points_daily "
                        "WHERE wallet_account_id = w.id", "x.day")},
  'visits', {_list("SELECT * FROM visits WHERE member_id = m.id", "x.entered_at, x.id")},
  'geo_state', (SELECT row_to_json(x) FROM (
      SELECT last_ping_at, last_lat, last_lon FROM member_geo_state WHERE member_id = m.id) x),
  'raw_pings', {_list("SELECT at, lat, lon, accuracy_m, expires_at FROM raw_pings "
                      "WHERE member_id = m.id", "x.at")},
  'offers', {_list("SELECT * FROM offers WHERE member_id = m.id", "x.issued_at, x.id")},
  'vouchers', {_list("SELECT id, reward_id, code, name, kind, value, store_ids, points_spent, "
                     "points_returned, status, claimed_at, expires_at, used_at, used_store_id, "
                     "used_transaction_id, ended_at FROM vouchers WHERE wallet_account_id = w.id",
                     "x.claimed_at, x.id")},
  'access_log', {_list("SELECT id, at, actor_role, action, purpose, store_id FROM access_log "
                       "WHERE member_id = m.id", "x.at, x.id")},
  'sessions', {_list("SELECT created_at, expires_at, used_at, revoked_at FROM refresh_tokens "
                     "WHERE subject_id = m.id AND role = 'member'", "x.created_at")},
  'passes', {_list("SELECT s.kind, s.serial, s.show_name, s.created_at, s.modified_at, "
                   "(SELECT coalesce(json_agg(json_build_object("
                   "'device_library_id', r.device_library_id, 'push_token', r.push_token, "
                   "'registered_at', r.registered_at) ORDER BY r.registered_at), '[]') "
                   "FROM pass_registrations r WHERE r.pass_id = s.id) AS devices "
                   "FROM passes s WHERE s.member_id = m.id", "x.created_at, x.kind")}
)::text
FROM members m
JOIN wallet_accounts w ON w.id = m.wallet_account_id
JOIN programs p ON p.id = m.program_id
WHERE m.id = $1
"""


async def export(conn: Conn, member_id: uuid.UUID, *, logged: Access | None = None) -> Export:
    """Everything held about `member_id`; NotFound-like `gone()` if there is no such member.

    With `logged` (an operator exporting on the member's behalf), the read is recorded in
    the access log in the same transaction, and the export shows that entry too."""
    async with conn.transaction(isolation="repeatable_read"):
        if logged is not None:
            await access_log.record(conn, member_id, logged)
        text = await conn.fetchval(EXPORT, member_id)
    if text is None:
        raise NotFound("no such member") if logged is not None else gone()
    raw = _raw.decode(text)
    sections = {f: getattr(raw, f) for f in _Sections.__struct_fields__}
    return Export(**sections, consents=Consents(current=consents.current_state(raw.consents),
                                                history=raw.consents))


async def export_member(pool: asyncpg.Pool, member_id: uuid.UUID, *,
                        logged: Access | None = None) -> Export:
    """`export` on a pooled connection: the member's own request (`logged` None; an erased
    member is `gone()`), or an operator's on their behalf (logged; unknown → NotFound)."""
    async with pool.acquire() as conn:
        return await export(conn, member_id, logged=logged)
