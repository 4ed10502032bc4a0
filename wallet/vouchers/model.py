"""Vouchers at the till, pure: codes, what the member and the cashier see, and whether a
voucher may be used here, now, by this card.

This module imports nothing of the ledger: the till (`wallet/till.py`) uses it through
`redemption.py` inside a purchase, as it does offers.

* A **code** is 10 characters of Crockford's base 32 (no I, L, O, U): 50 random bits. The
  app shows it as text and as a QR code whose payload is `voucher:<code>`; a till may send
  either, typed in any case, with dashes or spaces, O for 0 and I or L for 1.
* A voucher is **usable** once, only by its member's card (when a card is presented: always
  inside a purchase), only in its stores (none listed: every store of the program), only
  while `now < expires_at`. Inside a purchase it takes its `value` off the amount (an
  `amount_off` reward always has one; a product voucher's face value is optional: without it
  the till hands over the product and takes nothing off).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import msgspec

from wallet.kernel.errors import (
    NotFound,
    VoucherAlreadyUsed,
    VoucherExpired,
    VoucherNotValidHere,
    VoucherOfAnotherMember,
)

RewardKind = Literal["voucher", "amount_off", "stored_value"]
VoucherStatus = Literal["active", "used", "expired", "cancelled"]


# Crockford's base 32: no I, L, O or U, so a code read aloud or typed is unambiguous.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10  # 50 bits: guessing one of a million live codes takes ~2^30 tries
QR_PREFIX = "voucher:"
_READ_AS = str.maketrans({"O": "0", "I": "1", "L": "1"})


def code_from(random_bytes: bytes) -> str:
    """A code from at least CODE_LENGTH random bytes (5 bits of each)."""
    if len(random_bytes) < CODE_LENGTH:
        raise ValueError(f"{CODE_LENGTH} random bytes are needed")
    return "".join(ALPHABET[b % 32] for b in random_bytes[:CODE_LENGTH])


def qr_payload(code: str) -> str:
    """What the app shows as a QR code: the code, with a prefix a scanner recognises."""
    return QR_PREFIX + code


def normalise_code(text: str) -> str | None:
    """The code a cashier typed or scanned (a QR payload too), in canonical form: upper
    case, without spaces or dashes, O read as 0 and I, L as 1. None if it cannot be one."""
    raw = text.strip()
    if raw.lower().startswith(QR_PREFIX):
        raw = raw[len(QR_PREFIX):]
    code = raw.upper().replace("-", "").replace(" ", "").translate(_READ_AS)
    if len(code) != CODE_LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


# --- vouchers at the till -----------------------------------------------------------------------


class VoucherAtTill(msgspec.Struct, frozen=True, kw_only=True):
    """A voucher as the till checks it (read under the member's account lock)."""

    id: uuid.UUID
    code: str
    reward_id: uuid.UUID
    wallet_account_id: uuid.UUID
    name: str
    kind: RewardKind
    value: int | None
    store_ids: tuple[uuid.UUID, ...]
    status: VoucherStatus
    expires_at: datetime


def shown_status(status: VoucherStatus, expires_at: datetime, now: datetime) -> VoucherStatus:
    """The status a member or cashier sees: an active voucher past its expiry is expired,
    even before the expiry job has returned its points."""
    return "expired" if status == "active" and expires_at <= now else status


def check_usable(v: VoucherAtTill, *, account_id: uuid.UUID | None, store_id: uuid.UUID,
                 now: datetime, field: str) -> None:
    """Raise why `v` cannot be used now at `store_id` by the member of `account_id` (None:
    no card presented), naming `field`."""
    if v.status == "cancelled":
        raise NotFound("no such voucher", field=field)
    if account_id is not None and v.wallet_account_id != account_id:
        raise VoucherOfAnotherMember("this voucher belongs to another member", field=field)
    if v.status == "used" or v.kind == "stored_value":
        raise VoucherAlreadyUsed("this voucher was already used", field=field)
    if shown_status(v.status, v.expires_at, now) == "expired":
        raise VoucherExpired("this voucher has expired", field=field)
    if v.store_ids and store_id not in v.store_ids:
        raise VoucherNotValidHere("this voucher is not valid in this store", field=field)


def vouchers_discount(vouchers: Sequence[VoucherAtTill]) -> int:
    """What the vouchers used in a purchase take off its amount, before capping at it."""
    return sum(v.value or 0 for v in vouchers)
