"""The member's own ledger: `GET /v1/me/ledger`, newest entry first.

`balance_after` is one object `{"points", "stored_value"}`: an entry changes points or stored
value (or both) and the member wants to see both balances as they stood after it. Pages are
keyed by the ledger's append order, so new entries never shift a page being read.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.types import ControllerRouterHandler

from api.auth.tokens import Caller as Authenticated
from api.auth.tokens import roles
from api.errors import responses
from api.paging import Cursor, Limit, Page, decode_number, encode_number
from wallet.ledger import statement_service


class BalanceAfter(msgspec.Struct, frozen=True, kw_only=True):
    points: int
    stored_value: int


class LedgerItem(msgspec.Struct, frozen=True, kw_only=True):
    id: uuid.UUID
    at: datetime
    kind: str
    points: int  # the change of points (negative for a debit)
    stored_value: int  # the change of stored value, minor units
    store_id: uuid.UUID | None
    store_name: str | None  # the store's name now, for the statement shown to the member
    transaction_id: uuid.UUID | None
    balance_after: BalanceAfter


class MeWalletController(Controller):
    path = "/v1/me"
    tags = ["members"]
    guards = [roles("member")]

    @get("/ledger", summary="My ledger entries, newest first", responses=responses(403))
    async def ledger(self, state: State, principal: Authenticated, limit: Limit = 50,
                     cursor: Cursor = None) -> Page[LedgerItem]:
        assert principal.program_id is not None  # members always belong to a program
        rows = await statement_service.statement_page(
            state.pool, principal.sub, principal.program_id,
            before_seq=decode_number(cursor, opaque=True), limit=limit + 1)
        items = [LedgerItem(id=r.id, at=r.at, kind=r.kind, points=r.points,
                            stored_value=r.stored_value, store_id=r.store_id,
                            store_name=r.store_name, transaction_id=r.transaction_id,
                            balance_after=BalanceAfter(points=r.points_balance_after,
                                                       stored_value=r.stored_value_balance_after))
                 for r in rows[:limit]]
        more = len(rows) > limit
        return Page(items=items, next_cursor=(encode_number(rows[limit - 1].seq, opaque=True)
                                              if more else None))


ROUTES: list[ControllerRouterHandler] = [MeWalletController]
