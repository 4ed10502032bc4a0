"""The one tree of domain errors, rooted at `DomainError` (geo's errors are a branch of it).
The API maps each class to one HTTP status and problem type (`api/errors.py`, one table);
the domain never raises HTTP exceptions itself."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType


class DomainError(Exception):
    """Base of every business error. `field` names the offending input field when one does;
    `members` are extra members of the problem document a client acts on (RFC 9457
    extensions, e.g. `attempts_left`), JSON-encodable values."""

    members: Mapping[str, object] = MappingProxyType({})

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(DomainError):
    """The resource does not exist, or exists but is not the caller's to see."""


class Conflict(DomainError):
    """The request conflicts with the current state (a duplicate code or email, say)."""


class IdempotencyConflict(Conflict):
    """An Idempotency-Key was reused with a different request body."""


class StoredValueRemaining(Conflict):
    """The member's purse still holds money: it must be paid out before an erasure (which
    would otherwise forfeit it)."""

    def __init__(self, detail: str, *, balance: int, currency: str) -> None:
        super().__init__(detail)
        self.members = {"stored_value_balance": balance, "currency": currency}


class PinCheckInProgress(Conflict):
    """Other PIN checks on the card are still being verified, one of them on the attempt
    that may lock it: nothing was checked; retry after `retry_after_s` (same request)."""

    def __init__(self, detail: str, *, field: str, retry_after_s: int = 1) -> None:
        super().__init__(detail, field=field)
        self.retry_after_s = retry_after_s


class RuleViolation(DomainError):
    """Well-formed, but refused by a business rule (HTTP 422)."""


class CrossStoreRefundDisabled(RuleViolation):
    """The program refunds a purchase only at the store that rang it up (its setting
    `cross_store_refunds` is off)."""


class UnknownPolicyVersion(RuleViolation):
    """A consent's `policy_version` names no privacy notice that was ever published."""

    def __init__(self, detail: str, *, field: str, latest: str | None) -> None:
        super().__init__(detail, field=field)
        self.members = {"latest_version": latest}


class InsufficientBalance(RuleViolation):
    """Points or stored value would go below zero."""


class LimitExceeded(RuleViolation):
    """An amount over one of the program's limits (`wallet.kernel.model.Limits`): `limit`
    names it, `maximum` is its value and `allowed` the most this operation could be now
    (for the purse: what it can still take)."""

    def __init__(self, detail: str, *, limit: str, maximum: int, allowed: int,
                 field: str | None = "amount") -> None:
        super().__init__(detail, field=field)
        self.members = {"limit": limit, "maximum": maximum, "allowed": allowed}


class InvalidCardToken(RuleViolation):
    """A QR payload that is expired, tampered with, or of another program."""


class WrongPin(RuleViolation):
    """The stored-value PIN did not match; `attempts_left` wrong PINs more lock it."""

    def __init__(self, detail: str, *, attempts_left: int,
                 field: str = "stored_value.pin") -> None:
        super().__init__(detail, field=field)
        self.members = {"attempts_left": attempts_left}


class PinLocked(RuleViolation):
    """Too many wrong PINs: stored-value spending is locked until `locked_until`."""

    def __init__(self, detail: str, *, retry_after_s: int, locked_until: datetime,
                 field: str = "stored_value.pin", new_lock: bool = False) -> None:
        super().__init__(detail, field=field)
        self.retry_after_s = retry_after_s
        self.members = {"locked_until": locked_until, "attempts_left": 0}
        self.new_lock = new_lock  # this attempt locked it (counted as a lockout)


class PinRequired(RuleViolation):
    """Spending stored value needs a PIN set on the account and given at the till."""


class CurrencyMismatch(RuleViolation):
    """The amount's currency is not the program's."""


class StoredValueDisabled(RuleViolation):
    """The program has no stored value."""


class OfferAlreadyRedeemed(RuleViolation):
    """The offer was redeemed by an earlier purchase."""


class OfferExpired(RuleViolation):
    """The offer's validity ended."""


class OfferNotValidHere(RuleViolation):
    """The offer's campaign does not cover the till's store."""


class OutOfStock(RuleViolation):
    """Every unit of a reward's stock has been claimed."""


class ClaimLimitReached(RuleViolation):
    """The member already holds as many vouchers of a reward as it allows per member."""


class RewardNotClaimable(RuleViolation):
    """The reward is retired, or its claiming window has not opened or has closed."""


class VoucherAlreadyUsed(RuleViolation):
    """The voucher was used before (a refund of its purchase makes it usable again)."""


class VoucherExpired(RuleViolation):
    """The voucher's lifetime is over."""


class VoucherNotValidHere(RuleViolation):
    """The voucher's reward is not valid in the till's store."""


class VoucherOfAnotherMember(RuleViolation):
    """The voucher belongs to another member than the card presented with it."""


class AccessDenied(DomainError):
    """The caller's role or scope does not allow this action (HTTP 403)."""


class WrongPassword(AccessDenied):
    """A dangerous action (erasure, a PIN change) re-authenticates with the password, and the
    one given is wrong (HTTP 403: the token itself is fine, so not 401)."""


class ConsentRequired(AccessDenied):
    """The member has not (or no longer) given consent for the purpose this needs."""


class ProgramRequired(DomainError):
    """A login without `program_id` whose credentials belong to a program's account."""


class Unauthenticated(DomainError):
    """Credentials are missing, wrong, expired, revoked or belong to an erased member (401)."""


class PassesNotConfigured(NotFound):
    """The operator has not configured this kind of wallet pass (HTTP 404, its own type)."""


class PassAuthFailed(Unauthenticated):
    """A PassKit request whose `ApplePass` token does not match the pass (HTTP 401)."""
