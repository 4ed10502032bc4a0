"""An earn-only till purchase in ONE statement (issue 13): checks, picks, writes, commits.

The service (`wallet/ledger/earn_fast.py`) has already decided, with the pure rules, what the
purchase earns at each tier the member may be in (a *band*: below every tier, or at tier k),
and encoded the answer around the two figures only the database knows (the balances after).
This statement then, in one snapshot and one transaction of its own:

1. finds the card (by id or number) in the caller's program with its member and wallet
   account, and checks the preconditions: the card is active, the store is a live store of
   the program, the program's `rules_version` is the one the service computed with
   (migration 0018), no lot of the account is due (a due lot is expired by the purchase: the
   two-trip path does that), and the Idempotency-Key is not stored yet;
2. sums the member's points of the trailing 12 months (`account_repo._points_12m`'s measure)
   and picks the band by threshold: a comparison only, the arithmetic was Python's;
3. updates the account row, only if it is still at the version the snapshot saw (`xmin`):
   a concurrent writer committed since → the row is skipped, and since every other write
   reads from that update, nothing at all is written;
4. appends from that update's row: the transaction, the earn lot and its ledger entry (its
   balance after = the account's new balance: the chain trigger and the commit-time check
   run as for every write), the day's tier points, the account's new tier, the access-log
   entry of the staff read and the response under the Idempotency-Key.

When a precondition fails or the account moved, nothing is written and the answer says why:
the service then runs the two-trip path, which raises the exact error or writes the exact
outcome. A stored key comes back with the row (a replay, or a 409 for another request) when
the card, store and rules checks pass (the two-trip path checks the card before replaying).
Unique violations are mapped as `ledger_repo.apply` maps them (a receipt recorded twice, a
concurrent request with the same key).
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from wallet.kernel.db import Conn
from wallet.kernel.idempotency_repo import IdemKey, StoredResponse
from wallet.ledger import account_repo, ledger_repo
from wallet.ledger.rules import EarnRules
from wallet.privacy.access_log import Access


class ProgramRules(msgspec.Struct, frozen=True, kw_only=True):
    """What an earn-only purchase computes with, at `version` of the program's rules."""

    program_id: uuid.UUID
    version: int
    currency: str
    rules: EarnRules
    max_purchase_amount: int  # the program's limit (`wallet/ledger/limits.py`)


PROGRAM_RULES = """
SELECT id, rules_version, currency, earn_points, earn_per_amount, points_expiry_days,
       tiers::text AS tiers, max_purchase_amount
FROM programs WHERE id = $1
"""


async def program_rules(conn: Conn, program_id: uuid.UUID) -> ProgramRules | None:
    """The program's earning rules and their version (None: no such program)."""
    row = await conn.fetchrow(PROGRAM_RULES, program_id)
    if row is None:
        return None
    return ProgramRules(program_id=row["id"], version=row["rules_version"],
                        currency=row["currency"].strip(), rules=account_repo.earn_rules(row),
                        max_purchase_amount=row["max_purchase_amount"])


class Bands(msgspec.Struct, frozen=True, kw_only=True):
    """The precomputed outcomes, one per band (1-based in SQL): band 1 is below every tier
    (or the only band without tiers), band k + 1 is tier k (tiers ascending). The band of a
    member is 1 + the number of `thresholds` their 12-month points reach."""

    thresholds: list[int]  # each tier's min_points_12m, ascending
    earned: list[int]  # points earned by this purchase, per band
    tier_names: list[str | None]  # the account's tier in each band (None: no tier)
    body_pre: list[str]  # the response, per band: pre + points balance + mid
    body_mid: list[str]  # + stored value balance + post
    body_post: list[str]


class Fast(msgspec.Struct, frozen=True, kw_only=True):
    """Everything of one earn-only purchase that does not depend on the account's state."""

    program_id: uuid.UUID
    rules_version: int
    store_id: uuid.UUID
    now: datetime
    idem: IdemKey
    bands: Bands
    set_tier: bool  # the program has tiers: the account's tier is recomputed
    tx_id: uuid.UUID
    receipt_id: str
    amount: int
    currency: str
    lot_id: uuid.UUID
    entry_id: uuid.UUID
    expires_at: datetime
    access: Access


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """What the statement did: `body` is the response it stored (written); else `stored`
    is the key's stored response (a replay), else `reason` says why nothing was written."""

    body: bytes | None = None
    stored: StoredResponse | None = None
    reason: str = ""


