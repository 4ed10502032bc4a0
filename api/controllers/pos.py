"""The till (staff and managers): scan, purchases, refunds, stored-value top-ups, reward
vouchers (on their own, or in a purchase's `vouchers`).

Every route here requires an `Idempotency-Key` header (400 without one). Staff act only for
their `store_ids` (403), managers for any store of their program; a store of another program
is a 404. A card is named by `qr_payload` (a signed, short-lived card token: expired, tampered,
of another program or of a blocked card → 422 /problems/invalid-card-token) or by
`card_number`. Handlers are thin: decode, check scope, call one service function.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.datastructures import State
from litestar.params import JSONBody
from litestar.types import ControllerRouterHandler
from msgspec import Meta

from api import metrics
from api.auth.tokens import Caller as Authenticated
from api.auth.tokens import Principal, TokenService, caller_of, roles
from api.config import pin_policy
from api.controllers import money_examples as money_ex
from api.controllers import rewards_examples as ex
from api.errors import responses
from api.idempotency import IdempotencyKey, request_key, respond
from wallet.kernel import errors
from wallet.kernel.text import Text
from wallet.ledger import payouts, refunds, till
from wallet.ledger.payouts import PayoutResult
from wallet.ledger.refunds import RefundResult
from wallet.ledger.till import (
    Caller,
    CardRef,
    PurchaseResult,
    ScanResult,
    TopUpResult,
)
from wallet.rewards import till_service as rewards_till
from wallet.rewards.till_service import VoucherRedeemed

Money = Annotated[int, Meta(ge=0, le=10**12, description="minor units (1250 = 12.50)")]
PositiveMoney = Annotated[int, Meta(gt=0, le=10**12, description="minor units, > 0")]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217, the program's")]
QrPayload = Annotated[Text, Meta(min_length=1, max_length=4096,
                                description="the signed card token shown as a QR code")]
CardNumber = Annotated[str, Meta(pattern=r"^[0-9]{12,19}$", description="the card's digits")]
ReceiptId = Annotated[Text, Meta(min_length=1, max_length=100)]
Pin = Annotated[str, Meta(pattern=r"^[0-9]{5}$", description="the member's 5-digit PIN")]


VoucherCode = Annotated[Text, Meta(min_length=1, max_length=64, examples=["K7QM-2XJD-9P"],
                                  description="a voucher's code, or its QR payload")]


class _CardInput(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    store_id: uuid.UUID
    qr_payload: QrPayload | None = None
    card_number: CardNumber | None = None

    def __post_init__(self) -> None:
        if (self.qr_payload is None) == (self.card_number is None):
            raise ValueError("give exactly one of `qr_payload` and `card_number`")


class ScanRequest(_CardInput, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class Redeem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`offer_ids`: the member's drive-to-store offers to apply (see
    `wallet/offers/redemption.py`); each refusal names `redeem.offer_ids[i]`."""

    offer_ids: Annotated[list[uuid.UUID], Meta(max_length=20)] = []
    points: Annotated[int, Meta(ge=0, le=10**12)] = 0
    pin: Annotated[Pin | None, Meta(
        description="required when the card is given by `card_number` (static: a wallet "
                    "pass's barcode, a screenshot); not with the app's `qr_payload`")] = None


