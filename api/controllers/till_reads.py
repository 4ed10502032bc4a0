"""What a till reads besides the member: its stores, and a store's recent transactions.

Staff see only their own stores (`store_ids` of their token), managers every store of their
program; a store of another program is not there for them.
"""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, get
from litestar.datastructures import State
from litestar.params import FromPath
from litestar.types import ControllerRouterHandler

from api.auth.tokens import Caller, roles
from api.errors import responses
from api.paging import Cursor, Limit, Page, decode_cursor, page_of
from geo.stores import StoreRef, store_refs
from wallet.kernel import errors
from wallet.ledger.transactions_repo import StoreTransaction, store_transactions


class StoreRefs(msgspec.Struct, frozen=True, kw_only=True):
    items: list[StoreRef]


class TillReadsController(Controller):
    path = "/v1/pos/stores"
    tags = ["till"]
    guards = [roles("staff", "manager")]

    @get("/", summary="The stores this till account works for",
         description="Staff: the stores of their account; managers: every store of the "
                     "program. Code and name only, by code.",
         responses=responses(403))
    async def my_stores(self, state: State, principal: Caller) -> StoreRefs:
        if principal.program_id is None:
            raise errors.AccessDenied("only staff and managers of a program use the till")
        ids = principal.store_ids if principal.role == "staff" else None
        return StoreRefs(items=await store_refs(state.pool, principal.program_id, ids))

    @get("/{store_id:uuid}/transactions", summary="A store's till transactions, newest first",
         description="Purchases, refunds and top-ups rung up in this store, without any "
                     "member identity. Staff only for their own stores (403 otherwise).",
         responses=responses(403))
    async def transactions(self, state: State, principal: Caller,
                           store_id: FromPath[uuid.UUID], limit: Limit = 50,
                           cursor: Cursor = None) -> Page[StoreTransaction]:
        if principal.program_id is None:
            raise errors.AccessDenied("only staff and managers of a program use the till")
        principal.require_store(store_id)
        before = decode_cursor(cursor)
        rows = await store_transactions(state.pool, principal.program_id, store_id,
                                        before=(before.at, before.id) if before else None,
                                        limit=limit + 1)
        last = rows[limit - 1] if len(rows) > limit else None
        return page_of(rows, limit, (last.at, last.id) if last else None)


ROUTES: list[ControllerRouterHandler] = [TillReadsController]