# $1 card, $2 program, $3 store, $4/$5 key scope and key, $6 rules version, $7 now,
# $8 today (UTC), $9 thresholds, $10 earned per band, $11 tier names, $12 set the tier,
# $13 transaction id, $14 staff, $15 receipt, $16 amount, $17 currency, $18 lot id,
# $19 entry id, $20 lot expiry, $21 request hash, $22-$24 the response's pieces,
# $25-$27 the access log's role, action and purpose.
_EARN = """
WITH
stored AS (
  SELECT request_hash, status_code, response_body FROM idempotency_keys
   WHERE scope = $4::text AND key = $5::text),
card AS (
  SELECT w.id AS account_id, m.id AS member_id, w.points_balance, w.xmin::text AS version,
         c.status = 'active' AS card_ok, p.rules_version = $6::bigint AS rules_ok,
         EXISTS (SELECT 1 FROM stores s WHERE s.id = $3::uuid AND s.program_id = c.program_id
                                          AND s.deleted_at IS NULL) AS store_ok,
         EXISTS (SELECT 1 FROM points_lots l WHERE l.wallet_account_id = w.id
                    AND l.remaining > 0 AND l.expires_at <= $7::timestamptz) AS due,
         (SELECT coalesce(sum(d.points), 0)::bigint FROM tier_points_daily d
           WHERE d.wallet_account_id = w.id AND d.day > $8::date - 365) AS points_12m
    FROM cards c
    JOIN members m ON m.id = c.member_id
    JOIN wallet_accounts w ON w.id = m.wallet_account_id
    JOIN programs p ON p.id = c.program_id
   WHERE c.program_id = $2::uuid AND {card}),
pick AS (
  SELECT card.*, band, ($10::bigint[])[band] AS earned
    FROM card, LATERAL (SELECT 1 + count(*)::int AS band FROM unnest($9::bigint[]) t
                         WHERE t <= card.points_12m) b
   WHERE card.card_ok AND card.rules_ok AND card.store_ok AND NOT card.due
     AND NOT EXISTS (SELECT FROM stored)),
account AS (
  UPDATE wallet_accounts w SET points_balance = pick.points_balance + pick.earned,
         tier = CASE WHEN $12::boolean THEN ($11::text[])[
                  (SELECT 1 + count(*)::int FROM unnest($9::bigint[]) t
                    WHERE t <= pick.points_12m + pick.earned)] ELSE w.tier END
    FROM pick
   WHERE w.id = pick.account_id AND w.xmin::text = pick.version
  RETURNING w.id, w.points_balance, w.stored_value_balance, pick.member_id, pick.band,
            pick.earned),
tx AS (
  INSERT INTO transactions (id, program_id, wallet_account_id, store_id, staff_id, kind,
                            receipt_id, amount, currency, points_earned, at)
  SELECT $13::uuid, $2::uuid, a.id, $3::uuid, $14::uuid, 'purchase', $15::text,
         $16::bigint, $17::text, a.earned, $7::timestamptz FROM account a RETURNING 1),
lot AS (
  INSERT INTO points_lots (id, wallet_account_id, source, transaction_id, earned_at,
                           expires_at, points, remaining)
  SELECT $18::uuid, a.id, 'earn', $13::uuid, $7::timestamptz, $20::timestamptz, a.earned,
         a.earned FROM account a WHERE a.earned > 0 RETURNING 1),
entry AS (
  INSERT INTO ledger_entries (id, wallet_account_id, program_id, at, kind, points, stored_value,
                              store_id, transaction_id, lot_id, points_balance_after,
                              stored_value_balance_after)
  SELECT $19::uuid, a.id, $2::uuid, $7::timestamptz, 'earn', a.earned, 0, $3::uuid,
         $13::uuid, $18::uuid, a.points_balance, a.stored_value_balance
    FROM account a WHERE a.earned > 0 RETURNING 1),
tier_day AS (
  INSERT INTO tier_points_daily (wallet_account_id, day, points)
  SELECT a.id, $8::date, a.earned FROM account a WHERE a.earned <> 0
  ON CONFLICT (wallet_account_id, day)
  DO UPDATE SET points = tier_points_daily.points + EXCLUDED.points RETURNING 1),
body AS (
  SELECT convert_to(($22::text[])[a.band] || a.points_balance::text || ($23::text[])[a.band]
                    || a.stored_value_balance::text || ($24::text[])[a.band], 'UTF8') AS b
    FROM account a),
idem AS (
  INSERT INTO idempotency_keys (scope, key, request_hash, status_code, response_body)
  SELECT $4::text, $5::text, $21::bytea, 201, body.b FROM body RETURNING 1),
access AS (
  INSERT INTO access_log (member_id, program_id, actor_id, actor_role, action, purpose,
                          store_id, at)
  SELECT a.member_id, $2::uuid, $14::uuid, $25::text, $26::text, $27::text, $3::uuid,
         $7::timestamptz FROM account a RETURNING 1)
SELECT c.card_ok, c.rules_ok, c.store_ok, c.due, (SELECT b FROM body) AS body,
       s.request_hash, s.status_code, s.response_body
FROM (SELECT 1) AS one
LEFT JOIN card c ON true
LEFT JOIN stored s ON true
"""
EARN_BY_ID = _EARN.format(card="c.id = $1::uuid")
EARN_BY_NUMBER = _EARN.format(card="c.number = $1::text")


async def earn(conn: Conn, card: uuid.UUID | str, f: Fast) -> Answer:
    """Run the earn-only purchase `f` on `card` as one self-committing statement (call it
    outside a transaction). Raises as `ledger_repo.apply` for a receipt already recorded in
    this store (Conflict) and a concurrent request that stored the same key (IdempotencyRace).
    """
    b = f.bands
    with ledger_repo.unique_errors():
        row = await conn.fetchrow(
            EARN_BY_ID if isinstance(card, uuid.UUID) else EARN_BY_NUMBER,
            card, f.program_id, f.store_id, f.idem.scope, f.idem.key, f.rules_version, f.now,
            f.now.date(), b.thresholds, b.earned, b.tier_names, f.set_tier, f.tx_id,
            f.access.actor.id, f.receipt_id, f.amount, f.currency, f.lot_id, f.entry_id,
            f.expires_at, f.idem.request_hash, b.body_pre, b.body_mid, b.body_post,
            f.access.actor.role, f.access.action, f.access.purpose)
    assert row is not None  # one row by construction
    if row["body"] is not None:
        return Answer(body=bytes(row["body"]))
    if row["card_ok"] is None:
        return Answer(reason="no such card")
    if not (row["card_ok"] and row["store_ok"]):
        return Answer(reason="card or store refused")
    if not row["rules_ok"]:
        return Answer(reason="rules changed")
    if row["status_code"] is not None:
        return Answer(stored=StoredResponse(request_hash=bytes(row["request_hash"]),
                                            status_code=row["status_code"],
                                            body=bytes(row["response_body"])))
    return Answer(reason="lots due" if row["due"] else "account changed")