class StoredValuePayment(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    amount: PositiveMoney
    pin: Pin


class PurchaseRequest(_CardInput, frozen=True, kw_only=True, forbid_unknown_fields=True):
    receipt_id: ReceiptId
    amount: Money
    currency: Currency
    redeem: Redeem | None = None
    stored_value: StoredValuePayment | None = None
    vouchers: Annotated[list[VoucherCode], Meta(max_length=20, description=(
        "reward vouchers to use, as scanned or typed: each takes its value off the amount; "
        "each refusal names `vouchers[i]`"))] = []


class RefundRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The purchase by `transaction_id`, or by `receipt_id` rung up in `receipt_store_id`
    (default: `store_id`, the refunding till's store); `amount` in what was paid (default:
    all that is left to refund)."""

    store_id: uuid.UUID
    transaction_id: uuid.UUID | None = None
    receipt_id: ReceiptId | None = None
    receipt_store_id: Annotated[uuid.UUID, Meta(
        description="the store that rang up `receipt_id`, for a return at another store "
                    "(default: `store_id`)")] | None = None
    amount: PositiveMoney | None = None

    def __post_init__(self) -> None:
        if (self.transaction_id is None) == (self.receipt_id is None):
            raise ValueError("give exactly one of `transaction_id` and `receipt_id`")
        if self.receipt_store_id is not None and self.receipt_id is None:
            raise ValueError("`receipt_store_id` goes with `receipt_id`")


class TopUpRequest(_CardInput, frozen=True, kw_only=True, forbid_unknown_fields=True):
    amount: PositiveMoney
    currency: Currency


class VoucherRedeemRequest(_CardInput, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A voucher used on its own; the member's card (at most one of `qr_payload` and
    `card_number`) is optional, and when given the voucher must be theirs."""

    code: VoucherCode

    def __post_init__(self) -> None:
        if self.qr_payload is not None and self.card_number is not None:
            raise ValueError("give at most one of `qr_payload` and `card_number`")


class PayoutRequest(_CardInput, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Stored value handed back in cash: the member confirms with their PIN."""

    amount: PositiveMoney
    currency: Currency
    pin: Pin


def _caller(principal: Principal, store_id: uuid.UUID) -> Caller:
    if principal.program_id is None:  # admins have no program: not a till account
        raise errors.AccessDenied("only staff and managers of a program use the till")
    principal.require_store(store_id)
    return Caller(account_id=principal.sub, program_id=principal.program_id,
                  role="manager" if principal.role == "manager" else "staff")


def _card(tokens: TokenService, caller: Caller, body: _CardInput) -> CardRef:
    if body.card_number is not None:
        return body.card_number
    assert body.qr_payload is not None
    try:
        claims = tokens.verify(body.qr_payload, "card")
        card_id = uuid.UUID(claims.card or "")
    except (errors.Unauthenticated, ValueError) as exc:
        detail = exc.detail if isinstance(exc, errors.Unauthenticated) else "invalid token"
        raise errors.InvalidCardToken(f"card QR payload refused: {detail}",
                                      field="qr_payload") from exc
    if claims.program_id != str(caller.program_id):
        raise errors.InvalidCardToken("this card belongs to another program",
                                      field="qr_payload")
    return card_id


class PosController(Controller):
    path = "/v1/pos"
    tags = ["till"]
    guards = [roles("staff", "manager")]

    @post("/scan", status_code=200, summary="Scan a card: what the cashier needs",
          responses=responses(403, 404, 409, 422))
    async def scan(self, request: Request[Any, Any, Any], state: State, principal: Authenticated,
                   data: JSONBody[ScanRequest],
                   idempotency_key: IdempotencyKey) -> Response[ScanResult]:
        caller = _caller(principal, data.store_id)
        card = _card(state.tokens, caller, data)
        return respond(await till.scan(
            state.pool, caller, store_id=data.store_id, card=card,
            idem=request_key(request, principal.sub, idempotency_key, data)))

    @post("/vouchers/redeem", status_code=200,
          summary="Use a reward voucher on its own (scanned or typed)",
          description="Once, only in the voucher's stores, only before it expires; with the "
                      "member's card, only theirs. Each refusal is a 422 problem of its own "
                      "(`/problems/voucher-already-used`, `-expired`, `-not-valid-at-store`, "
                      "`-of-another-member`); an unknown code is a 404. Logged in the "
                      "member's access log.",
          responses={**responses(403, 404, 409, 422),
                     **ex.ok(200, VoucherRedeemed, "The voucher, now used", ex.REDEEMED)})
    async def redeem_voucher(
            self, request: Request[Any, Any, Any], state: State, principal: Authenticated,
            data: Annotated[VoucherRedeemRequest, ex.body("A voucher typed by the cashier",
                                                          ex.REDEEM_IN)],
            idempotency_key: IdempotencyKey) -> Response[VoucherRedeemed]:
        caller = _caller(principal, data.store_id)
        card = None if data.qr_payload is None and data.card_number is None else _card(
            state.tokens, caller, data)
        return respond(await rewards_till.redeem(
            state.pool, caller, store_id=data.store_id, code=data.code, card=card,
            idem=request_key(request, principal.sub, idempotency_key, data)))

    @post("/purchases", status_code=201,
          summary="Record a purchase: earn points, redeem points and offers, spend stored "
                  "value (PIN)",
          description="Spending stored value, or points or offers by `card_number`, needs the "
                      "member's PIN: wrong → 422 `/problems/wrong-pin` with `attempts_left`; "
                      "the wrong PIN that uses the last attempt, and any PIN while locked → "
                      "422 `/problems/pin-locked` with `locked_until`. While other PIN checks "
                      "on the card are in flight and one of them may lock it → 409 "
                      "`/problems/pin-check-in-progress` with `Retry-After: 1`, nothing "
                      "checked or counted: retry with the same Idempotency-Key.",
          responses=responses(403, 404, 409, 422, pin=True))
    async def purchase(self, request: Request[Any, Any, Any], data: JSONBody[PurchaseRequest],
                       idempotency_key: IdempotencyKey) -> Response[PurchaseResult]:
        # The caller and the app's state straight from the request, as for ping batches.
        principal, state = caller_of(request), request.app.state
        caller = _caller(principal, data.store_id)
        redeem = data.redeem or Redeem()
        card = _card(state.tokens, caller, data)
        settings = state.settings
        outcome = await till.purchase(
            state.pool, caller, store_id=data.store_id, card=card, receipt_id=data.receipt_id,
            amount=data.amount, currency=data.currency, redeem_points=redeem.points,
            stored_value=data.stored_value.amount if data.stored_value else 0,
            pin=data.stored_value.pin if data.stored_value else redeem.pin,
            idem=request_key(request, principal.sub, idempotency_key, data),
            hasher=state.hasher, offer_ids=redeem.offer_ids, vouchers=data.vouchers,
            pin_policy=pin_policy(settings), rules_cache=state.till_rules)
        if not outcome.replayed:  # a retried request was counted the first time
            metrics.PURCHASES.inc()
        return respond(outcome)

    @post("/refunds", status_code=201,
          summary="Refund a purchase, in full or in part, in what was paid (by transaction "
                  "or receipt id)",
          description="The purchase is named by `transaction_id`, or by `receipt_id` (a "
                      "receipt rung up in `store_id`, or in `receipt_store_id` for a return "
                      "at another store). A purchase of another store of the program is "
                      "refunded here unless the program's `cross_store_refunds` is off (422 "
                      "/problems/cross-store-refund-disabled); the refund is recorded at "
                      "`store_id`, and the member's access log says the till read another "
                      "store's purchase (`till.refund_other_store`). Refunds are in what the "
                      "member paid: "
                      "the purchase's amount less its discount (offers, vouchers), so a "
                      "2,450 purchase with 490 off gives back at most 1,960 over all its "
                      "refunds (more → 422 naming `amount`). The answer says what goes back "
                      "and how: `refunded_amount` = `cash_back` (by card or in cash) + "
                      "`stored_value_back` (to the purse), in the proportions the purchase "
                      "was paid, and `remaining_refundable`. The points it earned are taken "
                      "back and the points it redeemed returned in the same proportion; the "
                      "refund that completes it makes its vouchers usable again. A purchase "
                      "nothing was paid for is refunded whole, without an `amount`. A fully "
                      "refunded purchase → 422.",
          responses={**responses(403, 404, 409, 422), **money_ex.ok(
              201, RefundResult, "2,450 with 490 off, 1,000 of it paid from the purse: "
              "1,960 back, 960 by card and 1,000 to the purse", money_ex.REFUND)})
    async def refund(self, request: Request[Any, Any, Any], state: State,
                     principal: Authenticated,
                     data: Annotated[RefundRequest, money_ex.body(
                         "A whole purchase, by its receipt", money_ex.REFUND_IN)],
                     idempotency_key: IdempotencyKey) -> Response[RefundResult]:
        caller = _caller(principal, data.store_id)
        purchase = data.transaction_id or data.receipt_id
        assert purchase is not None  # one of the two, by RefundRequest's check
        outcome = await refunds.refund(
            state.pool, caller, store_id=data.store_id, purchase=purchase,
            amount=data.amount, receipt_store_id=data.receipt_store_id,
            idem=request_key(request, principal.sub, idempotency_key, data))
        return respond(outcome)

    @post("/stored-value/top-ups", status_code=201, summary="Top up the member's stored value",
          responses=responses(403, 404, 409, 422))
    async def top_up(self, request: Request[Any, Any, Any], state: State,
                     principal: Authenticated, data: JSONBody[TopUpRequest],
                     idempotency_key: IdempotencyKey) -> Response[TopUpResult]:
        caller = _caller(principal, data.store_id)
        card = _card(state.tokens, caller, data)
        outcome = await till.top_up(
            state.pool, caller, store_id=data.store_id, card=card, amount=data.amount,
            currency=data.currency,
            idem=request_key(request, principal.sub, idempotency_key, data))
        return respond(outcome)

    @post("/stored-value/payouts", status_code=201,
          summary="Pay the member's stored value out in cash (PIN)",
          description="Hands `amount` of the member's purse back in cash, confirmed with the "
                      "member's PIN (as a purchase's: wrong → `/problems/wrong-pin` with "
                      "`attempts_left`, locked → `/problems/pin-locked` with `locked_until`, "
                      "checks in flight → 409 `/problems/pin-check-in-progress`, retry; each "
                      "naming `pin`). More than the purse holds → 422 "
                      "`/problems/insufficient-balance` naming `amount`. A transaction of kind "
                      "`payout` and a `stored_value_payout` ledger entry; logged in the "
                      "member's access log. This is how a member empties their purse before "
                      "erasing their account (an erasure refuses while it holds money).",
          responses={**responses(403, 404, 409, 422, pin=True), **money_ex.ok(
              201, PayoutResult, "Paid out: the purse is empty", money_ex.TILL_PAYOUT)})
    async def payout(self, request: Request[Any, Any, Any], state: State,
                     principal: Authenticated,
                     data: Annotated[PayoutRequest, money_ex.body(
                         "All that is left, in cash, with the member's PIN",
                         money_ex.TILL_PAYOUT_IN)],
                     idempotency_key: IdempotencyKey) -> Response[PayoutResult]:
        caller = _caller(principal, data.store_id)
        card = _card(state.tokens, caller, data)
        outcome = await payouts.till_payout(
            state.pool, caller, store_id=data.store_id, card=card, amount=data.amount,
            currency=data.currency, pin=data.pin, hasher=state.hasher,
            pin_policy=pin_policy(state.settings),
            idem=request_key(request, principal.sub, idempotency_key, data))
        return respond(outcome)


ROUTES: list[ControllerRouterHandler] = [PosController]
